//! Phasor arrivals (SPEC 11, `forward.combine: Phasor`) and their derivatives.
//!
//! Each kept arrival `a` at a target adds, per dimension `d`, the 2D vector
//! `w_{a,d} · (cosT[φo_{a,d}], sinT[φo_{a,d}])` to the target's sum `Z_d`, and `w_{a,d}` to its
//! weight `W_d`. The activation is read from the sums: the phase is the sum's angle in bins,
//! `φa_d = round(N/2π · atan2(Z_y, Z_x)) mod N`, and the magnitude encodes the coherence
//! `ρ_d = |Z_d| / W_d` as `μa_d = round((M−1)/2π · (π + asin(clamp(2ρ−1, −0.999, 0.999))))`, so
//! that `A[μa_d] = e^(2ρ−1)`.
//!
//! The backward functions are the exact derivatives of those formulas with the straight-through
//! rules of SPEC 11 (`d round(x)/dx = 1`, `d (x mod N)/dx = 1`), in index units (per bin). The
//! tables' derivatives are those of the continuous functions they sample:
//! `d cosT[i]/di = −sinT[i]·2π/N`, `d A[j]/dj = A'[j]·2π/(M−1)`.
//!
//! Sums use `glam::Vec2` and are taken in the caller's order (fixed by the simulation), so
//! results never depend on threads. No bevy here.

use glam::Vec2;

use super::tables::Tables;

/// How a kept arrival is weighted in the phasor sum (`Phasor(weight: ...)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Weight {
    /// `w = max(s, 0)`, the arrival's strength (the same for every dimension).
    #[default]
    Strength,
    /// `w = 1`.
    Uniform,
    /// `w_d = A[μo_d]`, the arrival's amplitude in that dimension.
    Magnitude,
}

/// The largest |2ρ − 1| the magnitude read-out uses; beyond it the gradient is zero.
pub const COHERENCE_CLAMP: f32 = 0.999;

/// A target's running phasor sum in one dimension: `Z` and `W`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhasorSum {
    /// `Z = Σ w·(cos φo, sin φo)`.
    pub z: Vec2,
    /// `W = Σ w`.
    pub w: f32,
}

/// The weight of an arrival with strength `s` in a dimension whose amplitude is `amp`
/// (`A[μo_d]`).
#[inline]
pub fn weight(kind: Weight, s: f32, amp: f32) -> f32 {
    match kind {
        Weight::Strength => s.max(0.0),
        Weight::Uniform => 1.0,
        Weight::Magnitude => amp,
    }
}

/// Adds one arrival with phase-cell indices `phase` (φo) and `magnitude` (μo) and strength `s`
/// to the per-dimension sums `sums` (all of length D).
#[inline]
pub fn add_arrival(
    t: &Tables,
    kind: Weight,
    phase: &[u16],
    magnitude: &[u16],
    s: f32,
    sums: &mut [PhasorSum],
) {
    for ((sum, &p), &m) in sums.iter_mut().zip(phase).zip(magnitude) {
        let w = weight(kind, s, t.amp[m as usize]);
        sum.z += w * Vec2::new(t.cos[p as usize], t.sin[p as usize]);
        sum.w += w;
    }
}

/// The activation `(φa, μa)` read from one dimension's sum (see the module docs); `None` when
/// `W <= 0` (no weight arrived, the node is inactive).
#[inline]
pub fn read(sum: PhasorSum, phase_bins: u32, magnitude_bins: u32) -> Option<(u16, u16)> {
    if sum.w <= 0.0 {
        return None;
    }
    let n = phase_bins as f32;
    let angle = sum.z.y.atan2(sum.z.x);
    let phase =
        ((n / std::f32::consts::TAU * angle).round() as i64).rem_euclid(i64::from(phase_bins));
    let c = coherence_arg(sum);
    let last = (magnitude_bins - 1) as f32;
    let mu = (last / std::f32::consts::TAU * (std::f32::consts::PI + c.asin())).round();
    Some((phase as u16, mu.clamp(0.0, last) as u16))
}

