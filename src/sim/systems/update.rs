//! Discrete updates (SPEC 7): the credited index gradients become sign steps on each node's
//! `Phase` and `Magnitude`, through its `Accumulator`, once per training sample (or once per
//! `gradient_accumulation.steps` samples). Only nodes whose indices really change are marked
//! changed, so the parameter-sync system and the parameter version see exactly the changes.

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::model::update;
use crate::sim::components::{Accumulator, Magnitude, Phase};
use crate::sim::resources::{Credit, PendingGradients, Topology, TrainingSettings, UpdateStats};

/// Applies the credit of the current sample (or, with gradient accumulation, the averaged
/// credit of the last `steps` samples) to the parameters.
pub fn apply_updates(
    mut params: Query<(&mut Phase, &mut Magnitude, &mut Accumulator)>,
    topology: Res<Topology>,
    credit: Res<Credit>,
    training: Res<TrainingSettings>,
    mut pending: ResMut<PendingGradients>,
    mut stats: ResMut<UpdateStats>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let dim = ctx.settings.dim;
    let mut changed = 0u32;
    let mut step = |k: usize, g_phase: &[f32], g_magnitude: &[f32]| {
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
