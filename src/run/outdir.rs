//! A run's output directory and the files written into it:
//!
//! - `metrics.jsonl`: one [`EpochMetrics`] JSON object per line, appended and fsynced per epoch,
//!   and one line per evaluation (`"kind": "evaluation"`, with its step, epochs done and
//!   samples seen) where it fell (rewritten whole, atomically, to the restored epochs after a
//!   `Restore`);
//! - `manifest.json`: what was run (scene, seed, executor, versions, times, and the
//!   [`inputs_hash`] that says whether two runs are the same experiment);
//! - `summary.json`: the final report, written last, so it marks a finished run;
//! - `curves.csv`: the per-epoch curves as a table;
//! - `curves.svg`: a plot of mean loss, accuracy and coverage per epoch;
//! - `.neurograph.lock`: the lock that keeps a second writer out ([`crate::lock`]).
//!
//! Every file except the append-only JSON Lines log is written atomically with
//! [`write_atomic`], so a crash never leaves half a file.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lock::{DirLock, LockError};
use crate::scene::{Scene, Schedule};

use super::plot::render_svg;
use super::report::EpochMetrics;

/// What makes two runs the same experiment, as a 16-digit hex hash: the scene after `--set`,
/// grid values and seed (its RON text, every field resolved), the crate version and the
/// compiled features. The `schedule` section is left out, because it changes how fast a run
/// goes and never what it computes (the determinism contract), and so is the `sweep` list,
/// which only `batch` reads (each grid point's values are in the scene already).
pub fn inputs_hash(scene: &Scene) -> String {
    let mut canonical = scene.clone();
    canonical.schedule = Schedule::default();
    canonical.sweep.clear();
    // Every radiation kernel gives identical targets.
    canonical.radiation.backend = crate::radiation::BackendChoice::default();
    let mut text = canonical.to_ron();
    text.push_str(&format!(
        "crate_version={}\nfeatures={}\n",
        env!("CARGO_PKG_VERSION"),
        if cfg!(feature = "table-activation") {
            "table-activation"
        } else {
            ""
        }
    ));
    format!("{:016x}", crate::hash::fnv1a64(text.as_bytes()))
}

/// What to do with a run directory that holds another run's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it (the default of `neurograph run`).
    Refuse,
    /// Replace it whole (`--overwrite`; also what a batch does to a run whose inputs changed).
    Replace,
}

/// Why a run directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutDirError {
    /// Another writer holds it.
    #[error(transparent)]
    Busy(#[from] LockError),
    /// It holds files of another run (or other files) and replacing was not asked for.
    #[error(
        "{dir} already holds {holds}; a run never mixes its files with another's: pass \
         --overwrite to replace it, or choose another --out"
    )]
    Occupied {
        /// The directory.
        dir: String,
        /// What it holds, in words.
        holds: String,
    },
    /// It could not be read or cleared.
    #[error("{dir}: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What a directory holds before a run writes into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Previous {
    /// Nothing, or only a lock file.
    Empty,
    /// A run's files: its manifest names the scene.
    Run {
        /// The scene's name.
        scene: String,
        /// The manifest's inputs hash (`None` in manifests written before it existed).
        inputs: Option<String>,
        /// Whether `summary.json` was written (the run finished).
        finished: bool,
    },
    /// Files that are not a run's (no readable `manifest.json`): how many, and the first.
    Other {
        /// Entries besides the lock file.
        entries: usize,
        /// The first of them, by name.
        first: String,
    },
}

impl Previous {
    /// Looks at `dir` (a directory that does not exist is [`Previous::Empty`]).
    pub fn read(dir: &Path) -> io::Result<Previous> {
        let entries = crate::lock::contents(dir)?;
        let Some(first) = entries.first() else {
            return Ok(Previous::Empty);
        };
        let manifest = fs::read_to_string(dir.join(MANIFEST_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let Some(manifest) = manifest.filter(|m| m.get("scene").is_some()) else {
            return Ok(Previous::Other {
                entries: entries.len(),
                first: first
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            });
        };
        let finished = fs::read_to_string(dir.join(SUMMARY_FILE))
            .ok()
            .is_some_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(&t).is_ok());
        Ok(Previous::Run {
            scene: manifest["scene"].as_str().unwrap_or("?").to_string(),
            inputs: manifest
                .get("inputs_hash")
                .and_then(|h| h.as_str())
                .map(str::to_string),
            finished,
        })
    }

    /// Whether this is a finished run of the inputs `inputs`.
    pub fn is_finished_run_of(&self, inputs: &str) -> bool {
        matches!(self, Previous::Run { inputs: Some(h), finished: true, .. } if h == inputs)
    }

    /// In words, compared with a run of the inputs `inputs`.
    pub fn describe(&self, inputs: &str) -> String {
        match self {
            Previous::Empty => "nothing".to_string(),
            Previous::Run {
                scene,
                inputs: theirs,
                finished,
            } => {
                let state = if *finished { "finished" } else { "unfinished" };
                let same = match theirs {
                    Some(h) if h == inputs => "the same inputs".to_string(),
                    Some(h) => format!("other inputs (inputs hash {h}, this run's {inputs})"),
                    None => "inputs an older version did not record".to_string(),
                };
                format!("a {state} run of scene {scene:?} with {same}")
            }
            Previous::Other { entries, first } => {
                format!("{entries} file(s) that are not a run's (e.g. {first})")
            }
        }
    }
}

/// Name of the per-epoch JSON Lines log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Name of the run manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the final summary.
pub const SUMMARY_FILE: &str = "summary.json";
/// Name of the curves table.
pub const CURVES_CSV_FILE: &str = "curves.csv";
/// Name of the curves plot.
pub const CURVES_SVG_FILE: &str = "curves.svg";

/// A run's output directory, held (see [`crate::lock`]) for as long as this value or a clone
/// of it lives.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: Option<Arc<DirLock>>,
}

