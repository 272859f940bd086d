//! Saving and restoring a run through [`crate::checkpoint`]: the primary world's
//! [`crate::state::SimState`] and the runner's [`crate::state::RunnerState`], which together
//! are everything needed to continue exactly (SPEC 10), plus the reports so far.

use std::path::Path;

use crate::checkpoint::{self, Checkpoint, CheckpointError, Shape};
use crate::run::Runner;
use crate::run::report::EpochMetrics;
use crate::sim::StateError;
use crate::state::{RunProgress, codec};

/// What a `Restore` step did to the settings that may change mid-run: which of them it took
/// from the checkpoint (they differ from the scene's) and which explicit overrides (`--set`,
/// grid values) it kept against the checkpoint. Written into the manifest; printed unless the
/// run is quiet.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RestoreNote {
    /// 1-based script step.
    pub step: usize,
    /// The checkpoint.
    pub path: String,
    /// `(field, value now, the scene's value)` for each setting that came from the checkpoint.
    pub from_checkpoint: Vec<(String, String, String)>,
    /// `(field, value now, the checkpoint's value)` for each override that won.
    pub kept_overrides: Vec<(String, String, String)>,
    /// Whether the checkpoint's class encodings differ from (and replaced) the scene's.
    pub encodings_replaced: bool,
    /// The checkpoint file's content hash (FNV-1a 64, hex) as it was read.
    pub hash: Option<String>,
}

impl std::fmt::Display for RestoreNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from_checkpoint.is_empty()
            && self.kept_overrides.is_empty()
            && !self.encodings_replaced
        {
            return Ok(());
        }
        writeln!(f, "step {}: restored {}", self.step, self.path)?;
        for (field, now, scene) in &self.from_checkpoint {
            writeln!(
                f,
                "  {field} = {now} from the checkpoint (the scene says {scene})"
            )?;
        }
        for (field, now, saved) in &self.kept_overrides {
            writeln!(
                f,
                "  {field} = {now} kept from the command line (the checkpoint had {saved})"
            )?;
        }
        if self.encodings_replaced {
            writeln!(
                f,
                "  the class encodings are the checkpoint's (learned, or made by other settings), \
                 which differ from the scene's"
            )?;
        }
        Ok(())
    }
}

/// Every leaf where two settings trees differ, as `(dotted path, a, b)`; an enum whose variant
/// differs is one leaf.
fn leaf_diff(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
    out: &mut Vec<(String, String, String)>,
) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if x.len() != 1 || x.keys().eq(y.keys()) => {
            for (key, va) in x {
                let vb = y.get(key).unwrap_or(&Value::Null);
                leaf_diff(va, vb, &format!("{path}.{key}"), out);
            }
        }
        _ if a != b => out.push((path.to_string(), leaf_text(a), leaf_text(b))),
        _ => {}
    }
}

/// A settings leaf as the scene would write it: numbers that are `f32`s in the scene print as
/// the shortest `f32` (`0.05`, not `0.05000000074505806`).
fn leaf_text(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() && f64::from(x as f32) == x => format!("{:?}", x as f32),
        _ => v.to_string(),
    }
}

/// [`leaf_diff`] over the sections a checkpoint carries.
fn midrun_diff(a: &crate::scene::Scene, b: &crate::scene::Scene) -> Vec<(String, String, String)> {
    let (a, b) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut out = Vec::new();
    for section in crate::scene::MIDRUN_SECTIONS {
        leaf_diff(&a[section], &b[section], section, &mut out);
    }
    out
}

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
        self.pipeline = super::train::Pipeline::new(self.pipeline.ahead);
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
    /// change mid-run as they were when it was written, except those given explicitly (see
    /// [`Runner::with_overrides`]), which win; refuses a checkpoint made for another graph or
    /// shape. `step` (1-based) labels the [`RestoreNote`] it returns.
    pub fn restore_checkpoint(
        &mut self,
        path: &Path,
        step: usize,
    ) -> Result<RestoreNote, CheckpointError> {
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
        let mut scene = self.scene.clone();
        scene.take_midrun_settings(&saved);
        let taken = scene.clone();
        for assignment in &self.overrides {
            let Some((field, value)) = assignment.split_once('=') else {
                continue;
            };
            let section = field.trim().split(['.', '[']).next().unwrap_or("");
            if crate::scene::MIDRUN_SECTIONS.contains(&section) {
                scene.apply_set_midrun(field, value).map_err(|e| {
                    CheckpointError::Incompatible {
                        path: path.display().to_string(),
                        what: format!(
                            "the override {assignment} does not fit the checkpoint's settings: {e}"
                        ),
                    }
                })?;
            }
        }
        let mut note = RestoreNote {
            step,
            path: path.display().to_string(),
            from_checkpoint: midrun_diff(&scene, &self.scene),
            kept_overrides: midrun_diff(&scene, &taken),
            encodings_replaced: false,
            hash: super::provenance::file_hash(path),
        };
        self.scene = scene;
        self.sim.apply_settings(&self.scene);
        let ours = self.sim.class_encodings();
        let replaced = ours.phase != ckpt.state.sim.enc_phase
            || ours.magnitude != ckpt.state.sim.enc_magnitude;
        self.sim.load_state(&ckpt.state.sim).map_err(|e| match e {
            StateError::Adapter(_) | StateError::Pending(_) | StateError::Length { .. } => {
                CheckpointError::Incompatible {
                    path: path.display().to_string(),
                    what: e.to_string(),
                }
            }
            _ => malformed(e.to_string()),
        })?;
        note.encodings_replaced = replaced;
        self.state = ckpt.state.runner;
        self.training = history.training;
        // Cached evaluation encodings came from the adapter, which may have been replaced.
        self.caches = Default::default();
        Ok(note)
    }
}
