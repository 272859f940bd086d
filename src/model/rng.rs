//! Named ChaCha8 random streams (SPEC 10), small sampling helpers, and the draws of the
//! embedded data sets ([`datasets`]).
//!
//! # Key derivation (stable forever)
//!
//! The 32-byte ChaCha key of a stream named `name` under master seed `seed` is:
//!
//! 1. `h = FNV-1a-64(name as UTF-8 bytes)` (offset basis `0xcbf29ce484222325`, prime
//!    `0x100000001b3`);
//! 2. `state = seed ^ h`;
//! 3. four successive SplitMix64 outputs from `state` (increment `0x9e3779b97f4a7c15`,
//!    finaliser `(z ^ z>>30)·0xbf58476d1ce4e5b9`, `(z ^ z>>27)·0x94d049bb133111eb`,
//!    `z ^ z>>31`), each written little-endian, give key bytes 0..8, 8..16, 16..24, 24..32.
//!
//! [`stream_with`] then selects the ChaCha stream id (nonce) `sub`; [`stream`] is
//! `stream_with(seed, s.name(), 0)`. Sub-stream 0 therefore *is* the main stream: per-sample
//! sub-streams of a stream that is also used directly should use `sub >= 1` (for example the
//! sample index + 1).
//!
//! Changing any of this changes every seeded result of the project.

use ahash::AHashMap;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::hash::fnv1a64;

/// The project's named random streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Static graph generation.
    Graph,
    /// Initial node parameters.
    Params,
    /// Input adapter weights.
    Adapter,
    /// Dropout masks (usually through per-sample sub-streams).
    Dropout,
    /// Sample order within epochs.
    Order,
    /// Generated class encodings.
    Encodings,
}

impl Stream {
    /// All streams, in declaration order.
    pub const ALL: [Stream; 6] = [
        Stream::Graph,
        Stream::Params,
        Stream::Adapter,
        Stream::Dropout,
        Stream::Order,
        Stream::Encodings,
    ];

    /// The stream's name, the input of the key derivation: `graph`, `params`, `adapter`,
    /// `dropout`, `order` or `encodings`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Graph => "graph",
            Stream::Params => "params",
            Stream::Adapter => "adapter",
            Stream::Dropout => "dropout",
            Stream::Order => "order",
            Stream::Encodings => "encodings",
        }
    }
}

/// One SplitMix64 step: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 32-byte key of stream `name` under `seed` (see the module docs).
pub fn derive_key(seed: u64, name: &str) -> [u8; 32] {
    let mut state = seed ^ fnv1a64(name.as_bytes());
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    key
}

/// The named stream `s` under master seed `seed`; equal to `stream_with(seed, s.name(), 0)`.
pub fn stream(seed: u64, s: Stream) -> ChaCha8Rng {
    stream_with(seed, s.name(), 0)
}

/// The stream named `name` under `seed`, at ChaCha stream id `sub` (2^64 independent
/// sub-streams per name, e.g. one per sample). Sub-stream 0 is the main stream.
pub fn stream_with(seed: u64, name: &str, sub: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(derive_key(seed, name));
    rng.set_stream(sub);
    rng
}

/// A uniform integer in `0..n`, unbiased (Lemire's multiply-and-reject). Draws one `u32`,
/// more only on the rare rejection.
///
/// # Panics
/// If `n == 0`.
#[inline]
pub fn below(rng: &mut ChaCha8Rng, n: u32) -> u32 {
    assert!(n > 0, "below(0): empty range");
    let mut m = rng.next_u32() as u64 * n as u64;
    if (m as u32) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u32) < threshold {
            m = rng.next_u32() as u64 * n as u64;
        }
    }
    (m >> 32) as u32
}

