//! The exact phase index: radiation in sublinear time for large graphs.
//!
//! The score of source u for node v, `Σ_d cosT[(φa[u]_d + θφ[v]_d) mod N]`, depends only on
//! where θφ\[v\] sits on the D-torus relative to −φa\[u\]. The index buckets nodes on a grid
//! over the first few dimensions (`grid[d]` bins of phase values on dimension d; dimensions
//! past the grid are not bucketed) and keeps every bucket's nodes, with their phase rows,
//! contiguous (a counting sort by bucket).
//!
//! # The bound
//! For a source phase α and a bin `[lo, hi]` of dimension d, the largest table value the bin
//! can reach is `max_{θ ∈ [lo, hi]} cosT[(α_d + θ) mod N]`. The table is checked once, when the
//! index is built, to be non-increasing on `0..=N/2` and non-decreasing on `N/2..N` (it is, for
//! every N the tables support); then the maximum over an arc is `cosT[0]` if the arc passes
//! through 0 and the larger of its two end values otherwise. (If the check ever failed, every
//! bin would be bounded by the table's maximum: still exact, only slower.) A dimension off the
//! grid is bounded by the table's maximum.
//!
//! A bucket's bound is the f32 sum, in dimension order and starting from 0.0, of its
//! dimensions' bounds — the same sequence of additions the score makes
//! ([`crate::model::phase::radiation_score`]).
//! Rounding to nearest is monotone, so a sum of larger-or-equal terms added in the same order
//! is larger-or-equal: no node in a bucket scores above the bucket's bound, exactly, in f32.
//!
//! # The query
//! Depth-first over the grid's dimensions, each dimension's bins in descending bound order, so
//! the first buckets scored are the best ones and the K-th best score T found so far rises
//! fast. A partial choice of bins is bounded by completing it with the table maximum for every
//! remaining dimension; when that is below T, so is every later (lower-bound) bin of the same
//! dimension, and the walk backs up. Every node of a visited bucket is scored exactly with the
//! table sum; a node enters the running top K if it beats the K-th (score descending, index
//! ascending) and is neither the source nor one of its static successors. A bucket is skipped
//! only when its bound is *strictly* below T, and T never exceeds the final K-th best score
//! E, so every node scoring ≥ E — ties included — is scored: the result equals
//! [`super::top_k_brute_force`] by construction.
//!
//! Parameter updates rewrite a node's row in place while it stays in its bucket; a node that
//! moves bucket marks the index stale, and [`PhaseIndex::refresh`] rebuilds it (O(nodes))
//! before the next radiation.

use crate::model::MAX_DIM;
use crate::model::tables::Tables;

use super::matrix::Exclusion;

/// Nodes per bucket the grid aims at: fewer makes the bound tighter but the walk longer.
/// Chosen by measurement (`neurograph experiment scaling`; see the README).
pub const NODES_PER_BUCKET: usize = 4;

/// Most bins on one dimension.
const MAX_GRID_BINS: usize = 64;

/// Most buckets of a grid.
const MAX_BUCKETS: usize = 1 << 22;

/// Nodes bucketed by their phase vectors; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseIndex {
    dim: usize,
    phase_bins: usize,
    /// Bins on each gridded dimension (the first `grid.len()` dimensions).
    grid: Vec<u16>,
    /// Bucket stride of each gridded dimension.
    stride: Vec<u32>,
    /// `lo[d][b]`: the first phase value of bin b on gridded dimension d, with `lo[d][grid[d]]
    /// = N`; laid out `d * (MAX_GRID_BINS + 1) + b`.
    lo: Vec<u16>,
    /// Whether the cosine table is unimodal (see the module documentation).
    unimodal: bool,
    /// The table's largest value, cosT\[0\].
    top: f32,
    /// `start[b]..start[b + 1]`: bucket b's positions.
    start: Vec<u32>,
    /// Node index at each position.
    order: Vec<u32>,
    /// Phase rows at each position, `[position][dim]`.
    rows: Vec<u16>,
    /// Position of each node.
    position: Vec<u32>,
    /// Whether a node has moved bucket since the last rebuild.
    stale: bool,
    /// The cosine table repeated, `cos2[i] = cosT[i mod N]` for `i < N + 65 536`.
    cos2: Vec<f32>,
}

