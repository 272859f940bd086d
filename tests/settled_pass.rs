//! The settled pass (SPEC 11 `Replace` without radiation, one pass in topological order)
//! against the timestep loop it replaces: bit-identical activations, logits, losses and
//! predictions on every sample; the same gradients up to float summation order; and the loop
//! is kept whenever the pass would not be the same (a loop shorter than the graph's depth).

use neurograph::run::Runner;
use neurograph::scene::{self, Scene, Split};
use neurograph::sim::resources::Readout;

fn scene(settle: bool, min_timesteps: u32) -> Scene {
    let text = format!(
        r#"Scene(
            name: "settled", seed: 31,
            architecture: (total_nodes: 300, input_nodes: 60, output_nodes: 60),
            forward: (min_timesteps: {min_timesteps}, combine: Phasor(weight: Strength),
                      carry: Replace, settle: {settle}),
            radiation: (enabled: false),
            loss: (temperature: 0.1, readout: Grouped),
            training: (credit: Backprop, optimizer: Adam(lr: 3.0), batch_size: 4,
                       learn_encodings: true),
            adapter: Mlp(hidden: 32, dropout: 0.0),
            data: (source: Synthetic(train: 16, test: 24)),
            schedule: (threads: 1),
        )"#
    );
    scene::parse(&text, "settled.ron").unwrap()
}

#[test]
fn settled_pass_is_bit_identical_to_the_timestep_loop() {
    let mut looped = Runner::new(&scene(false, 6), true).unwrap();
    let mut settled = Runner::new(&scene(true, 6), true).unwrap();
    assert!(!looped.sim().settings().settled);
    assert!(
        settled.sim().settings().settled,
        "the pass applies: depth 5 <= 6 timesteps"
    );
    for i in 0..24 {
        let a = looped.run_sample(Split::Test, i);
        let b = settled.run_sample(Split::Test, i);
        assert_eq!(a.prediction, b.prediction, "sample {i}");
        assert_eq!(
            a.loss.map(f32::to_bits),
            b.loss.map(f32::to_bits),
            "sample {i}"
        );
        assert_eq!(a.timesteps, b.timesteps, "sample {i}");
        assert_eq!(a.active_outputs, b.active_outputs, "sample {i}");
        let logits = |r: &Runner| r.sim().world().resource::<Readout>().logits.clone();
        assert_eq!(logits(&looped), logits(&settled), "logits, sample {i}");
        assert_eq!(
            looped.sim_mut().activations(),
            settled.sim_mut().activations(),
            "every node's final activation, sample {i}"
        );
    }
}

#[test]
fn settled_gradients_equal_the_timestep_loops_up_to_summation_order() {
    let mut looped = Runner::new(&scene(false, 6), true).unwrap();
    let mut settled = Runner::new(&scene(true, 6), true).unwrap();
    let (len, n) = (looped.sim().encoding_len(), 16);
    for i in 0..n {
        let image = looped.data().train.image(i).to_vec();
        let label = looped.data().train.label(i);
        let (mut p, mut m) = (vec![0u16; len], vec![0u16; len]);
        looped.sim_mut().encode(&image, &mut p, &mut m);
        looped.sim_mut().train_encoded(&p, &m, label);
        settled.sim_mut().train_encoded(&p, &m, label);
        let (a, b) = (
            looped.sim().sample_gradient(),
            settled.sim().sample_gradient(),
        );
        let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(norm > 0.0, "sample {i}: zero gradient");
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        assert!(
            diff <= 1e-5 * norm,
            "sample {i}: |loop - settled| = {diff}, |loop| = {norm}"
        );
    }
}

#[test]
fn a_loop_shorter_than_the_graph_depth_keeps_the_timestep_loop() {
    // The layered graph's depth is 5 (inputs, four hidden layers, outputs): with 4 timesteps
    // the outputs are read before they settle, so the pass would differ and is not used.
    let runner = Runner::new(&scene(true, 4), true).unwrap();
    assert!(!runner.sim().settings().settled);
}

#[test]
fn silenced_hidden_nodes_never_activate_in_the_loop_or_the_settled_pass() {
    let mut outcomes = Vec::new();
    for settle in [false, true] {
        let mut s = scene(settle, 6);
        s.forward.silence_hidden = true;
        let mut runner = Runner::new(&s, true).unwrap();
        let roles = (60u32, 240u32); // inputs 0..60, hidden 60..240, outputs 240..300
        let mut mine = Vec::new();
        for i in 0..8 {
            let o = runner.run_sample(Split::Test, i);
            let active = runner.sim_mut().activations();
            assert!(
                active.iter().all(|(k, _)| *k < roles.0 || *k >= roles.1),
                "a silenced hidden node is active (settle {settle})"
            );
            assert!(o.active_outputs > 0, "outputs still see the inputs");
            mine.push((o.prediction, o.loss.map(f32::to_bits), active));
        }
        outcomes.push(mine);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "loop and settled pass agree when silenced"
    );
}

#[test]
fn frozen_hidden_parameters_do_not_move_and_the_rest_learn() {
    let mut s = scene(true, 6);
    s.training.freeze_hidden = true;
    let mut runner = Runner::new(&s, true).unwrap();
    let (before_p, before_m) = runner.sim_mut().parameters();
    runner.train_samples(16, None);
    let (after_p, after_m) = runner.sim_mut().parameters();
    let dim = 5;
    let hidden = 60 * dim..240 * dim;
    assert_eq!(before_p[hidden.clone()], after_p[hidden.clone()]);
    assert_eq!(before_m[hidden.clone()], after_m[hidden]);
    let outputs = 240 * dim..300 * dim;
    assert_ne!(before_p[outputs.clone()], after_p[outputs], "outputs learn");
}
