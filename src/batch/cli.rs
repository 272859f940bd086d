//! `neurograph batch` as one library call: [`BatchArgs::run`] checks the arguments, expands
//! and shards the run matrix, shows progress, handles Ctrl-C, runs the batch and returns a
//! [`BatchReport`] with the counts per status; the binary only prints it and picks the exit
//! code.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::{self, Aggregate, RunRow, RunStatus};
use super::{BatchOptions, Progress, STOP, SceneEntry};
use crate::scene::SceneError;

/// The arguments of `neurograph batch` (a clap [`Args`](clap::Args) group: the field docs are
/// the command's help text).
#[derive(Clone, Debug, clap::Args)]
pub struct BatchArgs {
    /// Scene files.
    #[arg(required = true)]
    pub scenes: Vec<PathBuf>,
    /// Seeds: an inclusive range `1..10` or a list `3,7,9` (default: each scene's seed).
    #[arg(long)]
    pub seeds: Option<String>,
    /// A grid axis `FIELD=V1,V2,...` (repeatable; same field paths and validation as
    /// `--set`); the batch runs every combination, after the scene's own `sweep` axes.
    #[arg(long = "grid", value_name = "FIELD=V1,V2,...")]
    pub grid: Vec<String>,
    /// Runs at once; each run gets cores/jobs threads.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// The batch directory (one subdirectory per run, plus batch-summary.*).
    #[arg(long, default_value = "runs/batch")]
    pub out: PathBuf,
    /// Run only slice I of N (0 <= I < N; runs whose matrix index is I mod N). `auto` reads
    /// a Slurm job array (SLURM_ARRAY_TASK_ID, _MIN, _STEP and _COUNT) or a Kubernetes
    /// indexed Job (JOB_COMPLETION_INDEX; give its completions count as `auto/N`).
    #[arg(long, value_name = "I/N|auto|auto/N")]
    pub shard: Option<String>,
    /// Continue a batch in an existing directory (also what happens whenever it exists):
    /// runs that finished with the same inputs are skipped, unfinished ones restarted, and
    /// finished runs whose inputs changed (scene edited, other --set, another version) rerun.
    #[arg(long)]
    pub resume: bool,
    /// Refuse to start when a finished run's inputs changed, instead of rerunning it.
    #[arg(long)]
    pub refuse_changed: bool,
    /// Override a field of every scene, e.g. `--set training.epochs=3` (repeatable; applied
    /// before the grid; same paths and validation as `neurograph run --set`).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Print one JSON object (rows and aggregates) as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Progress on stderr: `bar` (live bars), `plain` (one line every --progress-every
    /// seconds, for logs such as Slurm's), `none`, or `auto` (bar on a terminal, else plain).
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Seconds between `plain` progress lines.
    #[arg(long, default_value_t = 60, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub progress_every: u64,
    /// No progress display (same as `--progress none`).
    #[arg(long, short)]
    pub quiet: bool,
}

/// How `neurograph batch` shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `bar` when stderr is a terminal, `plain` otherwise.
    Auto,
    /// Live progress bars.
    Bar,
    /// One line every `--progress-every` seconds.
    Plain,
    /// Nothing.
    None,
}

