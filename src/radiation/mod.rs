//! Radiation: dynamic top-K neighbour selection by phase alignment (SPEC 5).
//!
//! The score of source u for candidate v is defined as the table sum
//! `Σ_d cosT[(φa[u]_d + θφ[v]_d) mod N]`, added in f32 in dimension order
//! ([`crate::model::phase::radiation_score`]). Targets are the `top_k` highest scores, ties going
//! to the lower node index. Candidates are all nodes except u and u's static successors.
//!
//! # The batched kernel
//! Since cos(a + b) = cos a cos b − sin a sin b, the score is an inner product of
//! 2D-dimensional phasor vectors: the scores of all active sources against all nodes are a dense
//! (sources × 2D) by (2D × nodes) product. [`top_k_batch`] computes it over a resident node
//! [`PhasorMatrix`] (tiles of 8 nodes), four sources at a time over 8 KiB blocks of tiles so a
//! block is read from L1 by all four, with AVX2 + FMA where the CPU has them (compiled for
//! AVX-512VL's 32 registers where available). Each source's row of scores stays in L1 and
//! is followed by a selection pass: lane-wise maxima of four groups of tiles
//! give a lower bound of the K-th best score, and a branch-free pass lists the few tiles that
//! can reach it. The per-pair work is 2D multiply-adds, a store and a max.
//!
//! # Exactness and the tie rule
//! The f32 inner product differs from the table sum by rounding only, at most
//! [`SCORE_ERROR_BOUND`] (whether or not the multiply-adds are fused). Let A be the K-th best
//! approximate score. At least K candidates have exact scores ≥ A − δ, so the exact K-th best
//! score E satisfies E ≥ A − δ, and any candidate whose exact score is ≥ E (including exact
//! ties with E) has an approximate score ≥ E − δ ≥ A − 2δ. The kernel therefore keeps every
//! candidate whose approximate score reaches A − 2δ (the selection pass only discards tiles
//! below a lower bound of A, minus 2δ), re-scores exactly those with the table sum, and orders
//! them by (exact score descending, node index ascending). Scores and ties are those of the
//! table sum, so the result is *identical* to [`top_k_brute_force`], tie-breaking included, on
//! every CPU and backend and at any thread count; the tests check this on graphs whose small N
//! forces many exact ties.
//!
//! # The integer kernel (the default)
//! [`int16`] scores with i16 phasors and integer multiply-adds (`vpdpwssd` with AVX-512 VNNI
//! or AVX-VNNI, `vpmaddwd` with AVX2, chosen at run time) into exact int32 sums that are within
//! a proven δ of s² times the table sum, so the same argument (in integer units, 2δ) keeps
//! every candidate that can matter; it needs a single pass per source against a speculative
//! floor (rescanning the rare source whose candidates do not clear it by 2δ). `radiation.backend`
//! chooses between the kernels ([`BackendChoice`]); all give identical targets.
//!
//! This module knows nothing of the ECS.

mod backend;
pub mod cache;
pub mod index;
pub mod int16;
mod matrix;

pub use backend::{Backend, BackendChoice, INDEX_CROSSOVER, INDEX_MAX_AUTO_DIM};
pub use matrix::PhasorMatrix;

use crate::model::phase::radiation_score;
use crate::model::tables::Tables;
use matrix::{Exclusion, Query};

/// Upper bound on |phasor inner product − table sum| for D ≤ 16.
///
/// Each f32 table entry is within 2⁻²⁴ (relative) of the true cosine or sine; the table sum adds
/// D such values (|value| ≤ 1, partial sums ≤ D) and the phasor product adds 2D products (with
/// or without fused multiply-adds, in two partial sums), so the two differ from the true real
/// sum by at most about 2·2D·D·2⁻²⁴ ≈ 6e-5 for D = 16. 1e-4 leaves margin.
pub const SCORE_ERROR_BOUND: f32 = 1e-4;

