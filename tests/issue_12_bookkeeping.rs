//! Regressions of issue 12's bookkeeping items: a batch never reports stale results (item 1),
//! run directories never collide (2), explicit settings win over a restored checkpoint (3), a
//! second writer is refused and a killed one does not block (4), and a run never mixes its
//! files with another run's (5).

use std::path::{Path, PathBuf};
use std::process::Command;

use neurograph::batch::cli::{BatchArgs, BatchError, ProgressMode};
use neurograph::batch::summary::RunStatus;
use neurograph::batch::{self, SceneEntry};
use neurograph::run::Runner;
use neurograph::run::outdir::Existing;
use neurograph::scene::{self, Scene};

/// A scene that trains in a fraction of a second.
fn text(name: &str, script: &str) -> String {
    format!(
        r#"Scene(
            name: "{name}",
            seed: 5,
            architecture: (total_nodes: 120, input_nodes: 30, output_nodes: 10),
            adapter: Mlp(hidden: 16, dropout: 0.0),
            data: (source: Synthetic(train: 80, test: 40)),
            schedule: (threads: 1, eval_replicas: 1),
            script: {script},
        )"#
    )
}

fn scene(name: &str, script: &str) -> Scene {
    scene::parse(&text(name, script), "issue-12.ron").unwrap()
}

fn batch_args(scenes: Vec<PathBuf>, out: &Path) -> BatchArgs {
    BatchArgs {
        scenes,
        seeds: None,
        grid: Vec::new(),
        jobs: 1,
        out: out.to_path_buf(),
        shard: None,
        resume: false,
        refuse_changed: false,
        sets: Vec::new(),
        json: false,
        progress: ProgressMode::None,
        progress_every: 60,
        quiet: true,
    }
}

/// The epoch lines of a `metrics.jsonl` (evaluation lines have `"kind": "evaluation"`).
fn epoch_lines(path: &Path) -> Vec<serde_json::Value> {
    lines(path)
        .into_iter()
        .filter(|m| m.get("kind").is_none())
        .collect()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Item 1: after `epochs: 1` became `epochs: 2` in the scene, a rerun said "0 done, 2 already
/// complete" and kept the old results.
#[test]
fn issue_12_a_batch_reruns_runs_whose_scene_changed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.ron");
    let out = dir.path().join("batch");
    let one = "[Train(epochs: 1), Evaluate(split: Test)]";
    std::fs::write(&file, text("small", one)).unwrap();
    let mut args = batch_args(vec![file.clone()], &out);
    args.seeds = Some("1,2".into());
    let first = args.run().unwrap();
    assert_eq!(first.counts.done, 2);
    // Unchanged: both are complete.
    let again = args.run().unwrap();
    assert_eq!((again.counts.skipped, again.counts.rerun), (2, 0));
    // Edited: both are stale, and rerun.
    std::fs::write(
        &file,
        text("small", "[Train(epochs: 2), Evaluate(split: Test)]"),
    )
    .unwrap();
    let mut refuse = args.clone();
    refuse.refuse_changed = true;
    match refuse.run() {
        Err(BatchError::Changed { runs }) => assert_eq!(runs.len(), 2, "{runs:?}"),
        other => panic!(
            "--refuse-changed must refuse, got {:?}",
            other.map(|r| r.counts)
        ),
    }
    let edited = args.run().unwrap();
    assert_eq!((edited.counts.rerun, edited.counts.skipped), (2, 0));
    assert!(edited.rows.iter().all(|r| r.status == RunStatus::Rerun));
    for row in &edited.rows {
        let epochs = epoch_lines(&Path::new(&row.dir).join("metrics.jsonl"));
        assert_eq!(epochs.len(), 2, "the rerun's results replace the old ones");
    }
    // A --set changes the inputs too.
    args.sets = vec!["training.learning_rate_phase=0.002".into()];
    assert_eq!(args.run().unwrap().counts.rerun, 2);
    assert_eq!(args.run().unwrap().counts.skipped, 2);
}

