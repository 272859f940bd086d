//! A run's output directory and the reports written into it:
//!
//! - `metrics.jsonl`: one [`EpochMetrics`] JSON object per line, appended and fsynced per epoch;
//! - `manifest.json`: what was run (scene, seed, executor, versions, times);
//! - `summary.json`: the final report;
//! - `curves.csv`: the per-epoch curves as a table;
//! - `curves.svg`: a plot of mean loss, accuracy and coverage per epoch.
//!
//! Every file except the append-only JSON Lines log is written atomically with
//! [`write_atomic`], so a crash never leaves half a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::graph::GraphStats;
use crate::radiation::cache::LevelStats;
use crate::scene::Split;

use super::plot::render_svg;

/// Metrics of one training epoch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Samples visited.
    pub samples: u32,
    /// Mean loss over covered samples (`None` when no sample was covered).
    pub loss: Option<f64>,
    /// Training accuracy, a fraction in `[0, 1]`.
    pub accuracy: f64,
    /// Fraction of samples whose outputs were reached.
    pub coverage: f64,
    /// Samples that applied an update.
    pub updates_applied: u64,
    /// Parameter index dimensions that moved.
    pub parameters_changed: u64,
    /// Training throughput.
    pub samples_per_second: f64,
    /// Mean timesteps per sample.
    pub mean_timesteps: f64,
    /// Mean active nodes per sample.
    pub mean_active_nodes: f64,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
    /// Radiation pattern-cache events during the epoch (`None` when the cache is off).
    #[serde(default)]
    pub pattern_cache: Option<crate::radiation::cache::Counters>,
}

/// Metrics of one evaluation step.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    /// `train` or `test`.
    pub split: &'static str,
    /// Samples evaluated.
    pub samples: usize,
    /// Share of samples predicted correctly (uncovered samples count as wrong).
    pub accuracy: f64,
    /// Share of samples with at least one active output at readout.
    pub coverage: f64,
    /// Mean loss over covered samples (`null` if none was covered).
    pub mean_loss: Option<f64>,
    /// Mean timesteps per sample.
    pub mean_timesteps: f64,
    /// Mean over samples of the per-timestep active count after arrivals.
    pub mean_active_nodes: f64,
    /// Mean active outputs at readout.
    pub mean_active_outputs: f64,
    /// confusion[label][prediction]; uncovered samples are not counted.
    pub confusion: Vec<Vec<u32>>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Samples per second, input encoding included.
    pub samples_per_second: f64,
    /// Radiation pattern-cache events during the evaluation, summed over worlds (`None` when
    /// the cache is off).
    pub pattern_cache: Option<crate::radiation::cache::Counters>,
}

/// Radiation in a run or bench report: settings, the kernel backend, its share of the stage
/// time, and the statistics of every cache level.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RadiationReport {
    /// `radiation.enabled`.
    pub enabled: bool,
    /// `radiation.top_k`.
    pub top_k: u32,
    /// The kernel's SIMD backend on this CPU (`Portable`, `Avx2Fma`, `Avx512Vl`).
    pub backend: String,
    /// Seconds in the radiation stage (summed over worlds).
    pub seconds: f64,
    /// Radiation's share of all stage time.
    pub share: f64,
    /// The level-1 settings.
    pub cache: CacheSettingsReport,
    /// Statistics per level: `pattern` (level 1, when enabled), `static`, `candidates`.
    pub levels: Vec<LevelStats>,
}

/// The pattern-cache settings of a run.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CacheSettingsReport {
    /// `radiation.cache.enabled`.
    pub enabled: bool,
    /// Whether every hit equals the kernel's answer (q = 1 and staleness 0).
    pub exact: bool,
    /// `radiation.cache.capacity`.
    pub capacity: u32,
    /// `radiation.cache.quantization` (q).
    pub quantization: u32,
    /// `radiation.cache.max_staleness`.
    pub max_staleness: u32,
}

