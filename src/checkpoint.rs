//! Checkpoints: everything needed to continue a run exactly (SPEC 10), in a small versioned
//! binary format.
//!
//! # File format (version 1)
//!
//! All integers are little-endian.
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! | 0      | 8    | magic bytes [`MAGIC`] (`NGCKPT`, NUL, `0x01`)                |
//! | 8      | 4    | format version, `u32` ([`FORMAT_VERSION`])                   |
//! | 12     | 8    | payload length in bytes, `u64`                               |
//! | 20     | 8    | checksum of the payload, `u64`: FNV-1a 64 ([`fnv1a64`])      |
//! | 28     | …    | payload                                                      |
//!
//! The payload is a [`Checkpoint`] in the section encoding of [`crate::state::codec`]: named,
//! length-prefixed sections in declaration order — `shape` (seven `u32` then the `u64` graph
//! fingerprint), `state` (the [`RunProgress`] of [`crate::state`], whose `sim` section is the
//! primary world's [`crate::state::SimState`]), `scene_text` (the resolved scene at save time)
//! and `history` (the run's reports so far, JSON). Version 1 files (positional fields, no
//! pattern cache) are refused with a message naming both versions.
//!
//! Loading checks, in order, the magic bytes, the version, the payload length (truncation) and
//! the checksum (corruption) before parsing anything, and checks every length prefix against
//! the bytes that remain before allocating, so a damaged file gives an error, never a panic or
//! an absurd allocation.
//!
//! Saving is atomic: the bytes go to `<name>.tmp-<pid>` in the target's directory, are
//! fsynced, and the temporary file is renamed over the target.

use std::fs;
use std::io;
use std::path::Path;

use crate::persistent_state;
use crate::state::RunProgress;
use crate::state::codec::{self, Codec, Reader};

/// The eight bytes every checkpoint starts with.
pub const MAGIC: [u8; 8] = *b"NGCKPT\0\x01";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

/// Size of the fixed header: magic, version, payload length, checksum.
const HEADER_LEN: usize = 8 + 4 + 8 + 8;

/// The sizes a run's state depends on; a checkpoint only fits a run of the same shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Number of graph nodes.
    pub total_nodes: u32,
    /// Number of input nodes.
    pub input_nodes: u32,
    /// Number of output nodes.
    pub output_nodes: u32,
    /// Vector dimension `D`.
    pub dim: u32,
    /// Number of phase bins.
    pub phase_bins: u32,
    /// Number of magnitude bins.
    pub magnitude_bins: u32,
    /// Number of classes `C`.
    pub classes: u32,
    /// Hash of the graph's edge list, computed by the caller.
    pub graph_fingerprint: u64,
}

impl Shape {
    /// The fields in order, with their names, for comparison and encoding.
    fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("total_nodes", u64::from(self.total_nodes)),
            ("input_nodes", u64::from(self.input_nodes)),
            ("output_nodes", u64::from(self.output_nodes)),
            ("dim", u64::from(self.dim)),
            ("phase_bins", u64::from(self.phase_bins)),
            ("magnitude_bins", u64::from(self.magnitude_bins)),
            ("classes", u64::from(self.classes)),
            ("graph_fingerprint", self.graph_fingerprint),
        ]
    }

    /// Checks that a checkpoint of this shape fits a run of shape `run`; the error names the
    /// first field that differs, e.g. "checkpoint … was made for total_nodes = 1000, this run
    /// has 400". `path` is the checkpoint's path, for the message.
    pub fn check_matches(&self, run: &Shape, path: &Path) -> Result<(), CheckpointError> {
        for ((field, checkpoint), (_, run)) in self.fields().into_iter().zip(run.fields()) {
            if checkpoint != run {
                return Err(CheckpointError::ShapeMismatch {
                    path: path.display().to_string(),
                    field,
                    checkpoint,
                    run,
                });
            }
        }
        Ok(())
    }
}

impl Codec for Shape {
    fn encode(&self, out: &mut Vec<u8>) {
        for (_, v) in self.fields().iter().take(7) {
            (*v as u32).encode(out);
        }
        self.graph_fingerprint.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        Ok(Shape {
            total_nodes: u32::decode(r)?,
            input_nodes: u32::decode(r)?,
            output_nodes: u32::decode(r)?,
            dim: u32::decode(r)?,
            phase_bins: u32::decode(r)?,
            magnitude_bins: u32::decode(r)?,
            classes: u32::decode(r)?,
            graph_fingerprint: u64::decode(r)?,
        })
    }
}

