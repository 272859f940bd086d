//! Credit assignment (SPEC 7): gradients of the loss with respect to output and hidden
//! signals, and their chain rule into index space at the activation point.
//!
//! - [`cosine_grad`]: `∇_x cos(x, e)` of the clamped cosine of SPEC 6;
//! - [`output_credit`]: the label-aware credit of the active outputs, `∂L/∂so_k`;
//! - [`hidden_credit`]: the vectorized intermediate credit `−w·∇cos(so_i, e_y)` of every
//!   active non-output node in one pass over contiguous arrays;
//! - [`chain_to_indices`]: from a signal gradient `g` to per-radian gradients of the phase
//!   angle and of the magnitude table argument.
//!
//! Determinism: every sum is taken in f32, starting from `0.0`, in index order (dimensions
//! `d = 0..D`, classes `c = 0..C`), so results are bit-identical from run to run.

use super::encodings::ClassEncodings;
use super::loss::softmax;
use super::signal::NORM_EPS;
use super::tables::Tables;

/// Which derivative of the magnitude table the chain rule uses for the magnitude gradient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GradientMode {
    /// The exact derivative: `gμ = g · cos[φa] · A'[μa]`.
    #[default]
    Exact,
    /// The prototype's surrogate: `gμ = g · cos[φa] · A[μa]` (A instead of A').
    Reference,
}

/// `(dot, xx, ee)`: `x·e`, `|x|²` and `|e|²`, each summed in f32 from `0.0` in index order
/// (the same order as [`cosine`](super::signal::cosine)).
#[inline(always)]
fn dot_norms(x: &[f32], e: &[f32]) -> (f32, f32, f32) {
    let (mut dot, mut xx, mut ee) = (0.0f32, 0.0f32, 0.0f32);
    for (&a, &b) in x.iter().zip(e) {
        dot += a * b;
        xx += a * a;
        ee += b * b;
    }
    (dot, xx, ee)
}

/// Coefficients `(a, b)` with `∇_x cos(x, e) = a·e − b·x`, given `x·e`, `|x|²` and `|e|`:
///
/// - `a = 1 / (max(|x|, ε) · max(|e|, ε))`;
/// - `b = (x·e) / (|x|³ · max(|e|, ε))` when `|x| > ε`, else `0` (inside the clamp the norm
///   of `x` is the constant ε, so the function is linear in `x`).
#[inline(always)]
fn grad_coeffs(dot: f32, xx: f32, ne: f32) -> (f32, f32) {
    let nx = xx.sqrt();
    let a = 1.0 / (nx.max(NORM_EPS) * ne.max(NORM_EPS));
    let b = if nx > NORM_EPS { a * dot / xx } else { 0.0 };
    (a, b)
}

/// `out = ∇_x cos(x, e)`, the gradient of the clamped cosine of SPEC 6,
/// `cos(x, e) = x·e / (max(|x|, 1e-8) · max(|e|, 1e-8))`:
///
/// `∇_x cos(x, e) = e / (|x||e|) − x (x·e) / (|x|³|e|)`, with `|e|` replaced by
/// `max(|e|, 1e-8)`. When `|x| <= 1e-8` the clamped norm is constant and the gradient is the
/// exact derivative of the clamped function, `e / (1e-8 · max(|e|, 1e-8))` (large, but
/// finite and pointing towards `e`). The result is never NaN for finite inputs.
///
/// Norms and the dot product are summed as in [`cosine`](super::signal::cosine); then
/// `out_d = a·e_d − b·x_d` with `a = 1/(|x||e|)` and `b = a·(x·e)/|x|²`.
/// `x`, `e` and `out` must have the same length D.
#[inline]
pub fn cosine_grad(x: &[f32], e: &[f32], out: &mut [f32]) {
    debug_assert!(x.len() == e.len() && x.len() == out.len());
    let (dot, xx, ee) = dot_norms(x, e);
    let (a, b) = grad_coeffs(dot, xx, ee.sqrt());
    for ((o, &xd), &ed) in out.iter_mut().zip(x).zip(e) {
        *o = a * ed - b * xd;
    }
}

