//! The command line: `run --json` on the quickstart scene, `inspect`, `bench --json`, and
//! clear errors for bad scenes and bad `--set` values.

use std::process::Command;

fn neurograph(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neurograph"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn last_json(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().expect("some output");
    serde_json::from_str(line).expect("last line is JSON")
}

#[test]
fn run_json_reports_evaluations() {
    let (ok, out, err) = neurograph(&[
        "run",
        "scenes/quickstart.ron",
        "--set",
        "data.source=Synthetic(train: 10, test: 30)",
        "--out",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-run"),
        "--overwrite",
        "--json",
    ]);
    assert!(ok, "stderr: {err}");
    let v = last_json(&out);
    let e = &v["evaluations"][0];
    assert_eq!(e["split"], "test");
    assert_eq!(e["samples"], 30);
    for key in [
        "accuracy",
        "coverage",
        "mean_timesteps",
        "mean_active_nodes",
    ] {
        assert!(e[key].is_number(), "{key} in {e}");
    }
    let coverage = e["coverage"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&coverage));
}

#[test]
fn bench_json_reports_throughput_and_stages() {
    let (ok, out, err) = neurograph(&[
        "bench",
        "scenes/quickstart.ron",
        "--samples",
        "20",
        "--warmup",
        "2",
        "--set",
        "data.source=Synthetic(train: 10, test: 20)",
        // The quickstart runs without radiation (as the settled pass): switch it on so the
        // radiation stage is timed too.
        "--set",
        "radiation.enabled=true",
        "--json",
    ]);
    assert!(ok, "stderr: {err}");
    let v = last_json(&out);
    assert!(v["samples_per_second"].as_f64().unwrap() > 0.0);
    for stage in ["radiation", "forward", "eviction", "readout"] {
        assert!(
            v["stage_seconds"][stage].as_f64().unwrap() >= 0.0,
            "{stage}"
        );
    }
    assert!(v["stage_seconds"]["radiation"].as_f64().unwrap() > 0.0);
}

#[test]
fn inspect_prints_graph_statistics() {
    let (ok, out, err) = neurograph(&["inspect", "scenes/mnist.ron"]);
    assert!(ok, "stderr: {err}");
    assert!(out.contains("static edges     4800"), "{out}");
    assert!(out.contains("derived min_timesteps"), "{out}");
    assert!(out.contains("memory estimate"), "{out}");
}

#[test]
fn bad_set_value_names_field_and_range() {
    let (ok, _, err) = neurograph(&[
        "run",
        "scenes/quickstart.ron",
        "--set",
        "architecture.vector_dim=0",
    ]);
    assert!(!ok);
    assert!(err.contains("architecture.vector_dim"), "{err}");
    assert!(err.contains("between 1 and 16"), "{err}");
}

#[test]
fn missing_mnist_data_says_how_to_get_it() {
    let (ok, _, err) = neurograph(&[
        "run",
        "scenes/mnist.ron",
        "--set",
        "data.source=Idx(dir: \"target/no-such-dir\")",
    ]);
    assert!(!ok);
    assert!(err.contains("fetch-mnist"), "{err}");
}

