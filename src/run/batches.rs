//! Batch training (SPEC 11 `training.batch_size` and the float optimizers): the samples of a
//! batch run with the parameters fixed, on the primary world and up to
//! `schedule.train_worlds − 1` batch worlds at once (coarse-grained sample parallelism), each
//! leaving its gradient; the gradients are then summed into the primary world in sample order
//! and applied once. A batch is the next `batch_size` samples of the epoch order (the last one
//! of an epoch may be shorter), and its partial sum is world state, so a checkpoint may fall
//! mid-batch and the restored run finishes the same batch with the same result.

use std::time::Instant;

use crate::model::rng::{self, Stream};
use crate::run::Runner;
use crate::scene::Split;
use crate::sim::{SampleOutcome, Simulation};

/// One batch world's share of a chunk: its samples' outcomes, gradients and the encodings it
/// computed that were not cached yet.
type Share = (Vec<SampleOutcome>, Vec<(usize, Box<[u16]>)>);

impl Runner {
    /// Runs up to `limit` samples of the open epoch on the batch path, stopping at the end of
    /// the open batch or of the epoch; applies the batch when it is complete. Returns the
    /// number of samples run and whether the epoch ended.
    pub(super) fn train_chunk(&mut self, limit: usize) -> (usize, bool) {
        let started = Instant::now();
        let batch = self.sim.batch_size() as usize;
        let open = self.sim.batch_samples() as usize;
        let cursor = &self.state.epoch;
        let position = cursor.position as usize;
        let left = cursor.order.len() - position;
        let take = batch.saturating_sub(open).min(left).min(limit).max(1);
        let indices: Vec<usize> = cursor.order[position..position + take]
            .iter()
            .map(|&i| i as usize)
            .collect();
        let first_seen = self.state.samples_seen;
        let cache_before = self.pattern_counters();
        let outcomes = self.run_training_chunk(&indices, first_seen);
        for (j, outcome) in outcomes.iter().enumerate() {
            let gradient = std::mem::take(&mut self.gradients[j]);
            self.sim.add_to_batch(&gradient);
            self.gradients[j] = gradient;
            self.state.epoch.tally.add(outcome);
        }
        self.state.samples_seen += take as u64;
        let cursor = &mut self.state.epoch;
        cursor.position += take as u32;
        let epoch_ends = cursor.position as usize == cursor.order.len();
        if self.sim.batch_samples() as usize >= batch || epoch_ends {
            let scale = self.sim.lr_decay().powi(self.state.epochs_done as i32);
            let changed = self.sim.apply_batch(scale);
            let cursor = &mut self.state.epoch;
            cursor.updates += u64::from(changed > 0);
            cursor.changed += u64::from(changed);
        }
        let cache_after = self.pattern_counters();
        if let (Some(total), Some(after)) = (&mut self.state.epoch.pattern_cache, cache_after) {
            total.add(&after.since(&cache_before.unwrap_or_default()));
        }
        self.epoch_seconds += started.elapsed().as_secs_f64();
        (take, epoch_ends)
    }

