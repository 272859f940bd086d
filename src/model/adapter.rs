//! The fixed random input adapter (SPEC 8) and quantisation of its output to indices.
//!
//! Pixels are normalised as `x = (p/255 − 0.1307) / 0.3081`. The default adapter is the
//! prototype's never-trained MLP:
//! `Linear(P→H) → ReLU → LayerNorm → [Dropout] → Linear(H→H) → ReLU → LayerNorm →
//! Linear(H→I·D·2) → tanh`, LayerNorm with γ = 1, β = 0, ε = 1e−5, all biases 0. The
//! alternative [`LinearMap`] is one projection followed by tanh.
//!
//! # Weights
//! Xavier-uniform, `U(−b, b)` with `b = gain·sqrt(6 / (fan_in + fan_out))`, gain √2 for the
//! two hidden layers and 0.5 for the last (1 for `LinearMap`). They are drawn with
//! [`uniform_f32`] layer by layer, each layer in row-major `[out][in]` order; [`Mlp::export`]
//! uses the same canonical layout.
//!
//! # Evaluation order (determinism)
//! Every layer input has the form `a·(r − b·1)` with `r` sparse: the raw pixels scaled to
//! `[0, 1]` (zero background), or a ReLU output before LayerNorm. So a layer is computed as
//! `W·x = a·(Σ_{j: r_j ≠ 0} W[:, j]·r_j − b·rowsum(W))`, columns added in ascending `j`
//! into a zeroed accumulator (f32), with `rowsum` precomputed in f64. With dropout active the
//! dropped-and-scaled hidden vector is used directly (a = 1, b = 0). The order is fixed, so
//! an encoding is bit-identical on every call, and nothing is allocated once the scratch has
//! grown to size.

#![expect(
    unsafe_code,
    reason = "the layer's multiply-add loop uses x86 intrinsics behind runtime feature \
              detection; every unsafe block states what it relies on"
)]

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use thiserror::Error;

use super::rng::uniform_f32;

/// MNIST pixel mean after scaling to `[0, 1]`.
pub const PIXEL_MEAN: f32 = 0.1307;
/// MNIST pixel standard deviation after scaling to `[0, 1]`.
pub const PIXEL_STD: f32 = 0.3081;
/// LayerNorm ε.
pub const LAYER_NORM_EPS: f64 = 1e-5;
/// Xavier gain of the hidden layers.
pub const HIDDEN_GAIN: f64 = std::f64::consts::SQRT_2;
/// Xavier gain of the MLP's last layer.
pub const OUTPUT_GAIN: f64 = 0.5;
/// The most images [`InputAdapter::encode_batch`] encodes at once.
pub const MAX_BATCH: usize = 32;

/// An adapter weight import that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdapterError {
    /// The flat weight vector has the wrong length.
    #[error("adapter weights: expected {expected} values, got {got}")]
    WeightCount {
        /// Number of weights the adapter has.
        expected: usize,
        /// Number given.
        got: usize,
    },
    /// A weight is NaN or infinite.
    #[error("adapter weights: value {index} is not finite")]
    NotFinite {
        /// Position in the flat vector.
        index: usize,
    },
}

/// One fully connected layer without bias, stored transposed (`[in][out]`, so a column of
/// W is contiguous) with the row sums of W.
#[derive(Clone, Debug, PartialEq)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// `wt[j * outputs + i] = W[i][j]`.
    wt: Vec<f32>,
    /// `rowsum[i] = Σ_j W[i][j]`, summed in f64 in ascending j.
    rowsum: Vec<f32>,
}

impl Layer {
    /// Xavier-uniform weights drawn in row-major `[out][in]` order.
    fn xavier(inputs: usize, outputs: usize, gain: f64, rng: &mut ChaCha8Rng) -> Layer {
        let bound = (gain * (6.0 / (inputs + outputs) as f64).sqrt()) as f32;
        let mut layer = Layer {
            inputs,
            outputs,
            wt: vec![0.0; inputs * outputs],
            rowsum: vec![0.0; outputs],
        };
        for i in 0..outputs {
            for j in 0..inputs {
                layer.wt[j * outputs + i] = uniform_f32(rng, -bound, bound);
            }
        }
        layer.update_rowsum();
        layer
    }

    fn update_rowsum(&mut self) {
        for i in 0..self.outputs {
            let mut s = 0.0f64;
            for j in 0..self.inputs {
                s += self.wt[j * self.outputs + i] as f64;
            }
            self.rowsum[i] = s as f32;
        }
    }

    fn len(&self) -> usize {
        self.inputs * self.outputs
    }

    /// Appends W in row-major `[out][in]` order.
    fn export_into(&self, out: &mut Vec<f32>) {
        for i in 0..self.outputs {
            out.extend((0..self.inputs).map(|j| self.wt[j * self.outputs + i]));
        }
    }