/// `clamp(2ρ − 1, −0.999, 0.999)` with `ρ = |Z| / W`.
#[inline]
fn coherence_arg(sum: PhasorSum) -> f32 {
    (2.0 * sum.z.length() / sum.w - 1.0).clamp(-COHERENCE_CLAMP, COHERENCE_CLAMP)
}

/// The backward of [`read`]: from `∂L/∂φa` and `∂L/∂μa` (per bin) to `(∂L/∂Z, ∂L/∂W)`.
/// Zero where the derivative does not exist (`Z = 0`, `W <= 0`) or the coherence is clamped.
#[inline]
pub fn read_backward(
    sum: PhasorSum,
    g_phase: f32,
    g_magnitude: f32,
    phase_bins: u32,
    magnitude_bins: u32,
) -> (Vec2, f32) {
    let r2 = sum.z.length_squared();
    if r2 <= 0.0 || sum.w <= 0.0 {
        return (Vec2::ZERO, 0.0);
    }
    // φa = N/2π · atan2(y, x): ∂/∂x = −y/r², ∂/∂y = x/r².
    let k_phase = phase_bins as f32 / std::f32::consts::TAU;
    let mut g_z = g_phase * k_phase / r2 * Vec2::new(-sum.z.y, sum.z.x);
    let mut g_w = 0.0;
    let r = r2.sqrt();
    let c = 2.0 * r / sum.w - 1.0;
    if c.abs() < COHERENCE_CLAMP {
        // μa = (M−1)/2π · (π + asin(2ρ − 1)), ρ = r/W.
        let k_mag = (magnitude_bins - 1) as f32 / std::f32::consts::TAU;
        let g_rho = g_magnitude * k_mag * 2.0 / (1.0 - c * c).sqrt();
        g_z += g_rho / (r * sum.w) * sum.z;
        g_w = -g_rho * r / (sum.w * sum.w);
    }
    (g_z, g_w)
}

/// One arrival's phase cell: its indices φo and μo (D values each) and its strength s.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// φo.
    pub phase: &'a [u16],
    /// μo.
    pub magnitude: &'a [u16],
    /// s.
    pub strength: f32,
}

/// The backward of [`add_arrival`] for one arrival: from the gradients of the sums it was
/// added to (`g_z`, `g_w`, per dimension) to the gradients of its phase-cell indices φo and μo
/// (per bin, added to `g_phase` and `g_magnitude`) and of its strength `s` (returned; only
/// [`Weight::Strength`] depends on it, and only where `s > 0`).
#[inline]
pub fn add_arrival_backward(
    t: &Tables,
    kind: Weight,
    arrival: Arrival<'_>,
    g_sums: &[(Vec2, f32)],
    g_phase: &mut [f32],
    g_magnitude: &mut [f32],
) -> f32 {
    let Arrival {
        phase,
        magnitude,
        strength: s,
    } = arrival;
    let dphi = std::f32::consts::TAU / t.phase_bins as f32;
    let dmu = std::f32::consts::TAU / (t.magnitude_bins - 1) as f32;
    let mut g_s = 0.0;
    for d in 0..phase.len() {
        let (p, m) = (phase[d] as usize, magnitude[d] as usize);
        let (c, sn) = (t.cos[p], t.sin[p]);
        let (g_z, g_w) = g_sums[d];
        let w = weight(kind, s, t.amp[m]);
        // Z += w (cos θ, sin θ), θ = 2π φo / N.
        g_phase[d] += w * dphi * (g_z.y * c - g_z.x * sn);
        let g_weight = g_z.x * c + g_z.y * sn + g_w;
        match kind {
            Weight::Strength if s > 0.0 => g_s += g_weight,
            Weight::Strength | Weight::Uniform => {}
            Weight::Magnitude => g_magnitude[d] += g_weight * t.amp_deriv[m] * dmu,
        }
    }
    g_s
}

