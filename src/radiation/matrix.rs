//! The resident node phasor matrix and the two-pass top-K scan over it.
//!
//! One source's approximate scores against a tile of `LANES` (8) nodes are 2D multiply-adds on
//! registers (fused on CPUs with FMA). [`scan`] scores a few sources at a time over cache-sized
//! blocks of the matrix and returns, per source, the few candidates that can be in its top K.

#![expect(
    unsafe_code,
    reason = "the SIMD scan kernels use x86 intrinsics behind runtime feature detection; every \
              unsafe block states what it relies on"
)]

use crate::model::MAX_DIM;
use crate::model::tables::Tables;

use super::SCORE_ERROR_BOUND;
use super::backend::Backend;
use super::index::PhaseIndex;
use super::int16::IntTiles;

/// Nodes scored together in registers (one AVX2 vector of f32).
pub(crate) const LANES: usize = 8;

/// Bytes of node tiles scanned by every source of a batch before moving to the next block, so
/// the block stays in the L1 cache while all sources pass over it.
const BLOCK_BYTES: usize = 8 * 1024;

/// The source side of the inner product, `[cos a_0, −sin a_0, cos a_1, −sin a_1, ...]`.
pub(crate) type Query = [f32; 2 * MAX_DIM];

/// Node phasors, tiled for streaming: nodes are grouped in tiles of `LANES` (8); a tile stores,
/// for each dimension d, the 8 cosines cos(2πθφ\[v\]_d/N) and then the 8 sines,
/// so scoring one tile reads one contiguous run of memory. The last tile is padded with zeros
/// (its padding lanes are never offered as candidates).
///
/// The matrix stays resident between timesteps and samples; [`PhasorMatrix::set_node`] rewrites
/// just the row of a node whose phase parameters changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhasorMatrix {
    dim: usize,
    nodes: usize,
    tiles: Vec<f32>,
    /// The same phasors as scaled i16 pairs, for the integer kernel.
    pub(crate) int: IntTiles,
    /// The same nodes bucketed by phase, for the index backend.
    pub(crate) index: PhaseIndex,
}

impl PhasorMatrix {
    /// Builds the matrix from node phase parameters laid out `[node][dim]`.
    pub fn new(tables: &Tables, phases: &[u16], dim: usize) -> PhasorMatrix {
        let nodes = phases.len() / dim;
        let mut m = PhasorMatrix {
            dim,
            nodes,
            tiles: vec![0.0; nodes.div_ceil(LANES) * dim * 2 * LANES],
            int: IntTiles::new(tables, phases, dim),
            index: PhaseIndex::new(tables, phases, dim),
        };
        for v in 0..nodes {
            m.set_f32(tables, v, &phases[v * dim..(v + 1) * dim]);
        }
        m
    }

    /// Rewrites the row of node `v` after its phase parameters changed.
    pub fn set_node(&mut self, tables: &Tables, v: usize, phase: &[u16]) {
        self.set_f32(tables, v, phase);
        self.int.set_node(tables, v, phase);
        self.index.set_node(v, phase);
    }

    /// Brings the phase index up to date after [`PhasorMatrix::set_node`] calls (a rebuild only
    /// if a node moved bucket); call before the next radiation.
    pub fn refresh(&mut self) {
        self.index.refresh();
    }

    /// Rebuilds the phase index with a given grid (see [`PhaseIndex::with_grid`]).
    pub fn set_grid(&mut self, tables: &Tables, phases: &[u16], grid: &[u16]) {
        self.index = PhaseIndex::with_grid(tables, phases, self.dim, grid);
    }

    /// The phase index (the index backend's view of the nodes).
    pub fn index(&self) -> &PhaseIndex {
        &self.index
    }