    /// Reads W from row-major `[out][in]` values (length already checked).
    fn import_from(&mut self, w: &[f32]) {
        for i in 0..self.outputs {
            for j in 0..self.inputs {
                self.wt[j * self.outputs + i] = w[i * self.inputs + j];
            }
        }
        self.update_rowsum();
    }

    /// `out = a·(W·r − b·rowsum)`, skipping zero entries of `r` (see the module docs).
    #[inline]
    fn apply(&self, r: &[f32], a: f32, b: f32, out: &mut [f32]) {
        self.apply_batch(&[r], &[(a, b)], &mut [out]);
    }

    /// [`Layer::apply`] for several inputs at once: each column of W is read once for all of
    /// them (it is then in L1 for the rest), and every output element sums the same terms in
    /// the same order as alone, so each result is bit-identical to [`Layer::apply`]'s.
    fn apply_batch(&self, rs: &[&[f32]], ab: &[(f32, f32)], outs: &mut [&mut [f32]]) {
        debug_assert!(rs.iter().all(|r| r.len() == self.inputs));
        debug_assert!(outs.iter().all(|o| o.len() == self.outputs));
        let axpy = Axpy::detect();
        for out in outs.iter_mut() {
            out.fill(0.0);
        }
        for j in 0..self.inputs {
            let col = &self.wt[j * self.outputs..(j + 1) * self.outputs];
            for (r, out) in rs.iter().zip(outs.iter_mut()) {
                let v = r[j];
                if v != 0.0 {
                    axpy.run(out, col, v);
                }
            }
        }
        for (out, &(a, b)) in outs.iter_mut().zip(ab) {
            if b == 0.0 {
                if a != 1.0 {
                    out.iter_mut().for_each(|o| *o *= a);
                }
            } else {
                for (o, &s) in out.iter_mut().zip(&self.rowsum) {
                    *o = a * (*o - b * s);
                }
            }
        }
    }
}

/// `out += v·col` element by element: a multiply, then an add (never fused), so every
/// instruction set gives the same bits. The crate is compiled for baseline x86-64, where the
/// plain loop runs 4 lanes wide; the wider loops are chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axpy {
    /// Plain Rust (SSE2 on x86-64).
    Plain,
    /// 8 lanes with AVX.
    #[cfg(target_arch = "x86_64")]
    Avx,
    /// 16 lanes with AVX-512 F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Axpy {
    /// The widest loop this CPU runs.
    fn detect() -> Axpy {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Axpy::Avx512;
            }
            if std::is_x86_feature_detected!("avx") {
                return Axpy::Avx;
            }
        }
        Axpy::Plain
    }

    #[inline]
    fn run(self, out: &mut [f32], col: &[f32], v: f32) {
        debug_assert_eq!(out.len(), col.len());
        match self {
            Axpy::Plain => axpy(out, col, v),
            // SAFETY: `detect` chose these only on CPUs with the features.
            #[cfg(target_arch = "x86_64")]
            Axpy::Avx => unsafe { axpy_avx(out, col, v) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Axpy::Avx512 => unsafe { axpy_avx512(out, col, v) },
        }
    }
}

/// `out += v·col`, element by element (vectorises; each element's sum order is fixed).
#[inline]
fn axpy(out: &mut [f32], col: &[f32], v: f32) {
    const LANES: usize = 16;
    let mut o = out.chunks_exact_mut(LANES);
    let mut c = col.chunks_exact(LANES);
    for (o, c) in (&mut o).zip(&mut c) {
        for k in 0..LANES {
            o[k] += v * c[k];
        }
    }
    for (o, &c) in o.into_remainder().iter_mut().zip(c.remainder()) {
        *o += v * c;
    }
}

/// [`axpy`] 8 lanes at a time.
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn axpy_avx(out: &mut [f32], col: &[f32], v: f32) {
    use std::arch::x86_64::*;
    let n = out.len().min(col.len());
    let vv = _mm256_set1_ps(v);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, within both slices.
        unsafe {
            let o = _mm256_loadu_ps(out.as_ptr().add(i));
            let c = _mm256_loadu_ps(col.as_ptr().add(i));
            _mm256_storeu_ps(
                out.as_mut_ptr().add(i),
                _mm256_add_ps(o, _mm256_mul_ps(vv, c)),
            );
        }
        i += 8;
    }
    axpy(&mut out[i..n], &col[i..n], v);
}

/// [`axpy`] 16 lanes at a time.
///
/// # Safety
/// The CPU must support AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn axpy_avx512(out: &mut [f32], col: &[f32], v: f32) {
    use std::arch::x86_64::*;
    let n = out.len().min(col.len());
    let vv = _mm512_set1_ps(v);
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, within both slices.
        unsafe {
            let o = _mm512_loadu_ps(out.as_ptr().add(i));
            let c = _mm512_loadu_ps(col.as_ptr().add(i));
            _mm512_storeu_ps(
                out.as_mut_ptr().add(i),
                _mm512_add_ps(o, _mm512_mul_ps(vv, c)),
            );
        }
        i += 16;
    }
    axpy(&mut out[i..n], &col[i..n], v);
}

