//! The integer phasor kernel: exact int32 inner products of i16 phasors, one branch-free pass
//! per source with a running floor.
//!
//! Node v's phasor (cos, sin of 2πθφ\[v\]_d/N) is stored as i16 pairs scaled by s
//! ([`scale`]: 2¹⁴ for D ≤ 7, 2¹³ above), in tiles of [`LANES`] (16) nodes: for each dimension
//! the 16 pairs `(c, s)` of the tile, 64 bytes, so one dimension of a tile is one AVX-512 load
//! or two AVX2 loads (1000 nodes at D = 5 take 20 KB and stay in L1). The source's
//! `(cos, −sin)` of φa, scaled the same way, is one i32 broadcast per dimension; `vpmaddwd`
//! multiplies the pairs and adds each lane's two products (`vpdpwssd` also adds them to an
//! accumulator, in one instruction), and a D-term sum of those is an exact int32 score
//! I ≈ s²·x, where x is the table sum that defines the score.
//!
//! # Exactness
//! [`error_bound`] δ bounds |I − s²·x|: each quantised cosine or sine (from the f32 tables) is
//! within 0.501 of s times the true value, so a dimension's two products differ from s²·cos by
//! at most 0.501·s·(|cos a| + |sin a| + |cos θ| + |sin θ|) + 2·0.501² ≤ 1.42·s + 1, and the f32
//! table sum differs from the true sum by at most D²·2⁻²⁴. Let A be the K-th best integer score
//! of the non-excluded candidates: everything the exact K-th best (ties included) can be has
//! I ≥ A − 2δ (the argument of [`super`]'s module docs, in integer units). The scan keeps a
//! running floor, the K-th best integer score seen so far minus 2δ, which never exceeds
//! A − 2δ, so no candidate that can matter is dropped. The survivors are then put in the order
//! of brute force, (table sum desc, index asc), exactly (`Candidates::order_exactly`): sorted
//! by integer score, where two neighbours differ by more than 2δ their table sums are in the
//! same order, so only runs of neighbours within 2δ of each other are re-scored with the table
//! sum.
//!
//! # The pass
//! Per 8 or 16 nodes: D loads, D `vpmaddwd` and D − 1 adds (or D `vpdpwssd`), a compare
//! against the floor, and the passing lanes compressed into the candidate buffer; the buffer's
//! length advances by the popcount. The compress is one instruction with AVX-512
//! (`vpcompressd`) and a permutation from a 256-entry table with AVX2, which has none. No
//! branch depends on the scores except a rare one: when the buffer fills, it is compacted and
//! the floor raised.
//!
//! # Instruction sets (`Isa`)
//! AVX-512 with VNNI (16 nodes per vector, `vpdpwssd`, `vpcompressd`), AVX-VNNI (8 nodes,
//! `vpdpwssd` on 256-bit vectors, the table compress), AVX2 (8 nodes, `vpmaddwd` + add) and
//! plain Rust compute the same integer scores and keep the same candidates in the same order;
//! runtime detection offers each only on a CPU that has it.

#![expect(
    unsafe_code,
    reason = "the AVX2 pass uses x86 intrinsics behind runtime feature detection; every unsafe \
              block states what it relies on"
)]

use crate::model::MAX_DIM;
use crate::model::tables::Tables;

use super::matrix::{Exclusion, MAX_EXCLUDED};

/// Nodes per tile: one AVX-512 vector of i32 scores (two AVX2 vectors).
pub(crate) const LANES: usize = 16;

/// The instructions an integer scan runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Plain Rust, lane by lane.
    Portable,
    /// AVX2 and POPCNT: `vpmaddwd` + `vpaddd`, the table compress.
    Avx2,
    /// AVX2 with AVX-VNNI: `vpdpwssd` on 256-bit vectors, the table compress.
    AvxVnni,
    /// AVX-512 F, BW and VNNI: 16 lanes, `vpdpwssd`, `vpcompressd`.
    Avx512Vnni,
}

/// i16 values per dimension of a tile (a (cos, sin) pair per lane).
const PAIR_LANES: usize = 2 * LANES;

/// Buffered candidates before the first compaction.
const FIRST_LIMIT: usize = 64;

/// Quads of tiles the AVX-512 pass marks before it compresses (64 tiles, a bit each).
const BLOCK: usize = 16;

/// The scale s of dimension `dim`: the largest power of two for which a D-term sum of products
/// of two s-scaled unit phasors stays below 2³¹ (D·s² < 2³¹).
pub fn scale(dim: usize) -> i32 {
    if dim <= 7 { 1 << 14 } else { 1 << 13 }
}

/// δ, the bound on |integer score − s²·table sum| in integer units for dimension `dim` (see
/// the module docs).
pub fn error_bound(dim: usize) -> i64 {
    let s = f64::from(scale(dim));
    let d = dim as f64;
    let quantisation = d * ((1.42 * s).ceil() + 1.0);
    let table_sum = (s * s * d * d / f64::from(1u32 << 24)).ceil();
    (quantisation + table_sum) as i64 + 2
}

/// Node phasors as scaled i16 pairs in tiles of [`LANES`] nodes; the last tile is padded with
/// zeros (padding lanes score 0 and are never offered as candidates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntTiles {
    dim: usize,
    nodes: usize,
    /// δ of this dimension ([`error_bound`]).
    delta: i64,
    /// The tiles, one cache line per dimension of a tile, so no 64-byte load splits a line.
    tiles: Vec<Line>,
    /// Per phase bin a, the query pair `(round(s·cos a), round(−s·sin a))` packed into one
    /// i32 (low half first), ready to broadcast.
    queries: Vec<i32>,
}

/// One dimension of a tile: the 16 `(c, s)` pairs, on a cache line of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
struct Line([i16; PAIR_LANES]);

/// `round(s·x)` as i16, for |x| ≤ 1.
fn quantise(x: f32, s: i32) -> i16 {
    (f64::from(x) * f64::from(s)).round() as i16
}

impl IntTiles {
    /// Builds the tiles from node phase parameters laid out `[node][dim]`.
    pub fn new(tables: &Tables, phases: &[u16], dim: usize) -> IntTiles {
        let nodes = phases.len() / dim;
        let s = scale(dim);
        let queries = (0..tables.phase_bins)
            .map(|a| {
                let c = quantise(tables.cos[a], s) as u16 as u32;
                let n = quantise(-tables.sin[a], s) as u16 as u32;
                (c | n << 16) as i32
            })
            .collect();
        let mut m = IntTiles {
            dim,
            nodes,
            delta: error_bound(dim),
            // A multiple of four tiles: the AVX-512 pass takes them four at a time.
            tiles: vec![Line::default(); nodes.div_ceil(4 * LANES) * 4 * dim],
            queries,
        };
        for v in 0..nodes {
            m.set_node(tables, v, &phases[v * dim..(v + 1) * dim]);
        }
        m
    }

    /// Rewrites node `v`'s phasors after its phase parameters changed.
    pub fn set_node(&mut self, tables: &Tables, v: usize, phase: &[u16]) {
        let s = scale(self.dim);
        let tile = v / LANES * self.dim * PAIR_LANES;
        let lane = v % LANES;
        for (d, &p) in phase.iter().enumerate().take(self.dim) {
            let at = tile + d * PAIR_LANES + 2 * lane;
            let values = self.values_mut();
            values[at] = quantise(tables.cos[p as usize], s);
            values[at + 1] = quantise(tables.sin[p as usize], s);
        }
    }

