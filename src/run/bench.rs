//! `neurograph bench`: forward-pass ([`bench()`]) and online-training ([`bench_training`])
//! throughput with time per stage and per system.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::report::{RadiationReport, executor_as_name};
use super::{RunError, Runner, Tally, executor_name, progress_bar, stage_map};
use crate::scene::{ExecutorKind, Scene, Split};

/// What a bench times (also the command line's `--mode forward|train`; the variants' docs are
/// kept out of its help, which describes the values itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// Evaluation forward passes on the test split ([`bench()`]).
    #[value(help = None::<&str>)]
    Forward,
    /// Online training samples (forward, credit, update) on the training split
    /// ([`bench_training`]).
    #[value(help = None::<&str>)]
    Train,
}

/// The result of `neurograph bench`.
///
/// Displays as the table `neurograph bench` prints: throughput, means, the radiation section,
/// then time per stage and per system (each line ends in a newline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// What was timed.
    pub mode: BenchMode,
    /// Scene name.
    pub scene: String,
    /// The executor kind, written `single` or `multi` ([`executor_name`]).
    #[serde(with = "executor_as_name")]
    pub executor: ExecutorKind,
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
    /// Radiation against the machine's multiply-add floor (`--floor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<super::floor::Floor>,
    /// What the run held after the timed samples, owner by owner (the worlds as measured
    /// when they were built), with the process's heap and resident-set peaks.
    #[serde(default)]
    pub memory: super::memory::MemoryReport,
}

/// The most timed or warm-up samples a bench takes (its sample list is allocated up front).
pub const MAX_BENCH_SAMPLES: usize = 10_000_000;

/// Refuses sample counts a bench cannot hold.
fn check_counts(samples: usize, warmup: usize) -> Result<(), RunError> {
    if samples == 0 || samples > MAX_BENCH_SAMPLES || warmup > MAX_BENCH_SAMPLES {
        return Err(RunError::Step {
            index: 0,
            step: "bench".into(),
            message: format!(
                "samples must be between 1 and {MAX_BENCH_SAMPLES} and warm-up at most \
                 {MAX_BENCH_SAMPLES} (got {samples} and {warmup})"
            ),
        });
    }
    Ok(())
}

/// What one bench measured over its timed samples; [`BenchReport::new`] adds the rest.
struct Measurement {
    mode: BenchMode,
    /// Timed samples.
    samples: usize,
    warmup: usize,
    seconds: f64,
    eval_replicas: usize,
    timesteps: u64,
    mean_timesteps: f64,
    mean_active_nodes: f64,
    coverage: f64,
    /// Seconds per input encoding when it was measured apart from the timed passes (forward
    /// mode); `None` when encoding is part of every timed sample (train mode).
    separate_encoding: Option<f64>,
    world_hash: Option<String>,
}

impl BenchReport {
    /// The one place a bench report is put together: the measurement, plus the runner's
    /// clocks, radiation statistics and settings after the timed samples.
    fn new(runner: &Runner, scene: &Scene, timing: bool, m: Measurement) -> BenchReport {
        let samples_per_second = m.samples as f64 / m.seconds.max(1e-9);
        let (encode_seconds_per_sample, samples_per_second_with_encoding) =
            match m.separate_encoding {
                Some(encode) => {
                    let per_pass = m.seconds / m.samples.max(1) as f64;
                    (encode, 1.0 / (per_pass + encode / m.eval_replicas as f64))
                }
                None => (0.0, samples_per_second),
            };
        BenchReport {
            mode: m.mode,
            scene: scene.name.clone(),
            executor: runner.sim.executor(),
            threads: runner.sim.threads(),
            eval_replicas: m.eval_replicas,
            samples: m.samples,
            warmup: m.warmup,
            seconds: m.seconds,
            samples_per_second,
            encode_seconds_per_sample,
            samples_per_second_with_encoding,
            stage_seconds: stage_map(&runner.stage_seconds()),
            system_seconds: runner.system_seconds(),
            timesteps: m.timesteps,
            world_hash: m.world_hash,
            timing,
            granularity: format!("{:?}", scene.schedule.granularity),
            mean_timesteps: m.mean_timesteps,
            mean_active_nodes: m.mean_active_nodes,
            coverage: m.coverage,
            radiation: runner.radiation_report(),
            floor: None,
            memory: runner.memory(),
        }
    }
}

