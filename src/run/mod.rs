//! Running scenes: the script runner (evaluation steps for now), the forward-pass benchmark,
//! data loading from the scene, and progress display.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::data::{self, DataError, ImageSet, Splits};
use crate::graph::GraphStats;
use crate::scene::{DataSource, Scene, Split, Step};
use crate::sim::schedule::Stage;
use crate::sim::{SampleOutcome, SimError, Simulation};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The simulation could not be built.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The dataset could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A script step failed.
    #[error("script step {index} ({step}): {message}")]
    Step {
        /// 1-based step number.
        index: usize,
        /// The step, shortly.
        step: String,
        /// What went wrong.
        message: String,
    },
}

/// Loads the scene's dataset and applies its limits.
pub fn load_data(scene: &Scene) -> Result<Splits, DataError> {
    let mut splits = match &scene.data.source {
        DataSource::Synthetic { train, test } => {
            data::synthetic(scene.seed, *train as usize, *test as usize)
        }
        DataSource::Idx { dir } => data::load_idx_dir(Path::new(dir))?,
    };
    if let Some(n) = scene.data.train_limit {
        splits.train.truncate(n as usize);
    }
    if let Some(n) = scene.data.test_limit {
        splits.test.truncate(n as usize);
    }
    Ok(splits)
}

/// Metrics of one evaluation step.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    /// `train` or `test`.
    pub split: &'static str,
    /// Samples evaluated.
    pub samples: usize,
    /// Share of samples predicted correctly (uncovered samples count as wrong).
    pub accuracy: f64,
    /// Share of samples with at least one active output at readout.
    pub coverage: f64,
    /// Mean loss over covered samples (`null` if none was covered).
    pub mean_loss: Option<f64>,
    /// Mean timesteps per sample.
    pub mean_timesteps: f64,
    /// Mean over samples of the per-timestep active count after arrivals.
    pub mean_active_nodes: f64,
    /// Mean active outputs at readout.
    pub mean_active_outputs: f64,
    /// confusion[label][prediction]; uncovered samples are not counted.
    pub confusion: Vec<Vec<u32>>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Samples per second, input encoding included.
    pub samples_per_second: f64,
}

/// Accumulates sample outcomes into an [`Evaluation`].
#[derive(Debug)]
struct Tally {
    classes: usize,
    samples: usize,
    correct: usize,
    covered: usize,
    loss_sum: f64,
    timesteps: u64,
    active: f64,
    outputs: u64,
    confusion: Vec<Vec<u32>>,
}

impl Tally {
    fn new(classes: usize) -> Tally {
        Tally {
            classes,
            samples: 0,
            correct: 0,
            covered: 0,
            loss_sum: 0.0,
            timesteps: 0,
            active: 0.0,
            outputs: 0,
            confusion: vec![vec![0; classes]; classes],
        }
    }

    fn add(&mut self, o: &SampleOutcome) {
        self.samples += 1;
        self.timesteps += o.timesteps as u64;
        self.active += o.mean_active;
        self.outputs += o.active_outputs as u64;
        if let Some(p) = o.prediction {
            self.covered += 1;
            self.correct += (p == o.label) as usize;
            if (o.label as usize) < self.classes && (p as usize) < self.classes {
                self.confusion[o.label as usize][p as usize] += 1;
            }
        }
        if let Some(l) = o.loss {
            self.loss_sum += l as f64;
        }
    }

    fn finish(self, split: Split, seconds: f64) -> Evaluation {
        let n = self.samples.max(1) as f64;
        Evaluation {
            split: split_name(split),
            samples: self.samples,
            accuracy: self.correct as f64 / n,
            coverage: self.covered as f64 / n,
            mean_loss: (self.covered > 0).then(|| self.loss_sum / self.covered as f64),
            mean_timesteps: self.timesteps as f64 / n,
            mean_active_nodes: self.active / n,
            mean_active_outputs: self.outputs as f64 / n,
            confusion: self.confusion,
            seconds,
            samples_per_second: self.samples as f64 / seconds.max(1e-9),
        }
    }
}

/// Name of a split in reports.
pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal or when `quiet`.
pub fn progress_bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} samples  {per_sec}  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One world's outcomes and the encodings it computed that were not cached yet.
type RunResult = (Vec<SampleOutcome>, Vec<(usize, Box<[u16]>)>);

/// Input encodings computed once per sample (evaluation uses no dropout, so they never change).
#[derive(Default)]
struct EncodingCache {
    entries: Vec<Option<Box<[u16]>>>,
}

