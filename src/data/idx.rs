//! Reader and writer for the IDX format used by MNIST.
//!
//! An IDX file is a big-endian header followed by raw data:
//!
//! | bytes | content |
//! |-------|---------|
//! | 0..4  | magic: `0x00 0x00 <type> <ndims>`; type `0x08` is `u8` |
//! | 4..4+4*ndims | each dimension as a big-endian `u32` |
//! | rest  | the product of the dimensions, in bytes, row-major |
//!
//! This module handles the two layouts MNIST uses: `u8` images with three
//! dimensions (`count, rows, cols`, magic `0x00000803`) and `u8` labels with
//! one dimension (`count`, magic `0x00000801`). Readers accept plain or
//! gzip-compressed files; compression is detected from the content (the gzip
//! magic bytes `1f 8b`), not from the name. Writers always write plain files
//! and do so atomically.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{DataError, ImageSet, NUM_CLASSES, Splits};

/// File name (without `.gz`) of the training images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// File name (without `.gz`) of the training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// File name (without `.gz`) of the test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// File name (without `.gz`) of the test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Largest payload (product of the dimensions) a reader will accept: 4 GiB.
const MAX_PAYLOAD: u64 = 1 << 32;
/// Initial buffer reservation cap, so a lying header cannot force a huge
/// allocation before the data is actually there.
const MAX_RESERVE: u64 = 64 << 20;

/// The contents of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// `count * rows * cols` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// A reader over a plain or gzip-compressed file that remembers which, to
/// classify errors.
struct Source {
    path: PathBuf,
    gz: bool,
    inner: Box<dyn Read>,
}

impl Source {
    fn open(path: &Path) -> Result<Self, DataError> {
        let io_err = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let mut buf = BufReader::new(file);
        let head = buf.fill_buf().map_err(io_err)?;
        let gz = head.starts_with(&[0x1f, 0x8b]);
        let inner: Box<dyn Read> = if gz {
            Box::new(MultiGzDecoder::new(buf))
        } else {
            Box::new(buf)
        };
        Ok(Self {
            path: path.to_path_buf(),
            gz,
            inner,
        })
    }

    fn err(&self, source: io::Error) -> DataError {
        let path = self.path.clone();
        if self.gz {
            DataError::CorruptGzip { path, source }
        } else {
            DataError::Io { path, source }
        }
    }

    /// Reads until `buf` is full or EOF; returns the number of bytes read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(n)
    }
}

/// Reads one IDX file with the given magic (whose low byte is the number of
/// dimensions), returning its dimensions and payload.
fn read_idx(path: &Path, magic: u32, kind: &'static str) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let mut src = Source::open(path)?;
    let mut header = vec![0u8; header_len];
    let got = src.read_full(&mut header)?;
    let truncated = |expected: u64, found: u64| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        found,
    };
    if got < 4 {
        return Err(truncated(header_len as u64, got as u64));
    }
    let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
            kind,
        });
    }
    if got < header_len {
        return Err(truncated(header_len as u64, got as u64));
    }
    let dims: Vec<u32> = header[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // The leading dimension (item count) may be zero: an empty set. The
    // per-item dimensions may not.
    if dims[1..].contains(&0) {
        return Err(DataError::ZeroDim {
            path: path.to_path_buf(),
            dims,
        });
    }
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .filter(|&p| p <= MAX_PAYLOAD)
        .ok_or_else(|| DataError::TooLarge {
            path: path.to_path_buf(),
            dims: dims.clone(),
            limit: MAX_PAYLOAD,
        })?;
    let mut data = Vec::with_capacity(payload.min(MAX_RESERVE) as usize);
    let n = (&mut src.inner)
        .take(payload)
        .read_to_end(&mut data)
        .map_err(|e| src.err(e))? as u64;
    let expected = header_len as u64 + payload;
    if n < payload {
        return Err(truncated(expected, header_len as u64 + n));
    }
    // Read to EOF: detects trailing bytes, and makes the gzip decoder check
    // its CRC trailer.
    let mut extra = [0u8; 1];
    if src.read_full(&mut extra)? > 0 {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            expected,
        });
    }
    Ok((dims, data))
}

/// Reads an IDX file of `u8` images (magic `0x00000803`), plain or gzipped.
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    let (dims, pixels) = read_idx(path, IMAGES_MAGIC, "u8 images")?;
    Ok(IdxImages {
        count: dims[0] as usize,
        rows: dims[1] as usize,
        cols: dims[2] as usize,
        pixels,
    })
}

