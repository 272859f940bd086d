//! Online training (SPEC 10): one sample at a time (forward, loss, credit, update), in an order
//! drawn from the `order` stream, with adapter dropout drawn per sample from the `dropout`
//! stream.
//!
//! An epoch is a cursor in the runner's persistent state ([`crate::state::EpochCursor`]): its
//! order, how far it got and its tallies. So a checkpoint may fall anywhere, even mid-epoch, and
//! the restored run finishes the same epoch with the same samples and the same metrics.

use std::time::Instant;

use crate::data::Splits;
use crate::model::rng::{self, Stream};
use crate::run::report::{EpochMetrics, Evaluation};
use crate::run::{RunError, Runner, progress_bar};
use crate::scene::Split;
use crate::sim::{Encoder, SampleOutcome, Simulation, Stage};
use crate::state::{EpochCursor, Tally};

/// The online training loop's dropout encodings. A sample's encoding depends only on the
/// fixed adapter, its image and its own dropout sub-stream (keyed by the samples-seen count),
/// never on the parameters, so while the world trains on sample n a second thread encodes
/// sample n + 1 of the epoch, exactly as the world would. Nothing here is persistent state: a
/// checkpoint, restore or `Set` between samples only means the next sample is encoded where it
/// runs.
pub(super) struct Pipeline {
    current: (Vec<u16>, Vec<u16>),
    next: (Vec<u16>, Vec<u16>),
    /// The (samples seen, training index) whose encoding `next` holds.
    ready: Option<(u64, usize)>,
    encoder: Option<Encoder>,
    /// Whether to encode ahead on a second thread (on when the machine has two cores and the
    /// world runs on one thread).
    pub(super) ahead: bool,
}

impl Pipeline {
    /// A pipeline that encodes ahead when `ahead`.
    pub(super) fn new(ahead: bool) -> Pipeline {
        Pipeline {
            current: Default::default(),
            next: Default::default(),
            ready: None,
            encoder: None,
            ahead,
        }
    }

    /// Trains `sim` on training sample `i` (the `seen`-th sample of the run) with its dropout
    /// encoding, and encodes `next` (the epoch's next sample) meanwhile when encoding ahead.
    fn train(
        &mut self,
        sim: &mut Simulation,
        data: &Splits,
        seed: u64,
        (seen, i): (u64, usize),
        next: Option<usize>,
        label: u8,
    ) -> SampleOutcome {
        let dropout = |seen: u64| rng::stream_with(seed, Stream::Dropout.name(), seen);
        if self.encoder.as_ref().is_none_or(|e| !sim.encodes_like(e)) {
            self.encoder = Some(sim.encoder());
            self.ready = None;
        }
        let Pipeline {
            current,
            next: ahead,
            ready,
            encoder,
            ..
        } = self;
        let encoder = encoder.as_mut().expect("made above");
        let len = sim.encoding_len();
        if *ready == Some((seen, i)) {
            std::mem::swap(current, ahead);
        } else {
            current.0.resize(len, 0);
            current.1.resize(len, 0);
            let started = Instant::now();
            let mut r = dropout(seen);
            encoder.encode(
                data.train.image(i),
                Some(&mut r),
                &mut current.0,
                &mut current.1,
            );
            sim.add_stage_time(Stage::Inject, started);
        }
        *ready = None;
        let next = next.filter(|_| self.ahead && sim.threads() == 1);
        let Some(j) = next else {
            return sim.train_encoded(&current.0, &current.1, label);
        };
        ahead.0.resize(len, 0);
        ahead.1.resize(len, 0);
        // A scoped thread per sample: rayon's pool (a `rayon::scope` spawn, the world on the
        // calling thread) measured slower, 375-405 against 402-424 training samples/s (4
        // interleaved pairs of `bench scenes/mnist-production.ron --mode train --samples
        // 1000`, Intel Xeon, the same world hash every time).
        let outcome = std::thread::scope(|scope| {
            let encoding = scope.spawn(|| {
                let mut r = dropout(seen + 1);
                encoder.encode(
                    data.train.image(j),
                    Some(&mut r),
                    &mut ahead.0,
                    &mut ahead.1,
                );
            });
            let outcome = sim.train_encoded(&current.0, &current.1, label);
            encoding
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            outcome
        });
        *ready = Some((seen + 1, j));
        outcome
    }
}

