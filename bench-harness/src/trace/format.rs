//! Constants of the trace file format, version 1 (see `spec/trace.md`).
//!
//! Every multi-byte fixed-width field is little-endian. Variable-length integers are LEB128
//! (see `trace::bytes`).

/// The eight bytes every trace file starts with.
pub const MAGIC: [u8; 8] = *b"pwtrace\0";

/// The eight bytes every finished trace file ends with.
pub const END_MAGIC: [u8; 8] = *b"pwtrend\0";

/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;

/// Length of the fixed part of the header: magic, version, reserved, body length.
pub const HEADER_PREFIX_LEN: usize = 16;

/// Largest header body a reader accepts (the body holds the free-form metadata).
pub const MAX_HEADER_BODY: u32 = 1 << 20;

/// Length of a block header: kind, 3 reserved bytes, uncompressed length, compressed length,
/// 4 reserved bytes, checksum.
pub const BLOCK_HEADER_LEN: usize = 24;

/// The only block kind of version 1: a zstd frame holding a run of entries.
pub const BLOCK_KIND_ENTRIES: u8 = 0x01;

/// Largest uncompressed block payload a reader accepts (8 MiB).
pub const MAX_BLOCK_UNCOMPRESSED: u32 = 8 << 20;

/// Largest compressed block payload a reader accepts (zstd's worst case for the largest
/// uncompressed block, rounded up).
pub const MAX_BLOCK_COMPRESSED: u32 = MAX_BLOCK_UNCOMPRESSED + (64 << 10);

/// Length of the footer, checksum included.
pub const FOOTER_LEN: usize = 8 + FOOTER_FIELDS * 8 + 8;

/// Number of `u64` fields in the footer.
pub const FOOTER_FIELDS: usize = 16;

/// The eight bytes the footer starts with.
pub const FOOTER_MAGIC: [u8; 8] = *b"pwfootr\0";

/// Length of the trailer: footer offset and [`END_MAGIC`].
pub const TRAILER_LEN: usize = 16;

/// Largest page count a trace may declare (2^40 pages: 4 PiB of 4 KiB pages).
pub const MAX_PAGE_COUNT: u64 = 1 << 40;

/// Entry tags inside a block payload.
pub mod tag {
    /// Start of an epoch: `time_ns: varint`.
    pub const EPOCH_BEGIN: u8 = 0x01;
    /// End of the current epoch.
    pub const EPOCH_END: u8 = 0x02;
    /// A page of the initial image: `pfn: zigzag varint delta`, `page_size` bytes.
    pub const INITIAL_PAGE: u8 = 0x10;
    /// A written page stored whole: `pfn delta`, `page_size` bytes.
    pub const PAGE_FULL: u8 = 0x20;
    /// A written page stored as a sparse XOR delta: `pfn delta`, `len: varint`, delta.
    pub const PAGE_DELTA: u8 = 0x21;
    /// A page written with content identical to its previous version: `pfn delta`.
    pub const PAGE_UNCHANGED: u8 = 0x22;
    /// A page whose new content is all zero bytes: `pfn delta`.
    pub const PAGE_ZERO: u8 = 0x23;
    /// Content-less traces: `pfn delta`, `count: varint >= 1` consecutive dirty pages.
    pub const DIRTY_RUN: u8 = 0x30;
}
