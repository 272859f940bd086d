//! FNV-1a, 64-bit: the project's one non-cryptographic hash.
//!
//! It checksums checkpoint payloads, fingerprints the static graph, names random streams
//! (through [`crate::model::rng::derive_key`]), and hashes scenes and final worlds in reports.
//! Offset basis `0xcbf29ce484222325`, prime `0x100000001b3`; changing either changes every
//! seeded result and makes every checkpoint unreadable, so they are fixed forever.

/// The FNV-1a 64-bit offset basis.
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV-1a 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`; equal to feeding them to one [`Fnv1a`] and calling
/// [`Fnv1a::finish`].
///
/// # Examples
///
/// ```
/// assert_eq!(neurograph::hash::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(neurograph::hash::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(bytes);
    h.finish()
}

/// An incremental FNV-1a 64 hasher, for data that is not one contiguous slice: writing the
/// bytes in any number of pieces gives the same hash as [`fnv1a64`] of their concatenation.
///
/// # Examples
///
/// ```
/// use neurograph::hash::{Fnv1a, fnv1a64};
/// let mut h = Fnv1a::new();
/// h.write(b"foo");
/// h.write(b"bar");
/// assert_eq!(h.finish(), fnv1a64(b"foobar"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a {
    state: u64,
}

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a::new()
    }
}

impl Fnv1a {
    /// A hasher that has seen no bytes (its hash is the offset basis).
    pub const fn new() -> Fnv1a {
        Fnv1a {
            state: OFFSET_BASIS,
        }
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(PRIME);
        }
    }

    /// The hash of every byte written so far (the hasher can go on being fed).
    pub fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn pieces_hash_like_the_whole() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for cut in [0, 1, 7, 500, 999, 1000] {
            let mut h = Fnv1a::default();
            h.write(&bytes[..cut]);
            h.write(&bytes[cut..]);
            assert_eq!(h.finish(), fnv1a64(&bytes), "cut at {cut}");
        }
    }
}