/// Reusable per-worker buffers of the kernel.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    scan: matrix::ScanScratch,
    candidates: Vec<Vec<(f32, u32)>>,
    kth: Vec<f32>,
    exact: Vec<(f32, u32)>,
    out: Vec<u32>,
    int: int16::Candidates,
    pub(crate) prediction: int16::Prediction,
    index: index::IndexScratch,
    /// The index backend's source order: (peak bucket, source).
    order: Vec<(u32, u32)>,
    /// Sources the integer kernel scanned, and how many of them twice because the speculative
    /// floor was too high.
    speculation: (u64, u64),
}

impl Scratch {
    /// Sources the integer kernel has scanned with these buffers, and how many of those it had
    /// to scan a second time because its speculative starting floor was too high (the answer
    /// is the same either way; only the work differs).
    pub fn speculation(&self) -> (u64, u64) {
        self.speculation
    }

    /// Sources the index backend answered with these buffers, the nodes it scored for them and
    /// the buckets it visited.
    pub fn index_counts(&self) -> (u64, u64, u64) {
        (self.index.queries, self.index.scored, self.index.visited)
    }

    /// Zeroes the counts ([`Scratch::speculation`], [`Scratch::index_counts`]).
    pub fn reset_counts(&mut self) {
        self.speculation = (0, 0);
        let index = &mut self.index;
        (index.queries, index.scored, index.visited) = (0, 0, 0);
    }
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

/// Exact top-K targets of one source; writes up to `k` targets into `out` (fewer only when
/// fewer candidates exist), best first.
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
    out.resize(k, u32::MAX);
    let mut count = [0u32];
    top_k_batch(
        Backend::detect(),
        tables,
        phasors,
        node_phases,
        1,
        |_| Source {
            index: source.index,
            phase: source.phase,
            successors: source.successors,
        },
        k,
        scratch,
        out,
        &mut count,
    );
    out.truncate(count[0] as usize);
}

/// Exact top-K targets of `sources` sources at once (`source(i)` describes source i): source
/// i's targets go to `targets[i * k..]`, best first, and their number to `counts[i]` (less than
/// `k` only when fewer candidates exist; unused slots are left alone).
#[expect(
    clippy::too_many_arguments,
    reason = "the kernel's inputs are independent borrowed pieces"
)]
pub fn top_k_batch<'s>(
    backend: Backend,
    tables: &Tables,
    phasors: &PhasorMatrix,
    node_phases: &[u16],
    sources: usize,
    source: impl Fn(usize) -> Source<'s>,
    k: usize,
    scratch: &mut Scratch,
    targets: &mut [u32],
    counts: &mut [u32],
) {
    assert!(
        targets.len() >= sources * k && counts.len() >= sources,
        "top_k_batch: output buffers too small"
    );
    if k == 0 || sources == 0 {
        counts[..sources].fill(0);
        return;
    }
    // A stale index (a node moved bucket and nobody refreshed) is never queried: the dense
    // integer kernel gives the same targets.
    let backend = match backend {
        Backend::Index if !phasors.index.is_stale() => {
            top_k_batch_index(
                tables, phasors, sources, source, k, scratch, targets, counts,
            );
            return;
        }
        Backend::Index => Backend::detect(),
        other => other,
    };
    if let Some(isa) = backend.int16_isa() {
        top_k_batch_int16(
            isa,
            tables,
            phasors,
            node_phases,
            sources,
            source,
            k,
            scratch,
            targets,
            counts,
        );
        return;
    }
    let dim = phasors.dim();
    let Scratch {
        scan,
        candidates,
        kth,
        exact,
        out,
        ..
    } = scratch;
    candidates.resize_with(matrix::SOURCES_PER_PASS, Vec::new);
    for first in (0..sources).step_by(matrix::SOURCES_PER_PASS) {
        let last = (first + matrix::SOURCES_PER_PASS).min(sources);
        let queries: [Query; matrix::SOURCES_PER_PASS] = std::array::from_fn(|j| {
            if first + j < last {
                matrix::query(tables, source(first + j).phase)
            } else {
                [0.0; 2 * crate::model::MAX_DIM]
            }
        });
        let exclusions = |j: usize| {
            let s = source(first + j);
            Exclusion {
                index: s.index,
                successors: s.successors,
            }
        };
        matrix::scan(
            backend,
            phasors,
            &queries[..last - first],
            &exclusions,
            k,
            scan,
            candidates,
        );
        for (j, found) in candidates.iter().take(last - first).enumerate() {
            let i = first + j;
            // A = the K-th best approximate score; everything within 2δ of it is re-scored.
            let floor =
                matrix::kth_largest(kth, found.iter().map(|c| c.0), k) - 2.0 * SCORE_ERROR_BOUND;
            let phase = source(i).phase;
            exact.clear();
            exact.extend(found.iter().filter(|c| c.0 >= floor).map(|&(_, v)| {
                let p = &node_phases[v as usize * dim..(v as usize + 1) * dim];
                (radiation_score(tables, phase, p), v)
            }));
            out.clear();
            select_best(exact, k, out);
            targets[i * k..i * k + out.len()].copy_from_slice(out);
            counts[i] = out.len() as u32;
        }
    }
}

