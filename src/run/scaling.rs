//! `neurograph experiment scaling` ([`ScalingArgs::run`]): the same scene at growing node
//! counts, with the exact phase index and with the dense integer kernel, reporting time per
//! pass, per timestep and per stage, memory, and nodes scored per source, with a log-log plot
//! and the fitted exponent of time per pass against nodes.
//!
//! Every point runs in its own process (`neurograph bench --json`), so each point's memory
//! peak is its own and a point that runs out of memory cannot take the others with it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::experiment::ExperimentError;
use super::plot::{svg_open, xml_escape};
use super::{BenchReport, progress_bar};

/// The arguments of `neurograph experiment scaling` (a clap [`Args`](clap::Args) group: the
/// field docs are the command's help text).
#[derive(Clone, Debug, clap::Args)]
pub struct ScalingArgs {
    /// The scene to scale: its `architecture.total_nodes` is set to each `--nodes` count and
    /// its `radiation.backend` to each kernel (everything else as written).
    #[arg(default_value = "scenes/scale-10k.ron")]
    pub scene: PathBuf,
    /// Override a scene field for every point, e.g. `--set schedule.threads=1` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Node counts, each in 3 ..= 1 000 000.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,3000,10000,100000,1000000"
    )]
    pub nodes: Vec<u32>,
    /// The largest node count the dense kernel runs at: it scores every node for every source,
    /// so its passes grow with the square of the nodes (hours at 1 000 000).
    #[arg(long, default_value_t = 100_000)]
    pub dense_max: u32,
    /// Timed forward passes per point (test split, cycled), 1 ..= 1000.
    #[arg(long, default_value_t = 2,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u16).range(1..=1000), usize::from))]
    pub samples: usize,
    /// Untimed warm-up passes per point.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Directory for `scaling.json` and `scaling.svg` (written atomically).
    #[arg(long, value_name = "DIR", default_value = "runs/scaling")]
    pub out: PathBuf,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// The two kernels compared.
const KERNELS: [(&str, &str); 2] = [("index", "Index"), ("dense", "Int16")];

/// One point: a node count and a kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Nodes of the graph.
    pub nodes: u32,
    /// `index` or `dense`.
    pub kernel: String,
    /// The kernel as the bench named it (`index`, `int16 AVX2`, ...).
    pub backend: String,
    /// Wall seconds per forward pass.
    pub seconds_per_pass: f64,
    /// Wall milliseconds per timestep.
    pub ms_per_timestep: f64,
    /// Mean timesteps per pass.
    pub timesteps_per_pass: f64,
    /// Mean active nodes per timestep (the sources radiation answers).
    pub active_per_timestep: f64,
    /// Milliseconds per pass per stage (the stage clock: wall time of each stage's systems).
    pub stage_ms: BTreeMap<String, f64>,
    /// Nodes scored per source.
    pub scored_per_source: Option<f64>,
    /// Heap bytes of the world, as measured when it was built.
    pub world_bytes: Option<u64>,
    /// Heap bytes of the world per node.
    pub bytes_per_node: Option<f64>,
    /// Peak resident set of the point's process.
    pub resident_peak_bytes: Option<u64>,
    /// The scene's memory estimate (what the 16 GiB guard checks).
    pub estimate_bytes: u64,
}

/// A kernel's fitted power law, seconds per pass ∝ nodes^exponent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// `index` or `dense`.
    pub kernel: String,
    /// The least-squares slope of ln(seconds per pass) on ln(nodes).
    pub exponent: f64,
    /// The smallest and largest node count fitted.
    pub range: (u32, u32),
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The scene file.
    pub scene: String,
    /// Cores of this machine.
    pub cores: usize,
    /// Timed passes per point.
    pub samples: usize,
    /// Every point, by node count, index first.
    pub points: Vec<Point>,
    /// Fits over the points with at least 10 000 nodes (all points if fewer than two).
    pub fits: Vec<Fit>,
}

