//! `neurograph experiment scheduling` ([`SchedulingArgs::run`]): the same training work under a
//! grid of executor × threads × granularity, with warm-up and repetitions.
//!
//! Every configuration runs in its own process (`neurograph bench --mode train --json`):
//! bevy's compute pool is process-wide and sized once, so one process cannot try several
//! thread counts. Each run reports a hash of the final parameters and accumulators; all of them
//! must agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::{BenchReport, progress_bar};
use crate::scene::SceneError;

/// The arguments of `neurograph experiment scheduling` (a clap [`Args`](clap::Args) group: the
/// field docs are the command's help text).
#[derive(Clone, Debug, clap::Args)]
pub struct SchedulingArgs {
    /// The scene file.
    pub scene: PathBuf,
    /// Override a scene field, e.g. `--set forward.decay=0.5` (repeatable; passed to every
    /// configuration's bench, whose own `schedule.executor`, `threads` and `granularity` win).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Thread counts to try.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub threads: Vec<u32>,
    /// Timed training samples per run.
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    /// Untimed training samples before each run.
    #[arg(long, default_value_t = 30)]
    pub warmup: usize,
    /// Runs per configuration (the table shows the median and the spread), 1 ..= 1000.
    #[arg(long, default_value_t = 3,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u16).range(1..=1000), usize::from))]
    pub repetitions: usize,
    /// Also write the report as JSON to this file (atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Why the experiment could not run or report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A thread count of 0, no thread counts, or no samples.
    #[error("--threads needs counts of at least 1 and --samples at least 1")]
    Arguments,
    /// The scene does not load.
    #[error("{0}")]
    Scene(SceneError),
    /// A configuration's bench failed or reported nothing readable.
    #[error("{0}")]
    Bench(String),
    /// `--out` could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SchedulingArgs {
    /// Checks the arguments and the scene, runs every configuration as a process of `exe`
    /// (the `neurograph` binary) with a progress bar (none with `json`), and writes the report
    /// to `out` when given.
    pub fn run(&self, exe: &Path) -> Result<Report, ExperimentError> {
        if self.threads.is_empty() || self.threads.contains(&0) || self.samples == 0 {
            return Err(ExperimentError::Arguments);
        }
        // Fail early, with the scene's own message, if the scene or an override is bad.
        crate::scene::load(&self.scene)
            .and_then(|mut s| s.apply_sets(&self.sets))
            .map_err(ExperimentError::Scene)?;
        let total = (grid(&self.threads).len() + 1) * self.repetitions.max(1);
        let bar = progress_bar(total as u64, "experiment", self.json);
        let work = Workload {
            scene: &self.scene,
            sets: &self.sets,
            samples: self.samples,
            warmup: self.warmup,
        };
        let report = run(exe, &work, &self.threads, self.repetitions, &|c| {
            bar.inc(1);
            bar.set_message(c.to_string());
        })
        .map_err(ExperimentError::Bench)?;
        bar.finish_and_clear();
        if let Some(path) = &self.out {
            let write = |source| ExperimentError::Write {
                path: path.display().to_string(),
                source,
            };
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| write(std::io::Error::other(e)))?;
            crate::atomic::write(path, text.as_bytes()).map_err(write)?;
        }
        Ok(report)
    }
}

/// One configuration of the grid.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Config {
    /// `single` or `multi`.
    pub executor: &'static str,
    /// Threads per world.
    pub threads: u32,
    /// `Stage` or `Split(parts: N)` (N = threads).
    pub granularity: String,
}

impl std::fmt::Display for Config {
    /// `multi executor × 2 threads × Split(parts: 2)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} executor × {} thread(s) × {}",
            self.executor, self.threads, self.granularity
        )
    }
}

/// What every configuration runs: the scene with its overrides, and how many samples.
#[derive(Clone, Copy, Debug)]
pub struct Workload<'a> {
    /// The scene file.
    pub scene: &'a Path,
    /// `FIELD=VALUE` overrides, given to each bench before the configuration's own.
    pub sets: &'a [String],
    /// Timed training samples per repetition.
    pub samples: usize,
    /// Untimed samples before each repetition.
    pub warmup: usize,
}

