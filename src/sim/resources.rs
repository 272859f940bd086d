//! Resources: settings, tables, topology, buffers reused across timesteps, and statistics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bevy_ecs::prelude::*;

use crate::graph::Graph;
use crate::model::adapter::InputAdapter;
use crate::model::arrivals::ArrivalSums;
use crate::model::encodings::ClassEncodings;
use crate::model::tables::Tables;
use crate::radiation::{PhasorMatrix, Scratch};
use crate::scene::Inhibition;
pub use crate::sim::schedule::Stage;

/// The lookup tables (SPEC 2).
#[derive(Resource)]
pub struct LookupTables(pub Tables);

/// The static graph and the entity of each node index.
#[derive(Resource)]
pub struct Topology {
    /// The graph.
    pub graph: Graph,
    /// Entity of node index k.
    pub entities: Vec<Entity>,
}

/// Settings of the forward pass, resolved from the scene.
#[derive(Resource, Clone, Debug)]
pub struct ForwardSettings {
    /// D.
    pub dim: usize,
    /// N.
    pub phase_bins: u32,
    /// M.
    pub magnitude_bins: u32,
    /// Loop ends at t >= max_timesteps - 1.
    pub max_timesteps: u32,
    /// Earliest timestep at which an active output ends the loop.
    pub min_timesteps: u32,
    /// Strength decay per timestep.
    pub decay: f32,
    /// τ at the start of each sample.
    pub min_strength: f32,
    /// T, the wanted number of active nodes.
    pub target_active: f32,
    /// Total nodes.
    pub total_nodes: u32,
    /// Negative-arrival treatment.
    pub inhibition: Inhibition,
    /// τ adaptation constants.
    pub tau: crate::scene::TauAdaptation,
    /// Whether radiation is on.
    pub radiation: bool,
    /// K.
    pub top_k: usize,
    /// The radiation kernel (`radiation.backend` resolved for this CPU).
    pub backend: crate::radiation::Backend,
    /// Softmax temperature.
    pub temperature: f32,
    /// Label smoothing.
    pub label_smoothing: f32,
    /// `forward.combine`: `None` for `Sum`, the phasor weight for `Phasor`.
    pub phasor: Option<crate::model::phasor::Weight>,
    /// `forward.carry`.
    pub carry: crate::scene::Carry,
    /// Whether τ adaptation, decay and pruning run (always with `Accumulate`; with `Replace`
    /// only when `forward.prune`).
    pub evict: bool,
    /// `loss.readout`.
    pub readout: crate::model::readout::Readout,
    /// Whether a sample runs as the settled pass ([`crate::model::settle`]) instead of the
    /// timestep loop: `forward.settle`, `Phasor`, `Replace`, no eviction, no radiation, and a
    /// loop of at least the graph's depth.
    pub settled: bool,
    /// `forward.silence_hidden`: hidden nodes never become active.
    pub silence_hidden: bool,
}

impl ForwardSettings {
    /// The settings of the settled pass ([`crate::model::settle`]).
    pub fn settle(&self) -> crate::model::settle::Settings {
        crate::model::settle::Settings {
            dim: self.dim,
            weight: self.phasor.unwrap_or_default(),
            inhibition: self.inhibition,
            silence_hidden: self.silence_hidden,
        }
    }
}

/// Dense copies of all node parameters, `[node][dim]`, and their phasor matrix: a mirror of
/// the `Phase`/`Magnitude` components, written only by the parameter-sync system
/// ([`crate::sim::systems::inject::sync_params`]), so it is workspace and never saved.
#[derive(Resource)]
pub struct NodeParams {
    /// θφ of every node.
    pub phase: Vec<u16>,
    /// θμ of every node.
    pub magnitude: Vec<u16>,
    /// Phasors of θφ for the radiation kernel.
    pub phasors: PhasorMatrix,
}

impl NodeParams {
    /// Mirrors node `k`'s parameters (D values each); returns whether its phases changed. The
    /// one function that writes the mirror.
    pub fn write_node(
        &mut self,
        tables: &Tables,
        k: usize,
        phase: &[u16],
        magnitude: &[u16],
    ) -> bool {
        let dim = phase.len();
        let row = &mut self.phase[k * dim..(k + 1) * dim];
        let changed = row != phase;
        row.copy_from_slice(phase);
        self.magnitude[k * dim..(k + 1) * dim].copy_from_slice(magnitude);
        if changed {
            self.phasors.set_node(tables, k, phase);
        }
        changed
    }
}