    /// Rewrites node `v`'s f32 phasors.
    fn set_f32(&mut self, tables: &Tables, v: usize, phase: &[u16]) {
        let tile = v / LANES * self.tile_len();
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

    /// Vector dimension D.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes held by the matrix.
    pub fn bytes(&self) -> usize {
        self.tiles.len() * std::mem::size_of::<f32>() + self.int.bytes() + self.index.bytes()
    }

    /// f32 values per tile.
    fn tile_len(&self) -> usize {
        self.dim * 2 * LANES
    }

    fn tile_count(&self) -> usize {
        self.nodes.div_ceil(LANES)
    }
}

/// The query vector of a source phase: cosines and negated sines, per dimension.
pub(crate) fn query(tables: &Tables, phase: &[u16]) -> Query {
    let mut q = [0.0f32; 2 * MAX_DIM];
    for (d, &a) in phase.iter().enumerate().take(MAX_DIM) {
        q[2 * d] = tables.cos[a as usize];
        q[2 * d + 1] = -tables.sin[a as usize];
    }
    q
}

/// What a source may not select: itself and its static successors (sorted ascending).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exclusion<'a> {
    /// The source itself.
    pub(crate) index: u32,
    /// Its static successors, sorted ascending.
    pub(crate) successors: &'a [u32],
}

/// One more than the most successors a kernel pass drops itself (with the source, 17
/// excluded nodes); longer successor lists are left to
/// [`super::int16::Candidates::drop_excluded`].
pub(crate) const MAX_EXCLUDED: usize = 17;

impl Exclusion<'_> {
    #[inline(always)]
    pub(crate) fn excludes(&self, v: u32) -> bool {
        v == self.index
            || if self.successors.len() > 16 {
                self.successors.binary_search(&v).is_ok()
            } else {
                self.successors.contains(&v)
            }
    }

    /// How many nodes are excluded (at most).
    fn count(&self) -> usize {
        1 + self.successors.len()
    }
}

/// The `k`-th largest of `values` (−∞ if there are fewer than `k`), by insertion into a
/// descending list of `k` (`k` ≥ 1): cheap for the few dozen values it sees here.
pub(crate) fn kth_largest(top: &mut Vec<f32>, values: impl Iterator<Item = f32>, k: usize) -> f32 {
    top.clear();
    top.resize(k, f32::NEG_INFINITY);
    for x in values {
        if x > top[k - 1] {
            let mut j = k - 1;
            while j > 0 && top[j - 1] < x {
                top[j] = top[j - 1];
                j -= 1;
            }
            top[j] = x;
        }
    }
    top[k - 1]
}

/// Interleaved groups of tiles whose lane-wise score maxima bound the K-th best score.
const GROUPS: usize = 4;

/// One source's approximate scores: the score row (padding lanes −∞) and, per group of tiles
/// and lane, the maximum score, i.e. [`GROUPS`]·`LANES` (8) scores of distinct nodes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scores {
    row: Vec<f32>,
    maxima: [f32; GROUPS * LANES],
}

/// The SIMD pieces of the scan: score a run of tiles into a row (tracking group maxima), and
/// list the tiles of a row with a score at or above a floor.
trait Scanner {
    /// Scores tiles `t0..t1` into `row[t * LANES..]` and folds them into `maxima`. Lanes of
    /// nodes ≥ `nodes` (padding of the last tile) score −∞. `D` is the dimension, or
    /// [`MAX_DIM`] when it is only known at run time (`dim`).
    ///
    /// # Safety
    /// `tiles` must hold whole tiles `t0..t1` of `dim * 2 * LANES` values, `row` must hold
    /// `t1 * LANES` values, and the CPU must support what the implementation uses.
    #[expect(
        clippy::too_many_arguments,
        reason = "the scan's raw inputs, kept apart so the loop sees plain values"
    )]
    unsafe fn score_tiles<const D: usize>(
        tiles: *const f32,
        t0: usize,
        t1: usize,
        dim: usize,
        nodes: usize,
        q: &Query,
        row: &mut [f32],
        maxima: &mut [f32; GROUPS * LANES],
    );

    /// The `need`-th largest of the group maxima (1 ≤ `need` ≤ their number).
    ///
    /// # Safety
    /// The CPU must support what the implementation uses.
    unsafe fn nth_largest(maxima: &[f32; GROUPS * LANES], need: usize) -> f32;

    /// Sets bit t of `hits` (one u64 per 64 tiles, all written here) for every tile t with a
    /// score ≥ `floor`. Branch-free.
    ///
    /// # Safety
    /// The CPU must support what the implementation uses; `row` holds whole tiles.
    unsafe fn hits(row: &[f32], floor: f32, hits: &mut [u64]);
}

