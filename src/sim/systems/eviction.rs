//! Eviction stage: τ adaptation, strength decay and pruning with output protection
//! (SPEC 4 steps 5-6); the rules are [`crate::model::eviction`].

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::model::eviction::{adapt_tau, decay_and_prune};
use crate::sim::components::{Activation, OutputNode};
use crate::sim::resources::LoopState;

/// Run condition: τ adaptation, decay and pruning run (always under `carry: Accumulate`; under
/// `Replace` only with `forward.prune`).
pub fn evicts(settings: Res<crate::sim::resources::ForwardSettings>) -> bool {
    settings.evict
}

/// Updates τ from the active count after arrivals.
pub fn adapt_threshold(mut state: ResMut<LoopState>, ctx: Ctx) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    state.tau = adapt_tau(
        state.tau,
        state.active_after_arrivals,
        settings.target_active,
        settings.total_nodes,
        &settings.tau,
    );
}

/// Decays every active node's strength and deactivates those below τ, except outputs.
pub fn evict(
    mut active: Query<(Entity, &mut Activation, Has<OutputNode>)>,
    mut commands: Commands,
    state: Res<LoopState>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let decay = ctx.settings.decay;
    for (entity, mut a, is_output) in &mut active {
        let (strength, pruned) = decay_and_prune(a.strength, decay, state.tau, is_output);
        a.strength = strength;
        if pruned {
            commands.entity(entity).remove::<Activation>();
        }
    }
}
