//! The `curves.svg` plot of a run (mean loss, accuracy and coverage per epoch), and the SVG
//! pieces every SVG writer shares (the document opening and XML escaping).

use std::fmt::Write as _;

use super::report::{EpochMetrics, Evaluation};

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 400.0;
const PLOT_TOP: f64 = 62.0;
const PLOT_BOTTOM: f64 = 340.0;
const LOSS_COLOR: &str = "#d62728";
const ACCURACY_COLOR: &str = "#1f77b4";
const COVERAGE_COLOR: &str = "#2ca02c";
const HELD_COLOR: &str = "#9467bd";
const HELD_LOSS_COLOR: &str = "#ff7f0e";

/// A plot panel: its pixel box and data ranges.
struct Panel {
    left: f64,
    right: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * (self.right - self.left)
    }

    fn py(&self, y: f64) -> f64 {
        PLOT_BOTTOM - (y - self.y.0) / (self.y.1 - self.y.0) * (PLOT_BOTTOM - PLOT_TOP)
    }
}

/// Renders an 800×400 SVG with two panels: mean loss per epoch (left) and accuracy and
/// coverage per epoch (right), each with axes, tick labels and a legend, under `title`
/// (XML-escaped). Each series is drawn as `<polyline>`s (one per run of epochs with a value)
/// with a dot per epoch, so a single epoch still shows; epochs without a loss leave a gap, and
/// a panel with no values says so.
pub fn render_svg(epochs: &[EpochMetrics], title: &str) -> String {
    render_curves(epochs, &[], None, title)
}

/// One held-out evaluation on the curves: where it falls in (fractional) epochs, its accuracy
/// and its mean loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeldOut {
    /// Epochs of training before it, fractional within an epoch (0: before any training).
    pub epoch: f64,
    /// Accuracy on the held-out split.
    pub accuracy: f64,
    /// Mean loss on it (`None` if no sample was covered).
    pub loss: Option<f64>,
}

/// Places test-split evaluations on the epochs' axis by the samples seen before them: an
/// evaluation after `s` samples, within epoch k (which ran samples `a..b`), sits at
/// `k − 1 + (s − a)/(b − a)`; one before any training at 0. Train-split evaluations are left
/// out (the training curve already shows that split).
pub fn held_out_points(epochs: &[EpochMetrics], evaluations: &[Evaluation]) -> Vec<HeldOut> {
    let mut ends = Vec::with_capacity(epochs.len());
    let mut total = 0u64;
    for m in epochs {
        total += u64::from(m.samples);
        ends.push((f64::from(m.epoch), total));
    }
    // Validation evaluations when there are any (`data.validation`), else test ones.
    use crate::scene::Split;
    let held = if evaluations.iter().any(|e| e.split == Split::Validation) {
        Split::Validation
    } else {
        Split::Test
    };
    evaluations
        .iter()
        .filter(|e| e.split == held)
        .map(|e| {
            let mut start = 0u64;
            let mut epoch = 0.0;
            for &(k, end) in &ends {
                if e.samples_seen <= end {
                    let span = (end - start).max(1) as f64;
                    epoch = k - 1.0 + (e.samples_seen - start) as f64 / span;
                    break;
                }
                start = end;
                epoch = k;
            }
            HeldOut {
                epoch: if e.samples_seen == 0 { 0.0 } else { epoch },
                accuracy: e.accuracy,
                loss: e.mean_loss.filter(|l| l.is_finite()),
            }
        })
        .collect()
}

