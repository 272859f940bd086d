use super::*;

const ORIGIN: &str = "scenes/t.ron";

/// Line numbers below are asserted exactly; keep the layout.
const SCENE: &str = r#"// test scene
(
    name: "t1",
    architecture: (
        total_nodes: 500,
        vector_dim: 4,
    ),
    graph: Layered(
        cardinality: 8,
    ),
    forward: (
        min_timesteps: 7,
        tau: (
            min: 0.25,
        ),
    ),
    adapter: Mlp(hidden: 256),
    script: [
        Evaluate(split: Test, samples: 100),
    ],
)
"#;

fn edited(from: &str, to: &str) -> String {
    assert!(SCENE.contains(from), "{from}");
    SCENE.replacen(from, to, 1)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(text, ORIGIN) {
        Ok(_) => panic!("expected an error for\n{text}"),
        Err(e) => e.diagnostics().to_vec(),
    }
}

fn one_error(text: &str) -> Diagnostic {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[track_caller]
fn assert_at(d: &Diagnostic, line: usize, column: usize, path: &str, kind: DiagnosticKind) {
    assert_eq!(
        (d.line, d.column, d.path.as_str(), d.kind),
        (line, column, path, kind),
        "{d}"
    );
}

#[test]
fn parses_the_test_scene_and_fills_defaults() {
    let scene = parse(SCENE, ORIGIN).unwrap();
    assert_eq!(scene.name, "t1");
    assert_eq!(scene.architecture.total_nodes, 500);
    assert_eq!(scene.architecture.vector_dim, 4);
    assert_eq!(scene.architecture.input_nodes, 200);
    assert_eq!(
        scene.graph,
        GraphSource::Layered {
            cardinality: 8,
            layers: 4
        }
    );
    assert_eq!(scene.forward.min_timesteps, Some(7));
    assert_eq!(scene.forward.tau.min, 0.25);
    assert_eq!(scene.forward.tau.max, 5.0);
    assert_eq!(
        scene.adapter,
        Adapter::Mlp {
            hidden: 256,
            dropout: 0.1
        }
    );
    assert_eq!(
        scene.script,
        [Step::Evaluate {
            split: Split::Test,
            samples: Some(100),
            predictions: false
        }]
    );
    assert_eq!(scene.radiation, Radiation::default());
    assert_eq!(parse("()", ORIGIN).unwrap(), Scene::default());
    assert_eq!(parse("Scene()", ORIGIN).unwrap(), Scene::default());
}

#[test]
fn explicit_some_and_enable_attribute_are_accepted() {
    let text =
        "#![enable(implicit_some)]\n(forward: (min_timesteps: Some(9), target_active: None))";
    let scene = parse(text, ORIGIN).unwrap();
    assert_eq!(scene.forward.min_timesteps, Some(9));
    assert_eq!(scene.forward.target_active, None);
}

#[test]
fn unknown_field_names_line_column_and_path() {
    let d = one_error(&edited("vector_dim: 4", "vektor_dim: 4"));
    assert_at(
        &d,
        6,
        9,
        "architecture.vektor_dim",
        DiagnosticKind::UnknownField,
    );
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:6:9: architecture.vektor_dim: unknown field; expected one of \
         total_nodes, input_nodes, output_nodes, vector_dim, classes"
    );
}

#[test]
fn unknown_field_in_variant_and_nested_struct() {
    let d = one_error(&edited("cardinality: 8", "cardinalty: 8"));
    assert_at(&d, 9, 9, "graph.cardinalty", DiagnosticKind::UnknownField);
    let d = one_error(&edited("min: 0.25", "minimum: 0.25"));
    assert_at(
        &d,
        14,
        13,
        "forward.tau.minimum",
        DiagnosticKind::UnknownField,
    );
    assert!(
        d.message.contains("expected one of growth, low_fraction"),
        "{d}"
    );
    let d = one_error(&edited("name: \"t1\",", "name: \"t1\", colour: 3,"));
    assert_at(&d, 3, 17, "colour", DiagnosticKind::UnknownField);
}

#[test]
fn range_error_names_line_column_path_and_range() {
    let d = one_error(&edited("vector_dim: 4", "vector_dim: 0"));
    assert_at(&d, 6, 9, "architecture.vector_dim", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:6:9: architecture.vector_dim = 0: must be between 1 and 16"
    );
}

#[test]
fn syntax_error_names_line_column_and_enclosing_path() {
    let d = one_error(&edited("total_nodes: 500,", "total_nodes: 500"));
    assert_at(&d, 6, 9, "architecture", DiagnosticKind::Syntax);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:6:9: architecture: syntax error: expected comma"
    );
    let d = one_error(&edited("name: \"t1\",", "name: \"t1,"));
    assert_at(&d, 3, 11, "name", DiagnosticKind::Syntax);
    let d = one_error(&format!("{SCENE} trailing"));
    assert_at(&d, 22, 2, "", DiagnosticKind::Syntax);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:22:2: syntax error: non-whitespace trailing characters"
    );
    let d = one_error("");
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:1:1: syntax error: the scene is empty; write `()` for all defaults"
    );
}

#[test]
fn type_errors_point_at_the_value() {
    let d = one_error(&edited("cardinality: 8", "cardinality: \"eight\""));
    assert_at(&d, 9, 22, "graph.cardinality", DiagnosticKind::Type);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:9:22: graph.cardinality: invalid value: expected integer, found `\"eight\"`"
    );
    let d = one_error(&edited("total_nodes: 500", "total_nodes: -5"));
    assert_at(&d, 5, 22, "architecture.total_nodes", DiagnosticKind::Type);
    assert!(d.message.contains("integer is out of bounds"), "{d}");
    let d = one_error(&edited("min: 0.25", "min: true"));
    assert_at(&d, 14, 18, "forward.tau.min", DiagnosticKind::Type);
    let d = one_error(&edited("samples: 100", "samples: 1.5"));
    assert_at(&d, 19, 40, "script[0].samples", DiagnosticKind::Type);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:19:40: script[0].samples: invalid value: unexpected `.5` in `1.5` \
         (expected comma)"
    );
    let d = one_error(&edited("name: \"t1\"", "name: 5"));
    assert_at(&d, 3, 11, "name", DiagnosticKind::Type);
    let d = one_error(&edited("architecture: (", "architecture: 5, x: ("));
    assert_at(&d, 4, 19, "architecture", DiagnosticKind::Type);
}

