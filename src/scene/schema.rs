//! The scene schema: every setting a scene file can hold, with the SPEC's defaults.
//!
//! Each struct rejects unknown fields and fills absent fields from its `Default`, so a scene
//! only names what it changes. Fields of enum variants (`Layered(cardinality: 8)`) have
//! defaults too, except those without a sensible one (`EdgeList` path, `Idx` dir, `Explicit`
//! tables, `Evaluate` split, `Checkpoint` / `Restore` path, `Set` field and value). Ranges are checked by [`super::validate`], not here.

use serde::{Deserialize, Serialize};

/// A whole scene: the model, its data, how to schedule it and the script of steps to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scene {
    /// A short name used for run directories and reports.
    pub name: String,
    /// Master seed; every random stream is derived from it and a fixed stream name.
    pub seed: u64,
    /// Node counts and vector sizes (SPEC 1).
    pub architecture: Architecture,
    /// Phase and magnitude bin counts (SPEC 2).
    pub resolution: Resolution,
    /// How the static graph is made (SPEC 3).
    pub graph: GraphSource,
    /// Timestep loop, τ adaptation and eviction (SPEC 4).
    pub forward: Forward,
    /// Dynamic neighbour selection (SPEC 5).
    pub radiation: Radiation,
    /// Logits and loss (SPEC 6).
    pub loss: Loss,
    /// Credit assignment and the discrete update (SPEC 7).
    pub training: Training,
    /// Image to (phase, magnitude) adapter (SPEC 8).
    pub adapter: Adapter,
    /// Class encodings (SPEC 9).
    pub encodings: Encodings,
    /// Which dataset to read and how much of it.
    pub data: Data,
    /// Executor kind and thread count.
    pub schedule: Schedule,
    /// The steps to run, in order.
    pub script: Vec<Step>,
    /// A parameter sweep for `neurograph batch`: the batch runs every combination of the
    /// axes' values (with the same meaning as `--grid`); `neurograph run` ignores it.
    pub sweep: Vec<SweepAxis>,
}

/// One axis of a parameter sweep: a field path (as for `--set`) and the values it takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    /// Dotted field path, e.g. `training.learning_rate_phase`.
    pub field: String,
    /// Values in RON syntax, e.g. `["0.01", "0.02"]`.
    pub values: Vec<String>,
}

impl Default for Scene {
    fn default() -> Self {
        Scene {
            name: "scene".to_string(),
            seed: 0,
            architecture: Architecture::default(),
            resolution: Resolution::default(),
            graph: GraphSource::default(),
            forward: Forward::default(),
            radiation: Radiation::default(),
            loss: Loss::default(),
            training: Training::default(),
            adapter: Adapter::default(),
            encodings: Encodings::default(),
            data: Data::default(),
            schedule: Schedule::default(),
            script: vec![Step::Evaluate {
                split: Split::Test,
                samples: None,
                predictions: false,
            }],
            sweep: Vec::new(),
        }
    }
}

/// Node counts and the vector dimension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Architecture {
    /// All nodes: inputs, hidden and outputs.
    pub total_nodes: u32,
    /// Input nodes, indices `0..input_nodes`.
    pub input_nodes: u32,
    /// Output nodes, the last `output_nodes` indices.
    pub output_nodes: u32,
    /// D: values per phase or magnitude vector.
    pub vector_dim: u32,
    /// C: number of classes.
    pub classes: u32,
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture {
            total_nodes: 1000,
            input_nodes: 200,
            output_nodes: 10,
            vector_dim: 5,
            classes: 10,
        }
    }
}

/// Discretisation of phase and magnitude.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resolution {
    /// N: phase bins; phase indices live in `0..phase_bins`.
    pub phase_bins: u32,
    /// M: magnitude bins; magnitude indices live in `0..magnitude_bins`.
    pub magnitude_bins: u32,
}

impl Default for Resolution {
    fn default() -> Self {
        Resolution {
            phase_bins: 512,
            magnitude_bins: 1024,
        }
    }
}