/// [`top_k_batch`] with the phase index ([`index`]), one source at a time: its answers are exact
/// table-sum top-K lists already.
#[expect(
    clippy::too_many_arguments,
    reason = "the kernel's inputs are independent borrowed pieces"
)]
fn top_k_batch_index<'s>(
    tables: &Tables,
    phasors: &PhasorMatrix,
    sources: usize,
    source: impl Fn(usize) -> Source<'s>,
    k: usize,
    scratch: &mut Scratch,
    targets: &mut [u32],
    counts: &mut [u32],
) {
    // Sources whose best buckets are near each other run one after another, so the buckets
    // they share are still in cache (each source's answer goes to its own slots, so the order
    // changes nothing else).
    let Scratch { index, order, .. } = scratch;
    order.clear();
    order.extend((0..sources).map(|i| (phasors.index.peak_bucket(source(i).phase), i as u32)));
    order.sort_unstable();
    for &(_, i) in order.iter() {
        let i = i as usize;
        let s = source(i);
        let exclusion = Exclusion {
            index: s.index,
            successors: s.successors,
        };
        phasors.index.query(tables, s.phase, &exclusion, k, index);
        let best = &index.best;
        for (slot, &(_, v)) in targets[i * k..].iter_mut().zip(best) {
            *slot = v;
        }
        counts[i] = best.len() as u32;
    }
}

/// [`top_k_batch`] with the integer kernel ([`int16`]), one source at a time: the scan keeps
/// every candidate within 2δ of the K-th best integer score, and those are re-scored with the
/// table sum.
#[expect(
    clippy::too_many_arguments,
    reason = "the kernel's inputs are independent borrowed pieces"
)]
fn top_k_batch_int16<'s>(
    isa: int16::Isa,
    tables: &Tables,
    phasors: &PhasorMatrix,
    node_phases: &[u16],
    sources: usize,
    source: impl Fn(usize) -> Source<'s>,
    k: usize,
    scratch: &mut Scratch,
    targets: &mut [u32],
    counts: &mut [u32],
) {
    let (dim, nodes) = (phasors.dim(), phasors.nodes());
    let delta = phasors.int.delta();
    let Scratch {
        exact,
        int,
        prediction,
        speculation,
        ..
    } = scratch;
    for i in 0..sources {
        let s = source(i);
        let exclusion = Exclusion {
            index: s.index,
            successors: s.successors,
        };
        // A speculative start is good if K choosable candidates clear it by 2δ: then the
        // K-th best A is at least that high and everything within 2δ of A was kept.
        let start = prediction.threshold(delta);
        let dropped = int16::scan(isa, &phasors.int, s.phase, &exclusion, k, start, int);
        if !dropped {
            int.drop_excluded(&exclusion, nodes);
        }
        let mut kth = int.kth_with(isa, k);
        let cleared = kth.is_some_and(|a| i64::from(a) - 2 * delta > i64::from(start));
        speculation.0 += 1;
        if start > i32::MIN && !cleared {
            speculation.1 += 1;
            if !int16::scan(isa, &phasors.int, s.phase, &exclusion, k, i32::MIN, int) {
                int.drop_excluded(&exclusion, nodes);
            }
            kth = int.kth_with(isa, k);
        }
        if let Some(a) = kth {
            prediction.observe(a);
        }
        let n = int.select(isa, kth, k, delta, exact, &mut targets[i * k..], |v| {
            let p = &node_phases[v as usize * dim..(v as usize + 1) * dim];
            radiation_score(tables, s.phase, p)
        });
        counts[i] = n as u32;
    }
}

