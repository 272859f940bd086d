//! `neurograph bench`: forward-pass ([`bench`]) and online-training ([`bench_training`])
//! throughput with time per stage and per system.

use std::collections::BTreeMap;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;

use super::report::RadiationReport;
use super::{RunError, Runner, Tally, executor_name, progress_bar, stage_map};
use crate::scene::{Scene, Split};

/// The result of `neurograph bench`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// `forward` or `train`.
    pub mode: &'static str,
    /// Scene name.
    pub scene: String,
    /// `single` or `multi`.
    pub executor: &'static str,
    /// Threads per world.
    pub threads: usize,
    /// Worlds running passes at once.
    pub eval_replicas: usize,
    /// Timed forward passes.
    pub samples: usize,
    /// Untimed warm-up passes.
    pub warmup: usize,
    /// Wall seconds of the timed passes.
    pub seconds: f64,
    /// Forward passes per second (inputs encoded beforehand, as evaluation caches them).
    pub samples_per_second: f64,
    /// Seconds per input encoding by the adapter, measured separately (forward mode; in train
    /// mode encoding with dropout is part of every sample and of the `inject` stage).
    pub encode_seconds_per_sample: f64,
    /// Passes per second if every pass also encoded its input.
    pub samples_per_second_with_encoding: f64,
    /// Seconds per stage over the timed passes, summed over worlds.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Seconds per system over the timed passes, summed over worlds (empty with timing off).
    pub system_seconds: BTreeMap<String, f64>,
    /// Timesteps run by the timed passes.
    pub timesteps: u64,
    /// Training mode: FNV-1a of the final parameters and accumulators (bit patterns), to
    /// compare configurations.
    pub world_hash: Option<String>,
    /// Whether the stage/system clock was on.
    pub timing: bool,
    /// The granularity, e.g. `Stage` or `Split { parts: 2 }`.
    pub granularity: String,
    /// Mean timesteps per pass.
    pub mean_timesteps: f64,
    /// Mean active nodes per timestep.
    pub mean_active_nodes: f64,
    /// Share of passes with an active output.
    pub coverage: f64,
    /// Radiation: settings, time share and cache statistics over the timed passes.
    pub radiation: RadiationReport,
}

/// Measures forward-pass throughput on the scene's test split (cycled if shorter than
/// `samples`). Inputs are encoded once before timing (evaluation caches them the same way);
/// the encoding cost is measured and reported on its own.
pub fn bench(
    scene: &Scene,
    samples: usize,
    warmup: usize,
    quiet: bool,
    timing: bool,
) -> Result<BenchReport, RunError> {
    let mut runner = Runner::new(scene, true)?;
    let distinct = runner.data.test.len().min(samples.max(1));
    if distinct == 0 {
        return Err(RunError::Step {
            index: 0,
            step: "bench".into(),
            message: "the test split is empty".into(),
        });
    }
    let hidden = ProgressBar::hidden();
    let first: Vec<usize> = (0..distinct).collect();
    let encode_started = Instant::now();
    runner.run_indices(Split::Test, &first[..1], &hidden);
    let len = runner.sim.encoding_len();
    let (mut p, mut m) = (vec![0u16; len], vec![0u16; len]);
    for &i in &first {
        runner.sim.encode(runner.data.test.image(i), &mut p, &mut m);
    }
    let encode_seconds_per_sample = encode_started.elapsed().as_secs_f64() / distinct as f64;
    let warm: Vec<usize> = (0..warmup.max(distinct)).map(|i| i % distinct).collect();
    runner.run_indices(Split::Test, &warm, &hidden);
    runner.reset_clocks();
    runner.set_timing(timing);
    let bar = progress_bar(samples as u64, "bench", quiet);
    let indices: Vec<usize> = (0..samples).map(|i| i % distinct).collect();
    let started = Instant::now();
    let outcomes = runner.run_indices(Split::Test, &indices, &bar);
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut tally = Tally::new(runner.sim.settings_classes());
    for o in &outcomes {
        tally.add(o);
    }
    let eval = tally.finish(Split::Test, seconds);
    let per_pass = seconds / samples.max(1) as f64;
    let replicas = (scene.schedule.eval_replicas as usize).min(samples.max(1));
    let timesteps = outcomes.iter().map(|o| o.timesteps as u64).sum();
    Ok(BenchReport {
        system_seconds: runner.system_seconds(),
        timesteps,
        timing,
        granularity: format!("{:?}", scene.schedule.granularity),
        world_hash: None,
        mode: "forward",
        scene: scene.name.clone(),
        executor: executor_name(runner.sim.executor()),
        threads: runner.sim.threads(),
        eval_replicas: replicas,
        samples,
        warmup,
        seconds,
        samples_per_second: eval.samples_per_second,
        encode_seconds_per_sample,
        samples_per_second_with_encoding: 1.0
            / (per_pass + encode_seconds_per_sample / replicas as f64),
        stage_seconds: stage_map(&runner.stage_seconds()),
        mean_timesteps: eval.mean_timesteps,
        mean_active_nodes: eval.mean_active_nodes,
        coverage: eval.coverage,
        radiation: runner.radiation_report(),
    })
}

