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

use std::collections::HashMap;
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
/// Held-out accuracy over epochs across seeds (see [`super::curves`]).
pub const CURVES_SVG_FILE: &str = "batch-curves.svg";

/// How a run of the batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Ran to completion in this batch invocation.
    Done,
    /// Already complete from an earlier batch invocation with the same inputs (see
    /// [`crate::run::outdir::inputs_hash`]); its results were read back.
    Skipped,
    /// Complete from an earlier invocation, but its inputs have changed since (the scene was
    /// edited, another version ran it): run again now, replacing the old results.
    Rerun,
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
            RunStatus::Rerun => "rerun",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the run has results: `Done` or `Skipped`.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Done | RunStatus::Skipped | RunStatus::Rerun
        )
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
    /// Scene name; `name (path)` when two scene files of the batch share the name.
    pub scene: String,
    /// The scene file.
    #[serde(default)]
    pub scene_path: String,
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
pub(super) type GridValue = (String, String);

/// Groups the rows by (scene file, grid point) in order of first appearance (two scene files
/// with one `name` are two groups, labelled with their paths) and computes each
/// group's counts, means and sample standard deviations (`None` with fewer than 2 values).
/// Only finished runs with finite values contribute to the statistics.
pub fn aggregate(rows: &[RunRow]) -> Vec<Aggregate> {
    let mut order: Vec<Vec<&RunRow>> = Vec::new();
    let mut index: HashMap<(&str, &[GridValue]), usize> = HashMap::new();
    let mut paths_of: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for row in rows {
        paths_of
            .entry(row.scene.as_str())
            .or_default()
            .insert(row.scene_path.as_str());
        let key = (row.scene_path.as_str(), row.grid.as_slice());
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
            let shared = paths_of
                .get(first.scene.as_str())
                .is_some_and(|p| p.len() > 1);
            Aggregate {
                scene: if shared {
                    format!("{} ({})", first.scene, first.scene_path)
                } else {
                    first.scene.clone()
                },
                scene_path: first.scene_path.clone(),
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

pub(super) fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The sample (n − 1) standard deviation; `None` with fewer than 2 values.
pub(super) fn sample_sd(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((ss / (values.len() - 1) as f64).sqrt())
}

// ---- CSV and JSON Lines ------------------------------------------------------------------

/// A grid point as `field=value;field=value` (empty for no grid).
pub(super) fn grid_text(grid: &[(String, String)]) -> String {
    grid.iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// A CSV cell: quoted (with doubled quotes) when it holds a comma, quote or line break.
pub(super) fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A number cell: empty for `None`.
pub(super) fn num_cell(value: Option<f64>) -> String {
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
pub(super) fn grid_label(grid: &[(String, String)]) -> String {
    if grid.is_empty() {
        "-".to_string()
    } else {
        grid.iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) fn percent(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// `mean ± sd`, `mean`, or `-`.
pub(super) fn with_sd(mean: Option<f64>, sd: Option<f64>, fmt: fn(f64) -> String) -> String {
    match (mean.filter(|v| v.is_finite()), sd.filter(|v| v.is_finite())) {
        (Some(m), Some(sd)) => format!("{} ± {}", fmt(m), fmt(sd)),
        (Some(m), None) => fmt(m),
        (None, _) => "-".to_string(),
    }
}

/// One line of text for a table cell: line breaks and tabs become spaces.
pub(super) fn one_line(text: &str) -> String {
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
    let (groups, chance) =
        super::curves::group(rows, |r| super::curves::read_run(Path::new(&r.dir)));
    let curves_title = "batch: held-out accuracy over epochs (mean and min-max over seeds)";
    write_atomic(
        &dir.join(CURVES_SVG_FILE),
        super::curves::render(&groups, chance, curves_title).as_bytes(),
    )?;
    Ok(aggs)
}

pub use super::chart::render_comparison_svg;

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
