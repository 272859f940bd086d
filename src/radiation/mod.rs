//! Radiation: dynamic top-K neighbour selection by phase alignment (SPEC 5).
//!
//! The score of source u for candidate v is defined as the table sum
//! `Σ_d cosT[(φa[u]_d + θφ[v]_d) mod N]`, added in f32 in dimension order
//! ([`crate::model::phase::radiation_score`]). Targets are the `top_k` highest scores, ties going
//! to the lower node index. Candidates are all nodes except u and u's static successors.
//!
//! The batched kernel avoids most table lookups: since cos(a + b) = cos a cos b − sin a sin b,
//! the score is an inner product of 2D-dimensional phasor vectors, computed as a streaming
//! multiply-add over a resident node phasor matrix. That f32 product differs from the table sum
//! by rounding only, at most [`SCORE_ERROR_BOUND`]. The kernel therefore keeps every candidate
//! whose approximate score is within twice that bound of the K-th best approximate score, and
//! re-scores exactly those with the table sum. The result is *identical* to brute force,
//! tie-breaking included, which the tests check on graphs with forced ties.
//!
//! This module knows nothing of the ECS.

use crate::model::phase::radiation_score;
use crate::model::tables::Tables;

/// Upper bound on |phasor inner product − table sum| for D ≤ 16.
///
/// Each f32 table entry is within 2⁻²⁴ (relative) of the true cosine or sine; the table sum adds
/// D such values (|value| ≤ 1, partial sums ≤ D) and the phasor product adds 2D products, so the
/// two differ from the true real sum by at most about 2·2D·D·2⁻²⁴ ≈ 6e-5 for D = 16.
/// 1e-4 leaves margin.
pub const SCORE_ERROR_BOUND: f32 = 1e-4;

/// Node phasors, tiled for streaming: nodes are grouped in tiles of [`LANES`]; a tile stores,
/// for each dimension d, the [`LANES`] cosines cos(2πθφ[v]_d/N) and then the [`LANES`] sines,
/// so scoring one tile reads one contiguous run of memory. The last tile is padded with zeros.
#[derive(Clone, Debug, Default)]
pub struct PhasorMatrix {
    dim: usize,
    nodes: usize,
    tiles: Vec<f32>,
}

impl PhasorMatrix {
    /// Builds the matrix from node phase parameters laid out `[node][dim]`.
    pub fn new(tables: &Tables, phases: &[u16], dim: usize) -> PhasorMatrix {
        let nodes = phases.len() / dim;
        let mut m = PhasorMatrix {
            dim,
            nodes,
            tiles: vec![0.0; nodes.div_ceil(LANES) * dim * 2 * LANES],
        };
        for v in 0..nodes {
            m.set_node(tables, v, &phases[v * dim..(v + 1) * dim]);
        }
        m
    }

    /// Rewrites the row of node `v` after its phase parameters changed.
    pub fn set_node(&mut self, tables: &Tables, v: usize, phase: &[u16]) {
        let tile = v / LANES * self.dim * 2 * LANES;
        let lane = v % LANES;
        for (d, &p) in phase.iter().enumerate().take(self.dim) {
            self.tiles[tile + d * 2 * LANES + lane] = tables.cos[p as usize];
            self.tiles[tile + d * 2 * LANES + LANES + lane] = tables.sin[p as usize];
        }
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Approximate scores of one source against every node, written into `row` (padded to
    /// whole tiles), and the maximum of every tile into `tile_max`. Each chunk of [`LANES`] nodes keeps
    /// its sums in registers across all dimensions, so the row is written once.
    fn approx_scores(
        &self,
        tables: &Tables,
        source_phase: &[u16],
        row: &mut [f32],
        tile_max: &mut Vec<f32>,
    ) {
        let dim = self.dim;
        let mut qc = [0.0f32; crate::model::MAX_DIM];
        let mut qs = [0.0f32; crate::model::MAX_DIM];
        for (d, &a) in source_phase.iter().enumerate().take(dim) {
            qc[d] = tables.cos[a as usize];
            qs[d] = tables.sin[a as usize];
        }
        tile_max.clear();
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.score_tiles_avx2(&qc, &qs, row, tile_max) };
            return;
        }
        self.score_tiles_any(&qc, &qs, row, tile_max);
    }

