//! Traces: the state of one sample's forward pass at every timestep, recorded from the world
//! as the pass runs (the same pass [`Simulation::run_encoded`] runs, so a trace never changes
//! the result).
//!
//! A record is taken after injection (timestep 0: the inputs) and after every timestep; a
//! settled pass (`forward.settle`) has one record after it. Node arrays are dense over all
//! nodes (`[node]` or `[node][dim]`), with zeros for inactive nodes; the radiation targets are
//! those of the timestep's sources, [`NO_TARGET`]-padded to K.

use super::Simulation;
use super::resources::{ActiveSnapshot, LoopState, RadiationTargets, Readout, Topology};

/// Padding of a radiation-target row.
pub const NO_TARGET: u32 = u32::MAX;

/// The state after one timestep.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceStep {
    /// Timesteps run when the record was taken (0: right after injection).
    pub t: u32,
    /// The adaptive threshold τ after the timestep.
    pub tau: f32,
    /// Whether each node is active, `[node]`.
    pub active: Vec<bool>,
    /// φa, `[node][dim]` (0 where inactive).
    pub phase: Vec<u16>,
    /// μa, `[node][dim]` (0 where inactive).
    pub magnitude: Vec<u16>,
    /// σ, `[node]` (0 where inactive).
    pub strength: Vec<f32>,
    /// The timestep's sources (nodes active when it began), ascending; empty at timestep 0
    /// and for a settled pass.
    pub sources: Vec<u32>,
    /// Each source's radiation targets, `[source][k]`, [`NO_TARGET`]-padded (empty when
    /// radiation is off).
    pub radiation_targets: Vec<u32>,
    /// The output signals `cosT[φa]·A[μa]`, `[output][dim]` (0 for inactive outputs).
    pub output_signals: Vec<f32>,
}

/// One sample's trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// D.
    pub dim: usize,
    /// Radiation slots per source (K; 0 when radiation is off).
    pub top_k: usize,
    /// Whether the pass was the settled one (one record after it).
    pub settled: bool,
    /// The records, in time order.
    pub steps: Vec<TraceStep>,
    /// Logits at readout (empty when no output was active).
    pub logits: Vec<f32>,
    /// The outcome.
    pub outcome: super::SampleOutcome,
}

impl Simulation {
    /// Runs one evaluation pass on an encoded input, recording its state after injection and
    /// after every timestep.
    pub fn trace_encoded(&mut self, phase: &[u16], magnitude: &[u16], label: u8) -> Trace {
        self.begin(phase, magnitude, label, false);
        let mut steps = vec![self.record(false)];
        if self.settings.settled {
            self.settle.run(&mut self.world);
            steps.push(self.record(false));
        } else {
            while !self.should_stop() {
                self.step();
                steps.push(self.record(true));
            }
        }
        let outcome = self.finish_sample(label);
        Trace {
            dim: self.settings.dim,
            top_k: if self.settings.radiation {
                self.settings.top_k
            } else {
                0
            },
            settled: self.settings.settled,
            steps,
            logits: self.world.resource::<Readout>().logits.clone(),
            outcome,
        }
    }

    /// Encodes (without dropout) and traces one image.
    pub fn trace_image(&mut self, image: &[u8], label: u8) -> Trace {
        let len = self.encoding_len();
        let (mut p, mut m) = (vec![0u16; len], vec![0u16; len]);
        self.encode(image, &mut p, &mut m);
        self.trace_encoded(&p, &m, label)
    }

    /// The logits of the last readout (empty when no output was active).
    pub fn logits(&self) -> &[f32] {
        &self.world.resource::<Readout>().logits
    }

    /// The record of the world as it is now; `stepped` when a timestep just ran (its sources
    /// and radiation targets are in the snapshot and target resources).
    fn record(&mut self, stepped: bool) -> TraceStep {
        let dim = self.settings.dim;
        let n = self.settings.total_nodes as usize;
        let mut step = TraceStep {
            t: self.world.resource::<LoopState>().t,
            tau: self.world.resource::<LoopState>().tau,
            active: vec![false; n],
            phase: vec![0; n * dim],
            magnitude: vec![0; n * dim],
            strength: vec![0.0; n],
            sources: Vec::new(),
            radiation_targets: Vec::new(),
            output_signals: Vec::new(),
        };
        for (k, a) in self.activations() {
            let k = k as usize;
            step.active[k] = true;
            step.phase[k * dim..(k + 1) * dim].copy_from_slice(&a.phase[..dim]);
            step.magnitude[k * dim..(k + 1) * dim].copy_from_slice(&a.magnitude[..dim]);
            step.strength[k] = a.strength;
        }
        let roles = self.world.resource::<Topology>().graph.roles;
        let first_output = (roles.total - roles.outputs) as usize;
        step.output_signals = vec![0.0; roles.outputs as usize * dim];
        let tables = &self.world.resource::<super::resources::LookupTables>().0;
        for (o, out) in step.output_signals.chunks_exact_mut(dim).enumerate() {
            let k = first_output + o;
            if step.active[k] {
                let range = k * dim..(k + 1) * dim;
                tables.signal_vec(&step.phase[range.clone()], &step.magnitude[range], out);
            }
        }
        if stepped {
            step.sources = self.world.resource::<ActiveSnapshot>().nodes.clone();
            if self.settings.radiation {
                let targets = self.world.resource::<RadiationTargets>();
                let k = targets.k.max(1);
                step.radiation_targets = vec![NO_TARGET; step.sources.len() * k];
                for (i, row) in step.radiation_targets.chunks_exact_mut(k).enumerate() {
                    let found = targets.of(i);
                    row[..found.len()].copy_from_slice(found);
                }
            }
        }
        step
    }
}