    /// δ, the bound on |integer score − s²·table sum| ([`error_bound`] of this dimension).
    pub fn delta(&self) -> i64 {
        self.delta
    }

    /// The tiles' i16 values in order: per tile, per dimension, the 16 pairs.
    fn values(&self) -> &[i16] {
        // SAFETY: a `Line` is exactly its `PAIR_LANES` i16 values (`repr(C)`, 64 bytes, no
        // padding), so the lines are that many contiguous, initialised i16 values.
        unsafe {
            std::slice::from_raw_parts(self.tiles.as_ptr().cast(), self.tiles.len() * PAIR_LANES)
        }
    }

    /// [`IntTiles::values`], mutable.
    fn values_mut(&mut self) -> &mut [i16] {
        // SAFETY: as in `values`; the borrow of `self` is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.tiles.as_mut_ptr().cast(),
                self.tiles.len() * PAIR_LANES,
            )
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.tiles.len() * std::mem::size_of::<Line>()
            + self.queries.len() * std::mem::size_of::<i32>()
    }

    /// The query of a source phase: its packed pair per dimension.
    #[inline]
    pub(crate) fn query(&self, phase: &[u16]) -> IntQuery {
        let mut q = [0i32; MAX_DIM];
        for (x, &a) in q.iter_mut().zip(phase) {
            *x = self.queries[a as usize];
        }
        q
    }

    fn tile_count(&self) -> usize {
        self.nodes.div_ceil(LANES)
    }
}

/// The source side: per dimension, the packed query pair of its phase bin.
pub(crate) type IntQuery = [i32; MAX_DIM];

/// Four-byte values per [`Page`].
const PAGE: usize = 1024;

/// 4 KiB of four-byte values on a 4 KiB boundary.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(4096))]
struct Page<T>([T; PAGE]);

/// A buffer of four-byte values in whole pages. The SIMD passes store whole vectors at any
/// offset; in an ordinary allocation some of those stores cross a page boundary, which costs
/// far more than a store within a page (measured: the pass's speed depended on where the
/// allocator had put the buffers). Here that happens only past the first page, which a
/// source's candidates rarely reach.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pages<T> {
    pages: Vec<Page<T>>,
}

impl<T: Copy + Default> Pages<T> {
    /// Grows to hold at least `len` values (new ones are `T::default()`).
    fn grow(&mut self, len: usize) {
        let want = len.div_ceil(PAGE);
        if self.pages.len() < want {
            self.pages.resize(want, Page([T::default(); PAGE]));
        }
    }
}

impl<T> std::ops::Deref for Pages<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        const { assert!(std::mem::size_of::<T>() == 4, "pages of four-byte values") };
        // SAFETY: a `Page<T>` is exactly its `PAGE` values (`repr(C)`; with four-byte values
        // 4 KiB, no padding), so the pages are that many contiguous, initialised values.
        unsafe { std::slice::from_raw_parts(self.pages.as_ptr().cast(), self.pages.len() * PAGE) }
    }
}

impl<T> std::ops::DerefMut for Pages<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the borrow of `self` is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(self.pages.as_mut_ptr().cast(), self.pages.len() * PAGE)
        }
    }
}

/// One source's candidates: integer scores and node indices, `len` of them valid. The vectors
/// are longer than `len` because the SIMD pass stores whole vectors past the end.
#[derive(Clone, Debug, Default)]
pub(crate) struct Candidates {
    pub(crate) score: Pages<i32>,
    pub(crate) node: Pages<u32>,
    pub(crate) len: usize,
    kth: Vec<i32>,
}

impl Candidates {
    fn reset(&mut self, limit: usize) {
        self.len = 0;
        self.reserve(limit);
    }

    /// Room for `limit` entries plus the whole vectors the SIMD passes store past them (the
    /// AVX-512 pass may overshoot `limit` by a quad of tiles, 4·[`LANES`], and then read and
    /// write 16-lane vectors from there).
    fn reserve(&mut self, limit: usize) {
        let want = limit + 6 * LANES;
        if self.score.len() < want {
            self.score.grow(want);
            self.node.grow(want);
        }
    }

    /// Drops excluded and padding nodes. Long successor lists are merged with the buffer: both
    /// are in ascending node order (the pass appends tile by tile and every filter keeps the
    /// order).
    pub(crate) fn drop_excluded(&mut self, exclusion: &Exclusion<'_>, nodes: usize) {
        let successors = exclusion.successors;
        let mut kept = 0;
        if successors.len() <= 16 {
            // Short lists (the usual case): a 64-bit filter of the excluded indices modulo 64
            // clears most candidates with one bit test; the rest are compared with every
            // successor.
            let filter = successors
                .iter()
                .fold(1u64 << (exclusion.index & 63), |f, &e| f | 1 << (e & 63));
            for i in 0..self.len {
                let (x, v) = (self.score[i], self.node[i]);
                let excluded = (v as usize) >= nodes
                    || (filter >> (v & 63) & 1 != 0
                        && (v == exclusion.index || successors.contains(&v)));
                self.score[kept] = x;
                self.node[kept] = v;
                kept += usize::from(!excluded);
            }
        } else {
            let mut j = 0;
            for i in 0..self.len {
                let (x, v) = (self.score[i], self.node[i]);
                while j < successors.len() && successors[j] < v {
                    j += 1;
                }
                let excluded = v == exclusion.index
                    || (v as usize) >= nodes
                    || successors.get(j).is_some_and(|&e| e == v);
                self.score[kept] = x;
                self.node[kept] = v;
                kept += usize::from(!excluded);
            }
        }
        self.len = kept;
    }

    /// The K-th best buffered score, or `None` if there are fewer than `k` (scores are never
    /// `i32::MIN`, so an unfilled slot stays `i32::MIN`). Call [`Candidates::drop_excluded`]
    /// first.
    pub(crate) fn kth(&mut self, k: usize) -> Option<i32> {
        // One pass of a bubble through a descending list per score, without branches
        // (max/min): cheaper than an insertion whose branches the scores make unpredictable.
        fn bubble(top: &mut [i32], scores: &[i32]) {
            for &x in scores {
                let mut x = x;
                for t in top.iter_mut() {
                    let hi = (*t).max(x);
                    x = (*t).min(x);
                    *t = hi;
                }
            }
        }
        let scores = &self.score[..self.len];
        let kth = if k <= 8 {
            let mut top = [i32::MIN; 8];
            bubble(&mut top, scores);
            top[k - 1]
        } else {
            self.kth.clear();
            self.kth.resize(k, i32::MIN);
            bubble(&mut self.kth, scores);
            self.kth[k - 1]
        };
        (kth != i32::MIN).then_some(kth)
    }

    /// Keeps the candidates scoring ≥ `floor`, in order.
    pub(crate) fn retain(&mut self, floor: i64) {
        let mut kept = 0;
        for i in 0..self.len {
            let (x, v) = (self.score[i], self.node[i]);
            self.score[kept] = x;
            self.node[kept] = v;
            kept += usize::from(i64::from(x) >= floor);
        }
        self.len = kept;
    }

