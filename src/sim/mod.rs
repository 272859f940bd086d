//! The ECS simulation: graph nodes as entities, stages as scheduled systems.
//!
//! [`Simulation`] owns a bevy `World` with one entity per node (role markers, `Phase`,
//! `Magnitude`, `Signal`; `Activation` while active) and the three schedules of
//! [`schedule`]. It runs one sample at a time: [`Simulation::run_encoded`] injects an encoded
//! input, runs the timestep schedule until the termination rule of SPEC 4 holds, and reads out.

mod build;
pub mod components;
pub mod describe;
mod optimize;
pub mod parallel;
mod persist;
pub mod resources;
pub mod schedule;
pub mod systems;
pub mod systrace;
pub mod trace;

use bevy_ecs::prelude::*;
use bevy_tasks::{ComputeTaskPool, TaskPoolBuilder};

use crate::graph::{Graph, GraphError, GraphStats, Roles};
use crate::model::adapter::{AdapterScratch, InputAdapter, quantize};
use crate::model::encodings::EncodingError;
use crate::model::rng::{self, Stream};
use crate::model::tables::Tables;
use crate::scene::{self as sc, ExecutorKind, Scene};
use build::{
    class_encodings, forward_settings, mirror_parameters, pending_gradients, training_settings,
};
use components::{
    Accumulator, HiddenNode, IndexVec, InputNode, Magnitude, Node, OutputNode, Phase, Signal,
};
pub use persist::StateError;
use resources::*;
pub use schedule::Stage;

/// Why a simulation could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The edge-list graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Explicit class encodings are invalid.
    #[error("encodings: {0}")]
    Encodings(#[from] EncodingError),
    /// A schedule failed to build (for example an ambiguous system pair).
    #[error("schedule {schedule} failed to build: {message}")]
    Schedule {
        /// The schedule.
        schedule: &'static str,
        /// bevy's explanation.
        message: String,
    },
}

/// What one forward pass produced.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleOutcome {
    /// Predicted class, `None` when no output was active.
    pub prediction: Option<u8>,
    /// The label.
    pub label: u8,
    /// Loss, when covered.
    pub loss: Option<f32>,
    /// Timesteps run.
    pub timesteps: u32,
    /// Mean over timesteps of the active count after arrivals (0 if no timestep ran).
    pub mean_active: f64,
    /// Active outputs at readout.
    pub active_outputs: u32,
    /// Index dimensions changed by this sample's update (0 when evaluating).
    pub parameters_changed: u32,
    /// The logits at readout, one per class (empty when no output was active).
    pub logits: Vec<f32>,
}

/// Pixels of a 28 × 28 image, the size of MNIST and of the embedded synthetic digits.
pub const MNIST_PIXELS: usize = 28 * 28;

/// Resolves a thread count of 0 to the machine's available parallelism.
pub fn resolve_threads(threads: u32) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads as usize
    }
}

/// A built simulation: the world, its schedules, and the input adapter.
pub struct Simulation {
    world: World,
    sync: Schedule,
    start: Schedule,
    step: Schedule,
    settle: Schedule,
    end: Schedule,
    settings: ForwardSettings,
    stats: GraphStats,
    adapter_scratch: AdapterScratch,
    adapter_out: Vec<f32>,
    threads: usize,
    executor: ExecutorKind,
}

impl Simulation {
    /// Builds the graph, draws parameters, spawns one entity per node and builds the schedules
    /// (with ambiguity detection at error level), for 28 × 28 input images.
    pub fn new(scene: &Scene) -> Result<Simulation, SimError> {
        Simulation::for_images(scene, MNIST_PIXELS)
    }

