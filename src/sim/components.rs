//! Components: one entity per graph node, plain fixed-size data, no heap per node.

use bevy_ecs::prelude::*;

use crate::model::MAX_DIM;

/// A vector of phase or magnitude indices; only the first D entries are used.
pub type IndexVec = [u16; MAX_DIM];

/// The dense index `0..n` of a node, for kernels that work on contiguous arrays.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// Dense node index.
    pub index: u32,
}

/// Marks an input node; `slot` is its position among the inputs. Injection finds the inputs
/// by this component and gives each the entry `slot` of the input encoding.
#[derive(Component, Clone, Copy, Debug)]
pub struct InputNode {
    /// Position among the inputs and in the input encoding (= node index).
    pub slot: u32,
}

/// Marks an output node; `slot` is its position among the outputs.
#[derive(Component, Clone, Copy, Debug)]
pub struct OutputNode {
    /// Position among the outputs.
    pub slot: u32,
}

/// Marks a hidden node (neither input nor output). No system filters on it: hidden credit goes
/// to every active node that is not an output, inputs included (SPEC 7). Kept so inspection and
/// future per-role queries can select hidden nodes by archetype.
#[derive(Component, Clone, Copy, Debug)]
pub struct HiddenNode;

/// A node's phase parameter vector θφ (indices in `0..N`).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase(pub IndexVec);

/// A node's magnitude parameter vector θμ (indices in `0..M`).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Magnitude(pub IndexVec);

/// The float signal of a node's parameters, `s_d = cosT[θφ_d] · A[θμ_d]`; kept current by the
/// parameter-sync system whenever `Phase` or `Magnitude` changes.
///
/// No system reads it: no formula of SPEC 4-7 uses a node's parameter signal (readout and
/// credit use the signal of the activation, `cosT[φa]·A[μa]`). Kept for inspection and the
/// Python API (issue 14).
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Signal(pub [f32; MAX_DIM]);

/// The activation of an active node in the current sample: accumulated phase and magnitude
/// vectors and strength σ. Present only on active nodes: inserted on arrival (or injection),
/// removed by eviction.
///
/// Stored as a sparse set: nodes switch between active and inactive every timestep, and a
/// sparse-set insert or remove does not move the entity between archetype tables. Build with the
/// `table-activation` feature to measure table (dense) storage instead.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
#[cfg_attr(not(feature = "table-activation"), component(storage = "SparseSet"))]
pub struct Activation {
    /// Accumulated phase vector φa.
    pub phase: IndexVec,
    /// Accumulated magnitude vector μa.
    pub magnitude: IndexVec,
    /// Strength σ.
    pub strength: f32,
}

/// A node's discrete-gradient accumulators (SPEC 7, `update: Accumulate`): requested steps
/// that have not reached the threshold yet, per phase and magnitude dimension.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct Accumulator {
    /// Pending phase steps.
    pub phase: [f32; MAX_DIM],
    /// Pending magnitude steps.
    pub magnitude: [f32; MAX_DIM],
}