/// The fixed input adapter, shared (read-only) with encoders that run beside the world
/// ([`crate::sim::Encoder`]); a restore that changes it gives the world a new copy.
#[derive(Resource)]
pub struct Adapter(pub std::sync::Arc<InputAdapter>);

/// The class encodings.
#[derive(Resource)]
pub struct Encodings(pub ClassEncodings);

/// The sample being processed: its input encoding (phase and magnitude per input node,
/// `[node][dim]`) and label.
#[derive(Resource, Default)]
pub struct CurrentSample {
    /// Phase indices of the input nodes.
    pub phase: Vec<u16>,
    /// Magnitude indices of the input nodes.
    pub magnitude: Vec<u16>,
    /// The label.
    pub label: u8,
    /// Whether this sample trains (credit and update run after readout).
    pub training: bool,
}

/// The state of the timestep loop of one sample.
#[derive(Resource, Debug, Default, Clone)]
pub struct LoopState {
    /// Timesteps run so far in this sample.
    pub t: u32,
    /// Pruning threshold τ.
    pub tau: f32,
    /// Active nodes after the last arrival step (n of SPEC 4 step 5).
    pub active_after_arrivals: u32,
    /// Sum of `active_after_arrivals` over this sample's timesteps.
    pub active_sum: u64,
    /// Active nodes now.
    pub active_now: u32,
    /// Active outputs now.
    pub outputs_active: u32,
    /// Whether this sample ran as the settled pass.
    pub settled: bool,
}

/// The settled pass's topological order and the graph's depth (built once).
#[derive(Resource, Default)]
pub struct SettleOrder(pub crate::model::settle::Order);

/// The settled pass's activations and cells of the current sample (workspace).
#[derive(Resource, Default)]
pub struct SettledPass(pub crate::model::settle::Settled);

/// The active nodes of the current timestep, gathered in ascending index order before any
/// arrival is applied (the synchronous "old" state every arrival reads).
#[derive(Resource, Default)]
pub struct ActiveSnapshot {
    /// Active node indices, ascending.
    pub nodes: Vec<u32>,
    /// φa per listed node, `[i][dim]`.
    pub phase: Vec<u16>,
    /// μa per listed node.
    pub magnitude: Vec<u16>,
    /// σ per listed node.
    pub strength: Vec<f32>,
    /// Position in `nodes` of each node index, or u32::MAX if inactive.
    pub slot_of: Vec<u32>,
}

/// Radiation targets of each active source, `top_k` slots per entry of the snapshot.
#[derive(Resource, Default)]
pub struct RadiationTargets {
    /// Slots per source.
    pub k: usize,
    /// Targets, `k` per source (unused slots hold u32::MAX).
    pub targets: Vec<u32>,
    /// Number of targets of each source.
    pub counts: Vec<u32>,
}

impl RadiationTargets {
    /// Targets of the i-th source of the snapshot.
    pub fn of(&self, i: usize) -> &[u32] {
        &self.targets[i * self.k..i * self.k + self.counts[i] as usize]
    }
}

/// The multi-level radiation cache (SPEC 5) of this world, the parameter version its entries
/// are aged by, its counts, and the work list of the current timestep.
#[derive(Resource, Debug, Default)]
pub struct RadiationCache {
    /// The scene's `radiation.cache` settings this cache was built with.
    pub settings: crate::scene::RadiationCache,
    /// The one parameter version: increased by the parameter sync whenever it sees any node's
    /// phase parameters change (updates, restores, direct sets alike), and nowhere else.
    /// Persistent state.
    pub version: u64,
    /// Level 1, when `radiation.cache.enabled`.
    pub pattern: Option<crate::radiation::cache::PatternCache>,
    /// Level 2 lookups: one per radiating source (its static successors, the exclusion list).
    pub static_counters: crate::radiation::cache::Counters,
    /// Level 3 lookups: one per kernel run (the source's candidate set).
    pub candidate_counters: crate::radiation::cache::Counters,
    /// Snapshot indices of this timestep's sources that the kernel must compute.
    pub misses: Vec<u32>,
    /// Their pattern keys (when level 1 is on), in the same order.
    pub keys: Vec<crate::radiation::cache::PatternKey>,
    /// The kernel's targets for the misses, `k` slots each.
    pub miss_targets: Vec<u32>,
    /// Number of targets of each miss.
    pub miss_counts: Vec<u32>,
}