/// Reads an IDX file of `u8` labels (magic `0x00000801`), plain or gzipped.
///
/// Label values are not range-checked here; [`read_split`] does that.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    read_idx(path, LABELS_MAGIC, "u8 labels").map(|(_, labels)| labels)
}

/// Reads a matching pair of image and label files into an [`ImageSet`],
/// checking that the counts agree and that every label is a digit 0-9.
pub fn read_split(images_path: &Path, labels_path: &Path) -> Result<ImageSet, DataError> {
    let images = read_images(images_path)?;
    let labels = read_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(DataError::BadLabel {
            path: labels_path.to_path_buf(),
            index,
            label,
        });
    }
    Ok(ImageSet {
        rows: images.rows,
        cols: images.cols,
        images: images.pixels,
        labels,
    })
}

/// Finds `dir/base`, or else `dir/base.gz`.
fn find_file(dir: &Path, base: &str, what: &str) -> Result<PathBuf, DataError> {
    let tried = vec![dir.join(base), dir.join(format!("{base}.gz"))];
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(DataError::Missing {
            what: what.to_string(),
            tried,
        }),
    }
}

/// The four IDX files [`load_idx_dir`] reads from `dir` (those that exist), in the order
/// training images, training labels, test images, test labels.
pub fn idx_files(dir: &Path) -> Vec<PathBuf> {
    [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
        .iter()
        .filter_map(|base| find_file(dir, base, base).ok())
        .collect()
}

/// Loads the four standard MNIST-layout IDX files from `dir`:
/// [`TRAIN_IMAGES`], [`TRAIN_LABELS`], [`TEST_IMAGES`] and [`TEST_LABELS`],
/// each either plain or with a `.gz` suffix (the plain file wins if both
/// exist).
///
/// The returned [`Splits`] is named after the directory's last component
/// (e.g. `"mnist"` for `data/mnist`), or `"idx"` if it has none. Train and
/// test images must have the same shape.
pub fn load_idx_dir(dir: &Path) -> Result<Splits, DataError> {
    let train_images = find_file(dir, TRAIN_IMAGES, "training images")?;
    let train_labels = find_file(dir, TRAIN_LABELS, "training labels")?;
    let test_images = find_file(dir, TEST_IMAGES, "test images")?;
    let test_labels = find_file(dir, TEST_LABELS, "test labels")?;
    let train = read_split(&train_images, &train_labels)?;
    let test = read_split(&test_images, &test_labels)?;
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(DataError::ShapeMismatch {
            train_rows: train.rows,
            train_cols: train.cols,
            test_rows: test.rows,
            test_cols: test.cols,
        });
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "idx".to_string());
    let validation = ImageSet {
        rows: train.rows,
        cols: train.cols,
        images: Vec::new(),
        labels: Vec::new(),
    };
    Ok(Splits {
        name,
        train,
        test,
        validation,
    })
}

/// Checks the [`ImageSet`] invariant and that it fits in an IDX header.
fn validate(path: &Path, set: &ImageSet) -> Result<(), DataError> {
    let invalid = |reason: String| {
        Err(DataError::InvalidSet {
            path: path.to_path_buf(),
            reason,
        })
    };
    if set.rows == 0 || set.cols == 0 {
        return invalid(format!("zero image size {}x{}", set.rows, set.cols));
    }
    for (what, v) in [("rows", set.rows), ("cols", set.cols), ("count", set.len())] {
        if u32::try_from(v).is_err() {
            return invalid(format!("{what} = {v} does not fit in a u32"));
        }
    }
    if set.len().checked_mul(set.pixels()) != Some(set.images.len()) {
        return invalid(format!(
            "{} image bytes for {} labels of {}x{} images",
            set.images.len(),
            set.len(),
            set.rows,
            set.cols
        ));
    }
    Ok(())
}