/// Where the static graph comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum GraphSource {
    /// Seeded layered DAG (SPEC 3).
    Layered {
        /// Sources drawn per hidden or output node.
        #[serde(default = "default_cardinality")]
        cardinality: u32,
        /// Number of hidden layers.
        #[serde(default = "default_layers")]
        layers: u32,
    },
    /// An explicit edge list: one `target source source ...` line per node.
    EdgeList {
        /// Path of the edge-list file; a relative path is resolved against the working directory.
        path: String,
    },
}

impl Default for GraphSource {
    fn default() -> Self {
        GraphSource::Layered {
            cardinality: default_cardinality(),
            layers: default_layers(),
        }
    }
}

fn default_cardinality() -> u32 {
    6
}

fn default_layers() -> u32 {
    4
}

/// How negative (inhibitory) arrivals are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inhibition {
    /// Keep only arrivals with strength > 0.
    #[default]
    Excitatory,
    /// Sum all arrivals; deactivate nodes whose net strength is <= 0.
    AfterAccumulation,
}

/// The named constants of τ adaptation (SPEC 4 step 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TauAdaptation {
    /// Growth rate when over target: τ *= 1 + growth * n / T.
    pub growth: f32,
    /// Shrink when n < low_fraction * T.
    pub low_fraction: f32,
    /// Factor applied when shrinking.
    pub shrink: f32,
    /// Flood guard: if n > flood_fraction * total_nodes, τ *= flood_factor.
    pub flood_fraction: f32,
    /// Flood guard factor.
    pub flood_factor: f32,
    /// Lower clamp of τ.
    pub min: f32,
    /// Upper clamp of τ.
    pub max: f32,
}

impl Default for TauAdaptation {
    fn default() -> Self {
        TauAdaptation {
            growth: 0.1,
            low_fraction: 0.7,
            shrink: 0.95,
            flood_fraction: 0.9,
            flood_factor: 2.0,
            min: 0.5,
            max: 5.0,
        }
    }
}

/// The timestep loop and eviction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forward {
    /// Hard stop: the loop ends when t >= max_timesteps - 1.
    pub max_timesteps: u32,
    /// Earliest timestep at which an active output ends the loop; `None` = from graph hops.
    pub min_timesteps: Option<u32>,
    /// Per-timestep strength decay of active nodes.
    pub decay: f32,
    /// Initial pruning threshold τ of every sample.
    pub min_strength: f32,
    /// T, the wanted number of active nodes; `None` = 0.8 * total_nodes.
    pub target_active: Option<u32>,
    /// Treatment of negative arrivals.
    pub inhibition: Inhibition,
    /// τ adaptation constants.
    pub tau: TauAdaptation,
    /// How a target combines its arrivals (SPEC 11): `Sum` (SPEC 4) or `Phasor(weight)`.
    pub combine: Combine,
    /// Whether activations persist across timesteps (`Accumulate`, SPEC 4) or are recomputed
    /// from each timestep's arrivals alone (`Replace`, SPEC 11).
    pub carry: Carry,
    /// With `carry: Replace`: whether τ adaptation, decay and pruning still run (off by
    /// default). Ignored with `Accumulate`, where they always run.
    pub prune: bool,
    /// With `combine: Phasor`, `carry: Replace`, no pruning and no radiation, and a loop that
    /// runs at least the graph's depth in timesteps: compute the pass as one pass in
    /// topological order (bit-identical outputs, several times less work). `false` forces the
    /// timestep loop.
    pub settle: bool,
    /// Hidden nodes never become active (the arrivals into them are dropped), so the outputs
    /// see the inputs alone: the "hidden nodes silenced" ablation of SPEC 11, usually set
    /// before an `Evaluate` step.
    pub silence_hidden: bool,
}

/// How a target combines its kept arrivals (SPEC 11 `forward.combine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Combine {
    /// SPEC 4: phases and magnitudes add mod N and mod M, strengths add.
    #[default]
    Sum,
    /// SPEC 11: per dimension, a weighted 2D phasor sum; phase = its angle, magnitude = its
    /// coherence.
    Phasor {
        /// The weight of an arrival.
        #[serde(default)]
        weight: PhasorWeight,
    },
}