/// Measures forward-pass throughput on the scene's test split (cycled if shorter than
/// `samples`). Inputs are encoded once before timing (evaluation caches them the same way);
/// the encoding cost is measured and reported on its own, as evaluation encodes: batches of
/// [`MAX_BATCH`](crate::model::adapter::MAX_BATCH) images over rayon's pool, wall time per sample.
pub fn bench(
    scene: &Scene,
    samples: usize,
    warmup: usize,
    quiet: bool,
    timing: bool,
) -> Result<BenchReport, RunError> {
    check_counts(samples, warmup)?;
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
    // Encoding as evaluation does it: batched, over rayon's pool (wall time per sample).
    runner.run_indices(Split::Test, &first[..1], &hidden);
    let encode_started = Instant::now();
    std::hint::black_box(runner.encode_many(Split::Test, &first));
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
    let mut tally = Tally::new(runner.sim.settings_classes() as u32);
    for o in &outcomes {
        tally.add(o);
    }
    let eval = tally.finish(Split::Test, seconds);
    let eval_replicas = (scene.schedule.eval_replicas as usize).min(samples.max(1));
    let measured = Measurement {
        mode: BenchMode::Forward,
        samples,
        warmup,
        seconds,
        eval_replicas,
        timesteps: outcomes.iter().map(|o| o.timesteps as u64).sum(),
        mean_timesteps: eval.mean_timesteps,
        mean_active_nodes: eval.mean_active_nodes,
        coverage: eval.coverage,
        separate_encoding: Some(encode_seconds_per_sample),
        world_hash: None,
    };
    Ok(BenchReport::new(&runner, scene, timing, measured))
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
    check_counts(samples, warmup)?;
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
    let measured = Measurement {
        mode: BenchMode::Train,
        samples: done,
        warmup,
        seconds,
        eval_replicas: 1,
        timesteps: timesteps.round() as u64,
        mean_timesteps: timesteps / per,
        mean_active_nodes: active / per,
        coverage: covered / per,
        separate_encoding: None,
        world_hash: Some(world_hash(&mut runner)),
    };
    Ok(BenchReport::new(&runner, scene, timing, measured))
}

/// FNV-1a of the world's whole persistent state ([`crate::state::SimState`]), so
/// configurations that should end in the same world can be compared.
fn world_hash(runner: &mut Runner) -> String {
    crate::state::fingerprint(&runner.sim.save_state())
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scene {}  executor {}  threads {}  granularity {}  replicas {}  {} passes after {} warm-up",
            self.scene,
            executor_name(self.executor),
            self.threads,
            self.granularity,
            self.eval_replicas,
            self.samples,
            self.warmup
        )?;
        let unit = match self.mode {
            BenchMode::Train => "training samples/s",
            BenchMode::Forward => "forward passes/s",
        };
        writeln!(f, "{unit:<24} {:.1}", self.samples_per_second)?;
        writeln!(
            f,
            "with input encoding      {:.1}   (encoding {:.3} ms/sample)",
            self.samples_per_second_with_encoding,
            self.encode_seconds_per_sample * 1e3
        )?;
        writeln!(f, "mean timesteps           {:.2}", self.mean_timesteps)?;
        writeln!(f, "mean active nodes        {:.1}", self.mean_active_nodes)?;
        writeln!(f, "coverage                 {:.3}", self.coverage)?;
        if let Some(hash) = &self.world_hash {
            writeln!(f, "final world hash         {hash}")?;
        }
        write!(f, "{}", self.radiation)?;
        if let Some(floor) = &self.floor {
            write!(f, "{floor}")?;
        }
        if !self.timing {
            return writeln!(f, "(timing off)");
        }
        let total: f64 = self.stage_seconds.values().sum();
        writeln!(
            f,
            "{:<12} {:>12} {:>7}   (thread time, summed over replicas)",
            "stage", "ms/pass", "share"
        )?;
        for (stage, secs) in &self.stage_seconds {
            writeln!(
                f,
                "{:<12} {:>12.4} {:>6.1}%",
                stage,
                secs * 1e3 / self.samples as f64,
                100.0 * secs / total.max(1e-12)
            )?;
        }
        writeln!(
            f,
            "{:<30} {:>12} {:>14} {:>7}",
            "system", "ms/sample", "us/timestep", "share"
        )?;
        for (system, secs) in &self.system_seconds {
            writeln!(
                f,
                "{:<30} {:>12.4} {:>14.2} {:>6.1}%",
                system,
                secs * 1e3 / self.samples.max(1) as f64,
                secs * 1e6 / self.timesteps.max(1) as f64,
                100.0 * secs / total.max(1e-12)
            )?;
        }
        Ok(())
    }
}
