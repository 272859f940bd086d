//! Schedules and stage sets.
//!
//! Four schedules: [`ParameterSync`] (the parameter mirrors and version, run before every sample
//! and whenever state is saved or loaded), [`SampleStart`] (reset, inject, first count),
//! [`Timestep`] (radiation -> forward -> eviction -> termination, run once per timestep) and
//! [`SampleEnd`] (readout, then credit and update when training).
//! Every stage is a [`Stage`] set and every system is in exactly one ([`stage_clock`] checks it
//! and times each system under its stage). All schedules are built with ambiguity detection at
//! error level, so an unordered pair of conflicting systems is a build error, never a silent
//! race.

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SystemCondition;
use bevy_ecs::schedule::common_conditions::not;
use bevy_ecs::schedule::{
    LogLevel, MultiThreadedExecutor, ScheduleBuildSettings, ScheduleLabel, SingleThreadedExecutor,
};

use crate::scene::{ExecutorKind, Granularity};
use crate::sim::SimError;
use crate::sim::describe;
use crate::sim::resources::StageClock;
use crate::sim::systems::{
    backward, credit, eviction, forward, inject, radiation, readout, termination, update,
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

/// Label of the schedule that runs the settled pass instead of the timestep loop.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Settle;

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
    /// The reverse pass through the recorded arrivals (training with `Backprop` only).
    Backward,
    /// Output and hidden credit, chained to index gradients (training only).
    Credit,
    /// Discrete parameter updates (training only).
    Update,
}

impl Stage {
    /// All stages, in pipeline order.
    pub const ALL: [Stage; 9] = [
        Stage::Inject,
        Stage::Radiation,
        Stage::Forward,
        Stage::Eviction,
        Stage::Termination,
        Stage::Readout,
        Stage::Backward,
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
            Stage::Backward => "backward",
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

/// Builds the sample-start schedule: reset and inject, then the first count of what is active.
pub fn sample_start(executor: ExecutorKind) -> Schedule {
    let mut s = new_schedule(SampleStart, executor);
    s.configure_sets(Stage::Termination.after(Stage::Inject));
    s.add_systems((
        (inject::reset_sample, inject::inject)
            .chain()
            .in_set(Stage::Inject),
        termination::count_active.in_set(Stage::Termination),
    ));
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
            backward::record_step.run_if(backward::records),
        )
            .chain()
            .in_set(Stage::Forward),
        (eviction::adapt_threshold, eviction::evict)
            .chain()
            .in_set(Stage::Eviction)
            .run_if(eviction::evicts),
        termination::count_active.in_set(Stage::Termination),
    ));
    s
}

/// Builds the settled-pass schedule: the whole forward pass in topological order (run instead
/// of the timestep loop when [`crate::sim::resources::ForwardSettings::settled`]).
pub fn settle(executor: ExecutorKind) -> Schedule {
    let mut s = new_schedule(Settle, executor);
    s.add_systems(forward::settle.in_set(Stage::Forward));
    s
}

/// Builds the sample-end schedule: readout, then (training samples only) the backward pass
/// (`Backprop`), the local credit (`Local`) and the SPEC 7 update (unless the sample is on the
/// batch path, whose gradient the runner applies per batch).
pub fn sample_end(executor: ExecutorKind) -> Schedule {
    let mut s = new_schedule(SampleEnd, executor);
    s.configure_sets(
        (
            Stage::Readout,
            Stage::Backward,
            Stage::Credit,
            Stage::Update,
        )
            .chain(),
    );
    s.add_systems((
        readout::readout.in_set(Stage::Readout),
        (
            backward::readout_gradient.run_if(backward::needs_readout_gradient),
            backward::through_arrivals.run_if(backward::records),
        )
            .chain()
            .in_set(Stage::Backward),
        (
            credit::assign_credit.run_if(credit::is_local),
            credit::local_gradient.run_if(credit::is_local.and_then(backward::batched)),
        )
            .chain()
            .in_set(Stage::Credit),
        update::apply_updates
            .in_set(Stage::Update)
            .run_if(credit::is_training.and_then(not(backward::batched))),
    ));
    s
}