/// The backward of the phase cell's strength `s = Σ_d cosT[φo_d]·A[μo_d]`: adds `g_s·∂s/∂φo`
/// and `g_s·∂s/∂μo` (per bin) to `g_phase` and `g_magnitude`.
#[inline]
pub fn strength_backward(
    t: &Tables,
    phase: &[u16],
    magnitude: &[u16],
    g_s: f32,
    g_phase: &mut [f32],
    g_magnitude: &mut [f32],
) {
    if g_s == 0.0 {
        return;
    }
    let dphi = std::f32::consts::TAU / t.phase_bins as f32;
    let dmu = std::f32::consts::TAU / (t.magnitude_bins - 1) as f32;
    for d in 0..phase.len() {
        let (p, m) = (phase[d] as usize, magnitude[d] as usize);
        g_phase[d] += g_s * -t.sin[p] * dphi * t.amp[m];
        g_magnitude[d] += g_s * t.cos[p] * t.amp_deriv[m] * dmu;
    }
}

/// The backward of a signal `so_d = cosT[φ_d]·A[μ_d]` (a readout or an encoding): from
/// `∂L/∂so` to per-bin gradients of φ and μ, added to `g_phase` and `g_magnitude`.
#[inline]
pub fn signal_backward(
    t: &Tables,
    phase: &[u16],
    magnitude: &[u16],
    g_signal: &[f32],
    g_phase: &mut [f32],
    g_magnitude: &mut [f32],
) {
    let dphi = std::f32::consts::TAU / t.phase_bins as f32;
    let dmu = std::f32::consts::TAU / (t.magnitude_bins - 1) as f32;
    for d in 0..phase.len() {
        let (p, m) = (phase[d] as usize, magnitude[d] as usize);
        g_phase[d] += g_signal[d] * -t.sin[p] * dphi * t.amp[m];
        g_magnitude[d] += g_signal[d] * t.cos[p] * t.amp_deriv[m] * dmu;
    }
}

/// Per-node phasor sums of one timestep's kept arrivals (buffers reused across timesteps).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhasorSums {
    /// Whether node k received a kept arrival.
    pub touched: Vec<bool>,
    /// Touched nodes in first-touch order.
    pub list: Vec<u32>,
    /// The sums, `[node][dim]` (meaningful for touched nodes only).
    pub sums: Vec<PhasorSum>,
}

/// The sums that stand for an activation `(φ, μ)` of weight 1: `Z = ρ·(cos φ, sin φ)`, `W = 1`
/// with the coherence `ρ = (1 + ln A[μ]) / 2` that [`read`] maps to the same amplitude. How an
/// injected input, whose activation is not a sum of arrivals, joins `carry: Accumulate`.
#[inline]
pub fn from_activation(t: &Tables, phase: u16, magnitude: u16) -> PhasorSum {
    let rho = (1.0 + t.amp[magnitude as usize].ln()) / 2.0;
    PhasorSum {
        z: rho * Vec2::new(t.cos[phase as usize], t.sin[phase as usize]),
        w: 1.0,
    }
}

/// Where a timestep's targets start from.
#[derive(Clone, Copy, Debug)]
pub struct Start<'a> {
    /// Every node's persisted sums, `[node][dim]`.
    pub carry: &'a [PhasorSum],
    /// `Some(slot_of)` under `carry: Accumulate`: a node active before the timestep
    /// (`slot_of[v] != u32::MAX`) starts from its carried sums. `None`: all start from zeros.
    pub carried: Option<&'a [u32]>,
    /// Arrivals into the first `clamped` nodes are skipped (the inputs under `Replace`).
    pub clamped: u32,
}

/// Accumulates one timestep's kept cells into `out` (SPEC 11 `combine: Phasor`), in the
/// order given (emission order), so sums never depend on threads. Targets start as `start`
/// says; cells the scene's gate drops ([`super::arrivals::gate_drops`]) are skipped.
pub fn accumulate(
    t: &Tables,
    kind: Weight,
    cells: super::arrivals::Cells<'_>,
    dim: usize,
    inhibition: crate::scene::Inhibition,
    start: Start<'_>,
    out: &mut PhasorSums,
) {
    let carry = start.carry;
    let carried = |v: usize| start.carried.is_some_and(|slots| slots[v] != u32::MAX);
    let n = carry.len() / dim.max(1);
    out.touched.clear();
    out.touched.resize(n, false);
    out.list.clear();
    out.sums.resize(n * dim, PhasorSum::default());
    for (c, &v) in cells.target.iter().enumerate() {
        let s = cells.strength[c];
        let vk = v as usize;
        if v < start.clamped || super::arrivals::gate_drops(inhibition, s) {
            continue;
        }
        let row = vk * dim..(vk + 1) * dim;
        if !out.touched[vk] {
            out.touched[vk] = true;
            out.list.push(v);
            if carried(vk) {
                out.sums[row.clone()].copy_from_slice(&carry[row.clone()]);
            } else {
                out.sums[row.clone()].fill(PhasorSum::default());
            }
        }
        add_arrival(
            t,
            kind,
            &cells.phase[c * dim..(c + 1) * dim],
            &cells.magnitude[c * dim..(c + 1) * dim],
            s,
            &mut out.sums[row],
        );
    }
}

