//! Running scenes: the [`Runner`] executes a scene's script (train, evaluate, checkpoint,
//! restore, set) on a simulation and its evaluation replicas and writes the run's reports;
//! [`bench()`] and [`bench_training`] measure throughput; [`inspect`] describes a scene
//! without running it; [`experiment`] compares schedules.
//!
//! The parts: `runner` (building a run, evaluation on replica worlds, the script), `train`
//! (online training), `resume` (checkpoints), `tally` (sample outcomes into metrics), `bench`,
//! [`report`] (the report types and the run directory), [`plot`] (`curves.svg`), `progress`
//! and `time`. This module only drives the simulation and reports on it: the model's math
//! lives in [`crate::model`], the ECS in [`crate::sim`].

mod batches;
mod bench;
mod compare;
mod confusion;
mod evaluate;
pub mod experiment;
pub mod floor;
pub mod inspect;
pub mod inspect_run;
pub mod memory;
pub mod outdir;
pub mod plot;
pub mod predict;
mod progress;
pub mod provenance;
mod raster;
pub mod report;
mod resume;
mod runner;
pub mod scaling;
mod tally;
mod time;
pub mod trace_out;
mod train;

pub(crate) use crate::state::Tally;
pub use bench::{BenchMode, BenchReport, MAX_BENCH_SAMPLES, bench, bench_training};
pub use compare::{BackendComparison, BackendRow, compare_backends, floor_of};
pub use progress::progress_bar;
pub use report::{
    CacheSettingsReport, Evaluation, RadiationReport, RunReport, executor_name, split_name,
};
pub use runner::{RunError, load_data, stage_map, warnings};
pub use time::now_rfc3339;

use crate::data::Splits;
use crate::scene::Scene;
use crate::sim::Simulation;

// `Runner` and its cache are declared here, above `runner`, `train`, `resume` and `bench`, so
// that all four implement it on the same private fields.

/// Input encodings computed once per sample (evaluation uses no dropout, so they never change).
#[derive(Default)]
struct EncodingCache {
    entries: Vec<Option<Box<[u16]>>>,
}

/// Runs scenes: owns the simulation, its evaluation replicas, the data, and per-split
/// encoding caches.
pub struct Runner {
    scene: Scene,
    sim: Simulation,
    replicas: Vec<Simulation>,
    /// Batch worlds: run a training batch's samples beside the primary world (workspace).
    trainers: Vec<Simulation>,
    /// The chunk's per-sample gradients, reused (workspace).
    gradients: Vec<Vec<f32>>,
    data: Splits,
    caches: [EncodingCache; 3],
    quiet: bool,
    /// The runner's persistent state (the primary world holds its own).
    state: crate::state::RunnerState,
    /// Wall seconds spent in the open epoch by this process (workspace).
    epoch_seconds: f64,
    /// The online training loop's dropout encodings, one sample ahead (workspace).
    pipeline: train::Pipeline,
    /// Metrics of every training epoch so far.
    training: Vec<report::EpochMetrics>,
    /// Where reports and relative checkpoint paths go.
    out: Option<report::RunDir>,
    /// [`outdir::inputs_hash`] of the scene the run was built from.
    inputs: String,
    /// The scene's RON text as the script began.
    initial_text: String,
    /// Explicit `FIELD=VALUE` settings that win over a restored checkpoint's.
    overrides: Vec<String>,
    /// What each `Restore` step took from its checkpoint, for the manifest.
    restores: Vec<resume::RestoreNote>,
    /// The heap bytes of the worlds, measured as they were built.
    ledger: memory::Ledger,
    /// What [`runner::warnings`] found in the scene as built.
    warnings: Vec<String>,
    /// Set by another thread to stop the running training or evaluation after its current
    /// sample ([`Runner::interrupt_flag`]).
    interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// An error and each of its causes once, as the command line prints it: many messages already
/// name their source (an OS error, say), and printing the whole chain repeated it.
pub fn error_text(e: &anyhow::Error) -> String {
    chain_text(e.as_ref())
}

/// [`error_text`] for any error: its message and each cause not already in it.
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let causes = std::iter::successors(e.source(), |c| c.source()).map(|c| c.to_string());
    causes.fold(e.to_string(), |t, c| {
        if t.contains(&c) {
            t
        } else {
            format!("{t}: {c}")
        }
    })
}