    /// [`PhasorMatrix::score_tiles_any`] compiled for AVX2. Same operations in the same order
    /// (Rust never fuses a multiply and an add on its own), so the same bits as without AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn score_tiles_avx2(
        &self,
        qc: &[f32; crate::model::MAX_DIM],
        qs: &[f32; crate::model::MAX_DIM],
        row: &mut [f32],
        tile_max: &mut Vec<f32>,
    ) {
        self.score_tiles_any(qc, qs, row, tile_max);
    }

    /// Dispatches to the scoring loop monomorphised for this dimension.
    #[inline(always)]
    fn score_tiles_any(
        &self,
        qc: &[f32; crate::model::MAX_DIM],
        qs: &[f32; crate::model::MAX_DIM],
        row: &mut [f32],
        tile_max: &mut Vec<f32>,
    ) {
        match self.dim {
            1 => self.score_tiles::<1>(qc, qs, row, tile_max),
            2 => self.score_tiles::<2>(qc, qs, row, tile_max),
            3 => self.score_tiles::<3>(qc, qs, row, tile_max),
            4 => self.score_tiles::<4>(qc, qs, row, tile_max),
            5 => self.score_tiles::<5>(qc, qs, row, tile_max),
            6 => self.score_tiles::<6>(qc, qs, row, tile_max),
            7 => self.score_tiles::<7>(qc, qs, row, tile_max),
            8 => self.score_tiles::<8>(qc, qs, row, tile_max),
            _ => self.score_tiles::<{ crate::model::MAX_DIM }>(qc, qs, row, tile_max),
        }
    }

    /// The scoring loop for a dimension known at compile time (`D` = dim, or [`MAX_DIM`] for
    /// the rare large dims, whose unused dimensions are skipped at run time), so the tile loop
    /// is unrolled and the source phasors stay in registers.
    ///
    /// [`MAX_DIM`]: crate::model::MAX_DIM
    #[inline(always)]
    fn score_tiles<const D: usize>(
        &self,
        qc: &[f32; crate::model::MAX_DIM],
        qs: &[f32; crate::model::MAX_DIM],
        row: &mut [f32],
        tile_max: &mut Vec<f32>,
    ) {
        let n = self.nodes;
        let dim = self.dim.min(D);
        let tile_len = self.dim * 2 * LANES;
        for (t, (tile, out)) in self
            .tiles
            .chunks_exact(tile_len)
            .zip(row.chunks_exact_mut(LANES))
            .enumerate()
        {
            let mut acc = [0.0f32; LANES];
            for d in 0..D {
                if d >= dim {
                    break;
                }
                let c = &tile[d * 2 * LANES..d * 2 * LANES + LANES];
                let s = &tile[d * 2 * LANES + LANES..(d + 1) * 2 * LANES];
                for i in 0..LANES {
                    acc[i] += qc[d] * c[i] - qs[d] * s[i];
                }
            }
            let v0 = t * LANES;
            if v0 + LANES > n {
                // Padding lanes of the last tile are not nodes.
                acc[n - v0..].fill(f32::NEG_INFINITY);
            }
            out.copy_from_slice(&acc);
            tile_max.push(lane_max(&acc));
        }
    }
}

/// Nodes scored together in registers.
const LANES: usize = 8;

fn lane_max(lanes: &[f32; LANES]) -> f32 {
    lanes
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// Tiles per block of the top-K bound (blocks of 32 nodes).
const TILES_PER_BLOCK: usize = 4;

/// Reusable per-worker buffers of the kernel.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    row: Vec<f32>,
    tile_max: Vec<f32>,
    maxima: Vec<f32>,
    above: Vec<(f32, u32)>,
    sorted: Vec<f32>,
    candidates: Vec<(f32, u32)>,
}

/// The k-th largest finite value, or `None` if there are fewer than k finite values.
fn kth_largest(buf: &mut Vec<f32>, values: impl Iterator<Item = f32>, k: usize) -> Option<f32> {
    buf.clear();
    buf.extend(values.filter(|&x| x != f32::NEG_INFINITY));
    if buf.len() < k {
        return None;
    }
    let (_, kth, _) = buf.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    Some(*kth)
}

