//! The discrete parameter update (SPEC 7): from per-radian gradients to index steps.
//!
//! Per node and dimension the request is `r = −η·g / resolution` (`η_φ`, `2π/N` for phase;
//! `η_μ`, `2π/(M−1)` for magnitude), computed as `r = −(η/resolution)·g` with the factor
//! `η/resolution` rounded to f32 once per call. A positive gradient therefore moves the index
//! down. Each dimension moves by at most one index per application:
//!
//! - [`UpdateMode::Accumulate`] (default): `acc += r`; a dimension whose `|acc| >= threshold`
//!   steps by `sign(acc)` and its `acc` resets to 0, the others keep accumulating;
//! - [`UpdateMode::Immediate`]: a dimension steps by `sign(r)` where `|r| >= threshold`; no
//!   accumulator is read or written.
//!
//! Phase steps wrap modulo N; magnitude steps clamp to `[0, M−1]`.
//!
//! [`GradientAccumulation`] implements the optional averaging of gradients over several
//! samples before a step.

use std::f64::consts::TAU;

/// Default `η_φ`.
pub const DEFAULT_ETA_PHASE: f32 = 0.015;
/// Default `η_μ`.
pub const DEFAULT_ETA_MAGNITUDE: f32 = 0.012;
/// Default threshold of [`UpdateMode::Accumulate`].
pub const DEFAULT_ACCUMULATION_THRESHOLD: f32 = 0.01;
/// Default threshold of [`UpdateMode::Immediate`].
pub const DEFAULT_IMMEDIATE_THRESHOLD: f32 = 0.1;

/// How requests turn into index steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateMode {
    /// Requests accumulate per node and dimension; a dimension steps by the sign of its
    /// accumulator once `|acc| >= threshold` (default 0.01), and that accumulator resets to 0.
    Accumulate {
        /// The accumulator magnitude that triggers a step.
        threshold: f32,
    },
    /// A dimension steps by the sign of the request where `|r| >= threshold` (default 0.1);
    /// smaller requests are dropped.
    Immediate {
        /// The request magnitude that triggers a step.
        threshold: f32,
    },
}

impl Default for UpdateMode {
    fn default() -> Self {
        UpdateMode::Accumulate {
            threshold: DEFAULT_ACCUMULATION_THRESHOLD,
        }
    }
}

/// Scaling of accumulated gradients ([`GradientAccumulation`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccumulationScaling {
    /// The plain average: `sum / steps`.
    None,
    /// The average times `√steps`: `sum / steps · √steps = sum / √steps`.
    #[default]
    Sqrt,
}

/// The update rule's constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateRule {
    /// `η_φ`, the phase learning rate (0.015).
    pub eta_phase: f32,
    /// `η_μ`, the magnitude learning rate (0.012).
    pub eta_magnitude: f32,
    /// N, the number of phase bins (`2..=65536`).
    pub phase_bins: u32,
    /// M, the number of magnitude bins (`2..=65536`).
    pub magnitude_bins: u32,
    /// Accumulate or immediate steps.
    pub mode: UpdateMode,
}

impl UpdateRule {
    /// The default rule (η_φ = 0.015, η_μ = 0.012, `Accumulate { threshold: 0.01 }`) for N
    /// phase and M magnitude bins.
    ///
    /// # Panics
    /// If N or M is outside `2..=65536`.
    pub fn new(phase_bins: u32, magnitude_bins: u32) -> UpdateRule {
        assert!(
            (2..=65536).contains(&phase_bins),
            "phase_bins must be in 2..=65536, got {phase_bins}"
        );
        assert!(
            (2..=65536).contains(&magnitude_bins),
            "magnitude_bins must be in 2..=65536, got {magnitude_bins}"
        );
        UpdateRule {
            eta_phase: DEFAULT_ETA_PHASE,
            eta_magnitude: DEFAULT_ETA_MAGNITUDE,
            phase_bins,
            magnitude_bins,
            mode: UpdateMode::default(),
        }
    }

    /// The phase resolution `2π/N` (radians per phase index), computed in f64.
    pub fn resolution_phase(&self) -> f32 {
        (TAU / self.phase_bins as f64) as f32
    }

