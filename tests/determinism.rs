//! Determinism contract: the same scene and seed give bit-identical outcomes with either
//! executor and any thread count; every schedule builds with ambiguity detection at error level.

use bevy_ecs::prelude::*;
use neurograph::run::Runner;
use neurograph::scene::{self, ExecutorKind, Scene, Split};
use neurograph::sim::SampleOutcome;
use neurograph::sim::schedule::new_schedule;

fn scene(executor: ExecutorKind, threads: u32) -> Scene {
    let mut s = scene::parse(include_str!("../scenes/quickstart.ron"), "quickstart.ron").unwrap();
    s.data.source = scene::DataSource::Synthetic {
        train: 10,
        test: 40,
    };
    // The production dynamics, so radiation and several timesteps run in parallel parts.
    s.architecture.output_nodes = 10;
    s.forward.min_timesteps = None;
    s.radiation.enabled = true;
    s.schedule.executor = executor;
    s.schedule.threads = threads;
    s
}

fn outcomes(executor: ExecutorKind, threads: u32) -> Vec<(SampleOutcome, Vec<u32>)> {
    let s = scene(executor, threads);
    let mut runner = Runner::new(&s, true).unwrap();
    (0..40)
        .map(|i| {
            let o = runner.run_sample(Split::Test, i);
            let active: Vec<u32> = runner
                .sim_mut()
                .activations()
                .iter()
                .map(|(k, _)| *k)
                .collect();
            (o, active)
        })
        .collect()
}

#[test]
fn identical_across_executors_and_threads() {
    let baseline = outcomes(ExecutorKind::Single, 1);
    assert!(
        baseline.iter().any(|(o, _)| o.prediction.is_some()),
        "something was covered"
    );
    assert!(
        baseline.iter().any(|(o, _)| o.timesteps > 1),
        "passes ran several timesteps"
    );
    for (executor, threads) in [
        (ExecutorKind::Single, 2),
        (ExecutorKind::Multi, 1),
        (ExecutorKind::Multi, 2),
    ] {
        let other = outcomes(executor, threads);
        for (i, (a, b)) in baseline.iter().zip(&other).enumerate() {
            assert_eq!(a.0, b.0, "sample {i}, {executor:?} x {threads}");
            assert_eq!(a.0.loss.map(f32::to_bits), b.0.loss.map(f32::to_bits));
            assert_eq!(a.1, b.1, "final active set, sample {i}");
        }
    }
}

#[derive(Resource, Default)]
struct Counter(u32);

fn bump_a(mut c: ResMut<Counter>) {
    c.0 += 1;
}
fn bump_b(mut c: ResMut<Counter>) {
    c.0 *= 2;
}

#[test]
fn ambiguous_schedules_are_rejected() {
    // Negative control: the settings our schedules use turn an unordered conflict into an error.
    let mut world = World::new();
    world.init_resource::<Counter>();
    let mut s = new_schedule(neurograph::sim::schedule::Timestep, ExecutorKind::Single);
    s.add_systems((bump_a, bump_b));
    assert!(s.initialize(&mut world).is_err());
    // And the real schedules build (Simulation::new initialises all three and fails otherwise).
    for executor in [ExecutorKind::Single, ExecutorKind::Multi] {
        neurograph::sim::Simulation::new(&scene(executor, 1)).unwrap();
    }
}

#[test]
fn evaluation_is_identical_for_any_replica_count() {
    let evaluate = |replicas: u32, threads: u32| {
        let mut s = scene(ExecutorKind::Single, threads);
        s.schedule.eval_replicas = replicas;
        let mut runner = Runner::new(&s, true).unwrap();
        let mut e = runner.evaluate(Split::Test, None).unwrap();
        e.seconds = 0.0;
        e.samples_per_second = 0.0;
        e
    };
    let one = evaluate(1, 1);
    assert_eq!(one.samples, 40);
    for (replicas, threads) in [(2, 1), (3, 2)] {
        let other = evaluate(replicas, threads);
        assert_eq!(one, other, "{replicas} replicas x {threads} threads");
        assert_eq!(
            one.mean_loss.map(f64::to_bits),
            other.mean_loss.map(f64::to_bits)
        );
    }
}