/// Everything the kernel reads about the graph for one source.
pub struct Source<'a> {
    /// The source node index u.
    pub index: u32,
    /// Its activation phase vector φa[u] (D values).
    pub phase: &'a [u16],
    /// Its static successors, sorted ascending (excluded from candidates).
    pub successors: &'a [u32],
}

/// Exact top-K targets of one source using the phasor kernel; writes up to `k` targets into
/// `out` (fewer only when fewer candidates exist), best first.
pub fn top_k(
    tables: &Tables,
    phasors: &PhasorMatrix,
    node_phases: &[u16],
    source: &Source<'_>,
    k: usize,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
) {
    out.clear();
    let n = phasors.nodes;
    let dim = phasors.dim;
    if k == 0 {
        return;
    }
    scratch.row.resize(n.div_ceil(LANES) * LANES, 0.0);
    phasors.approx_scores(
        tables,
        source.phase,
        &mut scratch.row,
        &mut scratch.tile_max,
    );
    let row = &mut scratch.row;
    let tile_max = &mut scratch.tile_max;
    // Excluded nodes score -inf; their tiles' maxima are recomputed (a maximum may have been
    // an excluded node).
    for &v in std::iter::once(&source.index).chain(source.successors) {
        row[v as usize] = f32::NEG_INFINITY;
    }
    for &v in std::iter::once(&source.index).chain(source.successors) {
        let t = v as usize / LANES;
        tile_max[t] = lane_max(
            row[t * LANES..(t + 1) * LANES]
                .try_into()
                .expect("row is padded to whole tiles"),
        );
    }
    // K-th largest approximate score. The K-th largest block maximum is a lower bound for it
    // (those K maxima are K distinct scores), so only scores near or above that bound matter.
    let maxima = &mut scratch.maxima;
    maxima.clear();
    maxima.extend(tile_max.chunks(TILES_PER_BLOCK).map(|m| {
        m.iter()
            .fold(f32::NEG_INFINITY, |a, &x| if x > a { x } else { a })
    }));
    let bound =
        kth_largest(&mut scratch.sorted, maxima.iter().copied(), k).unwrap_or(f32::NEG_INFINITY);
    // Every score that can matter is at least bound - 2δ: the K-th largest is >= bound, and
    // candidates go down to K-th - 2δ. Collect those (score, node) pairs, visiting only the
    // tiles whose maximum reaches that floor.
    let floor = bound - 2.0 * SCORE_ERROR_BOUND;
    let above = &mut scratch.above;
    above.clear();
    for (b, &m) in maxima.iter().enumerate() {
        if m < floor || m == f32::NEG_INFINITY {
            continue;
        }
        let first = b * TILES_PER_BLOCK;
        for t in first..(first + TILES_PER_BLOCK).min(tile_max.len()) {
            if tile_max[t] < floor {
                continue;
            }
            for (j, &x) in row[t * LANES..(t + 1) * LANES].iter().enumerate() {
                if x >= floor && x != f32::NEG_INFINITY {
                    above.push((x, (t * LANES + j) as u32));
                }
            }
        }
    }
    let threshold = match kth_largest(&mut scratch.sorted, above.iter().map(|&(x, _)| x), k) {
        Some(kth) => kth - 2.0 * SCORE_ERROR_BOUND,
        None => f32::NEG_INFINITY,
    };
    let candidates = &mut scratch.candidates;
    candidates.clear();
    for &(x, v) in above.iter() {
        if x >= threshold {
            let v = v as usize;
            let exact = radiation_score(tables, source.phase, &node_phases[v * dim..(v + 1) * dim]);
            candidates.push((exact, v as u32));
        }
    }
    select_best(candidates, k, out);
}

