//! Headless batches: matrix expansion and sharding, grid validation, resume after a crash,
//! failure isolation, and a run inside a batch equal to the same run alone.

use std::path::Path;
use std::process::Command;

use neurograph::batch::{self, BatchOptions, GridAxis, SceneEntry, summary::RunStatus};
use neurograph::run::Runner;
use neurograph::scene::{self, Scene};

const SMALL: &str = r#"Scene(
    name: "NAME", seed: 1,
    architecture: (total_nodes: 120, input_nodes: 24, output_nodes: 20),
    forward: (min_timesteps: 1),
    radiation: (enabled: false, top_k: 6),
    adapter: Mlp(hidden: 32, dropout: 0.1),
    data: (source: Synthetic(train: 60, test: 30)),
    schedule: (threads: 1, eval_replicas: 1),
    script: [Train(epochs: 1), Evaluate(split: Test)],
)"#;

fn small(name: &str) -> Scene {
    scene::parse(&SMALL.replace("NAME", name), "small.ron").unwrap()
}

fn entry(name: &str) -> SceneEntry {
    SceneEntry {
        path: format!("{name}.ron").into(),
        scene: Ok(small(name)),
    }
}

fn grid() -> GridAxis {
    batch::parse_grid("training.learning_rate_phase=0.01,0.02").unwrap()
}

#[test]
fn matrix_expands_in_order_with_unique_directories() {
    let scenes = [entry("a"), entry("b")];
    let specs = batch::expand(&scenes, Some(&[1, 2, 3]), &[grid()]).unwrap();
    assert_eq!(specs.len(), 2 * 2 * 3);
    assert_eq!(specs[0].dir_name, "a-s1-training.learning_rate_phase=0.01");
    assert_eq!(specs[3].dir_name, "a-s1-training.learning_rate_phase=0.02");
    assert_eq!(specs[6].scene_name, "b");
    let mut dirs: Vec<_> = specs.iter().map(|s| s.dir_name.clone()).collect();
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), 12);
    assert!(specs.iter().enumerate().all(|(i, s)| s.index == i));
}