#[test]
fn unknown_variant_and_missing_field() {
    let d = one_error(&edited("Layered(", "Layred("));
    assert_at(&d, 8, 5, "graph", DiagnosticKind::UnknownVariant);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:8:5: graph: unknown variant `Layred`; expected one of Layered, EdgeList"
    );
    let d = one_error(&edited("Evaluate(split: Test, ", "Evaluate("));
    assert_at(&d, 19, 9, "script[0].split", DiagnosticKind::MissingField);
    let d = one_error("(\n  graph: EdgeList(),\n)");
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:2:3: graph.path: missing field (`EdgeList` requires it)"
    );
    let d = one_error(&edited("vector_dim: 4,", "vector_dim: 4, vector_dim: 5,"));
    assert_at(
        &d,
        6,
        24,
        "architecture.vector_dim",
        DiagnosticKind::DuplicateField,
    );
}

#[test]
fn nested_and_variant_range_errors() {
    let d = one_error(&edited("min: 0.25", "min: -1.0"));
    assert_at(&d, 14, 13, "forward.tau.min", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:14:13: forward.tau.min = -1.0: must be greater than 0 and at most \
         forward.tau.max (5.0)"
    );
    let d = one_error(&edited("cardinality: 8", "cardinality: 100"));
    assert_at(&d, 9, 9, "graph.cardinality", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:9:9: graph.cardinality = 100: must be between 1 and 64"
    );
    let d = one_error(&edited("hidden: 256", "hidden: 256, dropout: 1.0"));
    assert_at(&d, 17, 31, "adapter.dropout", DiagnosticKind::Range);
    assert!(d.message.ends_with("must be in [0, 1)"), "{d}");
}

#[test]
fn defaulted_fields_point_at_a_written_field_or_the_parent() {
    // tau.max is written, tau.min (0.5) is the default: point at the related written field.
    let d = one_error(&edited("min: 0.25", "max: 0.25"));
    assert_at(&d, 14, 13, "forward.tau.min", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:14:13: forward.tau.min = 0.5 (default): must be greater than 0 and at \
         most forward.tau.max (0.25)"
    );
    // input_nodes is written, total_nodes (1000) is the default.
    let d = one_error("(\n  architecture: (\n    input_nodes: 995,\n  ),\n)");
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:3:5: architecture.total_nodes = 1000 (default): must be at least \
         input_nodes + output_nodes = 995 + 10 = 1005"
    );
    // Nothing related is written: point at the nearest written parent.
    let text = "(\n  architecture: (total_nodes: 1000000, input_nodes: 400000, vector_dim: 16),\n  \
                adapter: Mlp(dropout: 0.0),\n)";
    let d = one_error(text);
    assert_at(&d, 3, 3, "adapter.hidden", DiagnosticKind::Range);
    assert!(
        d.message
            .starts_with("adapter.hidden = 1024 (default): estimated memory"),
        "{d}"
    );
}

#[test]
fn all_range_errors_are_collected_in_source_order() {
    let text = edited("vector_dim: 4", "vector_dim: 40")
        .replace("cardinality: 8", "cardinality: 0")
        .replace("min: 0.25", "min: -1.0")
        .replace("samples: 100", "samples: 0")
        .replace("name: \"t1\"", "name: \"t 1\"");
    let all = errors(&text);
    let got: Vec<(usize, usize, &str)> = all
        .iter()
        .map(|d| (d.line, d.column, d.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, 5, "name"),
            (6, 9, "architecture.vector_dim"),
            (9, 9, "graph.cardinality"),
            (14, 13, "forward.tau.min"),
            (19, 31, "script[0].samples"),
        ]
    );
    let err = parse(&text, ORIGIN).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 5);
    assert!(err.lines().all(|l| l.starts_with("scenes/t.ron:")), "{err}");
}

#[test]
fn non_finite_floats_are_rejected() {
    let d = one_error(&edited("min: 0.25", "min: NaN"));
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:14:13: forward.tau.min = NaN: must be a finite number"
    );
    let all = errors("(forward: (decay: inf, min_strength: -inf), loss: (temperature: NaN))");
    let paths: Vec<&str> = all.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["forward.decay", "forward.min_strength", "loss.temperature"]
    );
    assert!(
        all.iter()
            .all(|d| d.message.ends_with("must be a finite number"))
    );
}

#[test]
fn cross_field_rules() {
    let paths = |text: &str| -> Vec<String> { errors(text).into_iter().map(|d| d.path).collect() };
    assert_eq!(
        paths("(forward: (max_timesteps: 10, min_timesteps: 11))"),
        ["forward.min_timesteps"]
    );
    assert_eq!(
        paths("(forward: (target_active: 1001))"),
        ["forward.target_active"]
    );
    assert_eq!(
        paths("(architecture: (total_nodes: 6, input_nodes: 2, output_nodes: 2))"),
        ["radiation.top_k"]
    );
    assert_eq!(
        paths("(radiation: (cache: (quantization: 600)))"),
        ["radiation.cache.quantization"]
    );
    assert_eq!(paths("(script: [])"), ["script"]);
    assert_eq!(
        paths("(data: (source: Idx(dir: \"\"), train_limit: 0))"),
        ["data.source.dir", "data.train_limit"]
    );
    assert_eq!(paths("(graph: EdgeList(path: \"\"))"), ["graph.path"]);
    assert_eq!(paths("(schedule: (threads: 257))"), ["schedule.threads"]);
}

