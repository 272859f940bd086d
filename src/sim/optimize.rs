//! The batch path of training (SPEC 11 `training.optimizer` and `training.batch_size`): each
//! training sample leaves its gradient in [`SampleGradient`]; the runner adds the gradients of
//! a batch's samples to the primary world in sample order ([`Simulation::add_to_batch`]) and
//! applies their mean once ([`Simulation::apply_batch`]): a float optimizer step on the
//! shadows, or the SPEC 7 sign rule. Worlds that run a batch's samples in parallel take the
//! primary's parameters after each batch ([`Simulation::share_parameters`]).

use super::Simulation;
use super::components::{Accumulator, Magnitude, Phase};
use super::resources::*;
use crate::model::encodings::ClassEncodings;
use crate::model::optimizer::{self, magnitude_index, phase_index};
use crate::model::update;

impl Simulation {
    /// The hidden nodes' cells within a `[node][dim]` array.
    fn hidden_cells(&self) -> std::ops::Range<usize> {
        let roles = self.world.resource::<Topology>().graph.roles;
        let dim = self.settings.dim;
        roles.inputs as usize * dim..roles.first_output() as usize * dim
    }

    /// Where node and encoding indices sit in this world's gradients.
    pub fn gradient_layout(&self) -> GradLayout {
        super::systems::backward::layout(
            self.world.resource::<Topology>(),
            self.world.resource::<Encodings>(),
            self.settings.dim,
        )
    }

    /// The gradient the last training sample on the batch path left (per bin, laid out as
    /// [`Simulation::gradient_layout`]; empty before the first).
    pub fn sample_gradient(&self) -> &[f32] {
        &self.world.resource::<SampleGradient>().values
    }

    /// Whether training runs on the batch path ([`TrainingSettings::batched`]).
    pub fn batched(&self) -> bool {
        self.world.resource::<TrainingSettings>().batched()
    }

    /// `training.batch_size`.
    pub fn batch_size(&self) -> u32 {
        self.world.resource::<TrainingSettings>().batch_size
    }

    /// The per-epoch decay of the float optimizer's step size (1 for the sign rule).
    pub fn lr_decay(&self) -> f32 {
        self.world
            .resource::<TrainingSettings>()
            .float
            .map_or(1.0, |(_, decay)| decay)
    }

    /// Samples summed into the open batch.
    pub fn batch_samples(&self) -> u32 {
        self.world.resource::<OptimizerState>().batch_samples
    }

    /// Adds one sample's gradient to the open batch. Called in sample order, so the sum never
    /// depends on which world ran the sample.
    pub fn add_to_batch(&mut self, gradient: &[f32]) {
        let len = self.gradient_layout().len();
        let mut state = self.world.resource_mut::<OptimizerState>();
        if state.batch_sum.len() != len {
            state.batch_sum = vec![0.0; len];
        }
        if gradient.len() == len {
            for (s, g) in state.batch_sum.iter_mut().zip(gradient) {
                *s += g;
            }
        }
        state.batch_samples += 1;
    }

    /// Applies the open batch: its mean gradient, one step of the float optimizer (step size
    /// times `lr_scale`) or of the SPEC 7 sign rule. Returns the index dimensions changed (0
    /// when the batch is empty). The batch is then empty.
    pub fn apply_batch(&mut self, lr_scale: f32) -> u32 {
        let layout = self.gradient_layout();
        let (samples, mut mean) = {
            let mut state = self.world.resource_mut::<OptimizerState>();
            if state.batch_samples == 0 {
                return 0;
            }
            let samples = state.batch_samples;
            state.batch_samples = 0;
            let sum = std::mem::take(&mut state.batch_sum);
            state.batch_sum = vec![0.0; sum.len()];
            (samples, sum)
        };
        if mean.len() != layout.len() {
            mean = vec![0.0; layout.len()];
        }
        let inv = 1.0 / samples as f32;
        for g in &mut mean {
            *g *= inv;
        }
        let training = self.world.resource::<TrainingSettings>().clone();
        if training.freeze_hidden {
            let hidden = self.hidden_cells();
            for range in [layout.phase(), layout.magnitude()] {
                let start = range.start;
                mean[start + hidden.start..start + hidden.end].fill(0.0);
            }
        }
        let changed = match training.float {
            Some((opt, _)) => self.float_step(opt, lr_scale, &mean, layout, &training),
            None => self.sign_step(&mean, layout),
        };
        let mut stats = self.world.resource_mut::<UpdateStats>();
        stats.last_dims_changed = changed;
        stats.last_changed = changed > 0;
        changed
    }

