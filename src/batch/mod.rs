//! Headless batches: scenes × seeds × parameter-grid points, run unattended, resumable and
//! shardable.
//!
//! The run matrix is expanded in a fixed order (scene, then grid point, then seed), so a shard
//! `I/N` (runs whose matrix index is `I mod N`) is the same on every machine. Each run gets its
//! own directory with the layout of `neurograph run --out`; a run is complete exactly when its
//! `summary.json` exists (written atomically) and its manifest's inputs hash is what the run
//! would be now ([`found`]), so after any crash a rerun skips completed runs, restarts the
//! others from scratch, and reruns finished runs whose inputs changed. A failing run (bad
//! scene, bad grid value, panic) is recorded with its error and the batch goes on.
//!
//! [`cli`] is the `neurograph batch` command on top of [`run`] (argument checks, progress,
//! Ctrl-C, the outcome's counts); [`summary`] writes the batch's tables and chart.

mod chart;
pub mod cli;
pub mod curves;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::run::outdir::{Existing, Previous};
use crate::run::{RunReport, Runner};
use crate::scene::{self, Scene, SweepAxis};
use summary::{RunRow, RunStatus};

/// One axis of the grid: a field and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridAxis {
    /// Dotted field path, as for `--set`.
    pub field: String,
    /// Values in RON syntax.
    pub values: Vec<String>,
}

/// Parses `--seeds`: an inclusive range `A..B` or a list `3,7,9`.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let bad =
        || format!("--seeds {text:?}: expected an inclusive range like 1..10 or a list like 3,7,9");
    let text = text.trim();
    if let Some((a, b)) = text.split_once("..") {
        let a: u64 = a.trim().parse().map_err(|_| bad())?;
        let b: u64 = b.trim().parse().map_err(|_| bad())?;
        if a > b || b - a >= 100_000 {
            return Err(format!(
                "--seeds {text:?}: the range must go upwards and hold at most 100000 seeds"
            ));
        }
        return Ok((a..=b).collect());
    }
    let seeds: Vec<u64> = text
        .split(',')
        .map(|s| s.trim().parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let mut unique = seeds.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != seeds.len() {
        return Err(format!("--seeds {text:?}: a seed is listed twice"));
    }
    Ok(seeds)
}

/// Parses `--grid FIELD=V1,V2,...`; commas inside brackets, parentheses or quotes belong to a
/// value, so `graph=Layered(cardinality: 6, layers: 4),Layered(cardinality: 8, layers: 4)` has
/// two values.
pub fn parse_grid(text: &str) -> Result<GridAxis, String> {
    let Some((field, values)) = text.split_once('=') else {
        return Err(format!("--grid {text:?}: expected FIELD=V1,V2,..."));
    };
    let field = field.trim();
    if field.is_empty() {
        return Err(format!("--grid {text:?}: the field is empty"));
    }
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let bytes = values.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => quoted = !quoted,
            b'(' | b'[' | b'{' if !quoted => depth += 1,
            b')' | b']' | b'}' if !quoted => depth -= 1,
            b',' if !quoted && depth == 0 => {
                out.push(values[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(values[start..].trim().to_string());
    if out.iter().any(String::is_empty) {
        return Err(format!("--grid {text:?}: a value is empty"));
    }
    if depth != 0 || quoted {
        return Err(format!("--grid {text:?}: unbalanced brackets or quotes"));
    }
    Ok(GridAxis {
        field: field.to_string(),
        values: out,
    })
}

/// Parses `--shard I/N` (0 <= I < N; I is 0-based like SLURM_ARRAY_TASK_ID).
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Resolves `--shard`: `I/N` as [`parse_shard`]; `auto` from a Slurm job array
/// (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`, of
/// `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes indexed Job (`JOB_COMPLETION_INDEX`, whose
/// completions count Kubernetes does not export: give it as `auto/N`). `env` reads a variable.
pub fn resolve_shard(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(usize, usize), String> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix("auto") else {
        return parse_shard(text);
    };
    let count: Option<usize> = match rest.strip_prefix('/') {
        Some(n) => Some(
            n.trim()
                .parse()
                .map_err(|_| format!("--shard {text:?}: expected auto/N with N a count"))?,
        ),
        None if rest.is_empty() => None,
        None => return Err(format!("--shard {text:?}: expected I/N, auto or auto/N")),
    };
    let number = |name: &str| -> Result<Option<usize>, String> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("--shard auto: {name}={v:?} is not a number"))
            })
            .transpose()
    };
    let (index, n) = if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let n = match (count, number("SLURM_ARRAY_TASK_COUNT")?) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err("--shard auto: SLURM_ARRAY_TASK_ID is set but \
                            SLURM_ARRAY_TASK_COUNT is not; give the count as auto/N"
                    .into());
            }
        };
        let offset = id
            .checked_sub(min)
            .filter(|o| o % step == 0)
            .ok_or_else(|| {
                format!(
                    "--shard auto: SLURM_ARRAY_TASK_ID={id} is not on the array's grid \
                 (min {min}, step {step})"
                )
            })?;
        (offset / step, n)
    } else if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let n = count.ok_or(
            "--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes indexed Job) but \
             Kubernetes does not export the completions count; give it as auto/N",
        )?;
        (index, n)
    } else {
        return Err(
            "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor \
                    JOB_COMPLETION_INDEX (a Kubernetes indexed Job) is set; give --shard I/N"
                .into(),
        );
    };
    if n == 0 || index >= n {
        return Err(format!(
            "--shard {text:?}: the environment gives shard {index} of {n}, which is not \
             0 <= I < N"
        ));
    }
    Ok((index, n))
}