/// ReLU of `h` into `r`; returns LayerNorm's (mean, 1/σ) of `r` with σ = sqrt(var + ε),
/// population variance, two passes in f64 in index order.
fn relu_stats(h: &[f32], r: &mut [f32]) -> (f32, f32) {
    let mut sum = 0.0f64;
    for (r, &h) in r.iter_mut().zip(h) {
        *r = h.max(0.0);
        sum += *r as f64;
    }
    let n = h.len() as f64;
    let mean = sum / n;
    let var = r.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + LAYER_NORM_EPS).sqrt()) as f32)
}

/// Pixel normalisation as a layer input `a·(r − b)`: `r = p/255`, `a = 1/0.3081`,
/// `b = 0.1307`. Returns (a, b).
fn normalise_pixels(image: &[u8], r: &mut [f32]) -> (f32, f32) {
    for (r, &p) in r.iter_mut().zip(image) {
        *r = p as f32 / 255.0;
    }
    (1.0 / PIXEL_STD, PIXEL_MEAN)
}

/// The prototype's fixed random MLP (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    dropout: f32,
    l1: Layer,
    l2: Layer,
    l3: Layer,
}

impl Mlp {
    /// Draws the weights: `pixels → hidden → hidden → outputs` (`outputs = I·D·2`).
    ///
    /// # Panics
    /// If a size is 0 or `dropout` is not in `[0, 1)`.
    pub fn new(
        pixels: usize,
        hidden: usize,
        outputs: usize,
        dropout: f32,
        rng: &mut ChaCha8Rng,
    ) -> Mlp {
        assert!(
            pixels > 0 && hidden > 0 && outputs > 0,
            "adapter sizes must be positive"
        );
        assert!(
            (0.0..1.0).contains(&dropout),
            "dropout must be in [0, 1), got {dropout}"
        );
        let l1 = Layer::xavier(pixels, hidden, HIDDEN_GAIN, rng);
        let l2 = Layer::xavier(hidden, hidden, HIDDEN_GAIN, rng);
        let l3 = Layer::xavier(hidden, outputs, OUTPUT_GAIN, rng);
        Mlp {
            dropout,
            l1,
            l2,
            l3,
        }
    }

    /// P, the input length.
    pub fn pixels(&self) -> usize {
        self.l1.inputs
    }

    /// H, the hidden width.
    pub fn hidden(&self) -> usize {
        self.l1.outputs
    }

    /// The dropout probability after the first hidden layer.
    pub fn dropout(&self) -> f32 {
        self.dropout
    }

    /// Output length.
    pub fn output_len(&self) -> usize {
        self.l3.outputs
    }

    /// Number of weights (biases are fixed at 0 and not stored).
    pub fn weight_count(&self) -> usize {
        self.l1.len() + self.l2.len() + self.l3.len()
    }