/// Output credit (SPEC 7): the gradient of the loss with respect to each active output's
/// signal.
///
/// - `signals`: the active outputs' signals `so_k` (each of length D), in output-slot order;
///   this is the set S, and must not be empty (an empty S has no loss and no update, SPEC 6);
/// - `logits`: `z_c` computed from the same `signals` ([`logits`](super::loss::logits));
/// - `delta_out` (length C) receives `δ_c = softmax(z/T)_c − target_c` with the target
///   `(1 − ε)·onehot(label) + ε/C` (ε = `label_smoothing`, 0 for none; the same target as
///   [`cross_entropy`](super::loss::cross_entropy)); δ is the gradient of the loss with
///   respect to `z/T`;
/// - `out` (length |S|·D, row-major) receives row k = `g_k = Σ_c δ_c / (T·|S|) · ∇cos(so_k,
///   e_c)`, which is `∂L/∂so_k` for `L = CE(softmax(z/T), target)`.
///
/// Each row is summed in f32 from `0.0` over classes in ascending order, adding
/// `w_c · ∇cos(so_k, e_c)` with `w_c = δ_c / (T·|S|)` (see [`cosine_grad`]).
///
/// # Panics
/// If `signals` is empty, `label >= C`, or a length disagrees (`logits` and `delta_out` must
/// have C values, `out` |S|·D).
#[expect(
    clippy::too_many_arguments,
    reason = "the inputs of the output credit are independent slices and scalars"
)]
pub fn output_credit(
    signals: &[&[f32]],
    enc: &ClassEncodings,
    logits: &[f32],
    label: usize,
    temperature: f32,
    label_smoothing: f32,
    delta_out: &mut [f32],
    out: &mut [f32],
) {
    let classes = enc.classes;
    let dim = enc.dim;
    assert!(!signals.is_empty(), "output_credit: no active output");
    assert!(
        label < classes,
        "label {label} out of range for {classes} classes"
    );
    assert_eq!(logits.len(), classes, "output_credit: logits length");
    assert_eq!(delta_out.len(), classes, "output_credit: delta_out length");
    assert_eq!(out.len(), signals.len() * dim, "output_credit: out length");

    softmax(logits, temperature, delta_out);
    let uniform = label_smoothing / classes as f32;
    for (c, d) in delta_out.iter_mut().enumerate() {
        let target = if c == label {
            1.0 - label_smoothing + uniform
        } else {
            uniform
        };
        *d -= target;
    }

    let denom = temperature * signals.len() as f32;
    for (so, row) in signals.iter().zip(out.chunks_exact_mut(dim)) {
        debug_assert_eq!(so.len(), dim);
        row.fill(0.0);
        for (c, &delta) in delta_out.iter().enumerate() {
            let e = enc.signal(c);
            let (dot, xx, ee) = dot_norms(so, e);
            let (a, b) = grad_coeffs(dot, xx, ee.sqrt());
            let w = delta / denom;
            for ((r, &xd), &ed) in row.iter_mut().zip(so.iter()).zip(e) {
                *r += w * (a * ed - b * xd);
            }
        }
    }
}

/// Hidden credit (SPEC 7, the "vectorized intermediate credit assignment"): for n nodes
/// whose signals are the rows of `signals` (n·D, row-major, `dim` = D),
/// `g_i = −weight · ∇cos(so_i, target)` is written to row i of `out` (n·D).
///
/// `target` is the target class encoding `e_y` (length D); its norm is computed once per
/// call. One pass over contiguous memory, no allocation; each row equals
/// `−weight ·` [`cosine_grad`]`(so_i, target)` computed the same way (so the results agree
/// bit for bit with a per-node loop). `weight = 0` disables the credit: `out` is filled with
/// zeros.
///
/// # Panics
/// If `dim` is 0, `target` does not have `dim` values, or `signals` and `out` do not have the
/// same length, a multiple of `dim`.
pub fn hidden_credit(signals: &[f32], dim: usize, target: &[f32], weight: f32, out: &mut [f32]) {
    assert!(dim > 0, "hidden_credit: dim must be positive");
    assert_eq!(target.len(), dim, "hidden_credit: target length");
    assert_eq!(signals.len(), out.len(), "hidden_credit: out length");
    assert_eq!(
        signals.len() % dim,
        0,
        "hidden_credit: signals length is not a multiple of dim"
    );
    if weight == 0.0 {
        out.fill(0.0);
        return;
    }
    let mut ee = 0.0f32;
    for &v in target {
        ee += v * v;
    }
    let ne = ee.sqrt();
    for (x, row) in signals.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let (mut dot, mut xx) = (0.0f32, 0.0f32);
        for (&a, &b) in x.iter().zip(target) {
            dot += a * b;
            xx += a * a;
        }
        let (a, b) = grad_coeffs(dot, xx, ne);
        for ((o, &xd), &ed) in row.iter_mut().zip(x).zip(target) {
            *o = -weight * (a * ed - b * xd);
        }
    }
}

