//! The settled pass (SPEC 11 `forward.carry: Replace` without radiation): one pass over the
//! nodes in topological order instead of the timestep loop.
//!
//! Under `Replace` the activation of a node at t + 1 depends only on its predecessors'
//! activations at t (the inputs stay clamped). A node at longest-path distance `d` from the
//! inputs therefore has its final activation from timestep `d` on, and once the loop has run at
//! least the graph's depth in timesteps every activation is the one this pass computes: the
//! node's kept arrivals from its active predecessors, summed in ascending source index (the
//! order the timestep loop emits them in), then read out. The sums are the same f32 operations
//! in the same order, so the outputs are bit-identical (a test checks it against the loop).
//!
//! [`backward_settled`] is the reverse pass of this one pass: nodes in reverse topological
//! order, each taking the gradient its successors left at its activation. It is the same
//! gradient as the reverse pass through the timestep loop (every path through the unrolled
//! loop that reaches the read-out runs through settled activations), summed in another order.

use super::arrivals::gate_drops;
use super::backprop::{ParamGrads, Seed};
use super::phase::phase_cell;
use super::phasor::{self, Arrival, PhasorSum, Weight};
use super::tables::Tables;
use crate::graph::Graph;
use crate::scene::Inhibition;

/// The graph as the settled pass walks it.
#[derive(Clone, Debug, Default)]
pub struct Order {
    /// Non-input nodes in topological order (ascending index among the ready ones).
    pub nodes: Vec<u32>,
    /// Longest path, in edges, from an input to any node an input reaches (0 with no edges).
    pub depth: u32,
}

impl Order {
    /// The order and depth of `graph` (acyclic by construction).
    pub fn of(graph: &Graph) -> Order {
        let n = graph.len();
        let inputs = graph.roles.inputs as usize;
        let mut indegree: Vec<u32> = (0..n)
            .map(|k| graph.predecessors.row(k).len() as u32)
            .collect();
        let mut ready = std::collections::BinaryHeap::new();
        for (k, &d) in indegree.iter().enumerate() {
            if d == 0 {
                ready.push(std::cmp::Reverse(k as u32));
            }
        }
        // Longest distance from an input, `None` for nodes no input reaches.
        let mut dist: Vec<Option<u32>> = (0..n).map(|k| (k < inputs).then_some(0)).collect();
        let mut nodes = Vec::with_capacity(n.saturating_sub(inputs));
        while let Some(std::cmp::Reverse(u)) = ready.pop() {
            let uk = u as usize;
            if uk >= inputs {
                nodes.push(u);
            }
            for &v in graph.successors.row(uk) {
                let vk = v as usize;
                if vk >= inputs
                    && let Some(d) = dist[uk]
                {
                    dist[vk] = Some(dist[vk].map_or(d + 1, |e| e.max(d + 1)));
                }
                indegree[vk] -= 1;
                if indegree[vk] == 0 {
                    ready.push(std::cmp::Reverse(v));
                }
            }
        }
        let depth = dist.iter().flatten().copied().max().unwrap_or(0);
        Order { nodes, depth }
    }
}

/// One settled pass's activations and what its reverse pass needs. Buffers are reused.
#[derive(Clone, Debug, Default)]
pub struct Settled {
    /// Whether node k is active.
    pub active: Vec<bool>,
    /// φa, `[node][dim]` (meaningful for active nodes).
    pub phase: Vec<u16>,
    /// μa, `[node][dim]`.
    pub magnitude: Vec<u16>,
    /// σ: the mean weight over the dimensions (1 for inputs).
    pub strength: Vec<f32>,
    /// Each node's phasor sums, `[node][dim]`.
    pub sums: Vec<PhasorSum>,
    /// Start of each ordered node's kept cells (`order.nodes.len() + 1` entries).
    pub cell_start: Vec<u32>,
    /// Source of each kept cell.
    pub cell_source: Vec<u32>,
    /// φo of each kept cell, `[cell][dim]`.
    pub cell_phase: Vec<u16>,
    /// μo of each kept cell.
    pub cell_magnitude: Vec<u16>,
    /// s of each kept cell.
    pub cell_strength: Vec<f32>,
}

/// The phasor settings of the pass.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// D.
    pub dim: usize,
    /// The arrival weight.
    pub weight: Weight,
    /// The gate.
    pub inhibition: Inhibition,
    /// Hidden nodes never become active (`forward.silence_hidden`).
    pub silence_hidden: bool,
}

