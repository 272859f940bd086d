//! Read-out logits (SPEC 6 and SPEC 11 `loss.readout`) and their gradients with respect to the
//! output signals and the class encodings' signals.
//!
//! - [`Readout::Mean`]: `z_c` is the mean over all active outputs of `cos(so_k, e_c)`;
//! - [`Readout::Grouped`]: output slot `k` belongs to class `k mod C`, and `z_c` is the mean of
//!   `cos(so_k, e_c)` over the active outputs of group `c` (0 for a group with none active).
//!
//! The loss is the cross-entropy of `softmax(z / T)` (with optional label smoothing);
//! [`loss_gradient`] gives `∂L/∂z`. Sums are taken in index order, in f32.

use super::credit::cosine_grad;
use super::loss::softmax;
use super::signal::cosine;

/// How logits are read from the active outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Readout {
    /// SPEC 6: every active output votes for every class.
    #[default]
    Mean,
    /// SPEC 11: output slot `k` votes only for class `k mod C`.
    Grouped,
}

/// Which classes output slot `slot` votes for: all, or its group.
#[inline]
fn votes(kind: Readout, slot: u32, classes: usize) -> std::ops::Range<usize> {
    match kind {
        Readout::Mean => 0..classes,
        Readout::Grouped => {
            let c = slot as usize % classes;
            c..c + 1
        }
    }
}

/// Number of active outputs voting for each class, into `counts` (length C).
fn voters(kind: Readout, slots: &[u32], counts: &mut [u32]) {
    counts.fill(0);
    let classes = counts.len();
    for &slot in slots {
        for c in votes(kind, slot, classes) {
            counts[c] += 1;
        }
    }
}

/// The logits `z` (length C) of the active outputs: `signals` holds their signals (`|S|·D`,
/// in the order of `slots`, their output slots), `encodings` the class encodings' signals
/// (`C·D`).
pub fn logits(kind: Readout, signals: &[f32], slots: &[u32], encodings: &[f32], z: &mut [f32]) {
    let classes = z.len();
    let dim = encodings.len() / classes.max(1);
    let mut counts = vec![0u32; classes];
    voters(kind, slots, &mut counts);
    z.fill(0.0);
    for (i, &slot) in slots.iter().enumerate() {
        let so = &signals[i * dim..(i + 1) * dim];
        for c in votes(kind, slot, classes) {
            z[c] += cosine(so, &encodings[c * dim..(c + 1) * dim]);
        }
    }
    for (zc, &n) in z.iter_mut().zip(&counts) {
        if n > 0 {
            *zc /= n as f32;
        }
    }
}

/// `∂L/∂z` of the cross-entropy of `softmax(z / T)` against `label` with label smoothing
/// `smoothing` (the target is `(1−ε)·onehot + ε/C`): `(softmax_c − target_c) / T`.
pub fn loss_gradient(z: &[f32], label: usize, temperature: f32, smoothing: f32, g_z: &mut [f32]) {
    softmax(z, temperature, g_z);
    let classes = z.len() as f32;
    for (c, g) in g_z.iter_mut().enumerate() {
        let target = (1.0 - smoothing) * f32::from(u8::from(c == label)) + smoothing / classes;
        *g = (*g - target) / temperature;
    }
}

