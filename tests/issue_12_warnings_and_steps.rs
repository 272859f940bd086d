//! Regressions of issue 12's smaller items: identical class encodings, an empty edge list and
//! outputs no input reaches were accepted without a word, and nothing said which evaluation
//! row belonged to which script step.

use neurograph::run::Runner;
use neurograph::scene;

fn runner(extra: &str, script: &str) -> Runner {
    let text = format!(
        r#"Scene(
            name: "warn",
            architecture: (total_nodes: 40, input_nodes: 10, output_nodes: 10, vector_dim: 2),
            adapter: Linear,
            data: (source: Synthetic(train: 20, test: 10)),
            schedule: (threads: 1, eval_replicas: 1),
            {extra}
            script: {script},
        )"#
    );
    let scene = scene::parse(&text, "warn.ron").unwrap();
    Runner::new(&scene, true).unwrap()
}

#[test]
fn issue_12_a_graph_without_edges_or_with_unreached_outputs_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# no edges\n").unwrap();
    let r = runner(
        &format!("graph: EdgeList(path: {:?}),", empty.display().to_string()),
        "[Evaluate(split: Test)]",
    );
    let report = r
        .with_output(&dir.path().join("a"))
        .unwrap()
        .run_script()
        .unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("no edges")),
        "{:?}",
        report.warnings
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("10 of the 10 outputs are reached by no input")),
        "{:?}",
        report.warnings
    );
    // Node 30 (an output) is fed by input 0; the other nine outputs are not.
    let some = dir.path().join("some.txt");
    std::fs::write(&some, "30 0\n").unwrap();
    let r = runner(
        &format!("graph: EdgeList(path: {:?}),", some.display().to_string()),
        "[Evaluate(split: Test)]",
    );
    let w = neurograph::run::warnings(r.sim().graph_stats(), r.scene(), r.sim().class_encodings());
    assert_eq!(
        w,
        [
            "9 of the 10 outputs are reached by no input along the graph's edges: they can never \
          activate"
        ]
    );
    // The default layered graph reaches every output: no warning.
    let r = runner("", "[Evaluate(split: Test)]");
    let w = neurograph::run::warnings(r.sim().graph_stats(), r.scene(), r.sim().class_encodings());
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn issue_12_identical_class_encodings_are_warned_about() {
    // Ten classes, class 7 a copy of class 2.
    let rows = |copy: bool| {
        (0..10)
            .map(|c| {
                let c = if copy && c == 7 { 2 } else { c };
                format!("[{}, {}]", c, c + 1)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let explicit = |copy: bool| {
        format!(
            "encodings: Explicit(phase: [{}], magnitude: [{}]),",
            rows(copy),
            rows(copy)
        )
    };
    let r = runner(&explicit(true), "[Evaluate(split: Test)]");
    let w = neurograph::run::warnings(r.sim().graph_stats(), r.scene(), r.sim().class_encodings());
    assert_eq!(
        w,
        ["classes 2 and 7 have identical class encodings: the readout cannot tell them apart"]
    );
    let r = runner(&explicit(false), "[Evaluate(split: Test)]");
    let w = neurograph::run::warnings(r.sim().graph_stats(), r.scene(), r.sim().class_encodings());
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn issue_12_each_evaluation_names_its_script_step() {
    let dir = tempfile::tempdir().unwrap();
    let report = runner(
        "",
        "[Evaluate(split: Test), Train(epochs: 2), Evaluate(split: Train, samples: 5), \
         Train(epochs: 1), Evaluate(split: Test)]",
    )
    .with_output(dir.path())
    .unwrap()
    .run_script()
    .unwrap();
    let rows: Vec<(usize, u32)> = report
        .evaluations
        .iter()
        .map(|e| (e.step, e.after_epochs))
        .collect();
    assert_eq!(rows, [(1, 0), (3, 2), (5, 3)]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["evaluations"][1]["step"], 3);
    assert_eq!(summary["evaluations"][1]["after_epochs"], 2);
    let table = report.to_string();
    assert!(table.contains("step  epochs     seen split"), "{table}");
}