#[test]
fn explicit_encodings_are_checked() {
    let ok = "(architecture: (classes: 2, vector_dim: 2), \
              encodings: Explicit(phase: [[1, 2], [3, 4]], magnitude: [[5, 6], [7, 8]]))";
    parse(ok, ORIGIN).unwrap();
    let bad = "(architecture: (classes: 2, vector_dim: 2),\n\
               encodings: Explicit(phase: [[1, 512], [3]],\n magnitude: [[5, 6]]))";
    let all = errors(bad);
    let lines: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "scenes/t.ron:2:33: encodings.phase[0][1] = 512: must be less than phase_bins (512)",
            "scenes/t.ron:2:39: encodings.phase[1]: must hold exactly vector_dim (2) values, \
             found 1",
            "scenes/t.ron:3:2: encodings.magnitude: must hold exactly classes (2) vectors, found 1",
        ]
    );
}

#[test]
fn apply_set_good_values() {
    let mut scene = parse(SCENE, ORIGIN).unwrap();
    scene.apply_set("architecture.vector_dim=8").unwrap();
    assert_eq!(scene.architecture.vector_dim, 8);
    scene.apply_set("graph.cardinality = 3").unwrap();
    assert_eq!(
        scene.graph,
        GraphSource::Layered {
            cardinality: 3,
            layers: 4
        }
    );
    scene.apply_set("graph=EdgeList(path: \"e.txt\")").unwrap();
    assert_eq!(
        scene.graph,
        GraphSource::EdgeList {
            path: "e.txt".into()
        }
    );
    scene.apply_set("schedule.executor=Multi").unwrap();
    assert_eq!(scene.schedule.executor, ExecutorKind::Multi);
    scene.apply_set("forward.target_active=300").unwrap();
    assert_eq!(scene.forward.target_active, Some(300));
    scene.apply_set("forward.min_timesteps=None").unwrap();
    assert_eq!(scene.forward.min_timesteps, None);
    scene.apply_set("forward.min_timesteps=Some(3)").unwrap();
    assert_eq!(scene.forward.min_timesteps, Some(3));
    scene.apply_set("radiation.cache.enabled=true").unwrap();
    assert!(scene.radiation.cache.enabled);
    scene.apply_set("forward.tau=(max: 4.0)").unwrap();
    assert_eq!(scene.forward.tau.max, 4.0);
    assert_eq!(
        scene.forward.tau.min, 0.5,
        "a struct value resets unnamed fields"
    );
    scene.apply_set("name=run-2").unwrap();
    assert_eq!(scene.name, "run-2");
    scene.apply_set("data.source.dir=x").unwrap_err();
    scene
        .apply_set("data.source=Idx(dir: \"data/mnist\")")
        .unwrap();
    scene.apply_set("data.source.dir=/tmp/mnist").unwrap();
    assert_eq!(
        scene.data.source,
        DataSource::Idx {
            dir: "/tmp/mnist".into()
        }
    );
}

#[test]
fn apply_set_unknown_path_lists_fields() {
    let mut scene = Scene::default();
    let err = scene.apply_set("forward.decai=0.5").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set forward.decai=0.5:1:1: no such field `forward.decai`; fields of `forward` are: \
         max_timesteps, min_timesteps, decay, min_strength, target_active, inhibition, tau, \
         combine, carry, prune, settle, silence_hidden"
    );
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Assignment);
    let err = scene.apply_set("graph.path=\"x\"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set graph.path=\"x\":1:1: no such field `graph.path`; fields of `graph` (variant \
         `Layered`) are: cardinality, layers"
    );
    let err = scene
        .apply_set("adapter=Linear")
        .and_then(|()| scene.apply_set("adapter.hidden=8"));
    assert_eq!(
        err.unwrap_err().to_string(),
        "--set adapter.hidden=8:1:1: no such field `adapter.hidden`: `adapter` is `Linear`, \
         which has no fields"
    );
    let err = scene.apply_set("colour=3").unwrap_err().to_string();
    assert!(
        err.contains("fields of the scene are: name, seed, architecture"),
        "{err}"
    );
    let err = scene
        .apply_set("architecture.vector_dim")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "--set architecture.vector_dim:1:1: expected FIELD=VALUE, e.g. architecture.vector_dim=8"
    );
    let err = scene.apply_set("forward..decay=1").unwrap_err().to_string();
    assert!(err.contains("is not a field path"), "{err}");
    let err = scene.apply_set("forward.decay=").unwrap_err().to_string();
    assert_eq!(
        err,
        "--set forward.decay=:1:15: forward.decay: missing VALUE after `=`"
    );
}

#[test]
fn apply_set_bad_values() {
    let mut scene = parse(SCENE, ORIGIN).unwrap();
    let before = scene.clone();
    let err = scene.apply_set("architecture.vector_dim=0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set architecture.vector_dim=0:1:25: architecture.vector_dim = 0: must be between 1 \
         and 16"
    );
    assert_eq!(scene, before, "a failed set leaves the scene unchanged");
    let err = scene
        .apply_set("architecture.vector_dim=\"x\"")
        .unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column, d.kind), (1, 25, DiagnosticKind::Type));
    assert_eq!(d.path, "architecture.vector_dim");
    let err = scene
        .apply_set("graph=Layered(cardinality: 99)")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set graph=Layered(cardinality: 99):1:15: graph.cardinality = 99: must be between 1 \
         and 64"
    );
    let err = scene.apply_set("graph=EdgeList(pat: \"e\")").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set graph=EdgeList(pat: \"e\"):1:16: graph.pat: unknown field; expected one of path"
    );
    let err = scene.apply_set("schedule.executor=Many").unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::UnknownVariant);
    assert!(err.to_string().contains("expected one of Single, Multi"));
    let err = scene.apply_set("forward.decay=NaN").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set forward.decay=NaN:1:15: forward.decay = NaN: must be a finite number"
    );
    let err = scene
        .apply_set("architecture.vector_dim=5, classes: 3")
        .unwrap_err();
    assert_eq!(err.diagnostics().len(), 1);
    let err = scene.apply_set("architecture.vector_dim=(5").unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Type);
    assert_eq!(scene, before);
}