#[cfg(test)]
mod tests {
    //! The derivatives are checked against central finite differences of the continuous
    //! functions the tables sample: φ and μ are treated as real numbers, cosT[φ] as
    //! cos(2πφ/N), A[μ] as exp(sin(−π + 2πμ/(M−1))). Indices used by the analytic side are the
    //! same points, so the tables hold exactly the continuous values there (up to f32).
    use super::*;
    use std::f64::consts::{PI, TAU};

    const N: u32 = 512;
    const M: u32 = 1024;

    fn amp(mu: f64) -> f64 {
        (-PI + TAU * mu / f64::from(M - 1)).sin().exp()
    }

    /// The continuous sums of arrivals at real-valued (φo, μo).
    fn sums(kind: Weight, arrivals: &[(Vec<f64>, Vec<f64>)], dim: usize) -> Vec<(f64, f64, f64)> {
        let mut out = vec![(0.0, 0.0, 0.0); dim];
        for (phi, mu) in arrivals {
            let s: f64 = (0..dim)
                .map(|d| (TAU * phi[d] / f64::from(N)).cos() * amp(mu[d]))
                .sum();
            for d in 0..dim {
                let w = match kind {
                    Weight::Strength => s.max(0.0),
                    Weight::Uniform => 1.0,
                    Weight::Magnitude => amp(mu[d]),
                };
                let a = TAU * phi[d] / f64::from(N);
                out[d].0 += w * a.cos();
                out[d].1 += w * a.sin();
                out[d].2 += w;
            }
        }
        out
    }

    /// A smooth loss of the read-out: Σ_d α_d·φa_d + β_d·μa_d on the continuous read-out.
    fn loss(kind: Weight, arrivals: &[(Vec<f64>, Vec<f64>)], alpha: &[f64], beta: &[f64]) -> f64 {
        let dim = alpha.len();
        sums(kind, arrivals, dim)
            .iter()
            .enumerate()
            .map(|(d, &(x, y, w))| {
                let phi = f64::from(N) / TAU * y.atan2(x);
                let c = (2.0 * (x * x + y * y).sqrt() / w - 1.0).clamp(-0.999, 0.999);
                let mu = f64::from(M - 1) / TAU * (PI + c.asin());
                alpha[d] * phi + beta[d] * mu
            })
            .sum()
    }

    /// Analytic gradient of [`loss`] with respect to every arrival's φo and μo.
    fn analytic(
        t: &Tables,
        kind: Weight,
        arrivals: &[(Vec<u16>, Vec<u16>)],
        alpha: &[f64],
        beta: &[f64],
    ) -> Vec<(Vec<f32>, Vec<f32>)> {
        let dim = alpha.len();
        let mut acc = vec![PhasorSum::default(); dim];
        let strengths: Vec<f32> = arrivals
            .iter()
            .map(|(p, m)| (0..dim).map(|d| t.signal(p[d], m[d])).sum())
            .collect();
        for ((p, m), &s) in arrivals.iter().zip(&strengths) {
            add_arrival(t, kind, p, m, s, &mut acc);
        }
        let g_sums: Vec<(Vec2, f32)> = (0..dim)
            .map(|d| read_backward(acc[d], alpha[d] as f32, beta[d] as f32, N, M))
            .collect();
        arrivals
            .iter()
            .zip(&strengths)
            .map(|((p, m), &s)| {
                let (mut gp, mut gm) = (vec![0.0; dim], vec![0.0; dim]);
                let arrival = Arrival {
                    phase: p,
                    magnitude: m,
                    strength: s,
                };
                let g_s = add_arrival_backward(t, kind, arrival, &g_sums, &mut gp, &mut gm);
                strength_backward(t, p, m, g_s, &mut gp, &mut gm);
                (gp, gm)
            })
            .collect()
    }

