//! `--trace-systems`: every timed system run becomes one Chrome-trace span (its own test
//! binary, because the recorder is process-wide).

use neurograph::run::Runner;
use neurograph::scene::{self, Split};
use neurograph::sim::systrace;

#[test]
fn every_system_run_is_one_span_with_its_stage() {
    let text = r#"Scene(
        architecture: (total_nodes: 120, input_nodes: 30, output_nodes: 10),
        radiation: (enabled: true, top_k: 4),
        adapter: Mlp(hidden: 16, dropout: 0.0),
        data: (source: Synthetic(train: 20, test: 10)),
        schedule: (threads: 1, eval_replicas: 1),
    )"#;
    let mut runner = Runner::new(&scene::parse(text, "t.ron").unwrap(), true).unwrap();
    runner.sim().reset_clock();
    systrace::start();
    let mut timesteps = 0;
    for i in 0..5 {
        timesteps += runner.run_sample(Split::Test, i).timesteps;
    }
    let (json, spans) = systrace::finish();
    let trace: serde_json::Value = serde_json::from_str(&json).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), spans);
    // The clock counted the same runs: one span per run of each system.
    let radiate = complete
        .iter()
        .filter(|e| e["name"] == "radiation::radiate")
        .count();
    assert_eq!(
        radiate as u32, timesteps,
        "radiation runs once per timestep"
    );
    let readout = complete
        .iter()
        .filter(|e| e["name"] == "readout::readout")
        .count();
    assert_eq!(readout, 5, "readout runs once per sample");
    let total: f64 = complete.iter().map(|e| e["dur"].as_f64().unwrap()).sum();
    let clock: f64 = runner
        .sim()
        .system_seconds()
        .iter()
        .map(|(_, _, s)| s)
        .sum();
    assert!(
        (total * 1e-6 - clock).abs() <= 1e-6 * clock.max(1e-9) + 1e-6,
        "{total} µs vs {clock} s"
    );
    for e in &complete {
        assert!(e["cat"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(e["ts"].as_f64().unwrap() >= 0.0);
    }
    // Off again: nothing more is recorded.
    runner.run_sample(Split::Test, 6);
    assert_eq!(systrace::finish().1, 0);
}
