//! Reverse-mode differentiation through a sample's recorded arrivals (SPEC 11,
//! `training.credit: Backprop`).
//!
//! The forward pass records one [`StepTape`] per timestep: the active sources `A^t` (the
//! synchronous state every arrival of the timestep reads), their phase cells, and the targets
//! the cells touched with the sums they left. [`backward`] walks the tape from the last
//! timestep to the first, carrying the gradient of the loss with respect to every active
//! node's activation `(φa, μa)` (per bin), and adds each kept arrival's contribution to its
//! target's parameter gradient (the parameter enters the phase cell once, so
//! `∂φo/∂θφ = ∂φo/∂φa = 1`, and `mod` and `round` pass gradients straight through).
//!
//! What is held fixed, as SPEC 11 says: the excitatory gate (a dropped arrival has no
//! gradient), the activity masks (a node that was not active in `A^{t+1}` passes nothing back)
//! and the radiation targets (they are arrivals like any other). Under `carry: Accumulate` an
//! active node that received nothing keeps its activation, so its gradient passes through the
//! timestep unchanged; with `combine: Sum` a carried node's sums start from its activation, so
//! the gradient passes through it too; with `Phasor` a carried node's sums start from its
//! previous sums, whose gradient is kept per node until the timestep that wrote them.
//!
//! Plain functions over slices; the simulation records the tape and calls [`backward`] from
//! its `Backward` stage. Sums are taken in the tape's fixed order.

use glam::Vec2;

use super::arrivals::gate_drops;
use super::phasor::{self, Arrival, PhasorSum, Weight};
use super::tables::Tables;
use crate::scene::{Carry, Inhibition};

/// What one timestep of the forward pass did, as the reverse pass needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepTape {
    /// The active nodes at the start of the timestep, ascending.
    pub sources: Vec<u32>,
    /// Start of each source's cells, `sources + 1` entries.
    pub offsets: Vec<u32>,
    /// Target of each cell.
    pub target: Vec<u32>,
    /// φo of each cell, `[cell][dim]`.
    pub phase: Vec<u16>,
    /// μo of each cell, `[cell][dim]`.
    pub magnitude: Vec<u16>,
    /// s of each cell.
    pub strength: Vec<f32>,
    /// Nodes that received a kept arrival, in first-touch order.
    pub touched: Vec<u32>,
    /// Whether each touched node started from its carried state (active before, `Accumulate`).
    pub carried: Vec<bool>,
    /// The phasor sums each touched node ended the timestep with, `[touched][dim]`
    /// (`combine: Phasor` only).
    pub sums: Vec<PhasorSum>,
}

/// A sample's tape: one entry per timestep run; buffers are kept between samples.
#[derive(Clone, Debug, Default)]
pub struct Tape {
    /// The timesteps; only the first `len` belong to the current sample.
    pub steps: Vec<StepTape>,
    /// Timesteps recorded for the current sample.
    pub len: usize,
}

impl Tape {
    /// The buffers of timestep `t` of the current sample (grown on first use, reused after).
    pub fn step_mut(&mut self, t: usize) -> &mut StepTape {
        if self.steps.len() <= t {
            self.steps.resize_with(t + 1, StepTape::default);
        }
        self.len = t + 1;
        &mut self.steps[t]
    }

    /// The current sample's timesteps.
    pub fn recorded(&self) -> &[StepTape] {
        &self.steps[..self.len]
    }
}

/// The forward settings the reverse pass depends on.
#[derive(Clone, Copy, Debug)]
pub struct Dynamics {
    /// D.
    pub dim: usize,
    /// `None` for `combine: Sum`, the weight for `Phasor`.
    pub phasor: Option<Weight>,
    /// `forward.carry`.
    pub carry: Carry,
    /// The gate.
    pub inhibition: Inhibition,
    /// Arrivals into the first `clamped` nodes were skipped (the inputs under `Replace`).
    pub clamped: u32,
}

/// Reusable buffers of [`backward`] (sized on first use).
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    next_phase: Vec<f32>,
    next_magnitude: Vec<f32>,
    cur_phase: Vec<f32>,
    cur_magnitude: Vec<f32>,
    g_sums: Vec<(Vec2, f32)>,
    g_carry: Vec<(Vec2, f32)>,
    alive: Vec<bool>,
    touched: Vec<bool>,
    carried: Vec<bool>,
}

/// Where the reverse pass starts: the nodes active at readout and the gradient with respect to
/// their activations there, `[node][dim]` per bin (zero for any node the read-out did not use).
#[derive(Clone, Copy, Debug)]
pub struct Seed<'a> {
    /// The nodes active at readout.
    pub final_active: &'a [u32],
    /// `∂L/∂φa` at readout.
    pub phase: &'a [f32],
    /// `∂L/∂μa` at readout.
    pub magnitude: &'a [f32],
}

/// Parameter gradients, `[node][dim]` per bin.
#[derive(Debug)]
pub struct ParamGrads<'a> {
    /// `∂L/∂θφ`.
    pub phase: &'a mut [f32],
    /// `∂L/∂θμ`.
    pub magnitude: &'a mut [f32],
}

