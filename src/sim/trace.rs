//! Traces: the state of one sample's forward pass at every timestep, recorded from the world
//! as the pass runs (the same pass [`Simulation::run_encoded`] runs, so a trace never changes
//! the result).
//!
//! A record is taken after injection (timestep 0: the inputs) and after every timestep; a
//! settled pass (`forward.settle`) has one record after it. Node arrays are dense over all
//! nodes (`[node]` or `[node][dim]`), with zeros for inactive nodes; the radiation targets are
//! those of the timestep's sources, [`NO_TARGET`]-padded to K.

use super::Simulation;
use super::resources::{
    ActiveSnapshot, Emissions, LoopState, RadiationTargets, SettleOrder, SettledPass, Topology,
};
use crate::model::arrivals::gate_drops;

/// When a record is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    /// Right after injection.
    Injected,
    /// After a timestep (its sources, targets and cells are in the world's buffers).
    Stepped,
    /// After a settled pass.
    Settled,
}

/// Padding of a radiation-target row.
pub const NO_TARGET: u32 = u32::MAX;

impl Simulation {
    /// The cells of the timestep that just ran, from the emission buffer.
    fn timestep_arrivals(&self) -> Vec<TraceArrival> {
        let em = self.world.resource::<Emissions>();
        let snapshot = self.world.resource::<ActiveSnapshot>();
        let graph = &self.world.resource::<Topology>().graph;
        let clamped = if self.settings.carry == crate::scene::Carry::Replace {
            graph.roles.inputs
        } else {
            0
        };
        let mut out = Vec::with_capacity(em.target.len());
        for (i, &u) in snapshot.nodes.iter().enumerate() {
            let (start, end) = (em.offsets[i] as usize, em.offsets[i + 1] as usize);
            let statics = graph.successors.row(u as usize).len();
            for c in start..end {
                let (v, s) = (em.target[c], em.strength[c]);
                out.push(TraceArrival {
                    source: u,
                    target: v,
                    radiation: c - start >= statics,
                    strength: s,
                    kept: v >= clamped && !gate_drops(self.settings.inhibition, s),
                });
            }
        }
        out
    }

    /// The cells each node of a settled pass kept (its arrivals from its predecessors).
    fn settled_arrivals(&self) -> Vec<TraceArrival> {
        let settled = &self.world.resource::<SettledPass>().0;
        let order = &self.world.resource::<SettleOrder>().0;
        let mut out = Vec::with_capacity(settled.cell_source.len());
        for (j, &v) in order.nodes.iter().enumerate() {
            let (start, end) = (
                settled.cell_start[j] as usize,
                settled.cell_start[j + 1] as usize,
            );
            for c in start..end {
                out.push(TraceArrival {
                    source: settled.cell_source[c],
                    target: v,
                    radiation: false,
                    strength: settled.cell_strength[c],
                    kept: true,
                });
            }
        }
        out
    }
}

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
    /// The timestep's arrivals in emission order (ascending source; per source its static
    /// successors, then its radiation targets); for a settled pass, the cells each node kept.
    pub arrivals: Vec<TraceArrival>,
}

/// One arrival (phase cell) u → v of a timestep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceArrival {
    /// The source u.
    pub source: u32,
    /// The target v.
    pub target: u32,
    /// Whether v is one of u's radiation targets (else a static successor).
    pub radiation: bool,
    /// The cell's strength s = Σ_d cosT[φo_d]·A[μo_d].
    pub strength: f32,
    /// Whether it entered v's sums: not dropped by the excitatory gate, and v not a clamped
    /// input (`carry: Replace`).
    pub kept: bool,
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
    /// The outcome (logits at readout included).
    pub outcome: super::SampleOutcome,
}

impl Simulation {
    /// Runs one evaluation pass on an encoded input, recording its state after injection and
    /// after every timestep.
    pub fn trace_encoded(&mut self, phase: &[u16], magnitude: &[u16], label: u8) -> Trace {
        self.world.resource_mut::<Emissions>().keep = true;
        self.begin(phase, magnitude, label, false);
        let mut steps = vec![self.record(Record::Injected)];
        if self.settings.settled {
            self.settle.run(&mut self.world);
            steps.push(self.record(Record::Settled));
        } else {
            while !self.should_stop() {
                self.step();
                steps.push(self.record(Record::Stepped));
            }
        }
        let outcome = self.finish_sample(label);
        self.world.resource_mut::<Emissions>().keep = false;
        Trace {
            dim: self.settings.dim,
            top_k: if self.settings.radiation {
                self.settings.top_k
            } else {
                0
            },
            settled: self.settings.settled,
            steps,
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

    /// The record of the world as it is now, after `what`.
    fn record(&mut self, what: Record) -> TraceStep {
        let stepped = what == Record::Stepped;
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
            arrivals: Vec::new(),
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
        match what {
            Record::Stepped => step.arrivals = self.timestep_arrivals(),
            Record::Settled => step.arrivals = self.settled_arrivals(),
            Record::Injected => {}
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
