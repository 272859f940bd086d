//! The reports of a run and a bench ([`RunReport`], [`Evaluation`], [`RadiationReport`]; each
//! serialises to the JSON the tools read back and displays as the tables the CLI prints). The
//! run directory they are written into is [`super::outdir`]'s, re-exported here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::graph::GraphStats;
use crate::radiation::cache::{Counters, LevelStats};
use crate::scene::{ExecutorKind, Split};

pub use super::outdir::{
    CURVES_CSV_FILE, CURVES_SVG_FILE, MANIFEST_FILE, METRICS_FILE, RunDir, SUMMARY_FILE,
    curves_csv, write_atomic,
};

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
    /// The script step that made it (1-based, as `script[step - 1]`); 0 outside a script.
    #[serde(default)]
    pub step: usize,
    /// Training epochs completed before it.
    #[serde(default)]
    pub after_epochs: u32,
    /// Training samples run before it (over the whole run).
    #[serde(default)]
    pub samples_seen: u64,
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
    /// The kernel and instructions `radiation.backend` resolved to on this CPU
    /// (`int16 AVX2`, `int16 portable`, `f32 AVX-512VL`, `f32 AVX2+FMA`, `f32 portable`).
    pub backend: String,
    /// Seconds in the radiation stage (summed over worlds).
    pub seconds: f64,
    /// Radiation's share of all stage time.
    pub share: f64,
    /// The level-1 settings.
    pub cache: CacheSettingsReport,
    /// Statistics per level: `pattern` (level 1, when enabled), `static`, `candidates`.
    pub levels: Vec<LevelStats>,
    /// Nodes scored per source the kernel answered: every node for the dense kernels, the
    /// nodes of the buckets it visited for the index; `None` before any source.
    #[serde(default)]
    pub scored_per_source: Option<f64>,
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
    /// Memory at the end of the run: each owner's bytes, the heap and resident-set peaks, and
    /// the scene's estimate.
    #[serde(default)]
    pub memory: Option<super::memory::MemoryReport>,
    /// What is legal in the scene but almost certainly not meant (see
    /// [`super::warnings`]); also printed on stderr when the run starts.
    #[serde(default)]
    pub warnings: Vec<String>,
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
        Split::Validation => "validation",
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
        [Split::Train, Split::Test, Split::Validation]
            .into_iter()
            .find(|&s| super::split_name(s) == name)
            .ok_or_else(|| D::Error::unknown_variant(&name, &["train", "test", "validation"]))
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
            "{:<5} {:>6} {:>8} {:<6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>12} {:>10}",
            "step",
            "epochs",
            "seen",
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
                "{:<5} {:>6} {:>8} {:<6} {:>8} {:>9.4} {:>9.4} {:>9} {:>10.2} {:>12.1} {:>10.1}",
                e.step,
                e.after_epochs,
                e.samples_seen,
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
        if let Some(m) = &self.memory {
            let b = |v: Option<u64>| v.map_or("not measured".into(), crate::scene::format_bytes);
            writeln!(
                f,
                "memory: heap peak {}, resident peak {}, estimate {}",
                b(m.heap_peak_bytes),
                b(m.resident_peak_bytes),
                crate::scene::format_bytes(m.estimate_bytes)
            )?;
        }
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
            "radiation: top_k {}  kernel {}  {:.1}% of stage time  pattern cache {cache}{}",
            self.top_k,
            self.backend,
            100.0 * self.share,
            self.scored_per_source.map_or(String::new(), |s| format!(
                "  {s:.0} nodes scored per source"
            )),
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
}