/// The gradient of the loss with respect to every node's parameters, added to `out`, from the
/// gradient at readout `seed` back through the recorded timesteps `tape`.
pub fn backward(
    t: &Tables,
    dynamics: Dynamics,
    tape: &[StepTape],
    seed: Seed<'_>,
    scratch: &mut Scratch,
    out: ParamGrads<'_>,
) {
    let ParamGrads {
        phase: g_theta_phase,
        magnitude: g_theta_magnitude,
    } = out;
    let (final_active, g_final_phase, g_final_magnitude) =
        (seed.final_active, seed.phase, seed.magnitude);
    let dim = dynamics.dim;
    let cells = g_final_phase.len();
    let n = cells / dim.max(1);
    let s = scratch;
    s.next_phase.clear();
    s.next_phase.extend_from_slice(g_final_phase);
    s.next_magnitude.clear();
    s.next_magnitude.extend_from_slice(g_final_magnitude);
    for buf in [&mut s.cur_phase, &mut s.cur_magnitude] {
        buf.clear();
        buf.resize(cells, 0.0);
    }
    for buf in [&mut s.g_sums, &mut s.g_carry] {
        buf.clear();
        buf.resize(cells, (Vec2::ZERO, 0.0));
    }
    s.alive.clear();
    s.alive.resize(n, false);
    s.touched.clear();
    s.touched.resize(n, false);
    s.carried.clear();
    s.carried.resize(n, false);
    for &v in final_active {
        s.alive[v as usize] = true;
    }
    let mut g_phase = [0.0f32; super::MAX_DIM];
    let mut g_magnitude = [0.0f32; super::MAX_DIM];
    let sum_carries = dynamics.phasor.is_none() && dynamics.carry == Carry::Accumulate;
    for step in tape.iter().rev() {
        // `alive` holds A^{t+1}; `next_*` the gradient at A^{t+1}.
        for (&v, &carried) in step.touched.iter().zip(&step.carried) {
            s.touched[v as usize] = true;
            s.carried[v as usize] = carried;
        }
        s.cur_phase.fill(0.0);
        s.cur_magnitude.fill(0.0);
        // An active node that kept its activation (untouched, or `Sum` starting from it).
        for &u in &step.sources {
            let uk = u as usize;
            if !s.alive[uk] {
                continue;
            }
            if !s.touched[uk] || (sum_carries && s.carried[uk]) {
                let r = uk * dim..(uk + 1) * dim;
                for d in r {
                    s.cur_phase[d] += s.next_phase[d];
                    s.cur_magnitude[d] += s.next_magnitude[d];
                }
            }
        }
        // The touched nodes' sums: their gradient from the activation read from them, plus
        // (phasor, carried later) the gradient of the sums the next touch started from.
        if dynamics.phasor.is_some() {
            for (j, &v) in step.touched.iter().enumerate() {
                let vk = v as usize;
                for d in 0..dim {
                    let i = vk * dim + d;
                    let g = if s.alive[vk] {
                        let (gz, gw) = phasor::read_backward(
                            step.sums[j * dim + d],
                            s.next_phase[i],
                            s.next_magnitude[i],
                            t.phase_bins as u32,
                            t.magnitude_bins as u32,
                        );
                        let (cz, cw) = s.g_carry[i];
                        (gz + cz, gw + cw)
                    } else {
                        (Vec2::ZERO, 0.0)
                    };
                    s.g_sums[i] = g;
                    s.g_carry[i] = if step.carried[j] {
                        g
                    } else {
                        (Vec2::ZERO, 0.0)
                    };
                }
            }
        }
        // Every kept arrival: to its source's activation and its target's parameters.
        for (i, &u) in step.sources.iter().enumerate() {
            let uk = u as usize;
            let cell_range = step.offsets[i] as usize..step.offsets[i + 1] as usize;
            for c in cell_range {
                let v = step.target[c];
                let vk = v as usize;
                let strength = step.strength[c];
                if v < dynamics.clamped || gate_drops(dynamics.inhibition, strength) || !s.alive[vk]
                {
                    continue;
                }
                let (g_p, g_m) = (&mut g_phase[..dim], &mut g_magnitude[..dim]);
                let row = vk * dim..(vk + 1) * dim;
                let (phase, magnitude) = (
                    &step.phase[c * dim..(c + 1) * dim],
                    &step.magnitude[c * dim..(c + 1) * dim],
                );
                match dynamics.phasor {
                    None => {
                        g_p.copy_from_slice(&s.next_phase[row.clone()]);
                        g_m.copy_from_slice(&s.next_magnitude[row.clone()]);
                    }
                    Some(kind) => {
                        g_p.fill(0.0);
                        g_m.fill(0.0);
                        let arrival = Arrival {
                            phase,
                            magnitude,
                            strength,
                        };
                        let g_s = phasor::add_arrival_backward(
                            t,
                            kind,
                            arrival,
                            &s.g_sums[row.clone()],
                            g_p,
                            g_m,
                        );
                        phasor::strength_backward(t, phase, magnitude, g_s, g_p, g_m);
                    }
                }
                let src = uk * dim;
                for d in 0..dim {
                    s.cur_phase[src + d] += g_p[d];
                    s.cur_magnitude[src + d] += g_m[d];
                    g_theta_phase[vk * dim + d] += g_p[d];
                    g_theta_magnitude[vk * dim + d] += g_m[d];
                }
            }
        }
        for &v in &step.touched {
            s.touched[v as usize] = false;
            s.carried[v as usize] = false;
        }
        // A^t becomes the next state to differentiate.
        std::mem::swap(&mut s.cur_phase, &mut s.next_phase);
        std::mem::swap(&mut s.cur_magnitude, &mut s.next_magnitude);
        s.alive.fill(false);
        for &u in &step.sources {
            s.alive[u as usize] = true;
        }
    }
}
