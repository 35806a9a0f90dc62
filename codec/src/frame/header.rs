//! The stream header (magic and version) and the 8-byte header of every frame.

use bytes::{BufMut, Bytes};

use crate::error::{Error, InvalidMessage, PeerIncompatible};
use crate::frame::{FrameType, Limits, Reader};

/// The protocol version this implementation writes.
pub const VERSION: u16 = 1;

/// The oldest protocol version this implementation reads. A reader of version V accepts V
/// and V−1 (version 0 does not exist, so a version 1 reader accepts only 1).
pub const OLDEST_READABLE_VERSION: u16 = if VERSION > 1 { VERSION - 1 } else { 1 };

/// The first 16 bytes of every stream, in each direction: `PAGEWIRE`, the version the stream
/// is written in (u16 LE), six reserved zero bytes.
///
/// ```
/// use bytes::Bytes;
/// use pagewire_codec::frame::StreamHeader;
/// let mut out = Vec::new();
/// StreamHeader::current().encode(&mut out);
/// assert_eq!(&out[..8], b"PAGEWIRE");
/// let decoded = StreamHeader::decode(&mut Bytes::from(out)).unwrap();
/// assert_eq!(decoded, StreamHeader::current());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// The protocol version the stream is written in.
    pub version: u16,
}

impl StreamHeader {
    /// The magic bytes.
    pub const MAGIC: [u8; 8] = *b"PAGEWIRE";
    /// The header's length in bytes.
    pub const LEN: usize = 16;

    /// The header this implementation writes.
    pub fn current() -> StreamHeader {
        StreamHeader { version: VERSION }
    }

    /// Appends the header's 16 bytes.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(&Self::MAGIC);
        out.put_u16_le(self.version);
        out.put_bytes(0, 6);
    }

    /// Reads the header from the front of `input`: the magic must match, the reserved bytes
    /// must be zero, and the version must be one this reader accepts.
    pub fn decode(input: &mut Bytes) -> Result<StreamHeader, Error> {
        let mut reader = Reader::new(input.clone());
        let magic = reader.array::<8>("stream magic")?;
        if magic != Self::MAGIC {
            return Err(InvalidMessage::BadMagic(magic).into());
        }
        let version = reader.u16("stream version")?;
        reader.reserved("stream header reserved bytes", 6)?;
        if !(OLDEST_READABLE_VERSION..=VERSION).contains(&version) {
            return Err(PeerIncompatible::UnsupportedVersion {
                version,
                oldest: OLDEST_READABLE_VERSION,
                newest: VERSION,
            }
            .into());
        }
        *input = input.slice(Self::LEN..);
        Ok(StreamHeader { version })
    }
}

/// The 8 bytes in front of every frame payload: type (u16 LE), flags (u16 LE, zero in version
/// 1), payload length (u32 LE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame's type.
    pub frame_type: FrameType,
    /// The payload's length in bytes.
    pub length: u32,
}

impl FrameHeader {
    /// The header's length in bytes.
    pub const LEN: usize = 8;

    /// Appends the header's 8 bytes.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_u16_le(self.frame_type.0);
        out.put_u16_le(0);
        out.put_u32_le(self.length);
    }

    /// Parses the 8 header bytes, before any of the payload is read or buffered: the flags
    /// must be zero, the length within `limits`, and the type known or optional.
    pub fn parse(bytes: [u8; Self::LEN], limits: &Limits) -> Result<FrameHeader, Error> {
        let frame_type = FrameType(u16::from_le_bytes([bytes[0], bytes[1]]));
        let flags = u16::from_le_bytes([bytes[2], bytes[3]]);
        let length = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if frame_type.name().is_none() && !frame_type.is_optional() {
            return Err(PeerIncompatible::UnknownMandatoryFrame(frame_type).into());
        }
        if flags != 0 {
            return Err(InvalidMessage::ReservedNotZero {
                field: "frame flags",
                value: u64::from(flags),
            }
            .into());
        }
        let max = limits.max_frame_payload.min(Limits::HARD_MAX_FRAME_PAYLOAD);
        if length > max {
            return Err(InvalidMessage::FrameTooLarge {
                frame_type,
                length,
                max,
            }
            .into());
        }
        Ok(FrameHeader { frame_type, length })
    }
}