    fn check(kind: Weight, arrivals: &[(Vec<u16>, Vec<u16>)], alpha: &[f64], beta: &[f64]) {
        let t = Tables::new(N as usize, M as usize);
        let grads = analytic(&t, kind, arrivals, alpha, beta);
        let real: Vec<(Vec<f64>, Vec<f64>)> = arrivals
            .iter()
            .map(|(p, m)| {
                (
                    p.iter().map(|&x| f64::from(x)).collect(),
                    m.iter().map(|&x| f64::from(x)).collect(),
                )
            })
            .collect();
        let h = 1e-3;
        for (a, (gp, gm)) in grads.iter().enumerate() {
            for d in 0..alpha.len() {
                for (phase, g) in [(true, gp[d]), (false, gm[d])] {
                    let at = |delta: f64| {
                        let mut v = real.clone();
                        if phase {
                            v[a].0[d] += delta;
                        } else {
                            v[a].1[d] += delta;
                        }
                        loss(kind, &v, alpha, beta)
                    };
                    let fd = (at(h) - at(-h)) / (2.0 * h);
                    let tol = 2e-3 * (1.0 + fd.abs());
                    assert!(
                        (f64::from(g) - fd).abs() <= tol,
                        "{kind:?} arrival {a} dim {d} {}: analytic {g}, finite difference {fd}",
                        if phase { "φo" } else { "μo" }
                    );
                }
            }
        }
    }

    /// Three arrivals in two dimensions, all excitatory, coherence well inside the clamp.
    fn arrivals() -> Vec<(Vec<u16>, Vec<u16>)> {
        vec![
            (vec![10, 300], vec![700, 650]),
            (vec![40, 330], vec![600, 800]),
            (vec![500, 250], vec![760, 700]),
        ]
    }

    #[test]
    fn every_weight_matches_finite_differences() {
        for kind in [Weight::Strength, Weight::Uniform, Weight::Magnitude] {
            check(kind, &arrivals(), &[0.7, -1.3], &[0.4, 0.9]);
            check(kind, &arrivals(), &[0.0, 0.0], &[1.0, -1.0]);
            check(kind, &arrivals(), &[1.0, 1.0], &[0.0, 0.0]);
        }
    }

    #[test]
    fn read_matches_hand_values() {
        let t = Tables::new(8, 5);
        // One arrival at phase bin 2 (90°), weight 1: angle 90° -> bin 2; |Z| = W -> ρ = 1,
        // clamped to 0.999: μ = round(4/2π·(π + asin 0.999)) = round(4/2π·4.6677) = 3.
        let mut s = [PhasorSum::default()];
        add_arrival(&t, Weight::Uniform, &[2], &[0], 0.5, &mut s);
        assert_eq!(read(s[0], 8, 5), Some((2, 3)));
        // Two opposite arrivals cancel: ρ = 0 -> asin(−0.999) -> μ = round(4/2π·1.6155) = 1.
        add_arrival(&t, Weight::Uniform, &[6], &[0], 0.5, &mut s);
        assert_eq!(read(s[0], 8, 5).map(|r| r.1), Some(1));
        // A negative angle wraps: bin 7 is −45°.
        let mut s = [PhasorSum::default()];
        add_arrival(&t, Weight::Uniform, &[7], &[0], 0.5, &mut s);
        assert_eq!(read(s[0], 8, 5).map(|r| r.0), Some(7));
        assert_eq!(
            read(PhasorSum::default(), 8, 5),
            None,
            "no weight, inactive"
        );
    }

