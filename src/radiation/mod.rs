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

/// Node phasors in structure-of-arrays layout: for dimension d, `cos[d*n..]` holds
/// cos(2πθφ[v]_d/N) for every node v and `sin[d*n..]` the sines.
#[derive(Clone, Debug, Default)]
pub struct PhasorMatrix {
    dim: usize,
    nodes: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl PhasorMatrix {
    /// Builds the matrix from node phase parameters laid out `[node][dim]`.
    pub fn new(tables: &Tables, phases: &[u16], dim: usize) -> PhasorMatrix {
        let nodes = phases.len() / dim;
        let mut m = PhasorMatrix {
            dim,
            nodes,
            cos: vec![0.0; dim * nodes],
            sin: vec![0.0; dim * nodes],
        };
        for v in 0..nodes {
            m.set_node(tables, v, &phases[v * dim..(v + 1) * dim]);
        }
        m
    }

    /// Rewrites the row of node `v` after its phase parameters changed.
    pub fn set_node(&mut self, tables: &Tables, v: usize, phase: &[u16]) {
        for (d, &p) in phase.iter().enumerate().take(self.dim) {
            self.cos[d * self.nodes + v] = tables.cos[p as usize];
            self.sin[d * self.nodes + v] = tables.sin[p as usize];
        }
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Approximate scores of one source against every node, written into `row`.
    fn approx_scores(&self, tables: &Tables, source_phase: &[u16], row: &mut [f32]) {
        let n = self.nodes;
        row.fill(0.0);
        for (d, &a) in source_phase.iter().enumerate().take(self.dim) {
            let qc = tables.cos[a as usize];
            let qs = tables.sin[a as usize];
            let c = &self.cos[d * n..(d + 1) * n];
            let s = &self.sin[d * n..(d + 1) * n];
            for ((r, &cv), &sv) in row.iter_mut().zip(c).zip(s) {
                *r += qc * cv - qs * sv;
            }
        }
    }
}

/// Reusable per-worker buffers of the kernel.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    row: Vec<f32>,
    best: Vec<f32>,
    candidates: Vec<(f32, u32)>,
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
    scratch.row.resize(n, 0.0);
    phasors.approx_scores(tables, source.phase, &mut scratch.row);
    let row = &mut scratch.row;
    row[source.index as usize] = f32::NEG_INFINITY;
    for &s in source.successors {
        row[s as usize] = f32::NEG_INFINITY;
    }
    // K-th largest approximate score: keep the best K in a small ascending array.
    let best = &mut scratch.best;
    best.clear();
    for &x in row.iter() {
        if x == f32::NEG_INFINITY {
            continue;
        }
        if best.len() < k {
            let at = best.partition_point(|&b| b < x);
            best.insert(at, x);
        } else if x > best[0] {
            let at = best.partition_point(|&b| b < x);
            best.insert(at, x);
            best.remove(0);
        }
    }
    let Some(&kth) = best.first() else {
        return;
    };
    let threshold = if best.len() < k {
        f32::NEG_INFINITY
    } else {
        kth - 2.0 * SCORE_ERROR_BOUND
    };
    let candidates = &mut scratch.candidates;
    candidates.clear();
    for (v, &x) in row.iter().enumerate() {
        if x != f32::NEG_INFINITY && x >= threshold {
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
        assert_eq!(phasors.cos, fresh.cos);
        assert_eq!(phasors.sin, fresh.sin);
    }
}
