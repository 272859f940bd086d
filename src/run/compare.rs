//! `neurograph bench --compare-backends`: the same bench with every radiation kernel the CPU
//! has, interleaved in rounds, so the kernels' ratio is measured in one run and one machine
//! state (robust to a shared machine's noise, which moves all of a round's figures together).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RunError;
use super::bench::{BenchMode, BenchReport, bench, bench_training};
use super::floor::{Floor, Peaks};
use crate::radiation::{Backend, BackendChoice};
use crate::scene::Scene;

/// One kernel's figures over the rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendRow {
    /// The scene's `radiation.backend` value that selected it.
    pub choice: String,
    /// The kernel and instructions it resolved to.
    pub backend: String,
    /// Passes (or training samples) per second, one per round.
    pub samples_per_second: Vec<f64>,
    /// Radiation thread milliseconds per pass, one per round.
    pub radiation_ms_per_pass: Vec<f64>,
    /// Per round, this kernel's radiation time over the reference's (`F32`) in that round.
    pub radiation_ratio_to_f32: Vec<f64>,
    /// Radiation time as a multiple of the machine floor (best round), with `--floor`.
    pub floor_multiple: Option<f64>,
}

/// The result of `bench --compare-backends`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendComparison {
    /// What was timed.
    pub mode: BenchMode,
    /// Scene name.
    pub scene: String,
    /// Timed samples per bench.
    pub samples: usize,
    /// Rounds (each runs every kernel once, in order).
    pub rounds: usize,
    /// One row per distinct kernel.
    pub rows: Vec<BackendRow>,
    /// Whether every kernel's final world was identical (train mode; `None` in forward mode).
    pub identical_worlds: Option<bool>,
    /// The machine's multiply-add peaks, with `--floor`.
    pub peaks: Option<Peaks>,
}

/// Kernel rows per pass of a bench: the `candidates` level's lookups are the sources the
/// kernel scored (the cache answered the rest).
pub fn rows_per_pass(report: &BenchReport) -> f64 {
    let rows = report
        .radiation
        .levels
        .iter()
        .find(|l| l.level == "candidates")
        .map_or(0, |l| l.hits);
    rows as f64 / report.samples.max(1) as f64
}

/// Radiation thread seconds per pass of a bench.
pub fn radiation_seconds_per_pass(report: &BenchReport) -> f64 {
    report.radiation.seconds / report.samples.max(1) as f64
}

/// The floor of a bench on this machine's measured `peaks`.
pub fn floor_of(report: &BenchReport, scene: &Scene, peaks: Peaks) -> Floor {
    Floor::new(
        peaks,
        rows_per_pass(report),
        scene.architecture.total_nodes as usize,
        scene.architecture.vector_dim as usize,
        scene.radiation_backend().is_int16(),
        radiation_seconds_per_pass(report),
    )
}