/// Reference implementation: table-sum score for every candidate, full sort.
pub fn top_k_brute_force(
    tables: &Tables,
    node_phases: &[u16],
    dim: usize,
    source: &Source<'_>,
    k: usize,
    out: &mut Vec<u32>,
) {
    let n = node_phases.len() / dim;
    let mut candidates: Vec<(f32, u32)> = (0..n as u32)
        .filter(|&v| v != source.index && !source.successors.contains(&v))
        .map(|v| {
            let p = &node_phases[v as usize * dim..(v as usize + 1) * dim];
            (radiation_score(tables, source.phase, p), v)
        })
        .collect();
    out.clear();
    select_best(&mut candidates, k, out);
}

/// Orders by score descending, then index ascending, and keeps the first `k` indices.
fn select_best(candidates: &mut [(f32, u32)], k: usize, out: &mut Vec<u32>) {
    candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    out.extend(candidates.iter().take(k).map(|&(_, v)| v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng;

    fn random_phases(n: usize, dim: usize, bins: u32, seed: u64) -> Vec<u16> {
        let mut r = rng::stream_with(seed, "test-phases", 0);
        (0..n * dim)
            .map(|_| rng::below(&mut r, bins) as u16)
            .collect()
    }

    #[test]
    fn kernel_equals_brute_force_including_ties() {
        // Small N forces many exactly tied scores.
        for (bins, dim, n, seed) in [
            (4, 2, 60, 1),
            (8, 3, 200, 2),
            (512, 5, 300, 3),
            (2, 1, 40, 4),
        ] {
            let tables = Tables::new(bins as usize, 16);
            let phases = random_phases(n, dim, bins, seed);
            let phasors = PhasorMatrix::new(&tables, &phases, dim);
            let mut scratch = Scratch::default();
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            for u in 0..n as u32 {
                let act = random_phases(1, dim, bins, seed * 1000 + u as u64);
                let succ: Vec<u32> = (0..n as u32).filter(|v| (v * 7 + u) % 11 == 0).collect();
                let src = Source {
                    index: u,
                    phase: &act,
                    successors: &succ,
                };
                for k in [1, 6, 17] {
                    top_k(&tables, &phasors, &phases, &src, k, &mut scratch, &mut fast);
                    top_k_brute_force(&tables, &phases, dim, &src, k, &mut slow);
                    assert_eq!(fast, slow, "bins {bins} dim {dim} source {u} k {k}");
                    assert!(!fast.contains(&u));
                    assert!(fast.iter().all(|v| !succ.contains(v)));
                }
            }
        }
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        // All nodes share one phase: every score ties, so the lowest indices win.
        let tables = Tables::new(8, 8);
        let phases = vec![3u16; 10 * 2];
        let phasors = PhasorMatrix::new(&tables, &phases, 2);
        let mut out = Vec::new();
        let src = Source {
            index: 1,
            phase: &[5, 5],
            successors: &[2],
        };
        top_k(
            &tables,
            &phasors,
            &phases,
            &src,
            3,
            &mut Scratch::default(),
            &mut out,
        );
        assert_eq!(out, vec![0, 3, 4]);
    }

    #[test]
    fn fewer_candidates_than_k_takes_all() {
        let tables = Tables::new(8, 8);
        let phases = vec![0u16, 1, 2, 3];
        let phasors = PhasorMatrix::new(&tables, &phases, 1);
        let mut out = Vec::new();
        let src = Source {
            index: 0,
            phase: &[0],
            successors: &[1],
        };
        top_k(
            &tables,
            &phasors,
            &phases,
            &src,
            6,
            &mut Scratch::default(),
            &mut out,
        );
        // cos(2π·2/8) = 0 > cos(2π·3/8) < 0.
        assert_eq!(out, vec![2, 3]);
    }

    #[test]
    fn set_node_tracks_parameter_changes() {
        let tables = Tables::new(16, 8);
        let mut phases = random_phases(20, 3, 16, 9);
        let mut phasors = PhasorMatrix::new(&tables, &phases, 3);
        phases[5 * 3..6 * 3].copy_from_slice(&[1, 2, 3]);
        phasors.set_node(&tables, 5, &[1, 2, 3]);
        let fresh = PhasorMatrix::new(&tables, &phases, 3);
        assert_eq!(phasors.tiles, fresh.tiles);
    }
}
