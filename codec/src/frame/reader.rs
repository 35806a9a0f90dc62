//! [`Reader`]: a cursor over a frame payload that checks every length before use.
//!
//! In the manner of rustls's `Reader`, every read names the field it reads, so a short input
//! becomes [`InvalidMessage::Truncated`] naming that field, and [`Reader::finish`] rejects bytes
//! left after the last field. Byte strings are split off the underlying [`Bytes`] with
//! `split_to`, so page payloads are never copied.

use bytes::{Buf, Bytes};

use crate::error::InvalidMessage;
use crate::frame::FrameType;
use crate::varint;

/// A cursor over one frame's payload.
///
/// ```
/// use bytes::Bytes;
/// use pagewire_codec::frame::{FrameType, Reader};
/// let mut reader = Reader::new(Bytes::from_static(&[1, 0, 0xac, 0x02, 9]));
/// assert_eq!(reader.u16("kind"), Ok(1));
/// assert_eq!(reader.varint("count"), Ok(300));
/// assert!(reader.finish(FrameType::ABORT).is_err()); // one byte left
/// ```
#[derive(Clone, Debug)]
pub struct Reader {
    rest: Bytes,
}

impl Reader {
    /// A reader over `payload`.
    pub fn new(payload: Bytes) -> Reader {
        Reader { rest: payload }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether no bytes are left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Checks that nothing is left after the last field of a `frame_type` payload.
    pub fn finish(self, frame_type: FrameType) -> Result<(), InvalidMessage> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(InvalidMessage::TrailingBytes { frame_type, count }),
        }
    }

    /// Splits off the next `len` bytes, without copying.
    pub fn take(&mut self, field: &'static str, len: usize) -> Result<Bytes, InvalidMessage> {
        self.need(field, len)?;
        Ok(self.rest.split_to(len))
    }

    /// Splits off everything that is left, without copying.
    pub fn take_rest(&mut self) -> Bytes {
        self.rest.split_off(0)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], InvalidMessage> {
        self.need(field, N)?;
        let mut out = [0u8; N];
        self.rest.copy_to_slice(&mut out);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, InvalidMessage> {
        self.need(field, 1)?;
        Ok(self.rest.get_u8())
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, InvalidMessage> {
        self.need(field, 2)?;
        Ok(self.rest.get_u16_le())
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, InvalidMessage> {
        self.need(field, 4)?;
        Ok(self.rest.get_u32_le())
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, InvalidMessage> {
        self.need(field, 8)?;
        Ok(self.rest.get_u64_le())
    }

    /// Reads a little-endian `u128`.
    pub fn u128(&mut self, field: &'static str) -> Result<u128, InvalidMessage> {
        self.need(field, 16)?;
        Ok(self.rest.get_u128_le())
    }

    /// Reads a varint (minimal LEB128, see [`crate::varint`]).
    pub fn varint(&mut self, field: &'static str) -> Result<u64, InvalidMessage> {
        varint::decode(&mut self.rest).map_err(|error| InvalidMessage::BadVarint { field, error })
    }

    /// Reads a field that must be zero (a reserved field), `len` bytes wide.
    pub fn reserved(&mut self, field: &'static str, len: usize) -> Result<(), InvalidMessage> {
        let bytes = self.take(field, len)?;
        match bytes.iter().position(|b| *b != 0) {
            None => Ok(()),
            Some(at) => Err(InvalidMessage::ReservedNotZero {
                field,
                value: u64::from(bytes[at]),
            }),
        }
    }

    fn need(&self, field: &'static str, needed: usize) -> Result<(), InvalidMessage> {
        if self.rest.len() < needed {
            return Err(InvalidMessage::Truncated {
                field,
                needed,
                available: self.rest.len(),
            });
        }
        Ok(())
    }
}

/// Checks `value <= max` for a length or count field.
pub(crate) fn check_limit(field: &'static str, value: u64, max: u64) -> Result<(), InvalidMessage> {
    if value > max {
        return Err(InvalidMessage::OverLimit { field, value, max });
    }
    Ok(())
}
