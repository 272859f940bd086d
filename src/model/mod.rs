//! The model's pure math, no ECS: lookup tables, the phase cell, arrivals and their
//! accumulation, τ adaptation and pruning, cosine similarity, class encodings, the fixed random
//! input adapter, loss and prediction, credit and the discrete update, and the named RNG
//! streams.
//!
//! Everything here is plain functions over slices; nothing depends on bevy (the rules that have
//! scene options read the scene's plain types, e.g. `scene::Inhibition`). Float sums are
//! always taken in a fixed, documented order so that results are bit-identical from run to
//! run and independent of threading (SPEC 10).
//!
//! Index vectors are `&[u16]` of length D (`D <= MAX_DIM`); phase indices live in `0..N`,
//! magnitude indices in `0..M`, with N and M each in `2..=65536`.

pub mod adapter;
pub mod arrivals;
pub mod backprop;
pub mod credit;
pub mod encodings;
pub mod eviction;
pub mod loss;
pub mod optimizer;
pub mod phase;
pub mod phasor;
pub mod readout;
pub mod rng;
pub mod settle;
pub mod signal;
pub mod tables;
pub mod update;

pub use adapter::{AdapterError, AdapterScratch, InputAdapter, LinearMap, Mlp, quantize};
pub use encodings::{ClassEncodings, EncodingError, Separation};
pub use loss::{cross_entropy, logits, predict, softmax};
pub use phase::{add_mod, phase_cell, radiation_score};
pub use rng::Stream;
pub use signal::cosine;
pub use tables::Tables;

/// Largest supported vector dimension D; index vectors fit in `[u16; MAX_DIM]`.
pub const MAX_DIM: usize = 16;
