//! Eviction stage: τ adaptation, strength decay and pruning with output protection
//! (SPEC 4 steps 5-6).

use bevy_ecs::prelude::*;

use crate::scene::TauAdaptation;
use crate::sim::components::{Activation, OutputNode};
use crate::sim::resources::{ForwardSettings, LoopState, StageClock, StageName};

/// The τ adaptation rule of SPEC 4 step 5, for `n` active nodes, target `target` and
/// `total` nodes.
pub fn adapt_tau(tau: f32, n: u32, target: f32, total: u32, c: &TauAdaptation) -> f32 {
    let n = n as f32;
    let mut tau = tau;
    if n > target {
        tau *= 1.0 + c.growth * n / target;
    } else if n < c.low_fraction * target {
        tau *= c.shrink;
    }
    if n > c.flood_fraction * total as f32 {
        tau *= c.flood_factor;
    }
    tau.clamp(c.min, c.max)
}

/// Updates τ from the active count after arrivals.
pub fn adapt_threshold(
    mut state: ResMut<LoopState>,
    settings: Res<ForwardSettings>,
    clock: Res<StageClock>,
) {
    let _t = clock.time(StageName::Eviction);
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
    settings: Res<ForwardSettings>,
    clock: Res<StageClock>,
) {
    let _t = clock.time(StageName::Eviction);
    for (entity, mut a, is_output) in &mut active {
        a.strength *= settings.decay;
        if a.strength < state.tau && !is_output {
            commands.entity(entity).remove::<Activation>();
        }
    }
}