    /// All weights: W1 `[H][P]`, W2 `[H][H]`, W3 `[out][H]`, each row-major, concatenated.
    pub fn export(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.weight_count());
        for l in [&self.l1, &self.l2, &self.l3] {
            l.export_into(&mut out);
        }
        out
    }

    /// Replaces all weights from the [`Mlp::export`] layout.
    ///
    /// # Errors
    /// Wrong length or a non-finite value; the adapter is unchanged then.
    pub fn import(&mut self, w: &[f32]) -> Result<(), AdapterError> {
        check_weights(w, self.weight_count())?;
        let (a, rest) = w.split_at(self.l1.len());
        let (b, c) = rest.split_at(self.l2.len());
        self.l1.import_from(a);
        self.l2.import_from(b);
        self.l3.import_from(c);
        Ok(())
    }

    fn encode(
        &self,
        image: &[u8],
        dropout_rng: Option<&mut ChaCha8Rng>,
        s: &mut AdapterScratch,
        out: &mut [f32],
    ) {
        self.encode_batch(
            &[image],
            &mut [dropout_rng],
            std::slice::from_mut(s),
            &mut [out],
        );
    }

    /// [`Mlp::encode`] of up to [`MAX_BATCH`] images at once (each layer's columns read once
    /// for all of them), each with its own dropout RNG and scratch; every result is
    /// bit-identical to encoding the image alone.
    fn encode_batch(
        &self,
        images: &[&[u8]],
        dropout_rngs: &mut [Option<&mut ChaCha8Rng>],
        s: &mut [AdapterScratch],
        outs: &mut [&mut [f32]],
    ) {
        let (p, h, n) = (self.pixels(), self.hidden(), images.len());
        assert!(n <= MAX_BATCH && s.len() >= n && outs.len() >= n && dropout_rngs.len() >= n);
        let mut ab = [(0.0f32, 0.0f32); MAX_BATCH];
        let mut dropped = [false; MAX_BATCH];
        for ((image, sc), ab) in images.iter().zip(s.iter_mut()).zip(&mut ab) {
            sc.fit(p, h);
            *ab = normalise_pixels(image, &mut sc.input);
        }
        let mut ins: [&[f32]; MAX_BATCH] = [&[]; MAX_BATCH];
        let mut pres: [&mut [f32]; MAX_BATCH] = std::array::from_fn(|_| Default::default());
        for (i, sc) in s.iter_mut().take(n).enumerate() {
            ins[i] = &sc.input;
            pres[i] = &mut sc.pre;
        }
        self.l1.apply_batch(&ins[..n], &ab[..n], &mut pres[..n]);

        let rngs = dropout_rngs.iter_mut().zip(ab.iter_mut().zip(&mut dropped));
        for (sc, (rng, (ab, dropped))) in s.iter_mut().zip(rngs).take(n) {
            let (mean, inv) = relu_stats(&sc.pre, &mut sc.relu);
            for (y, &r) in sc.hidden1.iter_mut().zip(&sc.relu) {
                *y = (r - mean) * inv;
            }
            *ab = (inv, mean);
            if let Some(rng) = rng.as_deref_mut().filter(|_| self.dropout > 0.0) {
                // One u32 per hidden unit in index order; drop when it is below p·2^32.
                let threshold = (self.dropout as f64 * 4_294_967_296.0).round() as u64;
                let keep_scale = 1.0 / (1.0 - self.dropout);
                for (d, &y) in sc.dropped.iter_mut().zip(&sc.hidden1) {
                    *d = if (rng.next_u32() as u64) < threshold {
                        0.0
                    } else {
                        y * keep_scale
                    };
                }
                // The dropped vector is the layer input itself (a = 1, b = 0).
                *ab = (1.0, 0.0);
                *dropped = true;
            }
        }
        let mut ins: [&[f32]; MAX_BATCH] = [&[]; MAX_BATCH];
        let mut pres: [&mut [f32]; MAX_BATCH] = std::array::from_fn(|_| Default::default());
        for (i, sc) in s.iter_mut().take(n).enumerate() {
            ins[i] = if dropped[i] { &sc.dropped } else { &sc.relu };
            pres[i] = &mut sc.pre;
        }
        self.l2.apply_batch(&ins[..n], &ab[..n], &mut pres[..n]);

        for (sc, ab) in s.iter_mut().zip(&mut ab).take(n) {
            let (mean, inv) = relu_stats(&sc.pre, &mut sc.relu);
            for (y, &r) in sc.hidden2.iter_mut().zip(&sc.relu) {
                *y = (r - mean) * inv;
            }
            *ab = (inv, mean);
        }
        let mut ins: [&[f32]; MAX_BATCH] = [&[]; MAX_BATCH];
        for (i, sc) in s.iter().take(n).enumerate() {
            ins[i] = &sc.relu;
        }
        self.l3.apply_batch(&ins[..n], &ab[..n], &mut outs[..n]);
        for out in outs.iter_mut().take(n) {
            out.iter_mut().for_each(|o| *o = o.tanh());
        }
    }
}

/// The `Linear` alternative: one Xavier (gain 1) projection of the normalised pixels, then
/// tanh.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearMap {
    layer: Layer,
}

impl LinearMap {
    /// Draws the projection `pixels → outputs`.
    ///
    /// # Panics
    /// If a size is 0.
    pub fn new(pixels: usize, outputs: usize, rng: &mut ChaCha8Rng) -> LinearMap {
        assert!(pixels > 0 && outputs > 0, "adapter sizes must be positive");
        LinearMap {
            layer: Layer::xavier(pixels, outputs, 1.0, rng),
        }
    }

    /// P, the input length.
    pub fn pixels(&self) -> usize {
        self.layer.inputs
    }

    /// Output length.
    pub fn output_len(&self) -> usize {
        self.layer.outputs
    }

    /// Number of weights.
    pub fn weight_count(&self) -> usize {
        self.layer.len()
    }

    /// The weights W `[out][P]`, row-major.
    pub fn export(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.weight_count());
        self.layer.export_into(&mut out);
        out
    }

    /// Replaces the weights from the [`LinearMap::export`] layout.
    ///
    /// # Errors
    /// Wrong length or a non-finite value; the adapter is unchanged then.
    pub fn import(&mut self, w: &[f32]) -> Result<(), AdapterError> {
        check_weights(w, self.weight_count())?;
        self.layer.import_from(w);
        Ok(())
    }

    fn encode(&self, image: &[u8], s: &mut AdapterScratch, out: &mut [f32]) {
        s.fit(self.pixels(), 0);
        let (a, b) = normalise_pixels(image, &mut s.input);
        self.layer.apply(&s.input, a, b, out);
        out.iter_mut().for_each(|o| *o = o.tanh());
    }
}

