//! Cosine similarity of signal vectors (SPEC 6).

/// Norms below this are clamped up to it, so a zero vector has cosine 0 with everything.
pub const NORM_EPS: f32 = 1e-8;

/// `cos(x, y) = x·y / (max(|x|, 1e-8) · max(|y|, 1e-8))`.
///
/// The dot product and both squared norms are accumulated in f32, starting from `0.0`, in
/// index order (one pass), so the result is bit-reproducible. `x` and `y` must have the same
/// length.
#[inline]
pub fn cosine(x: &[f32], y: &[f32]) -> f32 {
    debug_assert_eq!(x.len(), y.len());
    let (mut dot, mut xx, mut yy) = (0.0f32, 0.0f32, 0.0f32);
    for (&a, &b) in x.iter().zip(y) {
        dot += a * b;
        xx += a * a;
        yy += b * b;
    }
    dot / (xx.sqrt().max(NORM_EPS) * yy.sqrt().max(NORM_EPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 2.0])).abs() < 1e-7);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&[1.0, 2.0, 3.0], &[-1.0, -2.0, -3.0]) + 1.0).abs() < 1e-6);
        // (3,4)·(4,3) = 24, norms 5 and 5.
        assert!((cosine(&[3.0, 4.0], &[4.0, 3.0]) - 0.96).abs() < 1e-6);
    }

    #[test]
    fn zero_vector_is_clamped() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert!(!cosine(&[0.0; 4], &[0.0; 4]).is_nan());
        // A tiny vector: |x| = 1e-9 is clamped to 1e-8, so cos = 1e-9·1 / (1e-8·1) = 0.1.
        let c = cosine(&[1e-9, 0.0], &[1.0, 0.0]);
        assert!((c - 0.1).abs() < 1e-4, "{c}");
    }
}