#[test]
fn apply_set_rejects_lists() {
    let mut scene = Scene::default();
    let err = scene.apply_set("script=[]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set script=[]:1:1: script: a list cannot be set with --set; edit the scene file \
         instead"
    );
    let err = scene.apply_set("script[0].samples=3").unwrap_err();
    assert!(
        err.to_string().contains("list elements cannot be set"),
        "{err}"
    );
}

#[test]
fn apply_sets_validates_once_at_the_end() {
    let mut scene = Scene::default();
    // Alone, the first assignment breaks input + output <= total.
    let err = scene.apply_set("architecture.total_nodes=100").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--set architecture.total_nodes=100:1:26: ")
    );
    scene
        .apply_sets(&[
            "architecture.total_nodes=100",
            "architecture.input_nodes=50",
        ])
        .unwrap();
    assert_eq!(scene.architecture.total_nodes, 100);
    assert_eq!(scene.architecture.input_nodes, 50);
    // Errors are attributed to the assignment that set a field the rule involves.
    let err = scene
        .apply_sets(&["architecture.input_nodes=95", "forward.decay=0.5"])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set architecture.input_nodes=95:1:26: architecture.total_nodes = 100: must be at \
         least input_nodes + output_nodes = 95 + 10 = 105"
    );
    scene.apply_sets::<&str>(&[]).unwrap();
}

#[test]
fn to_ron_round_trips() {
    let scenes = [
        Scene::default(),
        parse(SCENE, ORIGIN).unwrap(),
        parse(
            "(name: \"x.y-z_1\", seed: 18446744073709551615,\
              architecture: (classes: 2, vector_dim: 2),\
              graph: EdgeList(path: \"dir/\\\"quoted\\\".txt\"),\
              forward: (target_active: 10, inhibition: AfterAccumulation),\
              radiation: (enabled: false),\
              loss: (temperature: 0.3, label_smoothing: 0.1),\
              adapter: Linear,\
              encodings: Explicit(phase: [[1, 2], [3, 4]], magnitude: [[5, 6], [7, 8]]),\
              data: (source: Idx(dir: \"data\"), train_limit: 100, test_limit: 10),\
              schedule: (executor: Multi, threads: 4),\
              script: [Evaluate(split: Train), Evaluate(split: Test, samples: 5)])",
            ORIGIN,
        )
        .unwrap(),
        parse("(encodings: Separated(seed: 7))", ORIGIN).unwrap(),
        parse(
            r#"(training: (learning_rate_phase: 0.02, learning_rate_magnitude: 0.5,
                update: Immediate(threshold: 0.25), gradient: Reference,
                hidden_credit_weight: 0, gradient_accumulation: (steps: 16, scaling: Unscaled)),
              script: [
                Train(epochs: 2, samples_per_epoch: 500),
                Evaluate(split: Test),
                Set(field: "training.learning_rate_phase", value: "0.01"),
                Set(field: "training.update", value: "Accumulate(threshold: 0.05)"),
                Train(),
                Checkpoint(path: "model.ckpt"),
                Restore(path: "dir/\"q\".ckpt"),
              ])"#,
            ORIGIN,
        )
        .unwrap(),
        parse("(training: (gradient_accumulation: Some(())))", ORIGIN).unwrap(),
    ];
    for scene in scenes {
        let text = scene.to_ron();
        let back = parse(&text, "resolved").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, scene);
        assert_eq!(back.to_ron(), text);
    }
    let text = parse(SCENE, ORIGIN).unwrap().to_ron();
    assert!(text.contains("    min_timesteps: 7,\n"), "{text}");
    assert!(text.contains("    target_active: None,\n"), "{text}");
}

#[test]
fn memory_estimate_of_defaults_is_accepted() {
    let scene = Scene::default();
    let estimate = scene.memory_estimate();
    assert!(estimate.total < MEMORY_LIMIT);
    assert_eq!(
        estimate.total,
        estimate.parts.iter().map(|(_, b)| b).sum::<u64>()
    );
    // (P*H + H*H + H*I*D*2)*4 for the defaults, in the one world (eval_replicas 1).
    assert_eq!(estimate.worlds, 1);
    assert_eq!(
        estimate.part("adapter weights"),
        (784 * 1024 + 1024 * 1024 + 1024 * 200 * 5 * 2) * 4
    );
    assert_eq!(estimate.part("node state and workspace"), 1000 * 1800);
    assert_eq!(estimate.part("datasets"), 2500 * 785);
    assert!(scene.validate().is_ok());
    assert!(estimate.to_string().contains("total"));
}

#[test]
fn memory_estimate_rejects_a_huge_scene() {
    let text = "(\n  architecture: (total_nodes: 1000000, input_nodes: 100000, vector_dim: 16),\n  \
                adapter: Mlp(hidden: 16384),\n)";
    let scene: Scene = ron_options().from_str(text).unwrap();
    let estimate = scene.memory_estimate();
    assert!(estimate.total > MEMORY_LIMIT);
    // (784*16384 + 16384^2 + 16384*100000*16*2) * 4
    assert_eq!(
        estimate.part("adapter weights"),
        (784 * 16384 + 16384 * 16384 + 16384 * 100_000 * 16 * 2) * 4
    );
    let d = one_error(text);
    assert_at(&d, 3, 16, "adapter.hidden", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:3:16: adapter.hidden = 16384: estimated memory 607.3 GiB exceeds the \
         16.0 GiB limit; biggest parts: state copies 393.0 GiB, adapter weights 196.4 GiB, \
         encoding caches 14.9 GiB"
    );
}

#[test]
fn load_reads_files_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ron");
    std::fs::write(&path, SCENE).unwrap();
    assert_eq!(load(&path).unwrap(), parse(SCENE, ORIGIN).unwrap());
    std::fs::write(&path, edited("vector_dim: 4", "vector_dim: 0")).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:6:9: architecture.vector_dim = 0: must be between 1 and 16",
            path.display()
        )
    );
    let missing = dir.path().join("missing.ron");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, SceneError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read scene file: ", missing.display())),
        "{err}"
    );
}

