//! The script runner: builds a run from a scene (data, simulation, output directory), runs
//! samples on the primary world and its evaluation replicas, evaluates, and executes the
//! scene's script step by step, writing the manifest and summary.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::ProgressBar;

use super::outdir::Existing;
use super::report::{self, CacheSettingsReport, Evaluation, RadiationReport, RunReport};
use super::{Runner, executor_name, now_rfc3339};
use crate::data::{self, DataError, ImageSet, Splits};
use crate::radiation::cache::{Counters, LevelStats};
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
    /// The loaded data makes the run's memory estimate exceed the limit.
    #[error(
        "with its data loaded this run needs an estimated {estimate} ({parts}), more than the \
         {} limit; use less data (data.train_limit, data.test_limit) or a smaller model",
        crate::scene::format_bytes(crate::scene::MEMORY_LIMIT)
    )]
    Memory {
        /// The estimate.
        estimate: String,
        /// Its parts.
        parts: String,
    },
    /// The output directory is held by another writer or holds another run.
    #[error(transparent)]
    OutDir(#[from] super::outdir::OutDirError),
    /// The run was interrupted ([`Runner::interrupt_flag`]) between two samples; its state
    /// is consistent (an epoch may be left open, and continues where it stopped).
    #[error("interrupted")]
    Interrupted,
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
    if let Some(k) = scene.data.validation {
        let n = splits.train.len();
        let k = k as usize;
        if k >= n {
            return Err(DataError::Validation { asked: k, train: n });
        }
        let pixels = splits.train.pixels();
        splits.validation.images = splits.train.images.split_off((n - k) * pixels);
        splits.validation.labels = splits.train.labels.split_off(n - k);
    }
    Ok(splits)
}

/// What is legal but almost certainly not what the scene's author meant: a graph without
/// edges, outputs no input reaches (they never activate), classes with identical encodings
/// (the readout cannot tell them apart).
pub fn warnings(
    stats: &crate::graph::GraphStats,
    scene: &Scene,
    enc: &crate::model::encodings::ClassEncodings,
) -> Vec<String> {
    let mut out = Vec::new();
    if stats.edges == 0 {
        out.push(
            "the graph has no edges (an empty edge list?): no signal can reach an output"
                .to_string(),
        );
    }
    let outputs = scene.architecture.output_nodes;
    if stats.outputs_reached < outputs {
        out.push(format!(
            "{} of the {outputs} outputs are reached by no input along the graph's edges: they \
             can never activate",
            outputs - stats.outputs_reached
        ));
    }
    let mut seen: std::collections::HashMap<(&[u16], &[u16]), usize> = Default::default();
    let d = enc.dim;
    for c in 0..enc.classes {
        let key = (
            &enc.phase[c * d..(c + 1) * d],
            &enc.magnitude[c * d..(c + 1) * d],
        );
        if let Some(&first) = seen.get(&key) {
            out.push(format!(
                "classes {first} and {c} have identical class encodings: the readout cannot \
                 tell them apart"
            ));
        } else {
            seen.insert(key, c);
        }
    }
    out
}

/// One world's outcomes.
type RunResult = Vec<SampleOutcome>;

