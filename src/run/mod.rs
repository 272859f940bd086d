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
use crate::radiation::cache::{Counters, LevelStats};
use crate::scene::{DataSource, Scene, Split, Step};
use crate::sim::schedule::Stage;
use crate::sim::{SampleOutcome, SimError, Simulation};

pub mod experiment;
pub mod plot;
pub mod report;
mod resume;
mod train;

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
    /// The dataset has more classes than the scene's architecture.
    #[error(
        "the {split} split has label {label} but architecture.classes = {classes}: set \
         architecture.classes to at least {} (labels must be below it)",
        u32::from(*label) + 1
    )]
    Labels {
        /// `training` or `test`.
        split: &'static str,
        /// The largest label found.
        label: u8,
        /// The scene's class count.
        classes: u32,
    },
    /// The output directory or a report in it could not be written.
    #[error("cannot write run output in {path}: {message}")]
    Output {
        /// The directory.
        path: String,
        /// The I/O error.
        message: String,
    },
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
    /// Radiation pattern-cache events during the evaluation, summed over worlds (`None` when
    /// the cache is off).
    pub pattern_cache: Option<crate::radiation::cache::Counters>,
}

/// Accumulates sample outcomes into an [`Evaluation`].
#[derive(Debug)]
pub(crate) struct Tally {
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
    /// A short "loss / accuracy so far" line for progress bars.
    pub(crate) fn progress_message(&self) -> String {
        let n = self.samples.max(1) as f64;
        let loss = if self.covered > 0 {
            format!("{:.4}", self.loss_sum / self.covered as f64)
        } else {
            "-".into()
        };
        format!("loss {loss}  acc {:.3}", self.correct as f64 / n)
    }

