//! `neurograph bench --floor`: this machine's multiply-add peak on one core, so radiation times
//! from different machines can be compared as multiples of the physical floor.
//!
//! Radiation scores every kernel row (an active source the cache did not answer) against every
//! node: 2D multiply-adds per pair. The floor of a pass is those multiply-adds at the core's
//! peak rate, for the f32 kernel at the f32 fused multiply-add peak and for the integer kernel
//! at the i16 multiply-add (`vpmaddwd`) peak. The peaks are measured here with loops of
//! independent accumulators that do nothing else, the best of several short runs.

#![expect(
    unsafe_code,
    reason = "the peak loops use x86 intrinsics behind runtime feature detection; every unsafe \
              block states what it relies on"
)]

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Measured multiply-add peaks of one core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// f32 multiply-adds per second (AVX-512 or AVX2 FMA where the CPU has it, else plain
    /// Rust).
    pub f32_macs_per_second: f64,
    /// i16 multiply-adds per second (AVX-512 `vpdpwssd` or AVX2 `vpmaddwd` where the CPU has
    /// it, else plain Rust).
    pub i16_macs_per_second: f64,
    /// What the loops ran on.
    pub instructions: String,
}

/// Iterations of one timed peak loop (each does 10 vector multiply-adds).
const ITERATIONS: u64 = 4_000_000;

/// Measures the peaks: the best of `repeats` runs of each loop.
pub fn measure(repeats: usize) -> Peaks {
    let best = |f: &dyn Fn() -> f64| (0..repeats.max(1)).map(|_| f()).fold(0.0, f64::max);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
    {
        return Peaks {
            // SAFETY: AVX-512 F was just detected.
            f32_macs_per_second: best(&|| unsafe { f32_peak_avx512() }),
            // SAFETY: AVX-512 F, BW and VNNI were just detected.
            i16_macs_per_second: best(&|| unsafe { i16_peak_avx512_vnni() }),
            instructions: "AVX-512 (512-bit FMA, vpdpwssd)".into(),
        };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        return Peaks {
            // SAFETY: AVX2 and FMA were just detected.
            f32_macs_per_second: best(&|| unsafe { f32_peak_avx2() }),
            // SAFETY: as above.
            i16_macs_per_second: best(&|| unsafe { i16_peak_avx2() }),
            instructions: "AVX2 (256-bit FMA, vpmaddwd)".into(),
        };
    }
    Peaks {
        f32_macs_per_second: best(&f32_peak_portable),
        i16_macs_per_second: best(&i16_peak_portable),
        instructions: "plain Rust".into(),
    }
}

/// Ten independent FMA chains of 8 lanes: keeping two FMA units busy needs latency ×
/// throughput (4 × 2 = 8) chains; ten leave margin.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn f32_peak_avx2() -> f64 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(std::hint::black_box(0.999_999));
    let b = _mm256_set1_ps(std::hint::black_box(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 10];
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(acc);
    (ITERATIONS * 10 * 8) as f64 / seconds
}

/// Ten independent `vpmaddwd` chains of 16 i16 products each (each result, reinterpreted as
/// i16 lanes, is the next input, so nothing can be hoisted out of the loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn i16_peak_avx2() -> f64 {
    use std::arch::x86_64::*;
    let b = _mm256_set1_epi16(std::hint::black_box(3));
    let mut x: [__m256i; 10] =
        std::array::from_fn(|i| _mm256_set1_epi16(std::hint::black_box(i as i16 + 1)));
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        for x in x.iter_mut() {
            *x = _mm256_madd_epi16(*x, b);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(x);
    (ITERATIONS * 10 * 16) as f64 / seconds
}

/// [`f32_peak_avx2`] with 16-lane vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn f32_peak_avx512() -> f64 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(std::hint::black_box(0.999_999));
    let b = _mm512_set1_ps(std::hint::black_box(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); 10];
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(acc);
    (ITERATIONS * 10 * 16) as f64 / seconds
}

/// Ten independent `vpdpwssd` accumulator chains of 32 i16 products each, the integer
/// kernel's AVX-512 instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn i16_peak_avx512_vnni() -> f64 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_epi16(std::hint::black_box(3));
    let b = _mm512_set1_epi16(std::hint::black_box(-3));
    let mut x: [__m512i; 10] =
        std::array::from_fn(|i| _mm512_set1_epi32(std::hint::black_box(i as i32)));
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        for x in x.iter_mut() {
            *x = _mm512_dpwssd_epi32(*x, a, b);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(x);
    (ITERATIONS * 10 * 32) as f64 / seconds
}