/// The dimensions a scanner loops over: all `D` when `D` is the dimension itself, so the loop
/// unrolls, or the run-time `dim` for the [`MAX_DIM`] catch-all.
#[inline(always)]
fn dims<const D: usize>(dim: usize) -> usize {
    if D == MAX_DIM { dim } else { D }
}

/// Plain Rust, any CPU: a multiply and an add per term (two roundings).
struct Portable;

impl Portable {
    #[inline(always)]
    fn score<const D: usize>(tile: &[f32], dim: usize, q: &Query) -> [f32; LANES] {
        let (mut a0, mut a1) = ([0.0f32; LANES], [0.0f32; LANES]);
        for d in 0..dims::<D>(dim) {
            let c = &tile[d * 2 * LANES..d * 2 * LANES + LANES];
            let s = &tile[d * 2 * LANES + LANES..(d + 1) * 2 * LANES];
            for i in 0..LANES {
                a0[i] += q[2 * d] * c[i];
                a1[i] += q[2 * d + 1] * s[i];
            }
        }
        std::array::from_fn(|i| a0[i] + a1[i])
    }
}

impl Scanner for Portable {
    #[inline(always)]
    unsafe fn score_tiles<const D: usize>(
        tiles: *const f32,
        t0: usize,
        t1: usize,
        dim: usize,
        nodes: usize,
        q: &Query,
        row: &mut [f32],
        maxima: &mut [f32; GROUPS * LANES],
    ) {
        let tile_len = dim * 2 * LANES;
        for t in t0..t1 {
            // SAFETY: the caller guarantees tile t is readable.
            let tile = unsafe { std::slice::from_raw_parts(tiles.add(t * tile_len), tile_len) };
            let mut acc = Portable::score::<D>(tile, dim, q);
            for (i, a) in acc.iter_mut().enumerate() {
                if t * LANES + i >= nodes {
                    *a = f32::NEG_INFINITY;
                }
            }
            row[t * LANES..(t + 1) * LANES].copy_from_slice(&acc);
            let m = &mut maxima[t % GROUPS * LANES..(t % GROUPS + 1) * LANES];
            for i in 0..LANES {
                m[i] = m[i].max(acc[i]);
            }
        }
    }

    #[inline(always)]
    unsafe fn nth_largest(maxima: &[f32; GROUPS * LANES], need: usize) -> f32 {
        // No allocation on this per-source path: order a copy (no NaN here, −∞ at most).
        let mut sorted = *maxima;
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        sorted[need - 1]
    }

    #[inline(always)]
    unsafe fn hits(row: &[f32], floor: f32, hits: &mut [u64]) {
        hits.fill(0);
        for (t, tile) in row.chunks_exact(LANES).enumerate() {
            let hit = tile.iter().any(|&x| x >= floor);
            hits[t / 64] |= u64::from(hit) << (t % 64);
        }
    }
}

/// AVX2 with fused multiply-add: the query broadcast once into vectors, two independent
/// accumulators (cosine and sine terms), four tiles per loop turn.
#[cfg(target_arch = "x86_64")]
struct Avx2Fma;