/// Item 2: two scenes with one `name`, or grid values differing only in characters a directory
/// name cannot hold, shared a directory; the second run was "skipped" with the first's results.
#[test]
fn issue_12_runs_whose_names_collide_get_their_own_directories() {
    let dir = tempfile::tempdir().unwrap();
    let script = "[Train(epochs: 1), Evaluate(split: Test)]";
    let (a, b) = (dir.path().join("a.ron"), dir.path().join("b.ron"));
    std::fs::write(&a, text("same", script)).unwrap();
    std::fs::write(&b, text("same", script)).unwrap();
    let entries = [SceneEntry::load(&a), SceneEntry::load(&b)];
    let specs = batch::expand(&entries, Some(&[1]), &[]).unwrap();
    assert_ne!(specs[0].dir_name, specs[1].dir_name);
    assert!(
        specs[0].dir_name.starts_with("same-s1-"),
        "{}",
        specs[0].dir_name
    );
    let grid = batch::parse_grid(r#"name="g/a","g_a""#).unwrap();
    let specs = batch::expand(&entries[..1], Some(&[1]), &[grid]).unwrap();
    assert_ne!(specs[0].dir_name, specs[1].dir_name);
    // Runs that would be the very same experiment are refused, before anything runs.
    let twice = [SceneEntry::load(&a), SceneEntry::load(&a)];
    let err = batch::expand(&twice, None, &[]).unwrap_err();
    assert!(err.contains("listed twice"), "{err}");
    let repeated = batch::parse_grid("training.learning_rate_phase=0.01,0.01").unwrap();
    let err = batch::expand(&entries[..1], None, &[repeated]).unwrap_err();
    assert!(err.contains("listed twice"), "{err}");
    // End to end: both scenes run, each with its own results.
    let report = batch_args(vec![a, b], &dir.path().join("out"))
        .run()
        .unwrap();
    assert_eq!(report.counts.done, 2);
    assert_ne!(report.rows[0].dir, report.rows[1].dir);
    // Nor are they averaged together as if they were two seeds of one scene.
    assert_eq!(report.aggregates.len(), 2);
    assert!(report.aggregates.iter().all(|g| g.runs == 1));
    assert!(
        report.aggregates[0].scene.starts_with("same ("),
        "{:?}",
        report.aggregates[0].scene
    );
}

/// Item 3: after `Restore`, `--set training.learning_rate_phase=...` had no effect and the
/// manifest recorded the checkpoint's value.
#[test]
fn issue_12_explicit_settings_win_over_a_restored_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let pretrain = scene(
        "pre",
        "[Set(field: \"training.learning_rate_phase\", value: \"0.05\"), Train(epochs: 1), \
         Checkpoint(path: \"pre.ckpt\")]",
    );
    Runner::new(&pretrain, true)
        .unwrap()
        .with_output(&dir.path().join("pre"))
        .unwrap()
        .run_script()
        .unwrap();
    let restore = "[Restore(path: \"../pre/pre.ckpt\"), Train(epochs: 1)]";
    // Without an override the checkpoint's setting continues, and the run says so.
    let mut plain = Runner::new(&scene("fine", restore), true)
        .unwrap()
        .with_output(&dir.path().join("plain"))
        .unwrap();
    plain.run_script().unwrap();
    assert_eq!(plain.scene().training.learning_rate_phase, 0.05);
    // With `--set`, the explicit value wins, and the manifest records it.
    let mut fine = scene("fine", restore);
    fine.apply_set("training.learning_rate_phase=0.0001")
        .unwrap();
    let mut set = Runner::new(&fine, true)
        .unwrap()
        .with_overrides(vec!["training.learning_rate_phase=0.0001".into()])
        .with_output(&dir.path().join("set"))
        .unwrap();
    set.run_script().unwrap();
    assert_eq!(set.scene().training.learning_rate_phase, 0.0001);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("set/manifest.json")).unwrap(),
    )
    .unwrap();
    let note = &manifest["restores"][0];
    assert_eq!(
        note["kept_overrides"][0][0], "training.learning_rate_phase",
        "{note}"
    );
    assert!(
        !note["from_checkpoint"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d[0] == "training.learning_rate_phase"),
        "{note}"
    );
    let final_scene = scene::parse(manifest["final_scene_text"].as_str().unwrap_or(""), "m");
    assert!(final_scene.is_err() || final_scene.unwrap().training.learning_rate_phase == 0.0001);
    // A `Set` step after the Restore wins too.
    let later = scene(
        "fine",
        "[Restore(path: \"../pre/pre.ckpt\"), \
         Set(field: \"training.learning_rate_phase\", value: \"0.02\"), Train(epochs: 1)]",
    );
    let mut step = Runner::new(&later, true)
        .unwrap()
        .with_output(&dir.path().join("step"))
        .unwrap();
    step.run_script().unwrap();
    assert_eq!(step.scene().training.learning_rate_phase, 0.02);
}

/// Smaller items: a checkpoint with another adapter width was called "malformed", and one with
/// other class encodings replaced the scene's silently.
#[test]
fn issue_12_a_checkpoint_for_another_adapter_or_encodings_says_so() {
    let dir = tempfile::tempdir().unwrap();
    Runner::new(&scene("pre", "[Checkpoint(path: \"pre.ckpt\")]"), true)
        .unwrap()
        .with_output(&dir.path().join("pre"))
        .unwrap()
        .run_script()
        .unwrap();
    let mut wider = scene("wide", "[Restore(path: \"../pre/pre.ckpt\")]");
    wider
        .apply_set("adapter=Mlp(hidden: 24, dropout: 0.0)")
        .unwrap();
    let err = Runner::new(&wider, true)
        .and_then(|r| r.with_output(&dir.path().join("wide")))
        .and_then(|mut r| r.run_script())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not fit this run") && err.contains("another adapter"),
        "{err}"
    );
    assert!(!err.contains("malformed"), "{err}");
    let mut other = scene("enc", "[Restore(path: \"../pre/pre.ckpt\")]");
    other.apply_set("encodings=Separated(seed: 9)").unwrap();
    let mut runner = Runner::new(&other, true)
        .unwrap()
        .with_output(&dir.path().join("enc"))
        .unwrap();
    runner.run_script().unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("enc/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["restores"][0]["encodings_replaced"], true);
}