    /// The first `k` candidates in the order of brute force (table sum desc, index asc), into
    /// `out` (`k` long; returns how many, fewer when there are fewer candidates), from
    /// candidates that hold every one that can be among them (the K-th best integer score
    /// minus 2δ and up, [`Candidates::retain`]). They are sorted by (integer
    /// score desc, index asc) first; where two neighbours' integer scores differ by more than
    /// 2δ their table sums are in the same order (each is within δ of s² times its table sum),
    /// so only runs of neighbours within 2δ of each other are re-scored with `table_sum` and
    /// ordered by it. Usually every run is a single candidate and nothing is re-scored.
    pub(crate) fn order_exactly(
        &mut self,
        k: usize,
        delta: i64,
        exact: &mut Vec<(f32, u32)>,
        out: &mut [u32],
        table_sum: impl FnMut(u32) -> f32,
    ) -> usize {
        let n = self.len;
        let (score, node) = (&mut self.score[..n], &mut self.node[..n]);
        // Insertion sort: the list is short (K plus a few).
        for i in 1..n {
            let (x, v) = (score[i], node[i]);
            let mut j = i;
            while j > 0 && (score[j - 1] < x || (score[j - 1] == x && node[j - 1] > v)) {
                score[j] = score[j - 1];
                node[j] = node[j - 1];
                j -= 1;
            }
            score[j] = x;
            node[j] = v;
        }
        self.walk_clusters(k, delta, exact, out, table_sum)
    }

    /// The second half of [`Candidates::order_exactly`]: the candidates are sorted by
    /// (integer score desc, index asc); runs within 2δ are re-scored and ordered exactly.
    /// Writes straight into the caller's `k` slots (a copy of a short list costs a `memcpy`
    /// call).
    fn walk_clusters(
        &mut self,
        k: usize,
        delta: i64,
        exact: &mut Vec<(f32, u32)>,
        out: &mut [u32],
        mut table_sum: impl FnMut(u32) -> f32,
    ) -> usize {
        let n = self.len;
        let (score, node) = (&self.score[..n], &self.node[..n]);
        let out = &mut out[..k];
        let (mut i, mut filled) = (0, 0);
        while i < n && filled < k {
            let mut j = i + 1;
            while j < n && i64::from(score[j - 1]) - i64::from(score[j]) <= 2 * delta {
                j += 1;
            }
            if j == i + 1 {
                out[filled] = node[i];
                filled += 1;
            } else {
                exact.clear();
                exact.extend(node[i..j].iter().map(|&v| (table_sum(v), v)));
                exact.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                for &(_, v) in exact.iter().take(k - filled) {
                    out[filled] = v;
                    filled += 1;
                }
            }
            i = j;
        }
        filled
    }

    /// Compaction when the buffer is full: raises the floor to the K-th best minus 2δ, drops
    /// what is below it, and returns the new pass threshold (scores > threshold pass) and the
    /// next limit.
    fn compact(
        &mut self,
        exclusion: &Exclusion<'_>,
        nodes: usize,
        k: usize,
        delta: i64,
        threshold: i32,
    ) -> (i32, usize) {
        self.drop_excluded(exclusion, nodes);
        let threshold = match self.kth(k) {
            Some(a) => {
                let floor = i64::from(a) - 2 * delta;
                self.retain(floor);
                clamp_threshold(floor - 1).max(threshold)
            }
            None => threshold,
        };
        let limit = FIRST_LIMIT.max(2 * self.len);
        self.reserve(limit);
        (threshold, limit)
    }
}

/// A speculative starting threshold for the next source, from the K-th best integer scores of
/// the sources before it (a running mean and mean deviation). It only decides how much work a
/// source takes, never its targets: a source whose candidates do not clear it by 2δ is scanned
/// again from `i32::MIN`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prediction {
    mean: f64,
    deviation: f64,
    seen: u32,
    /// Tests only: a threshold to start every source with.
    #[cfg(test)]
    pub(crate) forced: Option<i32>,
}

impl Prediction {
    /// Sources seen before the prediction is used.
    const WARM_UP: u32 = 8;

    /// The threshold to start the next source with: three mean deviations below the mean
    /// K-th best score, minus 2δ.
    pub(crate) fn threshold(&self, delta: i64) -> i32 {
        #[cfg(test)]
        if let Some(forced) = self.forced {
            return forced;
        }
        if self.seen < Self::WARM_UP {
            return i32::MIN;
        }
        clamp_threshold((self.mean - 3.0 * self.deviation) as i64 - 2 * delta - 1)
    }

    /// Folds in a source's K-th best score.
    pub(crate) fn observe(&mut self, kth: i32) {
        let x = f64::from(kth);
        if self.seen == 0 {
            self.mean = x;
        }
        let rate = 1.0 / 16.0;
        self.deviation += ((x - self.mean).abs() - self.deviation) * rate;
        self.mean += (x - self.mean) * rate;
        self.seen = self.seen.saturating_add(1);
    }
}