/// One run of the matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// Position in the full matrix.
    pub index: usize,
    /// The scene file.
    pub scene_path: PathBuf,
    /// The scene's name (the file stem when the scene does not parse).
    pub scene_name: String,
    /// Seed of this run.
    pub seed: u64,
    /// (field, value) per grid axis: the scene's sweep axes, then `--grid` axes.
    pub grid: Vec<(String, String)>,
    /// Directory name under the batch directory.
    pub dir_name: String,
    /// Why the scene cannot run, if it failed to load.
    pub scene_error: Option<String>,
}

/// A scene file as the batch sees it: parsed, or the reason it does not parse.
pub struct SceneEntry {
    /// The file.
    pub path: PathBuf,
    /// The parsed scene, or the error message.
    pub scene: Result<Scene, String>,
}

impl SceneEntry {
    /// Loads a scene file, keeping the error instead of failing.
    pub fn load(path: &Path) -> SceneEntry {
        SceneEntry {
            path: path.to_path_buf(),
            scene: scene::load(path).map_err(|e| e.to_string()),
        }
    }
}

/// Expands scenes × grid points × seeds in that order. `seeds` = `None` uses each scene's own
/// seed. A scene that does not load still yields its runs, which will fail with its error.
///
/// Every run gets its own directory, checked before anything runs: a scene file listed twice,
/// a grid field given twice, or a value listed twice in one axis would run the same
/// experiment twice and is refused; runs whose names still collide (two scenes with one
/// `name`, values that differ only in characters a directory name cannot hold) get a short
/// hash of their scene file, seed and grid values appended (see [`dir_name`]).
pub fn expand(
    scenes: &[SceneEntry],
    seeds: Option<&[u64]>,
    grid: &[GridAxis],
) -> Result<Vec<RunSpec>, String> {
    let mut files = std::collections::HashSet::new();
    for entry in scenes {
        let key = std::fs::canonicalize(&entry.path).unwrap_or_else(|_| entry.path.clone());
        if !files.insert(key) {
            return Err(format!(
                "{} is listed twice: each scene file may appear once in a batch",
                entry.path.display()
            ));
        }
    }
    let mut specs = Vec::new();
    for entry in scenes {
        let stem = entry
            .path
            .file_stem()
            .map_or("scene".to_string(), |s| s.to_string_lossy().into_owned());
        let (name, own_seed, sweep, error) = match &entry.scene {
            Ok(s) => (s.name.clone(), s.seed, s.sweep.clone(), None),
            Err(e) => (stem, 0, Vec::new(), Some(e.clone())),
        };
        let axes: Vec<GridAxis> = sweep
            .iter()
            .map(|SweepAxis { field, values }| GridAxis {
                field: field.clone(),
                values: values.clone(),
            })
            .chain(grid.iter().cloned())
            .collect();
        check_axes(&axes, &entry.path)?;
        let own = [own_seed];
        let seeds = seeds.unwrap_or(&own);
        for point in cartesian(&axes) {
            for &seed in seeds {
                specs.push(RunSpec {
                    index: specs.len(),
                    scene_path: entry.path.clone(),
                    scene_name: name.clone(),
                    seed,
                    dir_name: dir_name(&name, seed, &point),
                    grid: point.clone(),
                    scene_error: error.clone(),
                });
            }
        }
    }
    let mut uses: std::collections::HashMap<String, usize> = Default::default();
    for spec in &specs {
        *uses.entry(spec.dir_name.clone()).or_default() += 1;
    }
    for spec in &mut specs {
        if uses[&spec.dir_name] > 1 {
            spec.dir_name = format!("{}-{}", spec.dir_name, spec.identity_hash());
        }
    }
    let mut names = std::collections::HashSet::new();
    for spec in &specs {
        if !names.insert(&spec.dir_name) {
            // Only a 32-bit hash collision between distinct runs can get here.
            return Err(format!(
                "two runs would share the directory {}; rename one of their scenes",
                spec.dir_name
            ));
        }
    }
    Ok(specs)
}