impl Runner {
    /// Whether online training encodes the next sample's input on a second thread while the
    /// world trains on the current one (on by default on machines with two or more cores; the
    /// results are the same either way).
    pub fn set_encode_ahead(&mut self, on: bool) {
        self.pipeline = Pipeline::new(on);
    }

    /// Trains one epoch: finishes the open epoch if there is one (a checkpoint taken mid-epoch
    /// leaves one), otherwise runs `samples_per_epoch` samples (default: the whole training
    /// split) of a fresh permutation of the training split, each updating the parameters once.
    /// The epoch's metrics are appended to the training log and returned. It does not look at
    /// [`Runner::interrupt_flag`] ([`Runner::train_epochs`] does).
    pub fn train_epoch(&mut self, samples_per_epoch: Option<u32>) -> EpochMetrics {
        match self.run_epoch(samples_per_epoch, false, None) {
            Ok((m, _)) => m,
            Err(_) => unreachable!("an epoch that ignores the interrupt flag is never interrupted"),
        }
    }

    /// Trains `epochs` epochs like [`Runner::train_epoch`] (the first finishes the open epoch
    /// if there is one), checking [`Runner::interrupt_flag`] between samples: when it is set
    /// the call returns [`RunError::Interrupted`] with the epoch left open, so the next call
    /// continues it exactly.
    pub fn train_epochs(
        &mut self,
        epochs: u32,
        samples_per_epoch: Option<u32>,
    ) -> Result<Vec<EpochMetrics>, RunError> {
        (0..epochs)
            .map(|_| {
                self.run_epoch(samples_per_epoch, true, None)
                    .map(|(m, _)| m)
            })
            .collect()
    }

    /// One epoch, stopping between samples when `interruptible` and the flag is set; with
    /// `evaluate_every` = N, the test split is evaluated whenever the run's samples seen reach
    /// a multiple of N (those evaluations are returned, with epoch and samples seen).
    pub(super) fn run_epoch(
        &mut self,
        samples_per_epoch: Option<u32>,
        interruptible: bool,
        evaluate_every: Option<u64>,
    ) -> Result<(EpochMetrics, Vec<Evaluation>), RunError> {
        let mut held_out = Vec::new();
        if !self.state.epoch.is_open() {
            self.open_epoch(samples_per_epoch);
        }
        let cursor = &self.state.epoch;
        let left = cursor.order.len() - cursor.position as usize;
        let epoch = self.state.epochs_done + 1;
        let bar = progress_bar(left as u64, &format!("train epoch {epoch}"), self.quiet);
        let mut shown = 0;
        loop {
            if interruptible && self.interrupted() {
                bar.finish_and_clear();
                return Err(RunError::Interrupted);
            }
            let before = self.state.samples_seen;
            let limit = evaluate_every.map_or(usize::MAX, |n| (n - before % n) as usize);
            let (ran, done) = self.train_step(limit);
            bar.inc(ran as u64);
            if let Some(n) = evaluate_every
                && self.state.samples_seen / n > before / n
            {
                // The validation split when the scene carves one, else the test split.
                let split = if self.data.validation.is_empty() {
                    Split::Test
                } else {
                    Split::Validation
                };
                let evaluated = self.evaluate(split, None);
                if interruptible && self.interrupted() {
                    return Err(RunError::Interrupted);
                }
                let e = evaluated.map_err(|message| RunError::Step {
                    index: 0,
                    step: String::new(),
                    message,
                })?;
                held_out.push(e);
            }
            if let Some(m) = done {
                bar.finish_and_clear();
                return Ok((m, held_out));
            }
            if self.state.epoch.position / 64 != shown {
                shown = self.state.epoch.position / 64;
                bar.set_message(self.state.epoch.tally.progress_message());
            }
        }
    }

    /// Trains `samples` samples, opening epochs of `samples_per_epoch` as needed (finishing the
    /// open one first), and returns the metrics of the epochs that ended. The unit of the
    /// checkpoint contract: state may be saved between any two samples.
    pub fn train_samples(
        &mut self,
        samples: usize,
        samples_per_epoch: Option<u32>,
    ) -> Vec<EpochMetrics> {
        let mut finished = Vec::new();
        let mut left = samples;
        while left > 0 {
            if !self.state.epoch.is_open() {
                self.open_epoch(samples_per_epoch);
            }
            let (ran, done) = self.train_step(left);
            left -= ran;
            finished.extend(done);
        }
        finished
    }

