//! Schedules and stage sets.
//!
//! Four schedules: [`ParameterSync`] (the parameter mirrors and version, run before every sample
//! and whenever state is saved or loaded), [`SampleStart`] (reset, inject), [`Timestep`]
//! (radiation -> forward -> eviction -> termination, run once per timestep) and [`SampleEnd`]
//! (readout, then credit and update when training).
//! Every stage is a [`Stage`] set. All schedules are built with ambiguity detection at error
//! level, so an unordered pair of conflicting systems is a build error, never a silent race.

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{
    LogLevel, MultiThreadedExecutor, ScheduleBuildSettings, ScheduleLabel, SingleThreadedExecutor,
};

use crate::scene::{ExecutorKind, Granularity};
use crate::sim::systems::{
    credit, eviction, forward, inject, radiation, readout, termination, update,
};

/// Label of the schedule that mirrors changed parameters (one system instance, so every change
/// is seen exactly once).
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParameterSync;

/// Label of the schedule run once at the start of each sample.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SampleStart;

/// Label of the schedule run once per timestep.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timestep;

/// Label of the schedule run once after the timestep loop.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SampleEnd;

/// The stages of the pipeline, as system sets.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Parameter sync, reset and injection.
    Inject,
    /// Active-set snapshot and top-K radiation.
    Radiation,
    /// Phase cells and arrivals.
    Forward,
    /// τ adaptation, decay, pruning.
    Eviction,
    /// Counting active nodes and outputs.
    Termination,
    /// Output signals, logits, loss, prediction.
    Readout,
    /// Output and hidden credit, chained to index gradients (training only).
    Credit,
    /// Discrete parameter updates (training only).
    Update,
}

impl Stage {
    /// All stages, in pipeline order.
    pub const ALL: [Stage; 8] = [
        Stage::Inject,
        Stage::Radiation,
        Stage::Forward,
        Stage::Eviction,
        Stage::Termination,
        Stage::Readout,
        Stage::Credit,
        Stage::Update,
    ];

    /// Lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Inject => "inject",
            Stage::Radiation => "radiation",
            Stage::Forward => "forward",
            Stage::Eviction => "eviction",
            Stage::Termination => "termination",
            Stage::Readout => "readout",
            Stage::Credit => "credit",
            Stage::Update => "update",
        }
    }
}

/// An empty schedule with ambiguity detection at error level and the chosen executor.
pub fn new_schedule(label: impl ScheduleLabel, executor: ExecutorKind) -> Schedule {
    let mut schedule = Schedule::new(label);
    schedule.set_build_settings(ScheduleBuildSettings {
        ambiguity_detection: LogLevel::Error,
        ..Default::default()
    });
    match executor {
        ExecutorKind::Single => schedule.set_executor(SingleThreadedExecutor::new()),
        ExecutorKind::Multi => schedule.set_executor(MultiThreadedExecutor::new()),
    };
    schedule
}

/// Builds the parameter-sync schedule.
pub fn parameter_sync(executor: ExecutorKind) -> Schedule {
    let mut s = new_schedule(ParameterSync, executor);
    s.add_systems(inject::sync_params.in_set(Stage::Inject));
    s
}

/// Builds the sample-start schedule.
pub fn sample_start(executor: ExecutorKind) -> Schedule {
    let mut s = new_schedule(SampleStart, executor);
    s.add_systems(
        (
            inject::reset_sample,
            inject::inject,
            termination::count_active.in_set(Stage::Termination),
        )
            .chain()
            .in_set(Stage::Inject),
    );
    s
}

/// Builds the per-timestep schedule. With `Granularity::Split { parts }` radiation is `parts`
/// systems over disjoint runs of sources plus a merge, instead of one system.
pub fn timestep(executor: ExecutorKind, granularity: Granularity) -> Schedule {
    let mut s = new_schedule(Timestep, executor);
    s.configure_sets(
        (
            Stage::Radiation,
            Stage::Forward,
            Stage::Eviction,
            Stage::Termination,
        )
            .chain(),
    );
    match granularity {
        Granularity::Stage => {
            s.add_systems(
                (radiation::gather_active, radiation::radiate)
                    .chain()
                    .in_set(Stage::Radiation),
            );
        }
        Granularity::Split { parts } => {
            let parts = parts.max(1) as usize;
            s.add_systems(
                (radiation::gather_active, radiation::lookup_radiation)
                    .chain()
                    .in_set(Stage::Radiation),
            );
            for part in 0..parts {
                s.add_systems(
                    radiation::radiate_part(part, parts)
                        .in_set(Stage::Radiation)
                        .after(radiation::lookup_radiation)
                        .before(radiation::merge_radiation),
                );
            }
            s.add_systems(radiation::merge_radiation.in_set(Stage::Radiation));
        }
    }
    s.add_systems((
        (
            forward::emit,
            forward::accumulate_arrivals,
            forward::apply_arrivals,
        )
            .chain()
            .in_set(Stage::Forward),
        (eviction::adapt_threshold, eviction::evict)
            .chain()
            .in_set(Stage::Eviction),
        termination::count_active.in_set(Stage::Termination),
    ));
    s
}

/// Builds the sample-end schedule: readout, then (training samples only) credit and update.
pub fn sample_end(executor: ExecutorKind) -> Schedule {
    let mut s = new_schedule(SampleEnd, executor);
    s.configure_sets((Stage::Readout, Stage::Credit, Stage::Update).chain());
    s.add_systems((
        readout::readout.in_set(Stage::Readout),
        credit::assign_credit
            .in_set(Stage::Credit)
            .run_if(credit::is_training),
        update::apply_updates
            .in_set(Stage::Update)
            .run_if(credit::is_training),
    ));
    s
}
