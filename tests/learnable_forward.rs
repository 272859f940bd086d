//! The learnable forward dynamics of SPEC 11 (`forward.combine: Phasor`, `forward.carry`,
//! `loss.readout: Grouped`) on the 5-node graph of `tests/forward.rs`, every timestep checked
//! against values computed by hand, and `Replace` reaching a fixed point after the graph's depth.

mod common;

use common::{state, tiny_scene, tiny_sim, with_tiny_params};
use neurograph::scene::{self, Carry, Combine, Inhibition, PhasorWeight, ReadoutSetting};
use neurograph::sim::Simulation;

const E: f32 = std::f32::consts::E;

/// The 5-node graph of `tests/forward.rs` (`common::tiny_sim`) with the SPEC 11 options.
fn tiny(carry: Carry, decay: f32, readout: ReadoutSetting) -> Simulation {
    let (mut s, graph) = tiny_scene(Inhibition::Excitatory);
    s.forward.decay = decay;
    s.forward.combine = Combine::Phasor {
        weight: PhasorWeight::Strength,
    };
    s.forward.carry = carry;
    s.loss.readout = readout;
    with_tiny_params(Simulation::with_graph(&s, graph).unwrap())
}

/// A perfectly coherent sum (ρ = 1) is clamped to 2ρ − 1 = 0.999: μ = round(4/2π · (π +
/// asin 0.999)) = round(2.9716) = 3.
const COHERENT_MU: u16 = 3;

#[test]
fn phasor_replace_by_hand() {
    let mut sim = tiny(Carry::Replace, 0.6, ReadoutSetting::Mean);
    sim.begin_sample(&[0, 0], &[3, 3], 0);
    // t = 0. 0->2 and 1->2: φo 0, μo 3, s = cos0·A3 = e, weight e each. 1->3: s = cos2·A3 = −e,
    // dropped. Node 2: Z = 2e·(1, 0), W = 2e: φ 0, ρ 1 -> μ 3, σ = W = 2e. Inputs stay clamped;
    // no decay or pruning under Replace.
    sim.step();
    assert_eq!(
        state(&mut sim),
        vec![(0, 0, 3, 1.0), (1, 0, 3, 1.0), (2, 0, COHERENT_MU, 2.0 * E)]
    );
    assert_eq!(sim.loop_state().tau, 1.0, "τ is not adapted under Replace");
    // t = 1. Node 2 again from its arrivals alone (σ 2e, not 4e); 2->4: φo 0, μo (3+1) = 4,
    // s = cos0·A4 = 1: node 4 Z = (1, 0), W = 1 -> φ 0, μ 3, σ 1.
    sim.step();
    assert_eq!(
        state(&mut sim),
        vec![
            (0, 0, 3, 1.0),
            (1, 0, 3, 1.0),
            (2, 0, COHERENT_MU, 2.0 * E),
            (4, 0, COHERENT_MU, 1.0)
        ]
    );
    assert!(sim.should_stop());
    // so_4 = cos0·A3 = e; e_0 = cos0·A2 = 1, e_1 = cos2·A2 = −1: logits (1, −1).
    let out = sim.finish_sample(0);
    assert_eq!(out.prediction, Some(0));
    let loss = out.loss.unwrap();
    assert!(
        (loss - (1.0f32 + (-2.0f32).exp()).ln()).abs() < 1e-6,
        "{loss}"
    );
}

#[test]
fn sum_on_the_same_graph_differs() {
    // The contrast: with `Sum` (SPEC 4) node 2 adds the two arrivals' indices, μ (3+3) mod 5 = 1,
    // where the phasor read-out gives the coherent μ 3 (`tests/forward.rs` checks the rest).
    let mut sim = tiny_sim(Inhibition::Excitatory);
    sim.begin_sample(&[0, 0], &[3, 3], 0);
    sim.step();
    assert_eq!(state(&mut sim), vec![(2, 0, 1, 2.0 * E * 0.6)]);
}