/// Item 5: running into a used directory appended to `metrics.jsonl` (epochs 1-4 twice) and
/// left old files beside the new manifest; a Restore duplicated epoch lines.
#[test]
fn issue_12_a_run_never_mixes_its_files_with_another_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let s = scene(
        "mix",
        "[Train(epochs: 2), Checkpoint(path: \"a.ckpt\"), Train(epochs: 1), \
         Restore(path: \"a.ckpt\"), Train(epochs: 1), Evaluate(split: Test)]",
    );
    let report = Runner::new(&s, true)
        .unwrap()
        .with_output(&out)
        .unwrap()
        .run_script()
        .unwrap();
    let epochs: Vec<u64> = epoch_lines(&out.join("metrics.jsonl"))
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(
        epochs,
        [1, 2, 3],
        "the restored history replaces the epochs after it"
    );
    assert_eq!(report.training.len(), 3);
    // The same run again is refused (it is finished), and so is another scene's.
    let err = Runner::new(&s, true)
        .and_then(|r| r.with_output(&out))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("a finished run of scene \"mix\" with the same inputs")
            && err.contains("--overwrite"),
        "{err}"
    );
    let other = scene("other", "[Train(epochs: 1)]");
    let err = Runner::new(&other, true)
        .and_then(|r| r.with_output(&out))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("with other inputs"), "{err}");
    // Replacing it leaves nothing of the old run behind, even when the new run fails.
    let failing = scene("failing", "[Restore(path: \"/nonexistent/x.ckpt\")]");
    let err = Runner::new(&failing, true)
        .and_then(|r| r.with_output_mode(&out, Existing::Replace))
        .and_then(|mut r| r.run_script())
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.ckpt"), "{err}");
    let left: Vec<String> = neurograph::lock::contents(&out)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["manifest.json"], "only the failed run's manifest");
    // An unfinished run of the same inputs is restarted without --overwrite.
    Runner::new(&failing, true)
        .unwrap()
        .with_output(&out)
        .expect("restarting an interrupted attempt of the same inputs");
    // A script that restores a checkpoint inside the directory it would replace is refused
    // before anything is deleted.
    Runner::new(&s, true)
        .unwrap()
        .with_output_mode(&out, Existing::Replace)
        .unwrap()
        .run_script()
        .unwrap();
    let reads_inside = scene("inside", "[Restore(path: \"a.ckpt\")]");
    let err = Runner::new(&reads_inside, true)
        .and_then(|r| r.with_output_mode(&out, Existing::Replace))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("inside the output directory"), "{err}");
    assert!(out.join("a.ckpt").exists());
}

/// Item 4: two writers on one directory interleaved `metrics.jsonl` and deleted each other's
/// runs; a lock left by a killed process must not block forever.
#[test]
fn issue_12_a_second_writer_is_refused_and_a_killed_one_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let exe = env!("CARGO_BIN_EXE_neurograph");
    let run = |extra: &[&str]| {
        Command::new(exe)
            .args(["run", "scenes/quickstart.ron", "--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let small = ["--set", "data.source=Synthetic(train: 20, test: 20)"];
    // A holder in this process: the command is refused and names it.
    let held = neurograph::lock::DirLock::acquire(&out).unwrap();
    let refused = run(&small);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("in use by another neurograph process")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    drop(held);
    // A writer killed with SIGKILL mid-run leaves its lock file; the next run takes it.
    let long = ["--set", "data.source=Synthetic(train: 4000, test: 20)"];
    let mut child = Command::new(exe)
        .args(["run", "scenes/quickstart.ron", "--quiet", "--out"])
        .arg(&out)
        .args(long)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .spawn()
        .unwrap();
    let lock = out.join(neurograph::lock::LOCK_FILE);
    let pid = format!("pid {} ", child.id());
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with(&pid))
        || !out.join("manifest.json").exists()
    {
        assert!(
            start.elapsed().as_secs() < 120,
            "the child never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !out.join("summary.json").exists(),
        "killed before it finished"
    );
    let again = run(&[small[0], small[1], "--overwrite"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(out.join("summary.json").exists());
    // Two batches on one output: the second is refused.
    let batch_out = dir.path().join("batch");
    let _first = neurograph::lock::DirLock::acquire(&batch_out).unwrap();
    let file = dir.path().join("b.ron");
    std::fs::write(&file, text("b", "[Train(epochs: 1)]")).unwrap();
    match batch_args(vec![file], &batch_out).run() {
        Err(BatchError::Busy(e)) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!(
            "a second batch must be refused, got {:?}",
            other.map(|r| r.counts)
        ),
    }
}