/// The backward of [`logits`]: from `g_z` to the gradients of the output signals (added to
/// `g_signals`, `|S|·D`) and of the encodings' signals (added to `g_encodings`, `C·D`).
pub fn logits_backward(
    kind: Readout,
    signals: &[f32],
    slots: &[u32],
    encodings: &[f32],
    g_z: &[f32],
    g_signals: &mut [f32],
    g_encodings: &mut [f32],
) {
    let classes = g_z.len();
    let dim = encodings.len() / classes.max(1);
    let mut counts = vec![0u32; classes];
    voters(kind, slots, &mut counts);
    let mut grad = vec![0.0f32; dim];
    for (i, &slot) in slots.iter().enumerate() {
        let so = &signals[i * dim..(i + 1) * dim];
        for c in votes(kind, slot, classes) {
            let scale = g_z[c] / counts[c] as f32;
            let e = &encodings[c * dim..(c + 1) * dim];
            cosine_grad(so, e, &mut grad);
            for (g, &x) in g_signals[i * dim..(i + 1) * dim].iter_mut().zip(&grad) {
                *g += scale * x;
            }
            cosine_grad(e, so, &mut grad);
            for (g, &x) in g_encodings[c * dim..(c + 1) * dim].iter_mut().zip(&grad) {
                *g += scale * x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss of the logits, in f64 from a plain reference implementation of both read-outs.
    fn reference_loss(
        kind: Readout,
        signals: &[f64],
        slots: &[u32],
        encodings: &[f64],
        label: usize,
        t: f64,
    ) -> f64 {
        let classes = 3;
        let dim = 2;
        let cos = |a: &[f64], b: &[f64]| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            dot / (na * nb)
        };
        let mut z = vec![0.0; classes];
        for (c, zc) in z.iter_mut().enumerate() {
            let members: Vec<usize> = (0..slots.len())
                .filter(|&i| kind == Readout::Mean || slots[i] as usize % classes == c)
                .collect();
            if members.is_empty() {
                continue;
            }
            let e = &encodings[c * dim..(c + 1) * dim];
            *zc = members
                .iter()
                .map(|&i| cos(&signals[i * dim..(i + 1) * dim], e))
                .sum::<f64>()
                / members.len() as f64;
        }
        let max = z.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = z.iter().map(|v| ((v - max) / t).exp()).sum();
        -((z[label] - max) / t - sum.ln())
    }

    #[test]
    fn gradients_match_finite_differences_for_both_readouts() {
        // Four active outputs (slots 0, 1, 3, 4: classes 0, 1, 0, 1 when grouped; class 2 has
        // none), three classes, D = 2.
        let signals = [0.9f32, -0.3, 0.2, 1.1, -0.7, 0.4, 1.3, 0.8];
        let slots = [0u32, 1, 3, 4];
        let encodings = [1.0f32, 0.2, -0.4, 0.9, 0.3, -1.2];
        let (label, t) = (1, 0.5f32);
        for kind in [Readout::Mean, Readout::Grouped] {
            let mut z = [0.0f32; 3];
            logits(kind, &signals, &slots, &encodings, &mut z);
            let mut g_z = [0.0f32; 3];
            loss_gradient(&z, label, t, 0.0, &mut g_z);
            let (mut gs, mut ge) = ([0.0f32; 8], [0.0f32; 6]);
            logits_backward(kind, &signals, &slots, &encodings, &g_z, &mut gs, &mut ge);
            let s64: Vec<f64> = signals.iter().map(|&x| f64::from(x)).collect();
            let e64: Vec<f64> = encodings.iter().map(|&x| f64::from(x)).collect();
            let h = 1e-5;
            for i in 0..8 {
                let (mut a, mut b) = (s64.clone(), s64.clone());
                a[i] += h;
                b[i] -= h;
                let fd = (reference_loss(kind, &a, &slots, &e64, label, 0.5)
                    - reference_loss(kind, &b, &slots, &e64, label, 0.5))
                    / (2.0 * h);
                assert!(
                    (f64::from(gs[i]) - fd).abs() < 1e-4,
                    "{kind:?} signal {i}: {} vs {fd}",
                    gs[i]
                );
            }
            for i in 0..6 {
                let (mut a, mut b) = (e64.clone(), e64.clone());
                a[i] += h;
                b[i] -= h;
                let fd = (reference_loss(kind, &s64, &slots, &a, label, 0.5)
                    - reference_loss(kind, &s64, &slots, &b, label, 0.5))
                    / (2.0 * h);
                assert!(
                    (f64::from(ge[i]) - fd).abs() < 1e-4,
                    "{kind:?} encoding {i}: {} vs {fd}",
                    ge[i]
                );
            }
        }
    }

    #[test]
    fn grouped_logits_by_hand() {
        // Two classes. Slot 0 -> class 0 (signal along encoding 0: cos 1) and slot 2 -> class 0
        // (opposite: cos −1), so z_0 = 0; slot 1 -> class 1 at 45° to encoding 1: z_1 = √½.
        let signals = [1.0f32, 0.0, 1.0, 1.0, -1.0, 0.0];
        let slots = [0u32, 1, 2];
        let encodings = [1.0f32, 0.0, 0.0, 1.0];
        let mut z = [0.0f32; 2];
        logits(Readout::Grouped, &signals, &slots, &encodings, &mut z);
        assert!(z[0].abs() < 1e-6, "{z:?}");
        assert!(
            (z[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6,
            "{z:?}"
        );
        logits(Readout::Mean, &signals, &slots, &encodings, &mut z);
        // Mean: class 0: (1 + √½ − 1)/3; class 1: (0 + √½ + 0)/3.
        let third = std::f32::consts::FRAC_1_SQRT_2 / 3.0;
        assert!(
            (z[0] - third).abs() < 1e-6 && (z[1] - third).abs() < 1e-6,
            "{z:?}"
        );
    }

    #[test]
    fn loss_gradient_sums_to_zero_and_points_at_the_label() {
        let mut g = [0.0f32; 4];
        loss_gradient(&[0.1, 0.5, -0.2, 0.0], 2, 0.1, 0.1, &mut g);
        assert!(g.iter().sum::<f32>().abs() < 1e-5);
        assert!(g[2] < 0.0 && g[1] > 0.0);
    }
}
