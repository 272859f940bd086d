//! τ adaptation and pruning (SPEC 4 steps 5-6): how the threshold follows the active count,
//! and which active nodes a timestep's decay deactivates.
//!
//! The constants are the scene's own [`TauAdaptation`] (plain data, no ECS).

use crate::scene::TauAdaptation;

/// The τ adaptation rule of SPEC 4 step 5, for `n` active nodes after arrivals, target
/// `target` (T) and `total` nodes: grow when n > T, shrink when n < low_fraction·T, then the
/// flood guard when n > flood_fraction·total, then clamp to `[min, max]`.
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

/// SPEC 4 step 6 for one active node of strength σ: returns σ·`decay` and whether the node is
/// pruned, i.e. σ·decay < τ and it is not an output (outputs decay but are never pruned).
#[inline]
pub fn decay_and_prune(strength: f32, decay: f32, tau: f32, is_output: bool) -> (f32, bool) {
    let strength = strength * decay;
    (strength, strength < tau && !is_output)
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

    #[test]
    fn decay_then_prune_below_tau() {
        // σ 2, decay 0.6: 1.2, kept at τ 1.2 (not below), pruned at τ 1.25.
        assert_eq!(decay_and_prune(2.0, 0.6, 1.2, false), (2.0 * 0.6, false));
        assert_eq!(decay_and_prune(2.0, 0.6, 1.25, false), (2.0 * 0.6, true));
        // σ 1 at decay 0.6 falls to 0.6 < τ 1: pruned.
        assert_eq!(decay_and_prune(1.0, 0.6, 1.0, false), (0.6, true));
    }

    #[test]
    fn outputs_decay_but_are_never_pruned() {
        assert_eq!(decay_and_prune(1.0, 0.6, 1.0, true), (0.6, false));
        assert_eq!(decay_and_prune(0.01, 0.5, 5.0, true), (0.005, false));
    }
}
