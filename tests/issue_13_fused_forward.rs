//! The fused emission (`combine: Sum` on one thread: each phase cell added to the arrival sums
//! as it is computed) gives exactly what the buffered emission gives (cells written in
//! parallel parts, then accumulated), sample by sample, in evaluation and in training.

use neurograph::run::Runner;
use neurograph::scene::{self, Combine, Scene, Split};

fn scene(threads: u32) -> Scene {
    let path = "scenes/quickstart-radiation.ron";
    let text = std::fs::read_to_string(path).expect("shipped scene exists");
    let mut s = scene::parse(&text, path).expect("shipped scene parses");
    assert_eq!(
        s.forward.combine,
        Combine::Sum,
        "the Sum path is what is fused"
    );
    s.data.source = scene::DataSource::Synthetic {
        train: 30,
        test: 30,
    };
    s.schedule.eval_replicas = 1;
    s.schedule.threads = threads;
    // Small units of work, so two threads really split every timestep's sources and the
    // buffered path runs.
    s.schedule.batch_size = 8;
    s
}

fn trace(threads: u32) -> (Vec<String>, String) {
    let mut runner = Runner::new(&scene(threads), true).expect("scene builds");
    let mut seen = Vec::new();
    for i in 0..30 {
        let o = runner.run_sample(Split::Test, i);
        // Every active node's index, φa, μa and σ, bit for bit.
        let active = runner.sim_mut().activations();
        seen.push(format!("{o:?} {active:?}"));
    }
    runner.train_epoch(Some(30));
    let world = neurograph::state::fingerprint(&runner.sim_mut().save_state());
    (seen, world)
}

#[test]
fn issue_13_fused_emission_equals_the_buffered_one() {
    let (fused, fused_world) = trace(1);
    let (buffered, buffered_world) = trace(2);
    assert!(
        fused.iter().any(|s| s.contains("Some(")),
        "something was covered"
    );
    for (i, (a, b)) in fused.iter().zip(&buffered).enumerate() {
        assert_eq!(a, b, "sample {i}");
    }
    assert_eq!(
        fused_world, buffered_world,
        "the worlds after an epoch of training"
    );
}

/// Encoding the next training sample on a second thread while the world trains on the current
/// one ends in the same world, bit for bit, as encoding each sample where it runs, across an
/// epoch boundary (the last sample of an epoch has no next one to encode).
#[test]
fn issue_13_encoding_ahead_trains_the_same_world() {
    let world = |ahead: bool| {
        let mut s = scene(1);
        assert!(
            matches!(s.adapter, scene::Adapter::Mlp { dropout, .. } if dropout > 0.0),
            "training encodings have dropout"
        );
        s.data.source = scene::DataSource::Synthetic {
            train: 40,
            test: 10,
        };
        let mut runner = Runner::new(&s, true).expect("scene builds");
        runner.set_encode_ahead(ahead);
        let first = runner.train_epoch(Some(25));
        let second = runner.train_epoch(None);
        let fingerprint = neurograph::state::fingerprint(&runner.sim_mut().save_state());
        let metrics = [first, second].map(|m| {
            (
                m.samples,
                m.loss.map(f64::to_bits),
                m.accuracy.to_bits(),
                m.parameters_changed,
            )
        });
        (metrics, fingerprint)
    };
    assert_eq!(world(true), world(false));
}
