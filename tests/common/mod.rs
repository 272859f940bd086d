//! The 5-node graph the forward-pass tests compute by hand, shared by `tests/forward.rs` and
//! `tests/learnable_forward.rs`.

use neurograph::graph::{Graph, Roles};
use neurograph::scene::{Encodings, Inhibition, Scene};
use neurograph::sim::Simulation;

/// 5 nodes, D = 1, N = 4 (cos = 1, 0, -1, 0), M = 5 (A = 1, 1/e, 1, e, 1).
/// Edges 0->2, 1->2, 1->3, 2->4, 3->4. Inputs 0, 1; hidden 2, 3; output 4.
pub fn tiny_scene(inhibition: Inhibition) -> (Scene, Graph) {
    let mut s = Scene::default();
    s.architecture.total_nodes = 5;
    s.architecture.input_nodes = 2;
    s.architecture.output_nodes = 1;
    s.architecture.vector_dim = 1;
    s.architecture.classes = 2;
    s.resolution.phase_bins = 4;
    s.resolution.magnitude_bins = 5;
    s.radiation.enabled = false;
    s.radiation.top_k = 1;
    s.forward.min_timesteps = Some(2);
    s.forward.max_timesteps = 10;
    s.forward.target_active = Some(4);
    s.forward.inhibition = inhibition;
    s.encodings = Encodings::Explicit {
        phase: vec![vec![0], vec![2]],
        magnitude: vec![vec![2], vec![2]],
    };
    s.adapter = neurograph::scene::Adapter::Linear;
    let roles = Roles {
        total: 5,
        inputs: 2,
        outputs: 1,
    };
    let graph = Graph::parse_edge_list(roles, "2 0 1\n3 1\n4 2 3\n", "tiny").unwrap();
    (s, graph)
}

pub fn tiny_sim(inhibition: Inhibition) -> Simulation {
    let (scene, graph) = tiny_scene(inhibition);
    with_tiny_params(Simulation::with_graph(&scene, graph).unwrap())
}

/// θ: node 2 (φ 0, μ 0), node 3 (φ 2, μ 0), node 4 (φ 0, μ 1); inputs' parameters unused.
pub fn with_tiny_params(mut sim: Simulation) -> Simulation {
    sim.set_params(2, &[0], &[0]);
    sim.set_params(3, &[2], &[0]);
    sim.set_params(4, &[0], &[1]);
    sim
}

pub fn state(sim: &mut Simulation) -> Vec<(u32, u16, u16, f32)> {
    sim.activations()
        .into_iter()
        .map(|(k, a)| (k, a.phase[0], a.magnitude[0], a.strength))
        .collect()
}