/// The weight of an arrival in a phasor sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhasorWeight {
    /// `max(s, 0)`, the arrival's strength.
    #[default]
    Strength,
    /// 1 for every arrival.
    Uniform,
    /// `A[μo_d]`, the arrival's amplitude per dimension.
    Magnitude,
}

/// Whether activations persist across timesteps (SPEC 11 `forward.carry`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Carry {
    /// SPEC 4: an activation persists and arrivals add to it (with `Phasor`, the sums grow).
    #[default]
    Accumulate,
    /// The activations at t+1 come from the arrivals of t alone; inputs stay clamped.
    Replace,
}

impl Default for Forward {
    fn default() -> Self {
        Forward {
            max_timesteps: 40,
            min_timesteps: None,
            decay: 0.6,
            min_strength: 1.0,
            target_active: None,
            inhibition: Inhibition::Excitatory,
            tau: TauAdaptation::default(),
            combine: Combine::Sum,
            carry: Carry::Accumulate,
            prune: false,
            settle: true,
            silence_hidden: false,
        }
    }
}

/// Dynamic neighbour selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Radiation {
    /// Whether active nodes radiate to top-K dynamic neighbours at all.
    pub enabled: bool,
    /// K: dynamic targets per active source.
    pub top_k: u32,
    /// The pattern cache (SPEC 5).
    pub cache: RadiationCache,
    /// Which kernel computes the targets. Every kernel gives identical targets; they differ
    /// only in speed (`Auto`, `Int16`, `F32`, `Portable`).
    pub backend: crate::radiation::BackendChoice,
}

impl Default for Radiation {
    fn default() -> Self {
        Radiation {
            enabled: true,
            top_k: 6,
            cache: RadiationCache::default(),
            backend: crate::radiation::BackendChoice::Auto,
        }
    }
}

/// Settings of the radiation pattern cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiationCache {
    /// Whether the pattern cache is consulted.
    pub enabled: bool,
    /// Most entries kept (true LRU eviction).
    pub capacity: u32,
    /// q: phase signature quantisation; 1 is exact.
    pub quantization: u32,
    /// Parameter versions an entry may lag behind; 0 is exact.
    pub max_staleness: u32,
}

impl Default for RadiationCache {
    fn default() -> Self {
        RadiationCache {
            enabled: false,
            capacity: 1000,
            quantization: 1,
            max_staleness: 0,
        }
    }
}

/// Logits and loss settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Loss {
    /// Softmax temperature T.
    pub temperature: f32,
    /// Label smoothing ε in [0, 1).
    pub label_smoothing: f32,
    /// How logits are read from the active outputs (SPEC 6 `Mean`, SPEC 11 `Grouped`).
    pub readout: ReadoutSetting,
}

/// How logits are read from the active outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadoutSetting {
    /// Every active output votes for every class (SPEC 6).
    #[default]
    Mean,
    /// Output k (0-based among the outputs) votes only for class k mod C (SPEC 11).
    Grouped,
}

impl Default for Loss {
    fn default() -> Self {
        Loss {
            temperature: 1.0,
            label_smoothing: 0.0,
            readout: ReadoutSetting::Mean,
        }
    }
}