/// The report of a whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Scene name.
    pub scene: String,
    /// Master seed.
    pub seed: u64,
    /// `single` or `multi`.
    pub executor: &'static str,
    /// Threads per world.
    pub threads: usize,
    /// Worlds evaluating at once.
    pub eval_replicas: usize,
    /// Graph statistics.
    pub graph: GraphStats,
    /// One item per evaluation step, in script order.
    pub evaluations: Vec<Evaluation>,
    /// Seconds per stage over the whole run.
    pub stage_seconds: BTreeMap<String, f64>,
}

/// Runs scenes: owns the simulation, its evaluation replicas, the data, and per-split
/// encoding caches.
pub struct Runner {
    scene: Scene,
    sim: Simulation,
    replicas: Vec<Simulation>,
    data: Splits,
    caches: [EncodingCache; 2],
    quiet: bool,
}

impl Runner {
    /// Builds the simulation and loads the data.
    pub fn new(scene: &Scene, quiet: bool) -> Result<Runner, RunError> {
        let data = load_data(scene)?;
        // Train and test share one image shape (the IDX loader checks it).
        let sim = Simulation::for_images(scene, data.train.pixels())?;
        Ok(Runner {
            scene: scene.clone(),
            sim,
            replicas: Vec::new(),
            data,
            caches: Default::default(),
            quiet,
        })
    }

    /// The simulation.
    pub fn sim(&self) -> &Simulation {
        &self.sim
    }

    /// The simulation, mutably.
    pub fn sim_mut(&mut self) -> &mut Simulation {
        &mut self.sim
    }

    /// The dataset.
    pub fn data(&self) -> &Splits {
        &self.data
    }

    fn set(&self, split: Split) -> &ImageSet {
        match split {
            Split::Train => &self.data.train,
            Split::Test => &self.data.test,
        }
    }

    /// Runs sample `i` of `split` on the primary world (encoding it once, then from the cache).
    pub fn run_sample(&mut self, split: Split, i: usize) -> SampleOutcome {
        let outcomes = self.run_on(&mut [], split, &[i], &ProgressBar::hidden());
        outcomes[0].clone()
    }

    /// Runs the given samples of a split and returns their outcomes in the order given. With
    /// `schedule.eval_replicas` > 1 the indices are cut into contiguous runs evaluated at once
    /// by independent worlds holding the primary world's parameters; the outcomes do not depend
    /// on how many there are.
    pub fn run_indices(
        &mut self,
        split: Split,
        indices: &[usize],
        bar: &ProgressBar,
    ) -> Vec<SampleOutcome> {
        let wanted = (self.scene.schedule.eval_replicas as usize).min(indices.len().max(1));
        if wanted <= 1 {
            return self.run_on(&mut [], split, indices, bar);
        }
        while self.replicas.len() + 1 < wanted {
            match Simulation::for_images(&self.scene, self.sim.pixels()) {
                Ok(r) => self.replicas.push(r),
                Err(_) => break,
            }
        }
        let (phase, magnitude) = self.sim.parameters();
        for r in &mut self.replicas {
            r.set_parameters(&phase, &magnitude);
        }
        let mut replicas = std::mem::take(&mut self.replicas);
        let outcomes = self.run_on(&mut replicas, split, indices, bar);
        self.replicas = replicas;
        outcomes
    }

    fn run_on(
        &mut self,
        replicas: &mut [Simulation],
        split: Split,
        indices: &[usize],
        bar: &ProgressBar,
    ) -> Vec<SampleOutcome> {
        let len = self.sim.encoding_len();
        let n = self.set(split).len();
        let set = match split {
            Split::Train => &self.data.train,
            Split::Test => &self.data.test,
        };
        let cache = &mut self.caches[split as usize];
        if cache.entries.len() < n {
            cache.entries.resize(n, None);
        }
        let cache = &*cache;
        let mut worlds: Vec<&mut Simulation> = std::iter::once(&mut self.sim)
            .chain(replicas.iter_mut())
            .collect();
        let runs = crate::sim::parallel::split_ranges(indices.len(), worlds.len(), 1);
        let parts: Vec<_> = worlds.drain(..).zip(runs).collect();
        let results: Vec<RunResult> = {
            let run = |(sim, range): (&mut Simulation, std::ops::Range<usize>)| {
                let mut outcomes = Vec::with_capacity(range.len());
                let mut fresh = Vec::new();
                for &i in &indices[range] {
                    let encoded = match &cache.entries[i] {
                        Some(e) => e.clone(),
                        None => {
                            let started = Instant::now();
                            let mut both = vec![0u16; 2 * len].into_boxed_slice();
                            let (p, m) = both.split_at_mut(len);
                            sim.encode(set.image(i), p, m);
                            sim.add_stage_time(Stage::Inject, started);
                            fresh.push((i, both.clone()));
                            both
                        }
                    };
                    let (p, m) = encoded.split_at(len);
                    outcomes.push(sim.run_encoded(p, m, set.label(i)));
                    bar.inc(1);
                }
                (outcomes, fresh)
            };
            if parts.len() == 1 {
                parts.into_iter().map(run).collect()
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = parts
                        .into_iter()
                        .map(|part| scope.spawn(move || run(part)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                        .collect()
                })
            }
        };
        let mut all = Vec::with_capacity(indices.len());
        for (outcomes, fresh) in results {
            all.extend(outcomes);
            for (i, e) in fresh {
                self.caches[split as usize].entries[i] = Some(e);
            }
        }
        all
    }