    /// Like [`Simulation::new`] for input images of `pixels` pixels.
    pub fn for_images(scene: &Scene, pixels: usize) -> Result<Simulation, SimError> {
        let a = &scene.architecture;
        let roles = Roles {
            total: a.total_nodes,
            inputs: a.input_nodes,
            outputs: a.output_nodes,
        };
        let graph = match &scene.graph {
            sc::GraphSource::Layered {
                cardinality,
                layers,
            } => Graph::layered(
                roles,
                *cardinality,
                *layers,
                &mut rng::stream(scene.seed, Stream::Graph),
            ),
            sc::GraphSource::EdgeList { path } => {
                Graph::from_edge_list(roles, std::path::Path::new(path))?
            }
        };
        Simulation::build(scene, graph, pixels)
    }

    /// Like [`Simulation::new`] with a graph built by the caller.
    pub fn with_graph(scene: &Scene, graph: Graph) -> Result<Simulation, SimError> {
        Simulation::build(scene, graph, MNIST_PIXELS)
    }

    fn build(scene: &Scene, graph: Graph, pixels: usize) -> Result<Simulation, SimError> {
        let dim = scene.architecture.vector_dim as usize;
        let (pn, mn) = (scene.resolution.phase_bins, scene.resolution.magnitude_bins);
        let tables = Tables::new(pn as usize, mn as usize);
        let stats = graph.stats();
        let n = graph.len();
        let order = crate::model::settle::Order::of(&graph);
        let depth = order.depth;
        let settings = forward_settings(scene, &stats, n, depth);

        // Parameters: node by node, D phases then D magnitudes, from the `params` stream.
        let mut params_rng = rng::stream(scene.seed, Stream::Params);
        let mut phase = vec![0u16; n * dim];
        let mut magnitude = vec![0u16; n * dim];
        for k in 0..n {
            for d in 0..dim {
                phase[k * dim + d] = rng::below(&mut params_rng, pn) as u16;
            }
            for d in 0..dim {
                magnitude[k * dim + d] = rng::below(&mut params_rng, mn) as u16;
            }
        }

        let mut adapter_rng = rng::stream(scene.seed, Stream::Adapter);
        let inputs = graph.roles.inputs as usize;
        let adapter = match scene.adapter {
            sc::Adapter::Mlp { hidden, dropout } => InputAdapter::mlp(
                pixels,
                hidden as usize,
                inputs,
                dim,
                dropout,
                &mut adapter_rng,
            ),
            sc::Adapter::Linear => InputAdapter::linear(pixels, inputs, dim, &mut adapter_rng),
        };
        let encodings = class_encodings(scene, &tables)?;

        let threads = resolve_threads(scene.schedule.threads);
        let executor = scene.schedule.executor;
        if executor == ExecutorKind::Multi {
            // bevy's pool is process-wide: the first simulation to need it sizes it.
            ComputeTaskPool::get_or_init(|| TaskPoolBuilder::new().num_threads(threads).build());
        }
        let mut world = World::new();
        let first_output = graph.roles.first_output();
        let mut entities = Vec::with_capacity(n);
        for k in 0..n {
            let mut p: IndexVec = Default::default();
            let mut m: IndexVec = Default::default();
            p[..dim].copy_from_slice(&phase[k * dim..(k + 1) * dim]);
            m[..dim].copy_from_slice(&magnitude[k * dim..(k + 1) * dim]);
            let mut s = [0.0f32; crate::model::MAX_DIM];
            tables.signal_vec(&p[..dim], &m[..dim], &mut s[..dim]);
            let base = (
                Node { index: k as u32 },
                Phase(p),
                Magnitude(m),
                Signal(s),
                Accumulator::default(),
            );
            let k32 = k as u32;
            let entity = if (k32) < graph.roles.inputs {
                world.spawn((base, InputNode { slot: k32 })).id()
            } else if k32 >= first_output {
                world
                    .spawn((
                        base,
                        OutputNode {
                            slot: k32 - first_output,
                        },
                    ))
                    .id()
            } else {
                world.spawn((base, HiddenNode)).id()
            };
            entities.push(entity);
        }
        world.insert_resource(LookupTables(tables));
        world.insert_resource(RadiationCache::new(&scene.radiation.cache));
        world.insert_resource(Topology { graph, entities });
        let mirror = mirror_parameters(&mut world, dim);
        world.insert_resource(mirror);
        world.insert_resource(settings.clone());
        world.insert_resource(Adapter(std::sync::Arc::new(adapter)));
        world.insert_resource(Encodings(encodings));
        world.insert_resource(CurrentSample::default());
        world.insert_resource(LoopState::default());
        world.insert_resource(ActiveSnapshot::default());
        world.insert_resource(RadiationTargets::default());
        world.insert_resource(Arrivals::default());
        world.insert_resource(Readout::default());
        world.insert_resource(StageClock::default());
        world.insert_resource(Workers {
            threads,
            batch_size: scene.schedule.batch_size.max(1) as usize,
            scratch: Vec::new(),
        });
        world.insert_resource(Emissions::default());
        world.insert_resource(PhasorArrivals::default());
        world.insert_resource(PhasorCarry(vec![Default::default(); n * dim]));
        let parts = match scene.schedule.granularity {
            sc::Granularity::Stage => 0,
            sc::Granularity::Split { parts } => parts as usize,
        };
        world.insert_resource(systems::radiation::RadiationParts {
            parts: (0..parts).map(|_| Default::default()).collect(),
        });
        world.insert_resource(training_settings(scene));
        world.insert_resource(Credit::default());
        world.insert_resource(PendingGradients(pending_gradients(scene, n, dim)));
        world.insert_resource(UpdateStats::default());
        world.insert_resource(SampleGradient::default());
        world.insert_resource(BackpropTape::default());
        world.insert_resource(OptimizerState::default());
        world.insert_resource(SettleOrder(order));
        world.insert_resource(SettledPass::default());

        let mut sim = Simulation {
            world,
            sync: schedule::parameter_sync(executor),
            start: schedule::sample_start(executor),
            step: schedule::timestep(executor, scene.schedule.granularity),
            settle: schedule::settle(executor),
            end: schedule::sample_end(executor),
            settings,
            stats,
            adapter_scratch: AdapterScratch::default(),
            adapter_out: Vec::new(),
            threads,
            executor,
        };
        sim.build_schedules()?;
        let clock = schedule::stage_clock(&sim.schedules())?;
        sim.world.insert_resource(clock);
        Ok(sim)
    }