/// Tests: `n` random phase rows of dimension `dim` in `0..bins`, seeded.
#[cfg(test)]
pub(crate) fn random_phases(n: usize, dim: usize, bins: u32, seed: u64) -> Vec<u16> {
    let mut r = crate::model::rng::stream_with(seed, "test-phases", 0);
    (0..n * dim)
        .map(|_| crate::model::rng::below(&mut r, bins) as u16)
        .collect()
}

/// Tests: [`top_k_batch`] over `sources` sources, each source's targets as a list.
#[cfg(test)]
pub(crate) fn top_k_lists<'s>(
    backend: Backend,
    (tables, phasors, node_phases): (&Tables, &PhasorMatrix, &[u16]),
    sources: usize,
    source: impl Fn(usize) -> Source<'s>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<Vec<u32>> {
    let (mut targets, mut counts) = (vec![u32::MAX; sources * k], vec![0; sources]);
    top_k_batch(
        backend,
        tables,
        phasors,
        node_phases,
        sources,
        source,
        k,
        scratch,
        &mut targets,
        &mut counts,
    );
    (0..sources)
        .map(|u| targets[u * k..u * k + counts[u] as usize].to_vec())
        .collect()
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

    #[test]
    fn kernel_equals_brute_force_including_ties() {
        // Small N forces many exactly tied scores; dims 9 and 12 take the run-time-D path;
        // node counts that are not multiples of 8 leave padding lanes; the successor lists are
        // long enough (up to n/11) that K + E sometimes exceeds the 32 bounding maxima.
        let shapes = [
            (4, 2, 60),
            (8, 3, 203),
            (512, 5, 300),
            (2, 1, 40),
            (16, 9, 77),
            (512, 12, 130),
        ];
        // Four seeds per shape.
        for (i, (bins, dim, n)) in shapes
            .into_iter()
            .cycle()
            .take(4 * shapes.len())
            .enumerate()
        {
            let seed = i as u64 + 1;
            let tables = Tables::new(bins as usize, 16);
            let phases = random_phases(n, dim, bins, seed);
            let phasors = PhasorMatrix::new(&tables, &phases, dim);
            let acts: Vec<Vec<u16>> = (0..n as u64)
                .map(|u| random_phases(1, dim, bins, seed * 1000 + u))
                .collect();
            let succs: Vec<Vec<u32>> = (0..n as u32)
                .map(|u| (0..n as u32).filter(|v| (v * 7 + u) % 11 == 0).collect())
                .collect();
            let source = |u: usize| Source {
                index: u as u32,
                phase: &acts[u],
                successors: &succs[u],
            };
            for backend in Backend::supported() {
                let mut scratch = Scratch::default();
                let mut slow = Vec::new();
                for k in [1, 6, 17] {
                    let lists = top_k_lists(
                        backend,
                        (&tables, &phasors, &phases),
                        n,
                        source,
                        k,
                        &mut scratch,
                    );
                    for (u, fast) in lists.iter().enumerate() {
                        top_k_brute_force(&tables, &phases, dim, &source(u), k, &mut slow);
                        assert_eq!(
                            *fast, slow,
                            "{backend:?} bins {bins} dim {dim} source {u} k {k}"
                        );
                        assert!(!fast.contains(&(u as u32)));
                        assert!(fast.iter().all(|v| !succs[u].contains(v)));
                    }
                }
            }
            // The one-source entry point agrees too.
            let (mut one, mut slow) = (Vec::new(), Vec::new());
            top_k(
                &tables,
                &phasors,
                &phases,
                &source(3),
                6,
                &mut Scratch::default(),
                &mut one,
            );
            top_k_brute_force(&tables, &phases, dim, &source(3), 6, &mut slow);
            assert_eq!(one, slow);
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
}
