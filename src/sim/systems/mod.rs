//! The systems: thin adapters that query components, call `model/` or `radiation/`, and write
//! results back. One file per stage, in pipeline order.
//!
//! Every system takes a [`Ctx`]: the settings and tables nearly all of them read, and its own
//! timer.

use bevy_ecs::prelude::*;
use bevy_ecs::system::{SystemName, SystemParam};

use crate::sim::resources::{ForwardSettings, LookupTables, StageClock, StageTimer};

pub mod backward;
pub mod credit;
pub mod eviction;
pub mod forward;
pub mod inject;
pub mod radiation;
pub mod readout;
pub mod termination;
pub mod update;

/// What nearly every system reads: the forward settings, the lookup tables, and the stage
/// clock with the system's own name, so [`Ctx::time`] needs no hand-typed label.
#[derive(SystemParam)]
pub struct Ctx<'w> {
    /// Settings of the forward pass.
    pub settings: Res<'w, ForwardSettings>,
    /// The lookup tables.
    pub tables: Res<'w, LookupTables>,
    clock: Res<'w, StageClock>,
    name: SystemName,
}

impl Ctx<'_> {
    /// Starts timing this system under the label and stage registered for it
    /// ([`crate::sim::schedule::stage_clock`]); the time is added when the guard drops.
    pub fn time(&self) -> StageTimer<'_> {
        self.clock.time_system(self.name.as_str())
    }
}
