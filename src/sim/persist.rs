//! A world's persistent state in and out: [`Simulation::save_state`] and
//! [`Simulation::load_state`] are the only functions that read or write [`SimState`], and
//! [`Simulation::reset_workspace`] drops everything else.
//!
//! Both run the parameter sync first, so the dense mirrors and the parameter version are
//! settled at the point state is taken or given: saving never changes what a run does next,
//! and loading leaves the world exactly as the saved one stood.

use bevy_ecs::prelude::*;

use super::Simulation;
use super::components::{Accumulator, Activation, Magnitude, Node, Phase};
use super::resources::*;
use crate::model::encodings::ClassEncodings;
use crate::state::SimState;

/// Why saved state does not fit this world.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A per-node or per-class array has the wrong length.
    #[error("{what}: {found} values, this run needs {expected}")]
    Length {
        /// The array.
        what: &'static str,
        /// Its length in the state.
        found: usize,
        /// The length this world needs.
        expected: usize,
    },
    /// The adapter weights do not fit this world's adapter.
    #[error(
        "the adapter weights were made for another adapter ({0}); use the scene it was trained with"
    )]
    Adapter(String),
    /// The class encodings are invalid.
    #[error("class encodings: {0}")]
    Encodings(String),
    /// The gradient-accumulation window does not fit the run's settings.
    #[error("{0}")]
    Pending(String),
    /// The pattern cache entries are inconsistent.
    #[error("radiation pattern cache: {0}")]
    PatternCache(String),
}

impl Simulation {
    /// The persistent state of this world (see [`crate::state`]), dense and node-major. Runs
    /// the parameter sync first; otherwise changes nothing.
    pub fn save_state(&mut self) -> SimState {
        self.sync.run(&mut self.world);
        let dim = self.settings.dim;
        let n = self.settings.total_nodes as usize;
        let (mut acc_phase, mut acc_magnitude) = (vec![0f32; n * dim], vec![0f32; n * dim]);
        let mut q = self.world.query::<(&Node, &Accumulator)>();
        for (node, a) in q.iter(&self.world) {
            let k = node.index as usize;
            acc_phase[k * dim..(k + 1) * dim].copy_from_slice(&a.phase[..dim]);
            acc_magnitude[k * dim..(k + 1) * dim].copy_from_slice(&a.magnitude[..dim]);
        }
        let params = self.world.resource::<NodeParams>();
        let (pending_samples, pending_phase, pending_magnitude) =
            match &self.world.resource::<PendingGradients>().0 {
                Some(acc) => {
                    let (samples, p, m) = acc.state();
                    (samples, p.to_vec(), m.to_vec())
                }
                None => (0, Vec::new(), Vec::new()),
            };
        let encodings = &self.world.resource::<Encodings>().0;
        let cache = self.world.resource::<RadiationCache>();
        let opt = self.world.resource::<OptimizerState>();
        SimState {
            shadows: opt.shadows.clone(),
            moment1: opt.moment1.clone(),
            moment2: opt.moment2.clone(),
            optimizer_steps: opt.steps,
            batch_samples: opt.batch_samples,
            batch_sum: opt.batch_sum.clone(),
            phase: params.phase.clone(),
            magnitude: params.magnitude.clone(),
            acc_phase,
            acc_magnitude,
            pending_samples,
            pending_phase,
            pending_magnitude,
            adapter: self.world.resource::<Adapter>().0.export(),
            enc_phase: encodings.phase.clone(),
            enc_magnitude: encodings.magnitude.clone(),
            parameter_version: cache.version,
            pattern_cache: cache.pattern.as_ref().map(|p| p.save()).unwrap_or_default(),
        }
    }