/// The grid for `nodes` nodes of dimension `dim` over `phase_bins` phase values: powers of two
/// per dimension, doubled round-robin from the first dimension while the buckets stay at least
/// [`NODES_PER_BUCKET`] nodes each on average.
pub fn grid_for(nodes: usize, dim: usize, phase_bins: usize) -> Vec<u16> {
    let target = (nodes / NODES_PER_BUCKET).clamp(1, MAX_BUCKETS);
    let cap = phase_bins.min(MAX_GRID_BINS);
    let mut bins = vec![1usize; dim];
    let mut buckets = 1usize;
    'grow: loop {
        let mut grew = false;
        for b in bins.iter_mut() {
            if buckets * 2 > target {
                break 'grow;
            }
            if *b * 2 <= cap {
                *b *= 2;
                buckets *= 2;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let gridded = bins.iter().take_while(|&&b| b > 1).count();
    bins.truncate(gridded.max(1));
    bins.into_iter().map(|b| b as u16).collect()
}

impl PhaseIndex {
    /// Builds the index over node phases laid out `[node][dim]`, with the grid [`grid_for`]
    /// chooses.
    pub fn new(tables: &Tables, phases: &[u16], dim: usize) -> PhaseIndex {
        let nodes = phases.len() / dim.max(1);
        PhaseIndex::with_grid(
            tables,
            phases,
            dim,
            &grid_for(nodes, dim, tables.phase_bins),
        )
    }

    /// Builds the index with a given grid (bins per gridded dimension, each in
    /// `1..=min(N, 64)`, at most D of them; an empty grid is one bin on dimension 0).
    pub fn with_grid(tables: &Tables, phases: &[u16], dim: usize, grid: &[u16]) -> PhaseIndex {
        let grid = if grid.is_empty() { &[1][..] } else { grid };
        let n = tables.phase_bins;
        assert!(
            grid.len() <= dim
                && grid
                    .iter()
                    .all(|&g| (1..=n.min(MAX_GRID_BINS)).contains(&(g as usize))),
            "index grid {grid:?} out of range for D = {dim}, N = {n}"
        );
        let mut lo = vec![0u16; grid.len() * (MAX_GRID_BINS + 1)];
        for (d, &g) in grid.iter().enumerate() {
            let g = g as usize;
            for b in 0..=g {
                // The first θ with θ·g / N = b.
                lo[d * (MAX_GRID_BINS + 1) + b] = (b * n).div_ceil(g).min(n) as u16;
            }
        }
        let mut stride = vec![0u32; grid.len()];
        let mut s = 1u32;
        for (d, &g) in grid.iter().enumerate().rev() {
            stride[d] = s;
            s *= u32::from(g);
        }
        let half = n / 2;
        let cos = &tables.cos;
        let unimodal = (0..half).all(|i| cos[i] >= cos[i + 1])
            && (half..n - 1).all(|i| cos[i] <= cos[i + 1])
            && cos.iter().all(|&c| c <= cos[0]);
        let nodes = phases.len() / dim.max(1);
        let mut index = PhaseIndex {
            dim,
            phase_bins: n,
            grid: grid.to_vec(),
            stride,
            lo,
            unimodal,
            top: cos.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            start: vec![0; s as usize + 1],
            order: vec![0; nodes],
            rows: vec![0; (nodes + CHUNK) * dim],
            position: vec![0; nodes],
            stale: false,
            cos2: (0..n + (1 << 16)).map(|i| cos[i % n]).collect(),
        };
        index.rebuild_from(phases);
        index
    }

    /// The bucket of a phase row.
    fn bucket(&self, row: &[u16]) -> usize {
        let n = self.phase_bins;
        self.grid
            .iter()
            .zip(&self.stride)
            .zip(row)
            .map(|((&g, &s), &p)| p as usize * g as usize / n * s as usize)
            .sum()
    }

    /// The bucket holding the phases that score best for a source phase: `−α mod N`.
    pub(crate) fn peak_bucket(&self, alpha: &[u16]) -> u32 {
        let n = self.phase_bins;
        self.grid
            .iter()
            .zip(&self.stride)
            .zip(alpha)
            .map(|((&g, &s), &a)| ((n - a as usize) % n) * g as usize / n * s as usize)
            .sum::<usize>() as u32
    }

    /// Counting sort of `phases` (`[node][dim]`) into buckets.
    fn rebuild_from(&mut self, phases: &[u16]) {
        let (dim, nodes) = (self.dim, self.position.len());
        self.start.fill(0);
        let mut buckets = std::mem::take(&mut self.position);
        for (v, slot) in buckets.iter_mut().enumerate() {
            let b = self.bucket(&phases[v * dim..(v + 1) * dim]);
            *slot = b as u32;
            self.start[b + 1] += 1;
        }
        for b in 1..self.start.len() {
            self.start[b] += self.start[b - 1];
        }
        // `buckets[v]` becomes v's position as the cursor of its bucket advances.
        let mut cursor = self.start.clone();
        for v in 0..nodes {
            let b = buckets[v] as usize;
            let pos = cursor[b] as usize;
            cursor[b] += 1;
            buckets[v] = pos as u32;
            self.order[pos] = v as u32;
            self.rows[pos * dim..(pos + 1) * dim].copy_from_slice(&phases[v * dim..(v + 1) * dim]);
        }
        self.position = buckets;
        self.stale = false;
    }

    /// Records node `v`'s new phase row: in place while it stays in its bucket, otherwise the
    /// index becomes stale until [`PhaseIndex::refresh`].
    pub fn set_node(&mut self, v: usize, phase: &[u16]) {
        let dim = self.dim;
        let pos = self.position[v] as usize;
        let old = self.bucket(&self.rows[pos * dim..(pos + 1) * dim]);
        self.rows[pos * dim..(pos + 1) * dim].copy_from_slice(&phase[..dim]);
        if self.bucket(phase) != old {
            self.stale = true;
        }
    }

    /// Rebuilds the buckets if a node has moved bucket since the last build.
    pub fn refresh(&mut self) {
        if self.stale {
            let mut phases = vec![0u16; self.order.len() * self.dim];
            let dim = self.dim;
            for (pos, &v) in self.order.iter().enumerate() {
                let v = v as usize;
                phases[v * dim..(v + 1) * dim]
                    .copy_from_slice(&self.rows[pos * dim..(pos + 1) * dim]);
            }
            self.rebuild_from(&phases);
        }
    }

    /// Whether a node has moved bucket since the last rebuild (queries need a fresh index).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// The grid: bins per gridded dimension.
    pub fn grid(&self) -> &[u16] {
        &self.grid
    }

    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        self.start.len() - 1
    }

    /// Bytes held by the index.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&self.start[..])
            + std::mem::size_of_val(&self.order[..])
            + std::mem::size_of_val(&self.rows[..])
            + std::mem::size_of_val(&self.position[..])
            + std::mem::size_of_val(&self.lo[..])
            + std::mem::size_of_val(&self.cos2[..])
    }

    /// The largest value of `cosT[(a + θ) mod N]` over θ in bin `b` of gridded dimension `d`.
    fn bin_bound(&self, cos: &[f32], d: usize, a: u16, b: usize) -> f32 {
        if !self.unimodal {
            return self.top;
        }
        let n = self.phase_bins;
        let lo = self.lo[d * (MAX_GRID_BINS + 1) + b] as usize;
        let hi = self.lo[d * (MAX_GRID_BINS + 1) + b + 1] as usize;
        if lo >= hi {
            // An empty bin (more bins than phase values cannot happen; N/g rounding can).
            return f32::NEG_INFINITY;
        }
        let first = (a as usize + lo) % n;
        let last = (a as usize + hi - 1) % n;
        if first == 0 || first > last {
            self.top
        } else {
            cos[first].max(cos[last])
        }
    }

    /// Exact top-K targets of `source` into `best` (sorted best first, at most `k`);
    /// `scratch` counts the nodes scored and buckets visited.
    pub(crate) fn query(
        &self,
        tables: &Tables,
        phase: &[u16],
        exclusion: &Exclusion<'_>,
        k: usize,
        scratch: &mut IndexScratch,
    ) {
        debug_assert!(!self.stale, "query on a stale phase index");
        let (dim, g) = (self.dim, self.grid.len());
        let cos = &tables.cos;
        let IndexScratch {
            bins,
            best,
            scored,
            visited,
            queries,
        } = scratch;
        *queries += 1;
        best.clear();
        let mut alpha = [0usize; MAX_DIM];
        for (a, &p) in alpha.iter_mut().zip(phase) {
            *a = p as usize;
        }
        // Each gridded dimension's bins, best bound first.
        for d in 0..g {
            let list = &mut bins[d];
            list.clear();
            list.extend((0..self.grid[d] as usize).map(|b| {
                (
                    self.bin_bound(cos, d, phase[d], b),
                    (b as u32) * self.stride[d],
                )
            }));
            list.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        }
        // The bound of a partial sum over dimensions 0..=d completed with the table maximum.
        let top = self.top;
        let complete = |mut p: f32, from: usize| {
            for _ in from..dim {
                p += top;
            }
            p
        };
        let mut at = [0usize; MAX_DIM];
        let mut partial = [0.0f32; MAX_DIM + 1];
        let mut base = [0u32; MAX_DIM + 1];
        let mut d = 0usize;
        loop {
            if at[d] == bins[d].len() {
                if d == 0 {
                    break;
                }
                d -= 1;
                at[d] += 1;
                continue;
            }
            let (bound, offset) = bins[d][at[d]];
            let p = partial[d] + bound;
            let threshold = if best.len() == k {
                best[k - 1].0
            } else {
                f32::NEG_INFINITY
            };
            if complete(p, d + 1) < threshold {
                // Every later bin of this dimension is bounded lower still.
                at[d] = bins[d].len();
                continue;
            }
            let bucket = base[d] + offset;
            if d + 1 < g {
                partial[d + 1] = p;
                base[d + 1] = bucket;
                d += 1;
                at[d] = 0;
                continue;
            }
            // The last gridded dimension has stride 1, so the buckets of its bins are
            // adjacent: every bin that passes now is marked, and each run of them is scored
            // as one range of positions (scoring more than needed never changes the answer).
            let mut mask = 0u64;
            for &(bound, offset) in &bins[d][at[d]..] {
                if complete(partial[d] + bound, d + 1) < threshold {
                    break;
                }
                mask |= 1 << offset;
            }
            at[d] = bins[d].len();
            while mask != 0 {
                let lo = mask.trailing_zeros();
                let run = (!(mask >> lo)).trailing_zeros().min(64 - lo);
                let ones = if run >= 64 {
                    u64::MAX
                } else {
                    (1u64 << run) - 1
                };
                mask &= !(ones << lo);
                let first_bucket = (base[d] + lo) as usize;
                let (first, end) = (
                    self.start[first_bucket] as usize,
                    self.start[first_bucket + run as usize] as usize,
                );
                *visited += u64::from(run);
                *scored += (end - first) as u64;
                self.score_range(&alpha[..dim], first..end, exclusion, k, best);
            }
        }
    }

    /// Scores the nodes at `positions` and keeps the best `k` (with the exclusions) in `best`.
    fn score_range(
        &self,
        alpha: &[usize],
        positions: std::ops::Range<usize>,
        exclusion: &Exclusion<'_>,
        k: usize,
        best: &mut Vec<(f32, u32)>,
    ) {
        let end = positions.end;
        for chunk in positions.step_by(CHUNK) {
            let len = (end - chunk).min(CHUNK);
            let scores = self.score_chunk(alpha, chunk);
            for (j, &s) in scores.iter().enumerate().take(len) {
                let pos = chunk + j;
                if best.len() == k {
                    let (ws, wv) = best[k - 1];
                    if s < ws || (s == ws && self.order[pos] > wv) {
                        continue;
                    }
                }
                let v = self.order[pos];
                if v == exclusion.index || exclusion.successors.binary_search(&v).is_ok() {
                    continue;
                }
                insert_best(best, k, (s, v));
            }
        }
    }

    /// The scores of the [`CHUNK`] nodes from position `first` for a source of phase
    /// `alpha` (as `usize`): each the table sum, the same additions in
    /// the same order as [`crate::model::phase::radiation_score`], for several nodes at once so their addition chains overlap.
    #[inline]
    fn score_chunk(&self, alpha: &[usize], first: usize) -> [f32; CHUNK] {
        let dim = self.dim;
        // The rows are padded with CHUNK rows, so a chunk is always whole.
        let rows = &self.rows[first * dim..(first + CHUNK) * dim];
        let mut acc = [0.0f32; CHUNK];
        for (d, &a) in alpha.iter().enumerate() {
            // shifted[θ] = cosT[(a + θ) mod N] for θ < N; its 65 536 entries cover every u16,
            // so indexing needs no bounds check.
            let shifted: &[f32; 1 << 16] = self.cos2[a..a + (1 << 16)]
                .try_into()
                .expect("cos2 holds N + 65 536 entries");
            for (j, slot) in acc.iter_mut().enumerate() {
                *slot += shifted[rows[j * dim + d] as usize];
            }
        }
        acc
    }
}

