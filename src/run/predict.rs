//! `neurograph predict`: a trained model's predictions for an IDX file of new images.

use std::fmt::Write as _;
use std::path::Path;

use crate::data::{DataError, read_images, read_labels};
use crate::export::{Model, ModelError};
use crate::sim::{SampleOutcome, Simulation};

/// One image's prediction.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Index of the image in its file.
    pub index: usize,
    /// Predicted class (`None`: no output became active).
    pub prediction: Option<u8>,
    /// Logits, one per class (empty when no output was active).
    pub logits: Vec<f32>,
    /// Timesteps the pass ran.
    pub timesteps: u32,
    /// The label, when labels were given.
    pub label: Option<u8>,
}

impl Prediction {
    /// Whether the prediction equals the label (`None` without a label).
    pub fn correct(&self) -> Option<bool> {
        self.label.map(|l| self.prediction == Some(l))
    }
}

/// Runs one evaluation pass (no dropout) per image of `pixels` bytes in `images`.
pub fn predict(
    sim: &mut Simulation,
    images: &[u8],
    labels: Option<&[u8]>,
    mut each: impl FnMut(usize) -> bool,
) -> Vec<Prediction> {
    let pixels = sim.pixels();
    let mut out = Vec::with_capacity(images.len() / pixels.max(1));
    for (index, image) in images.chunks_exact(pixels).enumerate() {
        if !each(index) {
            break;
        }
        let label = labels.map(|l| l[index]);
        let outcome = sim.run_image(image, label.unwrap_or(0));
        out.push(Prediction {
            index,
            prediction: outcome.prediction,
            logits: outcome.logits,
            timesteps: outcome.timesteps,
            label,
        });
    }
    out
}

/// The predictions as CSV: `index,prediction,timesteps[,label,correct],logit_0..logit_{C-1}`
/// (an empty prediction and empty logits when no output was active).
pub fn csv(predictions: &[Prediction], classes: usize, labelled: bool) -> String {
    let mut s = String::from("index,prediction,timesteps");
    if labelled {
        s.push_str(",label,correct");
    }
    for c in 0..classes {
        let _ = write!(s, ",logit_{c}");
    }
    s.push('\n');
    for p in predictions {
        let pred = p.prediction.map_or(String::new(), |c| c.to_string());
        let _ = write!(s, "{},{pred},{}", p.index, p.timesteps);
        if let Some(label) = p.label {
            let _ = write!(s, ",{label},{}", p.correct() == Some(true));
        }
        push_logits(&mut s, &p.logits, classes);
        s.push('\n');
    }
    s
}

/// Appends `,z_0,..,z_{C-1}` (empty cells where there are no logits).
fn push_logits(s: &mut String, logits: &[f32], classes: usize) {
    for c in 0..classes {
        match logits.get(c) {
            Some(z) => {
                let _ = write!(s, ",{z}");
            }
            None => s.push(','),
        }
    }
}

/// An evaluation's per-sample outcomes as CSV (`Evaluate(predictions: true)`):
/// `index,label,prediction,loss,timesteps,active_outputs,logit_0..logit_{C-1}`; prediction,
/// loss and logits are empty for a sample with no active output.
pub fn outcomes_csv(outcomes: &[SampleOutcome], classes: usize) -> String {
    let mut s = String::from("index,label,prediction,loss,timesteps,active_outputs");
    for c in 0..classes {
        let _ = write!(s, ",logit_{c}");
    }
    s.push('\n');
    for (i, o) in outcomes.iter().enumerate() {
        let pred = o.prediction.map_or(String::new(), |c| c.to_string());
        let loss = o.loss.map_or(String::new(), |l| l.to_string());
        let _ = write!(
            s,
            "{i},{},{pred},{loss},{},{}",
            o.label, o.timesteps, o.active_outputs
        );
        push_logits(&mut s, &o.logits, classes);
        s.push('\n');
    }
    s
}

/// Why `predict` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The images or labels could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The images do not fit the model, or the labels do not fit the images.
    #[error("{0}")]
    Mismatch(String),
    /// The CSV could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What a prediction run gave.
#[derive(Debug, serde::Serialize)]
pub struct PredictSummary {
    /// Images predicted.
    pub images: usize,
    /// Accuracy over them, when labels were given.
    pub accuracy: Option<f64>,
    /// Images for which no output became active.
    pub uncovered: usize,
    /// The per-image predictions.
    pub predictions: Vec<Prediction>,
}

/// Loads the model in `ckpt`, predicts every image of the IDX file `images` (with `labels`,
/// the accuracy too) and writes the CSV to `out` atomically when given.
pub fn predict_files(
    ckpt: &Path,
    images: &Path,
    labels: Option<&Path>,
    out: Option<&Path>,
    each: impl FnMut(usize) -> bool,
) -> Result<PredictSummary, PredictError> {
    let mut model = Model::load(ckpt)?;
    let set = read_images(images)?;
    let pixels = set.rows * set.cols;
    if pixels != model.sim.pixels() {
        return Err(PredictError::Mismatch(format!(
            "{} holds {}x{} images ({pixels} pixels) but the model in {} takes {} pixels",
            images.display(),
            set.rows,
            set.cols,
            ckpt.display(),
            model.sim.pixels()
        )));
    }
    let labels = match labels {
        Some(path) => {
            let l = read_labels(path)?;
            if l.len() != set.count {
                return Err(PredictError::Mismatch(format!(
                    "{} holds {} labels but {} holds {} images",
                    path.display(),
                    l.len(),
                    images.display(),
                    set.count
                )));
            }
            Some(l)
        }
        None => None,
    };
    let predictions = predict(&mut model.sim, &set.pixels, labels.as_deref(), each);
    let classes = model.scene.architecture.classes as usize;
    if let Some(out) = out {
        crate::atomic::write(out, csv(&predictions, classes, labels.is_some()).as_bytes())
            .map_err(|source| PredictError::Write {
                path: out.display().to_string(),
                source,
            })?;
    }
    let correct = predictions
        .iter()
        .filter(|p| p.correct() == Some(true))
        .count();
    Ok(PredictSummary {
        images: predictions.len(),
        accuracy: (labels.is_some() && !predictions.is_empty())
            .then(|| correct as f64 / predictions.len() as f64),
        uncovered: predictions
            .iter()
            .filter(|p| p.prediction.is_none())
            .count(),
        predictions,
    })
}
