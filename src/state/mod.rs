//! Persistent state, declared once: everything a run needs to continue exactly.
//!
//! A run's data is either *state* or *workspace* (the split rapier makes between its state
//! sets and its pipeline):
//! - **state** is declared in this file and nowhere else: [`SimState`] for one simulation
//!   world (parameters, accumulators, pending gradients, adapter weights, class encodings, the
//!   parameter version and the radiation pattern cache) and [`RunnerState`] for the runner
//!   around it (the `order` stream, samples seen, epochs, the open epoch and the script
//!   position); a checkpoint holds both as a [`RunProgress`]. It is encoded by one function ([`codec::Codec::encode`], generated from the
//!   declaration) and decoded by one; checkpoints, evaluation replicas and the bench's world
//!   hash all go through it.
//! - **workspace** is everything else (snapshots, emissions, arrivals, radiation targets,
//!   credit buffers, readout, clocks, statistics counters, encoding caches, dense parameter
//!   mirrors): it can be dropped and rebuilt at any sample without changing a result
//!   ([`crate::sim::Simulation::reset_workspace`]).
//!
//! Per-node state lives in ECS components (`Phase`, `Magnitude`, `Accumulator`), which stay
//! the systems' truth; [`SimState`] is their dense `[node][dim]` image, captured by
//! [`crate::sim::Simulation::save_state`] and written back by
//! [`crate::sim::Simulation::load_state`].
//!
//! Adding a piece of persistent state is one field here plus its use: the field in the
//! declaration (which gives its encoding, decoding, checkpoint section and hash), and the two
//! lines that read it from and write it to its owner (`sim/persist.rs` for world state,
//! `run/train.rs` or `run/resume.rs` for the runner's).

pub mod codec;

use rand_chacha::ChaCha8Rng;

use crate::persistent_state;
use crate::radiation::cache::Counters;
use codec::{Codec, Reader};

persistent_state! {
    /// The persistent state of one simulation world, dense and node-major (`[node][dim]`).
    pub struct SimState {
        /// θφ of every node, `n·D`.
        phase: Vec<u16>,
        /// θμ of every node, `n·D`.
        magnitude: Vec<u16>,
        /// Pending discrete phase steps (`update: Accumulate`), `n·D`.
        acc_phase: Vec<f32>,
        /// Pending discrete magnitude steps, `n·D`.
        acc_magnitude: Vec<f32>,
        /// Samples summed into the current gradient-accumulation window.
        pending_samples: u32,
        /// Phase gradients summed in the window (empty when gradient accumulation is off).
        pending_phase: Vec<f32>,
        /// Magnitude gradients summed in the window.
        pending_magnitude: Vec<f32>,
        /// Input adapter weights, flat.
        adapter: Vec<f32>,
        /// Class encoding phase indices, `C·D`.
        enc_phase: Vec<u16>,
        /// Class encoding magnitude indices, `C·D`.
        enc_magnitude: Vec<u16>,
        /// The parameter version: bumped once per parameter sync that saw a phase change; the
        /// pattern cache's entries are aged by it.
        parameter_version: u64,
        /// The level-1 radiation cache entries (empty when it is off).
        pattern_cache: PatternCacheState,
        /// Float shadows of every index, node phases, node magnitudes, encoding phases,
        /// encoding magnitudes (a float optimizer's; empty until its first step).
        shadows: Vec<f32>,
        /// The optimizer's first moment (Adam) or velocity (SGD), laid out as `shadows`.
        moment1: Vec<f32>,
        /// The optimizer's second moment (Adam), laid out as `shadows`.
        moment2: Vec<f32>,
        /// Optimizer steps taken (Adam's bias correction).
        optimizer_steps: u64,
        /// Samples summed into the open batch.
        batch_samples: u32,
        /// The open batch's gradients summed in sample order, laid out as `shadows` (empty when
        /// no batch has been summed).
        batch_sum: Vec<f32>,
    }
}

