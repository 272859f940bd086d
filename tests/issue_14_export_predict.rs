//! Issue 14: a trained model leaves the tool (export), predicts new images (predict), and
//! shows its pass (trace), and long calls stop when asked (interrupt): each checked against
//! the run it came from.

use std::sync::atomic::Ordering;

use neurograph::export::{self, Model};
use neurograph::run::predict::{self, Prediction};
use neurograph::run::{RunError, Runner};
use neurograph::scene::{self, Scene, Split};
use safetensors::SafeTensors;

fn scene(path: &str) -> Scene {
    let text = std::fs::read_to_string(path).expect("shipped scene exists");
    let mut s = scene::parse(&text, path).expect("shipped scene parses");
    s.data.source = scene::DataSource::Synthetic {
        train: 64,
        test: 40,
    };
    s.schedule.eval_replicas = 1;
    s
}

fn trained(path: &str, dir: &std::path::Path) -> (Runner, std::path::PathBuf) {
    let mut runner = Runner::new(&scene(path), true).expect("scene builds");
    runner.train_epoch(Some(64));
    let ckpt = dir.join("m.ckpt");
    let next = runner.script_position();
    runner
        .save_checkpoint(&ckpt, next)
        .expect("checkpoint saves");
    (runner, ckpt)
}

fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn export_holds_the_checkpoints_parameters_graph_and_scene() {
    let dir = tempfile::tempdir().unwrap();
    for path in ["scenes/quickstart.ron", "scenes/quickstart-radiation.ron"] {
        let (mut runner, ckpt) = trained(path, dir.path());
        let out = dir.path().join("m.safetensors");
        let summary = export::export_checkpoint(&ckpt, &out).expect("exports");
        assert!(summary.bytes > 0);
        let bytes = std::fs::read(&out).unwrap();
        let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
        let (phase, magnitude) = runner.sim_mut().parameters();
        let n = runner.scene().architecture.total_nodes as usize;
        let dim = runner.scene().architecture.vector_dim as usize;
        let t = st.tensor("nodes.phase").unwrap();
        assert_eq!(t.shape(), [n, dim]);
        let want: Vec<i32> = phase.iter().map(|&v| i32::from(v)).collect();
        assert_eq!(i32s(t.data()), want, "{path}");
        let want: Vec<i32> = magnitude.iter().map(|&v| i32::from(v)).collect();
        assert_eq!(i32s(st.tensor("nodes.magnitude").unwrap().data()), want);
        let graph = &runner
            .sim()
            .world()
            .resource::<neurograph::sim::resources::Topology>()
            .graph;
        let indptr: Vec<i64> = graph.successors.offsets.iter().map(|&o| o.into()).collect();
        assert_eq!(i64s(st.tensor("graph.indptr").unwrap().data()), indptr);
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().expect("metadata written");
        assert_eq!(meta["format"], "neurograph-model");
        assert_eq!(meta["samples_seen"], "64");
        let stored = scene::parse(&meta["scene"], "metadata").expect("the stored scene parses");
        assert_eq!(stored.to_ron(), runner.scene().to_ron());
        // The adapter's layers add up to its weights.
        let weights: usize = ["adapter.w1", "adapter.w2", "adapter.w3", "adapter.w"]
            .iter()
            .filter_map(|name| st.tensor(name).ok())
            .map(|t| t.shape().iter().product::<usize>())
            .sum();
        assert_eq!(weights, runner.sim_mut().save_state().adapter.len());
    }
}

#[test]
fn adapter_pixels_inverts_the_weight_count() {
    let mut s = scene("scenes/quickstart.ron");
    // Mlp: H·P + H·H + (I·D·2)·H with H = 256, I = 100, D = 5.
    let (h, out) = (256, 100 * 5 * 2);
    assert_eq!(
        export::adapter_pixels(&s, h * 784 + h * h + out * h),
        Some(784)
    );
    assert_eq!(export::adapter_pixels(&s, h * h + out * h + 7), None);
    s.adapter = scene::Adapter::Linear;
    assert_eq!(export::adapter_pixels(&s, out * 100), Some(100));
    assert_eq!(export::adapter_pixels(&s, out * 100 + 1), None);
}

