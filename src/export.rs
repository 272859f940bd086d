//! Trained models out of the tool: a model rebuilt from a checkpoint, and its export as named
//! tensors in a safetensors file (readable with the `safetensors` Python package from numpy
//! or PyTorch).
//!
//! # Tensors (format version 1)
//!
//! | name | dtype | shape | what |
//! |---|---|---|---|
//! | `nodes.phase`, `nodes.magnitude` | I32 | (nodes, D) | θφ, θμ of every node |
//! | `classes.phase`, `classes.magnitude` | I32 | (C, D) | class encoding indices |
//! | `classes.signals` | F32 | (C, D) | `cosT[φ]·A[μ]` of each class encoding |
//! | `adapter.w1`, `adapter.w2`, `adapter.w3` | F32 | (H, P), (H, H), (I·D·2, H) | MLP adapter weights (`adapter: Mlp`) |
//! | `adapter.w` | F32 | (I·D·2, P) | linear adapter weights (`adapter: Linear`) |
//! | `graph.indptr` | I64 | (nodes + 1) | CSR row offsets of the static successors |
//! | `graph.indices` | I32 | (edges) | CSR successor indices |
//! | `shadows.nodes.phase`, `shadows.nodes.magnitude` | F32 | (nodes, D) | float shadows (float optimizers, after their first step) |
//! | `shadows.classes.phase`, `shadows.classes.magnitude` | F32 | (C, D) | the encodings' shadows |
//!
//! Inputs are nodes `0..I`, outputs the last `O`. The metadata holds `format`
//! (`neurograph-model`), `format_version`, `scene` (the resolved scene, RON), `crate_version`,
//! the sizes, `adapter`, `pixels`, `samples_seen` and `epochs_done`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::model::adapter::InputAdapter;
use crate::scene::{self, Scene};
use crate::sim::resources::{Adapter, Encodings, Topology};
use crate::sim::{SimError, Simulation, StateError};

/// The export format version this build writes.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// Why a model could not be loaded or exported.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The scene stored in the checkpoint does not parse or validate.
    #[error("checkpoint {path}: its stored scene is invalid: {message}")]
    Scene {
        /// The checkpoint.
        path: String,
        /// The scene error.
        message: String,
    },
    /// The stored adapter does not fit any image size.
    #[error("checkpoint {path}: {message}")]
    Malformed {
        /// The checkpoint.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The model could not be built.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The stored state does not fit the model.
    #[error("checkpoint {path}: {source}")]
    State {
        /// The checkpoint.
        path: String,
        /// The mismatch.
        #[source]
        source: StateError,
    },
    /// Writing the export failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The output file.
        path: String,
        /// The error.
        message: String,
    },
}

/// A trained model: the scene it was saved with and a world holding its state.
pub struct Model {
    /// The resolved scene stored in the checkpoint.
    pub scene: Scene,
    /// The world, with the checkpoint's persistent state loaded.
    pub sim: Simulation,
    /// The checkpoint it came from.
    pub checkpoint: Checkpoint,
}

impl Model {
    /// Rebuilds the model a checkpoint holds: its scene, a world of that scene for images of
    /// the size its adapter was drawn for, and the stored state.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let shown = path.display().to_string();
        let checkpoint = checkpoint::load(path)?;
        let scene =
            scene::parse(&checkpoint.scene_text, &shown).map_err(|e| ModelError::Scene {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        let pixels =
            adapter_pixels(&scene, checkpoint.state.sim.adapter.len()).ok_or_else(|| {
                ModelError::Malformed {
                    path: shown.clone(),
                    message: format!(
                        "its {} adapter weights fit no image size for its scene",
                        checkpoint.state.sim.adapter.len()
                    ),
                }
            })?;
        let mut sim = Simulation::for_images(&scene, pixels)?;
        sim.load_state(&checkpoint.state.sim)
            .map_err(|source| ModelError::State {
                path: shown,
                source,
            })?;
        Ok(Model {
            scene,
            sim,
            checkpoint,
        })
    }
}

/// The image size (pixels) an adapter of `weights` weights was drawn for under `scene`.
pub fn adapter_pixels(scene: &Scene, weights: usize) -> Option<usize> {
    let out = scene.architecture.input_nodes as usize * scene.architecture.vector_dim as usize * 2;
    let pixels = match scene.adapter {
        scene::Adapter::Mlp { hidden, .. } => {
            let h = hidden as usize;
            let rest = weights.checked_sub(h * h + out * h)?;
            (h > 0 && rest.is_multiple_of(h)).then_some(rest / h)?
        }
        scene::Adapter::Linear => {
            (out > 0 && weights.is_multiple_of(out)).then_some(weights / out)?
        }
    };
    (pixels > 0).then_some(pixels)
}

/// One named tensor: dtype, shape and little-endian bytes.
pub struct Tensor {
    /// The name.
    pub name: String,
    /// The element type.
    pub dtype: Dtype,
    /// The shape.
    pub shape: Vec<usize>,
    /// The data, little-endian, row-major.
    pub bytes: Vec<u8>,
}

impl Tensor {
    fn new<T: Copy, const N: usize>(
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        values: impl IntoIterator<Item = T>,
        le: fn(T) -> [u8; N],
    ) -> Tensor {
        Tensor {
            name: name.to_string(),
            dtype,
            shape: shape.to_vec(),
            bytes: values.into_iter().flat_map(le).collect(),
        }
    }

    fn indices(name: &str, shape: &[usize], values: &[u16]) -> Tensor {
        Tensor::new(
            name,
            Dtype::I32,
            shape,
            values.iter().map(|&v| i32::from(v)),
            i32::to_le_bytes,
        )
    }

