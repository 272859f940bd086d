//! Every radiation kernel gives the same model: training with each backend the CPU has ends in
//! the same world, bit for bit, and `bench --compare-backends` reports them all.

use neurograph::radiation::{Backend, BackendChoice};
use neurograph::run::{self, BenchMode};
use neurograph::scene::Scene;

fn scene() -> Scene {
    let path = "scenes/quickstart-radiation.ron";
    let text = std::fs::read_to_string(path).expect("shipped scene exists");
    let mut s = neurograph::scene::parse(&text, path).expect("shipped scene parses");
    s.architecture.total_nodes = 200;
    s.architecture.input_nodes = 40;
    s.adapter = neurograph::scene::Adapter::Mlp {
        hidden: 32,
        dropout: 0.1,
    };
    s.data.source = neurograph::scene::DataSource::Synthetic {
        train: 60,
        test: 30,
    };
    s
}

#[test]
fn issue_13_every_radiation_backend_trains_the_same_world() {
    let comparison = run::compare_backends(&scene(), BenchMode::Train, 40, 0, 1, None)
        .expect("the comparison runs");
    // Every kernel the CPU has, each instruction set once, plain Rust included.
    let mut want: Vec<String> = BackendChoice::ALL
        .into_iter()
        .filter(|&c| c != BackendChoice::Auto && c.check().is_ok())
        .map(|c| Backend::resolve(c, 0, 1).name().to_string())
        .collect();
    let mut seen = std::collections::HashSet::new();
    want.retain(|name| seen.insert(name.clone()));
    let got: Vec<String> = comparison.rows.iter().map(|r| r.backend.clone()).collect();
    assert_eq!(got, want);
    // Every SIMD integer kernel the CPU has is among them.
    for backend in Backend::supported() {
        if backend.is_int16() && backend != Backend::Int16Portable {
            assert!(
                got.contains(&backend.name().to_string()),
                "{backend} is not compared"
            );
        }
    }
    assert_eq!(comparison.identical_worlds, Some(true));
    // The reference's ratio to itself is 1; every row has one figure per round.
    let f32_row = comparison.rows.iter().find(|r| r.choice == "F32").unwrap();
    assert_eq!(f32_row.radiation_ratio_to_f32, vec![1.0]);
    assert!(
        comparison
            .rows
            .iter()
            .all(|r| r.samples_per_second.len() == 1)
    );
}

#[test]
fn issue_13_the_backend_is_not_part_of_a_runs_inputs() {
    let a = scene();
    let mut b = scene();
    b.radiation.backend = BackendChoice::Portable;
    assert_eq!(run::outdir::inputs_hash(&a), run::outdir::inputs_hash(&b));
    b.radiation.top_k = 5;
    assert_ne!(run::outdir::inputs_hash(&a), run::outdir::inputs_hash(&b));
}