/// The report of a whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Scene name.
    pub scene: String,
    /// Master seed.
    pub seed: u64,
    /// `single` or `multi`.
    pub executor: &'static str,
    /// Threads per world.
    pub threads: usize,
    /// Worlds evaluating at once.
    pub eval_replicas: usize,
    /// Graph statistics.
    pub graph: GraphStats,
    /// One item per training epoch, in order.
    pub training: Vec<EpochMetrics>,
    /// One item per evaluation step, in script order.
    pub evaluations: Vec<Evaluation>,
    /// Seconds per stage over the whole run.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Radiation: settings, time share and cache statistics.
    pub radiation: RadiationReport,
    /// The output directory, when reports were written.
    pub out_dir: Option<String>,
}

/// Name of a split in reports.
pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// Name of an executor kind in reports.
pub fn executor_name(kind: crate::scene::ExecutorKind) -> &'static str {
    match kind {
        crate::scene::ExecutorKind::Single => "single",
        crate::scene::ExecutorKind::Multi => "multi",
    }
}

/// Name of the per-epoch JSON Lines log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Name of the run manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the final summary.
pub const SUMMARY_FILE: &str = "summary.json";
/// Name of the curves table.
pub const CURVES_CSV_FILE: &str = "curves.csv";
/// Name of the curves plot.
pub const CURVES_SVG_FILE: &str = "curves.svg";

/// A run's output directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates the directory (and its parents) if needed.
    pub fn create(path: &Path) -> io::Result<RunDir> {
        fs::create_dir_all(path)?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path named by the user: an absolute path is kept, a relative one lives inside the
    /// run directory.
    pub fn resolve(&self, relative_or_absolute: &str) -> PathBuf {
        let p = Path::new(relative_or_absolute);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.join(p)
        }
    }

    /// Appends one line to `metrics.jsonl`, flushed and fsynced before returning.
    pub fn append_metrics(&self, m: &EpochMetrics) -> io::Result<()> {
        let mut line = serde_json::to_string(m).map_err(io::Error::other)?;
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(METRICS_FILE))?;
        f.write_all(line.as_bytes())?;
        f.flush()?;
        f.sync_data()
    }

    /// Writes `manifest.json` (pretty-printed) atomically.
    pub fn write_manifest(&self, manifest: &serde_json::Value) -> io::Result<()> {
        self.write_json(MANIFEST_FILE, manifest)
    }

    /// Writes `summary.json` (pretty-printed) atomically.
    pub fn write_summary(&self, summary: &serde_json::Value) -> io::Result<()> {
        self.write_json(SUMMARY_FILE, summary)
    }

    fn write_json(&self, name: &str, value: &serde_json::Value) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic(&self.path.join(name), &bytes)
    }

    /// Writes `curves.csv` atomically: a header row, then one row per epoch; a missing loss
    /// is an empty cell.
    pub fn write_curves_csv(&self, epochs: &[EpochMetrics]) -> io::Result<()> {
        write_atomic(
            &self.path.join(CURVES_CSV_FILE),
            curves_csv(epochs).as_bytes(),
        )
    }

    /// Writes `curves.svg` (see [`render_svg`]) atomically.
    pub fn write_plot(&self, epochs: &[EpochMetrics], title: &str) -> io::Result<()> {
        write_atomic(
            &self.path.join(CURVES_SVG_FILE),
            render_svg(epochs, title).as_bytes(),
        )
    }
}