#[test]
fn malformed_text_never_panics_and_always_locates() {
    let text = format!("{SCENE}// é ünïcode\n");
    let text = text.replace("\"t1\"", "\"t1 é\" /* c (*/ ");
    let mut variants: Vec<String> = Vec::new();
    for (i, _) in text.char_indices() {
        variants.push(text[..i].to_string());
        let next = text[i..].chars().next().map_or(0, char::len_utf8);
        variants.push(format!("{}{}", &text[..i], &text[i + next..]));
        for insert in ["(", ")", "\"", "[", ",", "é", "r#\"", "/*", "'"] {
            variants.push(format!("{}{insert}{}", &text[..i], &text[i..]));
        }
    }
    for variant in &variants {
        if let Err(e) = parse(variant, ORIGIN) {
            for d in e.diagnostics() {
                let lines = variant.lines().count().max(1);
                assert!(d.line >= 1 && d.line <= lines + 1, "{d}\n{variant}");
                assert!(d.column >= 1, "{d}");
            }
        }
    }
    let mut scene = Scene::default();
    for value in [
        "(", ")", "\"", "r#\"x", "Layered(", "[1,", "é", "5)", "/*", "'a",
    ] {
        for field in ["graph", "name", "forward.decay", "forward"] {
            let _ = scene.apply_set(&format!("{field}={value}"));
        }
    }
    assert_eq!(scene, Scene::default());
}

const DOC: &str = include_str!("../../docs/scene-format.md");

fn doc_ron_blocks() -> Vec<&'static str> {
    DOC.split("```ron\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("closed block")])
        .collect()
}

#[test]
fn doc_examples_parse_and_state_the_defaults() {
    let blocks = doc_ron_blocks();
    assert_eq!(blocks.len(), 4);
    // The training script example.
    let training = parse(blocks[1], "doc").unwrap();
    assert_eq!(training.training.learning_rate_phase, 0.02);
    assert_eq!(
        training.script,
        [
            Step::Train {
                epochs: 2,
                samples_per_epoch: None,
                evaluate_every: None
            },
            Step::Evaluate {
                split: Split::Test,
                samples: None,
                predictions: false
            },
            Step::Set {
                field: "training.learning_rate_phase".into(),
                value: "0.01".into()
            },
            Step::Train {
                epochs: 1,
                samples_per_epoch: None,
                evaluate_every: None
            },
            Step::Evaluate {
                split: Split::Test,
                samples: None,
                predictions: false
            },
            Step::Checkpoint {
                path: "model.ckpt".into()
            },
        ]
    );
    assert_eq!(parse(blocks[0], "doc").unwrap(), Scene::default());
    // The complete example writes every default except the fields its comments name.
    let example = parse(blocks[2], "doc").unwrap();
    let mut expected = Scene {
        name: "example".into(),
        seed: 42,
        ..Scene::default()
    };
    expected.forward.min_timesteps = Some(7);
    expected.radiation.cache.enabled = true;
    expected.schedule.executor = ExecutorKind::Multi;
    expected.script = vec![Step::Evaluate {
        split: Split::Test,
        samples: Some(500),
        predictions: false,
    }];
    assert_eq!(example, expected);
    parse(blocks[3], "doc").unwrap();
}

#[test]
fn integers_for_floats_and_underscores() {
    let scene = parse(
        "(forward: (decay: 1), architecture: (total_nodes: 1_000))",
        ORIGIN,
    )
    .unwrap();
    assert_eq!(scene.forward.decay, 1.0);
    assert_eq!(scene.architecture.total_nodes, 1000);
}

#[test]
fn training_defaults_are_the_specs() {
    let t = Scene::default().training;
    assert_eq!(t.learning_rate_phase, 0.015);
    assert_eq!(t.learning_rate_magnitude, 0.012);
    assert_eq!(t.update, UpdateSetting::Accumulate { threshold: 0.01 });
    assert_eq!(t.gradient, GradientSetting::Exact);
    assert_eq!(t.hidden_credit_weight, 1.0);
    assert_eq!(t.gradient_accumulation, None);
    assert_eq!(t, Training::default());
    // Variant and struct fields default too.
    let scene = parse(
        "(training: (update: Immediate(), gradient: Reference, gradient_accumulation: ()))",
        ORIGIN,
    )
    .unwrap();
    assert_eq!(
        scene.training.update,
        UpdateSetting::Immediate { threshold: 0.1 }
    );
    assert_eq!(scene.training.gradient, GradientSetting::Reference);
    assert_eq!(
        scene.training.gradient_accumulation,
        Some(GradientAccumulationSetting {
            steps: 8,
            scaling: AccumulationScalingSetting::Sqrt
        })
    );
    let scene = parse(
        "(training: (update: Accumulate(), gradient_accumulation: Some((steps: 4, scaling: \
         Unscaled))))",
        ORIGIN,
    )
    .unwrap();
    assert_eq!(
        scene.training.update,
        UpdateSetting::Accumulate { threshold: 0.01 }
    );
    assert_eq!(
        scene.training.gradient_accumulation,
        Some(GradientAccumulationSetting {
            steps: 4,
            scaling: AccumulationScalingSetting::Unscaled
        })
    );
    assert_eq!(Scene::default().script, SCENE_DEFAULT_SCRIPT);
}

const SCENE_DEFAULT_SCRIPT: [Step; 1] = [Step::Evaluate {
    split: Split::Test,
    samples: None,
    predictions: false,
}];