    /// Runs the next sample of the open epoch, or on the batch path up to `limit` samples to
    /// the end of the open batch ([`Runner::train_chunk`]); when the epoch ended, closes it and
    /// returns its metrics too.
    fn train_step(&mut self, limit: usize) -> (usize, Option<EpochMetrics>) {
        if !self.sim.batched() {
            return (1, self.train_next());
        }
        let (ran, ended) = self.train_chunk(limit);
        (ran, ended.then(|| self.close_epoch()))
    }

    /// Opens an epoch: a fresh permutation of the training split, truncated to
    /// `samples_per_epoch`.
    fn open_epoch(&mut self, samples_per_epoch: Option<u32>) {
        let n = self.data.train.len();
        let take = samples_per_epoch.map_or(n, |s| (s as usize).min(n));
        let mut order: Vec<usize> = (0..n).collect();
        rng::shuffle(&mut self.state.order, &mut order);
        order.truncate(take);
        let mut cursor = EpochCursor::closed(self.sim.settings_classes() as u32);
        cursor.order = order.into_iter().map(|i| i as u32).collect();
        cursor.pattern_cache = self
            .sim
            .radiation_cache()
            .pattern
            .as_ref()
            .map(|_| crate::radiation::cache::Counters::default());
        self.state.epoch = cursor;
        self.epoch_seconds = 0.0;
    }

    /// Runs the next sample of the open epoch; when it was the last, closes the epoch, logs
    /// and returns its metrics.
    fn train_next(&mut self) -> Option<EpochMetrics> {
        let started = Instant::now();
        let i = self.state.epoch.order[self.state.epoch.position as usize] as usize;
        let cache_before = self.pattern_counters();
        self.state.samples_seen += 1;
        let label = self.data.train.label(i);
        let outcome = if self.sim.has_dropout() {
            let next = self
                .state
                .epoch
                .order
                .get(self.state.epoch.position as usize + 1);
            let next = next.map(|&j| j as usize);
            let (sim, data, pipeline) = (&mut self.sim, &self.data, &mut self.pipeline);
            let seen = self.state.samples_seen;
            pipeline.train(sim, data, self.scene.seed, (seen, i), next, label)
        } else {
            let (p, m) = self.cached_encoding(Split::Train, i);
            self.sim.train_encoded(&p, &m, label)
        };
        let cache_after = self.pattern_counters();
        let cursor = &mut self.state.epoch;
        cursor.position += 1;
        cursor.updates += (outcome.parameters_changed > 0) as u64;
        cursor.changed += outcome.parameters_changed as u64;
        cursor.tally.add(&outcome);
        if let (Some(total), Some(after)) = (&mut cursor.pattern_cache, cache_after) {
            total.add(&after.since(&cache_before.unwrap_or_default()));
        }
        self.epoch_seconds += started.elapsed().as_secs_f64();
        if (cursor.position as usize) < cursor.order.len() {
            return None;
        }
        Some(self.close_epoch())
    }

    /// Closes the finished epoch: logs and returns its metrics.
    fn close_epoch(&mut self) -> EpochMetrics {
        let classes = self.state.epoch.tally.classes;
        let cursor = std::mem::replace(&mut self.state.epoch, EpochCursor::closed(classes));
        self.state.epochs_done += 1;
        let metrics = epoch_metrics(self.state.epochs_done, &cursor, self.epoch_seconds);
        self.training.push(metrics.clone());
        metrics
    }
}

/// The metrics of a finished epoch.
fn epoch_metrics(epoch: u32, cursor: &EpochCursor, seconds: f64) -> EpochMetrics {
    let e = Tally::finish(&cursor.tally, Split::Train, seconds);
    EpochMetrics {
        epoch,
        samples: e.samples as u32,
        loss: e.mean_loss,
        accuracy: e.accuracy,
        coverage: e.coverage,
        updates_applied: cursor.updates,
        parameters_changed: cursor.changed,
        samples_per_second: e.samples_per_second,
        mean_timesteps: e.mean_timesteps,
        mean_active_nodes: e.mean_active_nodes,
        seconds,
        pattern_cache: cursor.pattern_cache,
    }
}
