//! The systems: thin adapters that query components, call `model/` or `radiation/`, and write
//! results back. One file per stage, in pipeline order.

pub mod credit;
pub mod eviction;
pub mod forward;
pub mod inject;
pub mod radiation;
pub mod readout;
pub mod termination;
pub mod update;
