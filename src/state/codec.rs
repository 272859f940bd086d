//! The byte encoding of persistent state: named, length-prefixed sections.
//!
//! A value is written by its [`Codec`] impl; a struct declared with
//! [`persistent_state!`](crate::persistent_state) writes each field as a *section*: its name (a
//! `u64` byte count and UTF-8 bytes), a `u64` byte count, and the field's own encoding. Reading
//! checks each section's name against the declaration and requires the field to use exactly its
//! bytes, so a file from another layout is reported by the first field that differs, and every
//! length is checked against the bytes that remain before anything is allocated.
//!
//! All integers are little-endian; `f32` and `f64` are written as their IEEE bit patterns, so
//! values round-trip exactly (signed zeros and NaN payloads included).

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// A value that can be written to and read back from state bytes exactly.
pub trait Codec: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads a value written by [`Codec::encode`]; the error says what did not fit.
    fn decode(r: &mut Reader<'_>) -> Result<Self, String>;
}

/// A cursor over encoded bytes; every read is bounds-checked.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err(format!(
                "{what}: needs {n} bytes, only {} remain",
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// A `u64` length prefix for elements of at least `elem` bytes each, checked against the
    /// bytes that remain.
    pub fn count(&mut self, what: &str, elem: usize) -> Result<usize, String> {
        let n = u64::from_le_bytes(self.array(what)?);
        let room = (self.rest.len() / elem.max(1)) as u64;
        if n > room {
            return Err(format!(
                "{what}: length {n} does not fit in the {} bytes that remain",
                self.rest.len()
            ));
        }
        Ok(n as usize)
    }

    /// Reads the section `name` written by [`put_section`] and decodes its value, which must
    /// use exactly the section's bytes.
    pub fn section<T: Codec>(&mut self, name: &str) -> Result<T, String> {
        let found = String::decode(self).map_err(|e| format!("section {name}: {e}"))?;
        if found != name {
            return Err(format!("expected section {name}, found {found:?}"));
        }
        let len = self.count(name, 1)?;
        let mut inner = Reader::new(self.take(len, name)?);
        let value = T::decode(&mut inner).map_err(|e| format!("{name}: {e}"))?;
        if inner.remaining() != 0 {
            return Err(format!(
                "{name}: {} bytes left over after the value",
                inner.remaining()
            ));
        }
        Ok(value)
    }
}

/// Writes `value` as the section `name` (see the module docs).
pub fn put_section<T: Codec>(out: &mut Vec<u8>, name: &str, value: &T) {
    put_str(out, name);
    let at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    value.encode(out);
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
                Ok(<$t>::from_le_bytes(r.array(stringify!($t))?))
            }
        }
    )*};
}
int_codec!(u8, u16, u32, u64, u128);

impl Codec for f32 {
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_bits().encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        u32::decode(r).map(f32::from_bits)
    }
}

impl Codec for f64 {
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_bits().encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        u64::decode(r).map(f64::from_bits)
    }
}

impl Codec for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        match u8::decode(r)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("a flag must be 0 or 1, found {b}")),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    (s.len() as u64).encode(out);
    out.extend_from_slice(s.as_bytes());
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        let n = r.count("string", 1)?;
        String::from_utf8(r.take(n, "string")?.to_vec()).map_err(|_| "not valid UTF-8".into())
    }
}

/// The smallest encoding of one element, for length checks before allocating.
pub trait MinSize {
    /// Bytes the smallest value of the type takes.
    const MIN_SIZE: usize;
}

macro_rules! min_size {
    ($($t:ty = $n:expr),*) => {$( impl MinSize for $t { const MIN_SIZE: usize = $n; } )*};
}
min_size!(
    u8 = 1,
    u16 = 2,
    u32 = 4,
    u64 = 8,
    u128 = 16,
    f32 = 4,
    f64 = 8,
    bool = 1,
    String = 8
);

impl<T: Codec + MinSize> Codec for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u64).encode(out);
        for x in self {
            x.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        let n = r.count("vector", T::MIN_SIZE)?;
        (0..n).map(|_| T::decode(r)).collect()
    }
}

impl<T: MinSize> MinSize for Vec<T> {
    const MIN_SIZE: usize = 8;
}

impl<T: Codec> Codec for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(v) = self {
            v.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        Ok(if bool::decode(r)? {
            Some(T::decode(r)?)
        } else {
            None
        })
    }
}

