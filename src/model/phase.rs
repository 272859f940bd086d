//! The phase cell (SPEC 4, step 3) and the radiation score (SPEC 5).

use super::tables::Tables;

/// `(a + b) mod bins` for indices already reduced: `a < bins` and `b < bins`
/// (`bins <= 65536`). Checked in debug builds only.
#[inline]
pub fn add_mod(a: u16, b: u16, bins: u32) -> u16 {
    debug_assert!(
        (a as u32) < bins && (b as u32) < bins,
        "add_mod({a}, {b}, {bins}): operands must be < bins"
    );
    let s = a as u32 + b as u32;
    (if s >= bins { s - bins } else { s }) as u16
}

/// The phase cell of an arrival u -> v: `φo_d = (φa_d + θφ_d) mod N`,
/// `μo_d = (μa_d + θμ_d) mod M`, written to `out_phase` / `out_mag`; returns the strength
/// `s = Σ_d cos[φo_d] · amp[μo_d]`.
///
/// Determinism contract: the strength is summed in f32, starting from `0.0`, in dimension
/// order `d = 0, 1, ..., D−1`. Any faster implementation must keep this order so strengths
/// stay bit-identical.
///
/// All six slices must have the same length D, and all indices must be in range.
#[inline(always)]
pub fn phase_cell(
    t: &Tables,
    act_phase: &[u16],
    act_mag: &[u16],
    par_phase: &[u16],
    par_mag: &[u16],
    out_phase: &mut [u16],
    out_mag: &mut [u16],
) -> f32 {
    let dim = act_phase.len();
    debug_assert!(
        act_mag.len() == dim
            && par_phase.len() == dim
            && par_mag.len() == dim
            && out_phase.len() == dim
            && out_mag.len() == dim,
        "phase_cell: all slices must have length D"
    );
    let (n, m) = (t.phase_bins as u32, t.magnitude_bins as u32);
    let mut strength = 0.0f32;
    for d in 0..dim {
        let p = add_mod(act_phase[d], par_phase[d], n);
        let q = add_mod(act_mag[d], par_mag[d], m);
        out_phase[d] = p;
        out_mag[d] = q;
        strength += t.cos[p as usize] * t.amp[q as usize];
    }
    strength
}

/// The radiation score of SPEC 5, `Σ_d cos[(a_d + θ_d) mod N]`: how positive the phase
/// factor of the arrival u -> v would be. `act_phase` is φa[u], `par_phase` is θφ[v].
///
/// Summed in f32, starting from `0.0`, in dimension order `d = 0..D`; this is the reference
/// (brute-force) score that faster top-K paths must reproduce.
#[inline]
pub fn radiation_score(t: &Tables, act_phase: &[u16], par_phase: &[u16]) -> f32 {
    debug_assert_eq!(act_phase.len(), par_phase.len());
    let n = t.phase_bins as u32;
    let mut score = 0.0f32;
    for (&a, &p) in act_phase.iter().zip(par_phase) {
        score += t.cos[add_mod(a, p, n) as usize];
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_mod_wraps() {
        assert_eq!(add_mod(3, 4, 8), 7);
        assert_eq!(add_mod(5, 4, 8), 1);
        assert_eq!(add_mod(7, 7, 8), 6);
        assert_eq!(add_mod(0, 0, 2), 0);
        assert_eq!(add_mod(65535, 65535, 65536), 65534);
        assert_eq!(add_mod(65535, 1, 65536), 0);
    }

    #[test]
    fn phase_cell_hand_example_with_wraparound() {
        // N = 8 (cos: 1, √½, 0, −√½, −1, −√½, 0, √½), M = 5 (amp: 1, 1/e, 1, e, 1).
        let t = Tables::new(8, 5);
        let (mut p, mut m) = ([0u16; 3], [0u16; 3]);
        let s = phase_cell(
            &t,
            &[6, 1, 3],
            &[4, 2, 0],
            &[3, 3, 1],
            &[4, 1, 3],
            &mut p,
            &mut m,
        );
        // phases: 6+3=9→1, 1+3=4, 3+1=4; magnitudes: 4+4=8→3, 2+1=3, 0+3=3.
        assert_eq!(p, [1, 4, 4]);
        assert_eq!(m, [3, 3, 3]);
        let e = std::f64::consts::E;
        let want = (0.5f64.sqrt() * e - e - e) as f32;
        assert!((s - want).abs() < 1e-5, "{s} vs {want}");
        // Excitatory example: all phases land on 0.
        let s = phase_cell(
            &t,
            &[4, 7],
            &[1, 0],
            &[4, 1],
            &[0, 0],
            &mut p[..2],
            &mut m[..2],
        );
        assert_eq!(&p[..2], &[0, 0]);
        assert!((s - (1.0 / e + 1.0) as f32).abs() < 1e-6);
    }

    #[test]
    fn phase_cell_sums_in_dimension_order() {
        let t = Tables::new(512, 1024);
        let a = [10u16, 300, 511, 77, 256];
        let am = [5u16, 1000, 17, 512, 1023];
        let b = [502u16, 400, 1, 0, 300];
        let bm = [1019u16, 30, 99, 600, 1];
        let (mut p, mut m) = ([0u16; 5], [0u16; 5]);
        let s = phase_cell(&t, &a, &am, &b, &bm, &mut p, &mut m);
        let mut want = 0.0f32;
        for d in 0..5 {
            let pp = (a[d] as usize + b[d] as usize) % 512;
            let mm = (am[d] as usize + bm[d] as usize) % 1024;
            assert_eq!((p[d] as usize, m[d] as usize), (pp, mm));
            want += t.cos[pp] * t.amp[mm];
        }
        assert_eq!(s.to_bits(), want.to_bits());
    }

    #[test]
    fn radiation_score_hand_example() {
        let t = Tables::new(8, 5);
        // (6+2)→0: 1; (1+1)→2: 0; (3+2)→5: −√½.
        let s = radiation_score(&t, &[6, 1, 3], &[2, 1, 2]);
        let want = 1.0 - 0.5f32.sqrt();
        assert!((s - want).abs() < 1e-6, "{s} vs {want}");
        assert_eq!(radiation_score(&t, &[], &[]), 0.0);
    }
}