impl RadiationCache {
    /// A cache configured by the scene's `radiation.cache` (level 1 off when not enabled).
    pub fn new(settings: &crate::scene::RadiationCache) -> RadiationCache {
        RadiationCache {
            pattern: settings.enabled.then(|| {
                crate::radiation::cache::PatternCache::new(
                    settings.capacity as usize,
                    settings.quantization,
                    u64::from(settings.max_staleness),
                )
            }),
            settings: settings.clone(),
            ..Default::default()
        }
    }

    /// The statistics of the three levels (level 1 only when enabled), given the static
    /// neighbour lists and the phasor matrix that levels 2 and 3 hold.
    pub fn stats(
        &self,
        successors: &crate::graph::Csr,
        phasors: &crate::radiation::PhasorMatrix,
    ) -> Vec<crate::radiation::cache::LevelStats> {
        use crate::radiation::cache::LevelStats;
        let nodes = phasors.nodes() as u64;
        let csr_bytes = std::mem::size_of_val(&successors.offsets[..])
            + std::mem::size_of_val(&successors.items[..]);
        let mut levels: Vec<LevelStats> = self.pattern.iter().map(|p| p.stats()).collect();
        levels.push(LevelStats::new(
            "static",
            &self.static_counters,
            nodes,
            csr_bytes as u64,
        ));
        levels.push(LevelStats::new(
            "candidates",
            &self.candidate_counters,
            nodes,
            phasors.bytes() as u64,
        ));
        levels
    }
}

/// Per-node sums of one timestep's kept arrivals, reused across timesteps; written by
/// `forward::accumulate_arrivals`, read by `forward::apply_arrivals`.
#[derive(Resource, Default)]
pub struct Arrivals(
    /// The sums (`combine: Sum`).
    pub ArrivalSums,
    /// An all-inactive slot map (every entry `u32::MAX`), the prior of `carry: Replace`.
    pub Vec<u32>,
);

/// Per-node phasor sums of one timestep's kept arrivals (`forward.combine: Phasor`).
#[derive(Resource, Default)]
pub struct PhasorArrivals(pub crate::model::phasor::PhasorSums);

/// The persisted phasor sums of every active node, `[node][dim]` (`combine: Phasor` with
/// `carry: Accumulate`): written when a node's activation is computed or injected, read as its
/// starting point while it stays active. Workspace of one sample.
#[derive(Resource, Default)]
pub struct PhasorCarry(pub Vec<crate::model::phasor::PhasorSum>);

/// Threads for the parallel parts of systems (see [`crate::sim::parallel`]) and the radiation
/// kernel's buffers, one per thread.
#[derive(Resource)]
pub struct Workers {
    /// Threads a system may use, the calling thread included.
    pub threads: usize,
    /// Sources per unit of work (`schedule.batch_size`).
    pub batch_size: usize,
    /// Per-thread kernel buffers.
    pub scratch: Vec<Scratch>,
}

/// The phase cells of every (source, target) pair of a timestep, computed in parallel per
/// source; source i's cells are `offsets[i]..offsets[i+1]`, static targets first.
#[derive(Resource, Default)]
pub struct Emissions {
    /// Start of each source's cells, `sources + 1` entries.
    pub offsets: Vec<u32>,
    /// Target node of each cell.
    pub target: Vec<u32>,
    /// φo of each cell, `[cell][dim]`.
    pub phase: Vec<u16>,
    /// μo of each cell.
    pub magnitude: Vec<u16>,
    /// Strength s of each cell.
    pub strength: Vec<f32>,
    /// Whether this timestep's cells went straight into [`Arrivals`] as they were computed
    /// (`combine: Sum` on one thread without a backprop tape), leaving the cell buffers empty.
    pub fused: bool,
    /// Keep the cells in the buffers even where they could be fused (a trace reads them; the
    /// sums are the same either way).
    pub keep: bool,
}