/// Writes `path` atomically (see [`crate::atomic`]), naming the file in errors.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), DataError> {
    crate::atomic::write_with(path, write).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the images of `set` as a plain IDX `u8` image file (magic
/// `0x00000803`, dims `len, rows, cols`), atomically.
pub fn write_images(path: &Path, set: &ImageSet) -> Result<(), DataError> {
    validate(path, set)?;
    write_atomic(path, |w| {
        w.write_all(&IMAGES_MAGIC.to_be_bytes())?;
        for d in [set.len(), set.rows, set.cols] {
            w.write_all(&(d as u32).to_be_bytes())?;
        }
        w.write_all(&set.images)
    })
}

/// Writes the labels of `set` as a plain IDX `u8` label file (magic
/// `0x00000801`, dim `len`), atomically. Labels must be digits 0-9.
pub fn write_labels(path: &Path, set: &ImageSet) -> Result<(), DataError> {
    validate(path, set)?;
    if let Some((i, l)) = set
        .labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(DataError::InvalidSet {
            path: path.to_path_buf(),
            reason: format!("label {l} at index {i} is not in 0..=9"),
        });
    }
    write_atomic(path, |w| {
        w.write_all(&LABELS_MAGIC.to_be_bytes())?;
        w.write_all(&(set.len() as u32).to_be_bytes())?;
        w.write_all(&set.labels)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::fs;

    fn sample(n: usize) -> ImageSet {
        let (rows, cols) = (4, 3);
        ImageSet {
            rows,
            cols,
            images: (0..n * rows * cols).map(|i| (i * 7 % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    fn write_dir(dir: &Path, train: &ImageSet, test: &ImageSet) {
        write_images(&dir.join(TRAIN_IMAGES), train).unwrap();
        write_labels(&dir.join(TRAIN_LABELS), train).unwrap();
        write_images(&dir.join(TEST_IMAGES), test).unwrap();
        write_labels(&dir.join(TEST_LABELS), test).unwrap();
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn raw_images(count: u32, rows: u32, cols: u32, data: &[u8]) -> Vec<u8> {
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [count, rows, cols] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn round_trip_and_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnist");
        fs::create_dir(&dir).unwrap();
        let (train, test) = (sample(12), sample(5));
        write_dir(&dir, &train, &test);
        // Exact on-disk layout.
        let bytes = fs::read(dir.join(TEST_IMAGES)).unwrap();
        assert_eq!(
            &bytes[..16],
            &[0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3]
        );
        assert_eq!(bytes.len(), 16 + 5 * 12);
        let bytes = fs::read(dir.join(TEST_LABELS)).unwrap();
        assert_eq!(&bytes[..8], &[0, 0, 8, 1, 0, 0, 0, 5]);
        // No temp files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);

        let splits = load_idx_dir(&dir).unwrap();
        assert_eq!(splits.name, "mnist");
        assert_eq!(splits.train, train);
        assert_eq!(splits.test, test);
        assert_eq!(splits.train.image(2), &train.images[24..36]);
        assert_eq!(splits.test.label(3), 3);
    }

    #[test]
    fn gz_variant_readable_and_plain_preferred() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (train, test) = (sample(6), sample(2));
        write_dir(dir, &train, &test);
        // Replace the train images by a gzipped copy of different content.
        let other = sample(6)
            .images
            .iter()
            .map(|b| b ^ 0xff)
            .collect::<Vec<_>>();
        let gz = gzip(&raw_images(6, 4, 3, &other));
        fs::write(dir.join(format!("{TRAIN_IMAGES}.gz")), &gz).unwrap();
        // Plain wins while it exists.
        assert_eq!(load_idx_dir(dir).unwrap().train.images, train.images);
        fs::remove_file(dir.join(TRAIN_IMAGES)).unwrap();
        assert_eq!(load_idx_dir(dir).unwrap().train.images, other);
    }

    #[test]
    fn missing_file_names_candidates() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load_idx_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, DataError::Missing { ref tried, .. } if tried.len() == 2));
        let msg = err.to_string();
        assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
        assert!(msg.contains("scripts/fetch-mnist.sh"), "{msg}");
    }

    #[test]
    fn truncated_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("imgs");
        let mut bytes = raw_images(2, 4, 3, &[1; 24]);
        bytes.truncate(bytes.len() - 5);
        fs::write(&p, &bytes).unwrap();
        let err = read_images(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 40,
                    found: 35,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("expected 40 bytes, found 35"),
            "{err}"
        );
        assert!(err.to_string().contains("imgs"), "{err}");
        // Truncated inside the header.
        fs::write(&p, &bytes[..10]).unwrap();
        let err = read_images(&p).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 16,
                found: 10,
                ..
            }
        ));
        // Trailing garbage is rejected too.
        let mut long = raw_images(2, 4, 3, &[1; 24]);
        long.push(0);
        fs::write(&p, &long).unwrap();
        assert!(matches!(
            read_images(&p),
            Err(DataError::TrailingData { expected: 40, .. })
        ));
    }

    #[test]
    fn bad_magic() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_dir(dir, &sample(3), &sample(3));
        // A label file where images are expected.
        let err = read_images(&dir.join(TRAIN_LABELS)).unwrap_err();
        assert!(matches!(
            err,
            DataError::BadMagic {
                expected: 0x803,
                found: 0x801,
                ..
            }
        ));
        assert!(err.to_string().contains("0x00000801"), "{err}");
        let err = read_labels(&dir.join(TRAIN_IMAGES)).unwrap_err();
        assert!(matches!(
            err,
            DataError::BadMagic {
                expected: 0x801,
                found: 0x803,
                ..
            }
        ));
    }

    #[test]
    fn count_mismatch_and_bad_label() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_dir(dir, &sample(4), &sample(3));
        let err = read_split(&dir.join(TRAIN_IMAGES), &dir.join(TEST_LABELS)).unwrap_err();
        assert!(matches!(
            err,
            DataError::CountMismatch {
                images: 4,
                labels: 3,
                ..
            }
        ));
        assert!(err.to_string().contains("4 images"), "{err}");

        let mut labels = LABELS_MAGIC.to_be_bytes().to_vec();
        labels.extend_from_slice(&4u32.to_be_bytes());
        labels.extend_from_slice(&[1, 2, 10, 3]);
        fs::write(dir.join(TRAIN_LABELS), &labels).unwrap();
        let err = load_idx_dir(dir).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadLabel {
                    index: 2,
                    label: 10,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn corrupt_gzip() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("imgs.gz");
        let good = gzip(&raw_images(2, 4, 3, &[9; 24]));
        // Cut in the middle of the deflate stream.
        fs::write(&p, &good[..good.len() / 2]).unwrap();
        let err = read_images(&p).unwrap_err();
        assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
        assert!(err.to_string().contains("corrupt gzip"), "{err}");
        // Flip a byte in the CRC trailer.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 6] ^= 0x55;
        fs::write(&p, &bad).unwrap();
        assert!(matches!(
            read_images(&p),
            Err(DataError::CorruptGzip { .. })
        ));
        // Garbage after the gzip magic.
        fs::write(&p, [0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).unwrap();
        assert!(matches!(
            read_images(&p),
            Err(DataError::CorruptGzip { .. })
        ));
    }

    #[test]
    fn zero_and_absurd_dims() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("imgs");
        fs::write(&p, raw_images(5, 0, 28, &[])).unwrap();
        assert!(matches!(read_images(&p), Err(DataError::ZeroDim { .. })));
        // 2^32-1 images of 2^32-1 x 2^32-1: would overflow u64.
        fs::write(&p, raw_images(u32::MAX, u32::MAX, u32::MAX, &[])).unwrap();
        assert!(matches!(read_images(&p), Err(DataError::TooLarge { .. })));
        // Just over 4 GiB without overflow.
        fs::write(&p, raw_images(1 << 16, 1 << 8, (1 << 8) + 1, &[])).unwrap();
        let err = read_images(&p).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err:?}");
        // Plausible header, tiny file: truncated, without a huge allocation.
        fs::write(&p, raw_images(1 << 16, 1 << 8, 1 << 8, &[0; 10])).unwrap();
        assert!(matches!(
            read_images(&p),
            Err(DataError::Truncated { found: 26, .. })
        ));
        // An empty set is fine.
        fs::write(&p, raw_images(0, 28, 28, &[])).unwrap();
        assert_eq!(read_images(&p).unwrap().count, 0);
    }

    #[test]
    fn writer_rejects_inconsistent_sets() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x");
        let mut s = sample(3);
        s.images.pop();
        assert!(matches!(
            write_images(&p, &s),
            Err(DataError::InvalidSet { .. })
        ));
        let mut s = sample(3);
        s.labels[1] = 11;
        assert!(matches!(
            write_labels(&p, &s),
            Err(DataError::InvalidSet { .. })
        ));
        assert!(!p.exists());
        // Overwrite an existing file atomically.
        write_images(&p, &sample(2)).unwrap();
        write_images(&p, &sample(3)).unwrap();
        assert_eq!(read_images(&p).unwrap().count, 3);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn image_set_accessors() {
        let mut s = sample(5);
        assert_eq!((s.len(), s.pixels(), s.is_empty()), (5, 12, false));
        s.truncate(7);
        assert_eq!(s.len(), 5);
        s.truncate(2);
        assert_eq!((s.len(), s.images.len()), (2, 24));
        s.truncate(0);
        assert!(s.is_empty() && s.images.is_empty());
    }
}
