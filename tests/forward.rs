//! Forward pass on tiny graphs: activations at every timestep against values computed by hand,
//! and against an independent, deliberately naive reference implementation of SPEC 4-5.

#![expect(
    clippy::field_reassign_with_default,
    reason = "tests set scene fields one by one so each differs visibly from the defaults"
)]

use std::collections::BTreeMap;

use neurograph::graph::{Graph, Roles};
use neurograph::model::phase::radiation_score;
use neurograph::model::rng;
use neurograph::model::tables::Tables;
use neurograph::scene::{ExecutorKind, Inhibition, Scene};
use neurograph::sim::Simulation;

const E: f32 = std::f32::consts::E;

mod common;
use common::{state, tiny_sim};

#[test]
fn hand_computed_timesteps() {
    let mut sim = tiny_sim(Inhibition::Excitatory);
    // Both inputs injected with φ 0, μ 3, σ 1.
    sim.begin_sample(&[0, 0], &[3, 3], 0);
    assert_eq!(state(&mut sim), vec![(0, 0, 3, 1.0), (1, 0, 3, 1.0)]);
    assert!(!sim.should_stop());

    // t = 0. 0->2: φo 0, μo 3, s = cos0·A3 = e (kept). 1->2: the same. 1->3: φo 2, μo 3,
    // s = cos2·A3 = -e: inhibitory, dropped, so node 3 stays inactive.
    // Node 2 from zeros: φ 0, μ (3+3) mod 5 = 1, σ = 2e. n = 3: τ stays 1 (3 ≤ T = 4,
    // 3 ≥ 0.7·4). Decay 0.6: inputs fall to 0.6 < τ and are pruned; node 2 keeps 1.2e.
    sim.step();
    let sigma2 = (0.0 + E + E) * 0.6;
    assert_eq!(state(&mut sim), vec![(2, 0, 1, sigma2)]);
    assert_eq!(sim.loop_state().tau, 1.0);
    assert_eq!(sim.loop_state().active_after_arrivals, 3);
    assert!(!sim.should_stop(), "t = 1 < min_timesteps");

    // t = 1. 2->4: φo 0, μo (1+1) = 2, s = cos0·A2 = 1. n = 2 < 2.8: τ = 0.95.
    // Decay: node 2 keeps 1.2e·0.6; output 4 decays to 0.6 < τ but outputs are never pruned.
    sim.step();
    assert_eq!(
        state(&mut sim),
        vec![(2, 0, 1, sigma2 * 0.6), (4, 0, 2, 1.0 * 0.6)]
    );
    assert_eq!(sim.loop_state().tau, 0.95);
    // t = 2 >= min_timesteps and an output is active: stop.
    assert!(sim.should_stop());

    let out = sim.finish_sample(0);
    // so_4 = cos0·A2 = 1; e_0 = [1], e_1 = [-1]: logits (1, -1), prediction 0,
    // loss = ln(1 + e^-2).
    assert_eq!(out.prediction, Some(0));
    assert_eq!(out.timesteps, 2);
    assert_eq!(out.mean_active, 2.5);
    let loss = out.loss.unwrap();
    assert!(
        (loss - (1.0f32 + (-2.0f32).exp()).ln()).abs() < 1e-6,
        "loss {loss}"
    );
}

#[test]
fn after_accumulation_deactivates_net_negative_nodes() {
    // Same graph, but node 3 starts active with σ 2 so that the -e arrival leaves it at
    // 2 - e <= 0, which deactivates it.
    let mut sim = tiny_sim(Inhibition::AfterAccumulation);
    sim.begin_sample(&[0, 0], &[3, 3], 0);
    sim.step();
    // Node 3's only arrival is -e: from zeros its net strength is -e <= 0, so it is not active.
    assert!(state(&mut sim).iter().all(|&(k, ..)| k != 3));
    assert_eq!(sim.loop_state().active_after_arrivals, 3);
}

#[test]
fn state_does_not_leak_between_samples() {
    let mut sim = tiny_sim(Inhibition::Excitatory);
    let first = sim.run_encoded(&[0, 0], &[3, 3], 0);
    let second = sim.run_encoded(&[0, 0], &[3, 3], 0);
    assert_eq!(first, second);
    assert_eq!(sim.loop_state().tau, 0.95);
}

/// A naive reference of SPEC 4-5: maps instead of arrays, brute-force radiation, the same
/// arrival order (ascending source, static before radiation).
struct Reference {
    tables: Tables,
    graph: Graph,
    dim: usize,
    phase: Vec<Vec<u16>>,
    magnitude: Vec<Vec<u16>>,
    top_k: usize,
    target: f32,
    min_timesteps: u32,
    max_timesteps: u32,
}

type RefState = BTreeMap<u32, (Vec<u16>, Vec<u16>, f32)>;

