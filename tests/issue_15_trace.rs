//! The trace of one sample holds, value for value, the forward pass that
//! `tests/forward.rs::hand_computed_timesteps` computes by hand on the 5-node graph, and the
//! trace files hold what the trace holds.

use neurograph::run::Runner;
use neurograph::scene::{self, Inhibition, Split};

mod common;
use common::{state, tiny_sim};

const E: f32 = std::f32::consts::E;

#[test]
fn the_trace_of_the_five_node_graph_equals_the_hand_computation() {
    let mut sim = tiny_sim(Inhibition::Excitatory);
    let trace = sim.trace_encoded(&[0, 0], &[3, 3], 0);
    assert_eq!(trace.steps.len(), 3, "injection, then 2 timesteps");
    let [t0, t1, t2] = [&trace.steps[0], &trace.steps[1], &trace.steps[2]];

    // After injection: inputs 0 and 1 with φ 0, μ 3, σ 1; τ 1.
    assert_eq!(t0.t, 0);
    assert_eq!(t0.active, [true, true, false, false, false]);
    assert_eq!(
        (&t0.phase[..2], &t0.magnitude[..2]),
        (&[0, 0][..], &[3, 3][..])
    );
    assert_eq!(&t0.strength[..2], &[1.0, 1.0]);
    assert_eq!(t0.tau, 1.0);
    assert!(t0.arrivals.is_empty() && t0.sources.is_empty());

    // Timestep 1: 0->2 and 1->2 have s = cos0·A3 = e (kept); 1->3 has s = cos2·A3 = -e and
    // is dropped by the excitatory gate. Node 2: φ 0, μ (3+3) mod 5 = 1, σ = 2e·0.6; the
    // inputs decay below τ and are pruned. τ stays 1.
    assert_eq!(t1.sources, [0, 1]);
    let arrivals: Vec<(u32, u32, bool)> = t1
        .arrivals
        .iter()
        .map(|a| (a.source, a.target, a.kept))
        .collect();
    assert_eq!(arrivals, [(0, 2, true), (1, 2, true), (1, 3, false)]);
    for (a, s) in t1.arrivals.iter().zip([E, E, -E]) {
        assert!((a.strength - s).abs() < 1e-6, "{} vs {s}", a.strength);
        assert!(!a.radiation);
    }
    assert_eq!(t1.active, [false, false, true, false, false]);
    assert_eq!((t1.phase[2], t1.magnitude[2]), (0, 1));
    assert_eq!(t1.strength[2], (0.0 + E + E) * 0.6);
    assert_eq!(t1.tau, 1.0);

    // Timestep 2: 2->4 with φo 0, μo 2, s = cos0·A2 = 1. τ = 0.95; node 2 decays again,
    // output 4 holds 0.6 (outputs are never pruned), its signal cos0·A2 = 1.
    assert_eq!(t2.sources, [2]);
    assert_eq!(t2.arrivals.len(), 1);
    let a = t2.arrivals[0];
    assert_eq!((a.source, a.target, a.kept), (2, 4, true));
    assert!((a.strength - 1.0).abs() < 1e-6);
    assert_eq!(t2.active, [false, false, true, false, true]);
    assert_eq!(t2.strength[2], (0.0 + E + E) * 0.6 * 0.6);
    assert_eq!((t2.phase[4], t2.magnitude[4], t2.strength[4]), (0, 2, 0.6));
    assert_eq!(t2.tau, 0.95);
    assert!((t2.output_signals[0] - 1.0).abs() < 1e-6);

    // The last record is the world's state at readout.
    let last: Vec<(u32, u16, u16, f32)> = (0..5)
        .filter(|&k| t2.active[k])
        .map(|k| (k as u32, t2.phase[k], t2.magnitude[k], t2.strength[k]))
        .collect();
    assert_eq!(state(&mut sim), last);
    // Readout: logits (1, -1), prediction 0, two timesteps.
    let logits = &trace.outcome.logits;
    assert_eq!(logits.len(), 2);
    assert!((logits[0] - 1.0).abs() < 1e-6 && (logits[1] + 1.0).abs() < 1e-6);
    assert_eq!(trace.outcome.prediction, Some(0));
    assert_eq!(trace.outcome.timesteps, 2);
    // And tracing changed nothing: the plain pass gives the same outcome.
    assert_eq!(sim.run_encoded(&[0, 0], &[3, 3], 0), trace.outcome);
}

fn read_arrow(path: &std::path::Path) -> Vec<arrow_array::RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    arrow_ipc::reader::FileReader::try_new(file, None)
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

#[test]
fn the_trace_step_writes_tables_that_hold_the_trace() {
    let text = r#"Scene(
        name: "trace",
        architecture: (total_nodes: 120, input_nodes: 30, output_nodes: 10),
        radiation: (enabled: true, top_k: 4),
        adapter: Mlp(hidden: 16, dropout: 0.1),
        data: (source: Synthetic(train: 20, test: 10)),
        schedule: (threads: 1, eval_replicas: 1),
        script: [Train(epochs: 1), Trace(split: Test, samples: [2, 7])],
    )"#;
    let scene = scene::parse(text, "trace.ron").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = Runner::new(&scene, true)
        .unwrap()
        .with_output(dir.path())
        .unwrap();
    runner.run_script().unwrap();
    let out = dir.path().join("trace-2");
    let expected = runner.trace_samples(Split::Test, &[2, 7]).unwrap();
    let rows = |name: &str| -> usize {
        read_arrow(&out.join(name))
            .iter()
            .map(|b| b.num_rows())
            .sum()
    };
    let records: usize = expected.iter().map(|t| t.trace.steps.len()).sum();
    assert_eq!(rows("steps.arrow"), records);
    let active: usize = expected
        .iter()
        .flat_map(|t| &t.trace.steps)
        .map(|s| s.active.iter().filter(|&&a| a).count())
        .sum();
    assert_eq!(rows("nodes.arrow"), active);
    let arrivals: usize = expected
        .iter()
        .flat_map(|t| &t.trace.steps)
        .map(|s| s.arrivals.len())
        .sum();
    assert_eq!(rows("arrivals.arrow"), arrivals);
    assert!(
        expected
            .iter()
            .flat_map(|t| &t.trace.steps)
            .any(|s| s.arrivals.iter().any(|a| a.radiation))
    );
    assert_eq!(rows("outputs.arrow"), records * 10);
    // Values: the strength column of the arrivals table is the trace's, in order.
    let batches = read_arrow(&out.join("arrivals.arrow"));
    let column = batches[0]
        .column_by_name("strength")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Float32Array>()
        .unwrap()
        .values()
        .to_vec();
    let want: Vec<f32> = expected
        .iter()
        .flat_map(|t| &t.trace.steps)
        .flat_map(|s| s.arrivals.iter().map(|a| a.strength))
        .collect();
    assert_eq!(column, want);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trace.json")).unwrap()).unwrap();
    assert_eq!(summary["samples"][1]["sample"], 7);
    assert_eq!(
        summary["samples"][1]["timesteps"],
        expected[1].trace.outcome.timesteps
    );
    for name in ["raster-2.svg", "network-7.svg"] {
        let svg = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    // A sample outside the split is refused with the range.
    let e = runner.trace_samples(Split::Test, &[10]).unwrap_err();
    assert!(e.contains("0 ..= 9"), "{e}");
}