    /// Evaluates the first `samples` (default all) of a split.
    pub fn evaluate(&mut self, split: Split, samples: Option<u32>) -> Result<Evaluation, String> {
        let available = self.set(split).len();
        let n = samples.map_or(available, |s| s as usize);
        if n > available {
            return Err(format!(
                "asks for {n} samples but the {} split has {available}",
                split_name(split)
            ));
        }
        let bar = progress_bar(
            n as u64,
            &format!("evaluate {}", split_name(split)),
            self.quiet,
        );
        let started = Instant::now();
        let indices: Vec<usize> = (0..n).collect();
        let outcomes = self.run_indices(split, &indices, &bar);
        bar.finish_and_clear();
        let mut tally = Tally::new(self.sim.settings_classes());
        for o in &outcomes {
            tally.add(o);
        }
        Ok(tally.finish(split, started.elapsed().as_secs_f64()))
    }

    /// Seconds per stage summed over the primary world and its replicas (CPU time when
    /// replicas run at once).
    pub fn stage_seconds(&self) -> Vec<(Stage, f64)> {
        let mut total = self.sim.stage_seconds();
        for r in &self.replicas {
            for (t, (_, s)) in total.iter_mut().zip(r.stage_seconds()) {
                t.1 += s;
            }
        }
        total
    }

    fn reset_clocks(&self) {
        self.sim.reset_clock();
        for r in &self.replicas {
            r.reset_clock();
        }
    }

    /// Runs the scene's script and returns the report.
    pub fn run_script(&mut self) -> Result<RunReport, RunError> {
        self.reset_clocks();
        let mut evaluations = Vec::new();
        let script = self.scene.script.clone();
        for (index, step) in script.iter().enumerate() {
            match step {
                Step::Evaluate { split, samples } => {
                    let e = self
                        .evaluate(*split, *samples)
                        .map_err(|message| RunError::Step {
                            index: index + 1,
                            step: format!("Evaluate(split: {split:?})"),
                            message,
                        })?;
                    evaluations.push(e);
                }
            }
        }
        Ok(RunReport {
            scene: self.scene.name.clone(),
            seed: self.scene.seed,
            executor: executor_name(self.sim.executor()),
            threads: self.sim.threads(),
            eval_replicas: self.scene.schedule.eval_replicas as usize,
            graph: self.sim.graph_stats().clone(),
            evaluations,
            stage_seconds: stage_map(&self.stage_seconds()),
        })
    }
}

/// Name of an executor kind in reports.
pub fn executor_name(kind: crate::scene::ExecutorKind) -> &'static str {
    match kind {
        crate::scene::ExecutorKind::Single => "single",
        crate::scene::ExecutorKind::Multi => "multi",
    }
}

/// Stage times as a map keyed by stage name.
pub fn stage_map(seconds: &[(Stage, f64)]) -> BTreeMap<String, f64> {
    seconds
        .iter()
        .map(|&(s, t)| (s.name().to_string(), t))
        .collect()
}

/// The result of `neurograph bench`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
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
    /// Seconds per input encoding by the adapter, measured separately.
    pub encode_seconds_per_sample: f64,
    /// Passes per second if every pass also encoded its input.
    pub samples_per_second_with_encoding: f64,
    /// Seconds per stage over the timed passes, summed over worlds.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Mean timesteps per pass.
    pub mean_timesteps: f64,
    /// Mean active nodes per timestep.
    pub mean_active_nodes: f64,
    /// Share of passes with an active output.
    pub coverage: f64,
}

/// Measures forward-pass throughput on the scene's test split (cycled if shorter than
/// `samples`). Inputs are encoded once before timing (evaluation caches them the same way);
/// the encoding cost is measured and reported on its own.
pub fn bench(
    scene: &Scene,
    samples: usize,
    warmup: usize,
    quiet: bool,
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
    Ok(BenchReport {
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
    })
}