/// A [`StageClock`] with every system of the (initialised) `schedules` registered under its
/// short name ([`describe::short_name`], e.g. `forward::emit`) and the one [`Stage`] set that
/// holds it, found by walking each schedule's graph.
///
/// # Errors
/// [`SimError::Schedule`] naming a system that is in no stage, in several, or in different
/// stages in different schedules.
pub fn stage_clock(schedules: &[(&'static str, &Schedule)]) -> Result<StageClock, SimError> {
    let mut clock = StageClock::default();
    for &(schedule, s) in schedules {
        let fail = |message: String| SimError::Schedule { schedule, message };
        for (name, stages) in describe::system_stages(s) {
            let label = describe::short_name(&name);
            let &[stage] = stages.as_slice() else {
                return Err(fail(format!(
                    "system {label} is in {} stage sets ({stages:?}); each system must be in \
                     exactly one, so its time is counted once",
                    stages.len()
                )));
            };
            clock.register(&name, &label, stage).map_err(|other| {
                fail(format!(
                    "system {label} is in Stage::{stage:?} here but in Stage::{other:?} in \
                     another schedule; each system must be in exactly one stage"
                ))
            })?;
        }
    }
    Ok(clock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Simulation;

    /// The labels the systems once typed by hand, with their stages: timing reports keep them.
    const LABELS: [(&str, Stage); 22] = [
        ("inject::sync_params", Stage::Inject),
        ("inject::reset_sample", Stage::Inject),
        ("inject::inject", Stage::Inject),
        ("radiation::gather_active", Stage::Radiation),
        ("radiation::radiate", Stage::Radiation),
        ("radiation::lookup_radiation", Stage::Radiation),
        ("radiation::radiate_part", Stage::Radiation),
        ("radiation::merge_radiation", Stage::Radiation),
        ("forward::emit", Stage::Forward),
        ("forward::accumulate_arrivals", Stage::Forward),
        ("forward::apply_arrivals", Stage::Forward),
        ("forward::settle", Stage::Forward),
        ("backward::record_step", Stage::Forward),
        ("backward::readout_gradient", Stage::Backward),
        ("backward::through_arrivals", Stage::Backward),
        ("credit::local_gradient", Stage::Credit),
        ("eviction::adapt_threshold", Stage::Eviction),
        ("eviction::evict", Stage::Eviction),
        ("termination::count_active", Stage::Termination),
        ("readout::readout", Stage::Readout),
        ("credit::assign_credit", Stage::Credit),
        ("update::apply_updates", Stage::Update),
    ];

    fn sim_scene(granularity: Granularity) -> crate::scene::Scene {
        let mut scene = crate::scene::parse(
            include_str!("../../scenes/quickstart.ron"),
            "quickstart.ron",
        )
        .unwrap();
        scene.schedule.granularity = granularity;
        scene.radiation.enabled = true;
        scene
    }

    fn simulation(granularity: Granularity) -> Simulation {
        Simulation::new(&sim_scene(granularity)).unwrap()
    }

    #[test]
    fn every_system_is_registered_in_exactly_one_stage_under_its_old_label() {
        let mut seen = Vec::new();
        for granularity in [Granularity::Stage, Granularity::Split { parts: 2 }] {
            let sim = simulation(granularity);
            let clock = sim.world().resource::<StageClock>();
            for (schedule, s) in sim.schedules() {
                let systems = describe::system_stages(s);
                assert!(!systems.is_empty(), "{schedule}");
                for (name, stages) in systems {
                    let (label, stage) = clock
                        .registered(&name)
                        .unwrap_or_else(|| panic!("{schedule}: {name} is not registered"));
                    assert_eq!(stages, [stage], "{schedule}: {label}");
                    assert!(
                        LABELS.contains(&(label, stage)),
                        "{schedule}: {label} in {stage:?} is not an old label"
                    );
                    seen.push(label.to_string());
                }
            }
        }
        for (label, _) in LABELS {
            assert!(seen.iter().any(|s| s == label), "{label} never seen");
        }
    }

    #[test]
    fn a_training_sample_is_timed_under_the_labels() {
        let mut sim = simulation(Granularity::Split { parts: 2 });
        let len = sim.encoding_len();
        let (phase, magnitude) = (vec![3u16; len], vec![5u16; len]);
        // A SPEC 7 sample (local credit, the sign rule), the timestep loop with radiation.
        let mut scene = sim_scene(Granularity::Split { parts: 2 });
        scene.training = Default::default();
        scene.forward.combine = crate::scene::Combine::Sum;
        scene.forward.carry = crate::scene::Carry::Accumulate;
        sim.apply_settings(&scene);
        sim.train_encoded(&phase, &magnitude, 1);
        // The SPEC 11 systems run only with `Backprop` or on the batch path: a second sample
        // with both (`Local` credit on the batch path runs `credit::local_gradient`).
        scene.training.credit = crate::scene::CreditSetting::Backprop;
        sim.apply_settings(&scene);
        sim.train_encoded(&phase, &magnitude, 1);
        scene.training.credit = crate::scene::CreditSetting::Local;
        scene.training.batch_size = 2;
        sim.apply_settings(&scene);
        sim.train_encoded(&phase, &magnitude, 1);
        // And one as the settled pass (`Phasor`, `Replace`, no radiation, 6 >= depth 5).
        scene.training.credit = crate::scene::CreditSetting::Backprop;
        scene.radiation.enabled = false;
        scene.forward.combine = crate::scene::Combine::Phasor {
            weight: crate::scene::PhasorWeight::Strength,
        };
        scene.forward.carry = crate::scene::Carry::Replace;
        scene.forward.min_timesteps = Some(6);
        sim.apply_settings(&scene);
        assert!(sim.settings().settled);
        sim.train_encoded(&phase, &magnitude, 1);
        let timed = sim.system_seconds();
        for (label, stage) in LABELS {
            if label == "radiation::radiate" {
                continue; // Split granularity runs lookup, parts and merge instead.
            }
            assert!(
                timed.iter().any(|(l, s, _)| l == label && *s == stage),
                "{label} not timed: {timed:?}"
            );
        }
        sim.reset_clock();
        assert!(sim.system_seconds().is_empty());
        sim.set_timing(false);
        sim.run_encoded(&phase, &magnitude, 1);
        assert!(sim.system_seconds().is_empty());
    }

    #[test]
    fn a_system_in_two_stages_is_refused() {
        let mut world = World::new();
        let mut s = new_schedule(SampleStart, ExecutorKind::Single);
        s.add_systems(
            termination::count_active
                .in_set(Stage::Termination)
                .in_set(Stage::Inject),
        );
        s.initialize(&mut world).unwrap();
        let Err(SimError::Schedule { message, .. }) = stage_clock(&[("SampleStart", &s)]) else {
            panic!("accepted a system in two stages");
        };
        assert!(message.contains("termination::count_active"), "{message}");
    }
}
