//! Lookup tables (SPEC 2): the only place trigonometry happens.
//!
//! - `cos[i] = cos(2πi/N)`, `sin[i] = sin(2πi/N)` for `i in 0..N`;
//! - `amp[j] = exp(sin(x_j))` with `x_j = −π + 2πj/(M−1)` for `j in 0..M` (both ends
//!   included), so `amp` ranges over `[1/e, e]`;
//! - `amp_deriv[j] = cos(x_j) · exp(sin(x_j))`, the derivative of `amp` with respect to the
//!   table argument `x`.
//!
//! Every entry is computed in f64 and stored as f32.

use std::f64::consts::PI;

/// Cosine, sine, amplitude and amplitude-derivative tables for N phase bins and M magnitude
/// bins.
#[derive(Clone, Debug, PartialEq)]
pub struct Tables {
    /// N, the number of phase bins.
    pub phase_bins: usize,
    /// M, the number of magnitude bins.
    pub magnitude_bins: usize,
    /// `cos[i] = cos(2πi/N)`, length N.
    pub cos: Vec<f32>,
    /// `sin[i] = sin(2πi/N)`, length N.
    pub sin: Vec<f32>,
    /// `amp[j] = exp(sin(x_j))`, `x_j = −π + 2πj/(M−1)`, length M.
    pub amp: Vec<f32>,
    /// `amp_deriv[j] = cos(x_j)·exp(sin(x_j))`, length M.
    pub amp_deriv: Vec<f32>,
}

impl Tables {
    /// Builds the tables for `phase_bins` (N) and `magnitude_bins` (M).
    ///
    /// # Panics
    /// If N or M is outside `2..=65536` (indices must fit in `u16`).
    pub fn new(phase_bins: usize, magnitude_bins: usize) -> Tables {
        assert!(
            (2..=65536).contains(&phase_bins),
            "phase_bins must be in 2..=65536, got {phase_bins}"
        );
        assert!(
            (2..=65536).contains(&magnitude_bins),
            "magnitude_bins must be in 2..=65536, got {magnitude_bins}"
        );
        let n = phase_bins as f64;
        let (cos, sin) = (0..phase_bins)
            .map(|i| {
                let a = 2.0 * PI * i as f64 / n;
                (a.cos() as f32, a.sin() as f32)
            })
            .unzip();
        let last = (magnitude_bins - 1) as f64;
        let (amp, amp_deriv) = (0..magnitude_bins)
            .map(|j| {
                let x = -PI + 2.0 * PI * j as f64 / last;
                let e = x.sin().exp();
                (e as f32, (x.cos() * e) as f32)
            })
            .unzip();
        Tables {
            phase_bins,
            magnitude_bins,
            cos,
            sin,
            amp,
            amp_deriv,
        }
    }

    /// The signal of one index pair: `cos[phase] · amp[mag]`.
    #[inline]
    pub fn signal(&self, phase: u16, mag: u16) -> f32 {
        self.cos[phase as usize] * self.amp[mag as usize]
    }

    /// The signal vector of index vectors: `out[d] = cos[phase[d]] · amp[mag[d]]`.
    ///
    /// All three slices must have the same length.
    #[inline]
    pub fn signal_vec(&self, phase: &[u16], mag: &[u16], out: &mut [f32]) {
        debug_assert_eq!(phase.len(), mag.len());
        debug_assert_eq!(phase.len(), out.len());
        for ((o, &p), &m) in out.iter_mut().zip(phase).zip(mag) {
            *o = self.signal(p, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: f32 = std::f32::consts::E;

    #[test]
    fn cos_and_sin_at_quarter_points() {
        let t = Tables::new(512, 1024);
        assert_eq!(t.cos.len(), 512);
        assert_eq!(t.sin.len(), 512);
        assert_eq!(t.cos[0], 1.0);
        assert_eq!(t.sin[0], 0.0);
        assert!(t.cos[128].abs() < 1e-7);
        assert!((t.sin[128] - 1.0).abs() < 1e-7);
        assert_eq!(t.cos[256], -1.0);
        assert!(t.sin[256].abs() < 1e-7);
        assert!(t.cos[384].abs() < 1e-7);
        assert!((t.sin[384] + 1.0).abs() < 1e-7);
        // cos(2π·64/512) = cos(π/4) = √2/2
        assert!((t.cos[64] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
    }

    #[test]
    fn amplitude_at_hand_points() {
        // M = 5: x = −π, −π/2, 0, π/2, π.
        let t = Tables::new(4, 5);
        let want_a = [1.0, 1.0 / E, 1.0, E, 1.0];
        let want_d = [-1.0, 0.0, 1.0, 0.0, -1.0];
        for j in 0..5 {
            assert!((t.amp[j] - want_a[j]).abs() < 1e-6, "A[{j}] = {}", t.amp[j]);
            assert!(
                (t.amp_deriv[j] - want_d[j]).abs() < 1e-6,
                "A'[{j}] = {}",
                t.amp_deriv[j]
            );
        }
        // M = 1025: (M−1)/4 = 256 is x = −π/2, (M−1)/2 = 512 is x = 0.
        let t = Tables::new(512, 1025);
        assert!((t.amp[0] - 1.0).abs() < 1e-6);
        assert!((t.amp[256] - 1.0 / E).abs() < 1e-6);
        assert!((t.amp[512] - 1.0).abs() < 1e-6);
        assert!((t.amp[768] - E).abs() < 1e-6);
        assert!((t.amp[1024] - 1.0).abs() < 1e-6);
        let (lo, hi) = t
            .amp
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &a| (l.min(a), h.max(a)));
        assert!((lo - 1.0 / E).abs() < 1e-6 && (hi - E).abs() < 1e-6);
    }

    #[test]
    fn signal_is_cos_times_amp() {
        let t = Tables::new(4, 5);
        // cos[2] = −1, amp[3] = e.
        assert!((t.signal(2, 3) + E).abs() < 1e-6);
        let mut out = [0.0; 3];
        t.signal_vec(&[0, 2, 1], &[1, 3, 3], &mut out);
        assert!((out[0] - 1.0 / E).abs() < 1e-6);
        assert!((out[1] + E).abs() < 1e-6);
        assert!(out[2].abs() < 1e-6);
    }

    #[test]
    #[should_panic(expected = "phase_bins")]
    fn rejects_one_phase_bin() {
        let _ = Tables::new(1, 8);
    }
}