/// Refuses a field given twice (in the scene's sweep or `--grid`) or a value listed twice in
/// one axis: either would run one experiment twice under two names.
fn check_axes(axes: &[GridAxis], scene: &Path) -> Result<(), String> {
    for (i, axis) in axes.iter().enumerate() {
        if axes[..i]
            .iter()
            .any(|a| a.field.trim() == axis.field.trim())
        {
            return Err(format!(
                "{}: the grid field {} is given twice (in the scene's sweep or --grid); give \
                 it once with all its values",
                scene.display(),
                axis.field
            ));
        }
        for (j, value) in axis.values.iter().enumerate() {
            if axis.values[..j].contains(value) {
                return Err(format!(
                    "{}: the grid value {}={value} is listed twice",
                    scene.display(),
                    axis.field
                ));
            }
        }
    }
    Ok(())
}

impl RunSpec {
    /// 8 hex digits of FNV-1a over the scene file, seed and grid values: what tells runs
    /// apart when their readable names collide.
    fn identity_hash(&self) -> String {
        let mut h = crate::hash::Fnv1a::new();
        h.write(self.scene_path.to_string_lossy().as_bytes());
        h.write(&self.seed.to_le_bytes());
        for (field, value) in &self.grid {
            h.write(b"\0");
            h.write(field.as_bytes());
            h.write(b"=");
            h.write(value.as_bytes());
        }
        format!("{:08x}", h.finish() as u32)
    }
}

/// Every combination of the axes' values, first axis outermost.
fn cartesian(axes: &[GridAxis]) -> Vec<Vec<(String, String)>> {
    let mut points = vec![Vec::new()];
    for axis in axes {
        let mut next = Vec::with_capacity(points.len() * axis.values.len());
        for p in &points {
            for v in &axis.values {
                let mut q = p.clone();
                q.push((axis.field.clone(), v.clone()));
                next.push(q);
            }
        }
        points = next;
    }
    points
}