#[test]
fn training_range_errors_are_positioned() {
    let text = "(\n  training: (\n    learning_rate_phase: 0,\n    learning_rate_magnitude: 101,\n    \
                update: Immediate(threshold: 1001),\n    hidden_credit_weight: -1,\n    \
                gradient_accumulation: (steps: 4097),\n  ),\n)";
    let lines: Vec<String> = errors(text).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "scenes/t.ron:3:5: training.learning_rate_phase = 0.0: must be in (0, 100]",
            "scenes/t.ron:4:5: training.learning_rate_magnitude = 101.0: must be in (0, 100]",
            "scenes/t.ron:5:23: training.update.threshold = 1001.0: must be in (0, 1000]",
            "scenes/t.ron:6:5: training.hidden_credit_weight = -1.0: must be in [0, 1000]",
            "scenes/t.ron:7:29: training.gradient_accumulation.steps = 4097: must be between 1 \
             and 4096",
        ]
    );
    let d = one_error("(training: (update: Accumulate(threshold: 0.0)))");
    assert_at(
        &d,
        1,
        32,
        "training.update.threshold",
        DiagnosticKind::Range,
    );
    let d = one_error("(training: (gradient_accumulation: Some((steps: 0))))");
    assert_at(
        &d,
        1,
        42,
        "training.gradient_accumulation.steps",
        DiagnosticKind::Range,
    );
    let d = one_error("(training: (learning_rate_phase: NaN))");
    assert!(d.message.ends_with("must be a finite number"), "{d}");
    // 0 disables hidden credit; the limits themselves are allowed.
    parse(
        "(training: (hidden_credit_weight: 0, learning_rate_phase: 100, \
         update: Immediate(threshold: 1000), gradient_accumulation: (steps: 4096)))",
        ORIGIN,
    )
    .unwrap();
    let d = one_error("(training: (gradient: Approximate))");
    assert_at(
        &d,
        1,
        13,
        "training.gradient",
        DiagnosticKind::UnknownVariant,
    );
    assert!(
        d.message.ends_with("expected one of Exact, Reference"),
        "{d}"
    );
    let d = one_error("(training: (gradient_accumulation: (steps: 2, scaling: None)))");
    assert_eq!(d.kind, DiagnosticKind::UnknownVariant, "{d}");
    assert!(d.message.ends_with("expected one of Sqrt, Unscaled"), "{d}");
}

#[test]
fn training_steps_parse() {
    let text = r#"(script: [
        Train(),
        Train(epochs: 3, samples_per_epoch: 100),
        Evaluate(split: Test),
        Checkpoint(path: "model.ckpt"),
        Restore(path: "/abs/model.ckpt"),
        Set(field: "training.learning_rate_phase", value: "0.01"),
        Set(field: "training.update", value: "Immediate(threshold: 0.2)"),
        Set(field: "training.update.threshold", value: "0.3"),
    ])"#;
    let scene = parse(text, ORIGIN).unwrap();
    let set = |field: &str, value: &str| Step::Set {
        field: field.into(),
        value: value.into(),
    };
    assert_eq!(
        scene.script,
        [
            Step::Train {
                epochs: 1,
                samples_per_epoch: None,
                evaluate_every: None
            },
            Step::Train {
                epochs: 3,
                samples_per_epoch: Some(100),
                evaluate_every: None
            },
            Step::Evaluate {
                split: Split::Test,
                samples: None,
                predictions: false
            },
            Step::Checkpoint {
                path: "model.ckpt".into()
            },
            Step::Restore {
                path: "/abs/model.ckpt".into()
            },
            set("training.learning_rate_phase", "0.01"),
            set("training.update", "Immediate(threshold: 0.2)"),
            set("training.update.threshold", "0.3"),
        ]
    );
    // Parsing does not apply the Set steps.
    assert_eq!(scene.training, Training::default());
}

#[test]
fn training_step_errors_are_positioned() {
    let text = "(script: [\n  Train(epochs: 0, samples_per_epoch: 0),\n  Train(epochs: 100001),\n  \
                Checkpoint(path: \"\"),\n  Restore(path: \"\"),\n])";
    let lines: Vec<String> = errors(text).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "scenes/t.ron:2:9: script[0].epochs = 0: must be between 1 and 100000",
            "scenes/t.ron:2:20: script[0].samples_per_epoch = 0: must be at least 1",
            "scenes/t.ron:3:9: script[1].epochs = 100001: must be between 1 and 100000",
            "scenes/t.ron:4:14: script[2].path = \"\": must not be empty",
            "scenes/t.ron:5:11: script[3].path = \"\": must not be empty",
        ]
    );
    let d = one_error("(script: [Checkpoint()])");
    assert_at(&d, 1, 11, "script[0].path", DiagnosticKind::MissingField);
    let d = one_error("(script: [\n  Evaluate(split: Test),\n  Train,\n])");
    assert_at(&d, 3, 3, "script[1]", DiagnosticKind::Type);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:3:3: script[1]: invalid value: `Train` needs parentheses here: write \
         `Train()` for its defaults, or `Train(field: value, ...)`"
    );
    let d = one_error("(training: (update: Immediate))");
    assert_at(&d, 1, 21, "training.update", DiagnosticKind::Type);
    let err = Scene::default()
        .apply_set("training.update=Immediate")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set training.update=Immediate:1:17: training.update: invalid value: `Immediate` \
         needs parentheses here: write `Immediate()` for its defaults, or \
         `Immediate(field: value, ...)`"
    );
}

/// Three steps, then the `Set` step under test at `script[3]` (line 5, `field` at column 9,
/// `value` at column 9 of line 6).
fn set_step_scene(field: &str, value: &str) -> String {
    format!(
        "(script: [\n    Train(),\n    Evaluate(split: Test),\n    Checkpoint(path: \"a.ckpt\"),\n    \
         Set(field: {field:?},\n        value: {value:?}),\n])"
    )
}