/// The CSV text of [`RunDir::write_curves_csv`].
pub fn curves_csv(epochs: &[EpochMetrics]) -> String {
    let mut s = String::from(
        "epoch,samples,loss,accuracy,coverage,updates_applied,parameters_changed,\
         samples_per_second,mean_timesteps,mean_active_nodes,seconds\n",
    );
    for m in epochs {
        let loss = m.loss.map(|l| l.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            m.epoch,
            m.samples,
            loss,
            m.accuracy,
            m.coverage,
            m.updates_applied,
            m.parameters_changed,
            m.samples_per_second,
            m.mean_timesteps,
            m.mean_active_nodes,
            m.seconds
        );
    }
    s
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::atomic::write(path, bytes)
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn metrics(epoch: u32, loss: Option<f64>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            samples: 100,
            loss,
            accuracy: 0.1 + 0.03 * f64::from(epoch),
            coverage: 0.9,
            updates_applied: 80,
            parameters_changed: 1234,
            samples_per_second: 250.5,
            mean_timesteps: 7.25,
            mean_active_nodes: 312.0,
            seconds: 0.4,
            pattern_cache: None,
        }
    }

    pub(crate) fn series(n: u32) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|e| metrics(e, Some(2.3 / f64::from(e).sqrt())))
            .collect()
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn resolve_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(&dir.path().join("runs/quick-7")).unwrap();
        assert!(run.path().is_dir());
        assert_eq!(run.resolve("model.ckpt"), run.path().join("model.ckpt"));
        assert_eq!(run.resolve("sub/a.ckpt"), run.path().join("sub/a.ckpt"));
        let abs = dir.path().join("elsewhere.ckpt");
        assert_eq!(run.resolve(abs.to_str().unwrap()), abs);
        // Creating an existing directory is fine.
        RunDir::create(run.path()).unwrap();
    }

    #[test]
    fn jsonl_appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path()).unwrap();
        let mut written = series(3);
        written[1].loss = None;
        for m in &written {
            run.append_metrics(m).unwrap();
        }
        let text = fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert!(text.ends_with('\n'));
        let back: Vec<EpochMetrics> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, written);
        assert!(text.lines().nth(1).unwrap().contains("\"loss\":null"));
    }

    #[test]
    fn csv_content() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path()).unwrap();
        let mut m = series(2);
        m[0].loss = None;
        m[1].loss = Some(1.5);
        run.write_curves_csv(&m).unwrap();
        let text = fs::read_to_string(dir.path().join(CURVES_CSV_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "epoch,samples,loss,accuracy,coverage,updates_applied,parameters_changed,\
             samples_per_second,mean_timesteps,mean_active_nodes,seconds"
        );
        assert_eq!(lines[1], "1,100,,0.13,0.9,80,1234,250.5,7.25,312,0.4");
        assert_eq!(lines[2], "2,100,1.5,0.16,0.9,80,1234,250.5,7.25,312,0.4");
        let columns = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));
    }

    #[test]
    fn manifest_and_summary_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path()).unwrap();
        let manifest = serde_json::json!({"scene": "quickstart", "seed": 7, "end": null});
        run.write_manifest(&manifest).unwrap();
        let manifest = serde_json::json!({"scene": "quickstart", "seed": 7, "end": "now"});
        run.write_manifest(&manifest).unwrap();
        let summary = serde_json::json!({"training": [], "evaluations": [{"accuracy": 0.5}]});
        run.write_summary(&summary).unwrap();
        run.write_curves_csv(&series(2)).unwrap();
        run.write_plot(&series(2), "t").unwrap();
        assert_eq!(
            file_names(dir.path()),
            vec![
                CURVES_CSV_FILE,
                CURVES_SVG_FILE,
                MANIFEST_FILE,
                SUMMARY_FILE
            ]
        );
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_str(&fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
        };
        assert_eq!(read(MANIFEST_FILE), manifest);
        assert_eq!(read(SUMMARY_FILE), summary);
    }

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("new/deep/out.txt");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(file_names(target.parent().unwrap()), vec!["out.txt"]);
        // Renaming onto a non-empty directory fails; the temporary file is removed.
        let blocker = dir.path().join("blocker");
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), b"x").unwrap();
        assert!(write_atomic(&blocker, b"data").is_err());
        assert_eq!(file_names(dir.path()), vec!["blocker", "new"]);
    }
}