#[test]
fn every_run_is_in_exactly_one_shard() {
    let scenes = [entry("a"), entry("b")];
    let specs = batch::expand(&scenes, Some(&[1, 2, 3, 4, 5]), &[grid()]).unwrap();
    for n in 1..=7 {
        let mut seen = vec![0; specs.len()];
        for i in 0..n {
            for s in batch::shard(specs.clone(), i, n) {
                seen[s.index] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "n = {n}");
    }
}

#[test]
fn parse_errors_are_clear() {
    assert_eq!(batch::parse_seeds("1..3").unwrap(), vec![1, 2, 3]);
    assert_eq!(batch::parse_seeds("3,7,9").unwrap(), vec![3, 7, 9]);
    assert!(batch::parse_seeds("3..1").unwrap_err().contains("upwards"));
    assert!(batch::parse_seeds("3,3").unwrap_err().contains("twice"));
    let g = batch::parse_grid("graph=Layered(cardinality: 6, layers: 4),Layered(cardinality: 8)")
        .unwrap();
    assert_eq!(g.values.len(), 2);
    assert!(
        batch::parse_grid("nofield")
            .unwrap_err()
            .contains("FIELD=V1,V2")
    );
    assert!(batch::parse_grid("a=1,,2").unwrap_err().contains("empty"));
    assert_eq!(batch::parse_shard("2/4").unwrap(), (2, 4));
    assert!(batch::parse_shard("4/4").is_err());
    // A bad grid value fails that run with the validation message.
    let spec = &batch::expand(
        &[entry("a")],
        None,
        &[batch::parse_grid("architecture.vector_dim=0").unwrap()],
    )
    .unwrap()[0];
    let err = batch::run_scene(spec, &small("a"), 1).unwrap_err();
    assert!(
        err.contains("architecture.vector_dim") && err.contains("between 1 and 16"),
        "{err}"
    );
}

fn opts(dir: &Path, jobs: usize) -> BatchOptions {
    BatchOptions {
        jobs,
        cores: 2,
        out: dir.to_path_buf(),
        quiet: true,
        summary_dir: dir.to_path_buf(),
        sets: Vec::new(),
    }
}

#[test]
fn resumes_after_a_crash_and_isolates_failures() {
    let dir = tempfile::tempdir().unwrap();
    let bad = SceneEntry {
        path: "broken.ron".into(),
        scene: Err("broken.ron:1:1: syntax error".into()),
    };
    let scenes = [entry("a"), bad];
    let specs = batch::expand(&scenes, Some(&[1, 2]), &[]).unwrap();
    // A crashed earlier attempt: a run directory with a partial metrics file and no summary.
    let crashed = dir.path().join(&specs[1].dir_name);
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::write(crashed.join("metrics.jsonl"), "{\"epoch\": 1, \"trunc").unwrap();
    let first = batch::run(&specs, &scenes, &opts(dir.path(), 2), &|_| {}).unwrap();
    let status: Vec<RunStatus> = first.rows.iter().map(|r| r.status).collect();
    assert_eq!(
        status,
        [
            RunStatus::Done,
            RunStatus::Done,
            RunStatus::Failed,
            RunStatus::Failed
        ]
    );
    assert!(
        first.rows[2]
            .error
            .as_deref()
            .unwrap()
            .contains("syntax error")
    );
    let metrics = std::fs::read_to_string(crashed.join("metrics.jsonl")).unwrap();
    let epochs = metrics
        .lines()
        .filter(|l| !l.contains(r#""kind":"evaluation""#));
    assert_eq!(epochs.count(), 1, "restarted from scratch: {metrics}");
    assert!(metrics.starts_with("{\"epoch\":1,"), "{metrics}");
    // Rerunning skips what is complete and keeps the results.
    let second = batch::run(&specs, &scenes, &opts(dir.path(), 1), &|_| {}).unwrap();
    assert_eq!(second.rows[0].status, RunStatus::Skipped);
    assert_eq!(second.rows[0].accuracy, first.rows[0].accuracy);
    for f in [
        "batch-summary.csv",
        "batch-summary.jsonl",
        "batch-comparison.svg",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
}

#[test]
fn a_run_in_a_batch_equals_the_same_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = [entry("a")];
    let specs = batch::expand(&scenes, Some(&[4]), &[grid()]).unwrap();
    batch::run(&specs, &scenes, &opts(dir.path(), 2), &|_| {}).unwrap();
    let alone_scene = batch::run_scene(&specs[1], &small("a"), 2).unwrap();
    let alone_dir = tempfile::tempdir().unwrap();
    Runner::new(&alone_scene, true)
        .unwrap()
        .with_output(alone_dir.path())
        .unwrap()
        .run_script()
        .unwrap();
    let read = |p: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.join("summary.json")).unwrap())
                .unwrap();
        strip_timing(&mut v);
        v
    };
    assert_eq!(
        read(&dir.path().join(&specs[1].dir_name)),
        read(alone_dir.path())
    );
}

/// Wall-clock fields, the output directory and the measured memory (the process's heap and
/// resident set, shared with everything else it runs) differ between any two runs.
fn strip_timing(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for key in [
                "seconds",
                "samples_per_second",
                "stage_seconds",
                "share",
                "out_dir",
                "memory",
            ] {
                map.remove(key);
            }
            map.values_mut().for_each(strip_timing);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_timing),
        _ => {}
    }
}

