//! Backward stage (SPEC 11, `training.credit: Backprop`): the tape of a training sample's
//! arrivals is recorded timestep by timestep ([`record_step`], in the forward stage), and after
//! the readout the reverse pass runs as two systems: [`readout_gradient`] (the loss gradient
//! at the active outputs and, with learned encodings, at the class encodings) and
//! [`through_arrivals`] ([`crate::model::backprop::backward`] over the tape). The math is in
//! `model/`; these systems gather and scatter.

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::model::MAX_DIM;
use crate::model::backprop::{self, Dynamics, ParamGrads, Seed};
use crate::model::phasor::signal_backward;
use crate::model::readout::{logits_backward, loss_gradient};
use crate::scene::{Carry, CreditSetting};
use crate::sim::components::{Activation, Node, OutputNode};
use crate::sim::resources::{
    ActiveSnapshot, Arrivals, BackpropTape, CurrentSample, Emissions, Encodings, GradLayout,
    LoopState, PhasorArrivals, Readout, SampleGradient, SettleOrder, SettledPass, Topology,
    TrainingSettings,
};

/// Run condition: a training sample whose credit is `Backprop` (the tape is recorded).
pub fn records(sample: Res<CurrentSample>, training: Res<TrainingSettings>) -> bool {
    records_tape(&sample, &training)
}

/// Whether this sample records a backprop tape (a training sample with `credit: Backprop`).
pub fn records_tape(sample: &CurrentSample, training: &TrainingSettings) -> bool {
    sample.training && training.credit == CreditSetting::Backprop
}

/// Run condition: a training sample on the batch path (its gradient goes to
/// [`SampleGradient`]; [`TrainingSettings::batched`]).
pub fn batched(sample: Res<CurrentSample>, training: Res<TrainingSettings>) -> bool {
    sample.training && training.batched()
}

/// Run condition: a training sample that needs the read-out gradient: `Backprop`, or the batch
/// path (whose encodings may learn).
pub fn needs_readout_gradient(sample: Res<CurrentSample>, training: Res<TrainingSettings>) -> bool {
    sample.training && (training.credit == CreditSetting::Backprop || training.batched())
}

/// Records this timestep: the snapshot's sources, their cells, and the touched targets with
/// whether they started from their carried state and (phasor) the sums they ended with.
pub fn record_step(
    snapshot: Res<ActiveSnapshot>,
    emissions: Res<Emissions>,
    arrivals: Res<Arrivals>,
    phasors: Res<PhasorArrivals>,
    state: Res<LoopState>,
    mut tape: ResMut<BackpropTape>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    let dim = settings.dim;
    let step = tape.tape.step_mut(state.t as usize);
    let copy = |to: &mut Vec<u32>, from: &[u32]| {
        to.clear();
        to.extend_from_slice(from);
    };
    copy(&mut step.sources, &snapshot.nodes);
    copy(&mut step.offsets, &emissions.offsets);
    copy(&mut step.target, &emissions.target);
    step.phase.clear();
    step.phase.extend_from_slice(&emissions.phase);
    step.magnitude.clear();
    step.magnitude.extend_from_slice(&emissions.magnitude);
    step.strength.clear();
    step.strength.extend_from_slice(&emissions.strength);
    let list = match settings.phasor {
        Some(_) => &phasors.0.list,
        None => &arrivals.0.list,
    };
    copy(&mut step.touched, list);
    let accumulate = settings.carry == Carry::Accumulate;
    step.carried.clear();
    step.carried.extend(
        list.iter()
            .map(|&v| accumulate && snapshot.slot_of[v as usize] != u32::MAX),
    );
    step.sums.clear();
    if settings.phasor.is_some() {
        for &v in list {
            let vk = v as usize;
            step.sums
                .extend_from_slice(&phasors.0.sums[vk * dim..(vk + 1) * dim]);
        }
    }
}

/// Sizes the sample's gradient for this world and zeroes it.
fn zeroed(grad: &mut SampleGradient, layout: GradLayout) {
    grad.values.clear();
    grad.values.resize(layout.len(), 0.0);
}

/// The layout of this world's gradients.
pub fn layout(topology: &Topology, encodings: &Encodings, dim: usize) -> GradLayout {
    GradLayout {
        cells: topology.entities.len() * dim,
        encoding: encodings.0.classes * encodings.0.dim,
    }
}

