//! LEB128 variable-length integers as the wire uses them (minimal encodings only).
//!
//! An unsigned 64-bit value is written 7 bits at a time, least significant group first; every
//! byte but the last has its high bit (0x80) set. A value takes 1 to 10 bytes. Only the
//! shortest encoding of a value is valid: a decoder rejects a final byte of 0x00 after other
//! bytes (overlong), more than 10 bytes, and a 10th byte above 0x01 (more than 64 bits).
//!
//! ```
//! use bytes::Bytes;
//! use pagewire_codec::varint;
//! let mut out = Vec::new();
//! varint::encode(300, &mut out);
//! assert_eq!(out, [0xac, 0x02]);
//! assert_eq!(varint::encoded_len(300), 2);
//! let mut input = Bytes::from(out);
//! assert_eq!(varint::decode(&mut input), Ok(300));
//! assert!(input.is_empty());
//! ```

use bytes::{Buf, BufMut};

/// The most bytes a varint takes.
pub const MAX_LEN: usize = 10;

/// What is wrong with a varint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The input ended before the last byte (one without the 0x80 bit).
    #[error("input ends inside a varint")]
    Truncated,
    /// The value has a shorter encoding (the last byte is 0x00).
    #[error("overlong varint")]
    Overlong,
    /// The value does not fit in 64 bits.
    #[error("varint over 64 bits")]
    Overflow,
}

/// Appends the minimal encoding of `value` to `out`.
pub fn encode<B: BufMut>(value: u64, out: &mut B) {
    let mut rest = value;
    while rest >= 0x80 {
        out.put_u8((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

/// How many bytes [`encode`] writes for `value` (1 to 10).
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Reads one varint from the front of `input`, advancing past it.
///
/// On error, `input` is left where it was.
pub fn decode<B: Buf>(input: &mut B) -> Result<u64, VarintError> {
    let chunk = input.chunk();
    let mut value = 0u64;
    for index in 0..MAX_LEN {
        // Varints are read from one contiguous chunk; every input of the codec is a `Bytes`.
        let Some(&byte) = chunk.get(index) else {
            return Err(VarintError::Truncated);
        };
        let group = u64::from(byte & 0x7f);
        if index == MAX_LEN - 1 && byte > 0x01 {
            return Err(VarintError::Overflow);
        }
        value |= group << (7 * index);
        if byte & 0x80 == 0 {
            if byte == 0 && index > 0 {
                return Err(VarintError::Overlong);
            }
            input.advance(index + 1);
            return Ok(value);
        }
    }
    Err(VarintError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> Result<u64, VarintError> {
        let mut input = Bytes::copy_from_slice(bytes);
        let value = decode(&mut input)?;
        assert!(input.is_empty(), "decoder left bytes of a single varint");
        Ok(value)
    }

    #[test]
    fn boundary_values_have_the_documented_lengths() {
        for (value, len) in [
            (0, 1),
            (0x7f, 1),
            (0x80, 2),
            (0x3fff, 2),
            (0x4000, 3),
            (u64::from(u32::MAX), 5),
            (1 << 63, 10),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            encode(value, &mut out);
            assert_eq!(out.len(), len, "{value:#x}");
            assert_eq!(encoded_len(value), len);
            assert_eq!(decode_all(&out), Ok(value));
        }
    }

    #[test]
    fn decoder_rejects_overlong_varint() {
        assert_eq!(decode_all(&[0x80, 0x00]), Err(VarintError::Overlong));
        assert_eq!(decode_all(&[0x81, 0x80, 0x00]), Err(VarintError::Overlong));
        assert_eq!(decode_all(&[0x00]), Ok(0));
    }

    #[test]
    fn decoder_rejects_varint_over_64_bits() {
        let mut eleven = [0xffu8; 11];
        eleven[10] = 0x01;
        assert_eq!(decode_all(&eleven), Err(VarintError::Overflow));
        let mut tenth_too_big = [0xffu8; 10];
        tenth_too_big[9] = 0x02;
        assert_eq!(decode_all(&tenth_too_big), Err(VarintError::Overflow));
    }

    #[test]
    fn decoder_rejects_truncated_varint_and_leaves_input() {
        let mut input = Bytes::from_static(&[0x80, 0x80]);
        assert_eq!(decode(&mut input), Err(VarintError::Truncated));
        assert_eq!(input.len(), 2);
        assert_eq!(decode_all(&[]), Err(VarintError::Truncated));
    }

    proptest! {
        #[test]
        fn varint_round_trips_minimally(value: u64) {
            let mut out = Vec::new();
            encode(value, &mut out);
            prop_assert_eq!(out.len(), encoded_len(value));
            prop_assert_eq!(decode_all(&out), Ok(value));
        }

        #[test]
        fn every_accepted_varint_is_the_minimal_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut input = Bytes::from(bytes.clone());
            if let Ok(value) = decode(&mut input) {
                let used = bytes.len() - input.len();
                let mut again = Vec::new();
                encode(value, &mut again);
                prop_assert_eq!(&again[..], &bytes[..used]);
            }
        }
    }
}
