//! Regression test for issue 12, item 7: memory grew with every sample (`bench --samples 1000`
//! peaked at 75 MB RSS, `--samples 16000` at 272 MB). `Activation` is inserted and removed
//! every timestep, and bevy kept a record of every removal until its trackers were cleared,
//! which nothing did. The records kept must not grow with the number of samples.

use neurograph::scene;
use neurograph::sim::Simulation;
use neurograph::sim::components::Activation;

#[test]
fn removal_records_do_not_grow_with_samples() {
    let scene = scene::parse(
        "Scene(architecture: (total_nodes: 80, input_nodes: 16, output_nodes: 10), \
         radiation: (enabled: false), schedule: (threads: 1, eval_replicas: 1))",
        "issue-12.ron",
    )
    .unwrap();
    let mut sim = Simulation::new(&scene).unwrap();
    let image = [90u8; 28 * 28];
    let mut records = Vec::new();
    let mut longest = 0;
    for samples in 1..=40 {
        let outcome = sim.run_image(&image, (samples % 10) as u8);
        assert!(outcome.timesteps > 1, "nodes are evicted every timestep");
        longest = longest.max(outcome.timesteps as usize);
        records.push(sim.world().removed::<Activation>().count());
    }
    // At most the removals of the last two samples are kept (bevy double-buffers them): each
    // removes at most every node once per timestep and once at its reset.
    let bound = 2 * 80 * (longest + 1);
    assert!(
        records.iter().all(|&r| r <= bound),
        "removal records grow with samples (bound {bound}): {records:?}"
    );
}