/// Chains a signal gradient into index space at the activation point (SPEC 7), per element:
///
/// - `g_phase = g · (−sin[φa]) · A[μa]`, per radian of the phase angle `2πφ/N`;
/// - `g_mag = g · cos[φa] · A'[μa]` ([`GradientMode::Exact`], per radian of the table argument
///   `x = −π + 2πμ/(M−1)`) or `g · cos[φa] · A[μa]` ([`GradientMode::Reference`]).
///
/// The signal is `s = cos[φa] · A[μa]`, so these are `g·∂s/∂angle` and `g·∂s/∂x`. The rule is
/// elementwise, so the slices may hold one node (D values) or many nodes (n·D values,
/// row-major); all five must have the same length and the indices must be in range.
pub fn chain_to_indices(
    t: &Tables,
    act_phase: &[u16],
    act_mag: &[u16],
    g: &[f32],
    mode: GradientMode,
    g_phase: &mut [f32],
    g_mag: &mut [f32],
) {
    let len = g.len();
    assert!(
        act_phase.len() == len && act_mag.len() == len && g_phase.len() == len,
        "chain_to_indices: length mismatch"
    );
    assert_eq!(g_mag.len(), len, "chain_to_indices: length mismatch");
    let mag_table = match mode {
        GradientMode::Exact => &t.amp_deriv,
        GradientMode::Reference => &t.amp,
    };
    for i in 0..len {
        let p = act_phase[i] as usize;
        let m = act_mag[i] as usize;
        let gi = g[i];
        g_phase[i] = gi * -t.sin[p] * t.amp[m];
        g_mag[i] = gi * t.cos[p] * mag_table[m];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::loss::logits;
    use crate::model::rng::{stream_with, uniform_f32};
    use crate::model::signal::cosine;
    use std::f64::consts::PI;

    fn cos64(x: &[f64], e: &[f64]) -> f64 {
        let dot: f64 = x.iter().zip(e).map(|(a, b)| a * b).sum();
        let nx = x.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-8);
        let ne = e.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-8);
        dot / (nx * ne)
    }

    fn random_vec(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        let mut rng = stream_with(seed, "credit-test", 1);
        (0..n).map(|_| uniform_f32(&mut rng, lo, hi)).collect()
    }

    fn to64(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| a as f64).collect()
    }

    /// Central finite difference of `f` at `x` along each coordinate.
    fn fd_grad(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let mut y = x.to_vec();
        (0..x.len())
            .map(|i| {
                y[i] = x[i] + h;
                let up = f(&y);
                y[i] = x[i] - h;
                let down = f(&y);
                y[i] = x[i];
                (up - down) / (2.0 * h)
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{what}[{i}]: got {g}, want {w} (all: {got:?} vs {want:?})"
            );
        }
    }

    #[test]
    fn cosine_grad_matches_finite_differences() {
        for seed in 0..20u64 {
            let dim = 1 + (seed as usize % 7);
            let x = random_vec(seed, dim, -2.7, 2.7);
            let e = random_vec(seed + 1000, dim, -2.7, 2.7);
            let mut g = vec![0.0; dim];
            cosine_grad(&x, &e, &mut g);
            let e64 = to64(&e);
            let want = fd_grad(&to64(&x), 1e-6, |y| cos64(y, &e64));
            assert_close(&g, &want, 2e-4, "cosine_grad");
        }
        // Hand value: x = (1, 0), e = (1, 1): ∇ = e/(1·√2) − x·1/√2 = (0, 1/√2).
        let mut g = [0.0; 2];
        cosine_grad(&[1.0, 0.0], &[1.0, 1.0], &mut g);
        assert!(
            g[0].abs() < 1e-7 && (g[1] - 0.5f32.sqrt()).abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn cosine_grad_is_orthogonal_to_x_and_scale_invariant() {
        let x = [0.3f32, -1.2, 2.0, 0.5, -0.7];
        let e = [1.1f32, 0.4, -0.9, 2.2, 0.1];
        let mut g = [0.0; 5];
        cosine_grad(&x, &e, &mut g);
        let dot: f32 = g.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!(dot.abs() < 1e-6, "{dot}");
        // ∇cos(2x, e) = ∇cos(x, e) / 2.
        let x2 = x.map(|v| 2.0 * v);
        let mut g2 = [0.0; 5];
        cosine_grad(&x2, &e, &mut g2);
        for d in 0..5 {
            assert!((g2[d] * 2.0 - g[d]).abs() < 1e-6);
        }
    }

    #[test]
    fn cosine_grad_clamped_is_finite() {
        let mut g = [0.0; 3];
        cosine_grad(&[0.0; 3], &[1.0, 2.0, 2.0], &mut g);
        // Inside the clamp: e / (1e-8 · |e|) with |e| = 3.
        for (d, &v) in g.iter().enumerate() {
            let want = [1.0f32, 2.0, 2.0][d] / (1e-8 * 3.0);
            assert!(((v - want) / want).abs() < 1e-5, "{g:?}");
        }
        cosine_grad(&[0.0; 3], &[0.0; 3], &mut g);
        assert_eq!(g, [0.0; 3]);
        cosine_grad(&[1.0, 2.0, 3.0], &[0.0; 3], &mut g);
        assert_eq!(g, [0.0; 3]);
        cosine_grad(&[1e-30, 0.0, 0.0], &[1.0, 1.0, 0.0], &mut g);
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    }

    /// The loss of SPEC 6 computed from scratch in f64 from the output signals.
    fn loss64(so: &[Vec<f64>], enc: &[Vec<f64>], label: usize, temperature: f64, eps: f64) -> f64 {
        let classes = enc.len();
        let z: Vec<f64> = enc
            .iter()
            .map(|e| so.iter().map(|x| cos64(x, e)).sum::<f64>() / so.len() as f64)
            .collect();
        let sum: f64 = z.iter().map(|v| (v / temperature).exp()).sum();
        let mut loss = 0.0;
        for (c, v) in z.iter().enumerate() {
            let target = if c == label {
                1.0 - eps + eps / classes as f64
            } else {
                eps / classes as f64
            };
            loss -= target * ((v / temperature).exp() / sum).ln();
        }
        loss
    }

    #[test]
    fn output_credit_matches_finite_differences_of_the_loss() {
        let t = Tables::new(512, 1024);
        let enc = ClassEncodings::prototype(&t);
        let enc64: Vec<Vec<f64>> = (0..enc.classes).map(|c| to64(enc.signal(c))).collect();
        let cases = [
            (1usize, 0usize, 1.0f32, 0.0f32),
            (3, 4, 1.0, 0.0),
            (2, 9, 0.5, 0.1),
            (4, 2, 2.0, 0.2),
            (10, 7, 0.25, 0.0),
        ];
        for (case, &(outputs, label, temperature, eps)) in cases.iter().enumerate() {
            let flat = random_vec(case as u64 + 77, outputs * 5, -2.7, 2.7);
            let signals: Vec<&[f32]> = flat.chunks_exact(5).collect();
            let mut z = vec![0.0; enc.classes];
            logits(&signals, &enc, &mut z);
            let mut delta = vec![0.0; enc.classes];
            let mut g = vec![0.0; outputs * 5];
            output_credit(
                &signals,
                &enc,
                &z,
                label,
                temperature,
                eps,
                &mut delta,
                &mut g,
            );

            let so64: Vec<Vec<f64>> = signals.iter().map(|s| to64(s)).collect();
            let x = to64(&flat);
            let want = fd_grad(&x, 1e-6, |y| {
                let so: Vec<Vec<f64>> = y.chunks_exact(5).map(|r| r.to_vec()).collect();
                loss64(&so, &enc64, label, temperature as f64, eps as f64)
            });
            assert_close(&g, &want, 3e-4, &format!("output_credit case {case}"));
            assert!(
                (loss64(&so64, &enc64, label, temperature as f64, eps as f64)
                    - crate::model::loss::cross_entropy(&z, label, temperature, eps) as f64)
                    .abs()
                    < 1e-4
            );

            // δ = softmax(z/T) − target sums to zero and is negative only at the label
            // (without smoothing).
            let sum: f32 = delta.iter().sum();
            assert!(sum.abs() < 1e-5, "{delta:?}");
            if eps == 0.0 {
                for (c, &d) in delta.iter().enumerate() {
                    assert_eq!(d < 0.0, c == label, "{delta:?}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "no active output")]
    fn output_credit_rejects_empty_set() {
        let t = Tables::new(512, 1024);
        let enc = ClassEncodings::prototype(&t);
        let z = [0.0; 10];
        let mut delta = [0.0; 10];
        output_credit(&[], &enc, &z, 0, 1.0, 0.0, &mut delta, &mut []);
    }

    #[test]
    fn hidden_credit_equals_per_node_cosine_grad() {
        let dim = 5;
        let n = 37;
        let mut signals = random_vec(5, n * dim, -2.7, 2.7);
        // Include a zero row (inside the clamp).
        signals[10 * dim..11 * dim].fill(0.0);
        let target = random_vec(6, dim, -2.7, 2.7);
        for weight in [1.0f32, 0.5, 2.5] {
            let mut out = vec![f32::NAN; n * dim];
            hidden_credit(&signals, dim, &target, weight, &mut out);
            let mut g = vec![0.0; dim];
            for i in 0..n {
                cosine_grad(&signals[i * dim..(i + 1) * dim], &target, &mut g);
                for d in 0..dim {
                    assert_eq!(out[i * dim + d], -weight * g[d], "node {i} dim {d}");
                }
            }
        }
        let mut out = vec![f32::NAN; n * dim];
        hidden_credit(&signals, dim, &target, 0.0, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        hidden_credit(&[], dim, &target, 1.0, &mut []);
    }

    #[test]
    fn hidden_credit_step_increases_cosine_with_target() {
        let t = Tables::new(512, 1024);
        let enc = ClassEncodings::prototype(&t);
        let dim = 5;
        let n = 50;
        let signals = random_vec(9, n * dim, -2.7, 2.7);
        for y in 0..enc.classes {
            let e = enc.signal(y);
            let mut g = vec![0.0; n * dim];
            hidden_credit(&signals, dim, e, 1.0, &mut g);
            for i in 0..n {
                let so = &signals[i * dim..(i + 1) * dim];
                let stepped: Vec<f32> = so
                    .iter()
                    .zip(&g[i * dim..(i + 1) * dim])
                    .map(|(s, gd)| s - 1e-2 * gd)
                    .collect();
                let before = cos64(&to64(so), &to64(e));
                let after = cos64(&to64(&stepped), &to64(e));
                assert!(after > before, "class {y} node {i}: {before} -> {after}");
            }
        }
    }

    /// s(α, x) = cos(α) · exp(sin(x)), the continuous signal of one dimension.
    fn s64(alpha: f64, x: f64) -> f64 {
        alpha.cos() * x.sin().exp()
    }

    #[test]
    fn chain_to_indices_matches_finite_differences() {
        for (n, m) in [(512usize, 1024usize), (64, 33), (7, 5)] {
            let t = Tables::new(n, m);
            let points: Vec<(u16, u16)> = [
                (0, 0),
                (1, 1),
                (n / 4, m / 2),
                (n / 3, m / 4),
                (n / 2, m - 1),
                (n - 1, 3 * m / 4),
                (5 * n / 7, m / 3),
            ]
            .iter()
            .map(|&(p, q)| (p as u16, q as u16))
            .collect();
            let act_phase: Vec<u16> = points.iter().map(|p| p.0).collect();
            let act_mag: Vec<u16> = points.iter().map(|p| p.1).collect();
            let g: Vec<f32> = (0..points.len())
                .map(|i| [1.0f32, -0.5, 2.0][i % 3])
                .collect();
            let len = points.len();
            let (mut gp, mut gm) = (vec![0.0; len], vec![0.0; len]);
            let (mut rp, mut rm) = (vec![0.0; len], vec![0.0; len]);
            chain_to_indices(
                &t,
                &act_phase,
                &act_mag,
                &g,
                GradientMode::Exact,
                &mut gp,
                &mut gm,
            );
            chain_to_indices(
                &t,
                &act_phase,
                &act_mag,
                &g,
                GradientMode::Reference,
                &mut rp,
                &mut rm,
            );
            let h = 1e-6;
            for i in 0..len {
                let alpha = 2.0 * PI * act_phase[i] as f64 / n as f64;
                let x = -PI + 2.0 * PI * act_mag[i] as f64 / (m - 1) as f64;
                let gi = g[i] as f64;
                let d_alpha = (s64(alpha + h, x) - s64(alpha - h, x)) / (2.0 * h);
                let d_x = (s64(alpha, x + h) - s64(alpha, x - h)) / (2.0 * h);
                let tol = 1e-5;
                assert!(
                    (gp[i] as f64 - gi * d_alpha).abs() < tol,
                    "N={n} point {i}: phase"
                );
                assert!(
                    (gm[i] as f64 - gi * d_x).abs() < tol,
                    "N={n} point {i}: magnitude"
                );
                // Reference: the same phase gradient; A instead of A' for the magnitude.
                assert_eq!(rp[i], gp[i]);
                let want_ref = gi * alpha.cos() * x.sin().exp();
                assert!(
                    (rm[i] as f64 - want_ref).abs() < tol,
                    "N={n} point {i}: reference"
                );
            }
        }
    }

    #[test]
    fn hidden_credit_chained_matches_finite_differences_of_the_cosine() {
        // End to end: d/dangle and d/dx of −cos(s(φ, μ), e) equal the chained hidden credit.
        let t = Tables::new(512, 1024);
        let enc = ClassEncodings::prototype(&t);
        let e = enc.signal(3);
        let e64 = to64(e);
        let phase: [u16; 5] = [17, 300, 451, 88, 200];
        let mag: [u16; 5] = [40, 700, 512, 999, 260];
        let mut so = [0.0f32; 5];
        t.signal_vec(&phase, &mag, &mut so);
        assert!((cosine(&so, e) as f64 - cos64(&to64(&so), &e64)).abs() < 1e-6);
        let mut g = [0.0f32; 5];
        hidden_credit(&so, 5, e, 1.0, &mut g);
        let (mut gp, mut gm) = ([0.0f32; 5], [0.0f32; 5]);
        chain_to_indices(&t, &phase, &mag, &g, GradientMode::Exact, &mut gp, &mut gm);
        let alpha: Vec<f64> = phase.iter().map(|&p| 2.0 * PI * p as f64 / 512.0).collect();
        let x: Vec<f64> = mag
            .iter()
            .map(|&q| -PI + 2.0 * PI * q as f64 / 1023.0)
            .collect();
        let loss = |a: &[f64], xs: &[f64]| {
            let s: Vec<f64> = a.iter().zip(xs).map(|(&a, &x)| s64(a, x)).collect();
            -cos64(&s, &e64)
        };
        let want_p = fd_grad(&alpha, 1e-6, |a| loss(a, &x));
        let want_m = fd_grad(&x, 1e-6, |xs| loss(&alpha, xs));
        assert_close(&gp, &want_p, 1e-4, "phase");
        assert_close(&gm, &want_m, 1e-4, "magnitude");
    }
}
