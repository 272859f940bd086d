//! Online training (SPEC 10): one sample at a time (forward, loss, credit, update), in an order
//! drawn from the `order` stream, with adapter dropout drawn per sample from the `dropout`
//! stream.

use std::time::Instant;

use crate::model::rng::{self, Stream};
use crate::run::report::EpochMetrics;
use crate::run::{Runner, Tally, progress_bar};
use crate::scene::Split;

impl Runner {
    /// Trains one epoch: `samples_per_epoch` samples (default: the whole training split) of a
    /// fresh permutation of the training split, each updating the parameters once.
    pub fn train_epoch(&mut self, samples_per_epoch: Option<u32>) -> EpochMetrics {
        let cache_before = self.pattern_counters().unwrap_or_default();
        let n = self.data.train.len();
        let take = samples_per_epoch.map_or(n, |s| (s as usize).min(n));
        let mut order: Vec<usize> = (0..n).collect();
        rng::shuffle(&mut self.order_rng, &mut order);
        order.truncate(take);
        let epoch = self.epochs_done + 1;
        let bar = progress_bar(take as u64, &format!("train epoch {epoch}"), self.quiet);
        let mut tally = Tally::new(self.sim.settings_classes());
        let mut updates = 0u64;
        let mut changed = 0u64;
        let len = self.sim.encoding_len();
        let (mut phase, mut magnitude) = (vec![0u16; len], vec![0u16; len]);
        let dropout = self.sim.has_dropout();
        let started = Instant::now();
        for (j, &i) in order.iter().enumerate() {
            self.samples_seen += 1;
            let label = self.data.train.label(i);
            let outcome = if dropout {
                // One sub-stream per training sample: a checkpoint only needs the count.
                let mut drop_rng =
                    rng::stream_with(self.scene.seed, Stream::Dropout.name(), self.samples_seen);
                let encode_started = Instant::now();
                self.sim.encode_training(
                    self.data.train.image(i),
                    &mut drop_rng,
                    &mut phase,
                    &mut magnitude,
                );
                self.sim
                    .add_stage_time(crate::sim::Stage::Inject, encode_started);
                self.sim.train_encoded(&phase, &magnitude, label)
            } else {
                let (p, m) = self.cached_encoding(Split::Train, i);
                self.sim.train_encoded(&p, &m, label)
            };
            updates += (outcome.parameters_changed > 0) as u64;
            changed += outcome.parameters_changed as u64;
            tally.add(&outcome);
            bar.inc(1);
            if j % 64 == 63 {
                bar.set_message(tally.progress_message());
            }
        }
        bar.finish_and_clear();
        self.epochs_done = epoch;
        let seconds = started.elapsed().as_secs_f64();
        let e = tally.finish(Split::Train, seconds);
        EpochMetrics {
            epoch,
            samples: e.samples as u32,
            loss: e.mean_loss,
            accuracy: e.accuracy,
            coverage: e.coverage,
            updates_applied: updates,
            parameters_changed: changed,
            samples_per_second: e.samples_per_second,
            mean_timesteps: e.mean_timesteps,
            mean_active_nodes: e.mean_active_nodes,
            seconds,
            pattern_cache: self.pattern_counters().map(|c| c.since(&cache_before)),
        }
    }
}
