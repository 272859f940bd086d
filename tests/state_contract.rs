//! The state contract (rapier-style): checkpoint after sample k, restore into a fresh runner,
//! continue — the serialised persistent state equals the uninterrupted run's after EVERY later
//! sample, in every mode that keeps state of its own; and dropping the workspace mid-run
//! changes nothing.

use neurograph::run::Runner;
use neurograph::scene::{self, Scene};

/// Samples per epoch: the checkpoint at [`K`] falls mid-epoch, and epochs close after it.
const EPOCH: u32 = 12;
/// Samples in all.
const N: usize = 30;
/// The checkpoint: mid-epoch, and mid-window for gradient accumulation over 4.
const K: usize = 17;

fn scene(mode: &str) -> Scene {
    let (radiation, training, dropout) = match mode {
        "no radiation" => ("(enabled: false)", "()", 0.0),
        "radiation exact" => (
            "(enabled: true, cache: (enabled: true, quantization: 1, max_staleness: 0))",
            "()",
            0.0,
        ),
        "radiation approximate cache" => (
            "(enabled: true, cache: (enabled: true, quantization: 128, max_staleness: 20))",
            "()",
            0.0,
        ),
        "gradient accumulation" => (
            "(enabled: true)",
            "(gradient_accumulation: (steps: 4, scaling: Sqrt))",
            0.0,
        ),
        "dropout" => ("(enabled: true)", "()", 0.1),
        // The phase index is workspace rebuilt from the restored parameters (issue 16).
        "radiation index" => ("(enabled: true, backend: Index)", "()", 0.0),
        "phasor" => ("(enabled: true)", "()", 0.0),
        // The checkpoint at K = 17 falls mid-epoch and mid-batch (batches of 5 start at 12,
        // 17 is the 6th sample of the epoch: the second batch holds one sample's gradient).
        "backprop adam batches" => (
            "(enabled: true)",
            "(credit: Backprop, optimizer: Adam(lr: 3.0, decay: 0.85), batch_size: 5, \
             learn_encodings: true)",
            0.1,
        ),
        other => panic!("unknown mode {other}"),
    };
    let (forward, readout) = if mode == "phasor" || mode == "backprop adam batches" {
        (
            "(combine: Phasor(weight: Strength), carry: Replace)",
            "Grouped",
        )
    } else {
        ("()", "Mean")
    };
    let text = format!(
        r#"Scene(
            name: "contract",
            seed: 23,
            architecture: (total_nodes: 120, input_nodes: 24, output_nodes: 10),
            adapter: Mlp(hidden: 32, dropout: {dropout}),
            radiation: {radiation},
            forward: {forward},
            loss: (readout: {readout}),
            training: {training},
            data: (source: Synthetic(train: 40, test: 10)),
            schedule: (threads: 1, eval_replicas: 1),
        )"#
    );
    scene::parse(&text, "state-contract.ron").unwrap()
}

const MODES: [&str; 8] = [
    "no radiation",
    "radiation exact",
    "radiation approximate cache",
    "gradient accumulation",
    "dropout",
    "radiation index",
    "phasor",
    "backprop adam batches",
];

/// The uninterrupted run's state bytes after each sample (index s = after s samples).
fn uninterrupted(scene: &Scene) -> Vec<Vec<u8>> {
    let mut runner = Runner::new(scene, true).unwrap();
    let mut states = vec![runner.state_bytes()];
    for _ in 0..N {
        runner.train_samples(1, Some(EPOCH));
        states.push(runner.state_bytes());
    }
    states
}

/// Continues `runner` sample by sample to N, checking every state against `a`.
fn continue_and_compare(runner: &mut Runner, a: &[Vec<u8>], what: &str) {
    assert!(
        runner.state_bytes() == a[K],
        "{what}: state right after sample {K}"
    );
    for (s, expected) in a.iter().enumerate().skip(K + 1) {
        runner.train_samples(1, Some(EPOCH));
        assert!(
            runner.state_bytes() == *expected,
            "{what}: state after sample {s} differs from the uninterrupted run"
        );
    }
}

#[test]
fn restore_equals_never_stopping_after_every_sample_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    for mode in MODES {
        let scene = scene(mode);
        let a = uninterrupted(&scene);
        assert!(a[N] != a[K], "{mode}: training changed the state");
        let path = dir.path().join(format!("{}.ckpt", mode.replace(' ', "-")));
        let mut b = Runner::new(&scene, true).unwrap();
        b.train_samples(K, Some(EPOCH));
        b.save_checkpoint(&path, 0).unwrap();
        drop(b);
        let mut c = Runner::new(&scene, true).unwrap();
        c.restore_checkpoint(&path, 1).unwrap();
        continue_and_compare(&mut c, &a, mode);
    }
}

#[test]
fn replacing_the_workspace_mid_run_changes_nothing() {
    for mode in MODES {
        let scene = scene(mode);
        let a = uninterrupted(&scene);
        let mut b = Runner::new(&scene, true).unwrap();
        b.train_samples(K, Some(EPOCH));
        b.reset_workspace();
        continue_and_compare(&mut b, &a, &format!("{mode}, workspace dropped"));
    }
}

#[test]
fn epochs_closed_after_a_mid_epoch_restore_report_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene("radiation approximate cache");
    let strip = |mut m: neurograph::run::report::EpochMetrics| {
        m.seconds = 0.0;
        m.samples_per_second = 0.0;
        m
    };
    let mut a = Runner::new(&scene, true).unwrap();
    let whole: Vec<_> = a
        .train_samples(N, Some(EPOCH))
        .into_iter()
        .map(strip)
        .collect();
    assert_eq!(whole.len(), N / EPOCH as usize);
    let path = dir.path().join("mid.ckpt");
    let mut b = Runner::new(&scene, true).unwrap();
    b.train_samples(K, Some(EPOCH));
    b.save_checkpoint(&path, 0).unwrap();
    let mut c = Runner::new(&scene, true).unwrap();
    c.restore_checkpoint(&path, 1).unwrap();
    let after: Vec<_> = c
        .train_samples(N - K, Some(EPOCH))
        .into_iter()
        .map(strip)
        .collect();
    // Epoch 2 was open at the checkpoint; it and every later one match.
    assert_eq!(after, whole[K / EPOCH as usize..]);
    assert_eq!(
        c.training_log()
            .iter()
            .cloned()
            .map(strip)
            .collect::<Vec<_>>(),
        whole,
        "the restored log holds every epoch once"
    );
}