impl Reference {
    fn step(&self, active: &RefState, tau: &mut f32) -> RefState {
        let (n_bins, m_bins) = (
            self.tables.phase_bins as u32,
            self.tables.magnitude_bins as u32,
        );
        let mut next = active.clone();
        for (&u, (ap, am, _)) in active {
            let mut targets: Vec<u32> = self.graph.successors.row(u as usize).to_vec();
            let statics = targets.clone();
            let mut scored: Vec<(f32, u32)> = (0..self.graph.len() as u32)
                .filter(|&v| v != u && !statics.contains(&v))
                .map(|v| {
                    (
                        radiation_score(&self.tables, ap, &self.phase[v as usize]),
                        v,
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            targets.extend(scored.iter().take(self.top_k).map(|&(_, v)| v));
            for v in targets {
                let mut s = 0.0f32;
                let mut op = vec![0u16; self.dim];
                let mut om = vec![0u16; self.dim];
                for d in 0..self.dim {
                    op[d] = ((ap[d] as u32 + self.phase[v as usize][d] as u32) % n_bins) as u16;
                    om[d] = ((am[d] as u32 + self.magnitude[v as usize][d] as u32) % m_bins) as u16;
                    s += self.tables.cos[op[d] as usize] * self.tables.amp[om[d] as usize];
                }
                if s <= 0.0 {
                    continue;
                }
                let e = next
                    .entry(v)
                    .or_insert_with(|| (vec![0; self.dim], vec![0; self.dim], 0.0));
                for d in 0..self.dim {
                    e.0[d] = ((e.0[d] as u32 + op[d] as u32) % n_bins) as u16;
                    e.1[d] = ((e.1[d] as u32 + om[d] as u32) % m_bins) as u16;
                }
                e.2 += s;
            }
        }
        let n = next.len() as f32;
        let total = self.graph.len() as f32;
        if n > self.target {
            *tau *= 1.0 + 0.1 * n / self.target;
        } else if n < 0.7 * self.target {
            *tau *= 0.95;
        }
        if n > 0.9 * total {
            *tau *= 2.0;
        }
        *tau = tau.clamp(0.5, 5.0);
        let first_output = self.graph.roles.first_output();
        next.into_iter()
            .filter_map(|(k, (p, m, s))| {
                let s = s * 0.6;
                (s >= *tau || k >= first_output).then_some((k, (p, m, s)))
            })
            .collect()
    }
}

#[test]
fn matches_naive_reference_with_radiation() {
    for seed in 0..6u64 {
        let mut scene = Scene::default();
        scene.seed = seed;
        scene.architecture.total_nodes = 60;
        scene.architecture.input_nodes = 12;
        scene.architecture.output_nodes = 4;
        scene.architecture.vector_dim = 3;
        scene.architecture.classes = 4;
        scene.resolution.phase_bins = 16;
        scene.resolution.magnitude_bins = 16;
        scene.radiation.top_k = 3;
        scene.adapter = neurograph::scene::Adapter::Linear;
        scene.schedule.executor = if seed % 2 == 0 {
            ExecutorKind::Single
        } else {
            ExecutorKind::Multi
        };
        scene.schedule.threads = 1 + (seed % 2) as u32;
        let mut sim = Simulation::new(&scene).unwrap();
        let graph = Graph::layered(
            Roles {
                total: 60,
                inputs: 12,
                outputs: 4,
            },
            6,
            4,
            &mut rng::stream(seed, rng::Stream::Graph),
        );
        // Fresh random parameters through the public API, mirrored in the reference.
        let mut r = rng::stream_with(seed, "forward-test", 1);
        let mut phase = Vec::new();
        let mut magnitude = Vec::new();
        for k in 0..60 {
            let p: Vec<u16> = (0..3).map(|_| rng::below(&mut r, 16) as u16).collect();
            let m: Vec<u16> = (0..3).map(|_| rng::below(&mut r, 16) as u16).collect();
            sim.set_params(k, &p, &m);
            phase.push(p);
            magnitude.push(m);
        }
        let reference = Reference {
            tables: Tables::new(16, 16),
            graph,
            dim: 3,
            phase,
            magnitude,
            top_k: 3,
            target: 48.0,
            min_timesteps: sim.settings().min_timesteps,
            max_timesteps: 40,
        };
        let in_p: Vec<u16> = (0..36).map(|_| rng::below(&mut r, 16) as u16).collect();
        let in_m: Vec<u16> = (0..36).map(|_| rng::below(&mut r, 16) as u16).collect();
        sim.begin_sample(&in_p, &in_m, 0);
        let mut expected: RefState = (0..12u32)
            .map(|k| {
                let i = k as usize * 3;
                (k, (in_p[i..i + 3].to_vec(), in_m[i..i + 3].to_vec(), 1.0))
            })
            .collect();
        let mut tau = 1.0f32;
        let mut t = 0;
        loop {
            let outputs_active = expected.keys().any(|&k| k >= 56);
            let stop = expected.is_empty()
                || (t >= reference.min_timesteps && outputs_active)
                || t + 1 >= reference.max_timesteps;
            assert_eq!(sim.should_stop(), stop, "seed {seed} t {t}");
            if stop {
                break;
            }
            sim.step();
            expected = reference.step(&expected, &mut tau);
            let got: RefState = sim
                .activations()
                .into_iter()
                .map(|(k, a)| {
                    (
                        k,
                        (a.phase[..3].to_vec(), a.magnitude[..3].to_vec(), a.strength),
                    )
                })
                .collect();
            assert_eq!(got, expected, "seed {seed} t {t}");
            assert_eq!(sim.loop_state().tau, tau, "seed {seed} t {t}");
            t += 1;
        }
        assert!(t >= 1, "seed {seed}: at least one timestep ran");
    }
}