    fn build_schedules(&mut self) -> Result<(), SimError> {
        for (name, schedule) in [
            ("ParameterSync", &mut self.sync),
            ("SampleStart", &mut self.start),
            ("Timestep", &mut self.step),
            ("Settle", &mut self.settle),
            ("SampleEnd", &mut self.end),
        ] {
            schedule
                .initialize(&mut self.world)
                .map_err(|e| SimError::Schedule {
                    schedule: name,
                    message: e.to_string(schedule.graph(), &self.world),
                })?;
        }
        Ok(())
    }

    /// Pixels per input image the adapter expects.
    pub fn pixels(&self) -> usize {
        self.world.resource::<Adapter>().0.pixels()
    }

    /// Encodes an image for evaluation (no dropout) into input phases and magnitudes,
    /// `[input node][dim]` each.
    ///
    /// # Panics
    /// If `image` does not have [`Simulation::pixels`] pixels (the runner builds the simulation
    /// for its dataset's image size).
    pub fn encode(&mut self, image: &[u8], phase: &mut [u16], magnitude: &mut [u16]) {
        self.encode_with(image, None, phase, magnitude);
    }

    fn encode_with(
        &mut self,
        image: &[u8],
        dropout_rng: Option<&mut rand_chacha::ChaCha8Rng>,
        phase: &mut [u16],
        magnitude: &mut [u16],
    ) {
        let adapter = &self.world.resource::<Adapter>().0;
        let bins = (self.settings.phase_bins, self.settings.magnitude_bins);
        let buffers = (&mut self.adapter_scratch, &mut self.adapter_out);
        encode_into(adapter, bins, image, dropout_rng, buffers, phase, magnitude);
    }