#[test]
fn set_steps_are_checked_at_load() {
    let text = set_step_scene("training.learning_rate_phase", "0.02");
    parse(&text, ORIGIN).unwrap();
    // Unknown path.
    let d = one_error(&set_step_scene("training.learning_rate", "0.02"));
    assert_at(&d, 5, 9, "script[3].field", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:5:9: script[3].field = \"training.learning_rate\": no such field \
         `training.learning_rate`; fields of `training` are: learning_rate_phase, \
         learning_rate_magnitude, update, gradient, hidden_credit_weight, gradient_accumulation, \
         learn_encodings, credit, optimizer, batch_size, freeze_hidden"
    );
    // Frozen path.
    let d = one_error(&set_step_scene("architecture.total_nodes", "2000"));
    assert_at(&d, 5, 9, "script[3].field", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:5:9: script[3].field = \"architecture.total_nodes\": \
         architecture.total_nodes cannot change mid-run: it fixes the graph and parameter \
         shapes; start a new run instead"
    );
    for frozen in [
        "name",
        "seed",
        "resolution.phase_bins",
        "graph",
        "graph.cardinality",
        "adapter.dropout",
        "encodings",
        "data.train_limit",
        "schedule.threads",
        "script",
    ] {
        let d = one_error(&set_step_scene(frozen, "1"));
        assert_eq!(d.path, "script[3].field");
        assert!(
            d.message
                .contains(&format!("{frozen} cannot change mid-run: ")),
            "{d}"
        );
    }
    // Malformed and empty.
    let d = one_error(&set_step_scene("training..update", "1"));
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:5:9: script[3].field = \"training..update\": must be a dotted field \
         path, e.g. training.learning_rate_phase"
    );
    let all = errors(&set_step_scene("", " "));
    let got: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "scenes/t.ron:5:9: script[3].field = \"\": must not be empty",
            "scenes/t.ron:6:9: script[3].value = \" \": must not be empty",
        ]
    );
    // Bad values: out of range, wrong type, unknown variant.
    let d = one_error(&set_step_scene("loss.temperature", "0"));
    assert_at(&d, 6, 9, "script[3].value", DiagnosticKind::Range);
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:6:9: script[3].value = \"0\": loss.temperature = 0.0: must be in (0, 1000]"
    );
    let d = one_error(&set_step_scene("training.learning_rate_phase", "fast"));
    assert_eq!(
        d.to_string(),
        "scenes/t.ron:6:9: script[3].value = \"fast\": training.learning_rate_phase: invalid \
         value: expected float, found `fast`"
    );
    let d = one_error(&set_step_scene("training.gradient", "Approximate"));
    assert_eq!(d.path, "script[3].value");
    assert!(
        d.message.contains("expected one of Exact, Reference"),
        "{d}"
    );
    // Cross-field rules are checked against the scene as it is at that step.
    let d = one_error(&set_step_scene("forward.target_active", "1001"));
    assert!(
        d.message
            .ends_with("forward.target_active = 1001: must be between 1 and total_nodes (1000)"),
        "{d}"
    );
}

#[test]
fn set_steps_see_the_earlier_set_steps() {
    let ok = r#"(script: [
        Set(field: "training.gradient_accumulation", value: "(steps: 4)"),
        Set(field: "training.gradient_accumulation.steps", value: "16"),
        Set(field: "training.update", value: "Immediate()"),
        Set(field: "training.update.threshold", value: "0.5"),
        Set(field: "training.gradient_accumulation", value: "None"),
        Train(),
    ])"#;
    let scene = parse(ok, ORIGIN).unwrap();
    assert_eq!(
        scene.training,
        Training::default(),
        "parsing applies nothing"
    );
    // A field that only exists after an earlier Set is unknown before it.
    let bad = r#"(script: [
        Set(field: "training.gradient_accumulation.steps", value: "16"),
        Set(field: "training.gradient_accumulation", value: "(steps: 4)"),
        Set(field: "training.gradient_accumulation.steps", value: "5000"),
    ])"#;
    let lines: Vec<String> = errors(bad).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "scenes/t.ron:2:13: script[0].field = \"training.gradient_accumulation.steps\": no \
             such field `training.gradient_accumulation.steps`: \
             `training.gradient_accumulation` is `None`, which has no fields",
            "scenes/t.ron:4:60: script[2].value = \"5000\": \
             training.gradient_accumulation.steps = 5000: must be between 1 and 4096",
        ]
    );
    // --set overrides are applied before the Set steps are replayed.
    let mut scene = parse(ok, ORIGIN).unwrap();
    scene.apply_set("training.learning_rate_phase=0.5").unwrap();
    let mut small = parse(
        "(script: [Set(field: \"forward.target_active\", value: \"800\")])",
        ORIGIN,
    )
    .unwrap();
    let err = small.apply_set("architecture.total_nodes=500").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set architecture.total_nodes=500:1:26: script[0].value = \"800\": \
         forward.target_active = 800: must be between 1 and total_nodes (500)"
    );
}

#[test]
fn is_frozen_lists_the_run_shape() {
    for path in [
        "",
        "name",
        "seed",
        "architecture",
        "architecture.total_nodes",
        "resolution.magnitude_bins",
        "graph.layers",
        "adapter",
        "encodings.seed",
        "data.source.dir",
        "schedule.executor",
        "schedule.eval_replicas",
        "script",
        " architecture.vector_dim ",
    ] {
        assert!(is_frozen(path), "{path}");
    }
    for path in [
        "forward",
        "forward.tau.min",
        "radiation.cache.enabled",
        "loss.temperature",
        "training",
        "training.update.threshold",
        "training.gradient_accumulation.steps",
        "colour",
        "not a path",
    ] {
        assert!(!is_frozen(path), "{path}");
    }
}

