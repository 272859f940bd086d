//! A scene reading IDX files from disk: images of any size reach the adapter intact, and
//! corrupt files are reported as errors, not panics.

use neurograph::data::{self, ImageSet};
use neurograph::run::Runner;
use neurograph::scene::{self, Split};

fn write_set(dir: &std::path::Path, rows: usize, cols: usize, train: usize, test: usize) {
    let make = |n: usize, offset: usize| ImageSet {
        rows,
        cols,
        images: (0..n * rows * cols)
            .map(|i| ((i * 37 + offset) % 256) as u8)
            .collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    };
    let (tr, te) = (make(train, 0), make(test, 11));
    data::write_images(&dir.join(data::TRAIN_IMAGES), &tr).unwrap();
    data::write_labels(&dir.join(data::TRAIN_LABELS), &tr).unwrap();
    data::write_images(&dir.join(data::TEST_IMAGES), &te).unwrap();
    data::write_labels(&dir.join(data::TEST_LABELS), &te).unwrap();
}

fn scene_for(dir: &std::path::Path) -> scene::Scene {
    let text = format!(
        r#"Scene(
            architecture: (total_nodes: 60, input_nodes: 12, output_nodes: 10),
            adapter: Mlp(hidden: 16),
            data: (source: Idx(dir: "{}")),
            schedule: (threads: 1),
        )"#,
        dir.display()
    );
    scene::parse(&text, "idx-test.ron").unwrap()
}

#[test]
fn evaluates_images_of_another_size() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 10, 5, 7);
    let s = scene_for(dir.path());
    let mut runner = Runner::new(&s, true).unwrap();
    assert_eq!(runner.sim().pixels(), 120);
    let e = runner.evaluate(Split::Test, None).unwrap();
    assert_eq!(e.samples, 7);
    assert!(e.mean_timesteps >= 1.0);
}

#[test]
fn truncated_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 28, 28, 5, 7);
    let path = dir.path().join(data::TEST_IMAGES);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = match Runner::new(&scene_for(dir.path()), true) {
        Ok(_) => panic!("a truncated file must be rejected"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(data::TEST_IMAGES), "{err}");
    assert!(err.to_lowercase().contains("truncated"), "{err}");
}
