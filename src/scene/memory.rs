//! An allocation-free estimate of the memory a scene will need, owner by owner (checked
//! against measured runs by `tests/issue_12_memory_estimate.rs`).

use super::schema::*;

/// Pixels per image (28 x 28).
const PIXELS: u64 = 784;
/// Images assumed for an IDX dataset (MNIST: 60000 train + 10000 test).
const IDX_IMAGES: u64 = 70_000;
/// Edges per node assumed for an edge-list graph, whose size is unknown before reading it.
const EDGE_LIST_DEGREE: u64 = 64;

/// Estimated bytes of the big buffers a scene allocates, by part.
///
/// This is an *estimate* from the scene's sizes alone (nothing is read or allocated), meant
/// as an upper bound of a run's real memory: the per-node constants are measured, every
/// world the run builds is counted, and so are the transient copies of the state. It exists
/// so that [`Scene::validate`] can reject scenes that cannot fit (see
/// [`super::MEMORY_LIMIT`]) before anything allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// `(part, bytes)` in a fixed order: a world's parts times the worlds (node state and
    /// workspace, backprop tape, radiation, static edges, adapter weights, adapter scratch,
    /// lookup tables, encodings, optimizer state, gradient sums), then datasets, encoding
    /// caches, state copies, batch gradients and the process.
    pub parts: Vec<(&'static str, u64)>,
    /// The sum of all parts (saturating).
    pub total: u64,
    /// How many worlds the run builds.
    pub worlds: u64,
    /// Bytes of one world.
    pub world: u64,
}

impl MemoryEstimate {
    /// The bytes of one part, 0 if it is not listed.
    pub fn part(&self, name: &str) -> u64 {
        self.parts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |&(_, bytes)| bytes)
    }
}

impl std::fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, bytes) in &self.parts {
            writeln!(f, "{name:>18}: {}", format_bytes(*bytes))?;
        }
        write!(f, "{:>18}: {}", "total", format_bytes(self.total))
    }
}

/// The data a run reads, for [`Scene::memory_estimate_for`]: images per split and pixels per
/// image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// Training images.
    pub train: u64,
    /// Test images.
    pub test: u64,
    /// Pixels per image.
    pub pixels: u64,
}

/// Saturating product of a few factors.
fn mul(factors: &[u64]) -> u64 {
    factors.iter().fold(1u64, |acc, &f| acc.saturating_mul(f))
}

/// Heap bytes per node of a world's own state, measured on this build: the ECS components
/// (whose vectors are `MAX_DIM` wide whatever `vector_dim` is), the parameter mirror, the
/// topology, the settle order and the per-node resources (815 B measured at 2 000 and
/// 20 000 nodes; rounded up).
const NODE_STATE_BYTES: u64 = 900;
/// Heap bytes per node of the forward pass's workspace, which grows to its size in the first
/// samples (arrivals, phasor sums and carries, snapshots, credit buffers; 845 B measured).
const NODE_WORKSPACE_BYTES: u64 = 900;
/// Heap bytes per node of radiation's workspace besides `top_k` (candidate lists, scores,
/// matrices; 1 340 B measured at `top_k` 6).
const NODE_RADIATION_BYTES: u64 = 1_000;
/// Heap bytes per node and timestep of the backprop tape (sources, emissions, touched
/// targets, phasor sums), besides 64 per vector dimension (580 B measured at D = 8).
const TAPE_NODE_STEP_BYTES: u64 = 64;

/// Heap bytes of the process beside its buffers: the binary and its libraries, thread stacks
/// in use, the allocator's own (measured: about 6 MiB of resident set before a world exists).
const PROCESS_BYTES: u64 = 8 << 20;