#[test]
fn apply_set_midrun_changes_only_unfrozen_settings() {
    let mut scene = parse(SCENE, ORIGIN).unwrap();
    scene
        .apply_set_midrun("training.learning_rate_phase", "0.01")
        .unwrap();
    assert_eq!(scene.training.learning_rate_phase, 0.01);
    scene
        .apply_set_midrun("training.update", "Immediate(threshold: 0.2)")
        .unwrap();
    assert_eq!(
        scene.training.update,
        UpdateSetting::Immediate { threshold: 0.2 }
    );
    scene
        .apply_set_midrun(
            "training.gradient_accumulation",
            "(steps: 4, scaling: Unscaled)",
        )
        .unwrap();
    scene
        .apply_set_midrun("training.gradient_accumulation.steps", "2")
        .unwrap();
    assert_eq!(
        scene.training.gradient_accumulation,
        Some(GradientAccumulationSetting {
            steps: 2,
            scaling: AccumulationScalingSetting::Unscaled
        })
    );
    scene.apply_set_midrun("forward.decay", "0.5").unwrap();
    scene.apply_set_midrun("radiation.top_k", "8").unwrap();
    scene.apply_set_midrun("loss.temperature", "2").unwrap();
    assert_eq!(
        (
            scene.forward.decay,
            scene.radiation.top_k,
            scene.loss.temperature
        ),
        (0.5, 8, 2.0)
    );
    let before = scene.clone();
    // Frozen.
    let err = scene
        .apply_set_midrun("architecture.total_nodes", "2000")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Set architecture.total_nodes=2000:1:1: architecture.total_nodes cannot change mid-run: \
         it fixes the graph and parameter shapes; start a new run instead"
    );
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Frozen);
    assert_eq!(err.diagnostics()[0].path, "architecture.total_nodes");
    let err = scene.apply_set_midrun("schedule.threads", "1").unwrap_err();
    assert!(
        err.to_string().contains(
            "schedule.threads cannot change mid-run: the executor, threads and replicas are \
             fixed when the run starts"
        ),
        "{err}"
    );
    // Unknown path.
    let err = scene
        .apply_set_midrun("training.learning_rate", "0.1")
        .unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Assignment);
    assert!(
        err.to_string().starts_with(
            "Set training.learning_rate=0.1:1:1: no such field `training.learning_rate`; \
             fields of `training` are: learning_rate_phase,"
        ),
        "{err}"
    );
    // Bad values.
    let err = scene
        .apply_set_midrun("training.learning_rate_phase", "0")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Set training.learning_rate_phase=0:1:30: training.learning_rate_phase = 0.0: must be \
         in (0, 100]"
    );
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Range);
    let err = scene
        .apply_set_midrun("training.hidden_credit_weight", "lots")
        .unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Type);
    assert_eq!(err.diagnostics()[0].path, "training.hidden_credit_weight");
    let err = scene.apply_set_midrun("loss.temperature", "").unwrap_err();
    assert!(err.to_string().contains("missing VALUE"), "{err}");
    let err = scene.apply_set_midrun("script", "[]").unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Frozen);
    assert_eq!(scene, before, "a refused Set leaves the scene unchanged");
}

#[test]
fn apply_set_midrun_does_not_replay_the_scripts_set_steps() {
    // At load, step 1 is valid (accumulation is on); once step 2 has run, replaying step 1
    // against the current scene would fail, so a running scene must not replay it.
    let mut scene = parse(
        r#"(
            training: (gradient_accumulation: (steps: 4)),
            script: [
                Set(field: "training.gradient_accumulation.steps", value: "8"),
                Set(field: "training.gradient_accumulation", value: "None"),
            ],
        )"#,
        ORIGIN,
    )
    .unwrap();
    for step in scene.script.clone() {
        let Step::Set { field, value } = step else {
            unreachable!()
        };
        scene.apply_set_midrun(&field, &value).unwrap();
    }
    assert_eq!(scene.training.gradient_accumulation, None);
}

#[test]
fn memory_estimate_counts_update_accumulators() {
    let scene = Scene::default();
    let estimate = scene.memory_estimate();
    assert_eq!(estimate.part("gradient sums"), 0);
    let scene = parse("(training: (gradient_accumulation: (steps: 8)))", ORIGIN).unwrap();
    // n*D*2 f32 sums in the one world.
    assert_eq!(
        scene.memory_estimate().part("gradient sums"),
        1000 * 5 * 2 * 4
    );
    assert_eq!(
        scene.memory_estimate().total,
        estimate.total + 1000 * 5 * 2 * 4
    );
}

/// Regression (issue 12, item 6): `Split(parts: 0)` panicked with an index out of bounds in the
/// radiation system, `Split(parts: 100000)` grew to 22 GB; the documented ranges were never
/// checked.
#[test]
fn issue_12_schedule_parts_and_batch_size_are_range_checked() {
    for (field, message) in [
        (
            "granularity: Split(parts: 0)",
            "schedule.granularity.parts = 0: must be between 1 and 64",
        ),
        (
            "granularity: Split(parts: 100000)",
            "schedule.granularity.parts = 100000: must be between 1 and 64",
        ),
        (
            "batch_size: 0",
            "schedule.batch_size = 0: must be between 1 and 100000",
        ),
    ] {
        let text = format!("Scene(schedule: ({field}))");
        let err = parse(&text, ORIGIN).unwrap_err().to_string();
        assert!(err.contains(message), "{field}: {err}");
    }
    parse(
        "Scene(schedule: (granularity: Split(parts: 64), batch_size: 100000))",
        ORIGIN,
    )
    .unwrap();
}

#[test]
fn issue_12_deeply_nested_scene_is_refused_positioned_not_a_stack_overflow() {
    let text = format!(
        "Scene(\n  name: {}{})",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let err = parse(&text, "deep.ron").unwrap_err();
    // The 129th bracket: `Scene(` is level 1 at line 1, the name's brackets start at column 9
    // of line 2, so level 129 is column 9 + 127 = 136.
    assert_eq!(
        err.to_string(),
        "deep.ron:2:136: brackets nested deeper than 128 levels; a scene needs a handful"
    );
    // Brackets inside strings and comments do not count, and ordinary scenes pass.
    let quoted = format!(
        "Scene(script: [Checkpoint(path: \"{}\")] /* {} */) // {}",
        "(".repeat(500),
        "[".repeat(500),
        "{".repeat(500)
    );
    assert!(parse(&quoted, "q.ron").is_ok());
    let raw = format!(
        "Scene(script: [Checkpoint(path: r#\"{}\"#)])",
        "(".repeat(300)
    );
    assert!(parse(&raw, "r.ron").is_ok());
    // The same limit for `--set` values.
    let mut scene = Scene::default();
    let deep = format!(
        "forward.decay={}0.5{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let err = scene.apply_set(&deep).unwrap_err();
    assert!(
        err.to_string().contains("nested deeper than 128 levels"),
        "{err}"
    );
}