fn clamp_threshold(x: i64) -> i32 {
    x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Scans every node for one source, starting with the pass threshold `threshold` (only scores
/// above it are kept): on return `out` holds every choosable candidate above `threshold` whose
/// integer score can put it in the top `k` among those (plus possibly some that cannot, and
/// excluded or padding nodes, which the caller filters). With `i32::MIN` that is every
/// candidate that can be in the top `k`; with a higher (speculative) threshold the caller
/// checks that enough candidates cleared it ([`Prediction`]). Returns whether the pass has
/// already dropped the excluded and padding nodes (the AVX-512 pass does, for up to 16
/// successors); otherwise the caller calls [`Candidates::drop_excluded`]. After that every
/// [`Isa`] leaves the same candidates in the same order.
pub(crate) fn scan(
    isa: Isa,
    m: &IntTiles,
    phase: &[u16],
    exclusion: &Exclusion<'_>,
    k: usize,
    threshold: i32,
    out: &mut Candidates,
) -> bool {
    macro_rules! dispatch {
        ($call:ident) => {
            match m.dim {
                1 => $call::<1>(m, phase, exclusion, k, threshold, out),
                2 => $call::<2>(m, phase, exclusion, k, threshold, out),
                3 => $call::<3>(m, phase, exclusion, k, threshold, out),
                4 => $call::<4>(m, phase, exclusion, k, threshold, out),
                5 => $call::<5>(m, phase, exclusion, k, threshold, out),
                6 => $call::<6>(m, phase, exclusion, k, threshold, out),
                7 => $call::<7>(m, phase, exclusion, k, threshold, out),
                8 => $call::<8>(m, phase, exclusion, k, threshold, out),
                _ => $call::<MAX_DIM>(m, phase, exclusion, k, threshold, out),
            }
        };
    }
    // An Isa other than Portable comes only from a `Backend` that `Backend::supported` and
    // `Backend::resolve` offer on CPUs with those features.
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and POPCNT (above).
        Isa::Avx2 => unsafe { dispatch!(scan_avx2) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2, AVX-VNNI and POPCNT (above).
        Isa::AvxVnni => unsafe { dispatch!(scan_avx_vnni) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            // SAFETY: the CPU has AVX-512 F, BW and VNNI, POPCNT, BMI1 and BMI2 (above).
            unsafe { dispatch!(scan_avx512_vnni) };
            return exclusion.successors.len() < MAX_EXCLUDED;
        }
        _ => dispatch!(scan_portable),
    }
    false
}

/// The dimensions a pass loops over: `D` itself, so the loop unrolls, or the run-time `dim` for
/// the [`MAX_DIM`] catch-all.
#[inline(always)]
fn dims<const D: usize>(dim: usize) -> usize {
    if D == MAX_DIM { dim } else { D }
}

/// Plain Rust: the same pass lane by lane.
fn scan_portable<const D: usize>(
    m: &IntTiles,
    phase: &[u16],
    exclusion: &Exclusion<'_>,
    k: usize,
    start: i32,
    out: &mut Candidates,
) {
    let dim = dims::<D>(m.dim);
    let q = m.query(phase);
    let delta = m.delta;
    let (mut threshold, mut limit) = (start, FIRST_LIMIT);
    out.reset(limit);
    // The packed query pairs, unpacked once (no allocation per source).
    let pairs: [(i32, i32); MAX_DIM] =
        std::array::from_fn(|d| (i32::from(q[d] as i16), q[d] >> 16));
    let pairs = &pairs[..dim];
    for (t, tile) in m.values().chunks_exact(m.dim * PAIR_LANES).enumerate() {
        for lane in 0..LANES {
            let mut acc = 0i32;
            for (d, &(c, s)) in pairs.iter().enumerate() {
                let at = d * PAIR_LANES + 2 * lane;
                acc += i32::from(tile[at]) * c + i32::from(tile[at + 1]) * s;
            }
            if acc > threshold {
                out.score[out.len] = acc;
                out.node[out.len] = (t * LANES + lane) as u32;
                out.len += 1;
                if out.len >= limit {
                    (threshold, limit) = out.compact(exclusion, m.nodes, k, delta, threshold);
                }
            }
        }
    }
}

/// For each 8-bit mask, the lanes whose bit is set, in order, then zeros: the permutation that
/// packs the passing lanes of a vector to its front.
#[cfg(target_arch = "x86_64")]
static COMPRESS: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut lane, mut at) = (0, 0);
        while lane < 8 {
            if mask & (1 << lane) != 0 {
                table[mask][at] = lane as u8;
                at += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    table
};

/// The 256-bit passes: each tile as two halves of 8 nodes, scored with `$madd` (the sum of
/// `vpmaddwd` products into an accumulator) and compressed with the table. (Marking halves in
/// a register and compressing afterwards, as the AVX-512 pass does, measured 1.15× slower
/// here: with 8 lanes, more halves have a passing lane and each is scored twice.)
#[cfg(target_arch = "x86_64")]
macro_rules! scan_256 {
    ($(#[$doc:meta])* $name:ident, $features:literal, |$acc:ident, $x:ident, $q:ident| $madd:expr) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        fn $name<const D: usize>(
            m: &IntTiles,
            phase: &[u16],
            exclusion: &Exclusion<'_>,
            k: usize,
            start: i32,
            out: &mut Candidates,
        ) {
            use std::arch::x86_64::*;
            let dim = dims::<D>(m.dim);
            let q = m.query(phase);
            let tile_len = m.dim * PAIR_LANES;
            let delta = m.delta;
            let (mut threshold, mut limit) = (start, FIRST_LIMIT);
            out.reset(limit);
            let mut qv = [_mm256_setzero_si256(); MAX_DIM];
            for (v, &x) in qv.iter_mut().zip(&q).take(dim) {
                *v = _mm256_set1_epi32(x);
            }
            let base = m.values().as_ptr();
            let mut floor = _mm256_set1_epi32(threshold);
            let mut len = 0usize;
            // Raw pointers held in registers: through `out` the compiler would reload them
            // after every store, since the stores might alias `out` itself.
            let (mut scores, mut nodes) = (out.score.as_mut_ptr(), out.node.as_mut_ptr());
            for half in 0..m.tile_count() * 2 {
                // SAFETY: half-tile `half` lies within `tiles` (tile half / 2 of D·32 i16
                // values, its 16 values from (half % 2)·16 per dimension); the buffer has room
                // for `limit + 4·LANES` entries and `len < limit`, so both 8-lane stores stay
                // inside it; the table index is an 8-bit mask.
                unsafe {
                    let p = base.add(half / 2 * tile_len + half % 2 * LANES);
                    let mut acc = _mm256_madd_epi16(_mm256_loadu_si256(p.cast()), qv[0]);
                    for d in 1..dim {
                        let ($acc, $x, $q) =
                            (acc, _mm256_loadu_si256(p.add(d * PAIR_LANES).cast()), qv[d]);
                        acc = $madd;
                    }
                    let pass = _mm256_cmpgt_epi32(acc, floor);
                    let mask = _mm256_movemask_ps(_mm256_castsi256_ps(pass)) as usize;
                    let lanes = _mm_loadl_epi64(COMPRESS.get_unchecked(mask).as_ptr().cast());
                    let perm = _mm256_cvtepu8_epi32(lanes);
                    _mm256_storeu_si256(
                        scores.add(len).cast(),
                        _mm256_permutevar8x32_epi32(acc, perm),
                    );
                    _mm256_storeu_si256(
                        nodes.add(len).cast(),
                        _mm256_add_epi32(perm, _mm256_set1_epi32((half * 8) as i32)),
                    );
                    len += mask.count_ones() as usize;
                }
                if len >= limit {
                    out.len = len;
                    (threshold, limit) = out.compact(exclusion, m.nodes, k, delta, threshold);
                    len = out.len;
                    floor = _mm256_set1_epi32(threshold);
                    (scores, nodes) = (out.score.as_mut_ptr(), out.node.as_mut_ptr());
                }
            }
            out.len = len;
        }
    };
}

#[cfg(target_arch = "x86_64")]
scan_256!(
    /// The AVX2 pass (see the module docs).
    ///
    /// # Safety
    /// The CPU must support AVX2 and POPCNT.
    scan_avx2,
    "avx2,popcnt",
    |acc, x, q| _mm256_add_epi32(acc, _mm256_madd_epi16(x, q))
);

#[cfg(target_arch = "x86_64")]
scan_256!(
    /// The AVX-VNNI pass: the AVX2 pass with `vpdpwssd` for each multiply-and-add.
    ///
    /// # Safety
    /// The CPU must support AVX2, AVX-VNNI and POPCNT.
    scan_avx_vnni,
    "avx2,avxvnni,popcnt",
    |acc, x, q| _mm256_dpwssd_avx_epi32(acc, x, q)
);

/// The AVX-512 pass: 16 nodes per vector, `vpdpwssd`, four tiles per step, and no stores in
/// the loop. Only about one tile in five has a passing lane, and compressing every tile would
/// cost two `vpcompressd` per tile; storing each tile's scores (or masks) for later instead
/// made the pass's speed depend on where the scratch buffers sit relative to the tiles (up to
/// 1.35×, measured: stores that alias the tile loads modulo 4 KiB stall them), and storing
/// every tile's scores as aligned vectors into a page of their own made radiation 2.5×
/// slower (2.48-2.55 against 0.91-0.94 ms per pass, measured). So the four tiles' pass masks
/// are joined into one 64-bit mask (`kunpckwd`, `kunpckdq`) and moved to a general register
/// once; its popcount advances the count and [`nonzero_lanes`] gives a bit
/// per tile with a passing lane, kept in a register. Afterwards (or when the buffer would
/// fill) the marked tiles are scored again and their passing lanes compressed into the
/// buffer.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI, POPCNT, BMI1 and BMI2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,popcnt,bmi1,bmi2")]
fn scan_avx512_vnni<const D: usize>(
    m: &IntTiles,
    phase: &[u16],
    exclusion: &Exclusion<'_>,
    k: usize,
    start: i32,
    out: &mut Candidates,
) {
    use std::arch::x86_64::*;
    let dim = dims::<D>(m.dim);
    let q = m.query(phase);
    let tile_len = m.dim * PAIR_LANES;
    let delta = m.delta;
    let (mut threshold, mut limit) = (start, FIRST_LIMIT);
    out.reset(limit);
    let mut qv = [_mm512_setzero_si512(); MAX_DIM];
    for (v, &x) in qv.iter_mut().zip(&q).take(dim) {
        *v = _mm512_set1_epi32(x);
    }
    let base = m.values().as_ptr();
    let mut floor = _mm512_set1_epi32(threshold);
    let quads = m.values().len() / (4 * tile_len);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut len = 0usize;
    let mut first = 0usize;
    while first < quads {
        let last = (first + BLOCK).min(quads);
        // A bit per tile with a passing lane, from each quad's four 16-lane pass masks.
        // (Nothing is stored in this loop: see above.)
        let mut marks = 0u64;
        let mut quad = first;
        while quad < last {
            // SAFETY: the four tiles of `quad` lie within `tiles` (a multiple of four).
            let x = unsafe {
                let p = base.add(4 * quad * tile_len);
                let [ma, mb, mc, md] = [0, 1, 2, 3].map(|t| {
                    u32::from(_mm512_cmpgt_epi32_mask(
                        score_tile_512::<D>(p.add(t * tile_len), &qv, dim),
                        floor,
                    ))
                });
                _cvtmask64_u64(_mm512_kunpackd(
                    _mm512_kunpackw(md, mc).into(),
                    _mm512_kunpackw(mb, ma).into(),
                ))
            };
            marks |= u64::from(nonzero_lanes(x)) << (4 * (quad - first));
            len += x.count_ones() as usize;
            quad += 1;
            if len >= limit {
                break;
            }
        }
        // Score the marked tiles again and compress their passing lanes.
        let (scores, nodes) = (out.score.as_mut_ptr(), out.node.as_mut_ptr());
        let mut n = out.len;
        let mut rest = marks;
        while rest != 0 {
            let at = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let tile = 4 * first + at;
            // SAFETY: as above; the buffer has room for `limit + 6·LANES` entries and holds
            // fewer than `limit` before the last quad's lanes.
            let mask = unsafe {
                let acc = score_tile_512::<D>(base.add(tile * tile_len), &qv, dim);
                let mask = _mm512_cmpgt_epi32_mask(acc, floor);
                let index = _mm512_add_epi32(lanes, _mm512_set1_epi32((tile * LANES) as i32));
                _mm512_storeu_si512(scores.add(n).cast(), _mm512_maskz_compress_epi32(mask, acc));
                _mm512_storeu_si512(
                    nodes.add(n).cast(),
                    _mm512_maskz_compress_epi32(mask, index),
                );
                mask
            };
            n += mask.count_ones() as usize;
        }
        out.len = n;
        if len >= limit {
            (threshold, limit) = out.compact(exclusion, m.nodes, k, delta, threshold);
            len = out.len;
            floor = _mm512_set1_epi32(threshold);
        }
        first = quad;
    }
    if exclusion.successors.len() < MAX_EXCLUDED {
        // SAFETY: the CPU has AVX-512 F (this function's contract).
        unsafe { out.drop_excluded_avx512(exclusion, m.nodes) };
    }
}

impl Candidates {
    /// [`Candidates::kth`], with AVX-512 when the pass ran with it and the candidates fit two
    /// vectors (the usual case).
    pub(crate) fn kth_with(&mut self, isa: Isa, k: usize) -> Option<i32> {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512Vnni && self.len <= 2 * LANES {
            // SAFETY: the pass ran with AVX-512, so the CPU has it; the buffer holds two
            // whole vectors from 0 (it holds `limit + 6·LANES` entries).
            return unsafe {
                if self.len <= LANES {
                    self.kth_avx512::<1>(k)
                } else {
                    self.kth_avx512::<2>(k)
                }
            };
        }
        let _ = isa;
        self.kth(k)
    }

    /// The first `k` candidates in the order of brute force, into `out` (`k` long; returns
    /// how many), given the K-th best integer score `kth` (`None`: fewer than `k`
    /// candidates): [`Candidates::retain`] then [`Candidates::order_exactly`], with AVX-512
    /// when the pass ran with it and the candidates fit two vectors.
    #[expect(
        clippy::too_many_arguments,
        reason = "the selection's inputs are independent borrowed pieces"
    )]
    pub(crate) fn select(
        &mut self,
        isa: Isa,
        kth: Option<i32>,
        k: usize,
        delta: i64,
        exact: &mut Vec<(f32, u32)>,
        out: &mut [u32],
        table_sum: impl FnMut(u32) -> f32,
    ) -> usize {
        if let Some(a) = kth {
            let floor = i64::from(a) - 2 * delta;
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx512Vnni && self.len <= 2 * LANES {
                // SAFETY: as in `kth_with`.
                unsafe {
                    if self.len <= LANES {
                        self.sort_avx512::<1>(floor);
                    } else {
                        self.sort_avx512::<2>(floor);
                    }
                }
                return self.walk_clusters(k, delta, exact, out, table_sum);
            }
            self.retain(floor);
        }
        let _ = isa;
        self.order_exactly(k, delta, exact, out, table_sum)
    }
}