impl Runner {
    /// Builds the simulation and loads the data.
    pub fn new(scene: &Scene, quiet: bool) -> Result<Runner, RunError> {
        let data = load_data(scene)?;
        let classes = scene.architecture.classes;
        for (split, set) in [("training", &data.train), ("test", &data.test)] {
            if let Some(&label) = set.labels.iter().max()
                && u32::from(label) >= classes
            {
                return Err(RunError::Labels {
                    split,
                    label,
                    classes,
                });
            }
        }
        // The scene's own estimate assumed a dataset shape; now that it is known, check again
        // before any world is built.
        let estimate = scene.memory_estimate_for(&data.shape());
        if estimate.total > crate::scene::MEMORY_LIMIT {
            return Err(RunError::Memory {
                estimate: crate::scene::format_bytes(estimate.total),
                parts: estimate
                    .parts
                    .iter()
                    .map(|(name, b)| format!("{name} {}", crate::scene::format_bytes(*b)))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Train and test share one image shape (the IDX loader checks it).
        let (sim, primary) =
            crate::alloc::heap_delta(|| Simulation::for_images(scene, data.train.pixels()));
        let sim = sim?;
        let warnings = warnings(sim.graph_stats(), scene, sim.class_encodings());
        if !quiet {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
        }
        Ok(Runner {
            warnings,
            scene: scene.clone(),
            sim,
            replicas: Vec::new(),
            trainers: Vec::new(),
            gradients: Vec::new(),
            data,
            caches: Default::default(),
            quiet,
            state: crate::state::RunnerState {
                order: crate::model::rng::stream(scene.seed, crate::model::rng::Stream::Order),
                samples_seen: 0,
                epochs_done: 0,
                script_position: 0,
                epoch: crate::state::EpochCursor::closed(classes),
            },
            epoch_seconds: 0.0,
            pipeline: super::train::Pipeline::new(
                std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
            ),
            training: Vec::new(),
            out: None,
            inputs: super::outdir::inputs_hash(scene),
            initial_text: String::new(),
            overrides: Vec::new(),
            restores: Vec::new(),
            ledger: super::memory::Ledger {
                primary,
                ..Default::default()
            },
            interrupt: Default::default(),
        })
    }

    /// Writes reports (manifest, metrics, summary, curves) into `dir`, which also holds
    /// checkpoints with relative paths; refuses a directory another process is writing or that
    /// holds another run (see [`RunDir::open`](super::report::RunDir::open)).
    pub fn with_output(self, dir: &Path) -> Result<Runner, RunError> {
        self.with_output_mode(dir, Existing::Refuse)
    }

    /// [`Runner::with_output`], choosing what happens to a directory holding another run:
    /// [`Existing::Replace`] deletes its files first (`--overwrite`). A script that restores
    /// a checkpoint inside the directory that no earlier step writes is refused before
    /// anything is deleted.
    pub fn with_output_mode(mut self, dir: &Path, existing: Existing) -> Result<Runner, RunError> {
        let doomed = super::outdir::Previous::read(dir)
            .map(|p| p != super::outdir::Previous::Empty)
            .unwrap_or(false);
        if doomed {
            let mut written = Vec::new();
            for (index, step) in self.scene.script.iter().enumerate() {
                match step {
                    Step::Checkpoint { path } => written.push(lexical(&dir.join(path))),
                    Step::Restore { path }
                        if lexical(&dir.join(path)).starts_with(lexical(dir))
                            && !written.contains(&lexical(&dir.join(path))) =>
                    {
                        return Err(RunError::Step {
                            index: index + 1,
                            step: step_label(step),
                            message: format!(
                                "it reads {}, inside the output directory, which already holds \
                                 files a new run replaces; restore from another directory \
                                 (e.g. a path like ../<earlier-run>/{path})",
                                dir.join(path).display()
                            ),
                        });
                    }
                    _ => {}
                }
            }
        }
        self.out = Some(super::report::RunDir::open(dir, &self.inputs, existing)?);
        Ok(self)
    }

    /// Settings given explicitly (`--set` values, grid values): they win over the settings a
    /// `Restore` step takes from its checkpoint (which are kept otherwise, for exact
    /// continuation).
    pub fn with_overrides(mut self, assignments: Vec<String>) -> Runner {
        self.overrides = assignments;
        self
    }

    /// What this run computes, as [`inputs_hash`](super::outdir::inputs_hash) of its scene.
    pub fn inputs_hash(&self) -> &str {
        &self.inputs
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
                Split::Validation => self.data.validation.image(i),
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

    pub(super) fn set(&self, split: Split) -> &ImageSet {
        match split {
            Split::Train => &self.data.train,
            Split::Test => &self.data.test,
            Split::Validation => &self.data.validation,
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
            let (built, bytes) =
                crate::alloc::heap_delta(|| Simulation::for_images(&self.scene, self.sim.pixels()));
            match built {
                Ok(r) => {
                    super::memory::Ledger::add(&mut self.ledger.replicas, bytes);
                    self.replicas.push(r);
                }
                Err(_) => break,
            }
        }
        // Replicas take the primary's whole persistent state; one that cannot is left out
        // (results do not depend on the number of worlds).
        let state = self.sim.save_state();
        let scene = &self.scene;
        self.replicas.retain_mut(|r| {
            r.apply_settings(scene);
            r.load_state(&state).is_ok()
        });
        let mut replicas = std::mem::take(&mut self.replicas);
        let outcomes = self.run_on(&mut replicas, split, indices, bar);
        self.replicas = replicas;
        outcomes
    }

    /// Encodes the samples of `indices` not yet in the split's cache: in batches of
    /// [`MAX_BATCH`](crate::model::adapter::MAX_BATCH) (the adapter reads each weight column
    /// once per batch), the batches spread over rayon's pool. Encodings depend on the image
    /// alone, so neither the batching nor the threads change a bit of them.
    fn fill_encodings(&mut self, split: Split, indices: &[usize]) {
        let n = self.set(split).len();
        let cache = &mut self.caches[split as usize];
        if cache.entries.len() < n {
            cache.entries.resize(n, None);
        }
        let mut missing: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| cache.entries[i].is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        missing.sort_unstable();
        missing.dedup();
        let started = Instant::now();
        let encoded = self.encode_many(split, &missing);
        let cache = &mut self.caches[split as usize];
        for (&i, e) in missing.iter().zip(encoded) {
            cache.entries[i] = Some(e);
        }
        self.sim.add_stage_time(Stage::Inject, started);
    }

    /// The evaluation encodings of samples `indices` of a split, in order, batched and spread
    /// over rayon's pool ([`Runner::fill_encodings`]); nothing is cached.
    pub(crate) fn encode_many(&self, split: Split, indices: &[usize]) -> Vec<Box<[u16]>> {
        use rayon::prelude::*;
        let set = self.set(split);
        let sim = &self.sim;
        let encoded: Vec<Vec<Box<[u16]>>> = indices
            .par_chunks(crate::model::adapter::MAX_BATCH)
            .map(|chunk| {
                let images: Vec<&[u8]> = chunk.iter().map(|&i| set.image(i)).collect();
                sim.encoder().encode_batch(&images)
            })
            .collect();
        encoded.into_iter().flatten().collect()
    }

    fn run_on(
        &mut self,
        replicas: &mut [Simulation],
        split: Split,
        indices: &[usize],
        bar: &ProgressBar,
    ) -> Vec<SampleOutcome> {
        self.fill_encodings(split, indices);
        let len = self.sim.encoding_len();
        let set = match split {
            Split::Train => &self.data.train,
            Split::Test => &self.data.test,
            Split::Validation => &self.data.validation,
        };
        let cache = &self.caches[split as usize];
        let interrupt = &*self.interrupt;
        let mut worlds: Vec<&mut Simulation> = std::iter::once(&mut self.sim)
            .chain(replicas.iter_mut())
            .collect();
        let runs = crate::sim::parallel::split_ranges(indices.len(), worlds.len(), 1);
        let parts: Vec<_> = worlds.drain(..).zip(runs).collect();
        let results: Vec<RunResult> = {
            let run = |(sim, range): (&mut Simulation, std::ops::Range<usize>)| {
                let mut outcomes = Vec::with_capacity(range.len());
                for &i in &indices[range] {
                    if interrupt.load(Ordering::Relaxed) {
                        break;
                    }
                    let encoded = cache.entries[i].as_deref().expect("filled above");
                    let (p, m) = encoded.split_at(len);
                    outcomes.push(sim.run_encoded(p, m, set.label(i)));
                    bar.inc(1);
                }
                outcomes
            };
            if parts.len() == 1 {
                parts.into_iter().map(run).collect()
            } else {
                // rayon's pool measured 0.3-3.9% faster than scoped threads spawned per call
                // (3 interleaved pairs of `bench scenes/mnist-production.ron --samples 1000`,
                // 2 replicas, AMD EPYC): within noise, so either would do; the pool is kept,
                // as for the batch worlds.
                let mut slots: Vec<Option<RunResult>> = (0..parts.len()).map(|_| None).collect();
                rayon::scope(|scope| {
                    for (part, slot) in parts.into_iter().zip(slots.iter_mut()) {
                        let run = &run;
                        scope.spawn(move |_| *slot = Some(run(part)));
                    }
                });
                slots.into_iter().flatten().collect()
            }
        };
        results.into_iter().flatten().collect()
    }

    /// The primary world, its evaluation replicas and its batch worlds.
    fn worlds(&self) -> impl Iterator<Item = &Simulation> {
        std::iter::once(&self.sim)
            .chain(&self.replicas)
            .chain(&self.trainers)
    }

    /// The pattern-cache counts so far, summed over the primary world, its replicas and its
    /// batch worlds (`None` when the cache is off).
    pub fn pattern_counters(&self) -> Option<Counters> {
        let mut total: Option<Counters> = None;
        for sim in self.worlds() {
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
        for r in self.replicas.iter().chain(&self.trainers) {
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
        for sim in self.worlds() {
            for (name, _, secs) in sim.system_seconds() {
                *total.entry(name.to_string()).or_insert(0.0) += secs;
            }
        }
        total
    }

    /// Turns timing on or off in every world.
    pub fn set_timing(&self, on: bool) {
        for sim in self.worlds() {
            sim.set_timing(on);
        }
    }

    pub(super) fn reset_clocks(&mut self) {
        let worlds = std::iter::once(&mut self.sim)
            .chain(&mut self.replicas)
            .chain(&mut self.trainers);
        for sim in worlds {
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
            backend: self.scene.radiation_backend().name().to_string(),
            seconds,
            share: if total > 0.0 { seconds / total } else { 0.0 },
            cache: CacheSettingsReport {
                enabled: c.enabled,
                exact: c.quantization == 1 && c.max_staleness == 0,
                capacity: c.capacity,
                quantization: c.quantization,
                max_staleness: c.max_staleness,
            },
            scored_per_source: self.scored_per_source(),
            levels,
        }
    }

    /// Nodes the radiation kernel scored per source it answered, over the primary world and
    /// its replicas since the last clock reset: every node for the dense kernels, the nodes of
    /// the visited buckets for the index.
    fn scored_per_source(&self) -> Option<f64> {
        let worlds = || std::iter::once(&self.sim).chain(&self.replicas);
        if self.scene.radiation_backend() == crate::radiation::Backend::Index {
            let (queries, scored) = worlds()
                .map(|s| s.index_counts())
                .fold((0, 0), |a, (q, s, _)| (a.0 + q, a.1 + s));
            (queries > 0).then(|| scored as f64 / queries as f64)
        } else {
            let answered: u64 = worlds()
                .flat_map(|s| s.radiation_stats())
                .filter(|l| l.level == "candidates")
                .map(|l| l.hits)
                .sum();
            let nodes = self.scene.architecture.total_nodes as f64;
            (answered > 0).then_some(nodes)
        }
    }

    /// Runs the scene's script and returns the report. Steps run in order; a failing step
    /// stops the run with an error naming the step.
    pub fn run_script(&mut self) -> Result<RunReport, RunError> {
        self.reset_clocks();
        let started = now_rfc3339();
        self.initial_text = self.scene.to_ron();
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
                Step::Evaluate {
                    split,
                    samples,
                    predictions,
                } => {
                    let evaluated = self.evaluate_outcomes(*split, *samples);
                    if self.interrupted() {
                        return Err(RunError::Interrupted);
                    }
                    let (mut e, outcomes) = evaluated.map_err(fail)?;
                    e.step = index + 1;
                    if let Some(out) = &self.out {
                        let path = out.path().join(format!("confusion-{}.svg", index + 1));
                        let title =
                            format!("{}: confusion, script step {}", self.scene.name, index + 1);
                        let svg = super::confusion::render(&e, &title);
                        crate::atomic::write(&path, svg.as_bytes())
                            .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
                    }
                    self.log_evaluation(&e).map_err(&fail)?;
                    if *predictions {
                        let path = self.resolve(&format!("predictions-{}.csv", index + 1));
                        let classes = self.scene.architecture.classes as usize;
                        let text = super::predict::outcomes_csv(&outcomes, classes);
                        crate::atomic::write(&path, text.as_bytes())
                            .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
                    }
                    evaluations.push(e);
                }
                Step::Train {
                    epochs,
                    samples_per_epoch,
                    evaluate_every,
                } => {
                    if self.data.train.is_empty() {
                        return Err(fail("the training split is empty".into()));
                    }
                    let available = self.data.train.len();
                    if let Some(asked) = samples_per_epoch.filter(|&s| s as usize > available) {
                        // Silently visiting fewer samples than asked would mislabel the run.
                        return Err(fail(format!(
                            "samples_per_epoch = {asked} but the training split has {available} \
                             samples; ask for at most {available} (or leave it out for the \
                             whole split)"
                        )));
                    }
                    for _ in 0..*epochs {
                        let every = evaluate_every.map(u64::from);
                        let (_, held_out) = self
                            .run_epoch(*samples_per_epoch, true, every)
                            .map_err(|e| match e {
                                RunError::Step { message, .. } => fail(message),
                                other => other,
                            })?;
                        for mut e in held_out {
                            e.step = index + 1;
                            self.log_evaluation(&e).map_err(&fail)?;
                            evaluations.push(e);
                        }
                        self.write_curves(&evaluations).map_err(|e| {
                            fail(format!(
                                "cannot write the training reports in {}: {e}",
                                self.output_dir()
                                    .map_or(String::new(), |d| d.display().to_string())
                            ))
                        })?;
                    }
                }
                Step::Trace { split, samples } => {
                    let dir = self.resolve(&format!("trace-{}", index + 1));
                    let indices: Vec<usize> = samples.iter().map(|&i| i as usize).collect();
                    self.write_trace(&dir, *split, &indices).map_err(fail)?;
                }
                Step::Checkpoint { path } => {
                    let target = self.resolve(path);
                    self.save_checkpoint(&target, index + 1)
                        .map_err(|e| fail(e.to_string()))?;
                }
                Step::Restore { path } => {
                    let source = self.resolve(path);
                    let note = self
                        .restore_checkpoint(&source, index + 1)
                        .map_err(|e| fail(e.to_string()))?;
                    if !self.quiet {
                        eprint!("{note}");
                    }
                    self.restores.push(note);
                    if let Some(out) = &self.out {
                        // The restored history replaces the epochs logged since the checkpoint.
                        out.rewrite_metrics(&self.training)
                            .map_err(|e| fail(format!("cannot rewrite the metrics log: {e}")))?;
                    }
                }
                Step::Set { field, value } => {
                    self.scene
                        .apply_set_midrun(field, value)
                        .map_err(|e| fail(e.to_string()))?;
                    self.sim.apply_settings(&self.scene);
                }
            }
        }
        if let Some(out) = &self.out {
            // The last evaluations came after the last epoch's plot.
            let chance = 1.0 / f64::from(self.scene.architecture.classes.max(1));
            out.write_curves_plot(&self.training, &evaluations, chance, &self.scene.name)
                .map_err(|e| self.output_error(e))?;
        }
        let report = RunReport {
            baseline: self.baseline(&evaluations),
            scene: self.scene.name.clone(),
            seed: self.scene.seed,
            executor: self.sim.executor(),
            threads: self.sim.threads(),
            eval_replicas: self.scene.schedule.eval_replicas as usize,
            graph: self.sim.graph_stats().clone(),
            training: self.training.clone(),
            evaluations,
            stage_seconds: stage_map(&self.stage_seconds()),
            radiation: self.radiation_report(),
            out_dir: self.out.as_ref().map(|o| o.path().display().to_string()),
            memory: Some(self.memory()),
            warnings: self.warnings.clone(),
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

    /// The nearest-class-mean baseline on the test split, scored on as many test samples as the
    /// run's largest test evaluation used (`None` when it evaluated none).
    fn baseline(&self, evaluations: &[Evaluation]) -> Option<report::Baseline> {
        let samples = evaluations
            .iter()
            .filter(|e| e.split == Split::Test)
            .map(|e| e.samples)
            .max()?;
        let mut test = self.data.test.clone();
        test.truncate(samples);
        let classes = self.scene.architecture.classes as usize;
        Some(report::Baseline {
            samples: test.len(),
            nearest_class_mean: data::nearest_class_mean(&self.data.train, &test, classes)?,
            chance: 1.0 / classes.max(1) as f64,
        })
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

    /// Appends an evaluation row to `metrics.jsonl` (when there is an output directory).
    fn log_evaluation(&self, e: &Evaluation) -> Result<(), String> {
        match &self.out {
            Some(out) => out
                .append_evaluation(e)
                .map_err(|err| format!("cannot append to the metrics log: {err}")),
            None => Ok(()),
        }
    }

    fn write_curves(&self, evaluations: &[Evaluation]) -> std::io::Result<()> {
        if let Some(out) = &self.out {
            if let Some(last) = self.training.last() {
                out.append_metrics(last)?;
            }
            out.write_curves_csv(&self.training)?;
            let chance = 1.0 / f64::from(self.scene.architecture.classes.max(1));
            out.write_curves_plot(&self.training, evaluations, chance, &self.scene.name)?;
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

    /// The manifest: `scene_text` is the scene as the run began (after `--set` and grid
    /// values), `final_scene_text` the settings at the end when `Set` or `Restore` steps
    /// changed them, `inputs_hash` what makes two runs the same experiment.
    fn manifest(&self, started: &str, finished: Option<&str>) -> serde_json::Value {
        let text = &self.initial_text;
        let now = self.scene.to_ron();
        serde_json::json!({
            "scene": self.scene.name,
            "scene_text": text,
            "scene_hash": format!("{:016x}", crate::hash::fnv1a64(text.as_bytes())),
            "inputs_hash": self.inputs,
            "overrides": self.overrides,
            "final_scene_text": (now != *text).then_some(now),
            "restores": self.restores,
            "seed": self.scene.seed,
            "executor": executor_name(self.sim.executor()),
            "threads": self.sim.threads(),
            "eval_replicas": self.scene.schedule.eval_replicas,
            "crate_version": env!("CARGO_PKG_VERSION"),
            "provenance": super::provenance::block(
                &self.scene,
                self.sim.settings().backend.name(),
                &self
                    .restores
                    .iter()
                    .map(|r| (r.path.clone(), r.hash.clone()))
                    .collect::<Vec<_>>(),
            ),
            "started": started,
            "finished": finished,
        })
    }
}

/// `path` made absolute and with `.` and `..` folded away, without touching the file system
/// (so `runs/a/../b` is `runs/b` even when `runs/a` does not exist).
fn lexical(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = std::path::PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A short description of a step for error messages.
fn step_label(step: &Step) -> String {
    match step {
        Step::Evaluate { split, .. } => format!("Evaluate(split: {split:?})"),
        Step::Train { epochs, .. } => format!("Train(epochs: {epochs})"),
        Step::Trace { split, samples } => format!("Trace(split: {split:?}, samples: {samples:?})"),
        Step::Checkpoint { path } => format!("Checkpoint(path: {path:?})"),
        Step::Restore { path } => format!("Restore(path: {path:?})"),
        Step::Set { field, value } => format!("Set(field: {field:?}, value: {value:?})"),
    }
}

/// Stage times as a map keyed by stage name.
pub fn stage_map(seconds: &[(Stage, f64)]) -> BTreeMap<String, f64> {
    seconds
        .iter()
        .map(|&(s, t)| (s.name().to_string(), t))
        .collect()
}