impl RunDir {
    /// Where a run of `scene` writes when no directory is given: `runs/<scene>-<seed>`.
    pub fn default_path(scene: &Scene) -> PathBuf {
        PathBuf::from("runs").join(format!("{}-{}", scene.name, scene.seed))
    }

    /// Creates the directory (and its parents) if needed, without taking it: for writing
    /// into a directory some other owner already holds.
    pub fn unlocked(path: &Path) -> io::Result<RunDir> {
        fs::create_dir_all(path)?;
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: None,
        })
    }

    /// Takes the directory for a run whose inputs hash (see [`inputs_hash`]) is `inputs`:
    /// creates and locks it, then looks at what it holds. An empty directory, or one holding an
    /// unfinished run of the same inputs (an interrupted attempt, restarted from scratch), is
    /// cleared and used; anything else is refused with [`Existing::Refuse`] and cleared with
    /// [`Existing::Replace`]. So a run never mixes its files with another's.
    pub fn open(path: &Path, inputs: &str, existing: Existing) -> Result<RunDir, OutDirError> {
        let lock = DirLock::acquire(path)?;
        let io_error = |source| OutDirError::Io {
            dir: path.display().to_string(),
            source,
        };
        let previous = Previous::read(path).map_err(io_error)?;
        let restartable = matches!(
            &previous,
            Previous::Run { inputs: Some(h), finished: false, .. } if h == inputs
        );
        if previous != Previous::Empty && !restartable && existing == Existing::Refuse {
            return Err(OutDirError::Occupied {
                dir: path.display().to_string(),
                holds: previous.describe(inputs),
            });
        }
        crate::lock::clear(&lock).map_err(io_error)?;
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: Some(Arc::new(lock)),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path named by the user: an absolute path is kept, a relative one lives inside the
    /// run directory.
    pub fn resolve(&self, relative_or_absolute: &str) -> PathBuf {
        let p = Path::new(relative_or_absolute);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.join(p)
        }
    }

    /// Appends one line to `metrics.jsonl`, flushed and fsynced before returning.
    pub fn append_metrics(&self, m: &EpochMetrics) -> io::Result<()> {
        self.append_line(serde_json::to_string(m).map_err(io::Error::other)?)
    }

    /// Appends an evaluation to `metrics.jsonl` as a line with `"kind": "evaluation"` (its
    /// script step, epochs done and samples seen included), between the epochs it fell in.
    pub fn append_evaluation(&self, e: &super::report::Evaluation) -> io::Result<()> {
        let mut v = serde_json::to_value(e).map_err(io::Error::other)?;
        if let Some(map) = v.as_object_mut() {
            map.insert("kind".into(), "evaluation".into());
        }
        self.append_line(v.to_string())
    }

    fn append_line(&self, mut line: String) -> io::Result<()> {
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(METRICS_FILE))?;
        f.write_all(line.as_bytes())?;
        f.flush()?;
        f.sync_data()
    }

    /// Replaces `metrics.jsonl` atomically with one line per epoch of `epochs` (after a
    /// `Restore`, whose history replaces the epochs logged since the checkpoint).
    pub fn rewrite_metrics(&self, epochs: &[EpochMetrics]) -> io::Result<()> {
        let mut text = String::new();
        for m in epochs {
            text.push_str(&serde_json::to_string(m).map_err(io::Error::other)?);
            text.push('\n');
        }
        write_atomic(&self.path.join(METRICS_FILE), text.as_bytes())
    }

    /// Writes `manifest.json` (pretty-printed) atomically.
    pub fn write_manifest(&self, manifest: &serde_json::Value) -> io::Result<()> {
        self.write_json(MANIFEST_FILE, manifest)
    }

    /// Writes `summary.json` (pretty-printed) atomically.
    pub fn write_summary(&self, summary: &serde_json::Value) -> io::Result<()> {
        self.write_json(SUMMARY_FILE, summary)
    }

    fn write_json(&self, name: &str, value: &serde_json::Value) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic(&self.path.join(name), &bytes)
    }

    /// Writes `curves.csv` atomically: a header row, then one row per epoch; a missing loss
    /// is an empty cell.
    pub fn write_curves_csv(&self, epochs: &[EpochMetrics]) -> io::Result<()> {
        write_atomic(
            &self.path.join(CURVES_CSV_FILE),
            curves_csv(epochs).as_bytes(),
        )
    }

    /// Writes `curves.svg` (see [`render_svg`]) atomically.
    pub fn write_plot(&self, epochs: &[EpochMetrics], title: &str) -> io::Result<()> {
        write_atomic(
            &self.path.join(CURVES_SVG_FILE),
            render_svg(epochs, title).as_bytes(),
        )
    }

    /// Writes `curves.svg` with held-out evaluations and a chance line (see
    /// [`super::plot::render_curves`]) atomically.
    pub fn write_curves_plot(
        &self,
        epochs: &[EpochMetrics],
        evaluations: &[super::report::Evaluation],
        chance: f64,
        title: &str,
    ) -> io::Result<()> {
        let held = super::plot::held_out_points(epochs, evaluations);
        let svg = super::plot::render_curves(epochs, &held, Some(chance), title);
        write_atomic(&self.path.join(CURVES_SVG_FILE), svg.as_bytes())
    }
}