/// Credit assignment and the discrete update (SPEC 7); used by `Train` steps only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Training {
    /// η_φ: phase learning rate.
    pub learning_rate_phase: f32,
    /// η_μ: magnitude learning rate.
    pub learning_rate_magnitude: f32,
    /// How update requests turn into index steps.
    pub update: UpdateSetting,
    /// How the magnitude gradient is chained (exact derivative or the prototype's surrogate).
    pub gradient: GradientSetting,
    /// Weight of the hidden credit; 0 disables hidden credit.
    pub hidden_credit_weight: f32,
    /// Average gradients over several samples before stepping (`None` = every sample).
    pub gradient_accumulation: Option<GradientAccumulationSetting>,
    /// Whether the class-encoding indices are trained like parameters (SPEC 11).
    pub learn_encodings: bool,
    /// How credit reaches the parameters: `Local` (SPEC 7) or `Backprop` through the
    /// sample's recorded arrivals (SPEC 11).
    pub credit: CreditSetting,
    /// What turns gradients into index changes (SPEC 11).
    pub optimizer: OptimizerSetting,
    /// Samples whose gradients are averaged and applied once (1 = online, SPEC 10).
    pub batch_size: u32,
    /// Hidden nodes' parameters are never updated (the "hidden frozen" ablation of SPEC 11).
    pub freeze_hidden: bool,
}

/// How credit reaches the parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditSetting {
    /// SPEC 7: output credit and the local hidden credit at each node's activation.
    #[default]
    Local,
    /// SPEC 11: exact reverse-mode differentiation through the recorded arrivals.
    Backprop,
}

/// What turns gradients into index changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OptimizerSetting {
    /// SPEC 7: the discrete sign rule of `training.update`, with the learning rates
    /// `learning_rate_phase` and `learning_rate_magnitude`.
    #[default]
    SignAccumulator,
    /// Adam on float shadows of the indices; `lr` in bins, multiplied by `decay` after each
    /// epoch.
    Adam {
        /// Step size in bins.
        #[serde(default = "default_adam_lr")]
        lr: f32,
        /// First-moment decay.
        #[serde(default = "default_beta1")]
        beta1: f32,
        /// Second-moment decay.
        #[serde(default = "default_beta2")]
        beta2: f32,
        /// Added to the root of the second moment.
        #[serde(default = "default_epsilon")]
        epsilon: f32,
        /// Multiplies lr after each epoch.
        #[serde(default = "default_decay")]
        decay: f32,
    },
    /// SGD with momentum on float shadows; `lr` in bins, multiplied by `decay` after each epoch.
    Sgd {
        /// Step size in bins.
        #[serde(default = "default_sgd_lr")]
        lr: f32,
        /// Momentum.
        #[serde(default)]
        momentum: f32,
        /// Multiplies lr after each epoch.
        #[serde(default = "default_decay")]
        decay: f32,
    },
}

fn default_adam_lr() -> f32 {
    3.0
}
fn default_sgd_lr() -> f32 {
    100.0
}
fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.999
}
fn default_epsilon() -> f32 {
    1e-8
}
fn default_decay() -> f32 {
    1.0
}

impl Default for Training {
    fn default() -> Self {
        Training {
            learning_rate_phase: 0.015,
            learning_rate_magnitude: 0.012,
            update: UpdateSetting::default(),
            gradient: GradientSetting::Exact,
            hidden_credit_weight: 1.0,
            gradient_accumulation: None,
            learn_encodings: false,
            credit: CreditSetting::Local,
            optimizer: OptimizerSetting::SignAccumulator,
            batch_size: 1,
            freeze_hidden: false,
        }
    }
}

/// The discrete update rule (SPEC 7).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum UpdateSetting {
    /// Per-node, per-dimension accumulators; a dimension steps by sign(acc) once
    /// |acc| >= threshold, and its accumulator resets.
    Accumulate {
        /// The accumulation threshold.
        #[serde(default = "default_accumulate_threshold")]
        threshold: f32,
    },
    /// Step by sign(r) wherever the request |r| >= threshold; no accumulators.
    Immediate {
        /// The request threshold.
        #[serde(default = "default_immediate_threshold")]
        threshold: f32,
    },
}

impl Default for UpdateSetting {
    fn default() -> Self {
        UpdateSetting::Accumulate {
            threshold: default_accumulate_threshold(),
        }
    }
}

fn default_accumulate_threshold() -> f32 {
    0.01
}

fn default_immediate_threshold() -> f32 {
    0.1
}