/// Measures online training throughput: `samples` training samples (forward, loss, credit,
/// update; with dropout when the adapter has it) on the training split, after `warmup` untimed
/// ones. Training is sequential, so one world runs them (`eval_replicas` does not apply).
pub fn bench_training(
    scene: &Scene,
    samples: usize,
    warmup: usize,
    quiet: bool,
    timing: bool,
) -> Result<BenchReport, RunError> {
    let mut runner = Runner::new(scene, true)?;
    let n = runner.data.train.len();
    if n == 0 {
        return Err(RunError::Step {
            index: 0,
            step: "bench --mode train".into(),
            message: "the training split is empty".into(),
        });
    }
    let mut left = warmup;
    while left > 0 {
        let m = runner.train_epoch(Some(left.min(n) as u32));
        left -= m.samples as usize;
    }
    runner.reset_clocks();
    runner.set_timing(timing);
    let bar = progress_bar(samples as u64, "bench train", quiet);
    let started = Instant::now();
    let (mut done, mut timesteps, mut active, mut covered) = (0usize, 0.0, 0.0, 0.0);
    while done < samples {
        let m = runner.train_epoch(Some((samples - done).min(n) as u32));
        let k = m.samples as f64;
        timesteps += m.mean_timesteps * k;
        active += m.mean_active_nodes * k;
        covered += m.coverage * k;
        done += m.samples as usize;
        bar.inc(m.samples as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let per = done.max(1) as f64;
    let (phase, magnitude) = runner.sim.parameters();
    let (acc_phase, acc_magnitude) = runner.sim.accumulators();
    let mut state = crate::hash::Fnv1a::new();
    for x in phase.iter().chain(&magnitude) {
        state.write(&x.to_le_bytes());
    }
    for x in acc_phase.iter().chain(&acc_magnitude) {
        state.write(&x.to_bits().to_le_bytes());
    }
    Ok(BenchReport {
        system_seconds: runner.system_seconds(),
        timesteps: (timesteps).round() as u64,
        timing,
        granularity: format!("{:?}", scene.schedule.granularity),
        world_hash: Some(format!("{:016x}", state.finish())),
        mode: "train",
        scene: scene.name.clone(),
        executor: executor_name(runner.sim.executor()),
        threads: runner.sim.threads(),
        eval_replicas: 1,
        samples: done,
        warmup,
        seconds,
        samples_per_second: done as f64 / seconds.max(1e-9),
        encode_seconds_per_sample: 0.0,
        samples_per_second_with_encoding: done as f64 / seconds.max(1e-9),
        stage_seconds: stage_map(&runner.stage_seconds()),
        mean_timesteps: timesteps / per,
        mean_active_nodes: active / per,
        coverage: covered / per,
        radiation: runner.radiation_report(),
    })
}