persistent_state! {
    /// The level-1 radiation cache's entries, least recently used first, as parallel arrays.
    #[derive(Default)]
    pub struct PatternCacheState {
        /// Source node of each entry.
        nodes: Vec<u32>,
        /// `top_k` of each entry's key.
        top_k: Vec<u16>,
        /// Quantised phase signature of each entry, `MAX_DIM` values each.
        signatures: Vec<u16>,
        /// Parameter version each entry was computed at.
        versions: Vec<u64>,
        /// Number of targets of each entry.
        counts: Vec<u32>,
        /// The targets, `counts[i]` per entry, concatenated.
        targets: Vec<u32>,
    }
}

persistent_state! {
    /// What a checkpoint holds: the primary world's state and the runner's own.
    pub struct RunProgress {
        /// The primary world.
        sim: SimState,
        /// The runner around it.
        runner: RunnerState,
    }
}

persistent_state! {
    /// The runner's own persistent state; the runner holds it as this struct, so there is
    /// nothing to copy in or out.
    pub struct RunnerState {
        /// The `order` stream: one permutation of the training split per epoch.
        order: ChaCha8Rng,
        /// Training samples run so far (keys the per-sample dropout sub-streams).
        samples_seen: u64,
        /// Training epochs completed.
        epochs_done: u32,
        /// Index of the next script step to run.
        script_position: u32,
        /// The training epoch in progress (`order` empty when none is open).
        epoch: EpochCursor,
    }
}

persistent_state! {
    /// A training epoch in progress: its order, how far it got, and its tallies so far.
    pub struct EpochCursor {
        /// Training-split indices of the epoch, in visiting order (empty: no open epoch).
        order: Vec<u32>,
        /// Samples of `order` already run.
        position: u32,
        /// Outcomes so far.
        tally: Tally,
        /// Samples whose update changed a parameter.
        updates: u64,
        /// Index dimensions changed so far.
        changed: u64,
        /// Pattern-cache events so far (`None` when the cache is off).
        pattern_cache: Option<Counters>,
    }
}

persistent_state! {
    /// Running sums of sample outcomes, for an evaluation or a training epoch.
    pub struct Tally {
        /// Number of classes (the confusion matrix is `classes²`).
        classes: u32,
        /// Samples added.
        samples: u64,
        /// Samples predicted correctly.
        correct: u64,
        /// Samples with a prediction.
        covered: u64,
        /// Sum of the covered samples' losses.
        loss_sum: f64,
        /// Sum of timesteps.
        timesteps: u64,
        /// Sum of the per-sample mean active counts.
        active: f64,
        /// Sum of active outputs at readout.
        outputs: u64,
        /// `confusion[label·classes + prediction]`.
        confusion: Vec<u32>,
    }
}

impl EpochCursor {
    /// No open epoch, with a tally for `classes` classes.
    pub fn closed(classes: u32) -> EpochCursor {
        EpochCursor {
            order: Vec::new(),
            position: 0,
            tally: Tally::new(classes),
            updates: 0,
            changed: 0,
            pattern_cache: None,
        }
    }

    /// Whether an epoch is open.
    pub fn is_open(&self) -> bool {
        !self.order.is_empty()
    }
}

impl Tally {
    /// An empty tally for `classes` classes.
    pub fn new(classes: u32) -> Tally {
        Tally {
            classes,
            samples: 0,
            correct: 0,
            covered: 0,
            loss_sum: 0.0,
            timesteps: 0,
            active: 0.0,
            outputs: 0,
            confusion: vec![0; (classes as usize).pow(2)],
        }
    }
}

impl Codec for Counters {
    fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.hits, self.misses, self.stale_misses, self.evictions] {
            v.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        Ok(Counters {
            hits: u64::decode(r)?,
            misses: u64::decode(r)?,
            stale_misses: u64::decode(r)?,
            evictions: u64::decode(r)?,
        })
    }
}

/// FNV-1a (64-bit) of the encoded state: a short fingerprint to compare worlds (the bench's
/// world hash).
pub fn fingerprint<T: Codec>(state: &T) -> String {
    format!("{:016x}", crate::hash::fnv1a64(&codec::to_bytes(state)))
}