/// How the magnitude gradient is chained to index space (SPEC 7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradientSetting {
    /// gμ uses A', the derivative of the magnitude table.
    #[default]
    Exact,
    /// gμ uses A itself, as the prototype did.
    Reference,
}

/// Gradient accumulation over several samples (SPEC 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradientAccumulationSetting {
    /// Samples whose gradients are averaged before one update.
    pub steps: u32,
    /// Factor applied to the average.
    pub scaling: AccumulationScalingSetting,
}

impl Default for GradientAccumulationSetting {
    fn default() -> Self {
        GradientAccumulationSetting {
            steps: 8,
            scaling: AccumulationScalingSetting::Sqrt,
        }
    }
}

/// The factor applied to accumulated, averaged gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccumulationScalingSetting {
    /// Multiply the average by √steps.
    #[default]
    Sqrt,
    /// Use the plain average.
    Unscaled,
}

/// The fixed random input adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Adapter {
    /// Linear(P -> H), ReLU, LayerNorm, Linear(H -> H), ReLU, LayerNorm, Linear(H -> I*D*2), tanh.
    Mlp {
        /// H: hidden width.
        #[serde(default = "default_hidden")]
        hidden: u32,
        /// Dropout after the first hidden layer, training only.
        #[serde(default = "default_dropout")]
        dropout: f32,
    },
    /// One fixed random projection P -> I*D*2, then tanh.
    Linear,
}

impl Default for Adapter {
    fn default() -> Self {
        Adapter::Mlp {
            hidden: default_hidden(),
            dropout: default_dropout(),
        }
    }
}

fn default_hidden() -> u32 {
    1024
}

fn default_dropout() -> f32 {
    0.1
}

/// Class encodings (SPEC 9).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Encodings {
    /// The prototype's table when C=10, D=5, N=512, M=1024; otherwise `Separated { seed: 0 }`.
    #[default]
    Prototype,
    /// Generated to maximise the minimum pairwise angle of the class signals.
    Separated {
        /// Seed mixed into the `encodings` stream.
        #[serde(default)]
        seed: u64,
    },
    /// Given in the scene: one phase and one magnitude vector per class.
    Explicit {
        /// C vectors of D phase indices.
        phase: Vec<Vec<u32>>,
        /// C vectors of D magnitude indices.
        magnitude: Vec<Vec<u32>>,
    },
}

/// Which dataset, and how much of each split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Data {
    /// The dataset.
    pub source: DataSource,
    /// Use at most this many training samples (`None` = all).
    pub train_limit: Option<u32>,
    /// Use at most this many test samples (`None` = all).
    pub test_limit: Option<u32>,
    /// Carve this many samples off the end of the training split (after `train_limit`) as a
    /// validation split: training never sees them, `Evaluate(split: Validation)` and
    /// `Train(evaluate_every)` evaluate them (`None` = no validation split).
    pub validation: Option<u32>,
}

/// A dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DataSource {
    /// The embedded synthetic 28x28 digits, generated from the scene seed.
    Synthetic {
        /// Training samples to generate.
        #[serde(default = "default_train")]
        train: u32,
        /// Test samples to generate.
        #[serde(default = "default_test")]
        test: u32,
    },
    /// IDX files (MNIST layout, optionally .gz) in a directory; a relative path is resolved
    /// against the working directory.
    Idx {
        /// Directory holding `train-images-idx3-ubyte` etc.
        dir: String,
    },
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Synthetic {
            train: default_train(),
            test: default_test(),
        }
    }
}

fn default_train() -> u32 {
    2000
}

fn default_test() -> u32 {
    500
}

/// Executor kind (also the command line's `--executor single|multi`; the variants' docs are
/// kept out of its help, which lists the values on one line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum ExecutorKind {
    /// bevy's single-threaded executor.
    #[default]
    #[value(help = None::<&str>)]
    Single,
    /// bevy's multi-threaded executor.
    #[value(help = None::<&str>)]
    Multi,
}