/// Nodes scored together.
const CHUNK: usize = 8;

/// Inserts `c` into `best` (score descending, index ascending, at most `k` long).
fn insert_best(best: &mut Vec<(f32, u32)>, k: usize, c: (f32, u32)) {
    let at = best
        .iter()
        .position(|&(s, v)| c.0 > s || (c.0 == s && c.1 < v))
        .unwrap_or(best.len());
    if at < k {
        if best.len() == k {
            best.pop();
        }
        best.insert(at, c);
    }
}

/// Reusable buffers of index queries, and their counts.
#[derive(Clone, Debug, Default)]
pub struct IndexScratch {
    bins: [Vec<(f32, u32)>; MAX_DIM],
    pub(crate) best: Vec<(f32, u32)>,
    /// Nodes scored.
    pub scored: u64,
    /// Buckets visited.
    pub visited: u64,
    /// Queries answered.
    pub queries: u64,
}

#[cfg(test)]
mod tests {
    use super::super::random_phases;
    use super::*;

    #[test]
    fn grid_doubles_round_robin_within_the_bucket_budget() {
        // 1 000 000 / 4 = 250 000 buckets: 2^17 = 131 072 is the largest power of two below,
        // doubled from dimension 0 round-robin: 17 doublings over 5 dims = (16, 16, 8, 8, 8).
        assert_eq!(grid_for(1_000_000, 5, 512), vec![16, 16, 8, 8, 8]);
        // 1000 / 4 = 250: 2^7 = 128 = (4, 4, 2, 2, 2).
        assert_eq!(grid_for(1000, 5, 512), vec![4, 4, 2, 2, 2]);
        // Too few nodes for any grid: one bin on one dimension.
        assert_eq!(grid_for(3, 5, 512), vec![1]);
        // N = 2 caps every dimension at 2 bins.
        assert_eq!(grid_for(1_000_000, 3, 2), vec![2, 2, 2]);
        // Dimensions that never doubled are off the grid.
        assert_eq!(grid_for(40, 5, 512), vec![2, 2, 2]);
    }