    /// The magnitude resolution `2π/(M−1)` (radians of the table argument per magnitude
    /// index), computed in f64.
    pub fn resolution_magnitude(&self) -> f32 {
        (TAU / (self.magnitude_bins as f64 - 1.0)) as f32
    }
}

/// The step (−1, 0 or +1) for an accumulator or request `v` that has passed the threshold;
/// 0 for `v == 0`, so a zero threshold never steps on nothing.
#[inline(always)]
fn sign_step(v: f32) -> i32 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

/// The step of one dimension for request `r`, updating `acc` in Accumulate mode.
///
/// A non-finite request (from a NaN or infinite gradient) is ignored: no step, and the
/// accumulator is left untouched, so one bad gradient cannot poison it forever.
#[inline(always)]
fn step_for(mode: UpdateMode, r: f32, acc: Option<&mut f32>) -> i32 {
    if !r.is_finite() {
        return 0;
    }
    match mode {
        UpdateMode::Accumulate { threshold } => {
            let a = acc.expect("accumulators are present in Accumulate mode");
            *a += r;
            if a.abs() >= threshold {
                let s = sign_step(*a);
                *a = 0.0;
                s
            } else {
                0
            }
        }
        UpdateMode::Immediate { threshold } => {
            if r.abs() >= threshold {
                sign_step(r)
            } else {
                0
            }
        }
    }
}

/// Applies one discrete step to one node (SPEC 7) and returns the number of dimensions
/// (phase plus magnitude) whose index changed.
///
/// Per dimension d: the request is `r = −(η/resolution)·g_d` (see the module docs), then:
/// - Accumulate: `acc_d += r`; if `|acc_d| >= threshold`, the index moves by `sign(acc_d)`
///   and `acc_d` is reset to 0 (also when a magnitude step is then clamped away); other
///   dimensions keep their accumulators;
/// - Immediate: the index moves by `sign(r)` if `|r| >= threshold`; the accumulators are not
///   used and may be empty slices.
///
/// Phase indices wrap modulo N (`0 − 1 → N−1`, `N−1 + 1 → 0`). Magnitude indices clamp to
/// `[0, M−1]`; a clamped step leaves the index unchanged and is not counted. A non-finite
/// request is ignored.
///
/// `phase`, `g_phase` (and `acc_phase` in Accumulate mode) must all have length D, likewise
/// the magnitude slices; indices must be in range (`< N`, `< M`).
///
/// # Panics
/// If a length disagrees.
pub fn apply(
    rule: &UpdateRule,
    phase: &mut [u16],
    magnitude: &mut [u16],
    acc_phase: &mut [f32],
    acc_magnitude: &mut [f32],
    g_phase: &[f32],
    g_magnitude: &[f32],
) -> u32 {
    assert_eq!(phase.len(), g_phase.len(), "apply: phase gradient length");
    assert_eq!(
        magnitude.len(),
        g_magnitude.len(),
        "apply: magnitude gradient length"
    );
    let accumulate = matches!(rule.mode, UpdateMode::Accumulate { .. });
    if accumulate {
        assert_eq!(
            acc_phase.len(),
            phase.len(),
            "apply: phase accumulator length"
        );
        assert_eq!(
            acc_magnitude.len(),
            magnitude.len(),
            "apply: magnitude accumulator length"
        );
    }
    let n = rule.phase_bins;
    let m = rule.magnitude_bins;
    let k_phase = rule.eta_phase / rule.resolution_phase();
    let k_mag = rule.eta_magnitude / rule.resolution_magnitude();
    let mut changed = 0u32;

    for (d, (p, &g)) in phase.iter_mut().zip(g_phase).enumerate() {
        debug_assert!((*p as u32) < n, "phase index {p} out of range 0..{n}");
        let acc = if accumulate {
            Some(&mut acc_phase[d])
        } else {
            None
        };
        match step_for(rule.mode, -k_phase * g, acc) {
            1 => {
                let v = *p as u32 + 1;
                *p = if v == n { 0 } else { v as u16 };
                changed += 1;
            }
            -1 => {
                *p = if *p == 0 { (n - 1) as u16 } else { *p - 1 };
                changed += 1;
            }
            _ => {}
        }
    }

    for (d, (q, &g)) in magnitude.iter_mut().zip(g_magnitude).enumerate() {
        debug_assert!((*q as u32) < m, "magnitude index {q} out of range 0..{m}");
        let acc = if accumulate {
            Some(&mut acc_magnitude[d])
        } else {
            None
        };
        match step_for(rule.mode, -k_mag * g, acc) {
            1 if (*q as u32) + 1 < m => {
                *q += 1;
                changed += 1;
            }
            -1 if *q > 0 => {
                *q -= 1;
                changed += 1;
            }
            _ => {}
        }
    }
    changed
}

