//! Start of a sample: keep parameter mirrors current, clear the previous sample's state, inject
//! the input encoding.

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::scene::Carry;
use crate::sim::components::{Activation, IndexVec, InputNode, Magnitude, Node, Phase, Signal};
use crate::sim::resources::{CurrentSample, LoopState, NodeParams, PhasorCarry, RadiationCache};

/// Nodes whose phase or magnitude parameters changed since the system last ran.
type ParamsChanged = Or<(Changed<Phase>, Changed<Magnitude>)>;

/// Mirrors changed `Phase`/`Magnitude` components into the dense parameter arrays and the
/// phasor matrix, and recomputes their `Signal` (bevy change detection: only changed nodes).
/// The one place the parameter version is bumped: once per run that saw a phase row change.
///
/// It is the only system of the `ParameterSync` schedule, run before every sample and
/// whenever state is saved or loaded, so one system instance sees every change exactly once.
pub fn sync_params(
    mut changed: Query<(&Node, &Phase, &Magnitude, &mut Signal), ParamsChanged>,
    mut params: ResMut<NodeParams>,
    mut cache: ResMut<RadiationCache>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let (dim, tables) = (ctx.settings.dim, &ctx.tables.0);
    let mut phases_changed = false;
    for (node, phase, magnitude, mut signal) in &mut changed {
        let (p, m) = (&phase.0[..dim], &magnitude.0[..dim]);
        phases_changed |= params.write_node(tables, node.index as usize, p, m);
        tables.signal_vec(p, m, &mut signal.0[..dim]);
    }
    if phases_changed {
        params.phasors.refresh();
        cache.version += 1;
    }
}

/// Removes every activation left by the previous sample and resets τ and the loop counters:
/// nothing leaks between samples.
pub fn reset_sample(
    active: Query<Entity, With<Activation>>,
    mut commands: Commands,
    mut state: ResMut<LoopState>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    for entity in &active {
        commands.entity(entity).remove::<Activation>();
    }
    *state = LoopState {
        tau: ctx.settings.min_strength,
        ..LoopState::default()
    };
}

/// Activates every input node with its encoded (φ, μ) and σ = 1.0 (parameters not added):
/// input slot k takes entry k of the encoding (`[slot][dim]`).
///
/// With `combine: Phasor` and `carry: Accumulate` each input's carried sums are set to the
/// sums that stand for its activation ([`crate::model::phasor::from_activation`]), so arrivals
/// add to it as they add to any active node.
pub fn inject(
    sample: Res<CurrentSample>,
    inputs: Query<(&InputNode, Entity)>,
    mut carry: ResMut<PhasorCarry>,
    mut commands: Commands,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let dim = ctx.settings.dim;
    let carried = ctx.settings.phasor.is_some() && ctx.settings.carry == Carry::Accumulate;
    let encoded = sample.phase.len() / dim;
    for (input, entity) in &inputs {
        let k = input.slot as usize;
        if k >= encoded {
            continue;
        }
        let mut phase: IndexVec = Default::default();
        let mut magnitude: IndexVec = Default::default();
        phase[..dim].copy_from_slice(&sample.phase[k * dim..(k + 1) * dim]);
        magnitude[..dim].copy_from_slice(&sample.magnitude[k * dim..(k + 1) * dim]);
        if carried {
            for d in 0..dim {
                carry.0[k * dim + d] =
                    crate::model::phasor::from_activation(&ctx.tables.0, phase[d], magnitude[d]);
            }
        }
        commands.entity(entity).insert(Activation {
            phase,
            magnitude,
            strength: 1.0,
        });
    }
}