/// The loss gradient at readout: with respect to the active outputs' activations (the reverse
/// pass's seed) and, with `learn_encodings`, to the class encodings' indices (into
/// [`SampleGradient`]). An uncovered sample has zero gradient.
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters are its data access"
)]
pub fn readout_gradient(
    outputs: Query<(&OutputNode, &Activation)>,
    active: Query<&Node, With<Activation>>,
    readout: Res<Readout>,
    encodings: Res<Encodings>,
    sample: Res<CurrentSample>,
    training: Res<TrainingSettings>,
    topology: Res<Topology>,
    mut grad: ResMut<SampleGradient>,
    state: Res<LoopState>,
    mut tape: ResMut<BackpropTape>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let (settings, tables) = (&ctx.settings, &ctx.tables.0);
    let dim = settings.dim;
    let layout = layout(&topology, &encodings, dim);
    zeroed(&mut grad, layout);
    let tape = &mut *tape;
    tape.tape.len = (state.t as usize).min(tape.tape.steps.len());
    tape.seed_phase.clear();
    tape.seed_phase.resize(layout.cells, 0.0);
    tape.seed_magnitude.clear();
    tape.seed_magnitude.resize(layout.cells, 0.0);
    tape.final_active.clear();
    if readout.prediction.is_none() {
        return;
    }
    tape.final_active.extend(active.iter().map(|n| n.index));
    tape.final_active.sort_unstable();
    let first_output = topology.graph.roles.first_output();
    let r = &mut tape.readout;
    r.outputs.clear();
    r.outputs
        .extend(outputs.iter().map(|(o, _)| (o.slot, first_output + o.slot)));
    r.outputs.sort_unstable();
    r.slots.clear();
    r.slots.extend(r.outputs.iter().map(|&(slot, _)| slot));
    r.signals.clear();
    r.signals.resize(r.outputs.len() * dim, 0.0);
    let activation = |k: u32| outputs.get(topology.entities[k as usize]).map(|(_, a)| a);
    for (i, &(_, k)) in r.outputs.iter().enumerate() {
        if let Ok(a) = activation(k) {
            tables.signal_vec(
                &a.phase[..dim],
                &a.magnitude[..dim],
                &mut r.signals[i * dim..(i + 1) * dim],
            );
        }
    }
    let e = &encodings.0;
    r.g_z.clear();
    r.g_z.resize(e.classes, 0.0);
    loss_gradient(
        &readout.logits,
        sample.label as usize,
        settings.temperature,
        settings.label_smoothing,
        &mut r.g_z,
    );
    r.g_signals.clear();
    r.g_signals.resize(r.signals.len(), 0.0);
    r.g_encodings.clear();
    r.g_encodings.resize(e.signals.len(), 0.0);
    logits_backward(
        settings.readout,
        &r.signals,
        &r.slots,
        &e.signals,
        &r.g_z,
        &mut r.g_signals,
        &mut r.g_encodings,
    );
    let (mut g_p, mut g_m) = ([0.0f32; MAX_DIM], [0.0f32; MAX_DIM]);
    for (i, &(_, k)) in r.outputs.iter().enumerate() {
        let Ok(a) = activation(k) else {
            continue;
        };
        let k = k as usize;
        let row = k * dim..(k + 1) * dim;
        g_p[..dim].fill(0.0);
        g_m[..dim].fill(0.0);
        signal_backward(
            tables,
            &a.phase[..dim],
            &a.magnitude[..dim],
            &r.g_signals[i * dim..(i + 1) * dim],
            &mut g_p[..dim],
            &mut g_m[..dim],
        );
        tape.seed_phase[row.clone()].copy_from_slice(&g_p[..dim]);
        tape.seed_magnitude[row].copy_from_slice(&g_m[..dim]);
    }
    if training.learn_encodings {
        let values = &mut grad.values;
        let (enc_p, enc_m) = (layout.enc_phase(), layout.enc_magnitude());
        let (head, tail) = values.split_at_mut(enc_m.start);
        signal_backward(
            tables,
            &e.phase,
            &e.magnitude,
            &tape.readout.g_encodings,
            &mut head[enc_p],
            &mut tail[..layout.encoding],
        );
    }
}

/// The reverse pass through the recorded timesteps, or through the settled pass when the
/// sample ran as one: every node's parameter gradient into [`SampleGradient`].
pub fn through_arrivals(
    mut tape: ResMut<BackpropTape>,
    mut grad: ResMut<SampleGradient>,
    topology: Res<Topology>,
    state: Res<LoopState>,
    order: Res<SettleOrder>,
    settled: Res<SettledPass>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    if tape.final_active.is_empty() {
        return;
    }
    let dynamics = Dynamics {
        dim: settings.dim,
        phasor: settings.phasor,
        carry: settings.carry,
        inhibition: settings.inhibition,
        clamped: if settings.carry == Carry::Replace {
            topology.graph.roles.inputs
        } else {
            0
        },
    };
    let cells = tape.seed_phase.len();
    let tape = &mut *tape;
    let (phase, rest) = grad.values.split_at_mut(cells);
    if state.settled {
        let (g_phase, g_magnitude) = &mut tape.settled_scratch;
        crate::model::settle::backward_settled(
            &ctx.tables.0,
            settings.settle(),
            &order.0,
            &settled.0,
            Seed {
                final_active: &tape.final_active,
                phase: &tape.seed_phase,
                magnitude: &tape.seed_magnitude,
            },
            g_phase,
            g_magnitude,
            ParamGrads {
                phase,
                magnitude: &mut rest[..cells],
            },
        );
        return;
    }
    backprop::backward(
        &ctx.tables.0,
        dynamics,
        tape.tape.recorded(),
        Seed {
            final_active: &tape.final_active,
            phase: &tape.seed_phase,
            magnitude: &tape.seed_magnitude,
        },
        &mut tape.scratch,
        ParamGrads {
            phase,
            magnitude: &mut rest[..cells],
        },
    );
}