/// Per-node gradient accumulation over `steps` samples (SPEC 7, optional
/// `gradient_accumulation { steps, scaling }`).
///
/// Usage per sample: [`add`](Self::add) each credited node's chained gradients (gφ, gμ), then
/// [`finish_sample`](Self::finish_sample). When it returns `true` (the `steps`-th sample is
/// in), the sums have been turned in place into `sum / steps · scale` (scale `√steps` for
/// [`AccumulationScaling::Sqrt`], 1 for [`AccumulationScaling::None`]; the factor
/// `scale/steps` is computed in f64 and rounded to f32 once); step every node of
/// [`nodes`](Self::nodes) with [`take`](Self::take) and [`apply`], then call
/// [`reset`](Self::reset).
///
/// Which nodes are included: every node that received at least one `add` in the window and
/// whose summed gradient is not all zeros. The average always divides by `steps`, so a
/// node's samples without credit count as zeros (a node credited in 2 of 8 samples gets
/// `(g1 + g2)/8 · scale`). Nodes outside [`nodes`](Self::nodes) have a zero average and would
/// not move; skipping them is exact.
///
/// Storage is dense (n·D per kind) and reused: no allocation per sample. Sums are f32,
/// added in call order (deterministic if the caller's order is).
#[derive(Clone, Debug, PartialEq)]
pub struct GradientAccumulation {
    dim: usize,
    steps: u32,
    scaling: AccumulationScaling,
    samples: u32,
    sum_phase: Vec<f32>,
    sum_magnitude: Vec<f32>,
    /// Nodes that received an `add` since the last reset (each once); sorted on completion.
    touched: Vec<u32>,
    is_touched: Vec<bool>,
}

impl GradientAccumulation {
    /// Accumulation for `nodes` nodes of dimension `dim` over `steps` samples.
    ///
    /// # Panics
    /// If `steps` or `dim` is 0, or `nodes` does not fit in `u32`.
    pub fn new(
        nodes: usize,
        dim: usize,
        steps: u32,
        scaling: AccumulationScaling,
    ) -> GradientAccumulation {
        assert!(steps > 0, "gradient accumulation needs steps >= 1");
        assert!(dim > 0, "gradient accumulation needs dim >= 1");
        assert!(
            u32::try_from(nodes).is_ok(),
            "too many nodes for gradient accumulation: {nodes}"
        );
        GradientAccumulation {
            dim,
            steps,
            scaling,
            samples: 0,
            sum_phase: vec![0.0; nodes * dim],
            sum_magnitude: vec![0.0; nodes * dim],
            touched: Vec::new(),
            is_touched: vec![false; nodes],
        }
    }

    /// The number of samples per window.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The scaling.
    pub fn scaling(&self) -> AccumulationScaling {
        self.scaling
    }

    /// The number of samples finished in the current window (`0..=steps`).
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Whether the window is complete (`samples() == steps()`): the stored values are the
    /// scaled averages, ready for [`take`](Self::take).
    pub fn ready(&self) -> bool {
        self.samples == self.steps
    }

    /// The factor applied to the sums on completion: `scale / steps`, i.e. `1/√steps`
    /// (Sqrt) or `1/steps` (None), computed in f64 and rounded to f32.
    pub fn factor(&self) -> f32 {
        let steps = self.steps as f64;
        match self.scaling {
            AccumulationScaling::None => (1.0 / steps) as f32,
            AccumulationScaling::Sqrt => (1.0 / steps.sqrt()) as f32,
        }
    }