/// The CSV text of [`RunDir::write_curves_csv`].
pub fn curves_csv(epochs: &[EpochMetrics]) -> String {
    let mut s = String::from(
        "epoch,samples,loss,accuracy,coverage,updates_applied,parameters_changed,\
         samples_per_second,mean_timesteps,mean_active_nodes,seconds\n",
    );
    for m in epochs {
        let loss = m.loss.map(|l| l.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            m.epoch,
            m.samples,
            loss,
            m.accuracy,
            m.coverage,
            m.updates_applied,
            m.parameters_changed,
            m.samples_per_second,
            m.mean_timesteps,
            m.mean_active_nodes,
            m.seconds
        );
    }
    s
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::atomic::write(path, bytes)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::tests::series;

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != crate::lock::LOCK_FILE)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn resolve_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::unlocked(&dir.path().join("runs/quick-7")).unwrap();
        assert!(run.path().is_dir());
        assert_eq!(run.resolve("model.ckpt"), run.path().join("model.ckpt"));
        assert_eq!(run.resolve("sub/a.ckpt"), run.path().join("sub/a.ckpt"));
        let abs = dir.path().join("elsewhere.ckpt");
        assert_eq!(run.resolve(abs.to_str().unwrap()), abs);
        // Creating an existing directory is fine.
        RunDir::unlocked(run.path()).unwrap();
    }

    #[test]
    fn jsonl_appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::unlocked(dir.path()).unwrap();
        let mut written = series(3);
        written[1].loss = None;
        for m in &written {
            run.append_metrics(m).unwrap();
        }
        let text = fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert!(text.ends_with('\n'));
        let back: Vec<EpochMetrics> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, written);
        assert!(text.lines().nth(1).unwrap().contains("\"loss\":null"));
    }

    #[test]
    fn csv_content() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::unlocked(dir.path()).unwrap();
        let mut m = series(2);
        m[0].loss = None;
        m[1].loss = Some(1.5);
        run.write_curves_csv(&m).unwrap();
        let text = fs::read_to_string(dir.path().join(CURVES_CSV_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "epoch,samples,loss,accuracy,coverage,updates_applied,parameters_changed,\
             samples_per_second,mean_timesteps,mean_active_nodes,seconds"
        );
        assert_eq!(lines[1], "1,100,,0.13,0.9,80,1234,250.5,7.25,312,0.4");
        assert_eq!(lines[2], "2,100,1.5,0.16,0.9,80,1234,250.5,7.25,312,0.4");
        let columns = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));
    }

    #[test]
    fn manifest_and_summary_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::unlocked(dir.path()).unwrap();
        let manifest = serde_json::json!({"scene": "quickstart", "seed": 7, "end": null});
        run.write_manifest(&manifest).unwrap();
        let manifest = serde_json::json!({"scene": "quickstart", "seed": 7, "end": "now"});
        run.write_manifest(&manifest).unwrap();
        let summary = serde_json::json!({"training": [], "evaluations": [{"accuracy": 0.5}]});
        run.write_summary(&summary).unwrap();
        run.write_curves_csv(&series(2)).unwrap();
        run.write_plot(&series(2), "t").unwrap();
        assert_eq!(
            file_names(dir.path()),
            vec![
                CURVES_CSV_FILE,
                CURVES_SVG_FILE,
                MANIFEST_FILE,
                SUMMARY_FILE
            ]
        );
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_str(&fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
        };
        assert_eq!(read(MANIFEST_FILE), manifest);
        assert_eq!(read(SUMMARY_FILE), summary);
    }

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("new/deep/out.txt");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(file_names(target.parent().unwrap()), vec!["out.txt"]);
        // Renaming onto a non-empty directory fails; the temporary file is removed.
        let blocker = dir.path().join("blocker");
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), b"x").unwrap();
        assert!(write_atomic(&blocker, b"data").is_err());
        assert_eq!(file_names(dir.path()), vec!["blocker", "new"]);
    }
}