    /// An encoder of this world's inputs that runs apart from it (on another thread, while the
    /// world runs a sample): it shares the adapter and gives exactly [`Simulation::encode`]'s
    /// and [`Simulation::encode_training`]'s encodings.
    pub fn encoder(&self) -> Encoder {
        Encoder {
            adapter: std::sync::Arc::clone(&self.world.resource::<Adapter>().0),
            bins: (self.settings.phase_bins, self.settings.magnitude_bins),
            scratch: AdapterScratch::default(),
            out: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// Whether `encoder` still encodes like this world (its adapter was not replaced by a
    /// restore since).
    pub fn encodes_like(&self, encoder: &Encoder) -> bool {
        std::sync::Arc::ptr_eq(&encoder.adapter, &self.world.resource::<Adapter>().0)
            && encoder.bins == (self.settings.phase_bins, self.settings.magnitude_bins)
    }

    /// Length of an input encoding's phase (and magnitude) vector: inputs × D.
    pub fn encoding_len(&self) -> usize {
        self.world.resource::<Topology>().graph.roles.inputs as usize * self.settings.dim
    }

    /// Starts a sample: syncs changed parameters, clears the previous sample's state and
    /// injects the encoded input (`[input node][dim]` phases and magnitudes).
    pub fn begin_sample(&mut self, phase: &[u16], magnitude: &[u16], label: u8) {
        self.begin(phase, magnitude, label, false);
    }

    fn begin(&mut self, phase: &[u16], magnitude: &[u16], label: u8, training: bool) {
        {
            let mut sample = self.world.resource_mut::<CurrentSample>();
            sample.phase.clear();
            sample.phase.extend_from_slice(phase);
            sample.magnitude.clear();
            sample.magnitude.extend_from_slice(magnitude);
            sample.label = label;
            sample.training = training;
        }
        self.sync.run(&mut self.world);
        self.start.run(&mut self.world);
    }

    /// Whether the timestep loop must stop now (SPEC 4 step 1): nothing active, an output
    /// active at or after `min_timesteps`, or the `max_timesteps` limit.
    pub fn should_stop(&self) -> bool {
        let state = self.world.resource::<LoopState>();
        state.active_now == 0
            || (state.t >= self.settings.min_timesteps && state.outputs_active > 0)
            || state.t + 1 >= self.settings.max_timesteps
    }

    /// Runs one timestep (radiation, forward, eviction, termination count).
    pub fn step(&mut self) {
        self.step.run(&mut self.world);
        self.world.resource_mut::<LoopState>().t += 1;
    }

    /// Reads out the current sample.
    pub fn finish_sample(&mut self, label: u8) -> SampleOutcome {
        self.end.run(&mut self.world);
        // `Activation` is inserted and removed every timestep; bevy records each removal until
        // the trackers are cleared, so without this memory grew with every sample (issue 12,
        // item 7). Systems' change detection keeps its own ticks and is unaffected.
        self.world.clear_trackers();
        let state = self.world.resource::<LoopState>();
        let readout = self.world.resource::<Readout>();
        let training = self.world.resource::<CurrentSample>().training;
        let changed = self.world.resource::<UpdateStats>().last_dims_changed;
        SampleOutcome {
            parameters_changed: if training { changed } else { 0 },
            prediction: readout.prediction,
            label,
            loss: readout.loss,
            timesteps: state.t,
            mean_active: if state.t == 0 {
                0.0
            } else {
                state.active_sum as f64 / state.t as f64
            },
            active_outputs: readout.active_outputs,
            logits: readout.logits.clone(),
        }
    }

    /// Runs one forward pass on an encoded input: inject, timesteps until termination, readout.
    pub fn run_encoded(&mut self, phase: &[u16], magnitude: &[u16], label: u8) -> SampleOutcome {
        self.pass(phase, magnitude, label, false)
    }

    /// Runs one training sample on an encoded input: the forward pass, then credit assignment
    /// and the discrete update (SPEC 7).
    pub fn train_encoded(&mut self, phase: &[u16], magnitude: &[u16], label: u8) -> SampleOutcome {
        self.pass(phase, magnitude, label, true)
    }

    fn pass(
        &mut self,
        phase: &[u16],
        magnitude: &[u16],
        label: u8,
        training: bool,
    ) -> SampleOutcome {
        self.begin(phase, magnitude, label, training);
        if self.settings.settled {
            self.settle.run(&mut self.world);
        } else {
            while !self.should_stop() {
                self.step();
            }
        }
        self.finish_sample(label)
    }

    /// Encodes an image for training: adapter dropout drawn from `dropout_rng`.
    pub fn encode_training(
        &mut self,
        image: &[u8],
        dropout_rng: &mut rand_chacha::ChaCha8Rng,
        phase: &mut [u16],
        magnitude: &mut [u16],
    ) {
        self.encode_with(image, Some(dropout_rng), phase, magnitude);
    }

    /// Whether training encodings differ from evaluation ones (the adapter has dropout).
    pub fn has_dropout(&self) -> bool {
        self.world.resource::<Adapter>().0.has_dropout()
    }

    /// Re-reads the settings that may change mid-run (forward, radiation, loss, training) from
    /// the scene. Pending accumulated gradients are kept when gradient accumulation is
    /// unchanged and dropped otherwise.
    pub fn apply_settings(&mut self, scene: &Scene) {
        let n = self.settings.total_nodes as usize;
        let dim = self.settings.dim;
        let depth = self.world.resource::<SettleOrder>().0.depth;
        self.settings = forward_settings(scene, &self.stats, n, depth);
        self.world.insert_resource(self.settings.clone());
        self.world.insert_resource(training_settings(scene));
        if self.world.resource::<RadiationCache>().settings != scene.radiation.cache {
            // A new level 1 for the new settings; the counts of levels 2 and 3 carry on.
            let old = self
                .world
                .remove_resource::<RadiationCache>()
                .unwrap_or_default();
            let mut cache = RadiationCache::new(&scene.radiation.cache);
            cache.version = old.version;
            cache.static_counters = old.static_counters;
            cache.candidate_counters = old.candidate_counters;
            self.world.insert_resource(cache);
        }
        let fresh = pending_gradients(scene, n, dim);
        let mut pending = self.world.resource_mut::<PendingGradients>();
        let same = match (&pending.0, &fresh) {
            (Some(a), Some(b)) => a.steps() == b.steps() && a.scaling() == b.scaling(),
            (None, None) => true,
            _ => false,
        };
        if !same {
            pending.0 = fresh;
        }
    }

    /// Statistics of the radiation cache levels so far (level 1 only when enabled).
    pub fn radiation_stats(&self) -> Vec<crate::radiation::cache::LevelStats> {
        let cache = self.world.resource::<RadiationCache>();
        let params = self.world.resource::<NodeParams>();
        let topology = self.world.resource::<Topology>();
        cache.stats(&topology.graph.successors, &params.phasors)
    }

    /// The index backend's counts since the last reset, over every kernel buffer of this
    /// world: sources answered, nodes scored, buckets visited.
    pub fn index_counts(&self) -> (u64, u64, u64) {
        let workers = self.world.resource::<Workers>();
        let mut all: Vec<(u64, u64, u64)> =
            workers.scratch.iter().map(|s| s.index_counts()).collect();
        if let Some(parts) = self
            .world
            .get_resource::<systems::radiation::RadiationParts>()
        {
            all.extend(parts.parts.iter().map(|p| {
                p.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .index_counts()
            }));
        }
        all.into_iter()
            .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2))
    }