#[cfg(target_arch = "x86_64")]
impl Candidates {
    /// [`Candidates::kth`] for at most `V`·16 candidates: the K-th best score is the smallest
    /// of those with fewer than K candidates above them. Each lane counts the candidates
    /// above it (one compare and masked add per candidate and vector), so nothing branches on
    /// a score.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and POPCNT, `len <= V·16`, and the buffer must hold
    /// `V`·16 entries.
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn kth_avx512<const V: usize>(&mut self, k: usize) -> Option<i32> {
        use std::arch::x86_64::*;
        if self.len < k {
            return None;
        }
        let valid = self.valid_lanes::<V>();
        // SAFETY: the caller's contract.
        let all: [__m512i; V] = std::array::from_fn(|j| unsafe {
            _mm512_loadu_si512(self.score.as_ptr().add(j * LANES).cast())
        });
        let one = _mm512_set1_epi32(1);
        let mut above = [_mm512_setzero_si512(); V];
        for &x in &self.score[..self.len] {
            let bx = _mm512_set1_epi32(x);
            for j in 0..V {
                let higher = _mm512_cmpgt_epi32_mask(bx, all[j]);
                above[j] = _mm512_mask_add_epi32(above[j], higher, above[j], one);
            }
        }
        let k = _mm512_set1_epi32(k as i32);
        (0..V)
            .map(|j| {
                let within = _mm512_mask_cmplt_epi32_mask(valid[j], above[j], k);
                _mm512_mask_reduce_min_epi32(within, all[j])
            })
            .min()
    }