#[test]
fn training_is_identical_across_executors_threads_and_granularity() {
    let train = |executor: ExecutorKind, threads: u32, granularity: scene::Granularity| {
        let mut s = scene(executor, threads);
        s.schedule.granularity = granularity;
        // Odd batch sizes too: how sources are cut between threads must not matter.
        s.schedule.batch_size = 1 + threads * 3;
        s.data.source = scene::DataSource::Synthetic {
            train: 30,
            test: 10,
        };
        s.script = vec![scene::Step::Train {
            epochs: 1,
            samples_per_epoch: None,
            evaluate_every: None,
        }];
        let mut runner = Runner::new(&s, true).unwrap();
        let report = runner.run_script().unwrap();
        let mut m = report.training[0].clone();
        m.seconds = 0.0;
        m.samples_per_second = 0.0;
        let params = runner.sim_mut().parameters();
        let state = runner.state_bytes();
        let predictions: Vec<_> = (0..10)
            .map(|i| runner.run_sample(Split::Test, i).prediction)
            .collect();
        (m, params, state, predictions)
    };
    let baseline = train(ExecutorKind::Single, 1, scene::Granularity::Stage);
    assert!(
        baseline.0.parameters_changed > 0,
        "training changed parameters"
    );
    for executor in [ExecutorKind::Single, ExecutorKind::Multi] {
        for threads in [1, 2, 8] {
            for granularity in [
                scene::Granularity::Stage,
                scene::Granularity::Split { parts: threads },
            ] {
                let what = format!("{executor:?} x {threads} x {granularity:?}");
                let other = train(executor, threads, granularity);
                assert_eq!(baseline.0, other.0, "metrics, {what}");
                assert_eq!(baseline.1, other.1, "parameters, {what}");
                assert!(baseline.2 == other.2, "persistent state bytes, {what}");
                assert_eq!(baseline.3, other.3, "predictions, {what}");
            }
        }
    }
}

/// SPEC 11 training (phasor arrivals, `Backprop`, Adam on float shadows, batches of 8,
/// learned encodings, radiation on) is bit-identical over executor × threads {1, 2, 8} × batch
/// worlds {1, 2}: parameters are fixed within a batch and its gradients are summed in sample
/// order, whichever world ran each sample.
#[test]
fn backprop_batches_are_identical_across_executors_threads_and_batch_worlds() {
    let train = |executor: ExecutorKind, threads: u32, worlds: u32| {
        let mut s = scene(executor, threads);
        s.forward.combine = scene::Combine::Phasor {
            weight: scene::PhasorWeight::Strength,
        };
        s.forward.carry = scene::Carry::Replace;
        s.forward.min_timesteps = Some(6);
        s.loss.readout = scene::ReadoutSetting::Grouped;
        s.loss.temperature = 0.1;
        s.architecture.output_nodes = 60;
        s.training.credit = scene::CreditSetting::Backprop;
        s.training.optimizer = scene::OptimizerSetting::Adam {
            lr: 3.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            decay: 0.85,
        };
        s.training.batch_size = 8;
        s.training.learn_encodings = true;
        s.schedule.train_worlds = worlds;
        s.data.source = scene::DataSource::Synthetic {
            train: 20,
            test: 10,
        };
        s.script = vec![scene::Step::Train {
            epochs: 2,
            samples_per_epoch: None,
            evaluate_every: None,
        }];
        let mut runner = Runner::new(&s, true).unwrap();
        let report = runner.run_script().unwrap();
        let metrics: Vec<_> = report
            .training
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.seconds = 0.0;
                m.samples_per_second = 0.0;
                m
            })
            .collect();
        (metrics, runner.sim_mut().parameters(), runner.state_bytes())
    };
    let baseline = train(ExecutorKind::Single, 1, 1);
    assert!(
        baseline.0.iter().all(|m| m.parameters_changed > 0),
        "every epoch changed parameters"
    );
    for executor in [ExecutorKind::Single, ExecutorKind::Multi] {
        for threads in [1, 2, 8] {
            for worlds in [1, 2] {
                let what = format!("{executor:?} x {threads} threads x {worlds} worlds");
                let other = train(executor, threads, worlds);
                assert_eq!(baseline.0, other.0, "metrics, {what}");
                assert_eq!(baseline.1, other.1, "parameters, {what}");
                assert!(baseline.2 == other.2, "persistent state bytes, {what}");
            }
        }
    }
}
