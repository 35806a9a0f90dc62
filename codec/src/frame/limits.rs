//! [`Limits`]: what a receiver accepts. Every length on the wire is checked against these
//! before it is used and before anything is allocated for it.

use crate::{EncodingSet, PageCount, PageSize};

/// The bounds a receiver decodes frames within, and the negotiated memory they refer to.
///
/// Before the hellos are exchanged the memory is unknown: [`Limits::default`] has a page count
/// of zero, so every frame that names pages is refused until [`Limits::with_memory`] sets the
/// negotiated geometry.
///
/// ```
/// use pagewire_codec::frame::Limits;
/// use pagewire_codec::{EncodingSet, PageCount, PageSize};
/// let limits = Limits::default().with_memory(PageSize::KIB_4, PageCount(1 << 20), EncodingSet::all_known());
/// assert_eq!(limits.page_count, PageCount(1 << 20));
/// assert!(limits.max_frame_payload >= Limits::min_frame_payload(PageSize::MAX));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The negotiated page size: raw records carry exactly this many bytes, and no record
    /// payload may be longer.
    pub page_size: PageSize,
    /// The negotiated page count: every page a frame names must be below it, and bitmaps must
    /// cover exactly this many pages.
    pub page_count: PageCount,
    /// The negotiated encodings: a record in another encoding is refused.
    pub encodings: EncodingSet,
    /// The largest frame payload accepted, in bytes (at most [`Limits::HARD_MAX_FRAME_PAYLOAD`]).
    pub max_frame_payload: u32,
    /// The most records one page batch may hold.
    pub max_records_per_batch: u32,
    /// The largest device state (the total over its chunks), in bytes.
    pub max_device_state: u64,
    /// The longest abort message, in bytes.
    pub max_abort_message: u16,
    /// The most pages one post-copy page request may name.
    pub max_requested_pages: u32,
    /// The most ranges a commit digest may have.
    pub max_digest_ranges: u32,
}

impl Limits {
    /// No receiver accepts a frame payload larger than this (16 MiB).
    pub const HARD_MAX_FRAME_PAYLOAD: u32 = 16 << 20;
    /// The default largest frame payload (4 MiB): a batch with a 2 MiB raw page and more.
    pub const DEFAULT_MAX_FRAME_PAYLOAD: u32 = 4 << 20;
    /// Bytes a batch with one record needs beyond the record's payload: the batch header
    /// (12 bytes) and the largest record header (pfn delta, tag, two varints: 31 bytes),
    /// rounded up.
    pub const BATCH_OVERHEAD: u32 = 64;

    /// The smallest frame payload limit a peer may announce for pages of `page_size`: room
    /// for a batch holding one raw page.
    pub fn min_frame_payload(page_size: PageSize) -> u32 {
        page_size.get() + Self::BATCH_OVERHEAD
    }

    /// These limits over the negotiated memory and encodings.
    pub fn with_memory(
        self,
        page_size: PageSize,
        page_count: PageCount,
        encodings: EncodingSet,
    ) -> Limits {
        Limits {
            page_size,
            page_count,
            encodings,
            ..self
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            page_size: PageSize::default(),
            page_count: PageCount(0),
            encodings: EncodingSet::all_known(),
            max_frame_payload: Self::DEFAULT_MAX_FRAME_PAYLOAD,
            max_records_per_batch: 1 << 16,
            max_device_state: 256 << 20,
            max_abort_message: 1024,
            max_requested_pages: 4096,
            max_digest_ranges: 1 << 16,
        }
    }
}
