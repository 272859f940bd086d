//! Discrete updates (SPEC 7): the credited index gradients become sign steps on each node's
//! `Phase` and `Magnitude`, through its `Accumulator`, once per training sample (or once per
//! `gradient_accumulation.steps` samples). Only nodes whose indices really change are marked
//! changed, so the parameter-sync system and the parameter version see exactly the changes.

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::model::update;
use crate::scene::CreditSetting;
use crate::sim::components::{Accumulator, Magnitude, Phase};
use crate::sim::resources::{
    Credit, ForwardSettings, PendingGradients, SampleGradient, Topology, TrainingSettings,
    UpdateStats,
};

/// A per-bin node gradient (`[node][dim]` phases, then magnitudes) as SPEC 7 credit in
/// per-radian units (divided by `2π/N`, resp. `2π/(M−1)`), for every node with a nonzero entry.
pub fn per_radian(values: &[f32], nodes: usize, settings: &ForwardSettings) -> Credit {
    let dim = settings.dim;
    let cells = nodes * dim;
    let mut credit = Credit::default();
    if values.len() < 2 * cells {
        return credit;
    }
    let phase_scale = settings.phase_bins as f32 / std::f32::consts::TAU;
    let magnitude_scale = (settings.magnitude_bins - 1) as f32 / std::f32::consts::TAU;
    let (phase, magnitude) = (&values[..cells], &values[cells..2 * cells]);
    for k in 0..nodes {
        let r = k * dim..(k + 1) * dim;
        if phase[r.clone()]
            .iter()
            .chain(&magnitude[r.clone()])
            .all(|&g| g == 0.0)
        {
            continue;
        }
        credit.nodes.push(k as u32);
        credit
            .g_phase
            .extend(phase[r.clone()].iter().map(|g| g * phase_scale));
        credit
            .g_magnitude
            .extend(magnitude[r].iter().map(|g| g * magnitude_scale));
    }
    credit
}

/// Applies the credit of the current sample (or, with gradient accumulation, the averaged
/// credit of the last `steps` samples) to the parameters. With `Backprop` the credit is the
/// sample's gradient (per bin), chained to the rule's per-radian units.
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters are its data access"
)]
pub fn apply_updates(
    mut params: Query<(&mut Phase, &mut Magnitude, &mut Accumulator)>,
    topology: Res<Topology>,
    credit: Res<Credit>,
    gradient: Res<SampleGradient>,
    training: Res<TrainingSettings>,
    mut pending: ResMut<PendingGradients>,
    mut stats: ResMut<UpdateStats>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let dim = ctx.settings.dim;
    let mut changed = 0u32;
    let frozen = |k: usize| training.freeze_hidden && topology.graph.roles.is_hidden(k as u32);
    let mut step = |k: usize, g_phase: &[f32], g_magnitude: &[f32]| {
        if frozen(k) {
            return;
        }
        let Ok((mut phase, mut magnitude, mut acc)) = params.get_mut(topology.entities[k]) else {
            return;
        };
        let (mut p, mut m) = (phase.0, magnitude.0);
        let acc = &mut *acc;
        let n = update::apply(
            &training.rule,
            &mut p[..dim],
            &mut m[..dim],
            &mut acc.phase[..dim],
            &mut acc.magnitude[..dim],
            g_phase,
            g_magnitude,
        );
        if p != phase.0 {
            phase.0 = p;
        }
        if m != magnitude.0 {
            magnitude.0 = m;
        }
        changed += n;
    };
    let backprop;
    let credit: &Credit = if training.credit == CreditSetting::Backprop {
        backprop = per_radian(&gradient.values, topology.entities.len(), &ctx.settings);
        &backprop
    } else {
        &credit
    };
    match &mut pending.0 {
        None => {
            for (i, &k) in credit.nodes.iter().enumerate() {
                let r = i * dim..(i + 1) * dim;
                step(
                    k as usize,
                    &credit.g_phase[r.clone()],
                    &credit.g_magnitude[r],
                );
            }
        }
        Some(accumulation) => {
            for (i, &k) in credit.nodes.iter().enumerate() {
                let r = i * dim..(i + 1) * dim;
                accumulation.add(
                    k as usize,
                    &credit.g_phase[r.clone()],
                    &credit.g_magnitude[r],
                );
            }
            if accumulation.finish_sample() {
                let nodes: Vec<usize> = accumulation.nodes().collect();
                for k in nodes {
                    let (g_phase, g_magnitude) = accumulation.take(k);
                    step(k, g_phase, g_magnitude);
                }
                accumulation.reset();
            }
        }
    }
    stats.last_dims_changed = changed;
    stats.last_changed = changed > 0;
}