    /// Zeroes the radiation cache counts (level-1 entries stay: a warm cache).
    pub fn reset_radiation_counters(&mut self) {
        for s in &mut self.world.resource_mut::<Workers>().scratch {
            s.reset_counts();
        }
        if let Some(parts) = self
            .world
            .get_resource::<systems::radiation::RadiationParts>()
        {
            for p in &parts.parts {
                p.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .reset_counts();
            }
        }
        let mut cache = self.world.resource_mut::<RadiationCache>();
        cache.static_counters = Default::default();
        cache.candidate_counters = Default::default();
        if let Some(p) = cache.pattern.as_mut() {
            p.reset_counters();
        }
    }

    /// The radiation cache resource (level 1 and the counts).
    pub fn radiation_cache(&self) -> &RadiationCache {
        self.world.resource::<RadiationCache>()
    }

    /// A fingerprint of the static graph (FNV-1a over both CSR arrays), to refuse checkpoints
    /// made for another graph.
    pub fn graph_fingerprint(&self) -> u64 {
        let g = &self.world.resource::<Topology>().graph;
        let mut h = crate::hash::Fnv1a::new();
        for &x in g.successors.offsets.iter().chain(&g.successors.items) {
            h.write(&x.to_le_bytes());
        }
        h.finish()
    }

