//! The summary of a batch: one row per run and one aggregate per scene × grid point.
//!
//! [`write_summary`] writes, atomically (see [`write_atomic`]), into the batch directory:
//!
//! - `batch-summary.csv` and `batch-summary.jsonl`: one [`RunRow`] per run;
//! - `batch-aggregate.csv` and `batch-aggregate.txt`: one [`Aggregate`] per scene × grid point
//!   (mean and sample standard deviation over the seeds), as CSV and as an aligned text table;
//! - `batch-comparison.svg`: a bar chart of the mean final accuracy per scene × grid point with
//!   ±sd error bars.
//!
//! Statistics are taken over the runs that finished (`Done`, or `Skipped` because an earlier
//! invocation completed them); failed and interrupted runs are counted but contribute no values,
//! and neither do non-finite values.

use crate::run::plot::{svg_open, xml_escape};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::run::report::write_atomic;

/// Name of the per-run CSV table.
pub const SUMMARY_CSV_FILE: &str = "batch-summary.csv";
/// Name of the per-run JSON Lines file.
pub const SUMMARY_JSONL_FILE: &str = "batch-summary.jsonl";
/// Name of the aggregate CSV table.
pub const AGGREGATE_CSV_FILE: &str = "batch-aggregate.csv";
/// Name of the aggregate text table.
pub const AGGREGATE_TXT_FILE: &str = "batch-aggregate.txt";
/// Name of the comparison bar chart.
pub const COMPARISON_SVG_FILE: &str = "batch-comparison.svg";

/// How a run of the batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Ran to completion in this batch invocation.
    Done,
    /// Already complete from an earlier batch invocation; its results were read back.
    Skipped,
    /// Ended with an error (recorded in [`RunRow::error`]).
    Failed,
    /// Stopped by Ctrl-C before finishing (or never started).
    Interrupted,
}

impl RunStatus {
    /// The snake_case name used in the CSV and JSON files.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Skipped => "skipped",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the run has results: `Done` or `Skipped`.
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Done | RunStatus::Skipped)
    }
}

/// One row of `batch-summary.csv` / `batch-summary.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// Position in the full (unsharded) run matrix.
    pub index: usize,
    /// Scene name.
    pub scene: String,
    /// Path of the scene file.
    pub scene_path: String,
    /// The run's seed.
    pub seed: u64,
    /// `(field path, value)` pairs of the grid point, in axis order.
    pub grid: Vec<(String, String)>,
    /// How the run ended.
    pub status: RunStatus,
    /// The error of a failed (or interrupted) run.
    pub error: Option<String>,
    /// The final evaluation's accuracy, a fraction in `[0, 1]`.
    pub accuracy: Option<f64>,
    /// The final evaluation's coverage, a fraction in `[0, 1]`.
    pub coverage: Option<f64>,
    /// The final evaluation's mean loss.
    pub loss: Option<f64>,
    /// The last training epoch's samples per second, else the final evaluation's.
    pub samples_per_second: Option<f64>,
    /// Wall-clock seconds the run took in this invocation.
    pub wall_seconds: f64,
    /// The run's directory.
    pub dir: String,
}

/// Mean and sample standard deviation over the seeds of one scene × grid point, taken over the
/// runs that finished (`Done` or `Skipped`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Scene name.
    pub scene: String,
    /// The grid point: `(field path, value)` pairs in axis order.
    pub grid: Vec<(String, String)>,
    /// Runs of this scene × grid point, whatever their status.
    pub runs: usize,
    /// Runs that finished (`Done` or `Skipped`).
    pub finished: usize,
    /// Runs that failed.
    pub failed: usize,
    /// Mean final accuracy (`None` without values).
    pub accuracy_mean: Option<f64>,
    /// Sample standard deviation of the final accuracy (`None` with fewer than 2 values).
    pub accuracy_sd: Option<f64>,
    /// Mean final coverage.
    pub coverage_mean: Option<f64>,
    /// Mean final loss.
    pub loss_mean: Option<f64>,
    /// Sample standard deviation of the final loss (`None` with fewer than 2 values).
    pub loss_sd: Option<f64>,
    /// Mean samples per second.
    pub samples_per_second_mean: Option<f64>,
}

/// A grid axis's field path and value.
type GridValue = (String, String);

/// Groups the rows by (scene, grid point) in order of first appearance and computes each
/// group's counts, means and sample standard deviations (`None` with fewer than 2 values).
/// Only finished runs with finite values contribute to the statistics.
pub fn aggregate(rows: &[RunRow]) -> Vec<Aggregate> {
    let mut order: Vec<Vec<&RunRow>> = Vec::new();
    let mut index: HashMap<(&str, &[GridValue]), usize> = HashMap::new();
    for row in rows {
        let key = (row.scene.as_str(), row.grid.as_slice());
        let i = *index.entry(key).or_insert_with(|| {
            order.push(Vec::new());
            order.len() - 1
        });
        order[i].push(row);
    }
    order
        .into_iter()
        .map(|group| {
            let first = group[0];
            let finished: Vec<&RunRow> = group
                .iter()
                .copied()
                .filter(|r| r.status.is_finished())
                .collect();
            let values = |f: fn(&RunRow) -> Option<f64>| -> Vec<f64> {
                finished
                    .iter()
                    .filter_map(|r| f(r))
                    .filter(|v| v.is_finite())
                    .collect()
            };
            let accuracy = values(|r| r.accuracy);
            let coverage = values(|r| r.coverage);
            let loss = values(|r| r.loss);
            let speed = values(|r| r.samples_per_second);
            Aggregate {
                scene: first.scene.clone(),
                grid: first.grid.clone(),
                runs: group.len(),
                finished: finished.len(),
                failed: group
                    .iter()
                    .filter(|r| r.status == RunStatus::Failed)
                    .count(),
                accuracy_mean: mean(&accuracy),
                accuracy_sd: sample_sd(&accuracy),
                coverage_mean: mean(&coverage),
                loss_mean: mean(&loss),
                loss_sd: sample_sd(&loss),
                samples_per_second_mean: mean(&speed),
            }
        })
        .collect()
}

fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The sample (n − 1) standard deviation; `None` with fewer than 2 values.
fn sample_sd(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((ss / (values.len() - 1) as f64).sqrt())
}

// ---- CSV and JSON Lines ------------------------------------------------------------------

/// A grid point as `field=value;field=value` (empty for no grid).
fn grid_text(grid: &[(String, String)]) -> String {
    grid.iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// A CSV cell: quoted (with doubled quotes) when it holds a comma, quote or line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A number cell: empty for `None`.
fn num_cell(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The text of `batch-summary.csv`: a header row
/// `index,scene,scene_path,seed,grid,status,error,accuracy,coverage,loss,samples_per_second,wall_seconds,dir`
/// then one row per run. The grid is `field=value;field=value`; text cells holding a comma,
/// quote or line break are quoted (RFC 4180); a missing value is an empty cell.
pub fn rows_csv(rows: &[RunRow]) -> String {
    let mut s = String::from(
        "index,scene,scene_path,seed,grid,status,error,accuracy,coverage,loss,\
         samples_per_second,wall_seconds,dir\n",
    );
    for r in rows {
        let cells = [
            r.index.to_string(),
            csv_cell(&r.scene),
            csv_cell(&r.scene_path),
            r.seed.to_string(),
            csv_cell(&grid_text(&r.grid)),
            r.status.as_str().to_string(),
            csv_cell(r.error.as_deref().unwrap_or("")),
            num_cell(r.accuracy),
            num_cell(r.coverage),
            num_cell(r.loss),
            num_cell(r.samples_per_second),
            r.wall_seconds.to_string(),
            csv_cell(&r.dir),
        ];
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

/// The text of `batch-summary.jsonl`: one JSON object per run, one per line (non-finite
/// numbers become `null`).
pub fn rows_jsonl(rows: &[RunRow]) -> String {
    let mut s = String::new();
    for r in rows {
        // A struct of strings, numbers and options always serializes.
        if let Ok(line) = serde_json::to_string(r) {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}

/// The text of `batch-aggregate.csv`: a header row
/// `scene,grid,runs,finished,failed,accuracy_mean,accuracy_sd,coverage_mean,loss_mean,loss_sd,samples_per_second_mean`
/// then one row per aggregate, quoted and formatted as in [`rows_csv`].
pub fn aggregate_csv(aggs: &[Aggregate]) -> String {
    let mut s = String::from(
        "scene,grid,runs,finished,failed,accuracy_mean,accuracy_sd,coverage_mean,loss_mean,\
         loss_sd,samples_per_second_mean\n",
    );
    for a in aggs {
        let cells = [
            csv_cell(&a.scene),
            csv_cell(&grid_text(&a.grid)),
            a.runs.to_string(),
            a.finished.to_string(),
            a.failed.to_string(),
            num_cell(a.accuracy_mean),
            num_cell(a.accuracy_sd),
            num_cell(a.coverage_mean),
            num_cell(a.loss_mean),
            num_cell(a.loss_sd),
            num_cell(a.samples_per_second_mean),
        ];
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

// ---- Text table --------------------------------------------------------------------------

/// A grid point for people: `field=value, field=value`, or `-` for no grid.
fn grid_label(grid: &[(String, String)]) -> String {
    if grid.is_empty() {
        "-".to_string()
    } else {
        grid.iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn percent(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// `mean ± sd`, `mean`, or `-`.
fn with_sd(mean: Option<f64>, sd: Option<f64>, fmt: fn(f64) -> String) -> String {
    match (mean.filter(|v| v.is_finite()), sd.filter(|v| v.is_finite())) {
        (Some(m), Some(sd)) => format!("{} ± {}", fmt(m), fmt(sd)),
        (Some(m), None) => fmt(m),
        (None, _) => "-".to_string(),
    }
}

/// One line of text for a table cell: line breaks and tabs become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A plain-text table with aligned columns (text left, numbers right), a header and a rule,
/// for terminals and READMEs: scene, grid point, runs, failed, accuracy mean ± sd (percent),
/// coverage (percent), loss mean ± sd, samples/s. Missing values show as `-`.
pub fn aggregate_table(aggs: &[Aggregate]) -> String {
    let header = [
        "scene",
        "grid point",
        "runs",
        "failed",
        "accuracy (mean ± sd)",
        "coverage",
        "loss (mean ± sd)",
        "samples/s",
    ];
    let right = [false, false, true, true, true, true, true, true];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for a in aggs {
        table.push(vec![
            one_line(&a.scene),
            one_line(&grid_label(&a.grid)),
            a.runs.to_string(),
            a.failed.to_string(),
            with_sd(a.accuracy_mean, a.accuracy_sd, percent),
            with_sd(a.coverage_mean, None, |v| format!("{:.1}%", v * 100.0)),
            with_sd(a.loss_mean, a.loss_sd, |v| format!("{v:.4}")),
            with_sd(a.samples_per_second_mean, None, |v| format!("{v:.1}")),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    let push_row = |s: &mut String, row: &[String]| {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            if right[c] {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    };
    push_row(&mut s, &table[0]);
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    push_row(&mut s, &rule);
    for row in &table[1..] {
        push_row(&mut s, row);
    }
    s
}

// ---- SVG bar chart -----------------------------------------------------------------------

const PLOT_TOP: f64 = 60.0;
const PLOT_HEIGHT: f64 = 280.0;
const PLOT_LEFT: f64 = 70.0;
const PLOT_RIGHT_MARGIN: f64 = 30.0;
/// Approximate width of one character of 11 px sans-serif text.
const CHAR_WIDTH: f64 = 6.5;
/// Longest label line drawn horizontally before labels are rotated instead.
const MAX_FLAT_CHARS: usize = 22;
/// Longest rotated label; longer ones lose their middle to an ellipsis (the bar's tooltip has
/// the full label).
const MAX_ROTATED_CHARS: usize = 48;
const ROTATION_DEGREES: f64 = 40.0;
const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// The lines of a bar's label: the scene, then one `field=value` per grid axis, with each
/// field shown as `short(field)`.
/// Pairs in `skip` are left out.
fn label_lines(a: &Aggregate, short: &dyn Fn(&str) -> String, skip: &[&GridValue]) -> Vec<String> {
    let mut lines = vec![one_line(&a.scene)];
    lines.extend(
        a.grid
            .iter()
            .filter(|p| !skip.contains(p))
            .map(|(f, v)| one_line(&format!("{}={v}", short(f)))),
    );
    lines
}

/// The `(field, value)` pairs shared by every aggregate, when there are at least two.
fn common_grid_values(aggs: &[Aggregate]) -> Vec<&GridValue> {
    match aggs {
        [first, rest @ ..] if !rest.is_empty() => first
            .grid
            .iter()
            .filter(|p| rest.iter().all(|a| a.grid.contains(p)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Display names of the grid fields: the last segment of a dotted path when no other field
/// shares it, else the whole path.
fn short_field_names(aggs: &[Aggregate]) -> HashMap<String, String> {
    let last = |f: &str| f.rsplit('.').next().unwrap_or(f).to_string();
    let mut fields: Vec<&str> = aggs
        .iter()
        .flat_map(|a| a.grid.iter().map(|(f, _)| f.as_str()))
        .collect();
    fields.sort_unstable();
    fields.dedup();
    fields
        .iter()
        .map(|&f| {
            let shared = fields.iter().any(|&g| g != f && last(g) == last(f));
            let name = if shared { f.to_string() } else { last(f) };
            (f.to_string(), name)
        })
        .collect()
}

/// Cuts `text` to at most `max` characters by replacing its middle with an ellipsis, so both
/// the scene (at the start) and the last grid values (at the end) stay readable.
fn truncate_middle(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 3;
    let tail = keep - head;
    let mut t: String = chars[..head].iter().collect();
    t.push('…');
    t.extend(&chars[chars.len() - tail..]);
    t
}

/// A value in `[0, 1]` when finite.
fn unit(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite()).map(|v| v.clamp(0.0, 1.0))
}

/// Renders a bar chart comparing the scene × grid points: one `<rect class="bar">` per
/// aggregate with its mean final accuracy on a 0–100% axis (height 0 and a "no result" note
/// when no run finished), ±sd error bars where a standard deviation exists, the value above each
/// bar, and a label under each bar: the scene and grid values (a dotted field path shortened to
/// its last segment when that is unambiguous), one per line when they are short, else rotated
/// on one line and cut in the middle when very long; each bar's tooltip holds the full label. Bars are coloured by
/// scene. `title` and all labels are XML-escaped. The width grows with the number of bars.
pub fn render_comparison_svg(aggs: &[Aggregate], title: &str) -> String {
    // Full labels for the tooltips; labels with short field names under the bars.
    let full: Vec<Vec<String>> = aggs
        .iter()
        .map(|a| label_lines(a, &|f| f.to_string(), &[]))
        .collect();
    let names = short_field_names(aggs);
    let short = |f: &str| names.get(f).cloned().unwrap_or_else(|| f.to_string());
    // Grid values every point shares go in a subtitle instead of under every bar.
    let common = common_grid_values(aggs);
    let labels: Vec<Vec<String>> = aggs
        .iter()
        .map(|a| label_lines(a, &short, &common))
        .collect();
    let longest = labels
        .iter()
        .flatten()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let rotated = longest > MAX_FLAT_CHARS;
    let lines_max = labels.iter().map(Vec::len).max().unwrap_or(1);
    let slot = if rotated {
        44.0
    } else {
        (longest as f64 * CHAR_WIDTH + 12.0).max(52.0)
    };
    let flat_labels: Vec<String> = labels
        .iter()
        .map(|l| truncate_middle(&l.join(" · "), MAX_ROTATED_CHARS))
        .collect();
    let label_height = if rotated {
        let chars = flat_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        chars as f64 * CHAR_WIDTH * ROTATION_DEGREES.to_radians().sin() + 24.0
    } else {
        lines_max as f64 * 14.0 + 12.0
    };
    // Room on the left for the first rotated labels, which reach left of their bars.
    let mut plot_left = PLOT_LEFT;
    if rotated {
        let reach = CHAR_WIDTH * ROTATION_DEGREES.to_radians().cos();
        for (i, label) in flat_labels.iter().enumerate() {
            let needed = label.chars().count() as f64 * reach + 8.0 - slot * (i as f64 + 0.5);
            plot_left = plot_left.max(needed.ceil());
        }
    }
    let plot_bottom = PLOT_TOP + PLOT_HEIGHT;
    let plot_width = slot * aggs.len().max(1) as f64;
    let title_width = title.chars().count() as f64 * 9.0 + 40.0;
    let width = (plot_left + plot_width + PLOT_RIGHT_MARGIN)
        .max(title_width)
        .max(400.0)
        .ceil();
    let height = (plot_bottom + label_height + 10.0).ceil();
    let plot_right = width - PLOT_RIGHT_MARGIN;
    // Centre the bars when the title makes the chart wider than they need.
    let bars_left =
        plot_left + ((plot_right - plot_left) - slot * aggs.len() as f64).max(0.0) / 2.0;
    let py = |v: f64| plot_bottom - v * PLOT_HEIGHT;

    let mut s = String::new();
    svg_open(&mut s, width, height, 11, 28.0, title);
    if !common.is_empty() {
        let text: Vec<String> = common
            .iter()
            .map(|(f, v)| one_line(&format!("{f}={v}")))
            .collect();
        let max_chars = ((width - 40.0) / CHAR_WIDTH) as usize;
        let _ = writeln!(
            s,
            r##"<text class="subtitle" x="{:.1}" y="46" text-anchor="middle" fill="#555555">{}</text>"##,
            width / 2.0,
            xml_escape(&truncate_middle(
                &format!("every point: {}", text.join(", ")),
                max_chars
            ))
        );
    }

    // Axes: horizontal grid lines every 20%, the frame, the y label.
    let _ = writeln!(s, r#"<g class="axes">"#);
    for i in 0..=5 {
        let v = f64::from(i) * 0.2;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{plot_left:.1}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}%</text>"#,
            plot_left - 6.0,
            y + 4.0,
            v * 100.0
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline class="frame" points="{plot_left:.1},{PLOT_TOP:.1} {plot_left:.1},{plot_bottom:.1} {plot_right:.1},{plot_bottom:.1}" fill="none" stroke="#333333"/>"##
    );
    let mid = PLOT_TOP + PLOT_HEIGHT / 2.0;
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 {x:.1} {mid:.1})">mean final accuracy (± sd over seeds)</text>"#,
        x = plot_left - 48.0
    );
    let _ = writeln!(s, "</g>");

    if aggs.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{mid:.1}" text-anchor="middle" fill="#666666">no runs</text>"##,
            (plot_left + plot_right) / 2.0
        );
    }

    // Colours by scene, in order of first appearance.
    let mut scenes: Vec<&str> = Vec::new();
    for a in aggs {
        if !scenes.contains(&a.scene.as_str()) {
            scenes.push(&a.scene);
        }
    }

    let bar_width = (slot * 0.6).min(60.0);
    let _ = writeln!(s, r#"<g class="bars">"#);
    for (i, a) in aggs.iter().enumerate() {
        let cx = bars_left + slot * (i as f64 + 0.5);
        let color_index = scenes.iter().position(|&n| n == a.scene).unwrap_or(0);
        let color = PALETTE[color_index % PALETTE.len()];
        let mean = unit(a.accuracy_mean);
        let value = mean.unwrap_or(0.0);
        let top = py(value);
        let sd = a.accuracy_sd.filter(|v| v.is_finite() && *v >= 0.0);
        let tooltip = {
            let mut t = format!("{}: ", full[i].join(", "));
            match mean {
                Some(m) => {
                    t.push_str(&percent(m));
                    if let Some(sd) = sd {
                        let _ = write!(t, " ± {}", percent(sd));
                    }
                }
                None => t.push_str("no result"),
            }
            let _ = write!(t, " ({} of {} runs finished", a.finished, a.runs);
            if a.failed > 0 {
                let _ = write!(t, ", {} failed", a.failed);
            }
            t.push(')');
            xml_escape(&t)
        };
        let _ = writeln!(
            s,
            r#"<rect class="bar" x="{:.1}" y="{top:.1}" width="{bar_width:.1}" height="{:.1}" fill="{color}"><title>{tooltip}</title></rect>"#,
            cx - bar_width / 2.0,
            plot_bottom - top
        );
        let mut label_y = top - 5.0;
        if let (Some(m), Some(sd)) = (mean, sd) {
            let lo = py((m - sd).clamp(0.0, 1.0));
            let hi = py((m + sd).clamp(0.0, 1.0));
            let cap = bar_width / 4.0;
            let _ = writeln!(
                s,
                r##"<path class="error-bar" d="M{cx:.1},{lo:.1} V{hi:.1} M{:.1},{lo:.1} H{:.1} M{:.1},{hi:.1} H{:.1}" stroke="#222222" stroke-width="1.5" fill="none"/>"##,
                cx - cap,
                cx + cap,
                cx - cap,
                cx + cap
            );
            label_y = label_y.min(hi - 5.0);
        }
        let value_text = match mean {
            Some(m) => format!("{:.1}%", m * 100.0),
            None => "no result".to_string(),
        };
        let _ = writeln!(
            s,
            r##"<text class="value" x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#333333">{value_text}</text>"##,
            label_y.max(PLOT_TOP - 4.0)
        );
        // The label under the bar.
        if rotated {
            let y = plot_bottom + 14.0;
            let _ = writeln!(
                s,
                r#"<text class="label" x="{cx:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-{ROTATION_DEGREES} {cx:.1} {y:.1})">{}</text>"#,
                xml_escape(&flat_labels[i])
            );
        } else {
            let _ = write!(
                s,
                r#"<text class="label" x="{cx:.1}" y="{:.1}" text-anchor="middle">"#,
                plot_bottom + 16.0
            );
            for (k, line) in labels[i].iter().enumerate() {
                let dy = if k == 0 { "0" } else { "14" };
                let _ = write!(
                    s,
                    r#"<tspan x="{cx:.1}" dy="{dy}">{}</tspan>"#,
                    xml_escape(line)
                );
            }
            let _ = writeln!(s, "</text>");
        }
    }
    let _ = writeln!(s, "</g>");
    s.push_str("</svg>\n");
    s
}

// ---- Writing -----------------------------------------------------------------------------

/// Writes `batch-summary.csv`, `batch-summary.jsonl`, `batch-aggregate.csv`,
/// `batch-aggregate.txt` and `batch-comparison.svg` (chart titled `title`) into `dir`, each
/// atomically (creating `dir` if needed), and returns the aggregates.
pub fn write_summary(dir: &Path, rows: &[RunRow], title: &str) -> io::Result<Vec<Aggregate>> {
    let aggs = aggregate(rows);
    write_atomic(&dir.join(SUMMARY_CSV_FILE), rows_csv(rows).as_bytes())?;
    write_atomic(&dir.join(SUMMARY_JSONL_FILE), rows_jsonl(rows).as_bytes())?;
    write_atomic(
        &dir.join(AGGREGATE_CSV_FILE),
        aggregate_csv(&aggs).as_bytes(),
    )?;
    write_atomic(
        &dir.join(AGGREGATE_TXT_FILE),
        aggregate_table(&aggs).as_bytes(),
    )?;
    write_atomic(
        &dir.join(COMPARISON_SVG_FILE),
        render_comparison_svg(&aggs, title).as_bytes(),
    )?;
    Ok(aggs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plot::svg_check::assert_well_formed;
    use std::fs;

    fn row(scene: &str, grid: &[(&str, &str)], seed: u64, accuracy: Option<f64>) -> RunRow {
        RunRow {
            index: seed as usize,
            scene: scene.to_string(),
            scene_path: format!("scenes/{scene}.ron"),
            seed,
            grid: grid
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
            status: RunStatus::Done,
            error: None,
            accuracy,
            coverage: accuracy.map(|_| 0.9),
            loss: accuracy.map(|a| 2.0 - a),
            samples_per_second: Some(100.0 * seed as f64),
            wall_seconds: 1.5,
            dir: format!("out/{scene}-s{seed}"),
        }
    }

    fn failed(mut r: RunRow, error: &str) -> RunRow {
        r.status = RunStatus::Failed;
        r.error = Some(error.to_string());
        r
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    /// A minimal RFC 4180 reader: records of cells.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        cell.push('"');
                    }
                    '"' => quoted = false,
                    c => cell.push(c),
                }
            } else {
                match c {
                    '"' => {
                        assert!(cell.is_empty(), "quote inside an unquoted cell");
                        quoted = true;
                    }
                    ',' => record.push(std::mem::take(&mut cell)),
                    '\n' => {
                        record.push(std::mem::take(&mut cell));
                        records.push(std::mem::take(&mut record));
                    }
                    c => cell.push(c),
                }
            }
        }
        assert!(
            !quoted && cell.is_empty() && record.is_empty(),
            "no final newline"
        );
        records
    }

    #[test]
    fn means_and_sample_sd() {
        let g = [("training.rate", "0.1")];
        let rows = vec![row("a", &g, 1, Some(0.2)), row("a", &g, 2, Some(0.4))];
        let aggs = aggregate(&rows);
        assert_eq!(aggs.len(), 1);
        let a = &aggs[0];
        assert_eq!((a.runs, a.finished, a.failed), (2, 2, 0));
        assert!(close(a.accuracy_mean, 0.3));
        assert!(close(a.accuracy_sd, 0.02f64.sqrt()), "{:?}", a.accuracy_sd);
        assert!(close(a.accuracy_sd, 0.141_421_356_237_309_5));
        assert!(close(a.loss_mean, 1.7));
        assert!(close(a.loss_sd, 0.02f64.sqrt()));
        assert!(close(a.coverage_mean, 0.9));
        assert!(close(a.samples_per_second_mean, 150.0));

        // Three values: 1, 2, 4 → mean 7/3, sd sqrt(((−4/3)² + (−1/3)² + (5/3)²) / 2) = sqrt(7/3).
        let rows: Vec<RunRow> = [0.1, 0.2, 0.4]
            .iter()
            .enumerate()
            .map(|(i, &v)| row("b", &[], i as u64, Some(v)))
            .collect();
        let a = &aggregate(&rows)[0];
        assert!(close(a.accuracy_mean, 0.7 / 3.0));
        assert!(close(a.accuracy_sd, (7.0f64 / 3.0).sqrt() / 10.0));
    }

    #[test]
    fn one_value_has_no_sd_and_no_values_have_no_mean() {
        let rows = vec![row("a", &[], 1, Some(0.5))];
        let a = &aggregate(&rows)[0];
        assert!(close(a.accuracy_mean, 0.5));
        assert_eq!((a.accuracy_sd, a.loss_sd), (None, None));

        let rows = vec![
            failed(row("a", &[], 1, None), "boom"),
            row("a", &[], 2, None),
        ];
        let a = &aggregate(&rows)[0];
        assert_eq!((a.runs, a.finished, a.failed), (2, 1, 1));
        assert_eq!(a.accuracy_mean, None);
        assert_eq!(a.accuracy_sd, None);
        assert_eq!(a.coverage_mean, None);
        assert_eq!(a.loss_mean, None);
        assert!(aggregate(&[]).is_empty());
    }

    #[test]
    fn failed_and_interrupted_runs_are_counted_not_averaged() {
        let mut interrupted = row("a", &[], 4, Some(0.0));
        interrupted.status = RunStatus::Interrupted;
        let mut skipped = row("a", &[], 2, Some(0.6));
        skipped.status = RunStatus::Skipped;
        let mut nan = row("a", &[], 5, Some(f64::NAN));
        nan.loss = Some(f64::INFINITY);
        let rows = vec![
            row("a", &[], 1, Some(0.4)),
            skipped,
            // A failed run that still carries a number must not count.
            failed(row("a", &[], 3, Some(1.0)), "out of memory"),
            interrupted,
            nan,
        ];
        let a = &aggregate(&rows)[0];
        assert_eq!((a.runs, a.finished, a.failed), (5, 3, 1));
        assert!(close(a.accuracy_mean, 0.5));
        assert!(close(a.accuracy_sd, 0.02f64.sqrt()));
        assert!(close(a.loss_mean, 1.5));
    }

    #[test]
    fn groups_in_first_appearance_order() {
        let g1 = [("f", "1")];
        let g2 = [("f", "2")];
        let rows = vec![
            row("zeta", &g2, 1, Some(0.1)),
            row("alpha", &g1, 1, Some(0.2)),
            row("zeta", &g1, 1, Some(0.3)),
            row("alpha", &g1, 2, Some(0.4)),
            row("zeta", &g2, 2, Some(0.5)),
            row("alpha", &[("f", "1"), ("g", "x")], 1, Some(0.6)),
        ];
        let aggs = aggregate(&rows);
        let keys: Vec<(String, String, usize)> = aggs
            .iter()
            .map(|a| (a.scene.clone(), grid_text(&a.grid), a.runs))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("zeta".into(), "f=2".into(), 2),
                ("alpha".into(), "f=1".into(), 2),
                ("zeta".into(), "f=1".into(), 1),
                ("alpha".into(), "f=1;g=x".into(), 1),
            ]
        );
        assert!(close(aggs[0].accuracy_mean, 0.3));
        assert!(close(aggs[1].accuracy_mean, 0.3));
    }

    #[test]
    fn rows_csv_quotes_and_round_trips() {
        let nasty = "bad value, \"quoted\"\nsecond line";
        let rows = vec![
            row(
                "quick",
                &[("model.k", "4"), ("train.lr", "(1,2)")],
                7,
                Some(0.25),
            ),
            failed(row("odd,name", &[], 8, None), nasty),
        ];
        let text = rows_csv(&rows);
        let records = parse_csv(&text);
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].join(","),
            "index,scene,scene_path,seed,grid,status,error,accuracy,coverage,loss,\
             samples_per_second,wall_seconds,dir"
        );
        assert!(records.iter().all(|r| r.len() == 13));
        assert_eq!(
            records[1],
            [
                "7",
                "quick",
                "scenes/quick.ron",
                "7",
                "model.k=4;train.lr=(1,2)",
                "done",
                "",
                "0.25",
                "0.9",
                "1.75",
                "700",
                "1.5",
                "out/quick-s7"
            ]
        );
        assert_eq!(records[2][1], "odd,name");
        assert_eq!(records[2][5], "failed");
        assert_eq!(records[2][6], nasty);
        assert_eq!(records[2][7..10], ["", "", ""]);
        assert!(text.contains("\"bad value, \"\"quoted\"\"\nsecond line\""));
        assert!(text.contains(",\"model.k=4;train.lr=(1,2)\","));
    }

    #[test]
    fn jsonl_round_trip() {
        let rows = vec![
            row("quick", &[("model.k", "4")], 7, Some(0.25)),
            failed(row("b", &[], 8, None), "line\nbreak, \"q\""),
        ];
        let text = rows_jsonl(&rows);
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        let back: Vec<RunRow> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, rows);
        assert!(text.contains(r#""status":"failed""#));
        assert!(text.contains(r#""grid":[["model.k","4"]]"#));
        assert!(text.contains(r#""accuracy":null"#));
        assert_eq!(rows_jsonl(&[]), "");
        let status: RunStatus = serde_json::from_str("\"interrupted\"").unwrap();
        assert_eq!(status, RunStatus::Interrupted);
    }

    #[test]
    fn aggregate_csv_content() {
        let rows = vec![
            row("a", &[("x", "1,2")], 1, Some(0.2)),
            row("a", &[("x", "1,2")], 2, Some(0.4)),
            failed(row("b", &[], 1, None), "e"),
        ];
        let records = parse_csv(&aggregate_csv(&aggregate(&rows)));
        assert_eq!(
            records[0].join(","),
            "scene,grid,runs,finished,failed,accuracy_mean,accuracy_sd,coverage_mean,\
             loss_mean,loss_sd,samples_per_second_mean"
        );
        assert_eq!(records.len(), 3);
        assert_eq!(records[1][..5], ["a", "x=1,2", "2", "2", "0"]);
        let sd: f64 = records[1][6].parse().unwrap();
        assert!((sd - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!(records[2], ["b", "", "1", "0", "1", "", "", "", "", "", ""]);
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![
            row("quickstart", &[("model.k", "4")], 1, Some(0.2)),
            row("quickstart", &[("model.k", "4")], 2, Some(0.4)),
            row("b", &[], 1, Some(0.5)),
            failed(row("c", &[], 1, None), "e"),
        ];
        let table = aggregate_table(&aggregate(&rows));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[0].starts_with("scene"));
        assert!(lines[0].contains("grid point") && lines[0].contains("samples/s"));
        assert!(lines[1].chars().all(|c| c == '-' || c == ' '));
        assert!(lines[2].contains("model.k=4"));
        assert!(lines[2].contains("30.00% ± 14.14%"), "{table}");
        assert!(lines[2].contains("1.7000 ± 0.1414"), "{table}");
        assert!(lines[3].contains("50.00%") && !lines[3].contains('±'));
        assert!(lines[4].contains(" -"));
        // The right-aligned last column ends every line at the same character.
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
        // Columns start where the header's do.
        let col = lines[0].find("runs").unwrap();
        let rule_col: usize = lines[1][..col].len();
        assert_eq!(&lines[1][rule_col - 2..rule_col], "  ");
        // Nothing but a header and a rule for no aggregates.
        assert_eq!(aggregate_table(&[]).lines().count(), 2);
    }

    fn bars(svg: &str) -> usize {
        svg.matches(r#"<rect class="bar""#).count()
    }

    #[test]
    fn svg_one_point_escapes_and_error_bars() {
        let rows = vec![
            row("q<&>", &[("f", "\"x\"")], 1, Some(0.2)),
            row("q<&>", &[("f", "\"x\"")], 2, Some(0.4)),
        ];
        let svg = render_comparison_svg(&aggregate(&rows), "batch <1> & \"two\"");
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_well_formed(&svg);
        assert_eq!(bars(&svg), 1);
        assert_eq!(svg.matches(r#"class="error-bar""#).count(), 1);
        assert!(svg.contains("batch &lt;1&gt; &amp; &quot;two&quot;"));
        assert!(svg.contains(">q&lt;&amp;&gt;<"));
        assert!(svg.contains("f=&quot;x&quot;"));
        assert!(svg.contains(">30.0%<"));
        assert!(svg.contains(">100%<") && svg.contains(">0%<"));
        // The bar's height is 30% of the plot.
        assert!(svg.contains(&format!(r#"height="{:.1}""#, 0.3 * PLOT_HEIGHT)));
    }

    #[test]
    fn svg_without_finished_runs() {
        let rows = vec![
            failed(row("a", &[], 1, None), "x"),
            failed(row("b", &[], 1, None), "y"),
        ];
        let svg = render_comparison_svg(&aggregate(&rows), "t");
        assert_well_formed(&svg);
        assert_eq!(bars(&svg), 2);
        assert!(svg.contains(r#"height="0.0""#));
        assert!(svg.contains("no result"));
        assert!(!svg.contains("error-bar"));

        let svg = render_comparison_svg(&[], "empty");
        assert_well_formed(&svg);
        assert_eq!(bars(&svg), 0);
        assert!(svg.contains(">no runs<"));
    }

    #[test]
    fn svg_twenty_points_with_long_labels() {
        let mut rows = Vec::new();
        for i in 0..20u64 {
            let v = format!("[{i}, 0.5, 0.25, 0.125, 0.0625, 0.03125]");
            let grid = [
                ("training.learning_rate_schedule.initial", v.as_str()),
                ("model.k", "8"),
            ];
            for seed in 0..3 {
                let acc = (i as f64 * 0.05 + seed as f64 * 0.01).min(1.2);
                rows.push(row(
                    if i < 10 { "quickstart" } else { "other" },
                    &grid,
                    seed,
                    Some(acc),
                ));
            }
        }
        let aggs = aggregate(&rows);
        assert_eq!(aggs.len(), 20);
        let svg = render_comparison_svg(&aggs, "twenty");
        assert_well_formed(&svg);
        assert_eq!(bars(&svg), 20);
        assert_eq!(svg.matches(r#"class="error-bar""#).count(), 20);
        assert_eq!(svg.matches(r#"<text class="label""#).count(), 20);
        // Long labels are rotated and cut, with the full label in the tooltip.
        assert!(svg.contains("rotate(-40"));
        assert!(svg.contains('…'));
        assert!(svg.contains(
            "training.learning_rate_schedule.initial=[19, 0.5, 0.25, 0.125, 0.0625, 0.03125], \
             model.k=8"
        ));
        // Under the bar: the short field name and the end of the label survive the cut.
        for label in svg.split(r#"<text class="label""#).skip(1) {
            let text = &label[label.find('>').unwrap() + 1..label.find("</text>").unwrap()];
            assert!(text.chars().count() <= MAX_ROTATED_CHARS, "{text}");
            assert!(text.starts_with("quickstart · in") || text.starts_with("other · in"));
            assert!(text.contains('…') && text.ends_with("0.03125]"), "{text}");
        }
        // model.k=8 is shared by every point: it is said once, above the bars.
        assert!(svg.contains(r##"fill="#555555">every point: model.k=8</text>"##));
        // The first rotated label fits: the plot is shifted right to make room.
        let frame = svg.split(r#"class="frame" points=""#).nth(1).unwrap();
        let left: f64 = frame[..frame.find(',').unwrap()].parse().unwrap();
        let first = svg.split(r#"<text class="label" x=""#).nth(1).unwrap();
        let cx: f64 = first[..first.find('"').unwrap()].parse().unwrap();
        let label = &first[first.find('>').unwrap() + 1..first.find("</text>").unwrap()];
        let reach = label.chars().count() as f64 * CHAR_WIDTH * 40f64.to_radians().cos();
        assert!(cx - reach >= 0.0, "{cx} {reach} {left}");
        // Accuracies above 1 are clamped to the axis.
        let heights: Vec<f64> = svg
            .split(r#"<rect class="bar""#)
            .skip(1)
            .map(|r| {
                let h = r.split(r#"height=""#).nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(heights.iter().all(|&h| (0.0..=PLOT_HEIGHT).contains(&h)));
        assert!(heights.windows(2).all(|w| w[0] <= w[1]));
        // Two scenes, two colours.
        assert!(svg.contains(PALETTE[0]) && svg.contains(PALETTE[1]));
    }

    #[test]
    fn short_field_names_only_when_unambiguous() {
        let rows = vec![
            row("a", &[("training.rate", "1"), ("model.rate", "2")], 1, None),
            row(
                "a",
                &[("model.k", "1"), ("k", "2"), ("x.y.z", "3")],
                1,
                None,
            ),
        ];
        let names = short_field_names(&aggregate(&rows));
        assert_eq!(names["training.rate"], "training.rate");
        assert_eq!(names["model.rate"], "model.rate");
        assert_eq!(names["model.k"], "model.k");
        assert_eq!(names["k"], "k");
        assert_eq!(names["x.y.z"], "z");
        assert_eq!(truncate_middle("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate_middle("abcdefghijk", 10), "abc…fghijk");
    }

    #[test]
    fn svg_short_labels_are_wrapped() {
        let rows = vec![
            row("a", &[("model.k", "4"), ("lr", "0.1")], 1, Some(0.5)),
            row("a", &[("model.k", "8"), ("lr", "0.1")], 1, Some(0.6)),
        ];
        let svg = render_comparison_svg(&aggregate(&rows), "t");
        assert_well_formed(&svg);
        assert!(!svg.contains("rotate(-40"));
        assert_eq!(svg.matches("<tspan").count(), 4);
        assert!(svg.contains(">k=8</tspan>"));
        assert!(svg.contains("every point: lr=0.1"));
        assert!(!svg.contains(">lr=0.1</tspan>"));
        assert!(svg.contains("<title>a, model.k=8, lr=0.1: 60.00% (1 of 1 runs finished)</title>"));
    }

    #[test]
    fn write_summary_writes_five_files_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("batch");
        let rows = vec![
            row("a", &[("k", "4")], 1, Some(0.2)),
            row("a", &[("k", "4")], 2, Some(0.4)),
            failed(row("b", &[], 1, None), "bad, \"scene\"\n"),
        ];
        let aggs = write_summary(&out, &rows, "title").unwrap();
        assert_eq!(aggs, aggregate(&rows));
        // Rewriting (as after every run of a batch) replaces the files.
        let aggs = write_summary(&out, &rows[..2], "title").unwrap();
        assert_eq!(aggs.len(), 1);
        let mut names: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                AGGREGATE_CSV_FILE,
                AGGREGATE_TXT_FILE,
                COMPARISON_SVG_FILE,
                SUMMARY_CSV_FILE,
                SUMMARY_JSONL_FILE
            ]
        );
        let read = |name: &str| fs::read_to_string(out.join(name)).unwrap();
        assert_eq!(read(SUMMARY_CSV_FILE), rows_csv(&rows[..2]));
        assert_eq!(read(SUMMARY_JSONL_FILE), rows_jsonl(&rows[..2]));
        assert_eq!(read(AGGREGATE_CSV_FILE), aggregate_csv(&aggs));
        assert_eq!(read(AGGREGATE_TXT_FILE), aggregate_table(&aggs));
        assert_eq!(
            read(COMPARISON_SVG_FILE),
            render_comparison_svg(&aggs, "title")
        );
    }
}