/// [`render_svg`] with held-out evaluations (orange loss, purple accuracy, at their place in
/// epochs) and a dotted chance line (`chance`, a fraction) in the accuracy panel.
pub fn render_curves(
    epochs: &[EpochMetrics],
    held_out: &[HeldOut],
    chance: Option<f64>,
    title: &str,
) -> String {
    let mut s = String::new();
    svg_open(&mut s, WIDTH, HEIGHT, 12, 26.0, title);

    let x_range = {
        let (lo, hi) = epoch_range(epochs);
        let (hlo, hhi) = min_max(held_out.iter().map(|h| h.epoch)).unwrap_or((lo, hi));
        let (lo, hi) = (lo.min(hlo), hi.max(hhi));
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        }
    };
    let xs: Vec<f64> = epochs.iter().map(|m| f64::from(m.epoch)).collect();
    let hx: Vec<f64> = held_out.iter().map(|h| h.epoch).collect();
    let held_loss: Vec<Option<f64>> = held_out.iter().map(|h| h.loss).collect();
    let held_accuracy: Vec<Option<f64>> = held_out.iter().map(|h| Some(h.accuracy)).collect();

    // Left panel: mean loss.
    let losses: Vec<Option<f64>> = epochs
        .iter()
        .map(|m| m.loss.filter(|l| l.is_finite()))
        .collect();
    let (lo, hi) =
        min_max(losses.iter().chain(&held_loss).flatten().copied()).unwrap_or((0.0, 1.0));
    let (y_lo, y_hi, y_step) = nice_range(lo, hi);
    let loss_panel = Panel {
        left: 70.0,
        right: 375.0,
        x: x_range,
        y: (y_lo, y_hi),
    };
    draw_axes(&mut s, &loss_panel, y_step, false, "mean loss");
    if losses.iter().chain(&held_loss).all(Option::is_none) {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666666">no loss recorded</text>"##,
            (loss_panel.left + loss_panel.right) / 2.0,
            (PLOT_TOP + PLOT_BOTTOM) / 2.0
        );
    }
    draw_series(&mut s, &loss_panel, &xs, &losses, LOSS_COLOR, "loss", false);
    let mut loss_legend = vec![("train loss", LOSS_COLOR, false)];
    if !held_out.is_empty() {
        let name = "held-out-loss";
        draw_series(
            &mut s,
            &loss_panel,
            &hx,
            &held_loss,
            HELD_LOSS_COLOR,
            name,
            false,
        );
        loss_legend.push(("held-out loss", HELD_LOSS_COLOR, false));
    }
    draw_legend(&mut s, &loss_panel, &loss_legend);

    // Right panel: accuracy and coverage, as fractions (percent labels) unless a value
    // exceeds 1.
    let accuracy: Vec<Option<f64>> = epochs
        .iter()
        .map(|m| Some(m.accuracy).filter(|v| v.is_finite()))
        .collect();
    let coverage: Vec<Option<f64>> = epochs
        .iter()
        .map(|m| Some(m.coverage).filter(|v| v.is_finite()))
        .collect();
    let top = min_max(accuracy.iter().chain(&coverage).flatten().copied())
        .map_or(1.0, |(_, hi)| hi)
        .max(chance.unwrap_or(0.0));
    let (ry_lo, ry_hi, ry_step, percent) = if top <= 1.0 {
        (0.0, 1.0, 0.2, true)
    } else {
        let (lo, hi, step) = nice_range(0.0, top);
        (lo, hi, step, false)
    };
    let rate_panel = Panel {
        left: 465.0,
        right: 770.0,
        x: x_range,
        y: (ry_lo, ry_hi),
    };
    draw_axes(&mut s, &rate_panel, ry_step, percent, "accuracy / coverage");
    draw_series(
        &mut s,
        &rate_panel,
        &xs,
        &accuracy,
        ACCURACY_COLOR,
        "accuracy",
        false,
    );
    draw_series(
        &mut s,
        &rate_panel,
        &xs,
        &coverage,
        COVERAGE_COLOR,
        "coverage",
        true,
    );
    let mut legend = vec![
        ("train acc.", ACCURACY_COLOR, false),
        ("coverage", COVERAGE_COLOR, true),
    ];
    if !held_out.is_empty() {
        let name = "held-out-accuracy";
        draw_series(
            &mut s,
            &rate_panel,
            &hx,
            &held_accuracy,
            HELD_COLOR,
            name,
            false,
        );
        legend.push(("held-out acc.", HELD_COLOR, false));
    }
    if let Some(c) = chance {
        let y = rate_panel.py(c);
        let _ = writeln!(
            s,
            r##"<line class="chance" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#7f7f7f" stroke-dasharray="2 3"/>"##,
            rate_panel.left, rate_panel.right
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#7f7f7f">chance</text>"##,
            rate_panel.left + 4.0,
            y - 4.0
        );
    }
    draw_legend(&mut s, &rate_panel, &legend);
    s.push_str("</svg>\n");
    s
}