fn check_weights(w: &[f32], expected: usize) -> Result<(), AdapterError> {
    if w.len() != expected {
        return Err(AdapterError::WeightCount {
            expected,
            got: w.len(),
        });
    }
    match w.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(AdapterError::NotFinite { index }),
        None => Ok(()),
    }
}

/// Reusable buffers for [`InputAdapter::encode`]; grows on first use, then never allocates.
#[derive(Clone, Debug, Default)]
pub struct AdapterScratch {
    input: Vec<f32>,
    pre: Vec<f32>,
    relu: Vec<f32>,
    hidden1: Vec<f32>,
    dropped: Vec<f32>,
    hidden2: Vec<f32>,
}

impl AdapterScratch {
    fn fit(&mut self, pixels: usize, hidden: usize) {
        self.input.resize(pixels, 0.0);
        for v in [
            &mut self.pre,
            &mut self.relu,
            &mut self.hidden1,
            &mut self.dropped,
            &mut self.hidden2,
        ] {
            v.resize(hidden, 0.0);
        }
    }

    /// The MLP's first hidden layer after ReLU and LayerNorm (before dropout), from the last
    /// encode.
    pub fn hidden1(&self) -> &[f32] {
        &self.hidden1
    }

    /// The MLP's second hidden layer after ReLU and LayerNorm, from the last encode.
    pub fn hidden2(&self) -> &[f32] {
        &self.hidden2
    }
}

/// The fixed random input adapter: image pixels to `I·D·2` values in (−1, 1).
#[derive(Clone, Debug, PartialEq)]
pub enum InputAdapter {
    /// The prototype's MLP (default).
    Mlp(Mlp),
    /// One random projection + tanh.
    Linear(LinearMap),
}

impl InputAdapter {
    /// The default MLP adapter for `input_nodes` nodes of dimension `dim`; weights from `rng`
    /// (the `adapter` stream).
    ///
    /// # Panics
    /// If a size is 0 or `dropout` is not in `[0, 1)`.
    pub fn mlp(
        pixels: usize,
        hidden: usize,
        input_nodes: usize,
        dim: usize,
        dropout: f32,
        rng: &mut ChaCha8Rng,
    ) -> InputAdapter {
        InputAdapter::Mlp(Mlp::new(
            pixels,
            hidden,
            input_nodes * dim * 2,
            dropout,
            rng,
        ))
    }

    /// The `Linear` adapter for `input_nodes` nodes of dimension `dim`.
    ///
    /// # Panics
    /// If a size is 0.
    pub fn linear(
        pixels: usize,
        input_nodes: usize,
        dim: usize,
        rng: &mut ChaCha8Rng,
    ) -> InputAdapter {
        InputAdapter::Linear(LinearMap::new(pixels, input_nodes * dim * 2, rng))
    }

    /// P, the expected image length.
    pub fn pixels(&self) -> usize {
        match self {
            InputAdapter::Mlp(m) => m.pixels(),
            InputAdapter::Linear(l) => l.pixels(),
        }
    }

    /// Output length, `input_nodes · dim · 2`.
    pub fn output_len(&self) -> usize {
        match self {
            InputAdapter::Mlp(m) => m.output_len(),
            InputAdapter::Linear(l) => l.output_len(),
        }
    }

    /// Whether [`InputAdapter::encode`] can depend on a dropout RNG (MLP with p > 0).
    pub fn has_dropout(&self) -> bool {
        matches!(self, InputAdapter::Mlp(m) if m.dropout > 0.0)
    }

    /// Encodes one image (P bytes) into `out` (`output_len()` values in (−1, 1), laid out
    /// `[node][dim][phase, magnitude]`).
    ///
    /// Dropout is applied only when `dropout_rng` is given and p > 0 (training); it then
    /// draws one `u32` per hidden unit. Without it the result depends on the image alone.
    ///
    /// # Panics
    /// If `image` or `out` has the wrong length.
    pub fn encode(
        &self,
        image: &[u8],
        dropout_rng: Option<&mut ChaCha8Rng>,
        scratch: &mut AdapterScratch,
        out: &mut [f32],
    ) {
        assert_eq!(image.len(), self.pixels(), "adapter: image length");
        assert_eq!(out.len(), self.output_len(), "adapter: output length");
        match self {
            InputAdapter::Mlp(m) => m.encode(image, dropout_rng, scratch, out),
            InputAdapter::Linear(l) => l.encode(image, scratch, out),
        }
    }

