//! Byte-level helpers of the trace format: LEB128 varints, zigzag page-number deltas, and a
//! bounds-checked cursor over a decoded block.
//!
//! Varints are the wire's ([`pagewire_codec::varint`]): LEB128, minimal encodings only, the
//! same rule `spec/trace.md` states.

use pagewire_codec::varint;

/// Appends `value` as LEB128 (at most 10 bytes).
pub(crate) fn put_varint(out: &mut Vec<u8>, value: u64) {
    varint::encode(value, out);
}

/// Zigzag-encodes a signed difference so small negative steps stay short.
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Why a cursor could not read what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CursorError {
    /// The input ended inside a field.
    End,
    /// A varint longer than 10 bytes, overlong, or above `u64::MAX`.
    BadVarint,
}

/// A reader over a byte slice that never reads past its end.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CursorError> {
        let end = self.pos.checked_add(n).ok_or(CursorError::End)?;
        let slice = self.bytes.get(self.pos..end).ok_or(CursorError::End)?;
        self.pos = end;
        Ok(slice)
    }

    /// The next byte.
    pub(crate) fn u8(&mut self) -> Result<u8, CursorError> {
        Ok(self.take(1)?[0])
    }

    /// The next little-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, CursorError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The next little-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, CursorError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// The next LEB128 varint (minimal encoding only).
    pub(crate) fn varint(&mut self) -> Result<u64, CursorError> {
        let mut rest = &self.bytes[self.pos..];
        let value = varint::decode(&mut rest).map_err(|e| match e {
            varint::VarintError::Truncated => CursorError::End,
            _ => CursorError::BadVarint,
        })?;
        self.pos = self.bytes.len() - rest.len();
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        for value in [0, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut cursor = Cursor::new(&out);
            assert_eq!(cursor.varint(), Ok(value));
            assert!(cursor.is_empty());
        }
    }

    #[test]
    fn cursor_rejects_overlong_and_oversized_varints() {
        assert_eq!(
            Cursor::new(&[0x80, 0x00]).varint(),
            Err(CursorError::BadVarint)
        );
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Cursor::new(&too_big).varint(), Err(CursorError::BadVarint));
        assert_eq!(Cursor::new(&[0x80]).varint(), Err(CursorError::End));
    }

    #[test]
    fn zigzag_round_trips_signed_steps() {
        for value in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
