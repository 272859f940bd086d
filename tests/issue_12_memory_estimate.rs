//! Regression (issue 12, item 13): the memory estimate was far off (mnist.ron estimated
//! 67.5 MiB, measured 196 MB; the quickstart 3.8 MiB vs 46 MB), so the 16 GiB guard did not
//! bound real memory. Here runs of several shapes are measured with the counting allocator
//! and each one's heap peak must stay below its estimate, which must stay within 2.5× of it.

use neurograph::run::Runner;
use neurograph::scene;

#[global_allocator]
static ALLOCATOR: neurograph::alloc::Counting = neurograph::alloc::Counting;

fn shape(
    nodes: u32,
    dim: u32,
    adapter: &str,
    radiation: bool,
    training: &str,
    schedule: &str,
) -> String {
    format!(
        r#"Scene(
            name: "memory",
            architecture: (total_nodes: {nodes}, input_nodes: 60, output_nodes: 20, vector_dim: {dim}),
            adapter: {adapter},
            radiation: (enabled: {radiation}),
            training: {training},
            data: (source: Synthetic(train: 120, test: 24)),
            schedule: {schedule},
            script: [Train(epochs: 1, samples_per_epoch: 24), Evaluate(split: Test)],
        )"#
    )
}

#[test]
fn issue_12_the_memory_estimate_bounds_the_measured_heap() {
    let one = "(threads: 1, eval_replicas: 1)";
    let worlds = "(threads: 1, eval_replicas: 2, train_worlds: 2)";
    let adam = "(credit: Backprop, optimizer: Adam(), batch_size: 4, learn_encodings: true)";
    let sign = "()";
    let cases = [
        shape(400, 5, "Mlp(hidden: 64, dropout: 0.0)", false, sign, one),
        shape(3000, 16, "Linear", false, sign, one),
        shape(
            1500,
            4,
            "Mlp(hidden: 256, dropout: 0.1)",
            true,
            sign,
            worlds,
        ),
        shape(
            2000,
            8,
            "Mlp(hidden: 128, dropout: 0.0)",
            false,
            adam,
            worlds,
        ),
        shape(3000, 2, "Linear", true, adam, one),
    ];
    let mut table = Vec::new();
    for text in &cases {
        let scene = scene::parse(text, "memory.ron").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let before = neurograph::alloc::live_bytes().expect("the counting allocator is installed");
        neurograph::alloc::reset_peak();
        let report = Runner::new(&scene, true)
            .unwrap()
            .with_output(dir.path())
            .unwrap()
            .run_script()
            .unwrap();
        let peak = neurograph::alloc::peak_bytes().unwrap() - before;
        let memory = report.memory.expect("a run reports its memory");
        let estimate = memory.estimate_bytes;
        // The estimate's "process" part is the binary and its thread stacks, not heap.
        let heap_estimate = estimate - (8 << 20);
        table.push(format!(
            "{:>7} B peak, {:>7} B estimated (heap part {:.2}x)",
            peak,
            estimate,
            heap_estimate as f64 / peak as f64
        ));
        assert!(
            peak <= heap_estimate,
            "heap peak {peak} above the estimate's heap part {heap_estimate}: {text}\n{}",
            table.join("\n")
        );
        assert!(
            heap_estimate as f64 <= 2.5 * peak as f64,
            "estimate {heap_estimate} more than 2.5x the heap peak {peak}: {text}\n{}",
            table.join("\n")
        );
        eprintln!("{}", table.last().unwrap());
        // Each owner's bytes are measured (the workspace a run grows is in the peak only).
        let owned: u64 = memory
            .owners
            .iter()
            .map(|(_, b)| b.expect("measured"))
            .sum();
        assert!(owned <= peak, "owners {owned} > peak {peak}");
    }
}
