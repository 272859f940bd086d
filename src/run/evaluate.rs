//! Evaluation (SPEC 10): the first samples of a split, run on the primary world and its
//! replicas, tallied in sample order.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::report::Evaluation;
use super::{Runner, Tally, progress_bar, split_name};
use crate::scene::Split;
use crate::sim::SampleOutcome;

impl Runner {
    /// Evaluates the first `samples` (default all) of a split.
    pub fn evaluate(&mut self, split: Split, samples: Option<u32>) -> Result<Evaluation, String> {
        self.evaluate_outcomes(split, samples).map(|(e, _)| e)
    }

    /// [`Runner::evaluate`], with every sample's outcome (logits included), in sample order.
    pub fn evaluate_outcomes(
        &mut self,
        split: Split,
        samples: Option<u32>,
    ) -> Result<(Evaluation, Vec<SampleOutcome>), String> {
        let available = self.set(split).len();
        let n = samples.map_or(available, |s| s as usize);
        if n > available {
            return Err(format!(
                "asks for {n} samples but the {} split has {available}",
                split_name(split)
            ));
        }
        if n == 0 {
            // An accuracy over no samples would be a fake 0% (and batch aggregates would
            // average it in).
            return Err(format!(
                "the {} split is empty, so there is nothing to evaluate (check the dataset \
                 and data.test_limit / data.train_limit)",
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
        if self.interrupted() {
            return Err("interrupted".into());
        }
        let mut tally = Tally::new(self.sim.settings_classes() as u32);
        for o in &outcomes {
            tally.add(o);
        }
        let mut evaluation = tally.finish(split, started.elapsed().as_secs_f64());
        evaluation.pattern_cache = self.pattern_counters().map(|c| c.since(&cache_before));
        evaluation.after_epochs = self.state.epochs_done;
        evaluation.samples_seen = self.state.samples_seen;
        Ok((evaluation, outcomes))
    }

    /// Training samples run so far (over all epochs, restores included).
    pub fn samples_seen(&self) -> u64 {
        self.state.samples_seen
    }

    /// Training epochs completed.
    pub fn epochs_done(&self) -> u32 {
        self.state.epochs_done
    }

    /// Index of the next script step (what a checkpoint taken now records).
    pub fn script_position(&self) -> usize {
        self.state.script_position as usize
    }

    /// A flag that, once set (from any thread), stops the running training or evaluation
    /// after its current sample: [`Runner::evaluate`] then fails with "interrupted",
    /// [`Runner::train_epochs`] and [`Runner::run_script`] with [`RunError::Interrupted`].
    /// The caller clears it before the next call.
    pub fn interrupt_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.interrupt.clone()
    }

    /// Whether [`Runner::interrupt_flag`] is set.
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }
}