/// Measurements of one configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The configuration.
    pub config: Config,
    /// Training samples/s of every repetition.
    pub samples_per_second: Vec<f64>,
    /// Median over repetitions.
    pub median: f64,
    /// Smallest and largest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
    /// Median / the baseline's median (single executor, 1 thread, Stage).
    pub speedup: f64,
    /// Speedup / threads.
    pub efficiency: f64,
    /// Milliseconds per sample per stage, from the median repetition.
    pub stage_ms: BTreeMap<String, f64>,
    /// Final world hashes of the repetitions.
    pub hashes: Vec<String>,
}

/// The whole experiment.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scene file.
    pub scene: String,
    /// Cores of this machine.
    pub cores: usize,
    /// Timed training samples per repetition.
    pub samples: usize,
    /// Untimed samples before each repetition.
    pub warmup: usize,
    /// Repetitions per configuration.
    pub repetitions: usize,
    /// One row per configuration; the first is the baseline.
    pub rows: Vec<Row>,
    /// Baseline median samples/s with the stage clock off, and the clock's overhead in percent.
    pub timing_off_median: f64,
    /// (timing off − timing on) / timing off, in percent, for the baseline.
    pub timing_overhead_percent: f64,
    /// Whether every run of every configuration ended in the same world hash.
    pub hashes_agree: bool,
}

/// The grid: baseline first, then executor × threads × granularity.
pub fn grid(threads: &[u32]) -> Vec<Config> {
    let mut configs = vec![Config {
        executor: "single",
        threads: 1,
        granularity: "Stage".into(),
    }];
    for executor in ["single", "multi"] {
        for &t in threads {
            for granularity in ["Stage".to_string(), format!("Split(parts: {t})")] {
                let c = Config {
                    executor,
                    threads: t,
                    granularity,
                };
                if !configs.contains(&c) {
                    configs.push(c);
                }
            }
        }
    }
    configs
}

/// Runs one repetition of a configuration; returns its bench report.
fn bench_once(
    exe: &Path,
    work: &Workload<'_>,
    c: &Config,
    timing: bool,
) -> Result<BenchReport, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .arg(work.scene)
        .args(["--mode", "train", "--json"])
        .args([
            "--samples",
            &work.samples.to_string(),
            "--warmup",
            &work.warmup.to_string(),
        ]);
    for set in work.sets {
        cmd.args(["--set", set]);
    }
    cmd.args([
        "--executor",
        c.executor,
        "--threads",
        &c.threads.to_string(),
    ])
    .args(["--set", &format!("schedule.granularity={}", c.granularity)])
    .args(["--set", "schedule.eval_replicas=1"]);
    if !timing {
        cmd.arg("--no-timing");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{c} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    bench_report(&String::from_utf8_lossy(&out.stdout), c)
}