/// The result of the current sample's readout.
#[derive(Resource, Debug, Default, Clone)]
pub struct Readout {
    /// Logits z (empty when no output was active).
    pub logits: Vec<f32>,
    /// Predicted class.
    pub prediction: Option<u8>,
    /// Cross-entropy loss, when covered.
    pub loss: Option<f32>,
    /// Active outputs at readout.
    pub active_outputs: u32,
}

/// Wall time spent per stage and per system, in nanoseconds. Shared through `Res` (atomics
/// inside), so timing creates no scheduling conflicts. Can be switched off to measure its own
/// overhead.
///
/// Systems are registered once, after the schedules are built, by their full name with the
/// label reports use and the one [`Stage`] set that holds them
/// ([`crate::sim::schedule::stage_clock`]); a system then times itself with
/// [`crate::sim::systems::Ctx::time`], which looks its entry up by name and allocates nothing.
#[derive(Resource)]
pub struct StageClock {
    nanos: [AtomicU64; Stage::ALL.len()],
    systems: HashMap<String, SystemClock>,
    enabled: AtomicBool,
}

/// One registered system: its label, its stage and the time it took.
#[derive(Debug)]
struct SystemClock {
    label: String,
    stage: Stage,
    nanos: AtomicU64,
    runs: AtomicU64,
}

impl Default for StageClock {
    fn default() -> Self {
        StageClock {
            nanos: Default::default(),
            systems: HashMap::new(),
            enabled: AtomicBool::new(true),
        }
    }
}

impl StageClock {
    /// Registers the system named `system` (bevy's full name) with its report label and stage.
    /// Registering a name again with the same label and stage changes nothing (instances of one
    /// system share a name).
    ///
    /// # Errors
    /// The stage already registered for `system`, when it differs.
    pub fn register(&mut self, system: &str, label: &str, stage: Stage) -> Result<(), Stage> {
        if let Some(entry) = self.systems.get(system) {
            return if entry.stage == stage && entry.label == label {
                Ok(())
            } else {
                Err(entry.stage)
            };
        }
        self.systems.insert(
            system.to_string(),
            SystemClock {
                label: label.to_string(),
                stage,
                nanos: AtomicU64::new(0),
                runs: AtomicU64::new(0),
            },
        );
        Ok(())
    }

    /// The label and stage registered for the system named `system`.
    pub fn registered(&self, system: &str) -> Option<(&str, Stage)> {
        self.systems
            .get(system)
            .map(|e| (e.label.as_str(), e.stage))
    }