#[cfg(target_arch = "x86_64")]
impl Avx2Fma {
    /// # Safety
    /// AVX2 and FMA; `tile` points to `dim * 2 * LANES` readable values.
    #[inline(always)]
    unsafe fn score<const D: usize>(
        tile: *const f32,
        dim: usize,
        q: &[std::arch::x86_64::__m256; 2 * MAX_DIM],
    ) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: see the function's contract; every load stays within the tile.
        unsafe {
            let mut a0 = _mm256_setzero_ps();
            let mut a1 = _mm256_setzero_ps();
            for d in 0..dims::<D>(dim) {
                let c = _mm256_loadu_ps(tile.add(d * 2 * LANES));
                let s = _mm256_loadu_ps(tile.add(d * 2 * LANES + LANES));
                a0 = _mm256_fmadd_ps(q[2 * d], c, a0);
                a1 = _mm256_fmadd_ps(q[2 * d + 1], s, a1);
            }
            _mm256_add_ps(a0, a1)
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Scanner for Avx2Fma {
    #[inline(always)]
    unsafe fn score_tiles<const D: usize>(
        tiles: *const f32,
        t0: usize,
        t1: usize,
        dim: usize,
        nodes: usize,
        q: &Query,
        row: &mut [f32],
        maxima: &mut [f32; GROUPS * LANES],
    ) {
        use std::arch::x86_64::*;
        let tile_len = dim * 2 * LANES;
        let full = (nodes / LANES).min(t1).max(t0);
        let out = row.as_mut_ptr();
        // SAFETY: the caller guarantees AVX2 + FMA, readable tiles t0..t1 and a row of at
        // least t1 * LANES values; `maxima` holds GROUPS * LANES values.
        unsafe {
            // The query, broadcast once; with D known the unused entries vanish.
            let mut qv = [_mm256_setzero_ps(); 2 * MAX_DIM];
            for (v, &x) in qv.iter_mut().zip(q).take(2 * dims::<D>(dim)) {
                *v = _mm256_set1_ps(x);
            }
            let q = &qv;
            let m = maxima.as_mut_ptr();
            let mut m0 = _mm256_loadu_ps(m);
            let mut m1 = _mm256_loadu_ps(m.add(LANES));
            let mut m2 = _mm256_loadu_ps(m.add(2 * LANES));
            let mut m3 = _mm256_loadu_ps(m.add(3 * LANES));
            let mut t = t0;
            while t + 4 <= full {
                let a0 = Self::score::<D>(tiles.add(t * tile_len), dim, q);
                let a1 = Self::score::<D>(tiles.add((t + 1) * tile_len), dim, q);
                let a2 = Self::score::<D>(tiles.add((t + 2) * tile_len), dim, q);
                let a3 = Self::score::<D>(tiles.add((t + 3) * tile_len), dim, q);
                _mm256_storeu_ps(out.add(t * LANES), a0);
                _mm256_storeu_ps(out.add((t + 1) * LANES), a1);
                _mm256_storeu_ps(out.add((t + 2) * LANES), a2);
                _mm256_storeu_ps(out.add((t + 3) * LANES), a3);
                m0 = _mm256_max_ps(m0, a0);
                m1 = _mm256_max_ps(m1, a1);
                m2 = _mm256_max_ps(m2, a2);
                m3 = _mm256_max_ps(m3, a3);
                t += 4;
            }
            while t < t1 {
                let mut a = Self::score::<D>(tiles.add(t * tile_len), dim, q);
                if t >= full {
                    // The partial last tile: padding lanes score −∞.
                    let lane = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
                    let valid = _mm256_set1_ps((nodes - t * LANES) as f32);
                    let pad = _mm256_cmp_ps::<_CMP_GE_OQ>(lane, valid);
                    a = _mm256_blendv_ps(a, _mm256_set1_ps(f32::NEG_INFINITY), pad);
                }
                _mm256_storeu_ps(out.add(t * LANES), a);
                m0 = _mm256_max_ps(m0, a);
                t += 1;
            }
            _mm256_storeu_ps(m, m0);
            _mm256_storeu_ps(m.add(LANES), m1);
            _mm256_storeu_ps(m.add(2 * LANES), m2);
            _mm256_storeu_ps(m.add(3 * LANES), m3);
        }
    }

    /// Branch-free by rank: the `need`-th largest value v is the smallest value with fewer
    /// than `need` values strictly above it. Ranks of all values are counted in vectors.
    #[inline(always)]
    unsafe fn nth_largest(maxima: &[f32; GROUPS * LANES], need: usize) -> f32 {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX2; the loads read the GROUPS * LANES maxima.
        unsafe {
            let p = maxima.as_ptr();
            let v: [__m256; GROUPS] = std::array::from_fn(|g| _mm256_loadu_ps(p.add(g * LANES)));
            // above[g] lane l counts values > v[g][l] (as negative counts: a true compare is −1).
            let mut above = [_mm256_setzero_si256(); GROUPS];
            for &x in maxima {
                let xb = _mm256_set1_ps(x);
                for g in 0..GROUPS {
                    let gt = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(v[g], xb));
                    above[g] = _mm256_add_epi32(above[g], gt);
                }
            }
            // Values with rank < need, i.e. −rank > −need; the rest become +∞.
            let limit = _mm256_set1_epi32(-(need as i32));
            let mut low = _mm256_set1_ps(f32::INFINITY);
            for g in 0..GROUPS {
                let keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(above[g], limit));
                low = _mm256_min_ps(
                    low,
                    _mm256_blendv_ps(_mm256_set1_ps(f32::INFINITY), v[g], keep),
                );
            }
            let mut lanes = [0.0f32; LANES];
            _mm256_storeu_ps(lanes.as_mut_ptr(), low);
            lanes
                .iter()
                .fold(f32::INFINITY, |m, &x| if x < m { x } else { m })
        }
    }

