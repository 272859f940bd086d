//! The reports of a run and a bench ([`RunReport`], [`Evaluation`], [`RadiationReport`]; each
//! serialises to the JSON the tools read back and displays as the tables the CLI prints), and
//! a run's output directory with the files written into it:
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
use std::fmt::{self, Write as _};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::graph::GraphStats;
use crate::radiation::cache::{Counters, LevelStats};
use crate::scene::{ExecutorKind, Scene, Split};

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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// The split, written `train` or `test` ([`split_name`]).
    #[serde(with = "split_as_name")]
    pub split: Split,
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
    /// `confusion[label][prediction]`; uncovered samples are not counted.
    pub confusion: Vec<Vec<u32>>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Samples per second, input encoding included.
    pub samples_per_second: f64,
    /// Radiation pattern-cache events during the evaluation, summed over worlds (`None` when
    /// the cache is off).
    pub pattern_cache: Option<Counters>,
}

/// Radiation in a run or bench report: settings, the kernel backend, its share of the stage
/// time, and the statistics of every cache level.
///
/// Displays as the radiation section of `neurograph run`, `bench` and `inspect --cache`: a
/// settings line, then one row per cache level (each line ends in a newline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The report of a whole run (also its `summary.json`).
///
/// Displays as the tables `neurograph run` prints: the training epochs, the evaluations, the
/// radiation section and where the reports went (each line ends in a newline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Scene name.
    pub scene: String,
    /// Master seed.
    pub seed: u64,
    /// The executor kind, written `single` or `multi` ([`executor_name`]).
    #[serde(with = "executor_as_name")]
    pub executor: ExecutorKind,
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
    /// A reference to read the held-out accuracy against: the nearest class mean on pixels,
    /// fitted on the training split and scored on the test split (when the run evaluated it).
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// The output directory, when reports were written.
    pub out_dir: Option<String>,
}

/// Reference accuracies on the run's test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Test samples scored.
    pub samples: usize,
    /// Accuracy of the nearest class mean on raw pixels ([`crate::data::nearest_class_mean`]).
    pub nearest_class_mean: f64,
    /// Chance: 1 / classes.
    pub chance: f64,
}

/// Name of a split in reports.
pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// Name of an executor kind in reports.
pub fn executor_name(kind: ExecutorKind) -> &'static str {
    match kind {
        ExecutorKind::Single => "single",
        ExecutorKind::Multi => "multi",
    }
}

/// Serde of a [`Split`] by its report name ([`split_name`]).
mod split_as_name {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::scene::Split;

    pub(super) fn serialize<S: Serializer>(split: &Split, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::split_name(*split))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Split, D::Error> {
        let name = String::deserialize(d)?;
        [Split::Train, Split::Test]
            .into_iter()
            .find(|&s| super::split_name(s) == name)
            .ok_or_else(|| D::Error::unknown_variant(&name, &["train", "test"]))
    }
}

/// Serde of an [`ExecutorKind`] by its report name ([`executor_name`]).
pub(crate) mod executor_as_name {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::scene::ExecutorKind;

    pub(crate) fn serialize<S: Serializer>(kind: &ExecutorKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::executor_name(*kind))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ExecutorKind, D::Error> {
        let name = String::deserialize(d)?;
        [ExecutorKind::Single, ExecutorKind::Multi]
            .into_iter()
            .find(|&k| super::executor_name(k) == name)
            .ok_or_else(|| D::Error::unknown_variant(&name, &["single", "multi"]))
    }
}

