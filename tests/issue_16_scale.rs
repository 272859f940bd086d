//! Issue 16: the exact phase index as a radiation backend, and the engine at scale.
//!
//! The kernel-level equality with brute force (random graphs, forced ties, exclusions, K above
//! the candidates) is `radiation::tests::kernel_equals_brute_force_including_ties`, which runs
//! every backend including the index. Here: whole worlds trained on the index equal the dense
//! kernel's at every thread count, executor and granularity; `Auto` picks the index only from
//! the crossover; and a warm sample allocates nothing in proportion to the nodes.

use neurograph::radiation::{Backend, BackendChoice, INDEX_CROSSOVER, INDEX_MAX_AUTO_DIM};
use neurograph::run::{self, Runner};
use neurograph::scene::{self, ExecutorKind, Granularity, Scene, Split};

#[global_allocator]
static ALLOCATOR: neurograph::alloc::Counting = neurograph::alloc::Counting;

/// The heap counters are process-wide: every test here holds this lock, so the allocation
/// test sees only its own sample.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The production dynamics (as scenes/scale-*.ron) on a small graph.
fn scene(nodes: u32) -> Scene {
    let path = "scenes/scale-10k.ron";
    let text = std::fs::read_to_string(path).expect("shipped scene exists");
    let mut s = scene::parse(&text, path).expect("shipped scene parses");
    s.architecture.total_nodes = nodes;
    s.adapter = scene::Adapter::Mlp {
        hidden: 64,
        dropout: 0.1,
    };
    s.data.source = scene::DataSource::Synthetic {
        train: 30,
        test: 10,
    };
    s
}

#[test]
fn issue_16_index_trains_the_same_world_as_the_dense_kernel_at_every_thread_count() {
    let _alone = alone();
    let mut hashes = Vec::new();
    let configs = [
        (
            BackendChoice::Int16,
            ExecutorKind::Single,
            1,
            Granularity::Stage,
        ),
        (
            BackendChoice::Index,
            ExecutorKind::Single,
            1,
            Granularity::Stage,
        ),
        (
            BackendChoice::Index,
            ExecutorKind::Single,
            2,
            Granularity::Stage,
        ),
        (
            BackendChoice::Index,
            ExecutorKind::Multi,
            2,
            Granularity::Stage,
        ),
        (
            BackendChoice::Index,
            ExecutorKind::Multi,
            3,
            Granularity::Split { parts: 3 },
        ),
    ];
    for (backend, executor, threads, granularity) in configs {
        let mut s = scene(1500);
        s.radiation.backend = backend;
        s.schedule.executor = executor;
        s.schedule.threads = threads;
        s.schedule.granularity = granularity;
        let report = run::bench_training(&s, 12, 0, true, true).expect("training runs");
        let want = if backend == BackendChoice::Index {
            "index"
        } else {
            "int16"
        };
        assert!(
            report.radiation.backend.starts_with(want),
            "{}",
            report.radiation.backend
        );
        hashes.push((
            format!("{backend:?} {executor:?} {threads} {granularity:?}"),
            report.world_hash,
        ));
    }
    let first = &hashes[0].1;
    assert!(first.is_some());
    for (what, hash) in &hashes {
        assert_eq!(hash, first, "{what} ended in another world: {hashes:?}");
    }
}

#[test]
fn issue_16_auto_picks_the_index_from_the_crossover_and_for_small_dimensions() {
    let _alone = alone();
    let dense = Backend::detect();
    assert_ne!(dense, Backend::Index);
    assert_eq!(Backend::resolve(BackendChoice::Auto, 1000, 5), dense);
    assert_eq!(
        Backend::resolve(BackendChoice::Auto, INDEX_CROSSOVER - 1, 5),
        dense
    );
    assert_eq!(
        Backend::resolve(BackendChoice::Auto, INDEX_CROSSOVER, 5),
        Backend::Index
    );
    assert_eq!(
        Backend::resolve(BackendChoice::Auto, 1_000_000, INDEX_MAX_AUTO_DIM + 1),
        dense
    );
    // An explicit choice is kept at any size.
    assert_eq!(
        Backend::resolve(BackendChoice::Index, 10, 16),
        Backend::Index
    );
    assert!(Backend::resolve(BackendChoice::Int16, 1_000_000, 5).is_int16());
    // The shipped scale scenes from 100 000 nodes resolve to the index; 10 000 nodes is below
    // the crossover, and so is the production scene.
    for (path, index) in [
        ("scenes/scale-10k.ron", false),
        ("scenes/scale-100k.ron", true),
        ("scenes/scale-1m.ron", true),
        ("scenes/mnist-production.ron", false),
    ] {
        let s = scene::load(std::path::Path::new(path)).expect("shipped scene loads");
        assert_eq!(s.radiation_backend() == Backend::Index, index, "{path}");
    }
}