    /// Runs the training samples `indices` (the next ones of the epoch; sample `j` is training
    /// sample number `first_seen + j + 1`, which keys its dropout) with the primary world's
    /// parameters, on the primary world and the batch worlds, in contiguous runs. Leaves sample
    /// `j`'s gradient in `self.gradients[j]` and returns the outcomes in order.
    fn run_training_chunk(&mut self, indices: &[usize], first_seen: u64) -> Vec<SampleOutcome> {
        let wanted = (self.scene.schedule.train_worlds as usize).clamp(1, indices.len().max(1));
        while self.trainers.len() + 1 < wanted {
            let (built, bytes) =
                crate::alloc::heap_delta(|| Simulation::for_images(&self.scene, self.sim.pixels()));
            match built {
                Ok(mut r) => {
                    let state = self.sim.save_state();
                    if r.load_state(&state).is_err() {
                        break;
                    }
                    super::memory::Ledger::add(&mut self.ledger.trainers, bytes);
                    self.trainers.push(r);
                }
                Err(_) => break,
            }
        }
        let mut trainers = std::mem::take(&mut self.trainers);
        trainers.truncate(wanted - 1);
        for t in &mut trainers {
            t.apply_settings(&self.scene);
            self.sim.share_parameters(t);
        }
        if self.gradients.len() < indices.len() {
            self.gradients.resize_with(indices.len(), Vec::new);
        }
        let len = self.sim.encoding_len();
        let train = &self.data.train;
        let cache = &mut self.caches[Split::Train as usize];
        if cache.entries.len() < train.len() {
            cache.entries.resize(train.len(), None);
        }
        let cache = &*cache;
        let seed = self.scene.seed;
        let runs = crate::sim::parallel::split_ranges(indices.len(), wanted, 1);
        let mut gradients: &mut [Vec<f32>] = &mut self.gradients[..indices.len()];
        let mut parts = Vec::with_capacity(runs.len());
        let worlds = std::iter::once(&mut self.sim).chain(trainers.iter_mut());
        for (sim, range) in worlds.zip(runs) {
            let (mine, rest) = gradients.split_at_mut(range.len());
            gradients = rest;
            parts.push((sim, range, mine));
        }
        let run =
            |(sim, range, grads): (&mut Simulation, std::ops::Range<usize>, &mut [Vec<f32>])| {
                let mut outcomes = Vec::with_capacity(range.len());
                let mut fresh = Vec::new();
                let (mut phase, mut magnitude) = (vec![0u16; len], vec![0u16; len]);
                for (slot, j) in range.enumerate() {
                    let i = indices[j];
                    let encode_started = Instant::now();
                    if sim.has_dropout() {
                        let mut drop_rng = rng::stream_with(
                            seed,
                            Stream::Dropout.name(),
                            first_seen + j as u64 + 1,
                        );
                        sim.encode_training(
                            train.image(i),
                            &mut drop_rng,
                            &mut phase,
                            &mut magnitude,
                        );
                        sim.add_stage_time(crate::sim::Stage::Inject, encode_started);
                    } else if let Some(e) = &cache.entries[i] {
                        phase.copy_from_slice(&e[..len]);
                        magnitude.copy_from_slice(&e[len..]);
                    } else {
                        sim.encode(train.image(i), &mut phase, &mut magnitude);
                        sim.add_stage_time(crate::sim::Stage::Inject, encode_started);
                        let both: Box<[u16]> = phase.iter().chain(&magnitude).copied().collect();
                        fresh.push((i, both));
                    }
                    outcomes.push(sim.train_encoded(&phase, &magnitude, train.label(i)));
                    let g = &mut grads[slot];
                    g.clear();
                    g.extend_from_slice(sim.sample_gradient());
                }
                (outcomes, fresh)
            };
        // rayon's pool (kept between batches) and scoped threads spawned per batch measured
        // the same within noise on 2 cores (1033 vs 1023 samples/s over 3 interleaved runs
        // each on scenes/mnist-deep.ron); the pool is kept.
        let shares: Vec<Share> = if parts.len() == 1 {
            parts.into_iter().map(run).collect()
        } else {
            let mut slots: Vec<Option<Share>> = (0..parts.len()).map(|_| None).collect();
            rayon::scope(|scope| {
                for (part, slot) in parts.into_iter().zip(slots.iter_mut()) {
                    let run = &run;
                    scope.spawn(move |_| *slot = Some(run(part)));
                }
            });
            slots.into_iter().flatten().collect()
        };
        self.trainers = trainers;
        let mut all = Vec::with_capacity(indices.len());
        for (outcomes, fresh) in shares {
            all.extend(outcomes);
            for (i, e) in fresh {
                self.caches[Split::Train as usize].entries[i] = Some(e);
            }
        }
        all
    }
}