    #[inline(always)]
    unsafe fn hits(row: &[f32], floor: f32, hits: &mut [u64]) {
        use std::arch::x86_64::*;
        let tiles = row.len() / LANES;
        debug_assert!(hits.len() * 64 >= tiles);
        // SAFETY: the caller guarantees AVX2; tile t < tiles lies within `row`.
        unsafe {
            let f = _mm256_set1_ps(floor);
            let src = row.as_ptr();
            for (w, word) in hits.iter_mut().enumerate() {
                let mut bits = 0u64;
                for t in w * 64..((w + 1) * 64).min(tiles) {
                    let x = _mm256_loadu_ps(src.add(t * LANES));
                    let mask = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(x, f));
                    bits |= u64::from(mask != 0) << (t - w * 64);
                }
                *word = bits;
            }
        }
    }
}

/// Sources scored together: each block of tiles is loaded once for all of them.
pub(crate) const SOURCES_PER_PASS: usize = 4;

/// Reusable buffers of [`scan`].
#[derive(Clone, Debug, Default)]
pub(crate) struct ScanScratch {
    scores: Vec<Scores>,
    hits: Vec<u64>,
}

/// Approximate top-K candidates of up to [`SOURCES_PER_PASS`] sources: for source i, every
/// (approximate score, node) that is not excluded and reaches the K-th best approximate score
/// minus 2δ goes to `candidates[i]` (see the module docs of [`super`] for why that suffices).
///
/// Two passes per source. The first scores every node into a row, block by block (every source
/// of the pass scores a block while it sits in L1), keeping lane-wise maxima of four groups of
/// tiles: 32 scores of distinct nodes, of which at most E (the excluded nodes) are not
/// candidates, so their (K+E)-th largest is a lower bound of the K-th best candidate score.
/// The second marks, without branches, the tiles with a score within 2δ of that bound in a
/// bit set; only those are looked at lane by lane.
pub(crate) fn scan<'s>(
    backend: Backend,
    matrix: &PhasorMatrix,
    queries: &[Query],
    exclusions: &dyn Fn(usize) -> Exclusion<'s>,
    k: usize,
    scratch: &mut ScanScratch,
    candidates: &mut [Vec<(f32, u32)>],
) {
    macro_rules! dispatch {
        ($scanner:ty, $call:ident) => {
            match matrix.dim {
                1 => $call::<1, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                2 => $call::<2, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                3 => $call::<3, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                4 => $call::<4, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                5 => $call::<5, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                6 => $call::<6, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                7 => $call::<7, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                8 => $call::<8, $scanner>(matrix, queries, exclusions, k, scratch, candidates),
                _ => {
                    $call::<MAX_DIM, $scanner>(matrix, queries, exclusions, k, scratch, candidates)
                }
            }
        };
    }
    match backend {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Backend::Avx2Fma` is only chosen (by `resolve`, or from `supported`) on CPUs
        // with AVX2 and FMA.
        Backend::Avx2Fma => unsafe { dispatch!(Avx2Fma, scan_avx2_fma) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Backend::Avx512Vl` is only chosen on CPUs with AVX-512F/VL, AVX2 and FMA.
        Backend::Avx512Vl => unsafe { dispatch!(Avx2Fma, scan_avx512vl) },
        _ => dispatch!(Portable, scan_with),
    }
}

