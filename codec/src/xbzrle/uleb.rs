//! The two-byte ULEB128 lengths of QEMU's XBZRLE format.
//!
//! A length below `0x80` is one byte; a length up to [`MAX_RUN`] is two bytes,
//! `(n & 0x7f) | 0x80` then `n >> 7`. Longer lengths cannot be written. QEMU's reader takes a
//! second byte with bit `0x80` set as an error, and accepts the (never written) overlong
//! two-byte forms of small lengths; so does ours.

/// The longest run (unchanged or changed) one length can describe: `0x3fff` bytes.
pub const MAX_RUN: usize = 0x3fff;

/// Both lengths of a pair, `zrun` then `nzrun` (each at most [`MAX_RUN`]), as the
/// little-endian bytes of the result's first value, and how many bytes they take (2 to 4).
/// Computed without branches: short runs of varied lengths would mispredict them.
#[inline(always)]
pub(crate) fn pair(zrun: usize, nzrun: usize) -> (u32, usize) {
    let (z, z_len) = encoded(zrun);
    let (n, n_len) = encoded(nzrun);
    (z | n << (8 * z_len), z_len + n_len)
}

/// `n` (at most [`MAX_RUN`]) as the little-endian bytes of the result's first value, and how
/// many bytes it takes.
#[inline(always)]
fn encoded(n: usize) -> (u32, usize) {
    debug_assert!(n <= MAX_RUN);
    let two = usize::from(n >= 0x80);
    ((n & 0x7f | two << 7 | (n >> 7) << 8) as u32, 1 + two)
}

/// Why a length could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The input ended inside the length.
    Truncated,
    /// The second byte has its continuation bit set (the value would pass 14 bits).
    TooLong,
}

/// Reads a length from the start of `input`: the value and how many bytes it took.
#[inline]
pub(crate) fn read(input: &[u8]) -> Result<(usize, usize), ReadError> {
    match input {
        [first, ..] if first & 0x80 == 0 => Ok((usize::from(*first), 1)),
        [first, second, ..] if second & 0x80 == 0 => {
            Ok((usize::from(first & 0x7f) | usize::from(*second) << 7, 2))
        }
        [_, _, ..] => Err(ReadError::TooLong),
        _ => Err(ReadError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(n: usize) -> Vec<u8> {
        let (bytes, k) = encoded(n);
        assert_eq!(k, if n < 0x80 { 1 } else { 2 });
        bytes.to_le_bytes()[..k].to_vec()
    }

    #[test]
    fn writes_the_readme_examples() {
        assert_eq!(written(0), [0x00]);
        assert_eq!(written(127), [0x7f]);
        assert_eq!(written(128), [0x80, 0x01]);
        assert_eq!(written(1001), [0xe9, 0x07]);
        assert_eq!(written(4095), [0xff, 0x1f]);
        assert_eq!(written(4096), [0x80, 0x20]);
        assert_eq!(written(MAX_RUN), [0xff, 0x7f]);
    }

    #[test]
    fn pairs_are_the_two_lengths_in_order() {
        for (z, n) in [
            (0, 1),
            (127, 128),
            (128, 127),
            (4095, MAX_RUN),
            (MAX_RUN, 1),
            (1, 1),
        ] {
            let (bytes, size) = pair(z, n);
            let expect = [written(z), written(n)].concat();
            assert_eq!(size, expect.len());
            assert_eq!(&bytes.to_le_bytes()[..size], expect.as_slice(), "{z}, {n}");
        }
    }

    #[test]
    fn reads_back_every_length() {
        for n in 0..=MAX_RUN {
            assert_eq!(read(&written(n)), Ok((n, written(n).len())));
        }
    }

    #[test]
    fn rejects_truncated_and_too_long_lengths() {
        assert_eq!(read(&[]), Err(ReadError::Truncated));
        assert_eq!(read(&[0x80]), Err(ReadError::Truncated));
        assert_eq!(read(&[0x80, 0x80]), Err(ReadError::TooLong));
        assert_eq!(read(&[0xff, 0xff, 0x01]), Err(ReadError::TooLong));
    }

    #[test]
    fn accepts_overlong_forms_like_qemu() {
        assert_eq!(read(&[0x80, 0x00]), Ok((0, 2)));
        assert_eq!(read(&[0x81, 0x00]), Ok((1, 2)));
    }
}