#[test]
fn phasor_accumulate_carries_the_sums() {
    // Decay 1: nothing is pruned (σ = 1 is not below τ = 1), so node 2 receives twice.
    let mut sim = tiny(Carry::Accumulate, 1.0, ReadoutSetting::Mean);
    sim.begin_sample(&[0, 0], &[3, 3], 0);
    sim.step();
    assert_eq!(
        state(&mut sim),
        vec![(0, 0, 3, 1.0), (1, 0, 3, 1.0), (2, 0, COHERENT_MU, 2.0 * E)]
    );
    // t = 1. Node 2 starts from its carried sums: Z = 4e·(1, 0), W = 4e -> σ 4e (Replace: 2e).
    sim.step();
    assert_eq!(
        state(&mut sim),
        vec![
            (0, 0, 3, 1.0),
            (1, 0, 3, 1.0),
            (2, 0, COHERENT_MU, 4.0 * E),
            (4, 0, COHERENT_MU, 1.0)
        ]
    );
}

#[test]
fn grouped_readout_by_hand() {
    // One output, two classes: output slot 0 votes for class 0 only; class 1 has no voter.
    // z = (cos(so_4, e_0), 0) = (1, 0); with label 1 the loss is −ln softmax_1 = ln(1 + e).
    let mut sim = tiny(Carry::Replace, 0.6, ReadoutSetting::Grouped);
    sim.begin_sample(&[0, 0], &[3, 3], 1);
    while !sim.should_stop() {
        sim.step();
    }
    let out = sim.finish_sample(1);
    assert_eq!(out.prediction, Some(0));
    let loss = out.loss.unwrap();
    assert!(
        (loss - (1.0f32 + 1.0f32.exp()).ln()).abs() < 1e-6,
        "label 1: {loss}"
    );
}

#[test]
fn replace_reaches_a_fixed_point_after_the_graph_depth() {
    // Without radiation, the activations under Replace depend only on the inputs once every
    // path has been walked: more timesteps change nothing.
    let scene = scene::parse(
        "Scene(architecture: (total_nodes: 120, input_nodes: 20, output_nodes: 20), \
         radiation: (enabled: false), \
         forward: (combine: Phasor(weight: Strength), carry: Replace, min_timesteps: 30, \
                   max_timesteps: 40), \
         loss: (readout: Grouped), schedule: (threads: 1, eval_replicas: 1))",
        "fixed-point.ron",
    )
    .unwrap();
    let mut sim = Simulation::new(&scene).unwrap();
    let len = sim.encoding_len();
    let (mut p, mut m) = (vec![0u16; len], vec![0u16; len]);
    sim.encode(&[77u8; 28 * 28], &mut p, &mut m);
    sim.begin_sample(&p, &m, 3);
    // The layered graph has 4 hidden layers: outputs settle after at most 5 timesteps.
    for _ in 0..6 {
        sim.step();
    }
    let settled = sim.activations();
    assert!(
        settled.iter().any(|&(k, _)| k >= 100),
        "an output is active"
    );
    for t in 6..12 {
        sim.step();
        assert_eq!(
            sim.activations(),
            settled,
            "timestep {t} changed the activations"
        );
    }
}

#[test]
fn phasor_with_radiation_is_identical_across_executors_and_threads() {
    let run = |executor: &str, threads: u32| {
        let text = format!(
            "Scene(architecture: (total_nodes: 150, input_nodes: 30, output_nodes: 20), \
             radiation: (enabled: true, top_k: 4), \
             forward: (combine: Phasor(weight: Magnitude), carry: Accumulate), \
             loss: (readout: Grouped), \
             schedule: (executor: {executor}, threads: {threads}, eval_replicas: 1))"
        );
        let scene = scene::parse(&text, "phasor-threads.ron").unwrap();
        let mut sim = Simulation::new(&scene).unwrap();
        (0..4u8)
            .map(|i| {
                let o = sim.run_image(&[40 * i + 10; 28 * 28], i);
                (
                    o.prediction,
                    o.loss.map(f32::to_bits),
                    o.timesteps,
                    sim.activations(),
                )
            })
            .collect::<Vec<_>>()
    };
    let base = run("Single", 1);
    assert!(base.iter().any(|o| o.0.is_some()), "some sample is covered");
    for (executor, threads) in [("Single", 2), ("Multi", 1), ("Multi", 2)] {
        assert_eq!(run(executor, threads), base, "{executor} x {threads}");
    }
}
