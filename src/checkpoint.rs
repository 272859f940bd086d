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
//! The payload holds, in order: the [`Shape`] (seven `u32` then the `u64` graph fingerprint),
//! `phase`, `magnitude` (`u16` vectors), `acc_phase`, `acc_magnitude`, `pending_phase`,
//! `pending_magnitude` (`f32` vectors), `pending_samples` (`u32`), `adapter` (`f32` vector),
//! `enc_phase`, `enc_magnitude` (`u16` vectors), the RNG streams (a `u64` count, then per
//! stream: name string, 32 seed bytes, `u64` stream, `u128` word position),
//! `parameter_version` (`u64`), `script_position`, `epochs_done` (`u32`), `scene_text` and
//! `metrics_json` (strings). A vector is a `u64` element count followed by its elements
//! (`f32` as their IEEE bit patterns, so values round-trip exactly); a string is a `u64` byte
//! count followed by UTF-8 bytes.
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

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// The eight bytes every checkpoint starts with.
pub const MAGIC: [u8; 8] = *b"NGCKPT\0\x01";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

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

/// The exact state of one named ChaCha8 random stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RngState {
    /// The stream's name (e.g. `order`).
    pub name: String,
    /// The generator's seed.
    pub seed: [u8; 32],
    /// The generator's stream number.
    pub stream: u64,
    /// The position in the stream, in 32-bit words.
    pub word_pos: u128,
}