/// Runs the settled pass: inputs clamped to `(input_phase, input_magnitude)` (`[input][dim]`),
/// every other node from its kept arrivals, in `order`. Parameters are `[node][dim]`.
#[expect(
    clippy::too_many_arguments,
    reason = "the pass's inputs, each a different array"
)]
pub fn settle(
    t: &Tables,
    s: Settings,
    graph: &Graph,
    order: &Order,
    theta_phase: &[u16],
    theta_magnitude: &[u16],
    input: (&[u16], &[u16]),
    out: &mut Settled,
) {
    let dim = s.dim;
    let n = graph.len();
    let inputs = graph.roles.inputs as usize;
    out.active.clear();
    out.active.resize(n, false);
    out.phase.clear();
    out.phase.resize(n * dim, 0);
    out.magnitude.clear();
    out.magnitude.resize(n * dim, 0);
    out.strength.clear();
    out.strength.resize(n, 0.0);
    out.sums.clear();
    out.sums.resize(n * dim, PhasorSum::default());
    out.cell_start.clear();
    out.cell_source.clear();
    out.cell_phase.clear();
    out.cell_magnitude.clear();
    out.cell_strength.clear();
    let encoded = (input.0.len() / dim.max(1)).min(inputs);
    for k in 0..encoded {
        out.active[k] = true;
        out.strength[k] = 1.0;
        out.phase[k * dim..(k + 1) * dim].copy_from_slice(&input.0[k * dim..(k + 1) * dim]);
        out.magnitude[k * dim..(k + 1) * dim].copy_from_slice(&input.1[k * dim..(k + 1) * dim]);
    }
    let (n_bins, m_bins) = (t.phase_bins as u32, t.magnitude_bins as u32);
    let mut po = [0u16; super::MAX_DIM];
    let mut mo = [0u16; super::MAX_DIM];
    for &v in &order.nodes {
        let vk = v as usize;
        out.cell_start.push(out.cell_source.len() as u32);
        if s.silence_hidden && graph.roles.is_hidden(v) {
            continue;
        }
        let row = vk * dim..(vk + 1) * dim;
        let mut kept = false;
        for &u in graph.predecessors.row(vk) {
            let uk = u as usize;
            if !out.active[uk] {
                continue;
            }
            let strength = phase_cell(
                t,
                &out.phase[uk * dim..(uk + 1) * dim],
                &out.magnitude[uk * dim..(uk + 1) * dim],
                &theta_phase[row.clone()],
                &theta_magnitude[row.clone()],
                &mut po[..dim],
                &mut mo[..dim],
            );
            if gate_drops(s.inhibition, strength) {
                continue;
            }
            kept = true;
            phasor::add_arrival(
                t,
                s.weight,
                &po[..dim],
                &mo[..dim],
                strength,
                &mut out.sums[row.clone()],
            );
            out.cell_source.push(u);
            out.cell_phase.extend_from_slice(&po[..dim]);
            out.cell_magnitude.extend_from_slice(&mo[..dim]);
            out.cell_strength.push(strength);
        }
        if !kept {
            continue;
        }
        let mut weight = 0.0f32;
        let mut readable = true;
        for d in 0..dim {
            let sum = out.sums[vk * dim + d];
            match phasor::read(sum, n_bins, m_bins) {
                Some((p, m)) => (out.phase[vk * dim + d], out.magnitude[vk * dim + d]) = (p, m),
                None => readable = false,
            }
            weight += sum.w;
        }
        if readable {
            out.active[vk] = true;
            out.strength[vk] = weight / dim as f32;
        }
    }
    out.cell_start.push(out.cell_source.len() as u32);
}

/// The reverse pass of [`settle`]: from the gradient at readout (`seed`, `[node][dim]` per
/// bin) to every node's parameter gradient, added to `out`. `g_phase` and `g_magnitude` are
/// reusable buffers.
#[expect(
    clippy::too_many_arguments,
    reason = "the pass's inputs, each a different array"
)]
pub fn backward_settled(
    t: &Tables,
    s: Settings,
    order: &Order,
    settled: &Settled,
    seed: Seed<'_>,
    g_phase: &mut Vec<f32>,
    g_magnitude: &mut Vec<f32>,
    out: ParamGrads<'_>,
) {
    let dim = s.dim;
    let (n_bins, m_bins) = (t.phase_bins as u32, t.magnitude_bins as u32);
    g_phase.clear();
    g_phase.extend_from_slice(seed.phase);
    g_magnitude.clear();
    g_magnitude.extend_from_slice(seed.magnitude);
    let mut g_sums = [(glam::Vec2::ZERO, 0.0f32); super::MAX_DIM];
    let mut gp = [0.0f32; super::MAX_DIM];
    let mut gm = [0.0f32; super::MAX_DIM];
    for (j, &v) in order.nodes.iter().enumerate().rev() {
        let vk = v as usize;
        if !settled.active[vk] {
            continue;
        }
        let row = vk * dim..(vk + 1) * dim;
        if g_phase[row.clone()]
            .iter()
            .chain(&g_magnitude[row.clone()])
            .all(|&g| g == 0.0)
        {
            continue;
        }
        for (d, g) in g_sums[..dim].iter_mut().enumerate() {
            let i = vk * dim + d;
            *g = phasor::read_backward(settled.sums[i], g_phase[i], g_magnitude[i], n_bins, m_bins);
        }
        let cells = settled.cell_start[j] as usize..settled.cell_start[j + 1] as usize;
        for c in cells {
            let uk = settled.cell_source[c] as usize;
            let (phase, magnitude) = (
                &settled.cell_phase[c * dim..(c + 1) * dim],
                &settled.cell_magnitude[c * dim..(c + 1) * dim],
            );
            gp[..dim].fill(0.0);
            gm[..dim].fill(0.0);
            let arrival = Arrival {
                phase,
                magnitude,
                strength: settled.cell_strength[c],
            };
            let g_s = phasor::add_arrival_backward(
                t,
                s.weight,
                arrival,
                &g_sums[..dim],
                &mut gp[..dim],
                &mut gm[..dim],
            );
            phasor::strength_backward(t, phase, magnitude, g_s, &mut gp[..dim], &mut gm[..dim]);
            for d in 0..dim {
                g_phase[uk * dim + d] += gp[d];
                g_magnitude[uk * dim + d] += gm[d];
                out.phase[vk * dim + d] += gp[d];
                out.magnitude[vk * dim + d] += gm[d];
            }
        }
    }
}