/// A run with the pattern cache writes the radiation statistics into its JSON and
/// summary.json, and `inspect --cache` prints them; counts add up.
#[test]
fn run_reports_radiation_cache_statistics_and_inspect_prints_them() {
    let dir = concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-cache");
    let scene = concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-cache.ron");
    let text = std::fs::read_to_string("scenes/quickstart-radiation.ron").unwrap();
    let script = text.find("script: [").unwrap();
    let text = format!(
        "{}script: [Evaluate(split: Test), Evaluate(split: Test)],\n)\n",
        &text[..script]
    );
    std::fs::write(scene, text).unwrap();
    let (ok, out, err) = neurograph(&[
        "run",
        scene,
        "--set",
        "data.source=Synthetic(train: 10, test: 20)",
        "--set",
        "radiation.cache.enabled=true",
        "--out",
        dir,
        "--overwrite",
        "--json",
    ]);
    assert!(ok, "stderr: {err}");
    let v = last_json(&out);
    let r = &v["radiation"];
    assert_eq!(r["enabled"], true);
    assert_eq!(r["cache"]["exact"], true);
    let levels = r["levels"].as_array().unwrap();
    let names: Vec<&str> = levels
        .iter()
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pattern", "static", "candidates"]);
    let n = |l: &serde_json::Value, k: &str| l[k].as_u64().unwrap();
    let (pattern, statics, candidates) = (&levels[0], &levels[1], &levels[2]);
    // Every radiating source looks up level 1 once; the kernel runs (level 3) for its misses.
    assert_eq!(
        n(pattern, "hits") + n(pattern, "misses") + n(pattern, "stale_misses"),
        n(statics, "hits")
    );
    assert_eq!(
        n(candidates, "hits"),
        n(pattern, "misses") + n(pattern, "stale_misses")
    );
    // The second evaluation of the same digits repeats the first's lookups: some hit.
    let per_step: Vec<u64> = v["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pattern_cache"]["hits"].as_u64().unwrap())
        .collect();
    assert_eq!(per_step.iter().sum::<u64>(), n(pattern, "hits"));
    let (ok, out, err) = neurograph(&["inspect", scene, "--cache", "--run", dir]);
    assert!(ok, "stderr: {err}");
    assert!(
        out.contains("pattern cache on (capacity 1000, q 1, max_staleness 0, exact)"),
        "{out}"
    );
    let line = out.lines().find(|l| l.starts_with("pattern")).unwrap();
    assert!(line.contains(&n(pattern, "hits").to_string()), "{out}");
    let (ok, _, err) = neurograph(&[
        "inspect",
        "scenes/quickstart-radiation.ron",
        "--cache",
        "--run",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/no-such-run"),
    ]);
    assert!(!ok && err.contains("cannot read"), "{err}");
}

/// Regression (issue 12, item 9): `bench --samples 18446744073709551615` panicked (capacity
/// overflow) and `--samples 100000000000` tried to allocate 800 GB up front.
#[test]
fn issue_12_bench_sample_counts_are_bounded() {
    for samples in ["18446744073709551615", "100000000000", "0"] {
        let (ok, _, err) = neurograph(&["bench", "scenes/quickstart.ron", "--samples", samples]);
        assert!(!ok, "--samples {samples} must be refused");
        assert!(err.contains("is not in 1..=10000000"), "{samples}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Regression (issue 12, smaller items): OS errors were printed twice ("No such file or
/// directory (os error 2): No such file or directory (os error 2)").
#[test]
fn issue_12_os_errors_are_printed_once() {
    let (ok, _, err) = neurograph(&[
        "inspect",
        "scenes/quickstart.ron",
        "--set",
        "graph=EdgeList(path: \"/nonexistent/edges.txt\")",
    ]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/edges.txt"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

#[test]
fn issue_12_import_refuses_empty_splits() {
    for (train, test) in [("0", "10"), ("10", "0")] {
        let (ok, _, err) = neurograph(&[
            "data",
            "import-mnist-json",
            "no-such-dir",
            "--train",
            train,
            "--test",
            test,
        ]);
        assert!(!ok, "an empty split was accepted");
        assert!(err.contains("0 is not in 1.."), "{err}");
    }
}

/// Regression (issue 12, smaller items): `batch` and `experiment` rejected `--set`, although
/// every scene command takes it; a bad value is reported with its position before anything runs.
#[test]
fn issue_12_experiment_and_batch_take_set() {
    for command in [
        &["experiment", "scheduling", "scenes/quickstart.ron"][..],
        &["batch", "scenes/quickstart.ron", "--out"][..],
    ] {
        let mut args = command.to_vec();
        let out = concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-set-batch");
        if args.last() == Some(&"--out") {
            args.push(out);
        }
        args.extend(["--set", "forward.decay=7"]);
        let (ok, _, err) = neurograph(&args);
        assert!(!ok);
        assert!(
            err.contains("--set forward.decay=7:1:"),
            "{command:?}: {err}"
        );
    }
}