/// Runs the bench (`mode`) `rounds` times with each distinct kernel the CPU has (every choice
/// but `Auto`, which is one of them, and each instruction set once), interleaved.
pub fn compare_backends(
    scene: &Scene,
    mode: BenchMode,
    samples: usize,
    warmup: usize,
    rounds: usize,
    peaks: Option<Peaks>,
) -> Result<BackendComparison, RunError> {
    let mut choices: Vec<(BackendChoice, Backend)> = Vec::new();
    for choice in BackendChoice::ALL {
        let backend = Backend::resolve(choice, 0, 1);
        if choice != BackendChoice::Auto
            && choice.check().is_ok()
            && !choices.iter().any(|&(_, b)| b == backend)
        {
            choices.push((choice, backend));
        }
    }
    let mut reports: Vec<Vec<BenchReport>> = vec![Vec::new(); choices.len()];
    for _ in 0..rounds.max(1) {
        for (i, &(choice, _)) in choices.iter().enumerate() {
            let mut s = scene.clone();
            s.radiation.backend = choice;
            let report = match mode {
                BenchMode::Forward => bench(&s, samples, warmup, true, true)?,
                BenchMode::Train => bench_training(&s, samples, warmup, true, true)?,
            };
            reports[i].push(report);
        }
    }
    let reference = choices
        .iter()
        .position(|&(c, _)| c == BackendChoice::F32)
        .unwrap_or(0);
    let reference_ms: Vec<f64> = reports[reference]
        .iter()
        .map(|r| radiation_seconds_per_pass(r) * 1e3)
        .collect();
    let rows = choices
        .iter()
        .zip(&reports)
        .map(|(&(choice, backend), runs)| {
            let radiation_ms: Vec<f64> = runs
                .iter()
                .map(|r| radiation_seconds_per_pass(r) * 1e3)
                .collect();
            let floor_multiple = peaks.as_ref().map(|p| {
                let mut s = scene.clone();
                s.radiation.backend = choice;
                runs.iter()
                    .map(|r| floor_of(r, &s, p.clone()).multiple)
                    .fold(f64::INFINITY, f64::min)
            });
            BackendRow {
                choice: format!("{choice:?}"),
                backend: backend.name().into(),
                samples_per_second: runs.iter().map(|r| r.samples_per_second).collect(),
                radiation_ratio_to_f32: radiation_ms
                    .iter()
                    .zip(&reference_ms)
                    .map(|(a, b)| a / b.max(1e-12))
                    .collect(),
                radiation_ms_per_pass: radiation_ms,
                floor_multiple,
            }
        })
        .collect();
    let identical_worlds = (mode == BenchMode::Train).then(|| {
        let hashes: Vec<&Option<String>> =
            reports.iter().flatten().map(|r| &r.world_hash).collect();
        hashes.windows(2).all(|w| w[0] == w[1])
    });
    Ok(BackendComparison {
        mode,
        scene: scene.name.clone(),
        samples,
        rounds: rounds.max(1),
        rows,
        identical_worlds,
        peaks,
    })
}

/// `min–max` of a list, with `digits` decimals.
fn range(values: &[f64], digits: usize) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.digits$}-{hi:.digits$}")
}

impl fmt::Display for BackendComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.mode {
            BenchMode::Forward => "passes/s",
            BenchMode::Train => "samples/s",
        };
        writeln!(
            f,
            "scene {}  {} {} samples per bench, {} rounds, kernels interleaved",
            self.scene,
            match self.mode {
                BenchMode::Forward => "forward",
                BenchMode::Train => "train",
            },
            self.samples,
            self.rounds
        )?;
        if let Some(p) = &self.peaks {
            writeln!(
                f,
                "machine floor ({}, one core): f32 {:.1} G multiply-adds/s, i16 {:.1} G/s",
                p.instructions,
                p.f32_macs_per_second / 1e9,
                p.i16_macs_per_second / 1e9
            )?;
        }
        // Columns as wide as their longest entry.
        let choice = self.rows.iter().map(|r| r.choice.len()).fold(6, usize::max);
        let kernel = self
            .rows
            .iter()
            .map(|r| r.backend.len())
            .fold(6, usize::max);
        writeln!(
            f,
            "{:<choice$} {:<kernel$} {:>16} {:>18} {:>18} {:>10}",
            "choice", "kernel", unit, "radiation ms/pass", "ratio to F32", "x floor"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<choice$} {:<kernel$} {:>16} {:>18} {:>18} {:>10}",
                r.choice,
                r.backend,
                range(&r.samples_per_second, 1),
                range(&r.radiation_ms_per_pass, 3),
                range(&r.radiation_ratio_to_f32, 3),
                r.floor_multiple
                    .map_or_else(|| "-".to_string(), |m| format!("{m:.1}"))
            )?;
        }
        if let Some(same) = self.identical_worlds {
            writeln!(
                f,
                "final worlds {}",
                if same {
                    "identical for every kernel and round"
                } else {
                    "DIFFER between kernels (a bug: every kernel must give the same targets)"
                }
            )?;
        }
        Ok(())
    }
}
