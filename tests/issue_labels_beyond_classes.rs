//! Regression: a dataset whose labels reach `architecture.classes` used to panic in the loss
//! (an index out of bounds); it must be refused with a message instead.

use neurograph::run::Runner;
use neurograph::scene;

#[test]
fn labels_beyond_classes_are_refused_not_a_panic() {
    let s = scene::parse(
        r#"Scene(
            architecture: (total_nodes: 60, input_nodes: 12, output_nodes: 4, classes: 2),
            adapter: Linear,
            data: (source: Synthetic(train: 30, test: 10)),
        )"#,
        "labels.ron",
    )
    .unwrap();
    let err = match Runner::new(&s, true) {
        Ok(_) => panic!("labels up to 9 with 2 classes must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("architecture.classes = 2"), "{err}");
    assert!(err.contains("at least"), "{err}");
}