    /// The active nodes, ascending by index, with their activations.
    pub fn activations(&mut self) -> Vec<(u32, components::Activation)> {
        let mut q = self.world.query::<(&Node, &components::Activation)>();
        let mut v: Vec<_> = q.iter(&self.world).map(|(n, a)| (n.index, *a)).collect();
        v.sort_unstable_by_key(|&(k, _)| k);
        v
    }

    /// All node parameters as dense `[node][dim]` arrays (phase, magnitude), read from the
    /// components.
    pub fn parameters(&mut self) -> (Vec<u16>, Vec<u16>) {
        let dim = self.settings.dim;
        let n = self.settings.total_nodes as usize;
        let (mut phase, mut magnitude) = (vec![0u16; n * dim], vec![0u16; n * dim]);
        let mut q = self.world.query::<(&Node, &Phase, &Magnitude)>();
        for (node, p, m) in q.iter(&self.world) {
            let k = node.index as usize;
            phase[k * dim..(k + 1) * dim].copy_from_slice(&p.0[..dim]);
            magnitude[k * dim..(k + 1) * dim].copy_from_slice(&m.0[..dim]);
        }
        (phase, magnitude)
    }

    /// The loop state (timestep, τ, counts).
    pub fn loop_state(&self) -> &LoopState {
        self.world.resource::<LoopState>()
    }

    /// Sets node `k`'s parameters (takes effect at the next sample start).
    pub fn set_params(&mut self, k: usize, phase: &[u16], magnitude: &[u16]) {
        let entity = self.world.resource::<Topology>().entities[k];
        let dim = self.settings.dim;
        let mut e = self.world.entity_mut(entity);
        if let Some(mut p) = e.get_mut::<Phase>() {
            p.0[..dim].copy_from_slice(phase);
        }
        if let Some(mut m) = e.get_mut::<Magnitude>() {
            m.0[..dim].copy_from_slice(magnitude);
        }
    }

    /// Encodes and runs one image.
    pub fn run_image(&mut self, image: &[u8], label: u8) -> SampleOutcome {
        let len = self.encoding_len();
        let (mut p, mut m) = (vec![0u16; len], vec![0u16; len]);
        self.encode(image, &mut p, &mut m);
        self.run_encoded(&p, &m, label)
    }