    /// Makes this world's persistent state `state`: afterwards it runs exactly as the world
    /// that saved it would have. Checks every length first and changes nothing on error.
    /// Pattern-cache entries are dropped when this world's cache is off.
    pub fn load_state(&mut self, state: &SimState) -> Result<(), StateError> {
        let dim = self.settings.dim;
        let cells = self.settings.total_nodes as usize * dim;
        let (classes, enc_cells) = {
            let e = &self.world.resource::<Encodings>().0;
            (e.classes, e.classes * e.dim)
        };
        for (what, found, expected) in [
            ("phase parameters", state.phase.len(), cells),
            ("magnitude parameters", state.magnitude.len(), cells),
            ("phase accumulators", state.acc_phase.len(), cells),
            ("magnitude accumulators", state.acc_magnitude.len(), cells),
            ("class encoding phases", state.enc_phase.len(), enc_cells),
            (
                "class encoding magnitudes",
                state.enc_magnitude.len(),
                enc_cells,
            ),
        ] {
            if found != expected {
                return Err(StateError::Length {
                    what,
                    found,
                    expected,
                });
            }
        }
        let layout = self.gradient_layout().len();
        for (what, found) in [
            ("float shadows", state.shadows.len()),
            ("optimizer first moments", state.moment1.len()),
            ("optimizer second moments", state.moment2.len()),
            ("batch gradient sums", state.batch_sum.len()),
        ] {
            if found != 0 && found != layout {
                return Err(StateError::Length {
                    what,
                    found,
                    expected: layout,
                });
            }
        }
        let encodings = ClassEncodings::from_indices(
            &self.world.resource::<LookupTables>().0,
            classes,
            dim,
            state.enc_phase.clone(),
            state.enc_magnitude.clone(),
        )
        .map_err(|e| StateError::Encodings(e.to_string()))?;
        crate::radiation::cache::PatternCache::check(&state.pattern_cache)
            .map_err(StateError::PatternCache)?;
        {
            let mut pending = self.world.resource_mut::<PendingGradients>();
            match &mut pending.0 {
                Some(acc) => {
                    let (_, p, _) = acc.state();
                    if state.pending_phase.len() != p.len()
                        || state.pending_magnitude.len() != p.len()
                        || state.pending_samples >= acc.steps()
                    {
                        return Err(StateError::Pending(
                            "the pending accumulated gradients do not fit this run's \
                             training.gradient_accumulation"
                                .into(),
                        ));
                    }
                }
                None if state.pending_samples == 0 => {}
                None => {
                    return Err(StateError::Pending(
                        "the state holds accumulated gradients but this run has \
                         training.gradient_accumulation off"
                            .into(),
                    ));
                }
            }
        }
        // Everything is checked; the adapter is the last check that can fail, and it fails
        // before writing anything.
        std::sync::Arc::make_mut(&mut self.world.resource_mut::<Adapter>().0)
            .import(&state.adapter)
            .map_err(|e| StateError::Adapter(e.to_string()))?;
        if let Some(acc) = &mut self.world.resource_mut::<PendingGradients>().0 {
            acc.restore(
                state.pending_samples,
                &state.pending_phase,
                &state.pending_magnitude,
            );
        }
        self.world.insert_resource(Encodings(encodings));
        self.world.insert_resource(OptimizerState {
            shadows: state.shadows.clone(),
            moment1: state.moment1.clone(),
            moment2: state.moment2.clone(),
            steps: state.optimizer_steps,
            batch_samples: state.batch_samples,
            batch_sum: state.batch_sum.clone(),
        });
        self.set_parameters(&state.phase, &state.magnitude);
        let mut q = self.world.query::<(&Node, &mut Accumulator)>();
        for (node, mut a) in q.iter_mut(&mut self.world) {
            let k = node.index as usize;
            a.phase[..dim].copy_from_slice(&state.acc_phase[k * dim..(k + 1) * dim]);
            a.magnitude[..dim].copy_from_slice(&state.acc_magnitude[k * dim..(k + 1) * dim]);
        }
        // Mirror the parameters now; the version is then the saved one, whatever the sync did.
        self.sync.run(&mut self.world);
        let mut cache = self.world.resource_mut::<RadiationCache>();
        cache.version = state.parameter_version;
        if let Some(p) = &mut cache.pattern {
            p.load(&state.pattern_cache)
                .map_err(StateError::PatternCache)?;
        }
        Ok(())
    }

    /// Writes dense `[node][dim]` parameters into the components, touching only the nodes whose
    /// values differ, so change detection sees exactly the real changes.
    pub fn set_parameters(&mut self, phase: &[u16], magnitude: &[u16]) {
        let dim = self.settings.dim;
        let mut q = self.world.query::<(&Node, &mut Phase, &mut Magnitude)>();
        for (node, mut p, mut m) in q.iter_mut(&mut self.world) {
            let k = node.index as usize;
            let (np, nm) = (
                &phase[k * dim..(k + 1) * dim],
                &magnitude[k * dim..(k + 1) * dim],
            );
            if &p.0[..dim] != np {
                p.0[..dim].copy_from_slice(np);
            }
            if &m.0[..dim] != nm {
                m.0[..dim].copy_from_slice(nm);
            }
        }
    }

    /// Drops all workspace (per-sample buffers, activations, radiation work lists, credit,
    /// readout, the adapter's scratch, the dense parameter mirror) and rebuilds it from the
    /// state. A run that does this between two samples continues exactly as one that does not
    /// (a test proves it); statistics counters and clocks are kept.
    pub fn reset_workspace(&mut self) {
        self.sync.run(&mut self.world);
        let active: Vec<Entity> = self
            .world
            .query_filtered::<Entity, With<Activation>>()
            .iter(&self.world)
            .collect();
        for e in active {
            self.world.entity_mut(e).remove::<Activation>();
        }
        let mirror = super::mirror_parameters(&mut self.world, self.settings.dim);
        self.world.insert_resource(mirror);
        self.world.insert_resource(CurrentSample::default());
        self.world.insert_resource(LoopState::default());
        self.world.insert_resource(ActiveSnapshot::default());
        self.world.insert_resource(RadiationTargets::default());
        self.world.insert_resource(Arrivals::default());
        self.world.insert_resource(Readout::default());
        self.world.insert_resource(Emissions::default());
        self.world.insert_resource(PhasorArrivals::default());
        let cells = self.settings.total_nodes as usize * self.settings.dim;
        self.world
            .insert_resource(PhasorCarry(vec![Default::default(); cells]));
        self.world.insert_resource(Credit::default());
        self.world.insert_resource(UpdateStats::default());
        self.world.insert_resource(SampleGradient::default());
        self.world.insert_resource(BackpropTape::default());
        self.world.insert_resource(SettledPass::default());
        self.world.resource_mut::<Workers>().scratch.clear();
        {
            let mut parts = self
                .world
                .resource_mut::<super::systems::radiation::RadiationParts>();
            let n = parts.parts.len();
            parts.parts = (0..n).map(|_| Default::default()).collect();
        }
        let mut cache = self.world.resource_mut::<RadiationCache>();
        cache.misses = Vec::new();
        cache.keys = Vec::new();
        cache.miss_targets = Vec::new();
        cache.miss_counts = Vec::new();
        self.adapter_scratch = Default::default();
        self.adapter_out = Vec::new();
    }
}