/// Why a batch could not start or could not write its summary. (A failing *run* is not an
/// error: it is a row with [`RunStatus::Failed`].)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// `--jobs 0`.
    #[error("--jobs must be at least 1")]
    NoJobs,
    /// `--resume` names a directory that does not exist.
    #[error("--resume: {out} does not exist, so there is no batch to resume")]
    NothingToResume {
        /// The batch directory.
        out: String,
    },
    /// `--seeds`, `--grid` or `--shard` does not parse; the message names the option.
    #[error("{0}")]
    Argument(String),
    /// A grid value is invalid for a scene (checked before anything runs).
    #[error("--grid {field}: {error}")]
    Grid {
        /// The grid axis's field.
        field: String,
        /// What the scene said about the value.
        error: SceneError,
    },
    /// A `--set` value is invalid for a scene.
    #[error("{scene}: --set: {error}")]
    Set {
        /// The scene file.
        scene: String,
        /// What the scene said about the value.
        error: SceneError,
    },
    /// Finished runs' inputs changed and `--refuse-changed` was given.
    #[error(
        "{} finished run(s) have other inputs than they would run with now \
         (--refuse-changed):\n{}",
        runs.len(),
        runs.join("\n")
    )]
    Changed {
        /// `directory: what it holds`, per run.
        runs: Vec<String>,
    },
    /// Another batch process writes this batch's summary.
    #[error(transparent)]
    Busy(#[from] crate::lock::LockError),
    /// The Ctrl-C handler could not be installed.
    #[error("installing the Ctrl-C handler")]
    CtrlC(#[source] ctrlc::Error),
    /// The batch summary could not be written.
    #[error("writing the batch summary in {out}")]
    Summary {
        /// The batch directory.
        out: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs per status in a [`BatchReport`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Ran to completion now.
    pub done: usize,
    /// Complete from an earlier invocation with the same inputs.
    pub skipped: usize,
    /// Complete from an earlier invocation, but rerun now because its inputs changed.
    pub rerun: usize,
    /// Ended with an error.
    pub failed: usize,
    /// Not run because of Ctrl-C.
    pub interrupted: usize,
}

impl StatusCounts {
    fn of(rows: &[RunRow]) -> StatusCounts {
        let count = |s: RunStatus| rows.iter().filter(|r| r.status == s).count();
        StatusCounts {
            done: count(RunStatus::Done),
            skipped: count(RunStatus::Skipped),
            rerun: count(RunStatus::Rerun),
            failed: count(RunStatus::Failed),
            interrupted: count(RunStatus::Interrupted),
        }
    }
}

/// How a batch ended.
///
/// Displays as the table `neurograph batch` prints: the aggregates, one line per failed run,
/// and the counts with where the summary is (each line ends in a newline).
#[derive(Clone, Debug)]
pub struct BatchReport {
    /// One row per run of this shard, in matrix order.
    pub rows: Vec<RunRow>,
    /// One aggregate per scene × grid point.
    pub aggregates: Vec<Aggregate>,
    /// Runs per status.
    pub counts: StatusCounts,
    /// The `batch-summary.csv` written.
    pub summary_csv: PathBuf,
}

impl BatchReport {
    /// The rows and aggregates as one JSON object (keys sorted, as `batch --json` prints it).
    pub fn to_json(&self) -> String {
        serde_json::json!({"rows": self.rows, "aggregates": self.aggregates}).to_string()
    }
}

impl fmt::Display for BatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", summary::aggregate_table(&self.aggregates))?;
        for row in self.rows.iter().filter(|r| r.status == RunStatus::Failed) {
            writeln!(
                f,
                "failed: {}: {}",
                row.dir,
                row.error.as_deref().unwrap_or("unknown error")
            )?;
        }
        let c = &self.counts;
        writeln!(
            f,
            "{} done, {} rerun because their inputs changed, {} already complete, {} failed, \
             {} not run; summary in {}",
            c.done,
            c.rerun,
            c.skipped,
            c.failed,
            c.interrupted,
            self.summary_csv.display()
        )
    }
}

impl BatchArgs {
    /// Checks the arguments (every grid value against every scene that loads, before anything
    /// runs), then runs this shard of the matrix with a progress display on stderr.
    ///
    /// The first Ctrl-C lets running runs finish and starts no new ones (they come back as
    /// [`RunStatus::Interrupted`]); a second one ends the process with status 130.
    pub fn run(&self) -> Result<BatchReport, BatchError> {
        if self.jobs == 0 {
            return Err(BatchError::NoJobs);
        }
        if self.resume && !self.out.is_dir() {
            return Err(BatchError::NothingToResume {
                out: self.out.display().to_string(),
            });
        }
        let seeds = self
            .seeds
            .as_deref()
            .map(super::parse_seeds)
            .transpose()
            .map_err(BatchError::Argument)?;
        let grid: Vec<_> = self
            .grid
            .iter()
            .map(|g| super::parse_grid(g))
            .collect::<Result<_, _>>()
            .map_err(BatchError::Argument)?;
        let mut scenes: Vec<SceneEntry> = self.scenes.iter().map(|p| SceneEntry::load(p)).collect();
        for entry in &mut scenes {
            if let Ok(scene) = &mut entry.scene {
                scene
                    .apply_sets(&self.sets)
                    .map_err(|error| BatchError::Set {
                        scene: entry.path.display().to_string(),
                        error,
                    })?;
            }
        }
        for scene in scenes.iter().filter_map(|e| e.scene.as_ref().ok()) {
            for axis in &grid {
                for value in &axis.values {
                    scene
                        .clone()
                        .apply_set(&format!("{}={value}", axis.field))
                        .map_err(|error| BatchError::Grid {
                            field: axis.field.clone(),
                            error,
                        })?;
                }
            }
        }
        let mut specs =
            super::expand(&scenes, seeds.as_deref(), &grid).map_err(BatchError::Argument)?;
        let total = specs.len();
        let mut summary_dir = self.out.clone();
        if let Some(s) = &self.shard {
            let (i, n) = super::resolve_shard(s, &|k| std::env::var(k).ok())
                .map_err(BatchError::Argument)?;
            specs = super::shard(specs, i, n);
            summary_dir = self.out.join(format!("shard-{i}-of-{n}"));
        }
        // One writer per summary; runs are locked one by one as they start.
        let _lock = crate::lock::DirLock::acquire(&summary_dir)?;
        let changed: Vec<String> = specs
            .iter()
            .filter_map(|spec| match super::found(spec, &scenes, &self.out) {
                super::Found::Changed(what) => Some(format!("  {}: {what}", spec.dir_name)),
                _ => None,
            })
            .collect();
        if !changed.is_empty() {
            if self.refuse_changed {
                return Err(BatchError::Changed { runs: changed });
            }
            eprintln!(
                "batch: {} finished run(s) have other inputs now and will be rerun \
                 (--refuse-changed refuses instead):\n{}",
                changed.len(),
                changed.join("\n")
            );
        }
        let cores = crate::sim::resolve_threads(0);
        let opts = BatchOptions {
            jobs: self.jobs,
            cores,
            out: self.out.clone(),
            quiet: self.quiet,
            summary_dir: summary_dir.clone(),
            sets: self.sets.clone(),
        };
        install_ctrlc_handler()?;
        eprintln!(
            "batch: {} runs of {} in the matrix, {} at once with {} thread(s) each, in {}",
            specs.len(),
            total,
            self.jobs,
            (cores / self.jobs).max(1),
            self.out.display()
        );
        let mode = match (self.quiet || self.json, self.progress) {
            (true, _) | (_, ProgressMode::None) => ProgressMode::None,
            (false, ProgressMode::Auto) if std::io::stderr().is_terminal() => ProgressMode::Bar,
            (false, ProgressMode::Auto) => ProgressMode::Plain,
            (false, mode) => mode,
        };
        let display = Display::new(
            mode,
            specs.len(),
            self.jobs,
            Duration::from_secs(self.progress_every),
        );
        let outcome = super::run(&specs, &scenes, &opts, &|p| display.update(p));
        display.finish();
        let outcome = outcome.map_err(|source| BatchError::Summary {
            out: self.out.display().to_string(),
            source,
        })?;
        Ok(BatchReport {
            counts: StatusCounts::of(&outcome.rows),
            rows: outcome.rows,
            aggregates: outcome.aggregates,
            summary_csv: summary_dir.join(summary::SUMMARY_CSV_FILE),
        })
    }
}

/// Sets [`STOP`] on the first Ctrl-C; ends the process on the second.
fn install_ctrlc_handler() -> Result<(), BatchError> {
    let installed = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: stopping now; rerun the same command to resume");
            // A run in flight cannot be cancelled (workers look at STOP only between runs),
            // so stopping now means ending the process here. That is safe: every file a batch
            // writes is written atomically, and a rerun restarts the runs that did not finish.
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: finishing the running runs, starting no new ones (Ctrl-C again to stop now)"
        );
    });
    match installed {
        // An earlier batch in this process installed it already.
        Ok(()) | Err(ctrlc::Error::MultipleHandlers) => Ok(()),
        Err(e) => Err(BatchError::CtrlC(e)),
    }
}