/// The report in the last line of `neurograph bench --json`'s output.
fn bench_report(stdout: &str, c: &Config) -> Result<BenchReport, String> {
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("{c}: unreadable bench output: {e}"))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the experiment; `progress` is told after every repetition.
pub fn run(
    exe: &Path,
    work: &Workload<'_>,
    threads: &[u32],
    repetitions: usize,
    progress: &dyn Fn(&Config),
) -> Result<Report, String> {
    let configs = grid(threads);
    let mut rows: Vec<Row> = Vec::new();
    for c in &configs {
        let mut reps = Vec::new();
        for _ in 0..repetitions.max(1) {
            reps.push(bench_once(exe, work, c, true)?);
            progress(c);
        }
        let sps: Vec<f64> = reps.iter().map(|r| r.samples_per_second).collect();
        let med = median(&sps);
        let median_rep = reps
            .iter()
            .min_by(|a, b| {
                let d = |r: &&BenchReport| (r.samples_per_second - med).abs();
                d(a).total_cmp(&d(b))
            })
            .expect("at least one repetition");
        let n = (median_rep.samples as f64).max(1.0);
        let stage_ms = median_rep
            .stage_seconds
            .iter()
            .map(|(k, v)| (k.clone(), v * 1e3 / n))
            .collect();
        let baseline = rows.first().map_or(med, |b| b.median);
        rows.push(Row {
            config: c.clone(),
            min: sps.iter().copied().fold(f64::INFINITY, f64::min),
            max: sps.iter().copied().fold(0.0, f64::max),
            speedup: med / baseline.max(1e-12),
            efficiency: med / baseline.max(1e-12) / c.threads as f64,
            samples_per_second: sps,
            median: med,
            stage_ms,
            hashes: reps
                .iter()
                .map(|r| r.world_hash.clone().unwrap_or_default())
                .collect(),
        });
    }
    let mut off = Vec::new();
    for _ in 0..repetitions.max(1) {
        let r = bench_once(exe, work, &configs[0], false)?;
        off.push(r.samples_per_second);
        progress(&configs[0]);
    }
    let timing_off_median = median(&off);
    let first = rows[0].hashes.first().cloned().unwrap_or_default();
    let hashes_agree =
        !first.is_empty() && rows.iter().all(|r| r.hashes.iter().all(|h| *h == first));
    Ok(Report {
        scene: work.scene.display().to_string(),
        cores: crate::sim::resolve_threads(0),
        samples: work.samples,
        warmup: work.warmup,
        repetitions: repetitions.max(1),
        timing_overhead_percent: 100.0 * (timing_off_median - rows[0].median)
            / timing_off_median.max(1e-12),
        timing_off_median,
        rows,
        hashes_agree,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: training samples/s, {} samples after {} warm-up, median of {} runs; this machine has {} cores",
            self.scene, self.samples, self.warmup, self.repetitions, self.cores
        )?;
        writeln!(
            f,
            "{:<7} {:>7} {:<15} {:>9} {:>17} {:>8} {:>10} {:>10} {:>9} {:>9}",
            "exec",
            "threads",
            "granularity",
            "median",
            "min..max",
            "speedup",
            "efficiency",
            "radiation",
            "forward",
            "other"
        )?;
        for r in &self.rows {
            let rad = r.stage_ms.get("radiation").copied().unwrap_or(0.0);
            let fwd = r.stage_ms.get("forward").copied().unwrap_or(0.0);
            let other: f64 = r.stage_ms.values().sum::<f64>() - rad - fwd;
            writeln!(
                f,
                "{:<7} {:>7} {:<15} {:>9.1} {:>8.1}..{:<8.1} {:>7.2}x {:>9.0}% {:>8.2}ms {:>7.2}ms {:>7.2}ms",
                r.config.executor,
                r.config.threads,
                r.config.granularity,
                r.median,
                r.min,
                r.max,
                r.speedup,
                100.0 * r.efficiency,
                rad,
                fwd,
                other
            )?;
        }
        writeln!(
            f,
            "stage/system clock overhead: {:.1}% (baseline {:.1} samples/s with the clock off)",
            self.timing_overhead_percent, self.timing_off_median
        )?;
        write!(
            f,
            "final world hashes: {}",
            if self.hashes_agree {
                format!(
                    "all {} agree ({})",
                    self.rows.iter().map(|r| r.hashes.len()).sum::<usize>(),
                    self.rows[0].hashes[0]
                )
            } else {
                "DIFFER (determinism broken)".to_string()
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{BenchMode, bench_training};

    /// Regression (issue 12, smaller items): a failing configuration was named by its Rust
    /// debug structure, `Config { executor: "multi", .. }`.
    #[test]
    fn issue_12_a_configuration_is_named_in_words() {
        let c = &grid(&[2])[2];
        let text = c.to_string();
        assert_eq!(text, "single executor × 2 thread(s) × Split(parts: 2)");
        let err = bench_report("not json", c).unwrap_err();
        assert!(err.starts_with(&text) && !err.contains('{'), "{err}");
    }

    #[test]
    fn reads_the_bench_report_a_bench_writes() {
        let text = include_str!("../../scenes/quickstart.ron");
        let mut scene = crate::scene::parse(text, "quickstart.ron").unwrap();
        scene
            .apply_sets(&["data.source.train=8", "data.source.test=8"])
            .unwrap();
        let report = bench_training(&scene, 4, 0, true, true).unwrap();
        let line = serde_json::to_string(&report).unwrap();
        let read = bench_report(&format!("scene quickstart\n{line}\n"), &grid(&[1])[0]).unwrap();
        let written: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(serde_json::to_value(&read).unwrap(), written);
        assert_eq!(read.mode, BenchMode::Train);
        assert!(read.world_hash.is_some_and(|h| h.len() == 16));
        let err = bench_report("not json", &grid(&[1])[0]).unwrap_err();
        assert!(err.contains("unreadable bench output"), "{err}");
    }
}