    #[test]
    fn bin_bound_is_the_largest_table_value_of_the_bin() {
        // By brute force over every source phase, bin and grid size.
        for (bins, g) in [(512usize, 16u16), (12, 5), (7, 7), (2, 2), (100, 64)] {
            let tables = Tables::new(bins, 8);
            let index = PhaseIndex::with_grid(&tables, &[0], 1, &[g]);
            assert!(index.unimodal, "N = {bins}");
            for a in 0..bins as u16 {
                for b in 0..g as usize {
                    let want = (0..bins)
                        .filter(|&t| t * g as usize / bins == b)
                        .map(|t| tables.cos[(a as usize + t) % bins])
                        .fold(f32::NEG_INFINITY, f32::max);
                    assert_eq!(
                        index.bin_bound(&tables.cos, 0, a, b),
                        want,
                        "N {bins} g {g} a {a} b {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_grid_shape_answers_like_brute_force() {
        // Explicit grids the automatic rule never picks: none, one coarse or fine dimension,
        // every dimension, uneven bins (N = 12 over 5 and 7 bins), so every walk shape is exact.
        let cases: [(usize, usize, &[u16]); 7] = [
            (512, 5, &[]),
            (512, 5, &[1]),
            (512, 5, &[64]),
            (512, 5, &[2, 2, 2, 2, 2]),
            (512, 5, &[16, 4, 8, 2, 32]),
            (12, 3, &[5, 7]),
            (2, 2, &[2, 2]),
        ];
        for (i, &(bins, dim, grid)) in cases.iter().enumerate() {
            let tables = Tables::new(bins, 8);
            let n = 257;
            let phases = random_phases(n, dim, bins as u32, 40 + i as u64);
            let index = PhaseIndex::with_grid(&tables, &phases, dim, grid);
            let acts = random_phases(40, dim, bins as u32, 90 + i as u64);
            let mut scratch = IndexScratch::default();
            let mut slow = Vec::new();
            for (u, act) in acts.chunks(dim).enumerate() {
                let successors: Vec<u32> = (0..n as u32)
                    .filter(|v| (v + u as u32).is_multiple_of(9))
                    .collect();
                let exclusion = Exclusion {
                    index: u as u32,
                    successors: &successors,
                };
                for k in [1, 6, 300] {
                    index.query(&tables, act, &exclusion, k, &mut scratch);
                    let fast: Vec<u32> = scratch.best.iter().map(|&(_, v)| v).collect();
                    let source = super::super::Source {
                        index: u as u32,
                        phase: act,
                        successors: &successors,
                    };
                    super::super::top_k_brute_force(&tables, &phases, dim, &source, k, &mut slow);
                    assert_eq!(
                        fast, slow,
                        "N {bins} D {dim} grid {grid:?} source {u} k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn moving_a_node_between_buckets_is_seen_after_refresh() {
        let tables = Tables::new(64, 8);
        let dim = 2;
        let mut phases = random_phases(300, dim, 64, 3);
        let mut index = PhaseIndex::with_grid(&tables, &phases, dim, &[8, 8]);
        // In-bucket move: 0 -> 1 stays in bin 0 of 8 on dimension 0.
        phases[0] = phases[0] / 8 * 8;
        index.set_node(0, &phases[0..2]);
        let mut moved = phases.clone();
        moved[0] = phases[0] / 8 * 8 + 1;
        index.set_node(0, &moved[0..2]);
        assert!(!index.is_stale());
        // Out-of-bucket move.
        moved[2] = (moved[2] + 32) % 64;
        index.set_node(1, &moved[2..4]);
        assert!(index.is_stale());
        index.refresh();
        assert_eq!(index, PhaseIndex::with_grid(&tables, &moved, dim, &[8, 8]));
    }
}