    fn float_step(
        &mut self,
        opt: optimizer::FloatOptimizer,
        lr_scale: f32,
        mean: &[f32],
        layout: GradLayout,
        training: &TrainingSettings,
    ) -> u32 {
        let (pn, mn) = (self.settings.phase_bins, self.settings.magnitude_bins);
        let (phase, magnitude) = self.parameters();
        let (enc_phase, enc_magnitude) = {
            let e = &self.world.resource::<Encodings>().0;
            (e.phase.clone(), e.magnitude.clone())
        };
        let mut indices: Vec<u16> = Vec::with_capacity(layout.len());
        indices.extend(&phase);
        indices.extend(&magnitude);
        indices.extend(&enc_phase);
        indices.extend(&enc_magnitude);
        let is_phase = |i: usize| layout.phase().contains(&i) || layout.enc_phase().contains(&i);
        let hidden = self.hidden_cells();
        let mut state = self.world.resource_mut::<OptimizerState>();
        let state = &mut *state;
        if state.shadows.len() != layout.len() {
            state.shadows = indices.iter().map(|&x| f32::from(x)).collect();
            state.moment1 = vec![0.0; layout.len()];
            state.moment2 = vec![0.0; layout.len()];
        }
        // A shadow whose index was changed from outside (a restore of other parameters, a
        // direct edit) starts again from that index.
        for (i, (shadow, &index)) in state.shadows.iter_mut().zip(&indices).enumerate() {
            let now = if is_phase(i) {
                phase_index(shadow, pn)
            } else {
                magnitude_index(shadow, mn)
            };
            if now != index {
                *shadow = f32::from(index);
            }
        }
        state.steps += 1;
        optimizer::step(
            opt,
            state.steps,
            lr_scale,
            &mut state.shadows,
            &mut state.moment1,
            &mut state.moment2,
            mean,
        );
        let mut next = indices.clone();
        for (i, (shadow, index)) in state.shadows.iter_mut().zip(&mut next).enumerate() {
            *index = if is_phase(i) {
                phase_index(shadow, pn)
            } else {
                magnitude_index(shadow, mn)
            };
        }
        if training.freeze_hidden {
            // Frozen hidden parameters stay as they are, whatever moments Adam still holds.
            for start in [layout.phase().start, layout.magnitude().start] {
                let r = start + hidden.start..start + hidden.end;
                next[r.clone()].copy_from_slice(&indices[r.clone()]);
                for (s, &i) in state.shadows[r.clone()].iter_mut().zip(&indices[r]) {
                    *s = f32::from(i);
                }
            }
        }
        let changed = next.iter().zip(&indices).filter(|(a, b)| a != b).count() as u32;
        self.set_parameters(&next[layout.phase()], &next[layout.magnitude()]);
        if training.learn_encodings
            && (next[layout.enc_phase()] != enc_phase[..]
                || next[layout.enc_magnitude()] != enc_magnitude[..])
        {
            let (classes, dim) = {
                let e = &self.world.resource::<Encodings>().0;
                (e.classes, e.dim)
            };
            if let Ok(e) = ClassEncodings::from_indices(
                &self.world.resource::<LookupTables>().0,
                classes,
                dim,
                next[layout.enc_phase()].to_vec(),
                next[layout.enc_magnitude()].to_vec(),
            ) {
                self.world.insert_resource(Encodings(e));
            }
        }
        changed
    }

    fn sign_step(&mut self, mean: &[f32], layout: GradLayout) -> u32 {
        let dim = self.settings.dim;
        let credit =
            super::systems::update::per_radian(mean, layout.cells / dim.max(1), &self.settings);
        let rule = self.world.resource::<TrainingSettings>().rule;
        let entities = self.world.resource::<Topology>().entities.clone();
        let mut changed = 0;
        for (i, &k) in credit.nodes.iter().enumerate() {
            let r = i * dim..(i + 1) * dim;
            let mut e = self.world.entity_mut(entities[k as usize]);
            let (Some(phase), Some(magnitude), Some(acc)) = (
                e.get::<Phase>().copied(),
                e.get::<Magnitude>().copied(),
                e.get::<Accumulator>().copied(),
            ) else {
                continue;
            };
            let (mut p, mut m, mut a) = (phase, magnitude, acc);
            changed += update::apply(
                &rule,
                &mut p.0[..dim],
                &mut m.0[..dim],
                &mut a.phase[..dim],
                &mut a.magnitude[..dim],
                &credit.g_phase[r.clone()],
                &credit.g_magnitude[r],
            );
            if p != phase {
                e.insert(p);
            }
            if m != magnitude {
                e.insert(m);
            }
            e.insert(a);
        }
        changed
    }

    /// Makes `other`'s parameters and class encodings this world's (a batch world before the
    /// next batch). Only values that differ are written, so change detection sees the real
    /// changes.
    pub fn share_parameters(&mut self, other: &mut Simulation) {
        let (phase, magnitude) = self.parameters();
        other.set_parameters(&phase, &magnitude);
        let mine = self.world.resource::<Encodings>().0.clone();
        let theirs = &other.world.resource::<Encodings>().0;
        if theirs.phase != mine.phase || theirs.magnitude != mine.magnitude {
            other.world.insert_resource(Encodings(mine));
        }
    }
}