impl Scene {
    /// Estimates the memory this scene needs, in bytes by part (see [`MemoryEstimate`]), for
    /// its data as the scene describes it: a `Synthetic` split exactly; an `Idx` directory,
    /// which is not read here, as 70 000 images of 28 × 28 pixels (the full MNIST). A run
    /// checks again with the real shape ([`Scene::memory_estimate_for`]) once its data is
    /// loaded and before it builds a world.
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let shape = match self.data.source {
            DataSource::Synthetic { train, test } => DataShape {
                train: train.into(),
                test: test.into(),
                pixels: PIXELS,
            },
            DataSource::Idx { .. } => DataShape {
                train: IDX_IMAGES,
                test: 0,
                pixels: PIXELS,
            },
        };
        self.memory_estimate_for(&shape)
    }

    /// Estimates the memory a run of this scene needs on data of `data`'s shape: an upper
    /// bound of its heap peak plus the process's own, owner by owner (the owners
    /// [`crate::run::memory::MemoryReport`] measures).
    ///
    /// With n nodes, D = vector_dim, I inputs, C classes, H the adapter width, P pixels,
    /// S = train + test images and W worlds (1, plus `eval_replicas − 1` evaluation replicas,
    /// plus `train_worlds − 1` batch worlds when training runs in batches):
    ///
    /// - datasets S·(P + 1); encoding caches S·(4·I·D + 24);
    /// - per world: node state n·900 and forward workspace n·900 (measured per node, see the
    ///   constants), radiation n·(1000 + 64·top_k) when enabled, the radiation cache
    ///   capacity·(4·top_k + 4·D + 64) when enabled, static edges 16·cardinality·n (`Layered`)
    ///   or 16·64·n (`EdgeList`), adapter weights 4·(P·H + H·H + 2·H·I·D) (`Mlp`) or
    ///   4·2·P·I·D (`Linear`) and its scratch, lookup tables, encodings C·D·8, float-optimizer
    ///   shadows and moments 3·4·2·D·(n + C) and gradient sums n·D·2·4 when in use, and
    ///   with `credit: Backprop` the tape, T·n·(64 + 64·D) for T timesteps (the derived
    ///   readout time, layers + 4, for a layered graph; `max_timesteps` for an edge list; a
    ///   loop that runs longer than its readout time records more);
    /// - state copies: two of the adapter weights and the parameters, which exist at once
    ///   while an evaluation replica or batch world takes the primary's state;
    /// - batch gradients: batch_size·2·D·(n + C)·4 when training in batches;
    /// - the process itself, 8 MiB.
    pub fn memory_estimate_for(&self, data: &DataShape) -> MemoryEstimate {
        let a = &self.architecture;
        let n = u64::from(a.total_nodes);
        let d = u64::from(a.vector_dim);
        let c = u64::from(a.classes);
        let inputs = u64::from(a.input_nodes);
        let threads = match self.schedule.threads {
            0 => 2,
            t => u64::from(t),
        };
        let t = &self.training;
        let float = !matches!(t.optimizer, OptimizerSetting::SignAccumulator);
        let batched = float || t.batch_size > 1 || t.learn_encodings;
        let worlds = 1
            + u64::from(self.schedule.eval_replicas.saturating_sub(1))
            + if batched {
                u64::from(self.schedule.train_worlds.saturating_sub(1))
            } else {
                0
            };
        let top_k = u64::from(self.radiation.top_k);
        let radiation = if self.radiation.enabled {
            let cache = if self.radiation.cache.enabled {
                mul(&[self.radiation.cache.capacity.into(), 4 * top_k + 4 * d + 64])
            } else {
                0
            };
            mul(&[n, NODE_RADIATION_BYTES + 64 * top_k])
                .saturating_add(mul(&[threads, n, 4]))
                .saturating_add(cache)
        } else {
            0
        };
        let edges = match self.graph {
            GraphSource::Layered { cardinality, .. } => mul(&[cardinality.into(), n, 16]),
            GraphSource::EdgeList { .. } => mul(&[EDGE_LIST_DEGREE, n, 16]),
        };
        let pixels = data.pixels;
        let adapter_out = mul(&[inputs, d, 2]);
        let (adapter_weights, adapter_scratch) = match self.adapter {
            Adapter::Mlp { hidden, .. } => {
                let h = u64::from(hidden);
                let weights = mul(&[pixels, h])
                    .saturating_add(mul(&[h, h]))
                    .saturating_add(mul(&[h, adapter_out]))
                    .saturating_mul(4);
                let scratch = mul(&[threads, 2 * h + pixels, 4]).saturating_add(mul(&[
                    threads,
                    adapter_out,
                    4,
                ]));
                (weights, scratch)
            }
            Adapter::Linear => (
                mul(&[pixels, adapter_out, 4]),
                mul(&[threads, pixels.saturating_add(adapter_out), 4]),
            ),
        };
        let cells = mul(&[2, d, n.saturating_add(c)]);
        let optimizer = if float { mul(&[3, cells, 4]) } else { 0 };
        let gradient_sums = if t.gradient_accumulation.is_some() {
            mul(&[n, d, 2, 4])
        } else {
            0
        };
        let tape = if t.credit == CreditSetting::Backprop {
            // The tape holds one record per timestep the loop runs: up to the derived readout
            // time (depth + 3 for a layered graph, whose depth is layers + 1), or the whole
            // loop for an edge list, whose depth is unknown before it is read.
            let f = &self.forward;
            let steps = match self.graph {
                GraphSource::Layered { layers, .. } => u64::from(layers) + 4,
                GraphSource::EdgeList { .. } => u64::from(f.max_timesteps),
            }
            .max(f.min_timesteps.map_or(0, u64::from))
            .min(u64::from(f.max_timesteps));
            mul(&[steps, n, TAPE_NODE_STEP_BYTES + 64 * d])
        } else {
            0
        };
        let n_bins = u64::from(self.resolution.phase_bins);
        let m_bins = u64::from(self.resolution.magnitude_bins);
        // One world's parts; every world holds each of them.
        let world_parts = [
            (
                "node state and workspace",
                mul(&[n, NODE_STATE_BYTES + NODE_WORKSPACE_BYTES]),
            ),
            ("backprop tape", tape),
            ("radiation", radiation),
            ("static edges", edges),
            ("adapter weights", adapter_weights),
            ("adapter scratch", adapter_scratch),
            ("lookup tables", mul(&[n_bins * 2 + m_bins * 2, 4])),
            ("encodings", mul(&[c, d, 8])),
            ("optimizer state", optimizer),
            ("gradient sums", gradient_sums),
        ];
        let world = world_parts
            .iter()
            .fold(0u64, |acc, &(_, b)| acc.saturating_add(b));
        let images = data.train.saturating_add(data.test);
        let batch_gradients = if batched {
            mul(&[t.batch_size.into(), cells, 4])
        } else {
            0
        };
        let mut parts: Vec<(&'static str, u64)> = world_parts
            .iter()
            .map(|&(name, b)| (name, mul(&[worlds, b])))
            .collect();
        parts.extend([
            ("datasets", mul(&[images, pixels.saturating_add(1)])),
            (
                "encoding caches",
                mul(&[images, mul(&[4, inputs, d]).saturating_add(24)]),
            ),
            (
                "state copies",
                mul(&[2, adapter_weights.saturating_add(mul(&[cells, 4]))]),
            ),
            ("batch gradients", batch_gradients),
            ("process", PROCESS_BYTES),
        ]);
        let total = parts
            .iter()
            .fold(0u64, |acc, &(_, bytes)| acc.saturating_add(bytes));
        MemoryEstimate {
            parts,
            total,
            worlds,
            world,
        }
    }
}

/// `1.5 GiB`, `12.0 MiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