impl RngState {
    /// Captures the state of `rng` under `name`.
    pub fn capture(name: &str, rng: &ChaCha8Rng) -> RngState {
        RngState {
            name: name.to_string(),
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    /// A generator that continues exactly where the captured one stood: it draws the same
    /// values next.
    pub fn restore(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

/// Everything needed to continue a run exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The shape the state belongs to.
    pub shape: Shape,
    /// Phase indices, `n·D`, node-major.
    pub phase: Vec<u16>,
    /// Magnitude indices, `n·D`, node-major.
    pub magnitude: Vec<u16>,
    /// Phase gradient accumulators, `n·D`.
    pub acc_phase: Vec<f32>,
    /// Magnitude gradient accumulators, `n·D`.
    pub acc_magnitude: Vec<f32>,
    /// Phase gradients summed for gradient accumulation and not yet applied (empty when
    /// gradient accumulation is off).
    pub pending_phase: Vec<f32>,
    /// Magnitude gradients summed for gradient accumulation and not yet applied.
    pub pending_magnitude: Vec<f32>,
    /// Samples summed into the pending gradients so far.
    pub pending_samples: u32,
    /// Input adapter weights, flat.
    pub adapter: Vec<f32>,
    /// Class encoding phase indices, `C·D`.
    pub enc_phase: Vec<u16>,
    /// Class encoding magnitude indices, `C·D`.
    pub enc_magnitude: Vec<u16>,
    /// Named random streams.
    pub rng: Vec<RngState>,
    /// The parameter version (radiation cache invalidation).
    pub parameter_version: u64,
    /// Index of the next script step to run.
    pub script_position: u32,
    /// Training epochs completed.
    pub epochs_done: u32,
    /// The resolved scene (RON) at save time.
    pub scene_text: String,
    /// The caller's opaque JSON (e.g. the training curves so far).
    pub metrics_json: String,
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
    let mut p = Vec::with_capacity(
        64 + c.scene_text.len()
            + c.metrics_json.len()
            + 2 * (c.phase.len() + c.magnitude.len() + c.enc_phase.len() + c.enc_magnitude.len())
            + 4 * (c.acc_phase.len()
                + c.acc_magnitude.len()
                + c.pending_phase.len()
                + c.pending_magnitude.len()
                + c.adapter.len()),
    );
    for (_, v) in c.shape.fields().iter().take(7) {
        p.extend_from_slice(&(*v as u32).to_le_bytes());
    }
    p.extend_from_slice(&c.shape.graph_fingerprint.to_le_bytes());
    put_u16s(&mut p, &c.phase);
    put_u16s(&mut p, &c.magnitude);
    put_f32s(&mut p, &c.acc_phase);
    put_f32s(&mut p, &c.acc_magnitude);
    put_f32s(&mut p, &c.pending_phase);
    put_f32s(&mut p, &c.pending_magnitude);
    p.extend_from_slice(&c.pending_samples.to_le_bytes());
    put_f32s(&mut p, &c.adapter);
    put_u16s(&mut p, &c.enc_phase);
    put_u16s(&mut p, &c.enc_magnitude);
    p.extend_from_slice(&(c.rng.len() as u64).to_le_bytes());
    for r in &c.rng {
        put_str(&mut p, &r.name);
        p.extend_from_slice(&r.seed);
        p.extend_from_slice(&r.stream.to_le_bytes());
        p.extend_from_slice(&r.word_pos.to_le_bytes());
    }
    p.extend_from_slice(&c.parameter_version.to_le_bytes());
    p.extend_from_slice(&c.script_position.to_le_bytes());
    p.extend_from_slice(&c.epochs_done.to_le_bytes());
    put_str(&mut p, &c.scene_text);
    put_str(&mut p, &c.metrics_json);

    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(p.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(&p).to_le_bytes());
    out.extend_from_slice(&p);
    out
}

fn put_u16s(out: &mut Vec<u8>, v: &[u16]) {
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_bits().to_le_bytes());
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
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
    let mut r = Reader { rest: payload };
    let shape = Shape {
        total_nodes: r.u32("shape")?,
        input_nodes: r.u32("shape")?,
        output_nodes: r.u32("shape")?,
        dim: r.u32("shape")?,
        phase_bins: r.u32("shape")?,
        magnitude_bins: r.u32("shape")?,
        classes: r.u32("shape")?,
        graph_fingerprint: r.u64("shape")?,
    };
    let phase = r.u16s("phase parameters")?;
    let magnitude = r.u16s("magnitude parameters")?;
    let acc_phase = r.f32s("phase accumulators")?;
    let acc_magnitude = r.f32s("magnitude accumulators")?;
    let pending_phase = r.f32s("pending phase gradients")?;
    let pending_magnitude = r.f32s("pending magnitude gradients")?;
    let pending_samples = r.u32("pending sample count")?;
    let adapter = r.f32s("adapter weights")?;
    let enc_phase = r.u16s("class encoding phases")?;
    let enc_magnitude = r.u16s("class encoding magnitudes")?;
    // Each stream takes at least 8 (name length) + 32 + 8 + 16 bytes.
    let streams = r.count("random streams", 64)?;
    let mut rng = Vec::with_capacity(streams);
    for _ in 0..streams {
        let name = r.string("random stream name")?;
        let seed: [u8; 32] = r
            .take(32, "random stream seed")?
            .try_into()
            .expect("32 bytes");
        let stream = r.u64("random stream number")?;
        let word_pos = u128::from_le_bytes(
            r.take(16, "random stream position")?
                .try_into()
                .expect("16 bytes"),
        );
        rng.push(RngState {
            name,
            seed,
            stream,
            word_pos,
        });
    }
    let parameter_version = r.u64("parameter version")?;
    let script_position = r.u32("script position")?;
    let epochs_done = r.u32("epochs done")?;
    let scene_text = r.string("scene text")?;
    let metrics_json = r.string("metrics")?;
    if !r.rest.is_empty() {
        return Err(format!(
            "{} bytes left over after the last field",
            r.rest.len()
        ));
    }
    Ok(Checkpoint {
        shape,
        phase,
        magnitude,
        acc_phase,
        acc_magnitude,
        pending_phase,
        pending_magnitude,
        pending_samples,
        adapter,
        enc_phase,
        enc_magnitude,
        rng,
        parameter_version,
        script_position,
        epochs_done,
        scene_text,
        metrics_json,
    })
}

/// A cursor over the payload; every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err(format!(
                "{what}: needs {n} bytes, only {} remain",
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    /// A length prefix for elements of at least `elem` bytes each, checked against the bytes
    /// that remain.
    fn count(&mut self, what: &str, elem: usize) -> Result<usize, String> {
        let n = self.u64(what)?;
        let room = (self.rest.len() / elem) as u64;
        if n > room {
            return Err(format!(
                "{what}: length {n} does not fit in the {} bytes that remain",
                self.rest.len()
            ));
        }
        Ok(n as usize)
    }

    fn u16s(&mut self, what: &str) -> Result<Vec<u16>, String> {
        let n = self.count(what, 2)?;
        let raw = self.take(n * 2, what)?;
        Ok(raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    fn f32s(&mut self, what: &str) -> Result<Vec<f32>, String> {
        let n = self.count(what, 4)?;
        let raw = self.take(n * 4, what)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect())
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.count(what, 1)?;
        let raw = self.take(n, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| format!("{what}: not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;
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
        let ckpt = Checkpoint {
            shape: shape(),
            phase: (0..n).map(|i| (i * 5 % 64) as u16).collect(),
            magnitude: (0..n).map(|i| (i * 37 % 512) as u16).collect(),
            acc_phase: (0..n).map(|i| i as f32 * 0.001 - 0.005).collect(),
            acc_magnitude: vec![f32::MIN_POSITIVE, -0.0, 1e-30, 3.5],
            pending_phase: vec![],
            pending_magnitude: vec![0.25; 3],
            pending_samples: 3,
            adapter: (0..20).map(|i| (i as f32).sin()).collect(),
            enc_phase: vec![1, 2, 3],
            enc_magnitude: vec![u16::MAX, 0, 9],
            rng: vec![
                RngState::capture("order", &order),
                RngState::capture("dropout", &ChaCha8Rng::seed_from_u64(1)),
            ],
            parameter_version: 123_456_789_012,
            script_position: 3,
            epochs_done: 2,
            scene_text: "(name: \"quickstart\", seed: 7) // ünïcode".into(),
            metrics_json: r#"{"training":[{"epoch":1}]}"#.into(),
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
        let mut restored = back.rng[0].restore();
        assert_eq!(back.rng[0].name, "order");
        for _ in 0..100 {
            assert_eq!(restored.next_u32(), order.next_u32());
        }
        assert_eq!(restored.next_u64(), order.next_u64());
    }

    #[test]
    fn rng_restore_at_block_boundaries() {
        for draws in [0usize, 1, 15, 16, 17, 63, 64, 65, 200] {
            let mut a = ChaCha8Rng::seed_from_u64(9);
            for _ in 0..draws {
                a.next_u32();
            }
            let mut b = RngState::capture("x", &a).restore();
            for _ in 0..80 {
                assert_eq!(a.next_u32(), b.next_u32(), "after {draws} draws");
            }
        }
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
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        fs::write(&p, &b).unwrap();
        let err = load(&p).unwrap_err();
        match &err {
            CheckpointError::UnsupportedVersion {
                found, supported, ..
            } => assert_eq!((*found, *supported), (2, 1)),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("version 2"), "{err}");
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
        // The first vector's length prefix sits right after the shape (7·4 + 8 bytes).
        for (at, value) in [(36usize, u64::MAX), (36, 1 << 40), (36, 13)] {
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
        ckpt.epochs_done = 9;
        save(&path, &ckpt).unwrap(); // overwrite
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["model.ckpt".to_string()]);
        assert_eq!(load(&path).unwrap().epochs_done, 9);
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