    /// Per vector of 16 candidates, the mask of its lanes below `len`.
    fn valid_lanes<const V: usize>(&self) -> [u16; V] {
        std::array::from_fn(|j| {
            let n = self.len.saturating_sub(j * LANES).min(LANES);
            ((1u32 << n) - 1) as u16
        })
    }

    /// Keeps the candidates scoring ≥ `floor` and sorts them by (integer score desc, index
    /// asc), for at most `V`·16 candidates: each one's place is the count of kept candidates
    /// before it in that order.
    ///
    /// # Safety
    /// As [`Candidates::kth_avx512`].
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn sort_avx512<const V: usize>(&mut self, floor: i64) {
        use std::arch::x86_64::*;
        let valid = self.valid_lanes::<V>();
        // SAFETY: the caller's contract.
        let (scores, nodes): ([__m512i; V], [__m512i; V]) = unsafe {
            (
                std::array::from_fn(|j| {
                    _mm512_loadu_si512(self.score.as_ptr().add(j * LANES).cast())
                }),
                std::array::from_fn(|j| {
                    _mm512_loadu_si512(self.node.as_ptr().add(j * LANES).cast())
                }),
            )
        };
        let floor = _mm512_set1_epi32(floor.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
        let kept: [u16; V] =
            std::array::from_fn(|j| _mm512_mask_cmpge_epi32_mask(valid[j], scores[j], floor));
        // Each kept candidate is taken from the vectors (the buffer is written meanwhile)
        // and written straight to its place.
        for j in 0..V {
            let mut rest = kept[j];
            while rest != 0 {
                let i = rest.trailing_zeros();
                rest &= rest - 1;
                let at = _mm512_set1_epi32(i as i32);
                let (bx, bv) = (
                    _mm512_permutexvar_epi32(at, scores[j]),
                    _mm512_permutexvar_epi32(at, nodes[j]),
                );
                let place: u32 = (0..V)
                    .map(|h| {
                        (_mm512_mask_cmpgt_epi32_mask(kept[h], scores[h], bx)
                            | (_mm512_mask_cmpeq_epi32_mask(kept[h], scores[h], bx)
                                & _mm512_cmplt_epu32_mask(nodes[h], bv)))
                        .count_ones()
                    })
                    .sum();
                self.score[place as usize] = _mm512_cvtsi512_si32(bx);
                self.node[place as usize] = _mm512_cvtsi512_si32(bv) as u32;
            }
        }
        self.len = kept.iter().map(|m| m.count_ones() as usize).sum();
    }

    /// [`Candidates::drop_excluded`] 16 candidates at a time: each excluded node compared with
    /// all 16 at once, the kept ones compressed in order. (For long successor lists the
    /// merge-walk of the plain version is cheaper; the pass leaves those to it.)
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and POPCNT.
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn drop_excluded_avx512(&mut self, exclusion: &Exclusion<'_>, nodes: usize) {
        use std::arch::x86_64::*;
        let limit = _mm512_set1_epi32(nodes as i32);
        let (score, node) = (self.score.as_mut_ptr(), self.node.as_mut_ptr());
        let mut kept = 0usize;
        let mut i = 0usize;
        while i < self.len {
            let valid = if self.len - i >= LANES {
                u16::MAX
            } else {
                (1u16 << (self.len - i)) - 1
            };
            // SAFETY: the buffers hold `len` entries plus room for whole vectors past them;
            // `kept <= i`, so each compressed store lands on entries already read.
            unsafe {
                let v = _mm512_loadu_si512(node.add(i).cast());
                let x = _mm512_loadu_si512(score.add(i).cast());
                let mut keep = _mm512_mask_cmplt_epu32_mask(valid, v, limit);
                for &e in std::iter::once(&exclusion.index).chain(exclusion.successors) {
                    keep &= !_mm512_cmpeq_epi32_mask(v, _mm512_set1_epi32(e as i32));
                }
                _mm512_storeu_si512(score.add(kept).cast(), _mm512_maskz_compress_epi32(keep, x));
                _mm512_storeu_si512(node.add(kept).cast(), _mm512_maskz_compress_epi32(keep, v));
                kept += keep.count_ones() as usize;
            }
            i += LANES;
        }
        self.len = kept;
    }
}

/// Four bits, one per 16-bit field of `x`, each set where its field is nonzero: bit 15 of
/// `(f & 0x7fff) + 0x7fff` is set where the low 15 bits of f are not all zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2")]
#[inline]
fn nonzero_lanes(x: u64) -> u32 {
    const LOW: u64 = 0x7fff_7fff_7fff_7fff;
    let high = (x | ((x & LOW) + LOW)) & !LOW;
    std::arch::x86_64::_pext_u64(high, !LOW) as u32
}

/// The integer scores of the 16 nodes of the tile at `p`: one accumulator chain (the passes
/// score four tiles at a time, whose chains overlap; two chains per tile and an add measured
/// no faster).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI, and `p` must point at a whole tile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn score_tile_512<const D: usize>(
    p: *const i16,
    qv: &[std::arch::x86_64::__m512i; MAX_DIM],
    dim: usize,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract: every dimension's 64 bytes lie within the tile.
    unsafe {
        let mut acc = _mm512_madd_epi16(_mm512_loadu_si512(p.cast()), qv[0]);
        // An index range: it unrolls for a constant D, and each index picks its offset.
        for d in 1..dim {
            acc = match d {
                1 => dpwssd_at::<64>(acc, qv[1], p),
                2 => dpwssd_at::<128>(acc, qv[2], p),
                3 => dpwssd_at::<192>(acc, qv[3], p),
                4 => dpwssd_at::<256>(acc, qv[4], p),
                5 => dpwssd_at::<320>(acc, qv[5], p),
                6 => dpwssd_at::<384>(acc, qv[6], p),
                7 => dpwssd_at::<448>(acc, qv[7], p),
                _ => dpwssd_at::<0>(acc, qv[d], p.add(d * PAIR_LANES)),
            };
        }
        acc
    }
}