/// A ChaCha8 stream is its seed, stream number and word position: restored, it draws exactly
/// what the saved one would have drawn next.
impl Codec for ChaCha8Rng {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.get_seed());
        self.get_stream().encode(out);
        self.get_word_pos().encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        let seed: [u8; 32] = r.array("random stream seed")?;
        let stream = u64::decode(r)?;
        let word_pos = u128::decode(r)?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// Declares a struct of persistent state: every field is public, documented, and written as a
/// named section in declaration order (see [`crate::state::codec`]). Adding a field to the
/// declaration is all its encoding, decoding, checkpointing, replica copying and hashing need.
#[macro_export]
macro_rules! persistent_state {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::state::codec::Codec for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                $( $crate::state::codec::put_section(out, stringify!($field), &self.$field); )*
            }
            fn decode(r: &mut $crate::state::codec::Reader<'_>) -> Result<Self, String> {
                Ok($name { $( $field: r.section(stringify!($field))?, )* })
            }
        }
    };
}

/// Encodes a value into a fresh byte vector.
pub fn to_bytes<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Decodes a value that must use all of `bytes`.
pub fn from_bytes<T: Codec>(bytes: &[u8]) -> Result<T, String> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    if r.remaining() != 0 {
        return Err(format!(
            "{} bytes left over after the last field",
            r.remaining()
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    crate::persistent_state! {
        /// A test struct.
        pub struct Sample {
            /// Some numbers.
            numbers: Vec<u16>,
            /// A float.
            x: f32,
            /// A name.
            name: String,
        }
    }

    crate::persistent_state! {
        /// A struct nesting another.
        pub struct Outer {
            /// The inner state.
            inner: Sample,
            /// A count.
            count: u64,
        }
    }

    fn sample() -> Outer {
        Outer {
            inner: Sample {
                numbers: vec![1, 2, 65535],
                x: -0.0,
                name: "ünï".into(),
            },
            count: 7,
        }
    }

    #[test]
    fn round_trip_is_exact_and_laid_out_as_documented() {
        let bytes = to_bytes(&sample());
        assert_eq!(from_bytes::<Outer>(&bytes).unwrap(), sample());
        // "inner" section: name (8 + 5 bytes), length (8), then the nested sections.
        assert_eq!(&bytes[..8], &5u64.to_le_bytes());
        assert_eq!(&bytes[8..13], b"inner");
        let inner_len = u64::from_le_bytes(bytes[13..21].try_into().unwrap()) as usize;
        // numbers: 8+7 name, 8 len, 8 count + 6 data; x: 8+1, 8, 4; name: 8+4, 8, 8+5 bytes.
        assert_eq!(inner_len, (15 + 8 + 14) + (9 + 8 + 4) + (12 + 8 + 13));
        assert_eq!(bytes.len(), 21 + inner_len + (8 + 5) + 8 + 8);
        let x = from_bytes::<Outer>(&bytes).unwrap().inner.x;
        assert!(x == 0.0 && x.is_sign_negative(), "signed zero kept");
    }

    #[test]
    fn every_truncation_and_a_renamed_section_are_errors() {
        let bytes = to_bytes(&sample());
        for len in 0..bytes.len() {
            assert!(from_bytes::<Outer>(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut renamed = bytes.clone();
        renamed[8] = b'X';
        let err = from_bytes::<Outer>(&renamed).unwrap_err();
        assert!(err.contains("expected section inner"), "{err}");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            from_bytes::<Outer>(&longer)
                .unwrap_err()
                .contains("left over")
        );
    }

    #[test]
    fn a_lying_length_is_refused_before_allocating() {
        let mut bytes = Vec::new();
        u64::MAX.encode(&mut bytes);
        let err = from_bytes::<Vec<u32>>(&bytes).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn a_random_stream_continues_where_it_stood() {
        for draws in [0usize, 1, 15, 16, 17, 63, 64, 65, 200] {
            let mut a = ChaCha8Rng::seed_from_u64(9);
            a.set_stream(3);
            for _ in 0..draws {
                a.next_u32();
            }
            let mut b: ChaCha8Rng = from_bytes(&to_bytes(&a)).unwrap();
            for _ in 0..80 {
                assert_eq!(a.next_u32(), b.next_u32(), "after {draws} draws");
            }
        }
    }
}
