//! Issue 15: held-out evaluation during training, per-sample predictions, confusion pictures,
//! provenance in the manifest and `inspect --run`, each checked against what the run computes
//! by other means.

use neurograph::run::Runner;
use neurograph::scene::{self, Scene, Split};

/// A scene that trains in a fraction of a second (online training, dropout on).
fn scene(script: &str) -> Scene {
    let text = format!(
        r#"Scene(
            name: "inspect",
            seed: 9,
            architecture: (total_nodes: 120, input_nodes: 30, output_nodes: 10),
            adapter: Mlp(hidden: 16, dropout: 0.1),
            data: (source: Synthetic(train: 60, test: 30)),
            schedule: (threads: 1, eval_replicas: 2),
            script: {script},
        )"#
    );
    scene::parse(&text, "issue-15.ron").unwrap()
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn held_out_evaluations_equal_evaluating_a_run_stopped_there() {
    let dir = tempfile::tempdir().unwrap();
    let s = scene("[Train(epochs: 2, evaluate_every: 25)]");
    let mut runner = Runner::new(&s, true)
        .unwrap()
        .with_output(dir.path())
        .unwrap();
    let report = runner.run_script().unwrap();
    let seen: Vec<u64> = report.evaluations.iter().map(|e| e.samples_seen).collect();
    assert_eq!(seen, [25, 50, 75, 100]);
    assert!(report.evaluations.iter().all(|e| e.step == 1));
    let epochs: Vec<u32> = report.evaluations.iter().map(|e| e.after_epochs).collect();
    assert_eq!(epochs, [0, 0, 1, 1]);
    // Evaluating does not change training: the same scene without evaluate_every trains the
    // same epochs, and a run stopped after n samples evaluates as the held-out row says.
    let mut plain = Runner::new(&scene("[Train(epochs: 2)]"), true).unwrap();
    let plain_report = plain.run_script().unwrap();
    let strip = |m: &neurograph::run::report::EpochMetrics| (m.loss, m.accuracy, m.samples);
    let a: Vec<_> = report.training.iter().map(strip).collect();
    let b: Vec<_> = plain_report.training.iter().map(strip).collect();
    assert_eq!(a, b);
    for row in &report.evaluations {
        let mut stopped = Runner::new(&s, true).unwrap();
        stopped.train_samples(row.samples_seen as usize, None);
        let e = stopped.evaluate(Split::Test, None).unwrap();
        assert_eq!(
            (e.accuracy, e.mean_loss),
            (row.accuracy, row.mean_loss),
            "{}",
            row.samples_seen
        );
    }
    // The picture shows them.
    let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
    let held = svg
        .split(r#"<g class="series-held-out-accuracy">"#)
        .nth(1)
        .unwrap();
    assert_eq!(
        held[..held.find("</g>").unwrap()]
            .matches("<circle")
            .count(),
        4
    );
}

#[test]
fn evaluate_every_out_of_range_names_the_range() {
    let text = r#"Scene(script: [Train(epochs: 1, evaluate_every: 0)])"#;
    let e = scene::parse(text, "bad.ron").unwrap_err().to_string();
    assert!(e.contains("script[0].evaluate_every"), "{e}");
    assert!(e.contains("10000000") || e.contains("10 000 000"), "{e}");
}

#[test]
fn predictions_csv_holds_every_samples_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let s = scene("[Train(epochs: 1), Evaluate(split: Test, predictions: true)]");
    let mut runner = Runner::new(&s, true)
        .unwrap()
        .with_output(dir.path())
        .unwrap();
    let report = runner.run_script().unwrap();
    let text = std::fs::read_to_string(dir.path().join("predictions-2.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("index,label,prediction,loss,timesteps,active_outputs,logit_0,"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 30);
    let mut correct = 0;
    for (i, row) in rows.iter().enumerate() {
        let o = runner.run_sample(Split::Test, i);
        assert_eq!(row[0], i.to_string());
        assert_eq!(row[1], o.label.to_string());
        assert_eq!(
            row[2],
            o.prediction.map_or(String::new(), |p| p.to_string())
        );
        assert_eq!(row[4], o.timesteps.to_string());
        assert_eq!(row[5], o.active_outputs.to_string());
        let logits: Vec<f32> = row[6..]
            .iter()
            .filter(|z| !z.is_empty())
            .map(|z| z.parse().unwrap())
            .collect();
        assert_eq!(logits, o.logits);
        correct += usize::from(o.prediction == Some(o.label));
    }
    assert_eq!(report.evaluations[0].accuracy, correct as f64 / 30.0);
    // And a confusion picture per Evaluate step, whose counts add up to the covered samples.
    let svg = std::fs::read_to_string(dir.path().join("confusion-2.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="cell""#).count(), 100);
}

#[test]
fn the_manifest_records_provenance_with_content_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits");
    let mut synthetic = Runner::new(&scene("[Evaluate(split: Test)]"), true).unwrap();
    let splits = synthetic.data().clone();
    std::fs::create_dir_all(&data).unwrap();
    for (name, set, images) in [
        (neurograph::data::TRAIN_IMAGES, &splits.train, true),
        (neurograph::data::TRAIN_LABELS, &splits.train, false),
        (neurograph::data::TEST_IMAGES, &splits.test, true),
        (neurograph::data::TEST_LABELS, &splits.test, false),
    ] {
        let path = data.join(name);
        if images {
            neurograph::data::write_images(&path, set).unwrap();
        } else {
            neurograph::data::write_labels(&path, set).unwrap();
        }
    }
    let ckpt = dir.path().join("a.ckpt");
    let next = synthetic.script_position();
    synthetic.save_checkpoint(&ckpt, next).unwrap();
    let mut s = scene(&format!(
        "[Restore(path: {:?}), Evaluate(split: Test)]",
        ckpt.display().to_string()
    ));
    s.data.source = scene::DataSource::Idx {
        dir: data.display().to_string(),
    };
    let out = dir.path().join("run");
    Runner::new(&s, true)
        .unwrap()
        .with_output(&out)
        .unwrap()
        .run_script()
        .unwrap();
    let p = &json(&out.join("manifest.json"))["provenance"];
    let commit = p["git_commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert!(["true", "false", "unknown"].contains(&p["git_dirty"].as_str().unwrap()));
    assert!(p["cores"].as_u64().unwrap() >= 1);
    assert!(p["radiation_backend"].as_str().is_some());
    assert!(!p["command_line"].as_array().unwrap().is_empty());
    let files = p["input_files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    for f in files {
        let bytes = std::fs::read(f["path"].as_str().unwrap()).unwrap();
        let want = format!("{:016x}", neurograph::hash::fnv1a64(&bytes));
        assert_eq!(f["fnv1a64"], want.as_str());
    }
    let restored = p["restored_checkpoints"].as_array().unwrap();
    let want = format!(
        "{:016x}",
        neurograph::hash::fnv1a64(&std::fs::read(&ckpt).unwrap())
    );
    assert_eq!(restored[0]["fnv1a64"], want.as_str());
    // `inspect --run` prints it.
    let text = neurograph::run::inspect_run::RunSummary::read(&out)
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("git_commit              {commit}")),
        "{text}"
    );
    assert!(text.contains(&format!("fnv1a64 {want}")), "{text}");
    assert!(text.contains("step  epochs     seen split"), "{text}");
}

#[test]
fn a_validation_split_is_carved_from_training_and_evaluated_during_training() {
    let mut s = scene("[Train(epochs: 1, evaluate_every: 20), Evaluate(split: Validation)]");
    s.data.validation = Some(15);
    let mut runner = Runner::new(&s, true).unwrap();
    let whole = Runner::new(&scene("[Evaluate(split: Test)]"), true).unwrap();
    // The last 15 of the 60 training samples, in order; training keeps the first 45.
    let (train, validation) = (&runner.data().train, &runner.data().validation);
    assert_eq!((train.len(), validation.len()), (45, 15));
    assert_eq!(validation.labels[..], whole.data().train.labels[45..]);
    assert_eq!(validation.images[..], whole.data().train.images[45 * 784..]);
    let report = runner.run_script().unwrap();
    assert_eq!(report.training[0].samples, 45);
    let held: Vec<(Split, u64)> = report
        .evaluations
        .iter()
        .map(|e| (e.split, e.samples_seen))
        .collect();
    assert_eq!(
        held,
        [
            (Split::Validation, 20),
            (Split::Validation, 40),
            (Split::Validation, 45)
        ]
    );
    assert!(report.evaluations.iter().all(|e| e.samples == 15));
    // The last two are the same model on the same split.
    assert_eq!(
        report.evaluations[2].accuracy,
        runner.evaluate(Split::Validation, None).unwrap().accuracy
    );
    // Asking for the whole training split is refused with the limit.
    let mut bad = scene("[Evaluate(split: Test)]");
    bad.data.validation = Some(60);
    let e = Runner::new(&bad, true).err().unwrap().to_string();
    assert!(
        e.contains("data.validation = 60") && e.contains("at most 59"),
        "{e}"
    );
}