/// `<scene>-s<seed>[-<field>=<value>]...`, with anything outside `[A-Za-z0-9._=-]` as `_`
/// ([`expand`] appends a hash when two runs get the same name).
fn dir_name(scene: &str, seed: u64, point: &[(String, String)]) -> String {
    let mut name = format!("{scene}-s{seed}");
    for (field, value) in point {
        name.push('-');
        name.push_str(field);
        name.push('=');
        name.push_str(value);
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The runs of shard `i` of `n`: those whose matrix index is `i mod n`.
pub fn shard(specs: Vec<RunSpec>, i: usize, n: usize) -> Vec<RunSpec> {
    specs.into_iter().filter(|s| s.index % n == i).collect()
}

/// How a batch is run.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Runs at once.
    pub jobs: usize,
    /// The machine's cores, shared between jobs.
    pub cores: usize,
    /// The batch directory.
    pub out: PathBuf,
    /// No progress display.
    pub quiet: bool,
    /// Where the batch summary files go: `out`, or `out/shard-I-of-N` for a shard, so shards
    /// sharing one directory never overwrite each other's summaries.
    pub summary_dir: PathBuf,
    /// The batch's `--set` values (already in the scenes): with the grid values, they win over
    /// the settings a `Restore` takes from a checkpoint.
    pub sets: Vec<String>,
}

/// Set by the first Ctrl-C: no new run starts; running ones finish.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// The scene a run executes: its seed and grid values applied, and its schedule fitted into
/// `cores / jobs` threads (kept when it already fits: results never depend on threads).
pub fn run_scene(spec: &RunSpec, base: &Scene, budget: usize) -> Result<Scene, String> {
    let mut s = base.clone();
    s.seed = spec.seed;
    s.apply_sets(&spec.assignments())
        .map_err(|e| e.to_string())?;
    let threads = crate::sim::resolve_threads(s.schedule.threads);
    if threads * s.schedule.eval_replicas as usize > budget {
        s.schedule.threads = budget as u32;
        s.schedule.eval_replicas = 1;
    }
    Ok(s)
}

impl RunSpec {
    /// The run's grid values as `FIELD=VALUE` assignments.
    pub fn assignments(&self) -> Vec<String> {
        self.grid.iter().map(|(f, v)| format!("{f}={v}")).collect()
    }
}

/// What a batch finds in a run's directory before running it.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// Nothing finished there: run it (replacing any unfinished attempt).
    Fresh,
    /// A finished run of the same inputs: skip it, reading its report back.
    Complete(Box<RunReport>),
    /// A finished run of other inputs (in words): run it again.
    Changed(String),
}

/// Looks at `spec`'s directory: whether it holds a finished run of what `spec` would run now
/// (the same [`inputs_hash`](crate::run::outdir::inputs_hash): scene after grid values,
/// seed, crate version and features). A summary this version cannot read is a changed run.
pub fn found(spec: &RunSpec, scenes: &[SceneEntry], out: &Path) -> Found {
    let dir = out.join(&spec.dir_name);
    let Ok(previous) = Previous::read(&dir) else {
        return Found::Fresh;
    };
    let Previous::Run { finished: true, .. } = previous else {
        return Found::Fresh;
    };
    let scene = scenes
        .iter()
        .find(|e| e.path == spec.scene_path)
        .and_then(|e| e.scene.as_ref().ok())
        .and_then(|base| run_scene(spec, base, usize::MAX).ok());
    let Some(scene) = scene else {
        // It cannot run now (its scene or grid value broke): it fails again, with the reason.
        return Found::Fresh;
    };
    let inputs = crate::run::outdir::inputs_hash(&scene);
    if !previous.is_finished_run_of(&inputs) {
        return Found::Changed(previous.describe(&inputs));
    }
    let report = std::fs::read_to_string(dir.join(crate::run::report::SUMMARY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<RunReport>(&t).ok());
    match report {
        Some(report) => Found::Complete(Box::new(report)),
        None => Found::Changed("a finished run whose summary this version cannot read".into()),
    }
}

/// Runs one spec to a row: skipped if complete with the same inputs, otherwise from scratch
/// (replacing whatever its directory held).
fn execute(spec: &RunSpec, scenes: &[SceneEntry], opts: &BatchOptions) -> RunRow {
    let dir = opts.out.join(&spec.dir_name);
    let started = Instant::now();
    let mut row = RunRow {
        index: spec.index,
        scene: spec.scene_name.clone(),
        scene_path: spec.scene_path.display().to_string(),
        seed: spec.seed,
        grid: spec.grid.clone(),
        status: RunStatus::Failed,
        error: None,
        accuracy: None,
        coverage: None,
        loss: None,
        samples_per_second: None,
        wall_seconds: 0.0,
        dir: dir.display().to_string(),
    };
    let found = found(spec, scenes, &opts.out);
    if let Found::Complete(report) = &found {
        fill_metrics(&mut row, report);
        row.status = RunStatus::Skipped;
        return row;
    }
    let result = (|| -> Result<RunReport, String> {
        if let Some(e) = &spec.scene_error {
            return Err(e.clone());
        }
        let base = scenes
            .iter()
            .find(|e| e.path == spec.scene_path)
            .and_then(|e| e.scene.as_ref().ok())
            .ok_or("scene not loaded")?;
        let budget = (opts.cores / opts.jobs.max(1)).max(1);
        let scene = run_scene(spec, base, budget)?;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Runner::new(&scene, true)
                .map(|r| {
                    let mut overrides = opts.sets.clone();
                    overrides.extend(spec.assignments());
                    r.with_overrides(overrides)
                })
                .and_then(|r| r.with_output_mode(&dir, Existing::Replace))
                .and_then(|mut r| r.run_script())
        }));
        match outcome {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!(
                "the run panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
            )),
        }
    })();
    row.wall_seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(report) => {
            fill_metrics(&mut row, &report);
            row.status = match found {
                Found::Changed(_) => RunStatus::Rerun,
                _ => RunStatus::Done,
            };
        }
        Err(e) => row.error = Some(e),
    }
    row
}

