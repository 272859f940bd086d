//! Tiny uniform sampling helpers on top of [`rand_core::Rng`], so the
//! module's output is fully determined by this code and the ChaCha stream
//! (no dependency on `rand`'s distribution implementations).

use rand_core::Rng;

/// Uniform `f32` in `[0, 1)` from the top 24 bits of one `u32`.
pub(crate) fn unit_f32<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// Uniform `f32` in `[lo, hi)`.
pub(crate) fn range_f32<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit_f32(rng)
}

/// Uniform integer in `0..n` (`n > 0`), unbiased.
///
/// Lemire's multiply-and-reject method on `next_u64`: take the high 64 bits
/// of `x * n`, rejecting `x` whose low 64 bits fall below `2^64 mod n`.
pub(crate) fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
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

/// In-place Fisher-Yates shuffle: for `i` from `len - 1` down to `1`, swap
/// element `i` with element `below(rng, i + 1)`.
pub(crate) fn shuffle<T, R: Rng + ?Sized>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[test]
    fn helpers_in_range_and_shuffle_is_permutation() {
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
}