#[test]
fn predict_on_the_test_split_equals_the_runs_own_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut runner, ckpt) = trained("scenes/quickstart-radiation.ron", dir.path());
    let (images, labels) = (dir.path().join("x.idx"), dir.path().join("y.idx"));
    neurograph::data::write_images(&images, &runner.data().test).unwrap();
    neurograph::data::write_labels(&labels, &runner.data().test).unwrap();
    let csv = dir.path().join("p.csv");
    let summary = predict::predict_files(&ckpt, &images, Some(&labels), Some(&csv), |_| true)
        .expect("predicts");
    let evaluation = runner.evaluate(Split::Test, None).unwrap();
    assert_eq!(summary.images, 40);
    assert_eq!(summary.accuracy, Some(evaluation.accuracy));
    for (i, p) in summary.predictions.iter().enumerate() {
        let o = runner.run_sample(Split::Test, i);
        assert_eq!(
            (p.prediction, p.timesteps, p.label),
            (o.prediction, o.timesteps, Some(o.label))
        );
        assert_eq!(p.logits, o.logits);
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let first = text.lines().nth(1).unwrap();
    let p: &Prediction = &summary.predictions[0];
    let pred = p.prediction.map_or(String::new(), |c| c.to_string());
    assert!(first.starts_with(&format!("0,{pred},{},{},", p.timesteps, p.label.unwrap())));
    assert_eq!(text.lines().count(), 41);
}

#[test]
fn predict_refuses_images_of_another_size_and_a_corrupt_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = trained("scenes/quickstart.ron", dir.path());
    let images = dir.path().join("x.idx");
    let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 10, 0, 0, 0, 10];
    bytes.extend(std::iter::repeat_n(0u8, 200));
    std::fs::write(&images, bytes).unwrap();
    let e = predict::predict_files(&ckpt, &images, None, None, |_| true).unwrap_err();
    assert!(e.to_string().contains("10x10 images (100 pixels)"), "{e}");
    let bad = dir.path().join("bad.ckpt");
    std::fs::write(&bad, b"garbage").unwrap();
    let e = Model::load(&bad).err().expect("refused");
    assert!(e.to_string().contains("not a neurograph checkpoint"), "{e}");
}

#[test]
fn a_trace_ends_where_the_pass_ends_and_changes_nothing() {
    let mut runner = Runner::new(&scene("scenes/quickstart-radiation.ron"), true).unwrap();
    let image = runner.data().test.image(3).to_vec();
    let label = runner.data().test.label(3);
    let trace = runner.sim_mut().trace_image(&image, label);
    let plain = runner.sim_mut().run_image(&image, label);
    assert_eq!(trace.outcome, plain);
    assert!(!trace.outcome.logits.is_empty());
    let inputs = runner.scene().architecture.input_nodes as usize;
    let first = &trace.steps[0];
    assert!(first.active[..inputs].iter().all(|&a| a));
    assert!(first.active[inputs..].iter().all(|&a| !a));
    assert_eq!(trace.steps.len() as u32, plain.timesteps + 1);
    for pair in trace.steps.windows(2) {
        assert_eq!(pair[1].t, pair[0].t + 1);
        // A timestep's sources are the nodes active when it began.
        let before: Vec<u32> = (0..pair[0].active.len() as u32)
            .filter(|&k| pair[0].active[k as usize])
            .collect();
        assert_eq!(pair[1].sources, before);
        assert_eq!(pair[1].radiation_targets.len(), before.len() * trace.top_k);
    }
}

#[test]
fn the_interrupt_flag_stops_training_and_evaluation_between_samples() {
    let mut runner = Runner::new(&scene("scenes/quickstart-radiation.ron"), true).unwrap();
    let flag = runner.interrupt_flag();
    flag.store(true, Ordering::SeqCst);
    assert!(matches!(
        runner.train_epochs(1, Some(20)),
        Err(RunError::Interrupted)
    ));
    assert_eq!(runner.samples_seen(), 0);
    assert_eq!(
        runner.evaluate(Split::Test, None).unwrap_err(),
        "interrupted"
    );
    flag.store(false, Ordering::SeqCst);
    let metrics = runner.train_epochs(1, Some(20)).unwrap();
    assert_eq!((metrics.len(), metrics[0].samples), (1, 20));
}
