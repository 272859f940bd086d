//! Training end to end: learning beats chance on held-out data (and does not with scrambled
//! labels), checkpoint → restore → continue equals an uninterrupted run, corrupt checkpoints
//! are refused, and bad `Set` steps fail clearly.

use neurograph::run::Runner;
use neurograph::scene::{self, Scene, Split};

/// A small synthetic task that trains in about a second.
fn scene(script: &str) -> Scene {
    let text = format!(
        r#"Scene(
            name: "learn",
            seed: 11,
            architecture: (total_nodes: 200, input_nodes: 40, output_nodes: 10),
            adapter: Mlp(hidden: 64, dropout: 0.0),
            data: (source: Synthetic(train: 600, test: 300)),
            schedule: (threads: 1, eval_replicas: 1),
            script: {script},
        )"#
    );
    scene::parse(&text, "training-test.ron").unwrap()
}

/// Runs a scene that must fail and returns its error message.
fn run_err(scene: &Scene, dir: &std::path::Path) -> String {
    match Runner::new(scene, true)
        .and_then(|r| r.with_output(dir))
        .and_then(|mut r| r.run_script())
    {
        Ok(_) => panic!("the run must fail"),
        Err(e) => e.to_string(),
    }
}

fn run(scene: &Scene, dir: &std::path::Path) -> neurograph::run::RunReport {
    Runner::new(scene, true)
        .unwrap()
        .with_output(dir)
        .unwrap()
        .run_script()
        .unwrap()
}

#[test]
fn checkpoint_restore_continue_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    // A Set before the checkpoint must carry over to the resumed run.
    let whole = scene(
        "[Train(epochs: 2, samples_per_epoch: 150), Set(field: \"forward.decay\", value: \"0.5\"), Checkpoint(path: \"mid.ckpt\"), Train(epochs: 1, samples_per_epoch: 150), Checkpoint(path: \"end.ckpt\")]",
    );
    let a = run(&whole, dir.path());
    let resumed = scene(
        "[Restore(path: \"../mid.ckpt\"), Train(epochs: 1, samples_per_epoch: 150), Checkpoint(path: \"resumed.ckpt\")]",
    );
    let b = run(&resumed, &dir.path().join("continued"));
    let end = neurograph::checkpoint::load(&dir.path().join("end.ckpt")).unwrap();
    let again = neurograph::checkpoint::load(&dir.path().join("continued/resumed.ckpt")).unwrap();
    assert_eq!(end.state.sim, again.state.sim);
    let strip = |mut m: neurograph::run::report::EpochMetrics| {
        m.seconds = 0.0;
        m.samples_per_second = 0.0;
        m
    };
    let third_a = strip(a.training[2].clone());
    let third_b = strip(b.training.last().unwrap().clone());
    assert_eq!(third_a, third_b);
    assert!(
        a.training.iter().map(|m| m.parameters_changed).sum::<u64>() > 0,
        "training changed parameters"
    );
}

#[test]
fn corrupt_and_truncated_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(
        &scene("[Train(epochs: 1, samples_per_epoch: 20), Checkpoint(path: \"a.ckpt\")]"),
        &dir.path().join("a"),
    );
    let path = dir.path().join("a/a.ckpt");
    let bytes = std::fs::read(&path).unwrap();
    let restore = scene("[Restore(path: \"../a/a.ckpt\")]");
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = run_err(&restore, &dir.path().join("flipped"));
    assert!(
        err.contains("Restore") && err.to_lowercase().contains("corrupt"),
        "{err}"
    );
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = run_err(&restore, &dir.path().join("truncated"));
    assert!(err.to_lowercase().contains("truncated"), "{err}");
}

#[test]
fn checkpoint_from_another_graph_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(
        &scene("[Checkpoint(path: \"a.ckpt\")]"),
        &dir.path().join("a"),
    );
    let mut other = scene("[Restore(path: \"../a/a.ckpt\")]");
    other.seed = 12;
    let err = run_err(&other, &dir.path().join("other"));
    assert!(err.contains("graph"), "{err}");
}

#[test]
fn set_steps_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scene("[Train(epochs: 1, samples_per_epoch: 5)]");
    s.script.push(neurograph::scene::Step::Set {
        field: "training.hidden_credit_weight".into(),
        value: "-1".into(),
    });
    let err = run_err(&s, &dir.path().join("bad"));
    assert!(
        err.contains("step 2") && err.contains("hidden_credit_weight"),
        "{err}"
    );
    // A good Set takes effect for the following steps.
    let ok = scene(
        "[Set(field: \"training.learning_rate_phase\", value: \"0.03\"), Train(epochs: 1, samples_per_epoch: 5)]",
    );
    let mut runner = Runner::new(&ok, true)
        .unwrap()
        .with_output(&dir.path().join("good"))
        .unwrap();
    runner.run_script().unwrap();
    assert_eq!(runner.scene().training.learning_rate_phase, 0.03);
}

#[test]
fn training_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        &scene("[Train(epochs: 2, samples_per_epoch: 30), Evaluate(split: Test, samples: 30)]"),
        dir.path(),
    );
    assert_eq!(r.training.len(), 2);
    for f in [
        "manifest.json",
        "metrics.jsonl",
        "summary.json",
        "curves.csv",
        "curves.svg",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    // One line per epoch; evaluations are lines of their own kind.
    let epochs = lines
        .lines()
        .filter(|l| !l.contains(r#""kind":"evaluation""#));
    assert_eq!(epochs.count(), 2);
    let _ = Split::Test;
}

/// Regression (issue 12, item 10): an empty test split reported "accuracy 0.0000" with exit 0,
/// and batch aggregates averaged it in as 0%.
#[test]
fn issue_12_evaluating_an_empty_split_is_refused() {
    use neurograph::data::{ImageSet, write_images, write_labels};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits");
    std::fs::create_dir_all(&data).unwrap();
    let train = neurograph::data::synthetic(3, 20, 1).train;
    let empty = ImageSet {
        rows: 28,
        cols: 28,
        images: Vec::new(),
        labels: Vec::new(),
    };
    write_images(&data.join("train-images-idx3-ubyte"), &train).unwrap();
    write_labels(&data.join("train-labels-idx1-ubyte"), &train).unwrap();
    write_images(&data.join("t10k-images-idx3-ubyte"), &empty).unwrap();
    write_labels(&data.join("t10k-labels-idx1-ubyte"), &empty).unwrap();
    let text = format!(
        r#"Scene(
            architecture: (total_nodes: 60, input_nodes: 12, output_nodes: 10),
            data: (source: Idx(dir: {:?})),
            schedule: (threads: 1, eval_replicas: 1),
            script: [Evaluate(split: Test)],
        )"#,
        data.display().to_string()
    );
    let scene = scene::parse(&text, "empty-test.ron").unwrap();
    let err = run_err(&scene, &dir.path().join("run"));
    assert!(err.contains("the test split is empty"), "{err}");
}

/// Regression (issue 12, smaller items): `samples_per_epoch` larger than the training split was
/// silently clamped, so a run reported fewer samples per epoch than its scene asked for.
#[test]
fn issue_12_samples_per_epoch_beyond_the_split_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_err(
        &scene("[Train(epochs: 1, samples_per_epoch: 601)]"),
        dir.path(),
    );
    assert!(
        err.contains("samples_per_epoch = 601 but the training split has 600 samples"),
        "{err}"
    );
}
