//! A rough, allocation-free estimate of the memory a scene will need.

use super::schema::*;

/// Pixels per image (28 x 28).
const PIXELS: u64 = 784;
/// Images assumed for an IDX dataset (MNIST: 60000 train + 10000 test).
const IDX_IMAGES: u64 = 70_000;
/// Edges per node assumed for an edge-list graph, whose size is unknown before reading it.
const EDGE_LIST_DEGREE: u64 = 64;

/// Estimated bytes of the big buffers a scene allocates, by part.
///
/// This is an *estimate* from the scene's sizes alone (nothing is read or allocated): it
/// counts the large per-node, per-edge, adapter and dataset buffers and ignores small
/// fixed costs. It exists so that [`Scene::validate`] can reject scenes that cannot fit
/// (see [`super::MEMORY_LIMIT`]) before anything allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// `(part, bytes)` in a fixed order: node parameters, node phasors, activations, static
    /// edges, radiation scores, radiation scratch, radiation cache, lookup tables, adapter
    /// weights, adapter scratch, dataset, encodings, update accumulators, gradient sums.
    pub parts: Vec<(&'static str, u64)>,
    /// The sum of all parts (saturating).
    pub total: u64,
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

/// Saturating product of a few factors.
fn mul(factors: &[u64]) -> u64 {
    factors.iter().fold(1u64, |acc, &f| acc.saturating_mul(f))
}

impl Scene {
    /// Estimates the memory this scene needs, in bytes by part (see [`MemoryEstimate`]).
    ///
    /// With n nodes, D = vector_dim, N / M bins, I inputs, H adapter width, P = 784 pixels and
    /// t = `schedule.threads` (2 when 0 = all cores):
    /// node parameters n·D·2·2; node phasors n·2·D·4; activations n·(4D + 8); static edges
    /// 2·4·cardinality·n (`Layered`) or 8·64·n (`EdgeList`); radiation scores t·n·4 and
    /// scratch 2·4·n·top_k (when enabled); radiation cache capacity·(4·top_k + 4D + 64)
    /// (when enabled); lookup tables 4·(2N + 2M); adapter weights 4·(P·H + H·H + 2·H·I·D)
    /// (`Mlp`) or 4·2·P·I·D (`Linear`) plus per-thread scratch; dataset (train + test)·(P + 1)
    /// (`Synthetic`) or 70000·785 (`Idx`); encodings C·D·8; update accumulators n·D·2·4;
    /// gradient sums n·D·2·4 (when `training.gradient_accumulation` is set).
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let a = &self.architecture;
        let n = u64::from(a.total_nodes);
        let d = u64::from(a.vector_dim);
        let inputs = u64::from(a.input_nodes);
        let threads = match self.schedule.threads {
            0 => 2,
            t => u64::from(t),
        };
        let top_k = u64::from(self.radiation.top_k);
        let (rad_scores, rad_scratch, rad_cache) = if self.radiation.enabled {
            let cache = if self.radiation.cache.enabled {
                mul(&[self.radiation.cache.capacity.into(), 4 * top_k + 4 * d + 64])
            } else {
                0
            };
            (mul(&[threads, n, 4]), mul(&[n, top_k, 4, 2]), cache)
        } else {
            (0, 0, 0)
        };
        let edges = match self.graph {
            GraphSource::Layered { cardinality, .. } => mul(&[cardinality.into(), n, 2, 4]),
            GraphSource::EdgeList { .. } => mul(&[EDGE_LIST_DEGREE, n, 8]),
        };
        let adapter_out = mul(&[inputs, d, 2]);
        let (adapter_weights, adapter_scratch) = match self.adapter {
            Adapter::Mlp { hidden, .. } => {
                let h = u64::from(hidden);
                let weights = mul(&[PIXELS, h])
                    .saturating_add(mul(&[h, h]))
                    .saturating_add(mul(&[h, adapter_out]))
                    .saturating_mul(4);
                let scratch = mul(&[threads, 2 * h + PIXELS, 4]).saturating_add(mul(&[
                    threads,
                    adapter_out,
                    4,
                ]));
                (weights, scratch)
            }
            Adapter::Linear => (
                mul(&[PIXELS, adapter_out, 4]),
                mul(&[threads, PIXELS.saturating_add(adapter_out), 4]),
            ),
        };
        let dataset = match self.data.source {
            DataSource::Synthetic { train, test } => {
                mul(&[u64::from(train) + u64::from(test), PIXELS + 1])
            }
            DataSource::Idx { .. } => mul(&[IDX_IMAGES, PIXELS + 1]),
        };
        let gradient_sums = if self.training.gradient_accumulation.is_some() {
            mul(&[n, d, 2, 4])
        } else {
            0
        };
        let n_bins = u64::from(self.resolution.phase_bins);
        let m_bins = u64::from(self.resolution.magnitude_bins);
        let parts = vec![
            ("node parameters", mul(&[n, d, 2, 2])),
            ("node phasors", mul(&[n, 2, d, 4])),
            ("activations", mul(&[n, d * 4 + 8])),
            ("static edges", edges),
            ("radiation scores", rad_scores),
            ("radiation scratch", rad_scratch),
            ("radiation cache", rad_cache),
            ("lookup tables", mul(&[n_bins * 2 + m_bins * 2, 4])),
            ("adapter weights", adapter_weights),
            ("adapter scratch", adapter_scratch),
            ("dataset", dataset),
            ("encodings", mul(&[a.classes.into(), d, 8])),
            ("update accumulators", mul(&[n, d, 2, 4])),
            ("gradient sums", gradient_sums),
        ];
        let total = parts
            .iter()
            .fold(0u64, |acc, &(_, bytes)| acc.saturating_add(bytes));
        MemoryEstimate { parts, total }
    }
}

/// `1.5 GiB`, `12.0 MiB`, `512 B`.
pub(crate) fn format_bytes(bytes: u64) -> String {
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
