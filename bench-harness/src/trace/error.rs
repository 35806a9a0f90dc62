//! Errors of the trace layer, split by whose fault they are: [`TraceReadError`] (the file is
//! not a valid trace, or I/O failed) and [`TraceWriteError`] (the caller broke the writer's
//! rules, or I/O failed).

use std::io;
use std::time::Duration;

use pagewire_codec::{InvalidPageSize, PageCount, PageNumber};

/// Which checksummed part of a file failed its check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksummedPart {
    /// The header (magic to metadata).
    Header,
    /// A block (its header and compressed payload).
    Block,
    /// The footer.
    Footer,
}

/// What was wrong with the bytes of a trace file, at a given offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A reserved field was not zero.
    #[error("reserved field is not zero")]
    ReservedNotZero,
    /// The header declared an invalid page size.
    #[error(transparent)]
    PageSize(#[from] InvalidPageSize),
    /// The header declared an unknown content mode.
    #[error("unknown content mode {0}")]
    UnknownContentMode(u8),
    /// The header body is longer than [`super::format::MAX_HEADER_BODY`].
    #[error("header body of {0} bytes exceeds the limit")]
    HeaderTooLarge(u32),
    /// The header body's fields do not fill it exactly.
    #[error("header body is malformed")]
    MalformedHeader,
    /// The metadata is not a JSON object of strings.
    #[error("metadata is not a JSON object of strings")]
    BadMetadata,
    /// The trailer points at a footer outside the file.
    #[error("trailer points to footer offset {0}, which is not where the footer can be")]
    BadFooterOffset(u64),
    /// The footer does not start with its magic.
    #[error("footer magic is wrong")]
    BadFooterMagic,
    /// The footer's page count is above [`super::format::MAX_PAGE_COUNT`].
    #[error("page count {0} exceeds the limit")]
    PageCountTooLarge(u64),
    /// A block of an unknown kind.
    #[error("unknown block kind {0:#04x}")]
    UnknownBlockKind(u8),
    /// A block's declared lengths are zero or above the limits.
    #[error("block lengths out of range (uncompressed {uncompressed}, compressed {compressed})")]
    BlockLength {
        /// Declared uncompressed length.
        uncompressed: u32,
        /// Declared compressed length.
        compressed: u32,
    },
    /// A block extends past the footer.
    #[error("block runs past the footer")]
    BlockOverrunsFooter,
    /// The zstd frame of a block did not decompress to its declared length.
    #[error("block payload does not decompress to its declared length")]
    Decompression,
    /// An entry tag this version does not know, or one not allowed in this kind of trace.
    #[error("unexpected entry tag {0:#04x}")]
    UnexpectedTag(u8),
    /// An entry ends past its block (entries never span blocks).
    #[error("entry truncated at the end of its block")]
    EntryTruncated,
    /// A malformed varint.
    #[error("malformed varint")]
    BadVarint,
    /// A page number outside the trace's page count.
    #[error("{page} is outside the trace's {count}")]
    PageOutOfRange {
        /// The page named.
        page: u64,
        /// The trace's page count.
        count: PageCount,
    },
    /// The same page twice in one epoch (or twice in the initial image).
    #[error("{0} appears twice in one epoch")]
    DuplicatePage(PageNumber),
    /// A dirty run of zero pages.
    #[error("dirty run of zero pages")]
    EmptyRun,
    /// A delta that does not fit its page, has an empty run, or is empty.
    #[error("page delta is malformed")]
    BadDelta,
    /// An epoch began before the previous one ended, or an entry came outside an epoch.
    #[error("entry out of order: {0}")]
    OutOfOrder(&'static str),
    /// An epoch's time is before the previous epoch's.
    #[error("epoch time {0:?} is before the previous epoch's")]
    TimeWentBackwards(Duration),
    /// The entries end inside an epoch.
    #[error("the last epoch is not closed")]
    UnterminatedEpoch,
    /// A count in the footer disagrees with the entries.
    #[error("footer says {field} = {footer}, the entries give {actual}")]
    FooterMismatch {
        /// The footer field.
        field: &'static str,
        /// Its value in the footer.
        footer: u64,
        /// The value the entries give.
        actual: u64,
    },
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceReadError {
    /// Reading the file failed.
    #[error("I/O error reading the trace: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with the trace magic.
    #[error("not a pagewire trace (bad magic)")]
    NotATrace,
    /// The file is a trace of a version this reader does not support.
    #[error(
        "trace format version {found} is not supported (this reader reads version {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this reader reads.
        supported: u16,
    },
    /// The file is shorter than its structure says: cut short, not finished, or its final
    /// bytes (the trailer) are damaged.
    #[error("trace is truncated (file is {file_len} bytes; {what})")]
    Truncated {
        /// Length of the file.
        file_len: u64,
        /// What was missing.
        what: &'static str,
    },
    /// A checksum did not match: the bytes were damaged.
    #[error("{part:?} checksum mismatch at offset {offset}: the file is corrupt")]
    ChecksumMismatch {
        /// The part whose checksum failed.
        part: ChecksummedPart,
        /// Offset of that part in the file.
        offset: u64,
    },
    /// The bytes are structurally invalid.
    #[error("corrupt trace at offset {offset}: {problem}")]
    Corrupt {
        /// Offset of the header, block or footer holding the problem.
        offset: u64,
        /// What was wrong.
        problem: Corruption,
    },
    /// The memory image needed for replay is larger than the reader's limit.
    #[error(
        "replay needs a {needed}-byte memory image, above the {limit}-byte limit (use a file-backed image)"
    )]
    ImageTooLarge {
        /// Bytes the image needs.
        needed: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The trace's page count is above the reader's limit.
    #[error("trace has {count}, above the reader's limit of {limit}")]
    PageCountAboveLimit {
        /// The trace's page count.
        count: PageCount,
        /// The configured limit.
        limit: PageCount,
    },
    /// Content was asked of a content-less trace.
    #[error("this trace holds no page contents (dirty-only)")]
    NoContent,
}

/// Why a trace could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceWriteError {
    /// Writing the output failed.
    #[error("I/O error writing the trace: {0}")]
    Io(#[from] io::Error),
    /// Content given to a dirty-only trace, or a content-less write to a full trace.
    #[error("{0} is not allowed in this trace's content mode")]
    WrongContentMode(&'static str),
    /// A page of the wrong length.
    #[error("page content is {got} bytes, the page size is {expected}")]
    WrongPageLength {
        /// The trace's page size.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A page outside the current page count (call `grow` first).
    #[error("{page} is outside the trace's {count}")]
    PageOutOfRange {
        /// The page given.
        page: PageNumber,
        /// The current page count.
        count: PageCount,
    },
    /// The same page twice in one epoch or in the initial image.
    #[error("{0} written twice in one epoch")]
    DuplicatePage(PageNumber),
    /// A call that is not allowed in the writer's current state.
    #[error("{0}")]
    OutOfOrder(&'static str),
    /// An epoch time before the previous epoch's.
    #[error("epoch time {given:?} is before the previous epoch's {previous:?}")]
    TimeWentBackwards {
        /// The previous epoch's time.
        previous: Duration,
        /// The time given.
        given: Duration,
    },
    /// A page count above the format's limit, or smaller than the current one.
    #[error("page count {0} is smaller than the current one or above the limit")]
    BadPageCount(PageCount),
    /// The metadata does not fit the header.
    #[error("metadata of {0} bytes exceeds the header limit")]
    MetadataTooLarge(usize),
}