/// Scheduling settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// Executor kind.
    pub executor: ExecutorKind,
    /// Threads one world may use inside a sample (the calling thread included); 0 = the
    /// machine's available cores.
    pub threads: u32,
    /// Independent worlds that evaluate disjoint runs of samples at once, each on its own
    /// thread plus `threads - 1` helpers. Evaluation has no updates, so results are identical
    /// for any value; keep `eval_replicas * threads` at or below the core count.
    pub eval_replicas: u32,
    /// Independent worlds that run the samples of a training batch at once
    /// (`training.batch_size` > 1 or a float optimizer), each on its own thread. Parameters are
    /// fixed within a batch and gradients are summed in sample order, so results are identical
    /// for any value.
    pub train_worlds: u32,
    /// How finely the heavy stages are cut into systems.
    pub granularity: Granularity,
    /// Sources per unit of work when a stage splits its sources between its own threads.
    pub batch_size: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            executor: ExecutorKind::Single,
            threads: 0,
            eval_replicas: 1,
            train_worlds: 1,
            granularity: Granularity::Stage,
            batch_size: 32,
        }
    }
}

/// How the radiation stage is cut into systems.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    /// One system per stage; a stage may split its own work between `threads` threads.
    #[default]
    Stage,
    /// Radiation as `parts` systems over disjoint runs of sources (plus a merge), which the
    /// multi-threaded executor may run at once on bevy's pool; each part then runs on one
    /// thread, so bevy's pool and the stage's own threads never both run at full width.
    Split {
        /// Number of radiation systems.
        parts: u32,
    },
}

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Split {
    /// The training split.
    Train,
    /// The held-out test split.
    Test,
    /// The validation split carved from training (`data.validation`).
    Validation,
}

fn default_trace_split() -> Split {
    Split::Test
}

/// One step of a scene's script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum Step {
    /// Run forward passes without updates and report metrics.
    Evaluate {
        /// The split to evaluate.
        split: Split,
        /// The first `samples` of the split (`None` = all).
        #[serde(default)]
        samples: Option<u32>,
        /// Also write every sample's prediction to `predictions-<step>.csv` in the run
        /// directory (index, label, prediction, loss, timesteps, active outputs, logits).
        #[serde(default)]
        predictions: bool,
    },
    /// Online training: one sample at a time (forward, loss, credit, update), in an order drawn
    /// from the `order` stream, with adapter dropout.
    Train {
        /// Passes over the training samples.
        #[serde(default = "default_epochs")]
        epochs: u32,
        /// Samples visited per epoch (`None` = the whole training split).
        #[serde(default)]
        samples_per_epoch: Option<u32>,
        /// Evaluate the whole test split every this many training samples (counted over the
        /// run, so a restored run evaluates where the original would), 1 ..= 10 000 000;
        /// each evaluation is reported with its step, epoch and samples seen (`None` = never).
        #[serde(default)]
        evaluate_every: Option<u32>,
    },
    /// Records the forward pass of a few samples at every timestep into `trace-<step>/` in
    /// the run directory: Arrow tables (steps, active nodes, arrivals, outputs), `trace.json`
    /// and a raster and network picture per sample (see `neurograph trace`).
    Trace {
        /// The split the samples come from.
        #[serde(default = "default_trace_split")]
        split: Split,
        /// Indices in the split, 1 to 1000 of them.
        samples: Vec<u32>,
    },
    /// Writes a checkpoint; a relative path lives in the run's output directory.
    Checkpoint {
        /// The checkpoint file (`.ckpt` by convention).
        path: String,
    },
    /// Continues from a checkpoint; a relative path lives in the run's output directory.
    Restore {
        /// The checkpoint file.
        path: String,
    },
    /// Changes one scene setting between steps, like `--set FIELD=VALUE`; fields that fix
    /// the run's shape (see [`super::is_frozen`]) are refused.
    Set {
        /// Dotted field path, e.g. `training.learning_rate_phase`.
        field: String,
        /// The new value in RON, e.g. `"0.01"` or `"Immediate(threshold: 0.1)"`.
        value: String,
    },
}

fn default_epochs() -> u32 {
    1
}