/// Defines `$name`: [`scan_with`] compiled with the target features `$features`, so the
/// scanner's intrinsics inline into one loop.
macro_rules! scan_with_features {
    ($(#[$doc:meta])* $name:ident, $features:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $name<'s, const D: usize, S: Scanner>(
            matrix: &PhasorMatrix,
            queries: &[Query],
            exclusions: &dyn Fn(usize) -> Exclusion<'s>,
            k: usize,
            scratch: &mut ScanScratch,
            candidates: &mut [Vec<(f32, u32)>],
        ) {
            scan_with::<D, S>(matrix, queries, exclusions, k, scratch, candidates);
        }
    };
}

scan_with_features!(
    /// [`scan_with`] for AVX2 + FMA.
    scan_avx2_fma,
    "avx2,fma,popcnt"
);
scan_with_features!(
    /// [`scan_with`] with the AVX2 scanner compiled for AVX-512VL (32 vector registers).
    scan_avx512vl,
    "avx2,fma,popcnt,avx512f,avx512vl"
);

#[inline(always)]
fn scan_with<'s, const D: usize, S: Scanner>(
    matrix: &PhasorMatrix,
    queries: &[Query],
    exclusions: &dyn Fn(usize) -> Exclusion<'s>,
    k: usize,
    scratch: &mut ScanScratch,
    candidates: &mut [Vec<(f32, u32)>],
) {
    debug_assert!(queries.len() <= SOURCES_PER_PASS && candidates.len() >= queries.len());
    let (dim, nodes, tile_len) = (matrix.dim, matrix.nodes, matrix.tile_len());
    let tiles = matrix.tile_count();
    // Whole groups of four tiles per block, so the four maxima stay in step.
    let per_block = (BLOCK_BYTES / (tile_len * std::mem::size_of::<f32>()) / 4 * 4).max(4);
    let base = matrix.tiles.as_ptr();
    let ScanScratch { scores, hits } = scratch;
    if scores.len() < queries.len() {
        scores.resize_with(queries.len(), Scores::default);
    }
    for s in scores.iter_mut().take(queries.len()) {
        s.row.resize(tiles * LANES, 0.0);
        s.maxima = [f32::NEG_INFINITY; GROUPS * LANES];
    }
    for first in (0..tiles).step_by(per_block) {
        let last = (first + per_block).min(tiles);
        for (q, s) in queries.iter().zip(scores.iter_mut()) {
            // SAFETY: tiles first..last exist and the row holds `tiles * LANES` values; the
            // CPU requirement is the caller's (see `scan`).
            unsafe {
                S::score_tiles::<D>(base, first, last, dim, nodes, q, &mut s.row, &mut s.maxima)
            };
        }
    }
    hits.resize(tiles.div_ceil(64), 0);
    for (i, (s, out)) in scores
        .iter()
        .zip(candidates.iter_mut())
        .take(queries.len())
        .enumerate()
    {
        let exclusion = exclusions(i);
        out.clear();
        // The (K+E)-th largest of the group maxima bounds the K-th best candidate from below.
        let need = k + exclusion.count();
        let bound = if need <= GROUPS * LANES {
            // SAFETY: the CPU requirement is the caller's (see `scan`).
            unsafe { S::nth_largest(&s.maxima, need) }
        } else {
            f32::NEG_INFINITY
        };
        let floor = bound - 2.0 * SCORE_ERROR_BOUND;
        // SAFETY: see above; `hits` has a bit per tile.
        unsafe { S::hits(&s.row, floor, hits) };
        for (w, &word) in hits.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let t = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                {
                    let tile = &s.row[t * LANES..(t + 1) * LANES];
                    let mut lanes = tile
                        .iter()
                        .enumerate()
                        .fold(0u32, |m, (i, &x)| m | u32::from(x >= floor) << i);
                    while lanes != 0 {
                        let lane = lanes.trailing_zeros() as usize;
                        lanes &= lanes - 1;
                        let v = t * LANES + lane;
                        if v < nodes && !exclusion.excludes(v as u32) {
                            out.push((tile[lane], v as u32));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_node_tracks_parameter_changes() {
        let tables = Tables::new(16, 8);
        let mut phases: Vec<u16> = (0..60).map(|i| (i * 7 % 16) as u16).collect();
        let mut phasors = PhasorMatrix::new(&tables, &phases, 3);
        phases[5 * 3..6 * 3].copy_from_slice(&[1, 2, 3]);
        phasors.set_node(&tables, 5, &[1, 2, 3]);
        // Node 5 moved bucket (bin 1 of 2 to bin 0 on dimension 0), so the index is stale
        // until refreshed.
        assert!(phasors.index().is_stale());
        phasors.refresh();
        assert_eq!(phasors, PhasorMatrix::new(&tables, &phases, 3));
    }

    /// Both backends score every node within δ of the table sum, mark padding −∞, and list
    /// the same hit tiles.
    #[test]
    fn backends_score_within_the_bound() {
        let tables = Tables::new(512, 16);
        let nodes = 45; // five full tiles and a partial one
        let phases: Vec<u16> = (0..nodes * 5).map(|i| (i * 37 % 512) as u16).collect();
        let m = PhasorMatrix::new(&tables, &phases, 5);
        let act = [3u16, 100, 200, 300, 511];
        let q = query(&tables, &act);
        for backend in Backend::supported().into_iter().filter(|b| b.is_f32()) {
            let mut scratch = ScanScratch::default();
            let mut cands = vec![Vec::new()];
            let ex = |_: usize| Exclusion {
                index: 0,
                successors: &[],
            };
            // k = nodes - 1: every candidate is kept.
            scan(backend, &m, &[q], &ex, nodes - 1, &mut scratch, &mut cands);
            let row = scratch.scores[0].row.clone();
            assert_eq!(row.len(), 48);
            assert!(row[45..].iter().all(|&x| x == f32::NEG_INFINITY));
            for v in 0..nodes {
                let exact =
                    crate::model::phase::radiation_score(&tables, &act, &phases[v * 5..v * 5 + 5]);
                assert!((row[v] - exact).abs() <= SCORE_ERROR_BOUND, "{v}");
            }
            // Too many to bound (K + E > 32): every candidate comes back.
            assert_eq!(cands[0].len(), nodes - 1);
            let mut hits = vec![0u64; 1];
            // SAFETY: Portable needs nothing; the detected backend is supported.
            unsafe {
                match backend {
                    Backend::Portable => Portable::hits(&row, row[13], &mut hits),
                    #[cfg(target_arch = "x86_64")]
                    Backend::Avx2Fma | Backend::Avx512Vl => {
                        hits_avx2_for_test(&row, row[13], &mut hits)
                    }
                    _ => unreachable!("only f32 backends are listed"),
                }
            };
            let want = (0..6).fold(0u64, |bits, t| {
                let lanes = &row[t * 8..t * 8 + 8];
                bits | u64::from(lanes.iter().any(|&x| x >= row[13])) << t
            });
            assert_eq!(hits[0], want);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hits_avx2_for_test(row: &[f32], floor: f32, hits: &mut [u64]) {
        // SAFETY: AVX2 is enabled here (the caller checked the CPU).
        unsafe { Avx2Fma::hits(row, floor, hits) }
    }
}