    /// Starts timing the system named `system`; when the guard drops its time is added to the
    /// system and its stage. An unregistered system is not timed.
    pub fn time_system(&self, system: &str) -> StageTimer<'_> {
        if !self.enabled.load(Ordering::Relaxed) {
            return StageTimer::idle(self);
        }
        match self.systems.get(system) {
            Some(entry) => StageTimer {
                clock: self,
                stage: entry.stage,
                system: Some(entry),
                start: Some(Instant::now()),
            },
            None => StageTimer::idle(self),
        }
    }

    /// Turns timing on or off (off: the guards read no clock).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Seconds accumulated per stage.
    pub fn seconds(&self) -> Vec<(Stage, f64)> {
        Stage::ALL
            .iter()
            .map(|&s| {
                (
                    s,
                    self.nanos[s as usize].load(Ordering::Relaxed) as f64 * 1e-9,
                )
            })
            .collect()
    }

    /// Seconds accumulated per system that ran since the last reset (label, its stage,
    /// seconds), by label.
    pub fn system_seconds(&self) -> Vec<(String, Stage, f64)> {
        let mut out: Vec<(String, Stage, f64)> = Vec::new();
        for e in self.systems.values() {
            if e.runs.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let secs = e.nanos.load(Ordering::Relaxed) as f64 * 1e-9;
            match out.iter_mut().find(|(label, ..)| *label == e.label) {
                Some(row) => row.2 += secs,
                None => out.push((e.label.clone(), e.stage, secs)),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Resets all stages and systems to zero (registrations stay).
    pub fn reset(&self) {
        for n in &self.nanos {
            n.store(0, Ordering::Relaxed);
        }
        for e in self.systems.values() {
            e.nanos.store(0, Ordering::Relaxed);
            e.runs.store(0, Ordering::Relaxed);
        }
    }
}

/// Adds the elapsed time to its stage (and system) when dropped.
pub struct StageTimer<'a> {
    clock: &'a StageClock,
    stage: Stage,
    system: Option<&'a SystemClock>,
    start: Option<Instant>,
}

impl<'a> StageTimer<'a> {
    /// A timer for `stage` that started at `start`.
    pub fn started(clock: &'a StageClock, stage: Stage, start: Instant) -> StageTimer<'a> {
        StageTimer {
            clock,
            stage,
            system: None,
            start: Some(start),
        }
    }

    /// A guard that adds nothing.
    fn idle(clock: &'a StageClock) -> StageTimer<'a> {
        StageTimer {
            clock,
            stage: Stage::Inject,
            system: None,
            start: None,
        }
    }
}

impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        let Some(start) = self.start else {
            return;
        };
        let ns = start.elapsed().as_nanos() as u64;
        self.clock.nanos[self.stage as usize].fetch_add(ns, Ordering::Relaxed);
        if let Some(entry) = self.system {
            entry.nanos.fetch_add(ns, Ordering::Relaxed);
            entry.runs.fetch_add(1, Ordering::Relaxed);
            if super::systrace::enabled() {
                super::systrace::record(&entry.label, self.stage, start, ns);
            }
        }
    }
}

/// Training settings resolved from the scene (SPEC 7).
#[derive(Resource, Clone, Debug)]
pub struct TrainingSettings {
    /// The discrete update rule.
    pub rule: crate::model::update::UpdateRule,
    /// Chain-rule derivative of the magnitude table.
    pub gradient: crate::model::credit::GradientMode,
    /// Weight of the hidden credit (0 disables it).
    pub hidden_credit_weight: f32,
    /// `training.credit`.
    pub credit: crate::scene::CreditSetting,
    /// `training.optimizer`: `None` for the sign rule of SPEC 7, else the float optimizer and
    /// its per-epoch decay.
    pub float: Option<(crate::model::optimizer::FloatOptimizer, f32)>,
    /// `training.batch_size`.
    pub batch_size: u32,
    /// `training.learn_encodings`.
    pub learn_encodings: bool,
    /// `training.freeze_hidden`: hidden nodes' parameters are never updated.
    pub freeze_hidden: bool,
}

impl TrainingSettings {
    /// Whether training takes the batch path: each sample leaves its gradient in
    /// [`SampleGradient`] and the runner applies batches ([`crate::sim::Simulation::apply_batch`]),
    /// instead of the SPEC 7 per-sample update inside the SampleEnd schedule.
    pub fn batched(&self) -> bool {
        self.float.is_some() || self.batch_size > 1 || self.learn_encodings
    }
}

/// One sample's gradient in index units (per bin), laid out as [`GradLayout`] says: node
/// phases, node magnitudes, encoding phases, encoding magnitudes. Workspace.
#[derive(Resource, Clone, Debug, Default)]
pub struct SampleGradient {
    /// The gradient (all zero for an uncovered sample).
    pub values: Vec<f32>,
}

/// Where each kind of index sits in a [`SampleGradient`], the float shadows and the batch sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradLayout {
    /// Node parameter cells, `n·D`.
    pub cells: usize,
    /// Encoding cells, `C·D`.
    pub encoding: usize,
}

impl GradLayout {
    /// Total length.
    pub fn len(&self) -> usize {
        2 * self.cells + 2 * self.encoding
    }
    /// Whether the layout is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Node phases.
    pub fn phase(&self) -> std::ops::Range<usize> {
        0..self.cells
    }
    /// Node magnitudes.
    pub fn magnitude(&self) -> std::ops::Range<usize> {
        self.cells..2 * self.cells
    }
    /// Encoding phases.
    pub fn enc_phase(&self) -> std::ops::Range<usize> {
        2 * self.cells..2 * self.cells + self.encoding
    }
    /// Encoding magnitudes.
    pub fn enc_magnitude(&self) -> std::ops::Range<usize> {
        2 * self.cells + self.encoding..self.len()
    }
}

