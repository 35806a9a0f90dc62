//! Page records: one page (or one run of zero pages) in one encoding, as a page batch carries
//! it. The byte layout of a record inside a batch is in `spec/wire.md` and
//! [`crate::frame`]; this module holds the decoded form.

use bytes::Bytes;

use crate::{ContentHash, PageNumber};

/// The encoding of a page record: the record's one-byte wire tag.
///
/// A tag this version does not know is kept as [`Encoding::Unknown`], so a reader decides by
/// policy (reject, with a typed error) rather than by a parse failure.
///
/// ```
/// use pagewire_codec::Encoding;
/// assert_eq!(Encoding::from_tag(Encoding::Xbzrle.tag()), Encoding::Xbzrle);
/// assert_eq!(Encoding::from_tag(0x7f), Encoding::Unknown(0x7f));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// A run of one or more all-zero pages.
    ZeroRun,
    /// The page's bytes as they are.
    Raw,
    /// XBZRLE delta (QEMU's format) against the version of the page the destination holds.
    Xbzrle,
    /// A reference to another page the destination holds with identical content.
    Dedup,
    /// The page compressed as one LZ4 block.
    Lz4,
    /// The page compressed as one zstd frame.
    Zstd,
    /// An XBZRLE delta compressed as one LZ4 block.
    XbzrleLz4,
    /// A tag this version does not know.
    Unknown(u8),
}

impl Encoding {
    /// Every encoding this version knows, in tag order.
    pub const KNOWN: [Encoding; 7] = [
        Encoding::ZeroRun,
        Encoding::Raw,
        Encoding::Xbzrle,
        Encoding::Dedup,
        Encoding::Lz4,
        Encoding::Zstd,
        Encoding::XbzrleLz4,
    ];

    /// The wire tag.
    pub fn tag(self) -> u8 {
        match self {
            Encoding::ZeroRun => 0x00,
            Encoding::Raw => 0x01,
            Encoding::Xbzrle => 0x02,
            Encoding::Dedup => 0x03,
            Encoding::Lz4 => 0x04,
            Encoding::Zstd => 0x05,
            Encoding::XbzrleLz4 => 0x06,
            Encoding::Unknown(tag) => tag,
        }
    }

    /// The encoding a wire tag names.
    pub fn from_tag(tag: u8) -> Encoding {
        match tag {
            0x00 => Encoding::ZeroRun,
            0x01 => Encoding::Raw,
            0x02 => Encoding::Xbzrle,
            0x03 => Encoding::Dedup,
            0x04 => Encoding::Lz4,
            0x05 => Encoding::Zstd,
            0x06 => Encoding::XbzrleLz4,
            other => Encoding::Unknown(other),
        }
    }

    /// A short lower-case name (`"xbzrle+lz4"`, `"zero"`), for reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::ZeroRun => "zero",
            Encoding::Raw => "raw",
            Encoding::Xbzrle => "xbzrle",
            Encoding::Dedup => "dedup",
            Encoding::Lz4 => "lz4",
            Encoding::Zstd => "zstd",
            Encoding::XbzrleLz4 => "xbzrle+lz4",
            Encoding::Unknown(_) => "unknown",
        }
    }
}

/// A set of encodings, as the hello frame announces them: bit `t` set means the encoding with
/// tag `t` is supported. Tags above 31 cannot be announced.
///
/// ```
/// use pagewire_codec::{Encoding, EncodingSet};
/// let ours = EncodingSet::all_known();
/// let theirs = EncodingSet::empty().with(Encoding::Raw).with(Encoding::Xbzrle);
/// let used = ours.intersection(theirs);
/// assert!(used.contains(Encoding::Xbzrle));
/// assert!(!used.contains(Encoding::Zstd));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EncodingSet(pub u32);

impl EncodingSet {
    /// No encodings.
    pub fn empty() -> EncodingSet {
        EncodingSet(0)
    }