    fn floats(name: &str, shape: &[usize], values: &[f32]) -> Tensor {
        Tensor::new(
            name,
            Dtype::F32,
            shape,
            values.iter().copied(),
            f32::to_le_bytes,
        )
    }
}

/// The model's tensors (see the module docs), from the world's current state.
pub fn tensors(sim: &mut Simulation) -> Vec<Tensor> {
    let state = sim.save_state();
    let dim = sim.settings().dim;
    let n = sim.settings().total_nodes as usize;
    let world = sim.world();
    let enc = &world.resource::<Encodings>().0;
    let classes = enc.classes;
    let mut out = vec![
        Tensor::indices("nodes.phase", &[n, dim], &state.phase),
        Tensor::indices("nodes.magnitude", &[n, dim], &state.magnitude),
        Tensor::indices("classes.phase", &[classes, dim], &state.enc_phase),
        Tensor::indices("classes.magnitude", &[classes, dim], &state.enc_magnitude),
        Tensor::floats("classes.signals", &[classes, dim], &enc.signals),
    ];
    let weights = &state.adapter;
    match &*world.resource::<Adapter>().0 {
        InputAdapter::Mlp(m) => {
            let (p, h, o) = (m.pixels(), m.hidden(), m.output_len());
            let (w1, rest) = weights.split_at(h * p);
            let (w2, w3) = rest.split_at(h * h);
            out.push(Tensor::floats("adapter.w1", &[h, p], w1));
            out.push(Tensor::floats("adapter.w2", &[h, h], w2));
            out.push(Tensor::floats("adapter.w3", &[o, h], w3));
        }
        InputAdapter::Linear(l) => {
            out.push(Tensor::floats(
                "adapter.w",
                &[l.output_len(), l.pixels()],
                weights,
            ));
        }
    }
    let successors = &world.resource::<Topology>().graph.successors;
    out.push(Tensor::new(
        "graph.indptr",
        Dtype::I64,
        &[successors.offsets.len()],
        successors.offsets.iter().map(|&o| i64::from(o)),
        i64::to_le_bytes,
    ));
    out.push(Tensor::new(
        "graph.indices",
        Dtype::I32,
        &[successors.items.len()],
        successors.items.iter().map(|&i| i as i32),
        i32::to_le_bytes,
    ));
    if !state.shadows.is_empty() {
        let (cells, encs) = (n * dim, classes * dim);
        let s = &state.shadows;
        for (name, range, rows) in [
            ("shadows.nodes.phase", 0..cells, n),
            ("shadows.nodes.magnitude", cells..2 * cells, n),
            (
                "shadows.classes.phase",
                2 * cells..2 * cells + encs,
                classes,
            ),
            (
                "shadows.classes.magnitude",
                2 * cells + encs..2 * (cells + encs),
                classes,
            ),
        ] {
            if let Some(values) = s.get(range) {
                out.push(Tensor::floats(name, &[rows, dim], values));
            }
        }
    }
    out
}

/// The metadata of an export of `sim` built from `scene`.
pub fn metadata(
    sim: &Simulation,
    scene: &Scene,
    samples_seen: u64,
    epochs_done: u32,
) -> HashMap<String, String> {
    let a = &scene.architecture;
    let adapter = match scene.adapter {
        scene::Adapter::Mlp { .. } => "mlp",
        scene::Adapter::Linear => "linear",
    };
    [
        ("format", "neurograph-model".to_string()),
        ("format_version", EXPORT_FORMAT_VERSION.to_string()),
        ("scene", scene.to_ron()),
        ("crate_version", env!("CARGO_PKG_VERSION").to_string()),
        ("nodes", a.total_nodes.to_string()),
        ("input_nodes", a.input_nodes.to_string()),
        ("output_nodes", a.output_nodes.to_string()),
        ("dim", a.vector_dim.to_string()),
        ("classes", a.classes.to_string()),
        ("phase_bins", scene.resolution.phase_bins.to_string()),
        (
            "magnitude_bins",
            scene.resolution.magnitude_bins.to_string(),
        ),
        ("adapter", adapter.to_string()),
        ("pixels", sim.pixels().to_string()),
        ("samples_seen", samples_seen.to_string()),
        ("epochs_done", epochs_done.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes `tensors` and `metadata` to `out` as safetensors, atomically.
pub fn write(
    out: &Path,
    tensors: &[Tensor],
    metadata: HashMap<String, String>,
) -> Result<(), ModelError> {
    let fail = |message: String| ModelError::Write {
        path: out.display().to_string(),
        message,
    };
    let views = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| fail(format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
    crate::atomic::write(out, &bytes).map_err(|e| fail(e.to_string()))
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    /// The file.
    pub path: String,
    /// Tensor names with their shapes, in export order.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// File size in bytes.
    pub bytes: u64,
}

/// `neurograph export`: the model in checkpoint `ckpt`, written to `out`.
pub fn export_checkpoint(ckpt: &Path, out: &Path) -> Result<ExportSummary, ModelError> {
    let mut model = Model::load(ckpt)?;
    let runner = &model.checkpoint.state.runner;
    let meta = metadata(
        &model.sim,
        &model.scene,
        runner.samples_seen,
        runner.epochs_done,
    );
    let tensors = tensors(&mut model.sim);
    write(out, &tensors, meta)?;
    Ok(ExportSummary {
        path: out.display().to_string(),
        tensors: tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect(),
        bytes: std::fs::metadata(out).map_or(0, |m| m.len()),
    })
}
