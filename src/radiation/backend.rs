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
    /// The integer kernel with AVX2 (`vpmaddwd`), even where better instructions exist (for
    /// comparing instruction sets; a scene naming it is refused on a CPU without AVX2).
    Int16Avx2,
    /// The integer kernel with AVX-VNNI (`vpdpwssd` on 256-bit vectors; refused on a CPU
    /// without it).
    Int16AvxVnni,
    /// The integer kernel with AVX-512 F, BW and VNNI (refused on a CPU without them).
    Int16Avx512,
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

impl BackendChoice {
    /// Every choice, in the order reports list them.
    pub const ALL: [BackendChoice; 8] = [
        BackendChoice::Auto,
        BackendChoice::Int16,
        BackendChoice::Int16Avx2,
        BackendChoice::Int16AvxVnni,
        BackendChoice::Int16Avx512,
        BackendChoice::F32,
        BackendChoice::Portable,
        BackendChoice::Index,
    ];

    /// Whether this CPU can run the choice: a choice of instruction set it lacks is refused,
    /// with the instructions it needs.
    pub fn check(self) -> Result<(), String> {
        let (ok, needs) = match self {
            BackendChoice::Int16Avx2 => (has_avx2(), "AVX2, FMA and POPCNT"),
            BackendChoice::Int16AvxVnni => (has_avx_vnni(), "AVX2 and AVX-VNNI"),
            BackendChoice::Int16Avx512 => (has_avx512_vnni(), "AVX-512 F, BW and VNNI"),
            _ => (true, ""),
        };
        if ok {
            return Ok(());
        }
        let runs: Vec<String> = BackendChoice::ALL
            .iter()
            .filter(|c| c.check().is_ok())
            .map(|c| format!("{c:?}"))
            .collect();
        Err(format!(
            "needs {needs}, which this CPU lacks; this CPU runs {}",
            runs.join(", ")
        ))
    }
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
    /// The integer kernel with AVX-VNNI (`vpdpwssd` on 256-bit vectors, x86-64 only).
    Int16AvxVnni,
    /// The integer kernel with AVX-512 F, BW and VNNI (16 nodes per vector, `vpdpwssd`,
    /// `vpcompressd`; x86-64 only).
    Int16Avx512Vnni,
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

/// Whether the CPU has AVX-VNNI (besides AVX2).
fn has_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2() && std::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AVX-512 F, BW and VNNI (besides AVX2, and BMI1 and BMI2, which every
/// such CPU has).
fn has_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni")
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
            BackendChoice::Int16Avx2 if has_avx2() => Backend::Int16Avx2,
            BackendChoice::Int16AvxVnni if has_avx_vnni() => Backend::Int16AvxVnni,
            BackendChoice::Int16Avx512 if has_avx512_vnni() => Backend::Int16Avx512Vnni,
            // Refused by scene validation ([`BackendChoice::check`]); never reached from a
            // valid scene.
            BackendChoice::Int16Avx2 | BackendChoice::Int16AvxVnni | BackendChoice::Int16Avx512 => {
                Backend::Int16Portable
            }
            BackendChoice::Auto | BackendChoice::Int16 if has_avx512_vnni() => {
                Backend::Int16Avx512Vnni
            }
            BackendChoice::Auto | BackendChoice::Int16 if has_avx_vnni() => Backend::Int16AvxVnni,
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
        if has_avx_vnni() {
            all.push(Backend::Int16AvxVnni);
        }
        if has_avx512_vnni() {
            all.push(Backend::Int16Avx512Vnni);
        }
        all.push(Backend::Index);
        all
    }

    /// Whether this is the integer kernel.
    pub fn is_int16(self) -> bool {
        self.int16_isa().is_some()
    }

    /// The instructions of the integer kernel, if this is it.
    pub(crate) fn int16_isa(self) -> Option<super::int16::Isa> {
        use super::int16::Isa;
        match self {
            Backend::Int16Portable => Some(Isa::Portable),
            Backend::Int16Avx2 => Some(Isa::Avx2),
            Backend::Int16AvxVnni => Some(Isa::AvxVnni),
            Backend::Int16Avx512Vnni => Some(Isa::Avx512Vnni),
            _ => None,
        }
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
            Backend::Int16AvxVnni => "int16 AVX-VNNI",
            Backend::Int16Avx512Vnni => "int16 AVX-512 VNNI",
            Backend::Index => "index",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A choice of instruction set is accepted exactly where the CPU has it, and a refusal
    /// names what is missing and what this CPU runs.
    #[test]
    fn an_instruction_set_the_cpu_lacks_is_refused_with_what_it_runs() {
        for (choice, has) in [
            (BackendChoice::Int16Avx2, has_avx2()),
            (BackendChoice::Int16AvxVnni, has_avx_vnni()),
            (BackendChoice::Int16Avx512, has_avx512_vnni()),
        ] {
            match choice.check() {
                Ok(()) => {
                    assert!(has, "{choice:?} accepted without the instructions");
                    assert!(Backend::resolve(choice, 0, 1).is_int16());
                    assert!(Backend::supported().contains(&Backend::resolve(choice, 0, 1)));
                }
                Err(message) => {
                    assert!(!has, "{choice:?} refused on a CPU that has it: {message}");
                    assert!(message.starts_with("needs "), "{message}");
                    assert!(message.contains("Auto, Int16"), "{message}");
                }
            }
        }
        for choice in [
            BackendChoice::Auto,
            BackendChoice::Int16,
            BackendChoice::F32,
            BackendChoice::Portable,
            BackendChoice::Index,
        ] {
            assert_eq!(choice.check(), Ok(()), "{choice:?} runs everywhere");
        }
    }

    /// `Auto` picks the widest integer kernel the CPU has.
    #[test]
    fn auto_picks_the_widest_integer_kernel() {
        let expected = if has_avx512_vnni() {
            Backend::Int16Avx512Vnni
        } else if has_avx_vnni() {
            Backend::Int16AvxVnni
        } else if has_avx2() {
            Backend::Int16Avx2
        } else {
            Backend::Int16Portable
        };
        assert_eq!(Backend::detect(), expected);
    }
}
