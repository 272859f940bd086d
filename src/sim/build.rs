//! From a scene to the world's resources: the one place that maps scene settings to resolved
//! settings, class encodings, gradient accumulation and the dense parameter mirror.

use bevy_ecs::prelude::*;

use super::SimError;
use super::components::{Magnitude, Node, Phase};
use super::resources::*;
use crate::graph::GraphStats;
use crate::model::encodings::ClassEncodings;
use crate::model::rng::{self, Stream};
use crate::model::tables::Tables;
use crate::radiation::PhasorMatrix;
use crate::scene::{self as sc, Scene};

/// The dense parameter mirror of the components, written row by row with the same function the
/// parameter sync uses.
pub(super) fn mirror_parameters(world: &mut World, dim: usize) -> NodeParams {
    let n = world.resource::<Topology>().entities.len();
    let tables = &world.resource::<LookupTables>().0;
    let mut mirror = NodeParams {
        phase: vec![0; n * dim],
        magnitude: vec![0; n * dim],
        phasors: PhasorMatrix::new(tables, &vec![0; n * dim], dim),
    };
    let mut q = world.query::<(&Node, &Phase, &Magnitude)>();
    let rows: Vec<_> = q.iter(world).map(|(k, p, m)| (k.index, *p, *m)).collect();
    let tables = &world.resource::<LookupTables>().0;
    // The fresh matrix holds the phasors of phase 0, so unwritten rows are right as they are.
    for (k, p, m) in rows {
        mirror.write_node(tables, k as usize, &p.0[..dim], &m.0[..dim]);
    }
    mirror.phasors.refresh();
    mirror
}

pub(super) fn class_encodings(scene: &Scene, tables: &Tables) -> Result<ClassEncodings, SimError> {
    let a = &scene.architecture;
    let (c, d) = (a.classes as usize, a.vector_dim as usize);
    let prototype_shape = c == 10
        && d == 5
        && scene.resolution.phase_bins == 512
        && scene.resolution.magnitude_bins == 1024;
    Ok(match &scene.encodings {
        sc::Encodings::Prototype if prototype_shape => ClassEncodings::prototype(tables),
        sc::Encodings::Prototype => ClassEncodings::separated(
            tables,
            c,
            d,
            &mut rng::stream(scene.seed, Stream::Encodings),
        ),
        sc::Encodings::Separated { seed } => ClassEncodings::separated(
            tables,
            c,
            d,
            &mut rng::stream_with(scene.seed, Stream::Encodings.name(), *seed),
        ),
        sc::Encodings::Explicit { phase, magnitude } => {
            ClassEncodings::explicit(tables, phase, magnitude)?
        }
    })
}

pub(super) fn forward_settings(
    scene: &Scene,
    stats: &GraphStats,
    n: usize,
    depth: u32,
) -> ForwardSettings {
    let dim = scene.architecture.vector_dim as usize;
    let min_timesteps = scene
        .forward
        .min_timesteps
        .unwrap_or(stats.derived_min_timesteps);
    let evict = scene.forward.carry == sc::Carry::Accumulate || scene.forward.prune;
    let loop_length = min_timesteps.min(scene.forward.max_timesteps.saturating_sub(1));
    let (pn, mn) = (scene.resolution.phase_bins, scene.resolution.magnitude_bins);
    ForwardSettings {
        dim,
        phase_bins: pn,
        magnitude_bins: mn,
        max_timesteps: scene.forward.max_timesteps,
        min_timesteps,
        decay: scene.forward.decay,
        min_strength: scene.forward.min_strength,
        target_active: scene
            .forward
            .target_active
            .map_or(0.8 * n as f32, |t| t as f32),
        total_nodes: n as u32,
        inhibition: scene.forward.inhibition,
        tau: scene.forward.tau.clone(),
        radiation: scene.radiation.enabled,
        top_k: scene.radiation.top_k as usize,
        backend: scene.radiation_backend(),
        temperature: scene.loss.temperature,
        label_smoothing: scene.loss.label_smoothing,
        phasor: match scene.forward.combine {
            sc::Combine::Sum => None,
            sc::Combine::Phasor { weight } => Some(match weight {
                sc::PhasorWeight::Strength => crate::model::phasor::Weight::Strength,
                sc::PhasorWeight::Uniform => crate::model::phasor::Weight::Uniform,
                sc::PhasorWeight::Magnitude => crate::model::phasor::Weight::Magnitude,
            }),
        },
        carry: scene.forward.carry,
        evict,
        settled: scene.forward.settle
            && matches!(scene.forward.combine, sc::Combine::Phasor { .. })
            && scene.forward.carry == sc::Carry::Replace
            && !evict
            && !scene.radiation.enabled
            && loop_length >= depth,
        silence_hidden: scene.forward.silence_hidden,
        readout: match scene.loss.readout {
            sc::ReadoutSetting::Mean => crate::model::readout::Readout::Mean,
            sc::ReadoutSetting::Grouped => crate::model::readout::Readout::Grouped,
        },
    }
}

pub(super) fn training_settings(scene: &Scene) -> TrainingSettings {
    use crate::model::credit::GradientMode;
    use crate::model::optimizer::FloatOptimizer;
    use crate::model::update::{UpdateMode, UpdateRule};
    let t = &scene.training;
    TrainingSettings {
        rule: UpdateRule {
            eta_phase: t.learning_rate_phase,
            eta_magnitude: t.learning_rate_magnitude,
            phase_bins: scene.resolution.phase_bins,
            magnitude_bins: scene.resolution.magnitude_bins,
            mode: match t.update {
                sc::UpdateSetting::Accumulate { threshold } => UpdateMode::Accumulate { threshold },
                sc::UpdateSetting::Immediate { threshold } => UpdateMode::Immediate { threshold },
            },
        },
        gradient: match t.gradient {
            sc::GradientSetting::Exact => GradientMode::Exact,
            sc::GradientSetting::Reference => GradientMode::Reference,
        },
        hidden_credit_weight: t.hidden_credit_weight,
        credit: t.credit,
        float: match t.optimizer {
            sc::OptimizerSetting::SignAccumulator => None,
            sc::OptimizerSetting::Adam {
                lr,
                beta1,
                beta2,
                epsilon,
                decay,
            } => Some((
                FloatOptimizer::Adam {
                    lr,
                    beta1,
                    beta2,
                    epsilon,
                },
                decay,
            )),
            sc::OptimizerSetting::Sgd {
                lr,
                momentum,
                decay,
            } => Some((FloatOptimizer::Sgd { lr, momentum }, decay)),
        },
        batch_size: t.batch_size.max(1),
        learn_encodings: t.learn_encodings,
        freeze_hidden: t.freeze_hidden,
    }
}

pub(super) fn pending_gradients(
    scene: &Scene,
    n: usize,
    dim: usize,
) -> Option<crate::model::update::GradientAccumulation> {
    use crate::model::update::{AccumulationScaling, GradientAccumulation};
    scene.training.gradient_accumulation.as_ref().map(|g| {
        let scaling = match g.scaling {
            sc::AccumulationScalingSetting::Sqrt => AccumulationScaling::Sqrt,
            sc::AccumulationScalingSetting::Unscaled => AccumulationScaling::None,
        };
        GradientAccumulation::new(n, dim, g.steps, scaling)
    })
}