persistent_state! {
    /// Everything needed to continue a run exactly, and what its reports need to go on.
    pub struct Checkpoint {
        /// The shape the state belongs to.
        shape: Shape,
        /// The runner's and its primary world's persistent state.
        state: RunProgress,
        /// The resolved scene (RON) at save time.
        scene_text: String,
        /// The caller's opaque JSON (the training curves so far): reports, not state.
        history: String,
    }
}

/// Why a checkpoint could not be saved, loaded or used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("cannot access checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with the checkpoint magic bytes.
    #[error("{path} is not a neurograph checkpoint (unrecognised header)")]
    NotACheckpoint {
        /// The file.
        path: String,
    },
    /// The file was written in a format version this build does not read.
    #[error("checkpoint {path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: String,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file is shorter than its header says.
    #[error("checkpoint {path} is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file.
        path: String,
        /// Bytes the file should have.
        expected: u64,
        /// Bytes it has.
        found: u64,
    },
    /// The payload's checksum does not match the header.
    #[error("checkpoint {path} is corrupt: the payload checksum does not match")]
    Corrupt {
        /// The file.
        path: String,
    },
    /// The checksum matched but the payload does not decode.
    #[error("checkpoint {path} is malformed: {what}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// The checkpoint is sound but does not fit this run (another adapter, another
    /// gradient-accumulation window, settings an override cannot join).
    #[error("checkpoint {path} does not fit this run: {what}")]
    Incompatible {
        /// The file.
        path: String,
        /// What does not fit.
        what: String,
    },
    /// The checkpoint was made for a run of another shape.
    #[error(
        "checkpoint {path} was made for {field} = {checkpoint}, this run has {run}{}",
        shape_hint(field)
    )]
    ShapeMismatch {
        /// The file.
        path: String,
        /// The first differing [`Shape`] field.
        field: &'static str,
        /// Its value in the checkpoint.
        checkpoint: u64,
        /// Its value in this run.
        run: u64,
    },
}

fn shape_hint(field: &str) -> &'static str {
    if field == "graph_fingerprint" {
        " (the graphs' edges differ: another seed or graph settings)"
    } else {
        ""
    }
}

/// The checkpoint payload checksum: FNV-1a 64, the crate's one copy in [`crate::hash`].
pub use crate::hash::fnv1a64;

/// Writes `ckpt` to `path` atomically (temporary file in the same directory, fsync, rename),
/// creating the parent directories.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    let bytes = encode(ckpt);
    crate::atomic::write(path, &bytes).map_err(|source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a checkpoint written by [`save`], checking its header, length and checksum.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    })?;
    decode(&bytes, &path.display().to_string())
}

/// The whole file: header and payload.
fn encode(c: &Checkpoint) -> Vec<u8> {
    let p = codec::to_bytes(c);
    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(p.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(&p).to_le_bytes());
    out.extend_from_slice(&p);
    out
}

/// Checks the header, length and checksum, then parses the payload.
fn decode(bytes: &[u8], path: &str) -> Result<Checkpoint, CheckpointError> {
    let truncated = |expected: usize| CheckpointError::Truncated {
        path: path.to_string(),
        expected: expected as u64,
        found: bytes.len() as u64,
    };
    // A file shorter than the magic that starts like one is a truncated checkpoint.
    if bytes.len() < MAGIC.len() {
        return Err(if !bytes.is_empty() && MAGIC.starts_with(bytes) {
            truncated(HEADER_LEN)
        } else {
            CheckpointError::NotACheckpoint {
                path: path.to_string(),
            }
        });
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(CheckpointError::NotACheckpoint {
            path: path.to_string(),
        });
    }
    if bytes.len() < 12 {
        return Err(truncated(HEADER_LEN));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated(HEADER_LEN));
    }
    let payload_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let checksum = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    let available = (bytes.len() - HEADER_LEN) as u64;
    if payload_len > available {
        return Err(CheckpointError::Truncated {
            path: path.to_string(),
            expected: payload_len.saturating_add(HEADER_LEN as u64),
            found: bytes.len() as u64,
        });
    }
    if payload_len < available {
        return Err(CheckpointError::Malformed {
            path: path.to_string(),
            what: format!(
                "{} unexpected bytes after the payload",
                available - payload_len
            ),
        });
    }
    let payload = &bytes[HEADER_LEN..];
    if fnv1a64(payload) != checksum {
        return Err(CheckpointError::Corrupt {
            path: path.to_string(),
        });
    }
    parse_payload(payload).map_err(|what| CheckpointError::Malformed {
        path: path.to_string(),
        what,
    })
}

