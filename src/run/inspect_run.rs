//! `neurograph inspect --run DIR`: a finished (or unfinished) run's manifest and summary, read
//! back from its directory and printed for people.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::inspect::InspectError;
use super::outdir::{MANIFEST_FILE, SUMMARY_FILE};

/// A run directory's manifest and, when the run finished, its summary.
pub struct RunSummary {
    dir: PathBuf,
    manifest: Value,
    summary: Option<Value>,
}

fn read_json(path: &Path) -> Result<Value, InspectError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| InspectError::Read {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| InspectError::NotJson {
        path: shown,
        source,
    })
}

impl RunSummary {
    /// Reads `dir/manifest.json` and, if present, `dir/summary.json`.
    pub fn read(dir: &Path) -> Result<RunSummary, InspectError> {
        let manifest = read_json(&dir.join(MANIFEST_FILE))?;
        let summary_path = dir.join(SUMMARY_FILE);
        let summary = if summary_path.exists() {
            Some(read_json(&summary_path)?)
        } else {
            None
        };
        Ok(RunSummary {
            dir: dir.to_path_buf(),
            manifest,
            summary,
        })
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn num(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_f64)
        .map_or("-".into(), |x| format!("{x:.4}"))
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "run {}", self.dir.display())?;
        for key in [
            "scene",
            "seed",
            "inputs_hash",
            "scene_hash",
            "executor",
            "threads",
            "eval_replicas",
            "started",
            "finished",
        ] {
            writeln!(f, "  {key:<24}{}", text(&m[key]))?;
        }
        if let Some(p) = m.get("provenance").filter(|p| p.is_object()) {
            writeln!(f, "provenance")?;
            for key in [
                "git_commit",
                "git_dirty",
                "crate_version",
                "features",
                "radiation_backend",
                "host",
                "cores",
                "data",
            ] {
                writeln!(f, "  {key:<24}{}", text(&p[key]))?;
            }
            let line = p["command_line"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            writeln!(f, "  {:<24}{line}", "command_line")?;
            for (what, key) in [
                ("input file", "input_files"),
                ("restored", "restored_checkpoints"),
            ] {
                for file in p[key].as_array().into_iter().flatten() {
                    writeln!(
                        f,
                        "  {what:<24}{} fnv1a64 {}",
                        text(&file["path"]),
                        text(&file["fnv1a64"])
                    )?;
                }
            }
        } else {
            writeln!(f, "provenance              - (written by an older version)")?;
        }
        let Some(s) = &self.summary else {
            return writeln!(f, "no summary.json: the run has not finished");
        };
        let training = s["training"].as_array().cloned().unwrap_or_default();
        if !training.is_empty() {
            writeln!(f, "epoch   samples      loss  accuracy  coverage")?;
            for e in &training {
                writeln!(
                    f,
                    "{:<7} {:>7} {:>9} {:>9} {:>9}",
                    text(&e["epoch"]),
                    text(&e["samples"]),
                    num(e, "loss"),
                    num(e, "accuracy"),
                    num(e, "coverage")
                )?;
            }
        }
        let evaluations = s["evaluations"].as_array().cloned().unwrap_or_default();
        if !evaluations.is_empty() {
            writeln!(
                f,
                "step  epochs     seen split   samples  accuracy  coverage      loss"
            )?;
            for e in &evaluations {
                writeln!(
                    f,
                    "{:<5} {:>6} {:>8} {:<7} {:>7} {:>9} {:>9} {:>9}",
                    text(&e["step"]),
                    text(&e["after_epochs"]),
                    text(&e["samples_seen"]),
                    text(&e["split"]),
                    text(&e["samples"]),
                    num(e, "accuracy"),
                    num(e, "coverage"),
                    num(e, "mean_loss")
                )?;
            }
        }
        if let Some(b) = s.get("baseline").filter(|b| b.is_object()) {
            writeln!(
                f,
                "baseline: nearest class mean {} on {} test samples (chance {})",
                num(b, "nearest_class_mean"),
                text(&b["samples"]),
                num(b, "chance")
            )?;
        }
        Ok(())
    }
}