/// A loss for a table: four decimals, or `-` when there is none.
fn loss_cell(loss: Option<f64>) -> String {
    loss.map_or("-".to_string(), |l| format!("{l:.4}"))
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scene {}  seed {}  executor {}  threads {}  replicas {}",
            self.scene,
            self.seed,
            executor_name(self.executor),
            self.threads,
            self.eval_replicas
        )?;
        if !self.training.is_empty() {
            writeln!(
                f,
                "{:<6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
                "epoch",
                "samples",
                "loss",
                "accuracy",
                "coverage",
                "updates",
                "changed",
                "samples/s"
            )?;
            for m in &self.training {
                writeln!(
                    f,
                    "{:<6} {:>8} {:>9} {:>9.4} {:>9.4} {:>9} {:>10} {:>10.1}",
                    m.epoch,
                    m.samples,
                    loss_cell(m.loss),
                    m.accuracy,
                    m.coverage,
                    m.updates_applied,
                    m.parameters_changed,
                    m.samples_per_second
                )?;
            }
        }
        writeln!(
            f,
            "{:<6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>12} {:>10}",
            "split",
            "samples",
            "accuracy",
            "coverage",
            "loss",
            "timesteps",
            "active nodes",
            "samples/s"
        )?;
        for e in &self.evaluations {
            writeln!(
                f,
                "{:<6} {:>8} {:>9.4} {:>9.4} {:>9} {:>10.2} {:>12.1} {:>10.1}",
                split_name(e.split),
                e.samples,
                e.accuracy,
                e.coverage,
                loss_cell(e.mean_loss),
                e.mean_timesteps,
                e.mean_active_nodes,
                e.samples_per_second
            )?;
        }
        if let Some(b) = &self.baseline {
            writeln!(
                f,
                "baseline: nearest class mean on pixels {:.4} on the same {} test samples \
                 (chance {:.4})",
                b.nearest_class_mean, b.samples, b.chance
            )?;
        }
        write!(f, "{}", self.radiation)?;
        if let Some(dir) = &self.out_dir {
            writeln!(f, "reports in {dir}")?;
        }
        Ok(())
    }
}

impl fmt::Display for RadiationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.enabled {
            return writeln!(f, "radiation off");
        }
        let c = &self.cache;
        let cache = if c.enabled {
            format!(
                "on (capacity {}, q {}, max_staleness {}, {})",
                c.capacity,
                c.quantization,
                c.max_staleness,
                if c.exact { "exact" } else { "APPROXIMATE" }
            )
        } else {
            "off".to_string()
        };
        writeln!(
            f,
            "radiation: top_k {}  kernel {}  {:.1}% of stage time  pattern cache {cache}",
            self.top_k,
            self.backend,
            100.0 * self.share,
        )?;
        writeln!(
            f,
            "{:<11} {:>12} {:>12} {:>12} {:>10} {:>8} {:>12} {:>9}",
            "level", "hits", "misses", "stale", "evictions", "entries", "bytes", "hit rate"
        )?;
        for l in &self.levels {
            writeln!(
                f,
                "{:<11} {:>12} {:>12} {:>12} {:>10} {:>8} {:>12} {:>9}",
                l.level,
                l.hits,
                l.misses,
                l.stale_misses,
                l.evictions,
                l.entries,
                l.bytes,
                l.hit_rate
                    .map_or("-".to_string(), |h| format!("{:.2}%", 100.0 * h))
            )?;
        }
        Ok(())
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
    /// Where a run of `scene` writes when no directory is given: `runs/<scene>-<seed>`.
    pub fn default_path(scene: &Scene) -> PathBuf {
        PathBuf::from("runs").join(format!("{}-{}", scene.name, scene.seed))
    }

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
    fn report_names_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Names {
            #[serde(with = "split_as_name")]
            split: Split,
            #[serde(with = "executor_as_name")]
            executor: ExecutorKind,
        }
        let names = Names {
            split: Split::Train,
            executor: ExecutorKind::Multi,
        };
        let text = serde_json::to_string(&names).unwrap();
        assert_eq!(text, r#"{"split":"train","executor":"multi"}"#);
        assert_eq!(serde_json::from_str::<Names>(&text).unwrap(), names);
        let err = serde_json::from_str::<Names>(r#"{"split":"Test","executor":"single"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `Test`"), "{err}");
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