fn f32_peak_portable() -> f64 {
    let (a, b) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    let mut acc = [1.0f32; 32];
    let iterations = ITERATIONS / 4;
    let started = Instant::now();
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = *x * a + b;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(acc);
    (iterations * 32) as f64 / seconds
}

fn i16_peak_portable() -> f64 {
    let b = std::hint::black_box(5i16);
    let x: [i16; 32] = std::array::from_fn(|i| std::hint::black_box(i as i16));
    let mut acc = [0i32; 32];
    let iterations = ITERATIONS / 4;
    let started = Instant::now();
    for _ in 0..iterations {
        for (a, &x) in acc.iter_mut().zip(&x) {
            *a = a.wrapping_add(i32::from(x) * i32::from(b));
        }
        std::hint::black_box(&mut acc);
    }
    let seconds = started.elapsed().as_secs_f64();
    (iterations * 32) as f64 / seconds
}

/// Radiation's floor for a bench: seconds per pass at the measured peak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// The measured peaks.
    pub peaks: Peaks,
    /// Kernel rows (sources scored against every node) per pass.
    pub rows_per_pass: f64,
    /// Multiply-adds per pass: rows × nodes × 2D.
    pub macs_per_pass: f64,
    /// Seconds per pass at the peak of the kernel's arithmetic (f32 or i16).
    pub floor_seconds_per_pass: f64,
    /// Radiation's measured thread seconds per pass.
    pub radiation_seconds_per_pass: f64,
    /// Radiation time as a multiple of the floor.
    pub multiple: f64,
}

impl Floor {
    /// The floor of a pass with `rows` kernel rows over `nodes` nodes of dimension `dim`, for
    /// the kernel named `backend`, against `radiation` measured thread seconds per pass.
    pub fn new(
        peaks: Peaks,
        rows_per_pass: f64,
        nodes: usize,
        dim: usize,
        int16: bool,
        radiation_seconds_per_pass: f64,
    ) -> Floor {
        let macs_per_pass = rows_per_pass * (nodes * 2 * dim) as f64;
        let peak = if int16 {
            peaks.i16_macs_per_second
        } else {
            peaks.f32_macs_per_second
        };
        let floor_seconds_per_pass = macs_per_pass / peak.max(1.0);
        Floor {
            peaks,
            rows_per_pass,
            macs_per_pass,
            floor_seconds_per_pass,
            radiation_seconds_per_pass,
            multiple: radiation_seconds_per_pass / floor_seconds_per_pass.max(1e-12),
        }
    }
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "machine floor ({}, one core): f32 {:.1} G multiply-adds/s, i16 {:.1} G/s",
            self.peaks.instructions,
            self.peaks.f32_macs_per_second / 1e9,
            self.peaks.i16_macs_per_second / 1e9
        )?;
        writeln!(
            f,
            "radiation floor          {:.3} ms/pass ({:.0} rows x nodes x 2D = {:.1} M multiply-adds)",
            self.floor_seconds_per_pass * 1e3,
            self.rows_per_pass,
            self.macs_per_pass / 1e6
        )?;
        writeln!(
            f,
            "radiation measured       {:.3} ms/pass = {:.1} x the floor",
            self.radiation_seconds_per_pass * 1e3,
            self.multiple
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_macs_over_the_peak() {
        let peaks = Peaks {
            f32_macs_per_second: 1e10,
            i16_macs_per_second: 2e10,
            instructions: "test".into(),
        };
        // 3781 rows × 1000 nodes × 10 = 37.81 M multiply-adds.
        let f = Floor::new(peaks.clone(), 3781.0, 1000, 5, true, 0.0038);
        assert_eq!(f.macs_per_pass, 37_810_000.0);
        assert!((f.floor_seconds_per_pass - 37.81e6 / 2e10).abs() < 1e-12);
        assert!((f.multiple - 0.0038 / (37.81e6 / 2e10)).abs() < 1e-9);
        let g = Floor::new(peaks, 3781.0, 1000, 5, false, 0.0038);
        assert!((g.floor_seconds_per_pass - 37.81e6 / 1e10).abs() < 1e-12);
    }

    #[test]
    fn measured_peaks_are_positive_and_finite() {
        let p = measure(1);
        assert!(p.f32_macs_per_second.is_finite() && p.f32_macs_per_second > 1e6);
        assert!(p.i16_macs_per_second.is_finite() && p.i16_macs_per_second > 1e6);
    }
}
