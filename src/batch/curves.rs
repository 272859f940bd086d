//! `batch-curves.svg`: held-out accuracy over epochs across seeds, one curve per scene × grid
//! point: the mean over the seeds that finished, a band from their minimum to their maximum,
//! the training accuracy's mean dashed beside it, a chance line and a legend.
//!
//! The per-epoch values come from each run's own `summary.json`: its training epochs, and for
//! each epoch count the last test-split evaluation made after that many epochs (so an
//! `Evaluate` after every `Train(epochs: 1)` or `Train(evaluate_every: N)` both give points).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::run::plot::{svg_open, xml_escape};

use super::chart::PALETTE;
use super::summary::{RunRow, RunStatus};

/// One run's accuracies by epoch count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurve {
    /// Held-out (test) accuracy after `epoch` epochs.
    pub held_out: BTreeMap<u32, f64>,
    /// Training accuracy of epoch `epoch`.
    pub training: BTreeMap<u32, f64>,
    /// Chance level (1 / classes), when the run recorded a baseline.
    pub chance: Option<f64>,
}

/// Reads a run's curve from its `summary.json` (`None` if it has none or it is not JSON).
pub fn read_run(dir: &Path) -> Option<RunCurve> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut curve = RunCurve::default();
    for e in v["training"].as_array().into_iter().flatten() {
        if let (Some(epoch), Some(acc)) = (e["epoch"].as_u64(), e["accuracy"].as_f64()) {
            curve.training.insert(epoch as u32, acc);
        }
    }
    let evaluations = v["evaluations"].as_array().cloned().unwrap_or_default();
    // Validation evaluations when the run has any (`data.validation`), else test ones.
    let held = if evaluations.iter().any(|e| e["split"] == "validation") {
        "validation"
    } else {
        "test"
    };
    for e in &evaluations {
        if e["split"] == held
            && let (Some(epochs), Some(acc)) = (e["after_epochs"].as_u64(), e["accuracy"].as_f64())
        {
            // Later evaluations after the same epoch count replace earlier ones.
            curve.held_out.insert(epochs as u32, acc);
        }
    }
    curve.chance = v["baseline"]["chance"].as_f64();
    Some(curve)
}

/// One scene × grid point's curves across its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupCurve {
    /// Scene and grid values.
    pub label: String,
    /// Seeds whose curve was read.
    pub seeds: usize,
    /// `(epochs, mean, min, max)` of the held-out accuracy over the seeds that have it.
    pub held_out: Vec<(u32, f64, f64, f64)>,
    /// `(epoch, mean)` of the training accuracy.
    pub training: Vec<(u32, f64)>,
}

/// Mean, minimum and maximum per key over curves.
fn band(maps: &[&BTreeMap<u32, f64>]) -> Vec<(u32, f64, f64, f64)> {
    let mut by: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for m in maps {
        for (&k, &v) in *m {
            by.entry(k).or_default().push(v);
        }
    }
    by.into_iter()
        .map(|(k, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (k, mean, lo, hi)
        })
        .collect()
}

/// Groups the finished runs by scene × grid point (in first-seen order) with `read` giving
/// each run's curve.
pub fn group(
    rows: &[RunRow],
    read: impl Fn(&RunRow) -> Option<RunCurve>,
) -> (Vec<GroupCurve>, Option<f64>) {
    let mut order: Vec<String> = Vec::new();
    let mut curves: BTreeMap<String, Vec<RunCurve>> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| matches!(r.status, RunStatus::Done | RunStatus::Skipped))
    {
        let Some(curve) = read(row) else { continue };
        let mut label = row.scene.clone();
        for (f, v) in &row.grid {
            let _ = write!(label, " {}={v}", f.rsplit('.').next().unwrap_or(f));
        }
        if !curves.contains_key(&label) {
            order.push(label.clone());
        }
        curves.entry(label).or_default().push(curve);
    }
    let chance = curves.values().flatten().find_map(|c| c.chance);
    let groups = order
        .into_iter()
        .map(|label| {
            let runs = &curves[&label];
            let held: Vec<&BTreeMap<u32, f64>> = runs.iter().map(|c| &c.held_out).collect();
            let train: Vec<&BTreeMap<u32, f64>> = runs.iter().map(|c| &c.training).collect();
            GroupCurve {
                seeds: runs.len(),
                held_out: band(&held),
                training: band(&train).into_iter().map(|(k, m, ..)| (k, m)).collect(),
                label,
            }
        })
        .collect();
    (groups, chance)
}

