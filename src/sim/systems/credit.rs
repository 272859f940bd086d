//! Credit assignment (SPEC 7): label-aware output credit and the vectorized hidden credit,
//! chained to phase and magnitude index gradients at each node's activation point.
//!
//! The system only gathers activations into contiguous arrays and scatters nothing: the
//! formulas are in [`crate::model::credit`], and [`super::update`] applies the result.

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::model::MAX_DIM;
use crate::model::credit::{chain_to_indices, hidden_credit, output_credit};
use crate::model::readout::{Readout, logits_backward, loss_gradient};
use crate::sim::components::{Activation, Node, OutputNode};
use crate::sim::resources::{Credit, CurrentSample, Encodings, TrainingSettings};

/// Run condition: the current sample is a training sample.
pub fn is_training(sample: Res<CurrentSample>) -> bool {
    sample.training
}

/// Run condition: a training sample whose credit is `Local` (SPEC 7).
pub fn is_local(sample: Res<CurrentSample>, training: Res<TrainingSettings>) -> bool {
    sample.training && training.credit == crate::scene::CreditSetting::Local
}

/// On the batch path with `Local` credit: the credit's index gradients (per radian) become
/// the sample's gradient in index units (per bin: times `2π/N` for phases, `2π/(M−1)` for
/// magnitudes), added to what the read-out gradient left (the encodings').
pub fn local_gradient(
    credit: Res<Credit>,
    mut grad: ResMut<crate::sim::resources::SampleGradient>,
    topology: Res<crate::sim::resources::Topology>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    let dim = settings.dim;
    let cells = topology.entities.len() * dim;
    let per_bin_phase = std::f32::consts::TAU / settings.phase_bins as f32;
    let per_bin_magnitude = std::f32::consts::TAU / (settings.magnitude_bins - 1) as f32;
    if grad.values.len() < 2 * cells {
        return;
    }
    for (i, &k) in credit.nodes.iter().enumerate() {
        for d in 0..dim {
            let at = k as usize * dim + d;
            grad.values[at] += credit.g_phase[i * dim + d] * per_bin_phase;
            grad.values[cells + at] += credit.g_magnitude[i * dim + d] * per_bin_magnitude;
        }
    }
}

/// Computes the credit of every active node of a covered sample into [`Credit`]: outputs (in
/// slot order) get output credit, every other active node the hidden credit. An uncovered
/// sample gets none.
pub fn assign_credit(
    active: Query<(&Node, &Activation, Option<&OutputNode>)>,
    readout: Res<crate::sim::resources::Readout>,
    sample: Res<CurrentSample>,
    encodings: Res<Encodings>,
    training: Res<TrainingSettings>,
    mut credit: ResMut<Credit>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let (settings, tables) = (&ctx.settings, &ctx.tables.0);
    let dim = settings.dim;
    let c = &mut *credit;
    c.nodes.clear();
    c.outputs = 0;
    c.act_phase.clear();
    c.act_magnitude.clear();
    c.signals.clear();
    if readout.prediction.is_none() {
        c.g.clear();
        c.g_phase.clear();
        c.g_magnitude.clear();
        return;
    }
    let hidden_on = training.hidden_credit_weight != 0.0;
    let mut outputs: Vec<(u32, u32, &Activation)> = Vec::new();
    let mut others: Vec<(u32, &Activation)> = Vec::new();
    for (node, a, output) in &active {
        match output {
            Some(o) => outputs.push((o.slot, node.index, a)),
            None if hidden_on => others.push((node.index, a)),
            None => {}
        }
    }
    outputs.sort_unstable_by_key(|&(slot, ..)| slot);
    others.sort_unstable_by_key(|&(k, _)| k);
    c.outputs = outputs.len();
    let ordered = outputs
        .iter()
        .map(|&(_, k, a)| (k, a))
        .chain(others.iter().copied());
    let mut signal = [0.0f32; MAX_DIM];
    for (k, a) in ordered {
        c.nodes.push(k);
        c.act_phase.extend_from_slice(&a.phase[..dim]);
        c.act_magnitude.extend_from_slice(&a.magnitude[..dim]);
        tables.signal_vec(&a.phase[..dim], &a.magnitude[..dim], &mut signal[..dim]);
        c.signals.extend_from_slice(&signal[..dim]);
    }
    let total = c.nodes.len() * dim;
    let split = c.outputs * dim;
    c.g.clear();
    c.g.resize(total, 0.0);
    c.delta.resize(encodings.0.classes, 0.0);
    let output_signals: Vec<&[f32]> = c.signals[..split].chunks_exact(dim).collect();
    if settings.readout == Readout::Grouped {
        // The exact gradient of the grouped read-out (SPEC 11) with respect to the outputs'
        // signals; the encodings' gradient is not used (they are fixed here).
        let slots: Vec<u32> = outputs.iter().map(|&(slot, ..)| slot).collect();
        loss_gradient(
            &readout.logits,
            sample.label as usize,
            settings.temperature,
            settings.label_smoothing,
            &mut c.delta,
        );
        let mut g_encodings = vec![0.0f32; encodings.0.signals.len()];
        logits_backward(
            Readout::Grouped,
            &c.signals[..split],
            &slots,
            &encodings.0.signals,
            &c.delta,
            &mut c.g[..split],
            &mut g_encodings,
        );
    } else {
        output_credit(
            &output_signals,
            &encodings.0,
            &readout.logits,
            sample.label as usize,
            settings.temperature,
            settings.label_smoothing,
            &mut c.delta,
            &mut c.g[..split],
        );
    }
    if hidden_on {
        hidden_credit(
            &c.signals[split..],
            dim,
            encodings.0.signal(sample.label as usize),
            training.hidden_credit_weight,
            &mut c.g[split..],
        );
    }
    c.g_phase.clear();
    c.g_phase.resize(total, 0.0);
    c.g_magnitude.clear();
    c.g_magnitude.resize(total, 0.0);
    for i in 0..c.nodes.len() {
        let r = i * dim..(i + 1) * dim;
        chain_to_indices(
            tables,
            &c.act_phase[r.clone()],
            &c.act_magnitude[r.clone()],
            &c.g[r.clone()],
            training.gradient,
            &mut c.g_phase[r.clone()],
            &mut c.g_magnitude[r],
        );
    }
}