    #[test]
    fn a_clamped_coherence_has_no_magnitude_gradient() {
        // A single arrival is perfectly coherent (ρ = 1): μ is clamped, only φ has a gradient.
        let t = Tables::new(N as usize, M as usize);
        let mut s = [PhasorSum::default()];
        add_arrival(&t, Weight::Uniform, &[100], &[10], 1.0, &mut s);
        let (g_z, g_w) = read_backward(s[0], 0.0, 1.0, N, M);
        assert_eq!((g_z, g_w), (Vec2::ZERO, 0.0));
        let (g_z, _) = read_backward(s[0], 1.0, 0.0, N, M);
        assert!(g_z.length() > 0.0);
        assert_eq!(
            read_backward(PhasorSum::default(), 1.0, 1.0, N, M),
            (Vec2::ZERO, 0.0)
        );
    }

    #[test]
    fn signal_backward_matches_finite_differences() {
        let t = Tables::new(N as usize, M as usize);
        let (p, m) = ([37u16, 400], [100u16, 900]);
        let g = [0.8f32, -0.5];
        let (mut gp, mut gm) = ([0.0f32; 2], [0.0f32; 2]);
        signal_backward(&t, &p, &m, &g, &mut gp, &mut gm);
        let f = |phi: [f64; 2], mu: [f64; 2]| -> f64 {
            (0..2)
                .map(|d| f64::from(g[d]) * (TAU * phi[d] / f64::from(N)).cos() * amp(mu[d]))
                .sum()
        };
        let base = (p.map(f64::from), m.map(f64::from));
        let h = 1e-3;
        for d in 0..2 {
            let (mut a, mut b) = (base.0, base.0);
            a[d] += h;
            b[d] -= h;
            let fd = (f(a, base.1) - f(b, base.1)) / (2.0 * h);
            assert!(
                (f64::from(gp[d]) - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                "{} {fd}",
                gp[d]
            );
            let (mut a, mut b) = (base.1, base.1);
            a[d] += h;
            b[d] -= h;
            let fd = (f(base.0, a) - f(base.0, b)) / (2.0 * h);
            assert!(
                (f64::from(gm[d]) - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                "{} {fd}",
                gm[d]
            );
        }
    }

    #[test]
    fn an_injected_activation_keeps_its_signal_as_a_sum() {
        let t = Tables::new(N as usize, M as usize);
        for (p, m) in [(0u16, 0u16), (37, 200), (300, 511), (511, 700), (128, 1023)] {
            let (rp, rm) = read(from_activation(&t, p, m), N, M).unwrap();
            assert_eq!(rp, p);
            // The magnitude may come back as the other index of the same amplitude
            // (A[μ] = exp(sin x) takes each value twice): compare signals.
            let (a, b) = (t.amp[m as usize], t.amp[rm as usize]);
            assert!((a - b).abs() < 0.02 * a, "μ {m} -> {rm}: {a} vs {b}");
        }
    }

    #[test]
    fn accumulate_starts_from_carry_skips_clamped_and_keeps_order() {
        let t = Tables::new(8, 5);
        // Three cells: two into node 1 (carried), one into node 0 (clamped).
        let cells = super::super::arrivals::Cells {
            target: &[1, 0, 1],
            phase: &[2, 0, 4],
            magnitude: &[4, 4, 4],
            strength: &[1.0, 1.0, 0.5],
        };
        let carry = vec![
            PhasorSum::default(),
            PhasorSum {
                z: Vec2::new(0.25, 0.0),
                w: 2.0,
            },
        ];
        let mut out = PhasorSums::default();
        accumulate(
            &t,
            Weight::Strength,
            cells,
            1,
            crate::scene::Inhibition::Excitatory,
            Start {
                carry: &carry,
                carried: Some(&[u32::MAX, 0]),
                clamped: 1,
            },
            &mut out,
        );
        assert_eq!(out.list, vec![1]);
        // Z = (0.25, 0) + 1·(cos 90°, sin 90°) + 0.5·(cos 180°, sin 180°) = (−0.25, 1), W = 3.5.
        let s = out.sums[1];
        assert!(
            (s.z.x + 0.25).abs() < 1e-6 && (s.z.y - 1.0).abs() < 1e-6,
            "{s:?}"
        );
        assert_eq!(s.w, 3.5);
    }
}