#[test]
fn cli_batch_reports_failures_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.ron");
    std::fs::write(&good, SMALL.replace("NAME", "good")).unwrap();
    let bad = dir.path().join("bad.ron");
    std::fs::write(&bad, "Scene(architecture: (vektor_dim: 5))").unwrap();
    let out = dir.path().join("batch");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_neurograph"))
            .args([
                "batch",
                good.to_str().unwrap(),
                bad.to_str().unwrap(),
                "--seeds",
                "1..2",
            ])
            .args(["--out", out.to_str().unwrap(), "--jobs", "2", "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(!first.status.success());
    let stdout = String::from_utf8_lossy(&first.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let status: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["done", "done", "failed", "failed"]);
    assert!(
        v["rows"][2]["error"]
            .as_str()
            .unwrap()
            .contains("vektor_dim")
    );
    // A bad grid value is refused before anything runs.
    let refused = run(&["--grid", "architecture.vector_dim=0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("between 1 and 16"));
}

#[test]
fn a_scene_sweep_is_a_grid_axis() {
    let text = SMALL.replace("NAME", "swept").replace(
        "script:",
        "sweep: [(field: \"forward.decay\", values: [\"0.5\", \"0.6\"])],\n    script:",
    );
    let scene = scene::parse(&text, "swept.ron").unwrap();
    let entry = SceneEntry {
        path: "swept.ron".into(),
        scene: Ok(scene),
    };
    let specs = batch::expand(&[entry], Some(&[1]), &[grid()]).unwrap();
    assert_eq!(specs.len(), 4);
    assert_eq!(
        specs[1].grid,
        vec![
            ("forward.decay".to_string(), "0.5".to_string()),
            (
                "training.learning_rate_phase".to_string(),
                "0.02".to_string()
            )
        ]
    );
    // A bad sweep value is a positioned load-time error.
    let bad = SMALL.replace("NAME", "bad").replace(
        "script:",
        "sweep: [(field: \"forward.decay\", values: [\"0.5\", \"1.5\"])],\n    script:",
    );
    let err = scene::parse(&bad, "bad.ron").unwrap_err().to_string();
    assert!(
        err.contains("sweep[0].values[1]") && err.contains("(0, 1]"),
        "{err}"
    );
}

/// Regression (issue 12, smaller items): Slurm and Kubernetes array jobs had to compute
/// `--shard I/N` themselves.
#[test]
fn issue_12_shard_auto_reads_slurm_and_kubernetes_arrays() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let slurm = env(&[
        ("SLURM_ARRAY_TASK_ID", "7"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_STEP", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "5"),
    ]);
    assert_eq!(batch::resolve_shard("auto", &slurm), Ok((3, 5)));
    assert_eq!(batch::resolve_shard("auto/9", &slurm), Ok((3, 9)));
    let off_grid = env(&[
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_STEP", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "5"),
    ]);
    assert!(batch::resolve_shard("auto", &off_grid).is_err());
    let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
    assert_eq!(batch::resolve_shard("auto/4", &k8s), Ok((2, 4)));
    let err = batch::resolve_shard("auto", &k8s).unwrap_err();
    assert!(err.contains("auto/N"), "{err}");
    assert!(batch::resolve_shard("auto/2", &env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
    let none = env(&[]);
    let err = batch::resolve_shard("auto", &none).unwrap_err();
    assert!(err.contains("SLURM_ARRAY_TASK_ID"), "{err}");
    assert_eq!(batch::resolve_shard("1/3", &none), Ok((1, 3)));
}

/// Regression (issue 12, smaller items): indicatif hides itself when stderr is not a terminal,
/// so a batch's log showed nothing for hours; `--progress plain` writes lines.
#[test]
fn issue_12_plain_progress_writes_lines_to_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.ron");
    std::fs::write(
        &file,
        r#"Scene(
            name: "p",
            architecture: (total_nodes: 120, input_nodes: 30, output_nodes: 10),
            data: (source: Synthetic(train: 40, test: 20)),
            schedule: (threads: 1, eval_replicas: 1),
            script: [Train(epochs: 1), Evaluate(split: Test)],
        )"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .arg("batch")
        .arg(&file)
        .args(["--seeds", "1,2", "--out"])
        .arg(dir.path().join("out"))
        .args(["--set", "training.learning_rate_phase=0.02"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("batch: job 0 starts p-s1"), "{stderr}");
    assert!(stderr.contains("batch: job 0 done"), "{stderr}");
    assert!(stderr.contains("(2/2)"), "{stderr}");
}