/// The x range: the epochs' span, or one unit around a single epoch.
fn epoch_range(epochs: &[EpochMetrics]) -> (f64, f64) {
    match min_max(epochs.iter().map(|m| f64::from(m.epoch))) {
        Some((lo, hi)) if hi > lo => (lo, hi),
        Some((e, _)) => (e - 0.5, e + 0.5),
        None => (0.5, 1.5),
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A 1, 2 or 5 × 10^k step near `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw
    } else {
        1.0
    };
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Rounds `[lo, hi]` out to about five nice ticks; returns `(lo, hi, step)`.
fn nice_range(lo: f64, hi: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
        (lo - pad, hi + pad)
    };
    let step = nice_step((hi - lo) / 5.0);
    let lo_n = (lo / step).floor() * step;
    let mut hi_n = (hi / step).ceil() * step;
    if hi_n <= lo_n {
        hi_n = lo_n + step;
    }
    (lo_n, hi_n, step)
}

/// Decimals that show a tick step exactly.
fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        ((-step.log10() - 1e-9).ceil() as usize).min(6)
    }
}

fn draw_axes(s: &mut String, p: &Panel, y_step: f64, percent: bool, y_label: &str) {
    let _ = writeln!(s, r#"<g class="axes">"#);
    // Horizontal grid lines and y ticks.
    let n = ((p.y.1 - p.y.0) / y_step).round() as i64;
    for i in 0..=n {
        let v = p.y.0 + i as f64 * y_step;
        let y = p.py(v);
        let label = if percent {
            format!("{:.0}%", v * 100.0)
        } else {
            format!("{:.*}", decimals(y_step), v)
        };
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
            p.left, p.right
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            p.left - 6.0,
            y + 4.0
        );
    }
    // X ticks at whole epochs.
    let first = p.x.0.ceil();
    let step = nice_step((p.x.1 - p.x.0) / 6.0).max(1.0);
    let mut ticks = Vec::new();
    let mut e = (first / step).ceil() * step;
    // Label the first epoch too when it is not a multiple of the step and not crowded.
    if e - first >= step * 0.5 {
        ticks.push(first);
    }
    while e <= p.x.1 + 1e-9 {
        ticks.push(e);
        e += step;
    }
    for e in ticks {
        let x = p.px(e);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{PLOT_BOTTOM:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333333"/>"##,
            PLOT_BOTTOM + 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{e:.0}</text>"#,
            PLOT_BOTTOM + 18.0
        );
    }
    // Axis lines and labels.
    let _ = writeln!(
        s,
        r##"<polyline class="frame" points="{:.1},{PLOT_TOP:.1} {:.1},{PLOT_BOTTOM:.1} {:.1},{PLOT_BOTTOM:.1}" fill="none" stroke="#333333"/>"##,
        p.left, p.left, p.right
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">epoch</text>"#,
        (p.left + p.right) / 2.0,
        PLOT_BOTTOM + 36.0
    );
    let mid = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 {x:.1} {mid:.1})">{}</text>"#,
        xml_escape(y_label),
        x = p.left - 50.0
    );
    let _ = writeln!(s, "</g>");
}

/// Draws one series: a polyline per run of consecutive values (at least one polyline, empty
/// when there are no values) and a dot per value.
fn draw_series(
    s: &mut String,
    p: &Panel,
    xs: &[f64],
    ys: &[Option<f64>],
    color: &str,
    name: &str,
    dashed: bool,
) {
    let dash = if dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(s, r#"<g class="series-{name}">"#);
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (&x, y) in xs.iter().zip(ys) {
        match y {
            Some(y) => runs
                .last_mut()
                .expect("never empty")
                .push((p.px(x), p.py(*y))),
            None => {
                if !runs.last().expect("never empty").is_empty() {
                    runs.push(Vec::new());
                }
            }
        }
    }
    if runs.len() > 1 && runs.last().is_some_and(Vec::is_empty) {
        runs.pop();
    }
    for run in &runs {
        let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            points.join(" ")
        );
    }
    let radius = if xs.len() > 60 { 1.5 } else { 3.0 };
    for (x, y) in runs.iter().flatten() {
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{radius}" fill="{color}"/>"#
        );
    }
    let _ = writeln!(s, "</g>");
}

fn draw_legend(s: &mut String, p: &Panel, entries: &[(&str, &str, bool)]) {
    let _ = writeln!(s, r#"<g class="legend">"#);
    for (i, (label, color, dashed)) in entries.iter().enumerate() {
        let x = p.left + 4.0 + i as f64 * 100.0;
        let y = PLOT_TOP - 12.0;
        let dash = if *dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
            x + 24.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 30.0,
            y + 4.0,
            xml_escape(label)
        );
    }
    let _ = writeln!(s, "</g>");
}

/// Starts an SVG document of `width` × `height` in `font_size` sans-serif on a white
/// background, with `title` (escaped here) as its `<title>` and as a bold heading centred at
/// height `title_y` (shared by every SVG writer).
pub(crate) fn svg_open(
    s: &mut String,
    width: f64,
    height: f64,
    font_size: u32,
    title_y: f64,
    title: &str,
) {
    let title = xml_escape(title);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{font_size}">"#
    );
    let _ = writeln!(s, "<title>{title}</title>");
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{title_y}" text-anchor="middle" font-size="16" font-weight="bold">{title}</text>"#,
        width / 2.0
    );
}

/// Escapes text for XML content and attribute values (shared by every SVG writer).
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plot::svg_check::assert_well_formed;
    use crate::run::report::tests::{metrics, series};

    #[test]
    fn svg_for_one_and_twenty_epochs() {
        for n in [1, 20] {
            let svg = render_svg(&series(n), "quick <start> & \"friends\"");
            assert!(svg.starts_with("<svg"), "{n}");
            assert!(svg.trim_end().ends_with("</svg>"));
            assert_well_formed(&svg);
            for name in ["loss", "accuracy", "coverage"] {
                let group = svg
                    .split(&format!(r#"<g class="series-{name}">"#))
                    .nth(1)
                    .unwrap_or_else(|| panic!("no {name} series"));
                let group = &group[..group.find("</g>").unwrap()];
                assert_eq!(group.matches("<polyline").count(), 1, "{name}");
                assert_eq!(group.matches("<circle").count(), n as usize, "{name}");
            }
            assert!(svg.contains("quick &lt;start&gt; &amp; &quot;friends&quot;"));
            assert!(!svg.contains("<start>"));
            assert!(svg.contains(">mean loss<"));
            assert!(svg.contains(">train acc.<") && svg.contains(">coverage<"));
            assert!(svg.contains(">100%<") && svg.contains(">0%<"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
        let svg = render_svg(&series(20), "t");
        for e in ["1", "5", "10", "20"] {
            assert!(svg.contains(&format!(">{e}</text>")), "x tick {e}");
        }
    }

    #[test]
    fn svg_handles_missing_losses_and_no_epochs() {
        let mut m = series(6);
        m[2].loss = None;
        m[3].loss = None;
        let svg = render_svg(&m, "gaps");
        assert_well_formed(&svg);
        let group = svg.split(r#"<g class="series-loss">"#).nth(1).unwrap();
        let group = &group[..group.find("</g>").unwrap()];
        assert_eq!(group.matches("<polyline").count(), 2);
        assert_eq!(group.matches("<circle").count(), 4);

        for m in [vec![metrics(1, None)], Vec::new()] {
            let svg = render_svg(&m, "");
            assert_well_formed(&svg);
            assert!(svg.contains("no loss recorded"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
        let mut odd = series(3);
        odd[0].loss = Some(f64::NAN);
        odd[1].accuracy = f64::INFINITY;
        let svg = render_svg(&odd, "odd");
        assert_well_formed(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn svg_constant_loss_gets_a_range() {
        let m: Vec<EpochMetrics> = (1..=4).map(|e| metrics(e, Some(0.0))).collect();
        let svg = render_svg(&m, "flat");
        assert_well_formed(&svg);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn nice_ranges() {
        assert_eq!(nice_range(0.0, 1.0), (0.0, 1.0, 0.2));
        let (lo, hi, step) = nice_range(0.37, 2.3);
        assert!(lo <= 0.37 && hi >= 2.3 && step == 0.5, "{lo} {hi} {step}");
        let (lo, hi, _) = nice_range(5.0, 5.0);
        assert!(lo < 5.0 && hi > 5.0);
    }
    fn evaluation(samples_seen: u64, accuracy: f64) -> Evaluation {
        let mut e = crate::state::Tally::new(10).finish(crate::scene::Split::Test, 0.0);
        e.samples_seen = samples_seen;
        e.accuracy = accuracy;
        e.mean_loss = Some(2.0);
        e
    }

    #[test]
    fn held_out_evaluations_sit_at_their_fraction_of_an_epoch() {
        // Epochs of 100 samples: evaluations after 0, 50, 100 and 250 samples sit at epochs
        // 0, 0.5, 1 and 2.5 (by hand); a train-split evaluation is left out.
        let epochs = series(3);
        let mut train_split = evaluation(10, 0.5);
        train_split.split = crate::scene::Split::Train;
        let evals = [
            evaluation(0, 0.1),
            evaluation(50, 0.2),
            evaluation(100, 0.3),
            evaluation(250, 0.4),
            train_split,
        ];
        let points = held_out_points(&epochs, &evals);
        let at: Vec<f64> = points.iter().map(|p| p.epoch).collect();
        assert_eq!(at, [0.0, 0.5, 1.0, 2.5]);
        let svg = render_curves(&epochs, &points, Some(0.1), "t");
        let group = svg
            .split(r#"<g class="series-held-out-accuracy">"#)
            .nth(1)
            .expect("held-out series drawn");
        assert_eq!(
            group[..group.find("</g>").unwrap()]
                .matches("<circle")
                .count(),
            4
        );
        assert!(svg.contains(r#"class="chance""#) && svg.contains(">chance<"));
        // The x axis starts at 0 to show the evaluation before training.
        assert!(svg.contains(">0</text>"));
    }
}

/// A test helper shared by the SVG writers' tests.
#[cfg(test)]
pub(crate) mod svg_check {
    /// Tags nest, attribute quotes balance, no bare `&`, `<` or `>` in text, no NaN or inf.
    pub(crate) fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert_eq!(tag.matches('"').count() % 2, 0, "quotes in <{tag}>");
            assert!(!tag.contains('<'), "stray < in {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "closing </{name}>");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap().to_string());
            }
            let after = &rest[close + 1..];
            let text = &after[..after.find('<').unwrap_or(after.len())];
            assert!(!text.contains('>'), "stray > in text {text:?}");
            for (i, _) in text.match_indices('&') {
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| text[i..].starts_with(e)),
                    "bare & in {text:?}"
                );
            }
            rest = after;
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