/// Renders the curves under `title`.
pub fn render(groups: &[GroupCurve], chance: Option<f64>, title: &str) -> String {
    let (w, h) = (900.0f64, 480.0f64);
    let (left, right, top, bottom) = (70.0, 600.0, 60.0, 400.0);
    let mut s = String::new();
    svg_open(&mut s, w, h, 12, 26.0, title);
    let max_epoch = groups
        .iter()
        .flat_map(|g| {
            g.held_out
                .iter()
                .map(|p| p.0)
                .chain(g.training.iter().map(|p| p.0))
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let px = |e: u32| left + (right - left) * f64::from(e) / f64::from(max_epoch);
    let py = |a: f64| bottom - (bottom - top) * a.clamp(0.0, 1.0);
    for i in 0..=5 {
        let a = f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}%</text>"##,
            left - 6.0,
            py(a) + 4.0,
            100.0 * a,
            y = py(a)
        );
    }
    let step = (f64::from(max_epoch) / 10.0).ceil().max(1.0) as u32;
    for e in (0..=max_epoch).step_by(step as usize) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{e}</text>"#,
            px(e),
            bottom + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline points="{left},{top} {left},{bottom} {right},{bottom}" fill="none" stroke="#333333"/><text x="{:.1}" y="{:.1}" text-anchor="middle">epochs trained</text><text x="24" y="{:.1}" text-anchor="middle" transform="rotate(-90 24 {:.1})">accuracy</text>"##,
        (left + right) / 2.0,
        bottom + 36.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    if let Some(c) = chance {
        let _ = writeln!(
            s,
            r##"<line class="chance" x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#7f7f7f" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" fill="#7f7f7f">chance</text>"##,
            left + 4.0,
            py(c) - 4.0,
            y = py(c)
        );
    }
    for (i, g) in groups.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let _ = writeln!(s, r#"<g class="group">"#);
        if g.held_out.len() > 1 {
            let upper = g
                .held_out
                .iter()
                .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.3)));
            let lower = g
                .held_out
                .iter()
                .rev()
                .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.2)));
            let points: Vec<String> = upper.chain(lower).collect();
            let _ = writeln!(
                s,
                r#"<polygon class="band" points="{}" fill="{color}" fill-opacity="0.18" stroke="none"/>"#,
                points.join(" ")
            );
        }
        let mean: Vec<String> = g
            .held_out
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline class="held-out" points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            mean.join(" ")
        );
        for p in &g.held_out {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#,
                px(p.0),
                py(p.1)
            );
        }
        let train: Vec<String> = g
            .training
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline class="training" points="{}" fill="none" stroke="{color}" stroke-width="1.2" stroke-dasharray="5 4"/>"#,
            train.join(" ")
        );
        let y = top + 10.0 + 34.0 * i as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" fill="#666666">{} seed(s); dashed: training</text>"##,
            right + 20.0,
            right + 44.0,
            right + 50.0,
            y + 4.0,
            xml_escape(&super::chart::truncate_middle(&g.label, 34)),
            right + 50.0,
            y + 18.0,
            g.seeds
        );
        let _ = writeln!(s, "</g>");
    }
    if groups.iter().all(|g| g.held_out.is_empty()) {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666666">no test evaluations recorded yet</text>"##,
            (left + right) / 2.0,
            (top + bottom) / 2.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">held-out (test) accuracy: mean over seeds, band from min to max</text>"##,
        (left + right) / 2.0,
        h - 14.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plot::svg_check::assert_well_formed;

    fn row(seed: u64, lr: &str, status: RunStatus) -> RunRow {
        RunRow {
            index: 0,
            scene: "s".into(),
            scene_path: "s.ron".into(),
            seed,
            grid: vec![("training.lr".into(), lr.into())],
            status,
            error: None,
            accuracy: None,
            coverage: None,
            loss: None,
            samples_per_second: None,
            wall_seconds: 0.0,
            dir: format!("{seed}-{lr}"),
        }
    }

    fn curve(held: &[(u32, f64)], train: &[(u32, f64)]) -> RunCurve {
        RunCurve {
            held_out: held.iter().copied().collect(),
            training: train.iter().copied().collect(),
            chance: Some(0.1),
        }
    }

    #[test]
    fn groups_average_the_seeds_and_band_their_range() {
        let rows = [
            row(1, "1", RunStatus::Done),
            row(2, "1", RunStatus::Done),
            row(1, "2", RunStatus::Done),
            row(3, "1", RunStatus::Failed),
        ];
        let read = |r: &RunRow| {
            Some(match (r.seed, r.grid[0].1.as_str()) {
                (1, "1") => curve(&[(0, 0.1), (1, 0.5)], &[(1, 0.4)]),
                (2, "1") => curve(&[(0, 0.2), (1, 0.7)], &[(1, 0.6)]),
                (1, "2") => curve(&[(0, 0.1), (1, 0.3), (2, 0.4)], &[(1, 0.2), (2, 0.3)]),
                _ => curve(&[(0, 0.9)], &[]),
            })
        };
        let (groups, chance) = group(&rows, read);
        assert_eq!(chance, Some(0.1));
        assert_eq!(groups.len(), 2, "the failed run is left out");
        assert_eq!(groups[0].label, "s lr=1");
        assert_eq!(groups[0].seeds, 2);
        // By hand: epoch 0 mean (0.1 + 0.2)/2, min 0.1, max 0.2; epoch 1 mean 0.6 in 0.5..0.7.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let h = &groups[0].held_out;
        assert!(close(h[0].1, 0.15) && h[0].2 == 0.1 && h[0].3 == 0.2);
        assert!(close(h[1].1, 0.6) && h[1].2 == 0.5 && h[1].3 == 0.7);
        assert!(close(groups[0].training[0].1, 0.5));
        assert_eq!(groups[1].held_out.len(), 3);
        let svg = render(&groups, chance, "t");
        assert_well_formed(&svg);
        assert_eq!(svg.matches(r#"class="band""#).count(), 2);
        assert_eq!(svg.matches(r#"class="held-out""#).count(), 2);
        assert!(svg.contains(r#"class="chance""#) && svg.contains("2 seed(s)"));
    }

    #[test]
    fn a_run_summary_gives_its_curve() {
        let dir = tempfile::tempdir().unwrap();
        let summary = serde_json::json!({
            "training": [{"epoch": 1, "accuracy": 0.4}, {"epoch": 2, "accuracy": 0.5}],
            "evaluations": [
                {"split": "test", "after_epochs": 0, "accuracy": 0.1},
                {"split": "test", "after_epochs": 1, "accuracy": 0.3},
                {"split": "test", "after_epochs": 1, "accuracy": 0.35},
                {"split": "train", "after_epochs": 2, "accuracy": 0.9},
            ],
            "baseline": {"chance": 0.1},
        });
        std::fs::write(dir.path().join("summary.json"), summary.to_string()).unwrap();
        let c = read_run(dir.path()).unwrap();
        let held: Vec<(u32, f64)> = c.held_out.into_iter().collect();
        assert_eq!(
            held,
            [(0, 0.1), (1, 0.35)],
            "the last test evaluation per epoch count"
        );
        assert_eq!(c.training.len(), 2);
        assert_eq!(c.chance, Some(0.1));
        assert!(read_run(&dir.path().join("missing")).is_none());
    }
}