    /// [`InputAdapter::encode`] without dropout of up to [`MAX_BATCH`] images at once, each
    /// into its own `outs` slice: the MLP reads each weight column once for all of them (the
    /// batch shares what a single encoding streams from memory). Every result is
    /// bit-identical to encoding the image alone. `scratch` grows to the batch size.
    ///
    /// # Panics
    /// If there are more than [`MAX_BATCH`] images, fewer outputs than images, or a wrong
    /// length.
    pub fn encode_batch(
        &self,
        images: &[&[u8]],
        scratch: &mut Vec<AdapterScratch>,
        outs: &mut [&mut [f32]],
    ) {
        let n = images.len();
        assert!(
            n <= MAX_BATCH,
            "adapter: at most {MAX_BATCH} images per batch"
        );
        assert!(outs.len() >= n, "adapter: fewer outputs than images");
        assert!(
            images.iter().all(|i| i.len() == self.pixels()),
            "adapter: image length"
        );
        assert!(
            outs.iter().all(|o| o.len() == self.output_len()),
            "adapter: output length"
        );
        if scratch.len() < n {
            scratch.resize_with(n, AdapterScratch::default);
        }
        match self {
            InputAdapter::Mlp(m) => {
                let mut rngs: [Option<&mut ChaCha8Rng>; MAX_BATCH] = Default::default();
                m.encode_batch(images, &mut rngs[..n], scratch, outs);
            }
            InputAdapter::Linear(l) => {
                for (image, out) in images.iter().zip(outs.iter_mut()) {
                    l.encode(image, &mut scratch[0], out);
                }
            }
        }
    }

    /// Number of weights in [`InputAdapter::export`].
    pub fn weight_count(&self) -> usize {
        match self {
            InputAdapter::Mlp(m) => m.weight_count(),
            InputAdapter::Linear(l) => l.weight_count(),
        }
    }

    /// All weights as one flat vector, each layer row-major `[out][in]`, in layer order.
    pub fn export(&self) -> Vec<f32> {
        match self {
            InputAdapter::Mlp(m) => m.export(),
            InputAdapter::Linear(l) => l.export(),
        }
    }

    /// Replaces all weights from the [`InputAdapter::export`] layout (for checkpoints).
    ///
    /// # Errors
    /// Wrong length or a non-finite value; the adapter is unchanged then.
    pub fn import(&mut self, w: &[f32]) -> Result<(), AdapterError> {
        match self {
            InputAdapter::Mlp(m) => m.import(w),
            InputAdapter::Linear(l) => l.import(w),
        }
    }
}

