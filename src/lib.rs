//! # NeuroGraph
//!
//! A discrete phase-magnitude graph neural network as a bevy_ecs simulation. Priorities, in
//! order: faithful to the model (`docs/model.md`, cited as "SPEC n"), deterministic, fast,
//! easy to script.
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
//! ```
//! use neurograph::scene;
//! use neurograph::sim::Simulation;
//!
//! // A scene is RON; every field not named takes the SPEC's default.
//! let scene = scene::parse(
//!     "Scene(architecture: (total_nodes: 50, input_nodes: 10, output_nodes: 10))",
//!     "example.ron",
//! )?;
//! let mut sim = Simulation::new(&scene)?;
//! let image = [128u8; 28 * 28];
//! let outcome = sim.run_image(&image, 3);
//! assert!(outcome.timesteps >= 1);
//! // The persistent state (parameters, accumulators, encodings, ...) of the world.
//! let state = sim.save_state();
//! assert_eq!(state.phase.len(), 50 * 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout: [`scene`] (RON scene files), [`model`] (pure math), [`graph`] (static DAG),
//! [`radiation`] (top-K kernel), [`sim`] (the ECS), [`state`] (persistent state, declared
//! once), [`checkpoint`] (its file format), [`data`] (datasets), [`run`] (runner, benchmark),
//! [`batch`] (batches of runs).

pub mod alloc;
pub mod atomic;
pub mod batch;
pub mod checkpoint;
pub mod data;
pub mod export;
pub mod graph;
pub mod hash;
pub mod lock;
pub mod model;
pub mod prefetch;
pub mod radiation;
pub mod run;
pub mod scene;
pub mod sim;
pub mod state;

/// The README's Rust examples, compiled and run as doctests so the README cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