    /// Adds one sample's chained gradients of `node` (each of length D).
    ///
    /// # Panics
    /// If the window is complete (call [`reset`](Self::reset) first), the node is out of
    /// range, or a length is not D.
    pub fn add(&mut self, node: usize, g_phase: &[f32], g_magnitude: &[f32]) {
        assert!(
            !self.ready(),
            "gradient accumulation: add after the window completed (reset first)"
        );
        assert!(
            g_phase.len() == self.dim && g_magnitude.len() == self.dim,
            "gradient accumulation: gradients must have D = {} values",
            self.dim
        );
        if !self.is_touched[node] {
            self.is_touched[node] = true;
            self.touched.push(node as u32);
        }
        let row = node * self.dim..(node + 1) * self.dim;
        for (s, &g) in self.sum_phase[row.clone()].iter_mut().zip(g_phase) {
            *s += g;
        }
        for (s, &g) in self.sum_magnitude[row].iter_mut().zip(g_magnitude) {
            *s += g;
        }
    }

    /// Ends one sample. Returns `true` when this was the `steps`-th sample of the window; the
    /// sums of the included nodes are then replaced by their scaled averages (see the type
    /// docs) and [`nodes`](Self::nodes) lists them in ascending order.
    ///
    /// # Panics
    /// If the window was already complete.
    pub fn finish_sample(&mut self) -> bool {
        assert!(
            !self.ready(),
            "gradient accumulation: finish_sample after the window completed (reset first)"
        );
        self.samples += 1;
        if !self.ready() {
            return false;
        }
        let factor = self.factor();
        let dim = self.dim;
        let (sp, sm) = (&mut self.sum_phase, &mut self.sum_magnitude);
        self.touched.retain(|&node| {
            let row = node as usize * dim..(node as usize + 1) * dim;
            let nonzero = sp[row.clone()]
                .iter()
                .chain(&sm[row.clone()])
                .any(|&v| v != 0.0);
            for v in sp[row.clone()].iter_mut().chain(sm[row].iter_mut()) {
                *v *= factor;
            }
            nonzero
        });
        self.touched.sort_unstable();
        true
    }

