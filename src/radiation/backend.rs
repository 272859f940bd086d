//! Which radiation kernel runs: the scene's choice (`radiation.backend`) resolved against what
//! the CPU supports.

use serde::{Deserialize, Serialize};

/// The scene's choice of radiation kernel (`radiation.backend`). Every choice gives identical
/// targets (each kernel equals brute force); they differ only in speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendChoice {
    /// The fastest kernel this CPU runs: [`BackendChoice::Int16`] with its best instructions.
    #[default]
    Auto,
    /// The integer phasor kernel (i16 phasors, exact int32 scores; AVX2 where the CPU has it,
    /// plain Rust otherwise).
    Int16,
    /// The f32 phasor kernel (AVX2 + FMA or AVX-512VL where the CPU has them, plain Rust
    /// otherwise), the reference the integer kernel replaced.
    F32,
    /// The f32 kernel in plain Rust, without intrinsics, on any CPU.
    Portable,
    /// The exact phase index ([`super::index`]): buckets of nodes by phase, visited
    /// best-bound-first, so a source scores a few hundred nodes instead of all of them. Faster
    /// than the dense kernels from [`INDEX_CROSSOVER`] nodes on (measured), where `Auto`
    /// chooses it.
    Index,
}

/// The node count from which `Auto` chooses the index over the dense integer kernel, for
/// D ≤ [`INDEX_MAX_AUTO_DIM`]. Measured on the production dynamics (`neurograph experiment
/// scaling --nodes 2000,4000,8000,12000,16000,24000,32000 --samples 6`, twice, AMD EPYC Zen 3,
/// AVX2): the two were level at 8 000 nodes (index 0.057-0.070 s per pass, dense 0.056-0.059)
/// and the index was faster from 12 000 (0.101-0.103 against 0.109-0.128 s).
pub const INDEX_CROSSOVER: usize = 12_000;

/// The largest D for which `Auto` may choose the index: a grid bounds few dimensions tightly
/// as D grows (every dimension off the grid is bounded by 1), so above this the dense kernel
/// stays the automatic choice.
pub const INDEX_MAX_AUTO_DIM: usize = 8;

/// A kernel and the instructions it runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The f32 kernel in plain Rust.
    Portable,
    /// The f32 kernel with AVX2 + FMA (x86-64 only).
    Avx2Fma,
    /// The AVX2 + FMA f32 code compiled with AVX-512VL enabled, which gives it 32 vector
    /// registers instead of 16, so the query, the accumulators of four tiles and the maxima all
    /// stay in registers (x86-64 only).
    Avx512Vl,
    /// The integer kernel in plain Rust.
    Int16Portable,
    /// The integer kernel with AVX2 (`vpmaddwd`, x86-64 only).
    Int16Avx2,
    /// The exact phase index (plain Rust, any CPU).
    Index,
}

/// Whether the CPU has AVX2, FMA and POPCNT.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AVX-512F and AVX-512VL (besides AVX2).
fn has_avx512vl() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

impl Backend {
    /// The fastest dense backend this CPU supports (what `Auto` resolves to below
    /// [`INDEX_CROSSOVER`] nodes).
    pub fn detect() -> Backend {
        Backend::resolve(BackendChoice::Auto, 0, 1)
    }

    /// The backend a scene's choice runs on this CPU for a graph of `nodes` nodes of dimension
    /// `dim`.
    pub fn resolve(choice: BackendChoice, nodes: usize, dim: usize) -> Backend {
        match choice {
            BackendChoice::Index => Backend::Index,
            BackendChoice::Auto if nodes >= INDEX_CROSSOVER && dim <= INDEX_MAX_AUTO_DIM => {
                Backend::Index
            }
            BackendChoice::Auto | BackendChoice::Int16 if has_avx2() => Backend::Int16Avx2,
            BackendChoice::Auto | BackendChoice::Int16 => Backend::Int16Portable,
            BackendChoice::F32 if has_avx512vl() => Backend::Avx512Vl,
            BackendChoice::F32 if has_avx2() => Backend::Avx2Fma,
            BackendChoice::F32 | BackendChoice::Portable => Backend::Portable,
        }
    }

    /// Every backend this CPU supports, the plain-Rust ones first.
    pub fn supported() -> Vec<Backend> {
        let mut all = vec![Backend::Portable, Backend::Int16Portable];
        if has_avx2() {
            all.push(Backend::Avx2Fma);
        }
        if has_avx512vl() {
            all.push(Backend::Avx512Vl);
        }
        if has_avx2() {
            all.push(Backend::Int16Avx2);
        }
        all.push(Backend::Index);
        all
    }

    /// Whether this is the integer kernel.
    pub fn is_int16(self) -> bool {
        matches!(self, Backend::Int16Portable | Backend::Int16Avx2)
    }

    /// Whether this is the f32 kernel.
    pub fn is_f32(self) -> bool {
        matches!(
            self,
            Backend::Portable | Backend::Avx2Fma | Backend::Avx512Vl
        )
    }

    /// A short name for reports: kernel and instructions.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "f32 portable",
            Backend::Avx2Fma => "f32 AVX2+FMA",
            Backend::Avx512Vl => "f32 AVX-512VL",
            Backend::Int16Portable => "int16 portable",
            Backend::Int16Avx2 => "int16 AVX2",
            Backend::Index => "index",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