/// Final metrics from a run report: the last evaluation, and the last training epoch's speed.
/// A non-finite value is missing, as it is in a summary.json (JSON has no NaN).
fn fill_metrics(row: &mut RunRow, report: &RunReport) {
    let finite = |v: f64| Some(v).filter(|v| v.is_finite());
    if let Some(e) = report.evaluations.last() {
        row.accuracy = finite(e.accuracy);
        row.coverage = finite(e.coverage);
        row.loss = e.mean_loss.and_then(finite);
        row.samples_per_second = finite(e.samples_per_second);
    }
    if let Some(t) = report.training.last() {
        row.samples_per_second = finite(t.samples_per_second);
    }
}

/// The outcome of a batch.
pub struct BatchOutcome {
    /// One row per run of this shard, in matrix order.
    pub rows: Vec<RunRow>,
    /// Per scene × grid point.
    pub aggregates: Vec<summary::Aggregate>,
}

/// Runs the specs with `opts.jobs` workers, writing the batch summary after every run (so a
/// killed batch still has one) and at the end.
pub fn run(
    specs: &[RunSpec],
    scenes: &[SceneEntry],
    opts: &BatchOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> std::io::Result<BatchOutcome> {
    std::fs::create_dir_all(&opts.out)?;
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<RunRow>>> = Mutex::new(vec![None; specs.len()]);
    let title = "batch: final accuracy per scene and grid point (mean ± sd over seeds)";
    let write_partial = |rows: &[Option<RunRow>]| {
        let done: Vec<RunRow> = rows.iter().flatten().cloned().collect();
        summary::write_summary(&opts.summary_dir, &done, title)
    };
    std::thread::scope(|scope| {
        for job in 0..opts.jobs.max(1) {
            let (next, rows) = (&next, &rows);
            let write_partial = &write_partial;
            scope.spawn(move || {
                loop {
                    if STOP.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(spec) = specs.get(i) else {
                        break;
                    };
                    progress(Progress::Started { job, spec });
                    let row = execute(spec, scenes, opts);
                    progress(Progress::Finished { job, row: &row });
                    let mut all = rows.lock().unwrap_or_else(|p| p.into_inner());
                    all[i] = Some(row);
                    let _ = write_partial(&all);
                }
            });
        }
    });
    let mut all: Vec<RunRow> = Vec::with_capacity(specs.len());
    let rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
    for (spec, row) in specs.iter().zip(rows) {
        all.push(row.unwrap_or_else(|| RunRow {
            index: spec.index,
            scene: spec.scene_name.clone(),
            scene_path: spec.scene_path.display().to_string(),
            seed: spec.seed,
            grid: spec.grid.clone(),
            status: RunStatus::Interrupted,
            error: Some("not started: the batch was interrupted".into()),
            accuracy: None,
            coverage: None,
            loss: None,
            samples_per_second: None,
            wall_seconds: 0.0,
            dir: opts.out.join(&spec.dir_name).display().to_string(),
        }));
    }
    let aggregates = summary::write_summary(&opts.summary_dir, &all, title)?;
    Ok(BatchOutcome {
        rows: all,
        aggregates,
    })
}

/// Progress events, for a display.
pub enum Progress<'a> {
    /// A job started a run.
    Started {
        /// The job (worker) number.
        job: usize,
        /// The run.
        spec: &'a RunSpec,
    },
    /// A job finished a run.
    Finished {
        /// The job number.
        job: usize,
        /// Its row.
        row: &'a RunRow,
    },
}
