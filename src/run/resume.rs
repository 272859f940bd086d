//! Saving and restoring a run through [`crate::checkpoint`]: the primary world's
//! [`crate::state::SimState`] and the runner's [`crate::state::RunnerState`], which together
//! are everything needed to continue exactly (SPEC 10), plus the reports so far.

use std::path::Path;

use crate::checkpoint::{self, Checkpoint, CheckpointError, Shape};
use crate::run::Runner;
use crate::run::report::EpochMetrics;
use crate::state::{RunProgress, codec};

/// The reports a checkpoint carries beyond the state, as JSON in `history`.
#[derive(serde::Serialize, serde::Deserialize)]
struct History {
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

    /// The whole persistent state of the run: the primary world's and the runner's. Saving it
    /// changes nothing the run does next.
    pub fn progress(&mut self) -> RunProgress {
        RunProgress {
            sim: self.sim.save_state(),
            runner: self.state.clone(),
        }
    }

    /// [`Runner::progress`] encoded: the bytes two runs must agree on, sample by sample, for
    /// one to be the exact continuation of the other.
    pub fn state_bytes(&mut self) -> Vec<u8> {
        codec::to_bytes(&self.progress())
    }

    /// Drops all workspace: the encoding caches, the evaluation replicas and the primary
    /// world's own (see [`crate::sim::Simulation::reset_workspace`]); the run continues
    /// exactly as if it had not.
    pub fn reset_workspace(&mut self) {
        self.caches = Default::default();
        self.replicas.clear();
        self.epoch_seconds = 0.0;
        self.encoding = Default::default();
        self.sim.reset_workspace();
    }

    /// Writes a checkpoint of the current state; `next_step` is the index of the script step
    /// that would run next.
    pub fn save_checkpoint(
        &mut self,
        path: &Path,
        next_step: usize,
    ) -> Result<(), CheckpointError> {
        self.state.script_position = next_step as u32;
        let history = History {
            training: self.training.clone(),
        };
        let ckpt = Checkpoint {
            shape: self.shape(),
            state: self.progress(),
            scene_text: self.scene.to_ron(),
            history: serde_json::to_string(&history).unwrap_or_default(),
        };
        checkpoint::save(path, &ckpt)
    }

    /// Restores the state saved by [`Runner::save_checkpoint`], including the settings that may
    /// change mid-run as they were when it was written; refuses a checkpoint made for another
    /// graph or shape.
    pub fn restore_checkpoint(&mut self, path: &Path) -> Result<(), CheckpointError> {
        let ckpt = checkpoint::load(path)?;
        ckpt.shape.check_matches(&self.shape(), path)?;
        let malformed = |what: String| CheckpointError::Malformed {
            path: path.display().to_string(),
            what,
        };
        let history: History = serde_json::from_str(&ckpt.history)
            .map_err(|_| malformed("the training history is not valid JSON".into()))?;
        let classes = self.sim.settings_classes() as u32;
        let tally = &ckpt.state.runner.epoch.tally;
        if tally.classes != classes || tally.confusion.len() != (classes as usize).pow(2) {
            return Err(malformed(
                "the open epoch's tally is for another class count".into(),
            ));
        }
        let saved = crate::scene::parse(&ckpt.scene_text, &path.display().to_string())
            .map_err(|e| malformed(format!("saved scene ({e})")))?;
        self.scene.take_midrun_settings(&saved);
        self.sim.apply_settings(&self.scene);
        self.sim
            .load_state(&ckpt.state.sim)
            .map_err(|e| malformed(e.to_string()))?;
        self.state = ckpt.state.runner;
        self.training = history.training;
        // Cached evaluation encodings came from the adapter, which may have been replaced.
        self.caches = Default::default();
        Ok(())
    }
}