/// Quantises adapter output `y` (`[node][dim][phase, magnitude]`, values in [−1, 1]) into
/// `phase_out` and `mag_out` (`[node][dim]`):
/// `φ = clamp(floor((y+1)/2 · N), 0, N−1)`, `μ = clamp(floor((y+1)/2 · M), 0, M−1)`,
/// computed in f64. NaN maps to 0.
pub fn quantize(
    y: &[f32],
    phase_bins: u32,
    magnitude_bins: u32,
    phase_out: &mut [u16],
    mag_out: &mut [u16],
) {
    assert_eq!(
        y.len(),
        phase_out.len() * 2,
        "quantize: y must be 2 × outputs"
    );
    assert_eq!(phase_out.len(), mag_out.len(), "quantize: output lengths");
    #[inline]
    fn bin(v: f32, bins: u32) -> u16 {
        let x = ((v as f64 + 1.0) * 0.5 * bins as f64).floor();
        // `as i64` saturates and maps NaN to 0.
        (x as i64).clamp(0, bins as i64 - 1) as u16
    }
    for ((pair, p), m) in y.chunks_exact(2).zip(phase_out).zip(mag_out) {
        *p = bin(pair[0], phase_bins);
        *m = bin(pair[1], magnitude_bins);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::{Stream, stream, stream_with};

    const P: usize = 49;
    const H: usize = 40;

    fn image(seed: u64) -> Vec<u8> {
        // MNIST-like: mostly background, some bright pixels.
        let mut r = stream_with(seed, "test-image", 0);
        (0..P)
            .map(|_| {
                let x = r.next_u32();
                if x & 3 == 0 { (x >> 8) as u8 } else { 0 }
            })
            .collect()
    }

    /// Every multiply-add loop the CPU has gives the plain loop's bits, at lengths with and
    /// without a remainder.
    #[test]
    fn every_axpy_loop_gives_the_plain_bits() {
        let mut r = stream_with(5, "test-axpy", 0);
        let mut f = || (r.next_u32() as f32 / u32::MAX as f32 - 0.5) * 3.0;
        for len in [1usize, 7, 16, 31, 64, 100, 2000] {
            let col: Vec<f32> = (0..len).map(|_| f()).collect();
            let start: Vec<f32> = (0..len).map(|_| f()).collect();
            let v = f();
            let mut plain = start.clone();
            axpy(&mut plain, &col, v);
            let mut loops = vec![Axpy::Plain];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx") {
                    loops.push(Axpy::Avx);
                }
                if std::is_x86_feature_detected!("avx512f") {
                    loops.push(Axpy::Avx512);
                }
            }
            for a in loops {
                let mut out = start.clone();
                a.run(&mut out, &col, v);
                let bits = |x: &[f32]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out), bits(&plain), "{a:?} at length {len}");
            }
        }
    }

    /// A batch encodes every image exactly as encoding it alone does, whatever the batch size
    /// and its neighbours (blank images included), for both adapters.
    #[test]
    fn a_batch_encodes_each_image_as_alone() {
        let linear = InputAdapter::linear(P, 6, 3, &mut stream(12, Stream::Adapter));
        for adapter in [small_mlp(0.25), small_mlp(0.0), linear] {
            let n = adapter.output_len();
            let images: Vec<Vec<u8>> = (0..MAX_BATCH as u64)
                .map(|i| {
                    if i % 7 == 3 {
                        vec![0; P]
                    } else {
                        image(100 + i)
                    }
                })
                .collect();
            let mut s = AdapterScratch::default();
            let alone: Vec<Vec<u32>> = images
                .iter()
                .map(|img| {
                    let mut out = vec![0.0; n];
                    adapter.encode(img, None, &mut s, &mut out);
                    out.iter().map(|x| x.to_bits()).collect()
                })
                .collect();
            let mut scratch = Vec::new();
            for size in [1usize, 5, MAX_BATCH] {
                for first in (0..images.len()).step_by(size) {
                    let chunk: Vec<&[u8]> = images[first..(first + size).min(images.len())]
                        .iter()
                        .map(|i| &i[..])
                        .collect();
                    let mut buf = vec![0.0f32; chunk.len() * n];
                    let mut outs: Vec<&mut [f32]> = buf.chunks_exact_mut(n).collect();
                    adapter.encode_batch(&chunk, &mut scratch, &mut outs);
                    for (j, out) in buf.chunks_exact(n).enumerate() {
                        let bits: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
                        assert_eq!(
                            bits,
                            alone[first + j],
                            "batch of {size}, image {}",
                            first + j
                        );
                    }
                }
            }
        }
    }

    fn small_mlp(dropout: f32) -> InputAdapter {
        InputAdapter::mlp(P, H, 6, 3, dropout, &mut stream(11, Stream::Adapter))
    }

    /// Naive dense reference: normalise, then W·x with plain sums in f64.
    fn reference(w: &[f32], image: &[u8]) -> Vec<f64> {
        let ws = |off: usize, i: usize, j: usize, inp: usize| w[off + i * inp + j] as f64;
        let x: Vec<f64> = image
            .iter()
            .map(|&p| (p as f64 / 255.0 - 0.1307) / 0.3081)
            .collect();
        let layer = |off: usize, inp: &[f64], outs: usize| -> Vec<f64> {
            (0..outs)
                .map(|i| {
                    (0..inp.len())
                        .map(|j| ws(off, i, j, inp.len()) * inp[j])
                        .sum()
                })
                .collect()
        };
        let ln = |h: Vec<f64>| -> Vec<f64> {
            let r: Vec<f64> = h.into_iter().map(|v| v.max(0.0)).collect();
            let m = r.iter().sum::<f64>() / r.len() as f64;
            let v = r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / r.len() as f64;
            r.iter().map(|x| (x - m) / (v + 1e-5).sqrt()).collect()
        };
        let h1 = ln(layer(0, &x, H));
        let h2 = ln(layer(P * H, &h1, H));
        layer(P * H + H * H, &h2, 36)
            .into_iter()
            .map(f64::tanh)
            .collect()
    }

    #[test]
    fn mlp_matches_dense_reference_and_is_bounded() {
        let a = small_mlp(0.0);
        assert_eq!(a.output_len(), 36);
        assert_eq!(a.weight_count(), P * H + H * H + H * 36);
        let w = a.export();
        let mut s = AdapterScratch::default();
        let mut out = vec![0.0; 36];
        for seed in 0..4 {
            let img = image(seed);
            a.encode(&img, None, &mut s, &mut out);
            let want = reference(&w, &img);
            for (o, r) in out.iter().zip(&want) {
                assert!(*o > -1.0 && *o < 1.0);
                assert!((*o as f64 - r).abs() < 1e-4, "{o} vs {r}");
            }
        }
    }

    #[test]
    fn weights_are_xavier_bounded_and_deterministic() {
        let a = small_mlp(0.0);
        let b = small_mlp(0.0);
        assert_eq!(a, b);
        let w = a.export();
        let b1 = (2f64.sqrt() * (6.0 / (P + H) as f64).sqrt()) as f32;
        let b3 = (0.5 * (6.0 / (H + 36) as f64).sqrt()) as f32;
        assert!(w[..P * H].iter().all(|x| x.abs() <= b1));
        assert!(w[..P * H].iter().any(|x| x.abs() > 0.9 * b1));
        assert!(w[P * H + H * H..].iter().all(|x| x.abs() <= b3));
        // The first weight is the first draw of the stream.
        let first = uniform_f32(&mut stream(11, Stream::Adapter), -b1, b1);
        assert_eq!(w[0], first);
    }

    #[test]
    fn encode_is_deterministic() {
        let a = small_mlp(0.1);
        let img = image(3);
        let (mut s1, mut s2) = (AdapterScratch::default(), AdapterScratch::default());
        let (mut o1, mut o2) = (vec![0.0; 36], vec![0.0; 36]);
        a.encode(&img, None, &mut s1, &mut o1);
        a.encode(&image(4), None, &mut s1, &mut o2);
        a.encode(&img, None, &mut s1, &mut o2);
        assert_eq!(o1, o2);
        a.encode(&img, None, &mut s2, &mut o2);
        assert_eq!(o1, o2);
    }

    #[test]
    fn layer_norm_statistics() {
        let a = small_mlp(0.0);
        let mut s = AdapterScratch::default();
        let mut out = vec![0.0; 36];
        a.encode(&image(1), None, &mut s, &mut out);
        for h in [s.hidden1(), s.hidden2()] {
            assert_eq!(h.len(), H);
            let n = h.len() as f64;
            let mean = h.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = h.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            assert!(mean.abs() < 1e-5, "mean {mean}");
            assert!((var - 1.0).abs() < 1e-3, "var {var}");
        }
    }

    #[test]
    fn dropout_only_with_rng() {
        let a = small_mlp(0.25);
        let img = image(2);
        let mut s = AdapterScratch::default();
        let mut plain = vec![0.0; 36];
        let mut out = vec![0.0; 36];
        a.encode(&img, None, &mut s, &mut plain);
        let mut r1 = stream_with(5, "dropout", 1);
        a.encode(&img, Some(&mut r1), &mut s, &mut out);
        assert_ne!(out, plain);
        assert!(out.iter().all(|x| x.abs() < 1.0));
        // Same sub-stream, same mask.
        let mut again = vec![0.0; 36];
        a.encode(
            &img,
            Some(&mut stream_with(5, "dropout", 1)),
            &mut s,
            &mut again,
        );
        assert_eq!(out, again);
        // p = 0: an RNG changes nothing and is not drawn from.
        let z = small_mlp(0.0);
        let mut r = stream_with(5, "dropout", 1);
        let before = r.clone();
        z.encode(&img, None, &mut s, &mut plain);
        z.encode(&img, Some(&mut r), &mut s, &mut out);
        assert_eq!(out, plain);
        assert_eq!(r.get_word_pos(), before.get_word_pos());
    }

    #[test]
    fn linear_adapter() {
        let a = InputAdapter::linear(P, 4, 2, &mut stream(2, Stream::Adapter));
        assert_eq!(a.output_len(), 16);
        assert!(!a.has_dropout());
        let w = a.export();
        let img = image(7);
        let mut s = AdapterScratch::default();
        let mut out = vec![0.0; 16];
        a.encode(&img, None, &mut s, &mut out);
        for (i, o) in out.iter().enumerate() {
            let z: f64 = (0..P)
                .map(|j| w[i * P + j] as f64 * ((img[j] as f64 / 255.0 - 0.1307) / 0.3081))
                .sum();
            assert!((*o as f64 - z.tanh()).abs() < 1e-5);
        }
    }

    #[test]
    fn export_import_roundtrip() {
        let a = small_mlp(0.0);
        let mut b = InputAdapter::mlp(P, H, 6, 3, 0.0, &mut stream(99, Stream::Adapter));
        assert_ne!(a, b);
        b.import(&a.export()).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            b.import(&[0.0; 3]),
            Err(AdapterError::WeightCount {
                expected: a.weight_count(),
                got: 3
            })
        );
        let mut w = a.export();
        w[5] = f32::NAN;
        assert_eq!(b.import(&w), Err(AdapterError::NotFinite { index: 5 }));
        assert_eq!(a, b);
    }

    #[test]
    fn quantize_edges() {
        let y = [-1.0, -1.0, 1.0, 1.0, 0.0, 0.0, -0.999, 0.999, f32::NAN, 2.0];
        let (mut p, mut m) = ([0u16; 5], [0u16; 5]);
        quantize(&y, 512, 1024, &mut p, &mut m);
        assert_eq!(p, [0, 511, 256, 0, 0]);
        assert_eq!(m, [0, 1023, 512, 1023, 1023]);
        // Just below a bin edge: (0.5 − 2^-24 + 1)/2·4 = 2.99999997 → 2.
        let (mut p, mut m) = ([0u16; 1], [0u16; 1]);
        quantize(&[0.5 - f32::EPSILON / 2.0, 0.5], 4, 4, &mut p, &mut m);
        assert_eq!((p[0], m[0]), (2, 3));
        quantize(&[-0.5, 0.5], 65536, 2, &mut p, &mut m);
        assert_eq!((p[0], m[0]), (16384, 1));
    }
}