/// The progress display of a batch, in one of the [`ProgressMode`]s (never `Auto`).
enum Display {
    Bars(ProgressLines),
    Plain(PlainLines),
    None,
}

impl Display {
    fn new(mode: ProgressMode, runs: usize, jobs: usize, every: Duration) -> Display {
        match mode {
            ProgressMode::Bar => Display::Bars(ProgressLines::new(runs, jobs)),
            ProgressMode::Plain => Display::Plain(PlainLines::start(runs, jobs, every)),
            ProgressMode::None | ProgressMode::Auto => Display::None,
        }
    }

    fn update(&self, p: Progress<'_>) {
        match self {
            Display::Bars(bars) => bars.update(p),
            Display::Plain(lines) => lines.update(p),
            Display::None => {}
        }
    }

    fn finish(&self) {
        match self {
            Display::Bars(bars) => bars.finish(),
            Display::Plain(lines) => lines.finish(),
            Display::None => {}
        }
    }
}

/// What the plain display knows: runs finished and failed, and what each job is running.
struct PlainState {
    runs: usize,
    finished: usize,
    failed: usize,
    running: Vec<Option<(String, Instant)>>,
    started: Instant,
}

impl PlainState {
    /// `batch: 3/12 runs finished (1 failed), 4m10s; job 0: quick-s1 (2m05s), job 1: idle`.
    fn line(&self) -> String {
        let jobs: Vec<String> = self
            .running
            .iter()
            .enumerate()
            .map(|(j, r)| match r {
                Some((name, since)) => format!("job {j}: {name} ({})", clock(since.elapsed())),
                None => format!("job {j}: idle"),
            })
            .collect();
        format!(
            "batch: {}/{} runs finished ({} failed), {}; {}",
            self.finished,
            self.runs,
            self.failed,
            clock(self.started.elapsed()),
            jobs.join(", ")
        )
    }
}

