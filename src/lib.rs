//! # NeuroGraph
//!
//! A discrete phase-magnitude graph neural network as a bevy_ecs simulation. Priorities, in
//! order: faithful to the model (`SPEC.md`), deterministic, fast, easy to script.
//!
//! The model in a dozen lines:
//! - nodes carry a phase vector θφ (D indices in `0..N`) and a magnitude vector θμ (`0..M`);
//! - an image is encoded by a fixed random adapter into (φ, μ) for each input node, which
//!   becomes active with strength σ = 1;
//! - each timestep, every active node u sends to its static successors and to its top-K
//!   *radiation* targets (nodes whose phase best aligns with u's);
//! - an arrival at v is the phase cell φo = φa[u] + θφ[v], μo = μa[u] + θμ[v] with strength
//!   Σ cosT[φo]·A[μo]; excitatory arrivals add to v's activation;
//! - an adaptive threshold τ, a decay and pruning keep the active set bounded;
//! - once an output is active (after a minimum number of timesteps) the pass ends, and the
//!   output signals are compared with class encodings by cosine to give logits.
//!
//! Layout: [`scene`] (RON scene files), [`model`] (pure math), [`graph`] (static DAG),
//! [`radiation`] (top-K kernel), [`sim`] (the ECS), [`data`] (datasets), [`run`] (runner,
//! benchmark).

pub mod atomic;
pub mod batch;
pub mod checkpoint;
pub mod data;
pub mod graph;
pub mod hash;
pub mod model;
pub mod radiation;
pub mod run;
pub mod scene;
pub mod sim;