#[test]
fn issue_16_a_warm_sample_allocates_nothing_in_proportion_to_the_nodes() {
    // Regression: the radiation snapshot collected the active set into a new vector every
    // timestep (16 bytes per active node). After warm-up, a sample's transient heap must stay
    // far below one byte per node.
    let _alone = alone();
    let nodes = 20_000u32;
    let mut s = scene(nodes);
    s.radiation.backend = BackendChoice::Index;
    let mut runner = Runner::new(&s, true).expect("world builds");
    runner.evaluate(Split::Test, Some(3)).expect("warm-up");
    let before = neurograph::alloc::live_bytes().expect("the counting allocator is installed");
    neurograph::alloc::reset_peak();
    let e = runner.evaluate(Split::Test, Some(3)).expect("evaluation");
    assert_eq!(e.samples, 3);
    let transient = neurograph::alloc::peak_bytes().unwrap() - before;
    assert!(
        transient < u64::from(nodes),
        "a warm evaluation of 3 samples peaked {transient} B above the {before} B before it \
         ({:.2} B per node)",
        transient as f64 / f64::from(nodes)
    );
}

/// `neurograph experiment scaling` with the given arguments after the scene.
fn scaling(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(["experiment", "scaling", "scenes/scale-10k.ron"])
        .args(["--set", "adapter=Mlp(hidden: 16, dropout: 0.0)"])
        .args(["--set", "data.source=Synthetic(train: 4, test: 4)"])
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn issue_16_experiment_scaling_reports_every_point_and_writes_json_and_plot() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("scaling");
    let out = scaling(&[
        "--nodes",
        "600,300",
        "--dense-max",
        "300",
        "--samples",
        "1",
        "--warmup",
        "0",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap()).expect("one JSON line");
    // Node counts ascending, the dense kernel only up to --dense-max.
    let points = report["points"].as_array().unwrap();
    let shape: Vec<(u64, &str)> = points
        .iter()
        .map(|p| (p["nodes"].as_u64().unwrap(), p["kernel"].as_str().unwrap()))
        .collect();
    assert_eq!(shape, [(300, "index"), (300, "dense"), (600, "index")]);
    for p in points {
        let nodes = p["nodes"].as_f64().unwrap();
        let scored = p["scored_per_source"].as_f64().unwrap();
        if p["kernel"] == "dense" {
            // The dense kernel scores every node for every source.
            assert_eq!(scored, nodes);
            assert!(p["backend"].as_str().unwrap().starts_with("int16"));
        } else {
            assert!(scored > 0.0 && scored <= nodes, "{p}");
            assert_eq!(p["backend"], "index");
        }
        assert!(p["seconds_per_pass"].as_f64().unwrap() > 0.0);
        assert_eq!(p["timesteps_per_pass"].as_f64().unwrap(), 5.0);
        let world = p["world_bytes"].as_f64().unwrap();
        assert_eq!(p["bytes_per_node"].as_f64().unwrap(), world / nodes);
    }
    // Two index points give a fit (both below 10 000 nodes, so both are used); one dense point
    // gives none.
    let fits = report["fits"].as_array().unwrap();
    assert_eq!(fits.len(), 1);
    assert_eq!(fits[0]["kernel"], "index");
    assert_eq!(fits[0]["range"], serde_json::json!([300, 600]));
    // The files hold the same report and its picture.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("scaling.json")).unwrap())
            .unwrap();
    assert_eq!(written, report);
    let svg = std::fs::read_to_string(out_dir.join("scaling.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 3);
    assert!(svg.contains("fitted exponent"));
}

#[test]
fn issue_16_experiment_scaling_refuses_a_node_count_out_of_range_before_running() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let out = scaling(&["--nodes", "300,2", "--out", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("architecture.total_nodes") && stderr.contains("between 3 and 1000000"),
        "{stderr}"
    );
    // Nothing ran, so nothing was written.
    assert!(!dir.path().join("scaling.json").exists());
}
