//! Counting what is active, for the termination check of SPEC 4 step 1.

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::sim::components::{Activation, OutputNode};
use crate::sim::resources::LoopState;

/// Counts active nodes and active outputs into [`LoopState`].
pub fn count_active(
    active: Query<Has<OutputNode>, With<Activation>>,
    mut state: ResMut<LoopState>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let mut all = 0;
    let mut outputs = 0;
    for is_output in &active {
        all += 1;
        outputs += is_output as u32;
    }
    state.active_now = all;
    state.outputs_active = outputs;
}
