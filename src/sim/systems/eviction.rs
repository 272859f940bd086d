//! Eviction stage: τ adaptation, strength decay and pruning with output protection
//! (SPEC 4 steps 5-6).

use bevy_ecs::prelude::*;

use crate::scene::TauAdaptation;
use crate::sim::components::{Activation, OutputNode};
use crate::sim::resources::{ForwardSettings, LoopState, Stage, StageClock};

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
    let _t = clock.time_system(Stage::Eviction, "eviction::adapt_threshold");
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
    let _t = clock.time_system(Stage::Eviction, "eviction::evict");
    for (entity, mut a, is_output) in &mut active {
        a.strength *= settings.decay;
        if a.strength < state.tau && !is_output {
            commands.entity(entity).remove::<Activation>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// T = 100 wanted of 200 nodes; constants are the SPEC defaults.
    fn tau(t: f32, n: u32) -> f32 {
        adapt_tau(t, n, 100.0, 200, &TauAdaptation::default())
    }

    #[test]
    fn grows_when_over_target() {
        // n = 150 > T: τ *= 1 + 0.1 · 150/100 = 1.15.
        assert_eq!(tau(2.0, 150), 2.0 * (1.0 + 0.1 * 150.0 / 100.0));
    }

    #[test]
    fn shrinks_when_well_under_target() {
        // n = 69 < 0.7 · T = 70: τ *= 0.95.
        assert_eq!(tau(2.0, 69), 2.0 * 0.95);
    }

    #[test]
    fn holds_between_the_bands() {
        // 70 <= n <= 100: unchanged (n = 70 is not below 70, n = 100 is not above 100).
        assert_eq!(tau(2.0, 70), 2.0);
        assert_eq!(tau(2.0, 100), 2.0);
    }

    #[test]
    fn flood_guard_doubles_after_growth() {
        // n = 181 > 0.9 · 200: grows by 1 + 0.1 · 1.81, then doubles.
        assert_eq!(tau(1.0, 181), 1.0 * (1.0 + 0.1 * 181.0 / 100.0) * 2.0);
        // n = 180 is not above 180: growth only.
        assert_eq!(tau(1.0, 180), 1.0 + 0.1 * 180.0 / 100.0);
    }

    #[test]
    fn clamps_to_the_range() {
        assert_eq!(tau(4.9, 190), 5.0);
        assert_eq!(tau(0.51, 0), 0.5);
    }
}
