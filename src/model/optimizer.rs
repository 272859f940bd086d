//! Float-shadow optimizers (SPEC 11 `training.optimizer`): each discrete index has a float
//! shadow θ̃, the optimizer moves the shadow, and the forward pass uses the rounded index —
//! `round(θ̃) mod N` for phases, `clamp(round(θ̃), 0, M−1)` for magnitudes (whose shadow is
//! clamped to the same range). Learning rates are in bins.
//!
//! Plain functions over slices, one element per index; the caller keeps the shadows and the
//! moments as persistent state.

/// A float optimizer's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FloatOptimizer {
    /// Adam (Kingma and Ba) with bias correction.
    Adam {
        /// Step size in bins.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to the root of the second moment.
        epsilon: f32,
    },
    /// Stochastic gradient descent with momentum (`v = μ·v + g; θ̃ −= lr·v`).
    Sgd {
        /// Step size in bins.
        lr: f32,
        /// Momentum.
        momentum: f32,
    },
}

/// One optimizer step on `shadow` with gradient `grad`; `m` and `v` are the moments (Adam:
/// first and second; SGD: `m` is the velocity and `v` is unused), `step` the 1-based step
/// number (Adam's bias correction) and `lr_scale` the product of the per-epoch decays so far.
pub fn step(
    opt: FloatOptimizer,
    step: u64,
    lr_scale: f32,
    shadow: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) {
    match opt {
        FloatOptimizer::Adam {
            lr,
            beta1,
            beta2,
            epsilon,
        } => {
            let t = step.max(1) as i32;
            let c1 = 1.0 - beta1.powi(t);
            let c2 = 1.0 - beta2.powi(t);
            let lr = lr * lr_scale;
            for i in 0..shadow.len() {
                let g = grad[i];
                m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                let m_hat = m[i] / c1;
                let v_hat = v[i] / c2;
                shadow[i] -= lr * m_hat / (v_hat.sqrt() + epsilon);
            }
        }
        FloatOptimizer::Sgd { lr, momentum } => {
            let lr = lr * lr_scale;
            for i in 0..shadow.len() {
                m[i] = momentum * m[i] + grad[i];
                shadow[i] -= lr * m[i];
            }
        }
    }
}

/// The phase index of a shadow: `round(θ̃) mod N`. Keeps the shadow in `[−0.5, N − 0.5)` so
/// it never loses precision as it winds round, without changing its index.
#[inline]
pub fn phase_index(shadow: &mut f32, phase_bins: u32) -> u16 {
    let n = phase_bins as f32;
    let wrapped = (*shadow + 0.5).rem_euclid(n) - 0.5;
    *shadow = wrapped;
    (wrapped.round() as i64).rem_euclid(i64::from(phase_bins)) as u16
}

/// The magnitude index of a shadow: `clamp(round(θ̃), 0, M−1)`, with the shadow clamped to
/// `[0, M−1]` too.
#[inline]
pub fn magnitude_index(shadow: &mut f32, magnitude_bins: u32) -> u16 {
    let last = (magnitude_bins - 1) as f32;
    *shadow = shadow.clamp(0.0, last);
    shadow.round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_by_lr_against_the_gradient() {
        // After bias correction the first Adam step is lr·g/(|g| + ε) ≈ lr·sign(g).
        let opt = FloatOptimizer::Adam {
            lr: 3.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        };
        let mut shadow = [10.0f32, 10.0, 10.0];
        let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
        step(opt, 1, 1.0, &mut shadow, &mut m, &mut v, &[0.5, -2.0, 0.0]);
        assert!((shadow[0] - 7.0).abs() < 1e-5, "{shadow:?}");
        assert!((shadow[1] - 13.0).abs() < 1e-5, "{shadow:?}");
        assert_eq!(shadow[2], 10.0);
        // Second step, same gradient, by hand for element 0:
        // m = 0.9·0.05 + 0.1·0.5 = 0.095, v = 0.999·0.00025 + 0.001·0.25 = 0.00049975;
        // m̂ = 0.095/0.19 = 0.5, v̂ = 0.00049975/0.001999 = 0.25, so m̂/√v̂ = 1 and the step
        // is the decayed lr, 3·0.5 = 1.5.
        step(opt, 2, 0.5, &mut shadow, &mut m, &mut v, &[0.5, -2.0, 0.0]);
        assert!((shadow[0] - 5.5).abs() < 1e-4, "decayed lr 1.5: {shadow:?}");
    }

    #[test]
    fn sgd_with_momentum_by_hand() {
        let opt = FloatOptimizer::Sgd {
            lr: 0.5,
            momentum: 0.9,
        };
        let mut shadow = [1.0f32];
        let (mut m, mut v) = ([0.0; 1], [0.0; 1]);
        step(opt, 1, 1.0, &mut shadow, &mut m, &mut v, &[2.0]);
        assert_eq!(shadow[0], 0.0); // v = 2, θ̃ = 1 − 1
        step(opt, 2, 1.0, &mut shadow, &mut m, &mut v, &[2.0]);
        assert!((shadow[0] + 1.9).abs() < 1e-6); // v = 3.8, θ̃ = −1.9
    }

    #[test]
    fn indices_wrap_phases_and_clamp_magnitudes() {
        let mut s = -0.6f32;
        assert_eq!(phase_index(&mut s, 512), 511);
        assert!((s - 511.4).abs() < 1e-4, "{s}");
        let mut s = 511.6f32;
        assert_eq!(phase_index(&mut s, 512), 0);
        let mut s = 1023.7f32;
        assert_eq!(phase_index(&mut s, 512), 0, "two turns round");
        let mut s = 3.49f32;
        assert_eq!(phase_index(&mut s, 512), 3);
        let mut s = -4.0f32;
        assert_eq!(magnitude_index(&mut s, 1024), 0);
        assert_eq!(s, 0.0);
        let mut s = 1500.0f32;
        assert_eq!(magnitude_index(&mut s, 1024), 1023);
        assert_eq!(s, 1023.0);
        let mut s = 700.5f32;
        assert_eq!(magnitude_index(&mut s, 1024), 701);
    }
}