    pub(crate) fn new(classes: usize) -> Tally {
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

    pub(crate) fn add(&mut self, o: &SampleOutcome) {
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

    pub(crate) fn finish(self, split: Split, seconds: f64) -> Evaluation {
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
            pattern_cache: None,
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

/// Radiation in a run or bench report: settings, the kernel backend, its share of the stage
/// time, and the statistics of every cache level.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RadiationReport {
    /// `radiation.enabled`.
    pub enabled: bool,
    /// `radiation.top_k`.
    pub top_k: u32,
    /// The kernel's SIMD backend on this CPU (`Portable`, `Avx2Fma`, `Avx512Vl`).
    pub backend: String,
    /// Seconds in the radiation stage (summed over worlds).
    pub seconds: f64,
    /// Radiation's share of all stage time.
    pub share: f64,
    /// The level-1 settings.
    pub cache: CacheSettingsReport,
    /// Statistics per level: `pattern` (level 1, when enabled), `static`, `candidates`.
    pub levels: Vec<LevelStats>,
}

/// The pattern-cache settings of a run.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CacheSettingsReport {
    /// `radiation.cache.enabled`.
    pub enabled: bool,
    /// Whether every hit equals the kernel's answer (q = 1 and staleness 0).
    pub exact: bool,
    /// `radiation.cache.capacity`.
    pub capacity: u32,
    /// `radiation.cache.quantization` (q).
    pub quantization: u32,
    /// `radiation.cache.max_staleness`.
    pub max_staleness: u32,
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
    /// One item per training epoch, in order.
    pub training: Vec<report::EpochMetrics>,
    /// One item per evaluation step, in script order.
    pub evaluations: Vec<Evaluation>,
    /// Seconds per stage over the whole run.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Radiation: settings, time share and cache statistics.
    pub radiation: RadiationReport,
    /// The output directory, when reports were written.
    pub out_dir: Option<String>,
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
    /// The `order` stream: one permutation of the training split per epoch.
    order_rng: rand_chacha::ChaCha8Rng,
    /// Training samples run so far (keys the per-sample dropout sub-streams).
    samples_seen: u64,
    /// Training epochs completed.
    epochs_done: u32,
    /// Metrics of every training epoch so far.
    training: Vec<report::EpochMetrics>,
    /// Where reports and relative checkpoint paths go.
    out: Option<report::RunDir>,
}

impl Runner {
    /// Builds the simulation and loads the data.
    pub fn new(scene: &Scene, quiet: bool) -> Result<Runner, RunError> {
        let data = load_data(scene)?;
        let classes = scene.architecture.classes;
        for (split, set) in [("training", &data.train), ("test", &data.test)] {
            if let Some(&label) = set.labels.iter().max() {
                if u32::from(label) >= classes {
                    return Err(RunError::Labels {
                        split,
                        label,
                        classes,
                    });
                }
            }
        }
        // Train and test share one image shape (the IDX loader checks it).
        let sim = Simulation::for_images(scene, data.train.pixels())?;
        Ok(Runner {
            scene: scene.clone(),
            sim,
            replicas: Vec::new(),
            data,
            caches: Default::default(),
            quiet,
            order_rng: crate::model::rng::stream(scene.seed, crate::model::rng::Stream::Order),
            samples_seen: 0,
            epochs_done: 0,
            training: Vec::new(),
            out: None,
        })
    }

    /// Writes reports (manifest, metrics, summary, curves) into `dir`, which also holds
    /// checkpoints with relative paths.
    pub fn with_output(mut self, dir: &Path) -> Result<Runner, RunError> {
        self.out = Some(report::RunDir::create(dir).map_err(|e| RunError::Output {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?);
        Ok(self)
    }

    /// The output directory, if any.
    pub fn output_dir(&self) -> Option<&Path> {
        self.out.as_ref().map(|o| o.path())
    }

    /// The scene as it is now (after any `Set` steps).
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// Metrics of the training epochs run so far.
    pub fn training_log(&self) -> &[report::EpochMetrics] {
        &self.training
    }

    /// The encoding of sample `i` of a split without dropout, computed once.
    pub(crate) fn cached_encoding(&mut self, split: Split, i: usize) -> (Vec<u16>, Vec<u16>) {
        let len = self.sim.encoding_len();
        let n = self.set(split).len();
        let cache = &mut self.caches[split as usize];
        if cache.entries.len() < n {
            cache.entries.resize(n, None);
        }
        if cache.entries[i].is_none() {
            let started = Instant::now();
            let mut both = vec![0u16; 2 * len].into_boxed_slice();
            let (p, m) = both.split_at_mut(len);
            let image = match split {
                Split::Train => self.data.train.image(i),
                Split::Test => self.data.test.image(i),
            };
            self.sim.encode(image, p, m);
            self.sim.add_stage_time(Stage::Inject, started);
            self.caches[split as usize].entries[i] = Some(both);
        }
        let both = self.caches[split as usize].entries[i]
            .as_ref()
            .expect("encoded above");
        (both[..len].to_vec(), both[len..].to_vec())
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
            r.apply_settings(&self.scene);
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
        let cache_before = self.pattern_counters().unwrap_or_default();
        let indices: Vec<usize> = (0..n).collect();
        let outcomes = self.run_indices(split, &indices, &bar);
        bar.finish_and_clear();
        let mut tally = Tally::new(self.sim.settings_classes());
        for o in &outcomes {
            tally.add(o);
        }
        let mut evaluation = tally.finish(split, started.elapsed().as_secs_f64());
        evaluation.pattern_cache = self.pattern_counters().map(|c| c.since(&cache_before));
        Ok(evaluation)
    }

    /// The pattern-cache counts so far, summed over the primary world and its replicas
    /// (`None` when the cache is off).
    pub fn pattern_counters(&self) -> Option<Counters> {
        let mut total: Option<Counters> = None;
        for sim in std::iter::once(&self.sim).chain(&self.replicas) {
            if let Some(p) = &sim.radiation_cache().pattern {
                total
                    .get_or_insert_with(Counters::default)
                    .add(&p.counters());
            }
        }
        total
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

    /// Seconds per system summed over the primary world and its replicas, keyed by system
    /// name.
    pub fn system_seconds(&self) -> BTreeMap<String, f64> {
        let mut total = BTreeMap::new();
        for sim in std::iter::once(&self.sim).chain(&self.replicas) {
            for (name, _, secs) in sim.system_seconds() {
                *total.entry(name.to_string()).or_insert(0.0) += secs;
            }
        }
        total
    }

    /// Turns timing on or off in every world.
    pub fn set_timing(&self, on: bool) {
        for sim in std::iter::once(&self.sim).chain(&self.replicas) {
            sim.set_timing(on);
        }
    }

    fn reset_clocks(&mut self) {
        for sim in std::iter::once(&mut self.sim).chain(&mut self.replicas) {
            sim.reset_clock();
            sim.reset_radiation_counters();
        }
    }

    /// The radiation settings, kernel backend, time share and cache statistics, summed over
    /// the primary world and its replicas (counts since the last clock reset: the whole run,
    /// or a bench's timed passes).
    pub fn radiation_report(&self) -> RadiationReport {
        let per_world: Vec<Vec<LevelStats>> = std::iter::once(&self.sim)
            .chain(&self.replicas)
            .map(|s| s.radiation_stats())
            .collect();
        let levels = per_world[0]
            .iter()
            .filter_map(|first| {
                let same: Vec<&LevelStats> = per_world
                    .iter()
                    .filter_map(|w| w.iter().find(|l| l.level == first.level))
                    .collect();
                LevelStats::sum(&same)
            })
            .collect();
        let stages = self.stage_seconds();
        let total: f64 = stages.iter().map(|&(_, t)| t).sum();
        let seconds = stages
            .iter()
            .find(|&&(s, _)| s == Stage::Radiation)
            .map_or(0.0, |&(_, t)| t);
        let c = &self.scene.radiation.cache;
        RadiationReport {
            enabled: self.scene.radiation.enabled,
            top_k: self.scene.radiation.top_k,
            backend: format!("{:?}", crate::radiation::Backend::detect()),
            seconds,
            share: if total > 0.0 { seconds / total } else { 0.0 },
            cache: CacheSettingsReport {
                enabled: c.enabled,
                exact: c.quantization == 1 && c.max_staleness == 0,
                capacity: c.capacity,
                quantization: c.quantization,
                max_staleness: c.max_staleness,
            },
            levels,
        }
    }

    /// Runs the scene's script and returns the report. Steps run in order; a failing step
    /// stops the run with an error naming the step.
    pub fn run_script(&mut self) -> Result<RunReport, RunError> {
        self.reset_clocks();
        let started = now_rfc3339();
        if let Some(out) = &self.out {
            let manifest = self.manifest(&started, None);
            out.write_manifest(&manifest)
                .map_err(|e| self.output_error(e))?;
        }
        let mut evaluations = Vec::new();
        let script = self.scene.script.clone();
        for (index, step) in script.iter().enumerate() {
            let fail = |message: String| RunError::Step {
                index: index + 1,
                step: step_label(step),
                message,
            };
            match step {
                Step::Evaluate { split, samples } => {
                    evaluations.push(self.evaluate(*split, *samples).map_err(fail)?);
                }
                Step::Train {
                    epochs,
                    samples_per_epoch,
                } => {
                    if self.data.train.is_empty() {
                        return Err(fail("the training split is empty".into()));
                    }
                    for _ in 0..*epochs {
                        let m = self.train_epoch(*samples_per_epoch);
                        self.training.push(m);
                        self.write_curves().map_err(|e| {
                            fail(format!(
                                "cannot write the training reports in {}: {e}",
                                self.output_dir()
                                    .map_or(String::new(), |d| d.display().to_string())
                            ))
                        })?;
                    }
                }
                Step::Checkpoint { path } => {
                    let target = self.resolve(path);
                    self.save_checkpoint(&target, index + 1)
                        .map_err(|e| fail(e.to_string()))?;
                }
                Step::Restore { path } => {
                    let source = self.resolve(path);
                    self.restore_checkpoint(&source)
                        .map_err(|e| fail(e.to_string()))?;
                }
                Step::Set { field, value } => {
                    self.scene
                        .apply_set_midrun(field, value)
                        .map_err(|e| fail(e.to_string()))?;
                    self.sim.apply_settings(&self.scene);
                }
            }
        }
        let report = RunReport {
            scene: self.scene.name.clone(),
            seed: self.scene.seed,
            executor: executor_name(self.sim.executor()),
            threads: self.sim.threads(),
            eval_replicas: self.scene.schedule.eval_replicas as usize,
            graph: self.sim.graph_stats().clone(),
            training: self.training.clone(),
            evaluations,
            stage_seconds: stage_map(&self.stage_seconds()),
            radiation: self.radiation_report(),
            out_dir: self.out.as_ref().map(|o| o.path().display().to_string()),
        };
        if let Some(out) = &self.out {
            let manifest = self.manifest(&started, Some(&now_rfc3339()));
            out.write_manifest(&manifest)
                .map_err(|e| self.output_error(e))?;
            let summary = serde_json::to_value(&report).unwrap_or_default();
            out.write_summary(&summary)
                .map_err(|e| self.output_error(e))?;
        }
        Ok(report)
    }

    fn output_error(&self, e: std::io::Error) -> RunError {
        RunError::Output {
            path: self
                .out
                .as_ref()
                .map_or_else(String::new, |o| o.path().display().to_string()),
            message: e.to_string(),
        }
    }

    fn write_curves(&self) -> std::io::Result<()> {
        if let Some(out) = &self.out {
            if let Some(last) = self.training.last() {
                out.append_metrics(last)?;
            }
            out.write_curves_csv(&self.training)?;
            out.write_plot(&self.training, &self.scene.name)?;
        }
        Ok(())
    }

    /// A path from the script: relative paths live in the output directory (or the working
    /// directory when there is none).
    fn resolve(&self, path: &str) -> std::path::PathBuf {
        match &self.out {
            Some(out) => out.resolve(path),
            None => std::path::PathBuf::from(path),
        }
    }

    fn manifest(&self, started: &str, finished: Option<&str>) -> serde_json::Value {
        let text = self.scene.to_ron();
        serde_json::json!({
            "scene": self.scene.name,
            "scene_text": text,
            "scene_hash": format!("{:016x}", crate::hash::fnv1a64(text.as_bytes())),
            "seed": self.scene.seed,
            "executor": executor_name(self.sim.executor()),
            "threads": self.sim.threads(),
            "eval_replicas": self.scene.schedule.eval_replicas,
            "crate_version": env!("CARGO_PKG_VERSION"),
            "started": started,
            "finished": finished,
        })
    }
}

/// A short description of a step for error messages.
fn step_label(step: &Step) -> String {
    match step {
        Step::Evaluate { split, .. } => format!("Evaluate(split: {split:?})"),
        Step::Train { epochs, .. } => format!("Train(epochs: {epochs})"),
        Step::Checkpoint { path } => format!("Checkpoint(path: {path:?})"),
        Step::Restore { path } => format!("Restore(path: {path:?})"),
        Step::Set { field, value } => format!("Set(field: {field:?}, value: {value:?})"),
    }
}

/// The current UTC time as RFC 3339 (seconds precision), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), valid for all dates after 1970.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