/// A uniform `f64` in `[0, 1)` from the top 53 bits of one `u64`.
#[inline]
pub fn unit_f64(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform `f32` in `[lo, hi)`: `lo + (hi − lo)·u` with `u` from the top 24 bits of one
/// `u32`, computed in f64 and rounded to f32 (which can round up to `hi` in rare cases).
#[inline]
pub fn uniform_f32(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    let u = (rng.next_u32() >> 8) as f64 * (1.0 / (1u32 << 24) as f64);
    (lo as f64 + (hi as f64 - lo as f64) * u) as f32
}

/// Chooses `k` distinct elements of `candidates` without replacement into `out` (cleared
/// first), in draw order: a partial Fisher–Yates shuffle, `for i in 0..k { swap(i, i +
/// below(len − i)) }`, then the first `k` elements. If `k >= candidates.len()` all candidates
/// are taken, in candidate order, and nothing is drawn.
///
/// The shuffle runs on a virtual copy: position `p` holds `candidates[p]` unless an earlier
/// swap moved another value there, and only those (at most `k`) displaced positions are
/// stored. The draws and the result are those of shuffling a real copy, but a call costs O(k)
/// time and memory instead of O(len), which keeps [`crate::graph::Graph::layered`] linear in its
/// edges.
///
/// # Panics
/// If `k < candidates.len()` and there are more than `u32::MAX` candidates.
pub fn choose_distinct(rng: &mut ChaCha8Rng, candidates: &[u32], k: usize, out: &mut Vec<u32>) {
    out.clear();
    let len = candidates.len();
    if k >= len {
        out.extend_from_slice(candidates);
        return;
    }
    assert!(
        len <= u32::MAX as usize,
        "choose_distinct: too many candidates"
    );
    let mut displaced: AHashMap<usize, u32> = AHashMap::with_capacity(k);
    for i in 0..k {
        let j = i + below(rng, (len - i) as u32) as usize;
        let at = |p: usize| displaced.get(&p).copied().unwrap_or(candidates[p]);
        let (drawn, first) = (at(j), at(i));
        out.push(drawn);
        // Position i is never read again (every later j is > i), so only j needs storing.
        displaced.insert(j, first);
    }
}

/// Shuffles `items` in place (Fisher–Yates from the end: for `i = len−1 down to 1`, swap `i`
/// with `below(i + 1)`).
pub fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    assert!(items.len() <= u32::MAX as usize, "shuffle: slice too long");
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u32 + 1) as usize;
        items.swap(i, j);
    }
}

/// The draws of the embedded data sets (the synthetic digits of [`crate::data::synthetic`] and
/// the subset order of [`crate::data::import_mnist_json`]).
///
/// They draw differently from the helpers above: [`datasets::below`] takes whole `u64` words and
/// [`datasets::range_f32`] computes in f32, where [`below`] takes `u32` words and
/// [`uniform_f32`] computes in f64. The data sets were generated with these from the start, so
/// they stay as they are: switching would change every embedded image (the synthetic set's
/// fingerprint test pins them).
pub mod datasets {
    use rand_core::Rng;