/// `acc + Σ` of the pairwise products of the i16 lanes of `q` and the 64 bytes `OFF` bytes
/// past `p` (`vpdpwssd` with a memory operand). Written as assembly for two reasons: LLVM
/// splits the intrinsic into `vpmaddwd` + `vpaddd` where it judges the accumulator chain
/// long, which doubles the vector instructions of the pass on the two ports they share; and
/// the offset sits in the instruction, so no address is computed per dimension.
///
/// # Safety
/// The CPU must support AVX-512 F and VNNI, and `p + OFF` must be valid for a 64-byte read.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn dpwssd_at<const OFF: usize>(
    acc: std::arch::x86_64::__m512i,
    q: std::arch::x86_64::__m512i,
    p: *const i16,
) -> std::arch::x86_64::__m512i {
    let mut acc = acc;
    // SAFETY: the caller's contract; the instruction reads 64 bytes at `p + OFF` and writes
    // only `acc`.
    unsafe {
        std::arch::asm!(
            "vpdpwssd {acc}, {q}, zmmword ptr [{p} + {off}]",
            acc = inout(zmm_reg) acc,
            q = in(zmm_reg) q,
            p = in(reg) p,
            off = const OFF,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::phase::radiation_score;
    use crate::model::rng;

    /// The integer score is within δ of s² times the table sum, for every dimension and for
    /// the extreme phases (0, N/4, N/2, …) as well as random ones.
    #[test]
    fn integer_scores_are_within_the_bound() {
        for dim in 1..=MAX_DIM {
            for bins in [4u32, 8, 512, 4096] {
                let tables = Tables::new(bins as usize, 16);
                let mut r = rng::stream_with(dim as u64, "int16-bound", u64::from(bins));
                let phases: Vec<u16> = (0..64 * dim)
                    .map(|i| {
                        if i < 8 * dim {
                            (i as u32 * bins / 8 % bins) as u16
                        } else {
                            rng::below(&mut r, bins) as u16
                        }
                    })
                    .collect();
                let m = IntTiles::new(&tables, &phases, dim);
                let s = f64::from(scale(dim));
                let delta = error_bound(dim) as f64;
                for u in 0..64 {
                    let act = &phases[u * dim..(u + 1) * dim];
                    let q = m.query(act);
                    for v in 0..64 {
                        let tile = &m.values()[v / LANES * dim * PAIR_LANES..];
                        let int: i64 = (0..dim)
                            .map(|d| {
                                let at = d * PAIR_LANES + 2 * (v % LANES);
                                i64::from(tile[at]) * i64::from(q[d] as i16)
                                    + i64::from(tile[at + 1]) * i64::from(q[d] >> 16)
                            })
                            .sum();
                        assert!(int.abs() < i64::from(i32::MAX), "dim {dim} overflow");
                        let x = radiation_score(&tables, act, &phases[v * dim..(v + 1) * dim]);
                        let err = (int as f64 - s * s * f64::from(x)).abs();
                        assert!(err <= delta, "dim {dim} bins {bins}: {err} > {delta}");
                    }
                }
            }
        }
    }

    /// Random instances, many of them tie-heavy (few phase bins), with every dimension, K up
    /// to 17 and successor lists of every length: every backend equals brute force. Sources
    /// alternate between phases aligned with some node (high K-th scores) and random ones
    /// (lower), so the speculative floor is often too high and the rescan runs.
    #[test]
    fn integer_kernel_equals_brute_force_on_random_tie_heavy_instances() {
        use crate::radiation::{Backend, Scratch, Source, top_k_brute_force, top_k_lists};
        let mut r = rng::stream_with(7, "int16-random", 0);
        let mut rescans = 0;
        for instance in 0..400u64 {
            let bins = [2u32, 3, 4, 8, 16, 512, 4096][rng::below(&mut r, 7) as usize];
            let n = 2 + rng::below(&mut r, 300) as usize;
            let dim = 1 + rng::below(&mut r, MAX_DIM as u32) as usize;
            let k = 1 + rng::below(&mut r, 17) as usize;
            let tables = Tables::new(bins as usize, 16);
            let phases: Vec<u16> = (0..n * dim)
                .map(|_| rng::below(&mut r, bins) as u16)
                .collect();
            let sources = 40usize;
            let acts: Vec<u16> = (0..sources)
                .flat_map(|u| {
                    let v = rng::below(&mut r, n as u32) as usize;
                    let aligned = u % 3 != 2;
                    (0..dim)
                        .map(|d| {
                            if aligned {
                                ((bins - u32::from(phases[v * dim + d])) % bins) as u16
                            } else {
                                rng::below(&mut r, bins) as u16
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            let succs: Vec<Vec<u32>> = (0..sources)
                .map(|_| {
                    let len = rng::below(&mut r, (n as u32 / 2).max(1));
                    let mut s: Vec<u32> = (0..len).map(|_| rng::below(&mut r, n as u32)).collect();
                    s.sort_unstable();
                    s.dedup();
                    s
                })
                .collect();
            let index = |u: usize| (u * 7 % n) as u32;
            let source = |u: usize| Source {
                index: index(u),
                phase: &acts[u * dim..(u + 1) * dim],
                successors: &succs[u],
            };
            let phasors = crate::radiation::PhasorMatrix::new(&tables, &phases, dim);
            let mut slow = Vec::new();
            for backend in Backend::supported().into_iter().filter(|b| b.is_int16()) {
                let mut scratch = Scratch::default();
                let inputs = (&tables, &phasors, &phases[..]);
                let lists = top_k_lists(backend, inputs, sources, source, k, &mut scratch);
                rescans += scratch.speculation().1;
                for (u, fast) in lists.iter().enumerate() {
                    top_k_brute_force(&tables, &phases, dim, &source(u), k, &mut slow);
                    assert_eq!(
                        *fast, slow,
                        "{backend} instance {instance}: n {n} dim {dim} bins {bins} k {k} source {u}"
                    );
                }
            }
        }
        assert!(rescans > 100, "the rescan path ran only {rescans} times");
    }

    /// A speculative floor just below the K-th best integer score lets K candidates through
    /// but can drop a candidate that ties the K-th best exactly with a slightly lower integer
    /// score; the 2δ clearance check must catch that and rescan. Forced here for every source
    /// of tie-heavy instances (few bins, so exact ties with unequal integer scores abound).
    #[test]
    fn a_speculative_floor_within_2_delta_of_the_kth_score_is_rescanned() {
        use crate::radiation::{Backend, Scratch, Source, top_k_brute_force, top_k_lists};
        let mut r = rng::stream_with(11, "int16-forced", 0);
        for instance in 0..300u64 {
            let bins = [4u32, 8, 12, 16][rng::below(&mut r, 4) as usize];
            let dim = 2 + rng::below(&mut r, 6) as usize;
            let (n, k) = (
                64 + rng::below(&mut r, 100) as usize,
                1 + rng::below(&mut r, 8) as usize,
            );
            let tables = Tables::new(bins as usize, 16);
            let phases: Vec<u16> = (0..n * dim)
                .map(|_| rng::below(&mut r, bins) as u16)
                .collect();
            let act: Vec<u16> = (0..dim).map(|_| rng::below(&mut r, bins) as u16).collect();
            let phasors = crate::radiation::PhasorMatrix::new(&tables, &phases, dim);
            let source = |_: usize| Source {
                index: 0,
                phase: &act,
                successors: &[],
            };
            // The K-th best integer score, by brute force over the integer tiles.
            let q = phasors.int.query(&act);
            let mut ints: Vec<i32> = (1..n)
                .map(|v| {
                    let tile = &phasors.int.values()[v / LANES * dim * PAIR_LANES..];
                    (0..dim)
                        .map(|d| {
                            let at = d * PAIR_LANES + 2 * (v % LANES);
                            i32::from(tile[at]) * (q[d] as i16 as i32)
                                + i32::from(tile[at + 1]) * (q[d] >> 16)
                        })
                        .sum()
                })
                .collect();
            ints.sort_unstable_by(|a, b| b.cmp(a));
            let mut slow = Vec::new();
            top_k_brute_force(&tables, &phases, dim, &source(0), k, &mut slow);
            for backend in Backend::supported().into_iter().filter(|b| b.is_int16()) {
                let mut scratch = Scratch::default();
                scratch.prediction.forced = Some(ints[k - 1] - 1);
                let inputs = (&tables, &phasors, &phases[..]);
                let lists = top_k_lists(backend, inputs, 1, source, k, &mut scratch);
                assert_eq!(
                    scratch.speculation(),
                    (1, 1),
                    "the forced floor is within 2δ"
                );
                assert_eq!(
                    lists[0], slow,
                    "{backend} instance {instance} n {n} dim {dim} k {k}"
                );
            }
        }
    }

    /// A buffer that overflows (every node ties) is compacted as often as needed, and the
    /// answer still goes to the lowest indices.
    #[test]
    fn compaction_keeps_every_tied_candidate() {
        use crate::radiation::{Backend, Scratch, Source, top_k_brute_force, top_k_lists};
        let tables = Tables::new(4, 16);
        let n = 1000;
        let phases = vec![1u16; n * 3];
        let phasors = crate::radiation::PhasorMatrix::new(&tables, &phases, 3);
        let source = |_: usize| Source {
            index: 5,
            phase: &[3, 3, 3],
            successors: &[0, 2, 999],
        };
        let mut slow = Vec::new();
        top_k_brute_force(&tables, &phases, 3, &source(0), 9, &mut slow);
        assert_eq!(slow, [1, 3, 4, 6, 7, 8, 9, 10, 11]);
        for backend in Backend::supported().into_iter().filter(|b| b.is_int16()) {
            let inputs = (&tables, &phasors, &phases[..]);
            let lists = top_k_lists(backend, inputs, 1, source, 9, &mut Scratch::default());
            assert_eq!(lists[0], slow, "{backend}");
        }
    }

    /// Random candidate lists of 0 to 16 entries in ascending node order, tie-heavy (few
    /// distinct scores), as the scan leaves them.
    fn random_candidates(r: &mut rand_chacha::ChaCha8Rng, nodes: u32) -> Candidates {
        let mut c = Candidates::default();
        c.reset(FIRST_LIMIT);
        // Up to 40 before deduplication: one vector, two, and more than the helpers take.
        let n = rng::below(r, 41) as usize;
        let mut picked: Vec<u32> = (0..n).map(|_| rng::below(r, nodes + 8)).collect();
        picked.sort_unstable();
        picked.dedup();
        let spread = [2, 5, 1000, 1 << 30][rng::below(r, 4) as usize];
        for (i, &v) in picked.iter().enumerate() {
            c.score[i] = rng::below(r, spread) as i32 - (spread / 2) as i32;
            c.node[i] = v;
        }
        c.len = picked.len();
        c
    }

    /// The AVX-512 helpers (exclusion, K-th best, selection order) equal the plain ones they
    /// replace, on random tie-heavy lists with random exclusions and padding nodes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_candidate_helpers_equal_the_plain_ones() {
        if Backend::int16_isa(Backend::resolve(
            crate::radiation::BackendChoice::Int16,
            0,
            1,
        )) != Some(Isa::Avx512Vnni)
        {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        use crate::radiation::Backend;
        let mut r = rng::stream_with(3, "int16-avx512-helpers", 0);
        for case in 0..20_000 {
            let nodes = 8 + rng::below(&mut r, 120);
            let mut succ: Vec<u32> = (0..rng::below(&mut r, 17))
                .map(|_| rng::below(&mut r, nodes))
                .collect();
            succ.sort_unstable();
            succ.dedup();
            let exclusion = Exclusion {
                index: rng::below(&mut r, nodes),
                successors: &succ,
            };
            let k = 1 + rng::below(&mut r, 8) as usize;
            let delta = [0i64, 1, 3, 1 << 20][rng::below(&mut r, 4) as usize];
            let mut plain = random_candidates(&mut r, nodes);
            let mut fast = plain.clone();
            plain.drop_excluded(&exclusion, nodes as usize);
            // SAFETY: AVX-512 was detected above.
            unsafe { fast.drop_excluded_avx512(&exclusion, nodes as usize) };
            assert_eq!(
                (&plain.score[..plain.len], &plain.node[..plain.len]),
                (&fast.score[..fast.len], &fast.node[..fast.len]),
                "case {case}: exclusion"
            );
            let kth = plain.kth(k);
            assert_eq!(
                fast.kth_with(Isa::Avx512Vnni, k),
                kth,
                "case {case}: kth {k}"
            );
            // Table sums that order ties by something other than the index, so a wrong
            // cluster shows.
            let table_sum = |v: u32| (v % 3) as f32;
            let (mut a, mut b) = (vec![u32::MAX; k], vec![u32::MAX; k]);
            let mut exact = Vec::new();
            let na = plain.select(Isa::Portable, kth, k, delta, &mut exact, &mut a, table_sum);
            let nb = fast.select(
                Isa::Avx512Vnni,
                kth,
                k,
                delta,
                &mut exact,
                &mut b,
                table_sum,
            );
            assert_eq!(
                &a[..na],
                &b[..nb],
                "case {case}: selection, k {k} delta {delta}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_compress_table_packs_set_lanes_in_order() {
        assert_eq!(COMPRESS[0b1010_0110][..4], [1, 2, 5, 7]);
        assert_eq!(COMPRESS[0xff], [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(COMPRESS[0][0], 0);
    }

    /// The pass's tile bits: a bit per 16-bit field, set where the field is nonzero,
    /// against a field-by-field reference, on the edge fields (0x0001, 0x7fff, 0x8000,
    /// 0xffff) in every position and on random words.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn nonzero_lanes_marks_each_nonzero_16_bit_field() {
        if !std::is_x86_feature_detected!("bmi2") {
            return;
        }
        let reference = |x: u64| {
            (0..4).fold(0u32, |b, f| {
                b | u32::from((x >> (16 * f)) & 0xffff != 0) << f
            })
        };
        let mut words = vec![0u64, u64::MAX];
        for f in 0..4 {
            for field in [0x0001u64, 0x7fff, 0x8000, 0xffff, 0x0100] {
                words.push(field << (16 * f));
            }
        }
        let mut r = rng::stream_with(7, "nonzero-lanes", 0);
        for _ in 0..10_000 {
            // Sparse words (two ANDed), so zero fields are common.
            let x = rand_core::Rng::next_u64(&mut r) & rand_core::Rng::next_u64(&mut r);
            words.push(x);
        }
        for x in words {
            // SAFETY: BMI2 was detected above.
            assert_eq!(unsafe { nonzero_lanes(x) }, reference(x), "{x:#018x}");
        }
    }

    /// The buffers the SIMD passes store whole vectors into start on a 4 KiB boundary (a
    /// store across a page boundary is many times slower, and the pass's speed depended on
    /// where the allocator put them), and each tile dimension starts a cache line.
    #[test]
    fn candidate_buffers_are_page_aligned_and_tiles_line_aligned() {
        let mut c = Candidates::default();
        c.reset(FIRST_LIMIT);
        assert!(c.score.len() >= FIRST_LIMIT && c.node.len() >= FIRST_LIMIT);
        assert_eq!(c.score.as_ptr() as usize % 4096, 0);
        assert_eq!(c.node.as_ptr() as usize % 4096, 0);
        c.reset(3 * PAGE);
        assert!(c.score.len() >= 3 * PAGE);
        assert_eq!(c.score.as_ptr() as usize % 4096, 0);
        let tables = Tables::new(64, 64);
        for dim in [1, 5, 9] {
            let m = IntTiles::new(&tables, &vec![3; 37 * dim], dim);
            assert_eq!(m.values().as_ptr() as usize % 64, 0);
            assert_eq!(m.values().len() % (4 * dim * PAIR_LANES), 0);
        }
    }
}