    /// Every encoding this version knows.
    pub fn all_known() -> EncodingSet {
        Encoding::KNOWN
            .iter()
            .fold(EncodingSet::empty(), |set, e| set.with(*e))
    }

    /// This set with `encoding` added (unchanged if its tag is above 31).
    pub fn with(self, encoding: Encoding) -> EncodingSet {
        match 1u32.checked_shl(u32::from(encoding.tag())) {
            Some(bit) => EncodingSet(self.0 | bit),
            None => self,
        }
    }

    /// This set without `encoding`.
    pub fn without(self, encoding: Encoding) -> EncodingSet {
        match 1u32.checked_shl(u32::from(encoding.tag())) {
            Some(bit) => EncodingSet(self.0 & !bit),
            None => self,
        }
    }

    /// Whether `encoding` is in the set.
    pub fn contains(self, encoding: Encoding) -> bool {
        1u32.checked_shl(u32::from(encoding.tag()))
            .is_some_and(|bit| self.0 & bit != 0)
    }

    /// The encodings in both sets: what two peers may use.
    pub fn intersection(self, other: EncodingSet) -> EncodingSet {
        EncodingSet(self.0 & other.0)
    }
}

/// The body of a page record: how the page's new content is carried.
///
/// Payloads are [`Bytes`] slices of the received buffer; decoding a batch does not copy them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordBody {
    /// `count` (at least 1) consecutive all-zero pages, starting at the record's page.
    ZeroRun {
        /// How many pages the run covers.
        count: u64,
    },
    /// The page's bytes (exactly one page).
    Raw(Bytes),
    /// An XBZRLE delta against the content the destination holds for this page.
    Xbzrle(Bytes),
    /// Copy the content of page `source`, which the destination holds and whose content hashes
    /// to `hash`. The destination checks the hash before copying.
    Dedup {
        /// The page whose content to copy.
        source: PageNumber,
        /// The xxh3-128 of that content.
        hash: ContentHash,
    },
    /// One LZ4 block that decompresses to exactly one page.
    Lz4(Bytes),
    /// One zstd frame that decompresses to exactly one page.
    Zstd(Bytes),
    /// One LZ4 block that decompresses to an XBZRLE delta of `delta_len` bytes.
    XbzrleLz4 {
        /// The length of the delta once decompressed.
        delta_len: u32,
        /// The LZ4 block.
        compressed: Bytes,
    },
}

impl RecordBody {
    /// The encoding (wire tag) of this body.
    pub fn encoding(&self) -> Encoding {
        match self {
            RecordBody::ZeroRun { .. } => Encoding::ZeroRun,
            RecordBody::Raw(_) => Encoding::Raw,
            RecordBody::Xbzrle(_) => Encoding::Xbzrle,
            RecordBody::Dedup { .. } => Encoding::Dedup,
            RecordBody::Lz4(_) => Encoding::Lz4,
            RecordBody::Zstd(_) => Encoding::Zstd,
            RecordBody::XbzrleLz4 { .. } => Encoding::XbzrleLz4,
        }
    }

    /// How many pages the record covers: `count` for a zero run, 1 otherwise.
    pub fn pages_covered(&self) -> u64 {
        match self {
            RecordBody::ZeroRun { count } => *count,
            _ => 1,
        }
    }
}

/// One page record: a page (the first of a run, for zero runs) and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRecord {
    /// The page (or the first page of a zero run).
    pub page: PageNumber,
    /// How its content is carried.
    pub body: RecordBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_round_trips_through_encoding() {
        for tag in 0..=u8::MAX {
            assert_eq!(Encoding::from_tag(tag).tag(), tag);
        }
    }

    #[test]
    fn known_encodings_have_distinct_tags_below_32() {
        let set = EncodingSet::all_known();
        assert_eq!(set.0.count_ones() as usize, Encoding::KNOWN.len());
        assert!(!set.contains(Encoding::Unknown(0x40)));
        assert_eq!(
            EncodingSet::empty().with(Encoding::Unknown(200)),
            EncodingSet::empty()
        );
    }
}
