//! The radiation pattern cache inside the simulation: exact settings (q = 1, staleness 0) give
//! exactly the kernel's results, before and after parameter changes; approximate settings stay
//! deterministic across executors and thread counts; the scene refuses an approximate cache
//! with several evaluation worlds.

use neurograph::run::Runner;
use neurograph::scene::{self, ExecutorKind, Granularity, Scene, Split};
use neurograph::sim::SampleOutcome;

fn scene(cache: bool, quantization: u32, executor: ExecutorKind, threads: u32) -> Scene {
    let mut s = scene::parse(include_str!("../scenes/quickstart.ron"), "quickstart.ron").unwrap();
    s.data.source = scene::DataSource::Synthetic {
        train: 30,
        test: 12,
    };
    // Production dynamics: radiation on, several timesteps.
    s.architecture.output_nodes = 10;
    s.forward.min_timesteps = None;
    s.radiation.enabled = true;
    s.radiation.cache.enabled = cache;
    s.radiation.cache.quantization = quantization;
    // Large enough that entries outlive the samples that stored them.
    s.radiation.cache.capacity = 1_000_000;
    s.schedule.executor = executor;
    s.schedule.threads = threads;
    s.schedule.eval_replicas = 1;
    s
}

/// Outcome and final active set of test sample `i`.
fn sample(runner: &mut Runner, i: usize) -> (SampleOutcome, Vec<(u32, [u16; 2], u32)>) {
    let o = runner.run_sample(Split::Test, i);
    let active = runner
        .sim_mut()
        .activations()
        .iter()
        .map(|(k, a)| (*k, [a.phase[0], a.magnitude[0]], a.strength.to_bits()))
        .collect();
    (o, active)
}

fn assert_same_samples(plain: &mut Runner, cached: &mut Runner, what: &str) {
    for i in 0..12 {
        assert_eq!(sample(plain, i), sample(cached, i), "{what}: sample {i}");
    }
}

#[test]
fn exact_cache_equals_the_kernel_across_parameter_updates() {
    let mut plain = Runner::new(&scene(false, 1, ExecutorKind::Single, 1), true).unwrap();
    let mut cached = Runner::new(&scene(true, 1, ExecutorKind::Single, 1), true).unwrap();
    assert!(plain.pattern_counters().is_none());
    // Twice over the same samples: the second round is answered from the cache.
    assert_same_samples(&mut plain, &mut cached, "first round");
    let first = cached.pattern_counters().unwrap();
    assert_same_samples(&mut plain, &mut cached, "second round");
    let second = cached.pattern_counters().unwrap().since(&first);
    assert!(second.hits > 0, "repeated samples hit: {second:?}");
    assert_eq!(second.stale_misses, 0, "no parameter changed: {second:?}");

    // Training moves phase parameters after every sample; both runners train identically.
    let a = plain.train_epoch(Some(10));
    let b = cached.train_epoch(Some(10));
    assert_eq!(
        (a.loss, a.parameters_changed),
        (b.loss, b.parameters_changed)
    );
    assert!(a.parameters_changed > 0);
    assert_eq!(plain.sim_mut().parameters(), cached.sim_mut().parameters());
    assert!(b.pattern_cache.is_some(), "the cache is on");

    // After the updates, entries stored before them must not be served.
    let before = cached.pattern_counters().unwrap();
    assert_same_samples(&mut plain, &mut cached, "after training");
    let after = cached.pattern_counters().unwrap().since(&before);
    assert!(after.stale_misses > 0, "{after:?}");

    // A direct parameter change (not an update) is seen too.
    for runner in [&mut plain, &mut cached] {
        let (mut phase, magnitude) = runner.sim_mut().parameters();
        let dim = phase.len() / 400;
        for x in phase.iter_mut().step_by(dim * 7) {
            *x = (*x + 100) % 512;
        }
        runner.sim_mut().set_parameters(&phase, &magnitude);
    }
    let before = cached.pattern_counters().unwrap();
    assert_same_samples(&mut plain, &mut cached, "after a direct parameter change");
    let after = cached.pattern_counters().unwrap().since(&before);
    assert!(after.stale_misses > 0, "{after:?}");
}

#[test]
fn cached_runs_are_identical_across_executors_threads_and_granularity() {
    for q in [1, 8] {
        let mut runs = Vec::new();
        for (executor, threads, split) in [
            (ExecutorKind::Single, 1, false),
            (ExecutorKind::Single, 2, false),
            (ExecutorKind::Multi, 2, false),
            (ExecutorKind::Multi, 2, true),
        ] {
            let mut s = scene(true, q, executor, threads);
            if split {
                s.schedule.granularity = Granularity::Split { parts: 3 };
            }
            let mut runner = Runner::new(&s, true).unwrap();
            let mut seen: Vec<_> = (0..12).map(|i| sample(&mut runner, i)).collect();
            runner.train_epoch(Some(8));
            seen.extend((0..12).map(|i| sample(&mut runner, i)));
            runs.push((seen, runner.pattern_counters().unwrap()));
        }
        for (i, run) in runs.iter().enumerate().skip(1) {
            assert_eq!(run.0, runs[0].0, "q {q}: configuration {i}");
            assert_eq!(run.1, runs[0].1, "q {q}: counts of configuration {i}");
        }
    }
}

#[test]
fn approximate_cache_with_replicas_is_refused() {
    let text = include_str!("../scenes/quickstart.ron").replace(
        "radiation: (",
        "radiation: (cache: (enabled: true, quantization: 4), ",
    );
    let err = scene::parse(&text, "q.ron").unwrap_err().to_string();
    assert!(
        err.contains("radiation.cache.enabled") && err.contains("schedule.eval_replicas = 1"),
        "{err}"
    );
}
