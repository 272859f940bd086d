//! Saving and restoring a run's state through [`crate::checkpoint`]: everything needed to
//! continue exactly (SPEC 10).

use std::path::Path;

use crate::checkpoint::{self, Checkpoint, CheckpointError, RngState, Shape};
use crate::run::Runner;
use crate::run::report::EpochMetrics;

/// What a checkpoint carries beyond the model state, as JSON in `metrics_json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Progress {
    samples_seen: u64,
    training: Vec<EpochMetrics>,
}

impl Runner {
    fn shape(&self) -> Shape {
        let a = &self.scene.architecture;
        Shape {
            total_nodes: a.total_nodes,
            input_nodes: a.input_nodes,
            output_nodes: a.output_nodes,
            dim: a.vector_dim,
            phase_bins: self.scene.resolution.phase_bins,
            magnitude_bins: self.scene.resolution.magnitude_bins,
            classes: a.classes,
            graph_fingerprint: self.sim.graph_fingerprint(),
        }
    }

    /// Writes a checkpoint of the current state; `next_step` is the index of the script step
    /// that would run next.
    pub fn save_checkpoint(
        &mut self,
        path: &Path,
        next_step: usize,
    ) -> Result<(), CheckpointError> {
        let (phase, magnitude) = self.sim.parameters();
        let (acc_phase, acc_magnitude) = self.sim.accumulators();
        let (pending_phase, pending_magnitude, pending_samples) = self.sim.pending_gradients();
        let enc = self.sim.encodings();
        let progress = Progress {
            samples_seen: self.samples_seen,
            training: self.training.clone(),
        };
        let ckpt = Checkpoint {
            shape: self.shape(),
            phase,
            magnitude,
            acc_phase,
            acc_magnitude,
            pending_phase,
            pending_magnitude,
            pending_samples,
            adapter: self.sim.adapter_weights(),
            enc_phase: enc.phase.clone(),
            enc_magnitude: enc.magnitude.clone(),
            rng: vec![RngState::capture("order", &self.order_rng)],
            parameter_version: self.sim.update_stats().parameter_version,
            script_position: next_step as u32,
            epochs_done: self.epochs_done,
            scene_text: self.scene.to_ron(),
            metrics_json: serde_json::to_string(&progress).unwrap_or_default(),
        };
        checkpoint::save(path, &ckpt)
    }

    /// Restores the state saved by [`Runner::save_checkpoint`], including the settings that may
    /// change mid-run (forward, radiation, loss, training) as they were when it was written;
    /// refuses a checkpoint made for another graph or shape.
    pub fn restore_checkpoint(&mut self, path: &Path) -> Result<(), CheckpointError> {
        let ckpt = checkpoint::load(path)?;
        ckpt.shape.check_matches(&self.shape(), path)?;
        let malformed = |what: &str| CheckpointError::Malformed {
            path: path.display().to_string(),
            what: what.to_string(),
        };
        let progress: Progress =
            serde_json::from_str(&ckpt.metrics_json).map_err(|_| malformed("progress record"))?;
        let order = ckpt
            .rng
            .iter()
            .find(|r| r.name == "order")
            .ok_or_else(|| malformed("order stream"))?;
        let cells = self.sim.settings().total_nodes as usize * self.sim.settings().dim;
        for (what, len) in [
            ("phase parameters", ckpt.phase.len()),
            ("magnitude parameters", ckpt.magnitude.len()),
            ("phase accumulators", ckpt.acc_phase.len()),
            ("magnitude accumulators", ckpt.acc_magnitude.len()),
        ] {
            if len != cells {
                return Err(malformed(what));
            }
        }
        self.sim
            .set_adapter_weights(&ckpt.adapter)
            .map_err(|e| malformed(&format!("adapter weights ({e})")))?;
        self.sim
            .set_encodings(ckpt.enc_phase, ckpt.enc_magnitude)
            .map_err(|e| malformed(&format!("class encodings ({e})")))?;
        self.sim
            .set_pending_gradients(
                &ckpt.pending_phase,
                &ckpt.pending_magnitude,
                ckpt.pending_samples,
            )
            .map_err(|e| malformed(&e))?;
        // The settings that may change mid-run (τ constants, decay, radiation, loss, training)
        // continue as they were when the checkpoint was written.
        let saved = crate::scene::parse(&ckpt.scene_text, &path.display().to_string())
            .map_err(|e| malformed(&format!("saved scene ({e})")))?;
        self.scene.forward = saved.forward;
        self.scene.radiation = saved.radiation;
        self.scene.loss = saved.loss;
        self.scene.training = saved.training;
        self.sim.apply_settings(&self.scene);
        self.sim.set_parameters(&ckpt.phase, &ckpt.magnitude);
        self.sim
            .set_accumulators(&ckpt.acc_phase, &ckpt.acc_magnitude);
        self.sim.set_parameter_version(ckpt.parameter_version);
        self.order_rng = order.restore();
        self.samples_seen = progress.samples_seen;
        self.training = progress.training;
        self.epochs_done = ckpt.epochs_done;
        // Cached evaluation encodings came from the adapter, which may have been replaced.
        self.caches = Default::default();
        Ok(())
    }
}