    /// The nodes included in the window so far: those that received an `add` and (once the
    /// window is complete) whose sums are not all zeros. Ascending once
    /// [`finish_sample`](Self::finish_sample) has returned `true`; before that, in order of
    /// first `add`.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.touched.iter().map(|&n| n as usize)
    }

    /// The scaled averages `(gφ, gμ)` of `node` (D values each) for [`apply`].
    ///
    /// # Panics
    /// If the window is not complete.
    pub fn take(&self, node: usize) -> (&[f32], &[f32]) {
        assert!(
            self.ready(),
            "gradient accumulation: take before the window completed"
        );
        let row = node * self.dim..(node + 1) * self.dim;
        (&self.sum_phase[row.clone()], &self.sum_magnitude[row])
    }

    /// Clears the window: zero sums (only the touched rows are written), no nodes, zero
    /// samples.
    pub fn reset(&mut self) {
        let dim = self.dim;
        for &node in &self.touched {
            let row = node as usize * dim..(node as usize + 1) * dim;
            self.sum_phase[row.clone()].fill(0.0);
            self.sum_magnitude[row].fill(0.0);
        }
        // Nodes dropped from `touched` on completion had all-zero sums; scaling kept them 0.
        // Their flags are cleared with the rest.
        self.is_touched.fill(false);
        self.touched.clear();
        self.samples = 0;
    }

    /// The raw state for a checkpoint: `(samples, sum_phase, sum_magnitude)` (n·D each;
    /// sums, or scaled averages once the window is complete).
    pub fn state(&self) -> (u32, &[f32], &[f32]) {
        (self.samples, &self.sum_phase, &self.sum_magnitude)
    }

    /// Restores a [`state`](Self::state). Nodes are re-derived from the nonzero rows (in
    /// ascending order), which is exact: zero rows contribute nothing.
    ///
    /// # Panics
    /// If `samples > steps` or a length is not n·D.
    pub fn restore(&mut self, samples: u32, sum_phase: &[f32], sum_magnitude: &[f32]) {
        assert!(
            samples <= self.steps,
            "gradient accumulation: samples > steps"
        );
        assert!(
            sum_phase.len() == self.sum_phase.len()
                && sum_magnitude.len() == self.sum_magnitude.len(),
            "gradient accumulation: state length"
        );
        self.sum_phase.copy_from_slice(sum_phase);
        self.sum_magnitude.copy_from_slice(sum_magnitude);
        self.samples = samples;
        self.touched.clear();
        let dim = self.dim;
        for (node, flag) in self.is_touched.iter_mut().enumerate() {
            let row = node * dim..(node + 1) * dim;
            *flag = self.sum_phase[row.clone()]
                .iter()
                .chain(&self.sum_magnitude[row])
                .any(|&v| v != 0.0);
            if *flag {
                self.touched.push(node as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule where `η = resolution`, so the request is exactly `r = −g`.
    fn unit_rule(n: u32, m: u32, mode: UpdateMode) -> UpdateRule {
        let mut rule = UpdateRule::new(n, m);
        rule.eta_phase = rule.resolution_phase();
        rule.eta_magnitude = rule.resolution_magnitude();
        rule.mode = mode;
        rule
    }

    const ACC: UpdateMode = UpdateMode::Accumulate { threshold: 0.01 };
    const IMM: UpdateMode = UpdateMode::Immediate { threshold: 0.1 };

    #[test]
    fn defaults_and_resolutions() {
        let rule = UpdateRule::new(512, 1024);
        assert_eq!(rule.eta_phase, 0.015);
        assert_eq!(rule.eta_magnitude, 0.012);
        assert_eq!(rule.mode, UpdateMode::Accumulate { threshold: 0.01 });
        assert!((rule.resolution_phase() - std::f32::consts::TAU / 512.0).abs() < 1e-9);
        assert!((rule.resolution_magnitude() - std::f32::consts::TAU / 1023.0).abs() < 1e-9);
        assert_eq!(AccumulationScaling::default(), AccumulationScaling::Sqrt);
    }

    #[test]
    fn request_uses_eta_over_resolution() {
        // r = −η·g/res; g = −res/η·0.02 gives r = 0.02 ≥ 0.01 → one step up.
        let rule = UpdateRule::new(512, 1024);
        let gp = -0.02 * rule.resolution_phase() / rule.eta_phase;
        let gm = 0.02 * rule.resolution_magnitude() / rule.eta_magnitude;
        let (mut p, mut q) = ([5u16], [5u16]);
        let (mut ap, mut am) = ([0.0f32], [0.0f32]);
        assert_eq!(
            apply(&rule, &mut p, &mut q, &mut ap, &mut am, &[gp], &[gm]),
            2
        );
        assert_eq!((p, q), ([6], [4]));
        assert_eq!((ap, am), ([0.0], [0.0]));
        // Half of that (r = 0.005) only accumulates.
        assert_eq!(
            apply(
                &rule,
                &mut p,
                &mut q,
                &mut ap,
                &mut am,
                &[gp / 4.0],
                &[gm / 4.0]
            ),
            0
        );
        assert!((ap[0] - 0.005).abs() < 1e-6 && (am[0] + 0.005).abs() < 1e-6);
    }

    #[test]
    fn sign_convention_positive_gradient_moves_down() {
        for mode in [ACC, IMM] {
            let rule = unit_rule(16, 16, mode);
            let (mut p, mut q) = ([5u16, 5], [5u16, 5]);
            let (mut ap, mut am) = ([0.0f32; 2], [0.0f32; 2]);
            let n = apply(
                &rule,
                &mut p,
                &mut q,
                &mut ap,
                &mut am,
                &[1.0, -1.0],
                &[1.0, -1.0],
            );
            assert_eq!(n, 4);
            assert_eq!(p, [4, 6]);
            assert_eq!(q, [4, 6]);
        }
    }

    #[test]
    fn accumulate_threshold_just_below_and_at() {
        let rule = unit_rule(16, 16, ACC);
        let (mut p, mut q) = ([3u16; 2], [3u16; 2]);
        let (mut ap, mut am) = ([0.0f32; 2], [0.0f32; 2]);
        // Just below: r = 0.0099 (dim 0), −0.0099 (dim 1).
        let g = [-0.0099f32, 0.0099];
        assert_eq!(apply(&rule, &mut p, &mut q, &mut ap, &mut am, &g, &g), 0);
        assert_eq!((p, q), ([3; 2], [3; 2]));
        assert_eq!(ap, [0.0099, -0.0099]);
        assert_eq!(am, [0.0099, -0.0099]);
        // At the threshold exactly: r = ±0.01.
        let rule = unit_rule(16, 16, ACC);
        let (mut p, mut q) = ([3u16; 2], [3u16; 2]);
        let (mut ap, mut am) = ([0.0f32; 2], [0.0f32; 2]);
        let g = [-0.01f32, 0.01];
        assert_eq!(apply(&rule, &mut p, &mut q, &mut ap, &mut am, &g, &g), 4);
        assert_eq!((p, q), ([4, 2], [4, 2]));
        assert_eq!((ap, am), ([0.0; 2], [0.0; 2]));
    }

    #[test]
    fn accumulate_resets_only_stepped_dimensions() {
        let rule = unit_rule(16, 16, ACC);
        let (mut p, mut q) = ([3u16; 3], [3u16; 3]);
        let mut ap = [0.008f32, -0.008, 0.0];
        let mut am = [0.0f32, 0.009, -0.002];
        // Dim 0 phase reaches 0.011 → steps; dim 1 phase goes to −0.007; dim 2 to 0.003.
        // Magnitude: dim 1 reaches 0.012 → steps; dims 0 and 2 stay below.
        let gp = [-0.003f32, -0.001, -0.003];
        let gm = [-0.005f32, -0.003, 0.001];
        assert_eq!(apply(&rule, &mut p, &mut q, &mut ap, &mut am, &gp, &gm), 2);
        assert_eq!(p, [4, 3, 3]);
        assert_eq!(q, [3, 4, 3]);
        assert_eq!(ap[0], 0.0);
        assert!(
            (ap[1] + 0.007).abs() < 1e-7 && (ap[2] - 0.003).abs() < 1e-7,
            "{ap:?}"
        );
        assert_eq!(am[1], 0.0);
        assert!(
            (am[0] - 0.005).abs() < 1e-7 && (am[2] + 0.003).abs() < 1e-7,
            "{am:?}"
        );
    }

    #[test]
    fn accumulate_across_calls_reaches_threshold() {
        let rule = unit_rule(16, 16, ACC);
        let (mut p, mut q) = ([8u16], [8u16]);
        let (mut ap, mut am) = ([0.0f32], [0.0f32]);
        let mut changes = Vec::new();
        for _ in 0..6 {
            changes.push(apply(
                &rule,
                &mut p,
                &mut q,
                &mut ap,
                &mut am,
                &[0.004],
                &[-0.004],
            ));
        }
        // 0.004, 0.008, 0.012 → step, reset; 0.004, 0.008, 0.012 → step.
        assert_eq!(changes, [0, 0, 2, 0, 0, 2]);
        assert_eq!((p, q), ([6], [10]));
        assert_eq!((ap, am), ([0.0], [0.0]));
        // Opposite requests cancel in the accumulator.
        apply(&rule, &mut p, &mut q, &mut ap, &mut am, &[0.006], &[0.0]);
        apply(&rule, &mut p, &mut q, &mut ap, &mut am, &[-0.006], &[0.0]);
        assert_eq!((p, ap[0]), ([6], 0.0));
    }

    #[test]
    fn immediate_threshold_and_no_accumulator() {
        let rule = unit_rule(16, 16, IMM);
        let (mut p, mut q) = ([3u16; 3], [3u16; 3]);
        let mut ap = [0.5f32, -0.5, 0.25];
        let mut am = [0.5f32, -0.5, 0.25];
        // r = 0.0999 (drop), 0.1 (step up), −0.3 (step down).
        let g = [-0.0999f32, -0.1, 0.3];
        assert_eq!(apply(&rule, &mut p, &mut q, &mut ap, &mut am, &g, &g), 4);
        assert_eq!(p, [3, 4, 2]);
        assert_eq!(q, [3, 4, 2]);
        assert_eq!(ap, [0.5, -0.5, 0.25]);
        assert_eq!(am, [0.5, -0.5, 0.25]);
        // Small requests never add up in Immediate mode.
        for _ in 0..20 {
            apply(
                &rule,
                &mut p,
                &mut q,
                &mut ap,
                &mut am,
                &[-0.09; 3],
                &[-0.09; 3],
            );
        }
        assert_eq!(p, [3, 4, 2]);
        // Empty accumulators are allowed in Immediate mode.
        assert_eq!(
            apply(
                &rule,
                &mut p,
                &mut q,
                &mut [],
                &mut [],
                &[1.0; 3],
                &[0.0; 3]
            ),
            3
        );
        assert_eq!(p, [2, 3, 1]);
    }

    #[test]
    fn phase_wraps_at_both_ends() {
        for mode in [ACC, IMM] {
            let rule = unit_rule(16, 16, mode);
            let mut p = [0u16, 15, 0, 15];
            let mut q = [5u16; 4];
            let (mut ap, mut am) = ([0.0f32; 4], [0.0f32; 4]);
            // 0 down → 15; 15 up → 0; 0 up → 1; 15 down → 14.
            let g = [1.0f32, -1.0, -1.0, 1.0];
            assert_eq!(
                apply(&rule, &mut p, &mut q, &mut ap, &mut am, &g, &[0.0; 4]),
                4
            );
            assert_eq!(p, [15, 0, 1, 14]);
            assert_eq!(q, [5; 4]);
        }
        // The largest N: 65535 + 1 wraps to 0 and back.
        let rule = unit_rule(65536, 16, IMM);
        let mut p = [65535u16];
        apply(&rule, &mut p, &mut [0], &mut [], &mut [], &[-1.0], &[0.0]);
        assert_eq!(p, [0]);
        apply(&rule, &mut p, &mut [0], &mut [], &mut [], &[1.0], &[0.0]);
        assert_eq!(p, [65535]);
    }

    #[test]
    fn magnitude_clamps_and_does_not_count() {
        for mode in [ACC, IMM] {
            let rule = unit_rule(16, 16, mode);
            let mut p = [7u16; 4];
            let mut q = [0u16, 15, 0, 15];
            let (mut ap, mut am) = ([0.0f32; 4], [0.0f32; 4]);
            // 0 down (clamped), 15 up (clamped), 0 up → 1, 15 down → 14.
            let g = [1.0f32, -1.0, -1.0, 1.0];
            assert_eq!(
                apply(&rule, &mut p, &mut q, &mut ap, &mut am, &[0.0; 4], &g),
                2
            );
            assert_eq!(q, [0, 15, 1, 14]);
            assert_eq!(p, [7; 4]);
            // The clamped accumulators were reset too.
            assert_eq!(am, [0.0; 4]);
        }
    }

    #[test]
    fn non_finite_requests_are_ignored() {
        let rule = unit_rule(16, 16, ACC);
        let (mut p, mut q) = ([3u16; 2], [3u16; 2]);
        let (mut ap, mut am) = ([0.005f32; 2], [0.005f32; 2]);
        let g = [f32::NAN, f32::INFINITY];
        assert_eq!(apply(&rule, &mut p, &mut q, &mut ap, &mut am, &g, &g), 0);
        assert_eq!((p, q, ap, am), ([3; 2], [3; 2], [0.005; 2], [0.005; 2]));
    }

    #[test]
    fn zero_threshold_does_not_step_on_zero() {
        let rule = unit_rule(16, 16, UpdateMode::Immediate { threshold: 0.0 });
        let (mut p, mut q) = ([3u16], [3u16]);
        assert_eq!(
            apply(&rule, &mut p, &mut q, &mut [], &mut [], &[0.0], &[-0.0]),
            0
        );
        let rule = unit_rule(16, 16, UpdateMode::Accumulate { threshold: 0.0 });
        assert_eq!(
            apply(
                &rule,
                &mut p,
                &mut q,
                &mut [0.0],
                &mut [0.0],
                &[0.0],
                &[0.0]
            ),
            0
        );
        assert_eq!((p, q), ([3], [3]));
    }

    #[test]
    fn accumulation_averages_with_sqrt_scaling() {
        let mut acc = GradientAccumulation::new(4, 2, 4, AccumulationScaling::Sqrt);
        // Sample 1: nodes 2 and 0; sample 2: node 2; samples 3, 4: nothing; node 3 gets zeros.
        acc.add(2, &[1.0, -2.0], &[0.5, 0.0]);
        acc.add(0, &[4.0, 0.0], &[0.0, 8.0]);
        acc.add(3, &[0.0, 0.0], &[0.0, 0.0]);
        assert!(!acc.finish_sample());
        acc.add(2, &[3.0, 2.0], &[1.5, 0.0]);
        assert!(!acc.finish_sample());
        assert!(!acc.finish_sample());
        assert!(!acc.ready());
        assert!(acc.finish_sample());
        assert!(acc.ready());
        assert_eq!(acc.samples(), 4);
        // Ascending, node 3 (all zeros) and node 1 (never added) excluded.
        assert_eq!(acc.nodes().collect::<Vec<_>>(), [0, 2]);
        // factor = √4 / 4 = 0.5: node 2 sums (4, 0) / (2, 0) → (2, 0) / (1, 0).
        assert_eq!(acc.factor(), 0.5);
        assert_eq!(acc.take(2), (&[2.0f32, 0.0][..], &[1.0f32, 0.0][..]));
        assert_eq!(acc.take(0), (&[2.0f32, 0.0][..], &[0.0f32, 4.0][..]));
        assert_eq!(acc.take(1), (&[0.0f32, 0.0][..], &[0.0f32, 0.0][..]));
    }

    #[test]
    fn accumulation_plain_average_and_reset() {
        let mut acc = GradientAccumulation::new(3, 1, 2, AccumulationScaling::None);
        acc.add(1, &[3.0], &[-1.0]);
        assert!(!acc.finish_sample());
        acc.add(1, &[1.0], &[-2.0]);
        acc.add(0, &[0.5], &[0.0]);
        assert!(acc.finish_sample());
        assert_eq!(acc.nodes().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(acc.take(1), (&[2.0f32][..], &[-1.5f32][..]));
        assert_eq!(acc.take(0), (&[0.25f32][..], &[0.0f32][..]));
        acc.reset();
        assert_eq!(acc.samples(), 0);
        assert!(!acc.ready());
        assert_eq!(acc.nodes().count(), 0);
        assert!(acc.state().1.iter().chain(acc.state().2).all(|&v| v == 0.0));
        // The next window starts from zero.
        acc.add(2, &[1.0], &[1.0]);
        assert!(!acc.finish_sample());
        assert!(acc.finish_sample());
        assert_eq!(acc.nodes().collect::<Vec<_>>(), [2]);
        assert_eq!(acc.take(2), (&[0.5f32][..], &[0.5f32][..]));
    }

    #[test]
    fn accumulation_steps_one_is_identity() {
        for scaling in [AccumulationScaling::None, AccumulationScaling::Sqrt] {
            let mut acc = GradientAccumulation::new(2, 3, 1, scaling);
            acc.add(1, &[0.1, -0.2, 0.3], &[1.0, 2.0, 3.0]);
            assert!(acc.finish_sample());
            assert_eq!(
                acc.take(1),
                (&[0.1f32, -0.2, 0.3][..], &[1.0f32, 2.0, 3.0][..])
            );
        }
    }

    #[test]
    fn accumulation_state_round_trips() {
        let mut acc = GradientAccumulation::new(3, 2, 3, AccumulationScaling::Sqrt);
        acc.add(2, &[1.0, 0.0], &[0.0, 0.0]);
        acc.add(0, &[0.0, 0.0], &[0.0, -1.0]);
        assert!(!acc.finish_sample());
        let (samples, sp, sm) = acc.state();
        let (sp, sm) = (sp.to_vec(), sm.to_vec());
        let mut other = GradientAccumulation::new(3, 2, 3, AccumulationScaling::Sqrt);
        other.restore(samples, &sp, &sm);
        for a in [&mut acc, &mut other] {
            a.add(1, &[3.0, 0.0], &[0.0, 0.0]);
            assert!(!a.finish_sample());
            assert!(a.finish_sample());
        }
        assert_eq!(acc.nodes().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(other.nodes().collect::<Vec<_>>(), [0, 1, 2]);
        for node in 0..3 {
            assert_eq!(acc.take(node), other.take(node));
        }
    }

    #[test]
    #[should_panic(expected = "reset first")]
    fn accumulation_add_after_complete_panics() {
        let mut acc = GradientAccumulation::new(1, 1, 1, AccumulationScaling::None);
        assert!(acc.finish_sample());
        acc.add(0, &[1.0], &[1.0]);
    }
}