    /// The five schedules by name: ParameterSync, SampleStart, Timestep, Settle, SampleEnd
    /// (built and initialised).
    pub fn schedules(&self) -> [(&'static str, &Schedule); 5] {
        [
            ("ParameterSync", &self.sync),
            ("SampleStart", &self.start),
            ("Timestep", &self.step),
            ("Settle", &self.settle),
            ("SampleEnd", &self.end),
        ]
    }

    /// The world, for inspection and tests.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The world, mutably (tests and tools that edit parameters).
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// Resolved forward settings.
    pub fn settings(&self) -> &ForwardSettings {
        &self.settings
    }

    /// The class encodings the readout compares against (learned ones as they are now).
    pub fn class_encodings(&self) -> &crate::model::encodings::ClassEncodings {
        &self.world.resource::<Encodings>().0
    }

    /// Statistics of the graph this world was built on.
    pub fn graph_stats(&self) -> &GraphStats {
        &self.stats
    }

    /// Number of classes C.
    pub fn settings_classes(&self) -> usize {
        self.world.resource::<Encodings>().0.classes
    }

    /// Kernel threads in use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Executor kind in use.
    pub fn executor(&self) -> ExecutorKind {
        self.executor
    }

    /// Seconds spent per stage since the last [`Simulation::reset_clock`].
    pub fn stage_seconds(&self) -> Vec<(Stage, f64)> {
        self.world.resource::<StageClock>().seconds()
    }

    /// Seconds spent per system since the last reset: (system, its stage, seconds).
    pub fn system_seconds(&self) -> Vec<(String, Stage, f64)> {
        self.world.resource::<StageClock>().system_seconds()
    }

    /// Turns the stage and system clock on or off (to measure its overhead).
    pub fn set_timing(&self, on: bool) {
        self.world.resource::<StageClock>().set_enabled(on);
    }

    /// Zeroes the stage clock.
    pub fn reset_clock(&self) {
        self.world.resource::<StageClock>().reset();
    }

    /// Adds time spent outside the schedules (input encoding) to a stage.
    pub fn add_stage_time(&self, stage: Stage, since: std::time::Instant) {
        drop(resources::StageTimer::started(
            self.world.resource::<StageClock>(),
            stage,
            since,
        ));
    }
}

/// The adapter then the quantisation: one input encoding into `phase` and `magnitude`.
fn encode_into(
    adapter: &InputAdapter,
    (phase_bins, magnitude_bins): (u32, u32),
    image: &[u8],
    dropout_rng: Option<&mut rand_chacha::ChaCha8Rng>,
    (scratch, out): (&mut AdapterScratch, &mut Vec<f32>),
    phase: &mut [u16],
    magnitude: &mut [u16],
) {
    out.resize(adapter.output_len(), 0.0);
    adapter.encode(image, dropout_rng, scratch, out);
    quantize(out, phase_bins, magnitude_bins, phase, magnitude);
}

/// A world's input encoder that runs apart from the world ([`Simulation::encoder`]).
pub struct Encoder {
    adapter: std::sync::Arc<InputAdapter>,
    bins: (u32, u32),
    scratch: AdapterScratch,
    out: Vec<f32>,
    /// [`Encoder::encode_batch`]'s scratch, one per image.
    batch: Vec<AdapterScratch>,
}

impl Encoder {
    /// Encodes `image` (with dropout from `dropout_rng` when given, as training does).
    pub fn encode(
        &mut self,
        image: &[u8],
        dropout_rng: Option<&mut rand_chacha::ChaCha8Rng>,
        phase: &mut [u16],
        magnitude: &mut [u16],
    ) {
        let buffers = (&mut self.scratch, &mut self.out);
        encode_into(
            &self.adapter,
            self.bins,
            image,
            dropout_rng,
            buffers,
            phase,
            magnitude,
        );
    }

    /// Evaluation encodings (no dropout) of `images`, each `[phases, magnitudes]` as
    /// [`Simulation::encode`] gives them, bit for bit; the adapter runs on batches of
    /// [`MAX_BATCH`](crate::model::adapter::MAX_BATCH) images.
    pub fn encode_batch(&mut self, images: &[&[u8]]) -> Vec<Box<[u16]>> {
        let n = self.adapter.output_len();
        let half = n / 2;
        let mut encoded = Vec::with_capacity(images.len());
        for chunk in images.chunks(crate::model::adapter::MAX_BATCH) {
            self.out.resize(chunk.len() * n, 0.0);
            let mut outs: Vec<&mut [f32]> = self.out.chunks_exact_mut(n).collect();
            self.adapter.encode_batch(chunk, &mut self.batch, &mut outs);
            for out in self.out.chunks_exact(n) {
                let mut both = vec![0u16; 2 * half].into_boxed_slice();
                let (phase, magnitude) = both.split_at_mut(half);
                quantize(out, self.bins.0, self.bins.1, phase, magnitude);
                encoded.push(both);
            }
        }
        encoded
    }
}
