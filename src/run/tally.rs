//! Sample outcomes accumulated into the metrics of an [`Evaluation`] (also the base of a
//! training epoch's metrics). The running sums are [`crate::state::Tally`], declared with the
//! persistent state because an open training epoch's tally is part of it.

use super::report::Evaluation;
use crate::scene::Split;
use crate::sim::SampleOutcome;
use crate::state::Tally;

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

    pub(crate) fn add(&mut self, o: &SampleOutcome) {
        self.samples += 1;
        self.timesteps += o.timesteps as u64;
        self.active += o.mean_active;
        self.outputs += o.active_outputs as u64;
        let classes = self.classes as usize;
        if let Some(p) = o.prediction {
            self.covered += 1;
            self.correct += (p == o.label) as u64;
            if (o.label as usize) < classes && (p as usize) < classes {
                self.confusion[o.label as usize * classes + p as usize] += 1;
            }
        }
        if let Some(l) = o.loss {
            self.loss_sum += l as f64;
        }
    }

    pub(crate) fn finish(&self, split: Split, seconds: f64) -> Evaluation {
        let n = self.samples.max(1) as f64;
        let classes = (self.classes as usize).max(1);
        Evaluation {
            step: 0,
            after_epochs: 0,
            samples_seen: 0,
            split,
            samples: self.samples as usize,
            accuracy: self.correct as f64 / n,
            coverage: self.covered as f64 / n,
            mean_loss: (self.covered > 0).then(|| self.loss_sum / self.covered as f64),
            mean_timesteps: self.timesteps as f64 / n,
            mean_active_nodes: self.active / n,
            mean_active_outputs: self.outputs as f64 / n,
            confusion: self
                .confusion
                .chunks(classes)
                .map(<[u32]>::to_vec)
                .collect(),
            seconds,
            samples_per_second: self.samples as f64 / seconds.max(1e-9),
            pattern_cache: None,
        }
    }
}
