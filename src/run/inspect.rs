//! `neurograph inspect`: what a scene resolves to and what it builds, without running it
//! ([`SceneReport`], then [`WorldReport`]), and the radiation cache statistics of a finished
//! run ([`CacheReport`]).
//!
//! The scene part needs no simulation, so it is shown even when building one fails (a missing
//! edge-list file, say); callers print it before building the [`WorldReport`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::executor_name;
use super::report::{RadiationReport, SUMMARY_FILE};
use crate::graph::GraphStats;
use crate::scene::{MemoryEstimate, Scene};
use crate::sim::describe::{self, ScheduleDescription};
use crate::sim::{SimError, Simulation};

/// Why `inspect` could not report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The simulation could not be built.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The run summary could not be read.
    #[error("cannot read {path} (run the scene first, or pass a run directory)")]
    Read {
        /// The summary file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The run summary is not JSON.
    #[error("{path} is not a valid JSON run summary")]
    NotJson {
        /// The summary file.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The run summary has no radiation section.
    #[error("{path} has no radiation section (written by an older version?)")]
    NoRadiation {
        /// The summary file.
        path: String,
    },
    /// The radiation section of the run summary does not have the expected fields.
    #[error("{path}: the radiation section is malformed")]
    Malformed {
        /// The summary file.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The Graphviz file could not be written.
    #[error("writing {path}")]
    Dot {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The resolved scene (every field written) and its memory estimate.
///
/// Displays as the `# resolved scene` and `# memory estimate` sections of `inspect`.
#[derive(Clone, Debug)]
pub struct SceneReport {
    /// The scene as RON ([`Scene::to_ron`]).
    pub ron: String,
    /// The memory estimate.
    pub memory: MemoryEstimate,
    /// The data shape the estimate is for, when the data could be read (otherwise it is the
    /// scene's assumption, see [`Scene::memory_estimate`]).
    pub data: Option<crate::scene::DataShape>,
}

impl SceneReport {
    /// Describes `scene`; builds nothing, but reads its data to estimate memory for the real
    /// image count and size (falling back to the scene's assumption when it cannot).
    pub fn new(scene: &Scene) -> SceneReport {
        let data = super::load_data(scene).ok().map(|d| d.shape());
        SceneReport {
            ron: scene.to_ron(),
            memory: data.map_or_else(
                || scene.memory_estimate(),
                |shape| scene.memory_estimate_for(&shape),
            ),
            data,
        }
    }
}

impl fmt::Display for SceneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: f64 = (1 << 20) as f64;
        writeln!(f, "# resolved scene\n{}", self.ron)?;
        writeln!(
            f,
            "\n# memory estimate: {:.1} MiB in {} world(s) of {:.1} MiB, {}",
            self.memory.total as f64 / MIB,
            self.memory.worlds,
            self.memory.world as f64 / MIB,
            match &self.data {
                Some(d) => format!(
                    "for the data as read ({} training and {} test images of {} pixels)",
                    d.train, d.test, d.pixels
                ),
                None => "for the data the scene describes (it could not be read)".into(),
            }
        )?;
        for (part, bytes) in &self.memory.parts {
            writeln!(f, "  {:<28} {:>10.2} MiB", part, *bytes as f64 / MIB)?;
        }
        Ok(())
    }
}

/// What the scene builds: graph statistics, the settings derived from them, threads and
/// replicas, and optionally every schedule's sets, systems and conflicting pairs.
///
/// Displays as the `# graph` section of `inspect` and, with schedules, one block per schedule.
#[derive(Clone, Debug)]
pub struct WorldReport {
    /// Statistics of the built graph.
    pub graph: GraphStats,
    /// `forward.min_timesteps` as the simulation uses it (derived when the scene leaves it out).
    pub min_timesteps: u32,
    /// `forward.target_active` as the simulation uses it.
    pub target_active: f32,
    /// Threads per world.
    pub threads: usize,
    /// `schedule.eval_replicas`.
    pub eval_replicas: u32,
    /// The schedules, described (empty unless asked for).
    pub schedules: Vec<ScheduleDescription>,
    /// What is legal but almost certainly not meant ([`super::warnings`]).
    pub warnings: Vec<String>,
}

impl WorldReport {
    /// Builds the scene's simulation and describes it; with `schedules`, describes every
    /// schedule too.
    pub fn new(scene: &Scene, schedules: bool) -> Result<WorldReport, InspectError> {
        let sim = Simulation::new(scene)?;
        let settings = sim.settings();
        let described = if schedules {
            let executor = executor_name(sim.executor());
            sim.schedules()
                .iter()
                .map(|(_, s)| describe::describe(s, sim.world(), executor))
                .collect()
        } else {
            Vec::new()
        };
        Ok(WorldReport {
            warnings: super::warnings(sim.graph_stats(), scene, sim.class_encodings()),
            graph: sim.graph_stats().clone(),
            min_timesteps: settings.min_timesteps,
            target_active: settings.target_active,
            threads: sim.threads(),
            eval_replicas: scene.schedule.eval_replicas,
            schedules: described,
        })
    }

    /// Writes the described schedules as one Graphviz graph to `path` (atomically).
    pub fn write_dot(&self, path: &Path) -> Result<(), InspectError> {
        crate::atomic::write(path, describe::to_dot(&self.schedules).as_bytes()).map_err(|source| {
            InspectError::Dot {
                path: path.display().to_string(),
                source,
            }
        })
    }
}

impl fmt::Display for WorldReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n# graph\n{}", self.graph)?;
        writeln!(f, "min_timesteps in use       {}", self.min_timesteps)?;
        writeln!(f, "target_active in use       {}", self.target_active)?;
        writeln!(f, "threads per world          {}", self.threads)?;
        writeln!(f, "evaluation replicas        {}", self.eval_replicas)?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        for d in &self.schedules {
            writeln!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// `inspect --cache`: the radiation section of a finished run's `summary.json`.
///
/// Displays as `run <summary path>` followed by the radiation section of `neurograph run`.
#[derive(Clone, Debug)]
pub struct CacheReport {
    /// The summary file read.
    pub path: PathBuf,
    /// Its radiation section.
    pub radiation: RadiationReport,
}

/// The part of a run summary `inspect --cache` reads. The section is kept as JSON until it is
/// known to be there, so a summary without one and a malformed one get different messages.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct SummaryRadiation {
    #[serde(default, deserialize_with = "present")]
    radiation: Option<serde_json::Value>,
}

/// `Some` for any value that is present, `null` included (only an absent field is `None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl CacheReport {
    /// Reads the summary of the run in directory `run` (or the summary file `run` itself).
    pub fn read(run: &Path) -> Result<CacheReport, InspectError> {
        let path = if run.is_dir() {
            run.join(SUMMARY_FILE)
        } else {
            run.to_path_buf()
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| InspectError::Read {
            path: shown.clone(),
            source,
        })?;
        let summary: SummaryRadiation =
            serde_json::from_str(&text).map_err(|source| InspectError::NotJson {
                path: shown.clone(),
                source,
            })?;
        let section = summary.radiation.ok_or_else(|| InspectError::NoRadiation {
            path: shown.clone(),
        })?;
        let radiation =
            serde_json::from_value(section).map_err(|source| InspectError::Malformed {
                path: shown,
                source,
            })?;
        Ok(CacheReport { path, radiation })
    }
}

impl fmt::Display for CacheReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {}", self.path.display())?;
        write!(f, "{}", self.radiation)
    }
}