    /// A uniform `f32` in `[0, 1)` from the top 24 bits of one `u32` (exact in f32).
    pub fn unit_f32<R: Rng + ?Sized>(rng: &mut R) -> f32 {
        (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform `f32` in `[lo, hi)`: `lo + (hi − lo)·unit_f32`, in f32 arithmetic.
    pub fn range_f32<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * unit_f32(rng)
    }

    /// A uniform integer in `0..n` (`n > 0`), unbiased: Lemire's multiply-and-reject on
    /// `next_u64`, taking the high 64 bits of `x·n` and rejecting `x` whose low 64 bits fall
    /// below `2^64 mod n`.
    pub fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
        debug_assert!(n > 0);
        let n = n as u64;
        let threshold = n.wrapping_neg() % n; // 2^64 mod n
        loop {
            let m = u128::from(rng.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// In-place Fisher–Yates shuffle: for `i` from `len − 1` down to 1, swap element `i` with
    /// element `below(rng, i + 1)`.
    pub fn shuffle<T, R: Rng + ?Sized>(rng: &mut R, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = below(rng, i + 1);
            items.swap(i, j);
        }
    }
}

/// The implementations the fast ones must equal, kept as plain references for the tests.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;

    /// [`choose_distinct`] as it was first written: a partial Fisher–Yates shuffle of a real
    /// copy of all candidates (O(len) per call).
    pub(crate) fn choose_distinct_by_copy(
        rng: &mut ChaCha8Rng,
        candidates: &[u32],
        k: usize,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        out.extend_from_slice(candidates);
        if k >= candidates.len() {
            return;
        }
        let len = out.len();
        for i in 0..k {
            let j = i + below(rng, (len - i) as u32) as usize;
            out.swap(i, j);
        }
        out.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rng: &mut ChaCha8Rng, n: usize) -> Vec<u32> {
        (0..n).map(|_| rng.next_u32()).collect()
    }

    #[test]
    fn key_derivation_reference_values() {
        // FNV-1a reference values.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        // SplitMix64 from state 0: first output 0xe220a8397b1dcdaf.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220a8397b1dcdaf);
        // Key for (seed, name) with seed ^ fnv(name) == 0 is SplitMix64(0) x4.
        let seed = fnv1a64(b"graph");
        let key = derive_key(seed, "graph");
        assert_eq!(&key[..8], &0xe220a8397b1dcdafu64.to_le_bytes());
    }

    #[test]
    fn streams_are_deterministic() {
        for s in Stream::ALL {
            let a = draws(&mut stream(42, s), 16);
            let b = draws(&mut stream(42, s), 16);
            assert_eq!(a, b, "{}", s.name());
        }
        let a = draws(&mut stream_with(7, "dropout", 123), 8);
        let b = draws(&mut stream_with(7, "dropout", 123), 8);
        assert_eq!(a, b);
        assert_eq!(
            draws(&mut stream(9, Stream::Order), 8),
            draws(&mut stream_with(9, "order", 0), 8)
        );
    }

    #[test]
    fn streams_are_independent() {
        let mut seen = Vec::new();
        for seed in [0u64, 1, 2] {
            for s in Stream::ALL {
                seen.push(draws(&mut stream(seed, s), 4));
            }
            for sub in 1..4 {
                seen.push(draws(&mut stream_with(seed, "dropout", sub), 4));
            }
        }
        for i in 0..seen.len() {
            for j in i + 1..seen.len() {
                assert_ne!(seen[i], seen[j], "streams {i} and {j} coincide");
            }
        }
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = stream(1, Stream::Params);
        for n in [1u32, 2, 3, 7, 512, 1000, u32::MAX] {
            for _ in 0..200 {
                assert!(below(&mut rng, n) < n);
            }
        }
        let mut counts = [0u32; 6];
        for _ in 0..6000 {
            counts[below(&mut rng, 6) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }

    #[test]
    #[should_panic(expected = "below(0)")]
    fn below_zero_panics() {
        let _ = below(&mut stream(0, Stream::Order), 0);
    }

    #[test]
    fn unit_and_uniform_ranges() {
        let mut rng = stream(3, Stream::Order);
        let mut sum = 0.0;
        for _ in 0..2000 {
            let u = unit_f64(&mut rng);
            assert!((0.0..1.0).contains(&u));
            sum += u;
            let f = uniform_f32(&mut rng, -0.25, 0.75);
            assert!((-0.25..=0.75).contains(&f));
        }
        assert!((sum / 2000.0 - 0.5).abs() < 0.03);
    }

    #[test]
    fn choose_distinct_is_distinct_and_from_candidates() {
        let mut rng = stream(5, Stream::Graph);
        let cands: Vec<u32> = (100..140).collect();
        let mut out = Vec::new();
        for k in [0usize, 1, 6, 39] {
            choose_distinct(&mut rng, &cands, k, &mut out);
            assert_eq!(out.len(), k);
            let mut s = out.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), k);
            assert!(out.iter().all(|x| cands.contains(x)));
        }
    }

    #[test]
    fn choose_distinct_takes_all_in_order_without_drawing() {
        let mut rng = stream(5, Stream::Graph);
        let before = rng.clone();
        let mut out = vec![9, 9, 9];
        choose_distinct(&mut rng, &[4, 2, 8], 3, &mut out);
        assert_eq!(out, [4, 2, 8]);
        choose_distinct(&mut rng, &[4, 2, 8], 10, &mut out);
        assert_eq!(out, [4, 2, 8]);
        assert_eq!(draws(&mut rng, 4), draws(&mut before.clone(), 4));
    }

    /// Issue 12 item 11: choosing predecessors copied the whole candidate pool per node, which
    /// made the layered graph quadratic. The O(k) chooser must draw exactly as the copying one.
    #[test]
    fn choose_distinct_without_copying_equals_the_copying_shuffle() {
        let mut cases = stream(11, Stream::Order);
        let mut fast_out = vec![7, 7];
        let mut ref_out = Vec::new();
        let mut shapes: Vec<(usize, usize)> = vec![(0, 0), (0, 3), (1, 0), (1, 1), (5, 0)];
        shapes.extend((1..=40).flat_map(|len| [(len, len - 1), (len, len), (len, len + 2)]));
        for _ in 0..2000 {
            let len = below(&mut cases, 300) as usize;
            let k = below(&mut cases, 70) as usize;
            shapes.push((len, k));
        }
        shapes.extend([(100_000, 6), (100_000, 64), (1_000, 999), (70_000, 69_999)]);
        for (n, &(len, k)) in shapes.iter().enumerate() {
            // Shuffled, non-contiguous candidates, so values and positions differ.
            let mut candidates: Vec<u32> = (0..len as u32).map(|x| 3 * x + 1).collect();
            shuffle(&mut cases, &mut candidates);
            let seed = below(&mut cases, u32::MAX) as u64;
            let mut fast = stream_with(seed, "graph", n as u64);
            let mut slow = fast.clone();
            choose_distinct(&mut fast, &candidates, k, &mut fast_out);
            reference::choose_distinct_by_copy(&mut slow, &candidates, k, &mut ref_out);
            assert_eq!(fast_out, ref_out, "len {len}, k {k}");
            assert!(
                fast == slow,
                "len {len}, k {k}: the streams end in different states"
            );
            assert_eq!(draws(&mut fast, 2), draws(&mut slow, 2));
        }
    }

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        shuffle(&mut stream(8, Stream::Order), &mut a);
        shuffle(&mut stream(8, Stream::Order), &mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        let mut empty: [u8; 0] = [];
        shuffle(&mut stream(8, Stream::Order), &mut empty);
    }

    #[test]
    fn dataset_helpers_in_range_and_shuffle_is_permutation() {
        use datasets::{below, shuffle, unit_f32};
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut hist = [0usize; 7];
        for _ in 0..7000 {
            let f = unit_f32(&mut rng);
            assert!((0.0..1.0).contains(&f));
            hist[below(&mut rng, 7)] += 1;
        }
        assert!(hist.iter().all(|&h| (800..1200).contains(&h)), "{hist:?}");
        let mut v: Vec<usize> = (0..50).collect();
        shuffle(&mut rng, &mut v);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn dataset_draws_are_pinned() {
        // Values taken from the helpers when they lived in `data::rng`, before the merge.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut v: Vec<usize> = (0..10).collect();
        datasets::shuffle(&mut rng, &mut v);
        assert_eq!(v, [1, 7, 5, 9, 4, 3, 8, 2, 0, 6]);
        assert_eq!(
            datasets::range_f32(&mut rng, -1.0, 1.0).to_bits(),
            1_057_822_388
        );
        assert_eq!(datasets::below(&mut rng, 1000), 703);
    }
}
