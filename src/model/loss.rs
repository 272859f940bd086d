//! Logits, softmax, cross-entropy and prediction (SPEC 6).

use super::encodings::ClassEncodings;
use super::signal::cosine;

/// Logits `z_c = mean over k of cos(so_k, e_c)` for the active outputs' signals
/// `output_signals` (each of length D) against the class encodings; `out` has length C.
///
/// For each class the cosines are summed in f32 in the order of `output_signals`, then divided
/// by their count. An empty `output_signals` (no active output) is the caller's
/// responsibility: such a sample has no prediction and no loss (SPEC 6), and this function
/// would write NaN (0/0).
pub fn logits(output_signals: &[&[f32]], enc: &ClassEncodings, out: &mut [f32]) {
    debug_assert_eq!(out.len(), enc.classes);
    let count = output_signals.len() as f32;
    for (c, z) in out.iter_mut().enumerate() {
        let e = enc.signal(c);
        let mut sum = 0.0f32;
        for so in output_signals {
            sum += cosine(so, e);
        }
        *z = sum / count;
    }
}

/// `out = softmax(z / temperature)`, max-subtracted for stability; sums in index order.
pub fn softmax(z: &[f32], temperature: f32, out: &mut [f32]) {
    debug_assert_eq!(z.len(), out.len());
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &v) in out.iter_mut().zip(z) {
        *o = ((v - max) / temperature).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// Cross-entropy of `softmax(z / temperature)` against the target
/// `(1 − ε)·onehot(label) + ε/C` (ε = `label_smoothing`, 0 for none).
///
/// Computed in f64 with a max-subtracted log-sum-exp, returned as f32.
pub fn cross_entropy(z: &[f32], label: usize, temperature: f32, label_smoothing: f32) -> f32 {
    assert!(
        label < z.len(),
        "label {label} out of range for {} classes",
        z.len()
    );
    let t = temperature as f64;
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64 / t;
    let lse = max
        + z.iter()
            .map(|&v| (v as f64 / t - max).exp())
            .sum::<f64>()
            .ln();
    let eps = label_smoothing as f64;
    let uniform = eps / z.len() as f64;
    let mut loss = 0.0f64;
    for (c, &v) in z.iter().enumerate() {
        let target = if c == label {
            1.0 - eps + uniform
        } else {
            uniform
        };
        if target != 0.0 {
            loss -= target * (v as f64 / t - lse);
        }
    }
    loss as f32
}

/// The predicted class: argmax of `z`, the lowest index on ties.
///
/// # Panics
/// If `z` is empty.
pub fn predict(z: &[f32]) -> usize {
    assert!(!z.is_empty(), "predict: no logits");
    let mut best = 0;
    for (c, &v) in z.iter().enumerate().skip(1) {
        if v > z[best] {
            best = c;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tables::Tables;

    #[test]
    fn softmax_hand_values() {
        let mut p = [0.0; 3];
        softmax(&[1.0, 2.0, 3.0], 1.0, &mut p);
        let e = std::f32::consts::E;
        let s = 1.0 + e + e * e;
        let want = [1.0 / s, e / s, e * e / s];
        for c in 0..3 {
            assert!((p[c] - want[c]).abs() < 1e-6);
        }
        // Temperature 2 on [0, 2] equals temperature 1 on [0, 1].
        softmax(&[0.0, 2.0], 2.0, &mut p[..2]);
        assert!((p[1] - e / (1.0 + e)).abs() < 1e-6);
        // Large logits stay finite.
        softmax(&[1000.0, 1000.0], 1.0, &mut p[..2]);
        assert_eq!(&p[..2], &[0.5, 0.5]);
    }

    #[test]
    fn cross_entropy_hand_values() {
        // Uniform logits: CE = ln C.
        let ce = cross_entropy(&[0.3; 4], 2, 1.0, 0.0);
        assert!((ce - 4f32.ln()).abs() < 1e-6);
        // z = [0, ln 3]: p = [1/4, 3/4]; CE(label 1) = ln(4/3), CE(label 0) = ln 4.
        let z = [0.0, 3f32.ln()];
        assert!((cross_entropy(&z, 1, 1.0, 0.0) - (4f32 / 3.0).ln()).abs() < 1e-6);
        assert!((cross_entropy(&z, 0, 1.0, 0.0) - 4f32.ln()).abs() < 1e-6);
        // Smoothing ε = 0.2, C = 2: target = [0.1, 0.9].
        let want = 0.1 * 4f32.ln() + 0.9 * (4f32 / 3.0).ln();
        assert!((cross_entropy(&z, 1, 1.0, 0.2) - want).abs() < 1e-6);
        // Temperature: z/T with T = 0.5 on [0, ln 3 / 2] equals T = 1 on [0, ln 3].
        let z2 = [0.0, 3f32.ln() / 2.0];
        assert!((cross_entropy(&z2, 1, 0.5, 0.0) - (4f32 / 3.0).ln()).abs() < 1e-6);
    }

    #[test]
    fn predict_lowest_index_on_ties() {
        assert_eq!(predict(&[0.1, 0.5, 0.5, 0.2]), 1);
        assert_eq!(predict(&[0.7, 0.5, 0.7]), 0);
        assert_eq!(predict(&[-1.0]), 0);
        assert_eq!(predict(&[-3.0, -2.0, -2.5]), 1);
    }

    #[test]
    fn logits_are_mean_cosines() {
        let t = Tables::new(4, 5);
        // Class 0: signal (1, 0) ·A; class 1: (0, 1); cos[0] = 1, cos[1] ≈ 0, amp[2] = 1.
        let enc =
            ClassEncodings::explicit(&t, &[vec![0, 1], vec![1, 0]], &[vec![2, 2], vec![2, 2]])
                .unwrap();
        let a = [1.0f32, 0.0];
        let b = [1.0f32, 1.0];
        let mut z = [0.0; 2];
        logits(&[&a, &b], &enc, &mut z);
        let h = 0.5f32.sqrt();
        assert!((z[0] - (1.0 + h) / 2.0).abs() < 1e-6, "{z:?}");
        assert!((z[1] - (0.0 + h) / 2.0).abs() < 1e-6, "{z:?}");
    }
}