/// Least-squares slope of ln y on ln x; `None` with fewer than two distinct x.
pub fn fit_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|&(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = logs.len() as f64;
    let mx = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (logs.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

/// The fit of one kernel's points: those with at least 10 000 nodes, or all if fewer than two.
fn fit(kernel: &str, points: &[Point]) -> Option<Fit> {
    let mine: Vec<&Point> = points.iter().filter(|p| p.kernel == kernel).collect();
    let large: Vec<&Point> = mine.iter().copied().filter(|p| p.nodes >= 10_000).collect();
    let used = if large.len() >= 2 { large } else { mine };
    let xy: Vec<(f64, f64)> = used
        .iter()
        .map(|p| (f64::from(p.nodes), p.seconds_per_pass))
        .collect();
    Some(Fit {
        kernel: kernel.to_string(),
        exponent: fit_exponent(&xy)?,
        range: (
            used.iter().map(|p| p.nodes).min()?,
            used.iter().map(|p| p.nodes).max()?,
        ),
    })
}

impl ScalingArgs {
    /// Checks the arguments and the scene at every node count, runs every point as a process
    /// of `exe` (the `neurograph` binary) with a progress bar (none with `json`), and writes
    /// `scaling.json` and `scaling.svg` into `out`.
    pub fn run(&self, exe: &Path) -> Result<Report, ExperimentError> {
        if self.nodes.is_empty() {
            return Err(ExperimentError::Arguments);
        }
        let base = crate::scene::load(&self.scene)
            .and_then(|mut s| s.apply_sets(&self.sets).map(|()| s))
            .map_err(ExperimentError::Scene)?;
        let mut nodes = self.nodes.clone();
        nodes.sort_unstable();
        nodes.dedup();
        // Every node count must make a valid scene (range, memory guard) before anything runs.
        for &n in &nodes {
            let mut s = base.clone();
            s.apply_sets(&[format!("architecture.total_nodes={n}")])
                .map_err(ExperimentError::Scene)?;
        }
        let plan: Vec<(u32, &str, &str)> = nodes
            .iter()
            .flat_map(|&n| KERNELS.iter().map(move |&(k, choice)| (n, k, choice)))
            .filter(|&(n, k, _)| k != "dense" || n <= self.dense_max)
            .collect();
        let bar = progress_bar(plan.len() as u64, "scaling", self.json);
        let mut points = Vec::new();
        for (n, kernel, choice) in plan {
            bar.set_message(format!("{n} nodes, {kernel}"));
            let report = self.bench(exe, n, choice).map_err(ExperimentError::Bench)?;
            points.push(point(n, kernel, &report));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let fits = KERNELS
            .iter()
            .filter_map(|(k, _)| fit(k, &points))
            .collect();
        let report = Report {
            scene: self.scene.display().to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            samples: self.samples,
            points,
            fits,
        };
        let write = |path: PathBuf, bytes: &[u8]| {
            crate::atomic::write(&path, bytes).map_err(|source| ExperimentError::Write {
                path: path.display().to_string(),
                source,
            })
        };
        std::fs::create_dir_all(&self.out).map_err(|source| ExperimentError::Write {
            path: self.out.display().to_string(),
            source,
        })?;
        let text = serde_json::to_string_pretty(&report).expect("the report serialises");
        write(self.out.join("scaling.json"), text.as_bytes())?;
        write(self.out.join("scaling.svg"), render_svg(&report).as_bytes())?;
        Ok(report)
    }

    /// One point's bench, in its own process.
    fn bench(&self, exe: &Path, nodes: u32, choice: &str) -> Result<BenchReport, String> {
        let mut cmd = Command::new(exe);
        cmd.arg("bench")
            .arg(&self.scene)
            .arg("--json")
            .args(["--samples", &self.samples.to_string()])
            .args(["--warmup", &self.warmup.to_string()]);
        for set in &self.sets {
            cmd.args(["--set", set]);
        }
        cmd.args(["--set", &format!("architecture.total_nodes={nodes}")])
            .args(["--set", &format!("radiation.backend={choice}")]);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let what = format!("{nodes} nodes, radiation.backend={choice}");
        if !out.status.success() {
            return Err(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or(""))
            .map_err(|e| format!("{what}: unreadable bench output: {e}"))
    }
}

/// A point from its bench report.
fn point(nodes: u32, kernel: &str, r: &BenchReport) -> Point {
    let passes = r.samples.max(1) as f64;
    let world_bytes = r
        .memory
        .owners
        .iter()
        .find(|(owner, _)| owner == "primary world")
        .and_then(|(_, b)| *b);
    Point {
        nodes,
        kernel: kernel.to_string(),
        backend: r.radiation.backend.clone(),
        seconds_per_pass: r.seconds / passes,
        ms_per_timestep: 1e3 * r.seconds / (r.timesteps.max(1) as f64),
        timesteps_per_pass: r.mean_timesteps,
        active_per_timestep: r.mean_active_nodes,
        stage_ms: r
            .stage_seconds
            .iter()
            .filter(|&(_, &s)| s > 0.0)
            .map(|(k, &s)| (k.clone(), 1e3 * s / passes))
            .collect(),
        scored_per_source: r.radiation.scored_per_source,
        world_bytes,
        bytes_per_node: world_bytes.map(|b| b as f64 / f64::from(nodes)),
        resident_peak_bytes: r.memory.resident_peak_bytes,
        estimate_bytes: r.memory.estimate_bytes,
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = |v: Option<u64>| v.map_or("-".to_string(), crate::scene::format_bytes);
        writeln!(
            f,
            "scaling {}  {} timed pass(es) per point  {} core(s)",
            self.scene, self.samples, self.cores
        )?;
        writeln!(
            f,
            "{:>9} {:<7} {:>10} {:>11} {:>9} {:>10} {:>10} {:>13} {:>9} {:>10}",
            "nodes",
            "kernel",
            "s/pass",
            "ms/timestep",
            "active",
            "radiation",
            "forward",
            "scored/source",
            "B/node",
            "peak RSS"
        )?;
        for p in &self.points {
            let stage = |s: &str| p.stage_ms.get(s).map_or(0.0, |ms| ms / 1e3);
            writeln!(
                f,
                "{:>9} {:<7} {:>10.4} {:>11.3} {:>9.0} {:>9.3}s {:>9.3}s {:>13} {:>9} {:>10}",
                p.nodes,
                p.kernel,
                p.seconds_per_pass,
                p.ms_per_timestep,
                p.active_per_timestep,
                stage("radiation"),
                stage("forward"),
                p.scored_per_source
                    .map_or("-".to_string(), |s| format!("{s:.0}")),
                p.bytes_per_node
                    .map_or("-".to_string(), |b| format!("{b:.0}")),
                b(p.resident_peak_bytes),
            )?;
        }
        writeln!(
            f,
            "(radiation and forward: wall time of the stage per pass)"
        )?;
        for fit in &self.fits {
            writeln!(
                f,
                "{}: seconds per pass ∝ nodes^{:.3} ({} ..= {} nodes)",
                fit.kernel, fit.exponent, fit.range.0, fit.range.1
            )?;
        }
        Ok(())
    }
}

/// Colour of a kernel's series.
fn color(kernel: &str) -> &'static str {
    if kernel == "index" {
        "#1f77b4"
    } else {
        "#d62728"
    }
}

/// The log-log plot of seconds per pass against nodes, a series per kernel with its fitted
/// line (dashed) and exponent in the legend.
pub fn render_svg(report: &Report) -> String {
    let (w, h) = (720.0, 460.0);
    let (left, right, top, bottom) = (80.0, 690.0, 60.0, 390.0);
    let mut s = String::new();
    svg_open(
        &mut s,
        w,
        h,
        12,
        28.0,
        "Time per forward pass against graph size (log-log)",
    );
    let xs: Vec<f64> = report.points.iter().map(|p| f64::from(p.nodes)).collect();
    let ys: Vec<f64> = report
        .points
        .iter()
        .map(|p| p.seconds_per_pass.max(1e-6))
        .collect();
    if xs.is_empty() {
        s.push_str("</svg>\n");
        return s;
    }
    let decade = |v: f64, up: bool| {
        let l = v.log10();
        if up { l.ceil() } else { l.floor() }
    };
    let (x0, x1) = (
        decade(xs.iter().copied().fold(f64::INFINITY, f64::min), false),
        decade(xs.iter().copied().fold(0.0, f64::max), true).max(1.0),
    );
    let (y0, y1) = (
        decade(ys.iter().copied().fold(f64::INFINITY, f64::min), false),
        decade(ys.iter().copied().fold(0.0, f64::max), true),
    );
    let (x1, y1) = (x1.max(x0 + 1.0), y1.max(y0 + 1.0));
    let px = |x: f64| left + (x.log10() - x0) / (x1 - x0) * (right - left);
    let py = |y: f64| bottom - (y.max(1e-6).log10() - y0) / (y1 - y0) * (bottom - top);
    // Axes, decade grid lines and labels.
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        right - left,
        bottom - top
    );
    for e in x0 as i32..=x1 as i32 {
        let x = px(10f64.powi(e));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">1e{e}</text>"##,
            bottom + 16.0
        );
    }
    for e in y0 as i32..=y1 as i32 {
        let y = py(10f64.powi(e));
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">1e{e} s</text>"##,
            left - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">nodes</text>"#,
        (left + right) / 2.0,
        bottom + 36.0
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">seconds per pass</text>"#,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    let mut legend = 0.0;
    for (kernel, _) in KERNELS {
        let pts: Vec<&Point> = report
            .points
            .iter()
            .filter(|p| p.kernel == kernel)
            .collect();
        if pts.is_empty() {
            continue;
        }
        let c = color(kernel);
        let path: Vec<String> = pts
            .iter()
            .map(|p| {
                format!(
                    "{:.1},{:.1}",
                    px(f64::from(p.nodes)),
                    py(p.seconds_per_pass)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for p in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"><title>{} nodes, {}: {:.4} s per pass</title></circle>"#,
                px(f64::from(p.nodes)),
                py(p.seconds_per_pass),
                p.nodes,
                xml_escape(&p.backend),
                p.seconds_per_pass
            );
        }
        let fit = report.fits.iter().find(|f| f.kernel == kernel);
        if let Some(fit) = fit {
            // The fitted line through the fitted points' geometric mean.
            let used: Vec<&&Point> = pts
                .iter()
                .filter(|p| (fit.range.0..=fit.range.1).contains(&p.nodes))
                .collect();
            let n = used.len() as f64;
            let mx = used.iter().map(|p| f64::from(p.nodes).ln()).sum::<f64>() / n;
            let my = used.iter().map(|p| p.seconds_per_pass.ln()).sum::<f64>() / n;
            let at = |x: f64| (my + fit.exponent * (x.ln() - mx)).exp();
            let (a, b) = (f64::from(fit.range.0), f64::from(fit.range.1));
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-dasharray="6 4" stroke-width="1.5"/>"#,
                px(a),
                py(at(a)),
                px(b),
                py(at(b))
            );
        }
        let name = if pts[0].backend == kernel {
            kernel.to_string()
        } else {
            format!("{kernel} ({})", pts[0].backend)
        };
        let label = match fit {
            Some(f) => format!(
                "{name}: fitted exponent {:.2} over {}..{} nodes",
                f.exponent, f.range.0, f.range.1
            ),
            None => name,
        };
        let y = top + 16.0 + legend;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{c}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            left + 10.0,
            left + 34.0,
            left + 40.0,
            y + 4.0,
            xml_escape(&label)
        );
        legend += 18.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">dashed: least-squares power law; the dense kernel stops at --dense-max</text>"##,
        w / 2.0,
        h - 20.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_exponent_of_exact_power_laws() {
        // y = 3 x^1.5 and y = 2 x: slopes 1.5 and 1, by construction.
        let p: Vec<(f64, f64)> = [1e3, 1e4, 1e5, 1e6]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.powf(1.5)))
            .collect();
        assert!((fit_exponent(&p).unwrap() - 1.5).abs() < 1e-12);
        let q = [(10.0, 20.0), (1000.0, 2000.0)];
        assert!((fit_exponent(&q).unwrap() - 1.0).abs() < 1e-12);
        // One point, or one distinct x, fits nothing.
        assert_eq!(fit_exponent(&[(10.0, 1.0)]), None);
        assert_eq!(fit_exponent(&[(10.0, 1.0), (10.0, 2.0)]), None);
    }

    #[test]
    fn fit_uses_the_points_from_ten_thousand_nodes() {
        // Below 10 000 nodes the time is flat (overheads), above it linear: the fit sees the
        // linear part only.
        let pt = |nodes: u32, s: f64| Point {
            nodes,
            kernel: "index".into(),
            backend: "index".into(),
            seconds_per_pass: s,
            ms_per_timestep: 0.0,
            timesteps_per_pass: 5.0,
            active_per_timestep: 0.0,
            stage_ms: BTreeMap::new(),
            scored_per_source: None,
            world_bytes: None,
            bytes_per_node: None,
            resident_peak_bytes: None,
            estimate_bytes: 0,
        };
        let points = vec![
            pt(1000, 1.0),
            pt(10_000, 1.0),
            pt(100_000, 10.0),
            pt(1_000_000, 100.0),
        ];
        let f = fit("index", &points).unwrap();
        assert!((f.exponent - 1.0).abs() < 1e-12);
        assert_eq!(f.range, (10_000, 1_000_000));
        // The plot is well-formed and names the exponent.
        let report = Report {
            scene: "s".into(),
            cores: 2,
            samples: 1,
            points,
            fits: vec![f],
        };
        let svg = render_svg(&report);
        assert!(svg.contains("fitted exponent 1.00"));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