/// `1h02m03s`, `4m10s`, `9s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// Plain progress for logs: a line when a run starts or ends, and a status line every
/// `every` while runs go on (from a ticker thread, so hour-long runs still show life).
struct PlainLines {
    state: Arc<Mutex<PlainState>>,
    stop: Mutex<Option<mpsc::Sender<()>>>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PlainLines {
    fn start(runs: usize, jobs: usize, every: Duration) -> PlainLines {
        let state = Arc::new(Mutex::new(PlainState {
            runs,
            finished: 0,
            failed: 0,
            running: vec![None; jobs],
            started: Instant::now(),
        }));
        let (tx, rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&state);
        let ticker = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                let line = shared.lock().unwrap_or_else(|p| p.into_inner()).line();
                eprintln!("{line}");
            }
        });
        PlainLines {
            state,
            stop: Mutex::new(Some(tx)),
            ticker: Mutex::new(Some(ticker)),
        }
    }

    fn update(&self, p: Progress<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match p {
            Progress::Started { job, spec } => {
                eprintln!("batch: job {job} starts {}", spec.dir_name);
                state.running[job] = Some((spec.dir_name.clone(), Instant::now()));
            }
            Progress::Finished { job, row } => {
                state.finished += 1;
                if row.status == RunStatus::Failed {
                    state.failed += 1;
                }
                let took = state.running[job]
                    .take()
                    .map_or(String::new(), |(_, since)| {
                        format!(" after {}", clock(since.elapsed()))
                    });
                let accuracy = row
                    .accuracy
                    .map_or(String::new(), |a| format!(", accuracy {:.2}%", 100.0 * a));
                eprintln!(
                    "batch: job {job} {} {}{took}{accuracy} ({}/{})",
                    row.status.as_str(),
                    row.dir,
                    state.finished,
                    state.runs
                );
            }
        }
    }

    fn finish(&self) {
        drop(self.stop.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// The progress display: one bar for the batch and one line per job.
struct ProgressLines {
    overall: ProgressBar,
    jobs: Vec<ProgressBar>,
    failed: AtomicUsize,
}

impl ProgressLines {
    /// A display for `runs` runs on `jobs` jobs. (The bars share the `MultiProgress` state,
    /// so its handle need not be kept.)
    fn new(runs: usize, jobs: usize) -> ProgressLines {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(runs as u64));
        overall.set_style(
            ProgressStyle::with_template("batch [{bar:30}] {pos}/{len} runs  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let jobs = (0..jobs)
            .map(|j| {
                let line = multi.add(ProgressBar::new_spinner());
                line.set_prefix(format!("job {j}"));
                line.set_style(
                    ProgressStyle::with_template("  {prefix}: {spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                line
            })
            .collect();
        ProgressLines {
            overall,
            jobs,
            failed: AtomicUsize::new(0),
        }
    }

    fn update(&self, p: Progress<'_>) {
        match p {
            Progress::Started { job, spec } => {
                let line = &self.jobs[job];
                line.set_message(spec.dir_name.clone());
                line.reset_elapsed();
                line.enable_steady_tick(Duration::from_millis(200));
            }
            Progress::Finished { job, row } => {
                if row.status == RunStatus::Failed {
                    self.failed.fetch_add(1, Ordering::SeqCst);
                }
                let line = &self.jobs[job];
                line.disable_steady_tick();
                line.set_message("idle");
                self.overall.inc(1);
                let failed = self.failed.load(Ordering::SeqCst);
                self.overall.set_message(format!("{failed} failed"));
            }
        }
    }

    fn finish(&self) {
        for line in &self.jobs {
            line.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
}