/// The optimizer's persistent state on the batch path: the float shadows of every index and
/// the moments (laid out as [`GradLayout`]; empty under the sign rule), the number of steps
/// taken, and the batch being summed.
#[derive(Resource, Clone, Debug, Default)]
pub struct OptimizerState {
    /// Float shadows θ̃.
    pub shadows: Vec<f32>,
    /// First moment (Adam) or velocity (SGD).
    pub moment1: Vec<f32>,
    /// Second moment (Adam).
    pub moment2: Vec<f32>,
    /// Optimizer steps taken (Adam's bias correction).
    pub steps: u64,
    /// Samples summed into `batch_sum` so far.
    pub batch_samples: u32,
    /// Gradients of the batch's samples so far, summed in sample order.
    pub batch_sum: Vec<f32>,
}

/// The recorded arrivals of the current training sample ([`crate::model::backprop::Tape`])
/// and the reverse pass's buffers. Workspace.
#[derive(Resource, Default)]
pub struct BackpropTape {
    /// The tape.
    pub tape: crate::model::backprop::Tape,
    /// Reverse-pass buffers.
    pub scratch: crate::model::backprop::Scratch,
    /// Nodes active at readout.
    pub final_active: Vec<u32>,
    /// `∂L/∂φa` at readout, `[node][dim]`.
    pub seed_phase: Vec<f32>,
    /// `∂L/∂μa` at readout.
    pub seed_magnitude: Vec<f32>,
    /// The settled reverse pass's activation gradients (phase, magnitude).
    pub settled_scratch: (Vec<f32>, Vec<f32>),
    /// The read-out gradient's buffers, reused.
    pub readout: ReadoutScratch,
}

/// Buffers of the read-out gradient: the active outputs' slots and signals and the gradients
/// of the logits, the signals and the encodings' signals.
#[derive(Default)]
pub struct ReadoutScratch {
    /// Active outputs' slots, ascending, with their node index.
    pub outputs: Vec<(u32, u32)>,
    /// Output slots in order.
    pub slots: Vec<u32>,
    /// Their signals, `[output][dim]`.
    pub signals: Vec<f32>,
    /// ∂L/∂z.
    pub g_z: Vec<f32>,
    /// ∂L/∂so.
    pub g_signals: Vec<f32>,
    /// ∂L/∂e (signals).
    pub g_encodings: Vec<f32>,
}

/// Credit of the current sample in contiguous arrays: the credited nodes (outputs in slot
/// order, then the other active nodes in index order) and their index-space gradients.
#[derive(Resource, Default)]
pub struct Credit {
    /// Credited node indices.
    pub nodes: Vec<u32>,
    /// Number of leading entries of `nodes` that are outputs.
    pub outputs: usize,
    /// Activation phase φa of each credited node, `[node][dim]`.
    pub act_phase: Vec<u16>,
    /// Activation magnitude μa of each credited node, `[node][dim]`.
    pub act_magnitude: Vec<u16>,
    /// Activation signals so = cosT[φa]·A[μa], `[node][dim]`.
    pub signals: Vec<f32>,
    /// Signal-space credit g, `[node][dim]`.
    pub g: Vec<f32>,
    /// Phase gradients gφ, `[node][dim]`.
    pub g_phase: Vec<f32>,
    /// Magnitude gradients gμ, `[node][dim]`.
    pub g_magnitude: Vec<f32>,
    /// Softmax minus target per class (output credit's δ).
    pub delta: Vec<f32>,
}

/// Gradient accumulation over several samples, when the scene asks for it.
#[derive(Resource)]
pub struct PendingGradients(pub Option<crate::model::update::GradientAccumulation>);

/// Counts of what the last update did (workspace; the parameter version lives in
/// [`RadiationCache::version`]).
#[derive(Resource, Debug, Default, Clone)]
pub struct UpdateStats {
    /// Whether the last training sample changed any parameter.
    pub last_changed: bool,
    /// Index dimensions changed by the last training sample.
    pub last_dims_changed: u32,
}