fn parse_payload(payload: &[u8]) -> Result<Checkpoint, String> {
    codec::from_bytes(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{EpochCursor, PatternCacheState, RunnerState, SimState};
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};
    use std::path::PathBuf;

    fn shape() -> Shape {
        Shape {
            total_nodes: 1000,
            input_nodes: 200,
            output_nodes: 10,
            dim: 5,
            phase_bins: 64,
            magnitude_bins: 512,
            classes: 10,
            graph_fingerprint: 0xdead_beef_1234_5678,
        }
    }

    fn sample() -> (Checkpoint, ChaCha8Rng) {
        let mut order = ChaCha8Rng::seed_from_u64(42);
        order.set_stream(7);
        for _ in 0..37 {
            order.next_u32();
        }
        let n = 12;
        let sim = SimState {
            phase: (0..n).map(|i| (i * 5 % 64) as u16).collect(),
            magnitude: (0..n).map(|i| (i * 37 % 512) as u16).collect(),
            acc_phase: (0..n).map(|i| i as f32 * 0.001 - 0.005).collect(),
            acc_magnitude: vec![f32::MIN_POSITIVE, -0.0, 1e-30, 3.5],
            pending_samples: 3,
            pending_phase: vec![],
            pending_magnitude: vec![0.25; 3],
            adapter: (0..20).map(|i| (i as f32).sin()).collect(),
            enc_phase: vec![1, 2, 3],
            enc_magnitude: vec![u16::MAX, 0, 9],
            parameter_version: 123_456_789_012,
            pattern_cache: PatternCacheState {
                nodes: vec![4],
                top_k: vec![6],
                signatures: vec![1; crate::model::MAX_DIM],
                versions: vec![9],
                counts: vec![2],
                targets: vec![7, 8],
            },
            shadows: vec![1.5, -0.25, 511.49],
            moment1: vec![1e-3, 0.0, -2.0],
            moment2: vec![1e-7, 0.0, 4.0],
            optimizer_steps: 17,
            batch_samples: 5,
            batch_sum: vec![0.5, -0.5, 3.0],
        };
        let ckpt = Checkpoint {
            shape: shape(),
            state: RunProgress {
                sim,
                runner: RunnerState {
                    order: order.clone(),
                    samples_seen: 300,
                    epochs_done: 2,
                    script_position: 3,
                    epoch: EpochCursor::closed(10),
                },
            },
            scene_text: "(name: \"quickstart\", seed: 7) // ünïcode".into(),
            history: r#"{"training":[{"epoch":1}]}"#.into(),
        };
        (ckpt, order)
    }

    fn saved() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.ckpt");
        save(&path, &sample().0).unwrap();
        let bytes = fs::read(&path).unwrap();
        (dir, path, bytes)
    }

    #[test]
    fn round_trip_is_exact_and_rng_continues() {
        let (ckpt, mut order) = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/model.ckpt");
        save(&path, &ckpt).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back, ckpt);
        let mut restored = back.state.runner.order.clone();
        for _ in 0..100 {
            assert_eq!(restored.next_u32(), order.next_u32());
        }
        assert_eq!(restored.next_u64(), order.next_u64());
    }

    #[test]
    fn truncation_is_detected() {
        let (dir, _, bytes) = saved();
        let cut = dir.path().join("cut.ckpt");
        for len in [
            3,
            8,
            10,
            12,
            20,
            27,
            28,
            40,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            fs::write(&cut, &bytes[..len]).unwrap();
            match load(&cut) {
                Err(CheckpointError::Truncated {
                    expected, found, ..
                }) => {
                    assert_eq!(found, len as u64);
                    assert!(expected > found);
                }
                other => panic!("cut at {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn flipped_payload_byte_is_corrupt() {
        let (dir, _, bytes) = saved();
        let bad = dir.path().join("bad.ckpt");
        for at in [HEADER_LEN, HEADER_LEN + 40, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            fs::write(&bad, &b).unwrap();
            let err = load(&bad).unwrap_err();
            assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err:?}");
            assert!(err.to_string().contains("corrupt"));
        }
    }

    #[test]
    fn wrong_magic_and_future_version() {
        let (dir, _, bytes) = saved();
        let p = dir.path().join("x.ckpt");
        let mut b = bytes.clone();
        b[0] = b'X';
        fs::write(&p, &b).unwrap();
        assert!(matches!(
            load(&p),
            Err(CheckpointError::NotACheckpoint { .. })
        ));
        fs::write(&p, b"hello, world; definitely not a checkpoint").unwrap();
        assert!(matches!(
            load(&p),
            Err(CheckpointError::NotACheckpoint { .. })
        ));
        fs::write(&p, b"").unwrap();
        assert!(matches!(
            load(&p),
            Err(CheckpointError::NotACheckpoint { .. })
        ));

        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        fs::write(&p, &b).unwrap();
        let err = load(&p).unwrap_err();
        match &err {
            CheckpointError::UnsupportedVersion {
                found, supported, ..
            } => assert_eq!((*found, *supported), (1, 2)),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("version 1"), "{err}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("absent.ckpt")).unwrap_err();
        assert!(matches!(err, CheckpointError::Io { .. }));
        assert!(err.to_string().contains("absent.ckpt"));
    }

    /// Well-checksummed payloads with lying length prefixes must give `Malformed`, not panic or
    /// allocate: rewrite a payload and re-seal it with a valid header.
    #[test]
    fn lying_length_prefixes_are_malformed() {
        let (dir, _, bytes) = saved();
        let p = dir.path().join("lie.ckpt");
        let payload = &bytes[HEADER_LEN..];
        // The shape section: its name (8 + 5 bytes), its length at 13, its 36 bytes; the state
        // section's name length follows at 57.
        for (at, value) in [
            (13usize, u64::MAX),
            (13, 1 << 40),
            (13, 35),
            (57, u64::MAX),
            (57, 1 << 40),
        ] {
            let mut pl = payload.to_vec();
            pl[at..at + 8].copy_from_slice(&value.to_le_bytes());
            let mut file = bytes[..HEADER_LEN].to_vec();
            file[20..28].copy_from_slice(&fnv1a64(&pl).to_le_bytes());
            file.extend_from_slice(&pl);
            fs::write(&p, &file).unwrap();
            let err = load(&p).unwrap_err();
            assert!(matches!(err, CheckpointError::Malformed { .. }), "{err:?}");
        }
        // Every truncation of the payload, re-sealed, is rejected without panicking.
        for len in 0..payload.len() {
            let pl = &payload[..len];
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            file.extend_from_slice(&(len as u64).to_le_bytes());
            file.extend_from_slice(&fnv1a64(pl).to_le_bytes());
            file.extend_from_slice(pl);
            assert!(matches!(
                decode(&file, "t"),
                Err(CheckpointError::Malformed { .. })
            ));
        }
        // Trailing garbage after the declared payload.
        let mut b = bytes.clone();
        b.push(0);
        assert!(matches!(
            decode(&b, "t"),
            Err(CheckpointError::Malformed { .. })
        ));
    }

    #[test]
    fn shape_mismatch_names_the_field() {
        let ckpt = shape();
        let p = Path::new("runs/x/model.ckpt");
        assert!(ckpt.check_matches(&shape(), p).is_ok());
        let run = Shape {
            total_nodes: 400,
            classes: 3,
            ..shape()
        };
        let err = ckpt.check_matches(&run, p).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("was made for total_nodes = 1000, this run has 400"),
            "{msg}"
        );
        assert!(msg.contains("runs/x/model.ckpt"));
        let run = Shape {
            graph_fingerprint: 1,
            ..shape()
        };
        let err = ckpt.check_matches(&run, p).unwrap_err();
        assert!(matches!(
            err,
            CheckpointError::ShapeMismatch {
                field: "graph_fingerprint",
                run: 1,
                ..
            }
        ));
    }

    #[test]
    fn atomic_save_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.ckpt");
        let (mut ckpt, _) = sample();
        save(&path, &ckpt).unwrap();
        ckpt.state.runner.epochs_done = 9;
        save(&path, &ckpt).unwrap(); // overwrite
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["model.ckpt".to_string()]);
        assert_eq!(load(&path).unwrap().state.runner.epochs_done, 9);
        // A target that cannot be written (a directory) fails cleanly, leaving no temp file.
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("keep"), b"x").unwrap();
        assert!(matches!(save(&sub, &ckpt), Err(CheckpointError::Io { .. })));
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["model.ckpt".to_string(), "sub".to_string()]);
    }

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
