//! The two-byte ULEB128 lengths of QEMU's XBZRLE format.
//!
//! A length below `0x80` is one byte; a length up to [`MAX_RUN`] is two bytes,
//! `(n & 0x7f) | 0x80` then `n >> 7`. Longer lengths cannot be written. QEMU's reader takes a
//! second byte with bit `0x80` set as an error, and accepts the (never written) overlong
//! two-byte forms of small lengths; so does ours.

/// The longest run (unchanged or changed) one length can describe: `0x3fff` bytes.
pub const MAX_RUN: usize = 0x3fff;

/// How many bytes `n` takes (1 or 2). `n` must be at most [`MAX_RUN`].
#[inline]
pub(crate) fn len(n: usize) -> usize {
    debug_assert!(n <= MAX_RUN);
    if n < 0x80 { 1 } else { 2 }
}

/// Writes `n` (at most [`MAX_RUN`]) at the start of `out`, which has room for [`len`]`(n)`
/// bytes, and returns how many bytes it wrote.
#[inline]
pub(crate) fn write(out: &mut [u8], n: usize) -> usize {
    debug_assert!(n <= MAX_RUN);
    if n < 0x80 {
        out[0] = n as u8;
        1
    } else {
        out[0] = (n as u8 & 0x7f) | 0x80;
        out[1] = (n >> 7) as u8;
        2
    }
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
        let mut buf = [0u8; 2];
        let k = write(&mut buf, n);
        assert_eq!(k, len(n));
        buf[..k].to_vec()
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
    fn reads_back_every_length() {
        for n in 0..=MAX_RUN {
            assert_eq!(read(&written(n)), Ok((n, len(n))));
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
