//! Errors, split by whose fault: malformed bytes, a misbehaving peer, an incompatible peer.
//!
//! The split follows rustls: a receiver needs to know *why* it must stop, because the answer
//! decides what it tells the operator and which [`AbortReason`] it sends.
//!
//! - [`InvalidMessage`]: the bytes do not parse (truncated, overlong varint, bad magic, a length
//!   over a limit, trailing bytes, an unknown encoding tag, ...).
//! - [`PeerMisbehaved`]: the bytes parse, but the peer breaks the protocol (a frame in the wrong
//!   phase, iteration numbers out of order, a page outside the memory, an encoding that was not
//!   negotiated, a stale dedup reference, ...).
//! - [`PeerIncompatible`]: the peer is well-behaved but cannot talk to us (another protocol
//!   version, an unknown mandatory frame, an unsupported page size, no common encoding, ...).
//! - [`EncodeError`]: *our* caller asked to encode something the wire cannot carry (a bug on
//!   this side; nothing was written).
//!
//! [`Error`] wraps the three peer-facing families. Every enum is `#[non_exhaustive]`: later
//! parts of the codec add variants to the family that fits (record application adds, for
//! example, decompression failures to [`InvalidMessage`] and its own checks to
//! [`PeerMisbehaved`]); a new variant names what was wrong and carries the values (page,
//! offset, length) a user needs to find it, never a free-form string.
//!
//! [`AbortReason`]: crate::frame::AbortReason

use crate::frame::{AbortReason, BitmapKind, FrameType};
use crate::phase::{Direction, Phase};
use crate::varint::VarintError;
use crate::{ContentHash, Encoding, PageCount, PageNumber};

/// Any error a received stream can cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not parse.
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] InvalidMessage),
    /// The peer sent well-formed bytes that break the protocol.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// The peer cannot talk to us.
    #[error("peer incompatible: {0}")]
    PeerIncompatible(#[from] PeerIncompatible),
}

impl Error {
    /// The reason code an abort frame sent because of this error carries.
    ///
    /// ```
    /// use pagewire_codec::error::{Error, InvalidMessage};
    /// use pagewire_codec::frame::AbortReason;
    /// let error = Error::from(InvalidMessage::BadMagic([0; 8]));
    /// assert_eq!(error.abort_reason(), AbortReason::MalformedFrame);
    /// ```
    pub fn abort_reason(&self) -> AbortReason {
        match self {
            Error::InvalidMessage(_) => AbortReason::MalformedFrame,
            Error::PeerMisbehaved(_) => AbortReason::ProtocolViolation,
            Error::PeerIncompatible(_) => AbortReason::Incompatible,
        }
    }
}

/// Bytes that do not parse as the wire format says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// The input ended inside a field.
    #[error("truncated {field}: needed {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes the field needs.
        needed: usize,
        /// How many bytes were left.
        available: usize,
    },
    /// A varint field is malformed.
    #[error("bad varint in {field}: {error}")]
    BadVarint {
        /// The field being read.
        field: &'static str,
        /// What is wrong with it.
        error: VarintError,
    },
    /// The stream does not start with `PAGEWIRE`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 8]),
    /// A reserved field or flag that must be zero is not.
    #[error("reserved field {field} is {value:#x}, must be 0")]
    ReservedNotZero {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A frame's length field is over the receiver's limit.
    #[error("frame {frame_type} of {length} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// The frame's type.
        frame_type: FrameType,
        /// Its declared payload length.
        length: u32,
        /// The receiver's limit.
        max: u32,
    },
    /// A length or count field is over a limit.
    #[error("{field} is {value}, over the limit of {max}")]
    OverLimit {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A field holds a value the format does not define.
    #[error("{field} has the undefined value {value:#x}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A frame's payload has bytes left after its last field.
    #[error("{count} trailing bytes after the payload of frame {frame_type}")]
    TrailingBytes {
        /// The frame's type.
        frame_type: FrameType,
        /// How many bytes were left.
        count: usize,
    },
    /// A delta-coded page number does not fit in 64 bits.
    #[error("page number overflows after {after}")]
    PageNumberOverflow {
        /// The last page before the overflow.
        after: PageNumber,
    },
    /// A zero-run record covers no pages.
    #[error("zero run at {page} covers no pages")]
    EmptyZeroRun {
        /// The run's first page.
        page: PageNumber,
    },
    /// A page record has an encoding tag this version does not define.
    #[error("unknown encoding tag {tag:#04x} at {page}")]
    UnknownEncoding {
        /// The record's page.
        page: PageNumber,
        /// The tag.
        tag: u8,
    },
    /// A record's payload length is outside what its encoding allows.
    #[error("{encoding:?} record at {page}: payload of {length} bytes, allowed {min}..={max}")]
    RecordLength {
        /// The record's page.
        page: PageNumber,
        /// Its encoding.
        encoding: Encoding,
        /// The declared length.
        length: u64,
        /// The smallest allowed length.
        min: u64,
        /// The largest allowed length.
        max: u64,
    },
    /// A zstd record's frame header is malformed or declares a content size other than one page.
    #[error("zstd record at {page}: frame header declares {declared:?} bytes, not one page")]
    ZstdContentSize {
        /// The record's page.
        page: PageNumber,
        /// The declared content size (`None`: the header could not be read).
        declared: Option<u64>,
    },
    /// Bitmap run lengths do not add up to the page count.
    #[error("bitmap runs cover {covered} pages, the bitmap has {page_count}")]
    BitmapRunsMismatch {
        /// Pages covered by the runs read (up to the first that went past the end).
        covered: u64,
        /// The bitmap's page count.
        page_count: u64,
    },
    /// A bitmap run other than the first has length zero.
    #[error("bitmap run {index} has length zero")]
    ZeroLengthRun {
        /// The run's index (0 is the first).
        index: u64,
    },
    /// A raw bitmap has bits set past its page count.
    #[error("raw bitmap has bits set past its {page_count} pages")]
    BitmapBitsPastEnd {
        /// The bitmap's page count.
        page_count: u64,
    },
    /// A text field is not UTF-8.
    #[error("{field} is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// The field.
        field: &'static str,
        /// The length of the valid prefix.
        valid_up_to: usize,
    },
    /// A device-state chunk reaches past the total it declares.
    #[error("device state chunk at {offset} of {length} bytes passes the total of {total}")]
    DeviceStateChunkPastEnd {
        /// The chunk's offset.
        offset: u64,
        /// The chunk's length.
        length: u64,
        /// The declared total.
        total: u64,
    },
}

/// Well-formed bytes that break the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A frame the current phase does not allow in this direction.
    #[error("frame {frame_type} is not allowed {direction} in phase {phase:?}")]
    UnexpectedFrame {
        /// The frame's type.
        frame_type: FrameType,
        /// The phase.
        phase: Phase,
        /// The direction it travelled.
        direction: Direction,
    },
    /// A hello names the wrong role for the direction it travelled.
    #[error("hello from the {direction} side names the other role")]
    WrongRole {
        /// The direction the hello travelled.
        direction: Direction,
    },
    /// An iteration starts out of order.
    #[error("iteration {got} started, expected {expected}")]
    IterationOutOfOrder {
        /// The iteration number expected.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// A frame names another iteration than the open one (or none is open).
    #[error("frame {frame_type} names iteration {got}, open iteration is {open:?}")]
    WrongIteration {
        /// The frame's type.
        frame_type: FrameType,
        /// The iteration it names.
        got: u64,
        /// The iteration that is open, if any.
        open: Option<u64>,
    },
    /// A frame that needs all iterations closed arrived while one was open.
    #[error("frame {frame_type} while iteration {open} is open")]
    IterationStillOpen {
        /// The frame's type.
        frame_type: FrameType,
        /// The open iteration.
        open: u64,
    },
    /// An ITERATION_END's counts differ from the batches received for the iteration.
    #[error("iteration {iteration} declares (batches, pages) {declared:?}, received {received:?}")]
    IterationCountMismatch {
        /// The iteration.
        iteration: u64,
        /// The batches and pages the ITERATION_END declares.
        declared: (u64, u64),
        /// The batches and pages received.
        received: (u64, u64),
    },
    /// A bitmap of a kind the phase does not allow.
    #[error("{kind:?} bitmap not allowed in phase {phase:?}")]
    UnexpectedBitmap {
        /// The bitmap's kind.
        kind: BitmapKind,
        /// The phase.
        phase: Phase,
    },
    /// A device-state chunk does not continue where the previous one ended, or changes the
    /// declared total.
    #[error(
        "device state chunk at {offset} of total {total}, expected offset {expected_offset} of {expected_total}"
    )]
    DeviceStateOutOfOrder {
        /// Where the chunk should start.
        expected_offset: u64,
        /// Where it starts.
        offset: u64,
        /// The total declared so far.
        expected_total: u64,
        /// The total the chunk declares.
        total: u64,
    },
    /// A frame that needs the whole device state came before all of it.
    #[error("device state incomplete: {received} of {total:?} bytes")]
    DeviceStateIncomplete {
        /// Bytes received.
        received: u64,
        /// The declared total (`None`: no chunk yet).
        total: Option<u64>,
    },
    /// A page outside the negotiated memory.
    #[error("{page} is outside the memory of {page_count}")]
    PageOutOfRange {
        /// The page.
        page: PageNumber,
        /// The negotiated page count.
        page_count: PageCount,
    },
    /// A record uses an encoding the peers did not negotiate.
    #[error("{encoding:?} record at {page}, encoding not negotiated")]
    EncodingNotNegotiated {
        /// The record's page.
        page: PageNumber,
        /// Its encoding.
        encoding: Encoding,
    },
    /// A frame needs a feature the peers did not negotiate.
    #[error("frame {frame_type} needs a feature that was not negotiated")]
    FeatureNotNegotiated {
        /// The frame's type.
        frame_type: FrameType,
    },
    /// The destination resumed into post-copy (its HELLO said its guest runs), but this
    /// source never sent POSTCOPY_BEGIN.
    #[error("the destination resumed into post-copy, which this source never began")]
    PostCopyNotBegun,
    /// A RESUME names an iteration the source never started.
    #[error("resume continues at iteration {next_iteration}, but only {started} were started")]
    ResumeAhead {
        /// The RESUME's next_iteration.
        next_iteration: u64,
        /// How many iterations the source started.
        started: u64,
    },
    /// A page count in a frame differs from the negotiated one.
    #[error("{field} names {got}, negotiated {expected}")]
    PageCountMismatch {
        /// The field.
        field: &'static str,
        /// The negotiated page count.
        expected: PageCount,
        /// The page count in the frame.
        got: PageCount,
    },
    /// A commit digest's range count does not match its range size and the page count.
    #[error("commit digest has {got} ranges, its range size needs {expected}")]
    DigestRangeCount {
        /// The count the range size and page count give.
        expected: u64,
        /// The count in the frame.
        got: u64,
    },
    /// A commit answer names a range the digest does not have.
    #[error("commit answer names range {range}, the digest has {range_count}")]
    MismatchRangeOutOfRange {
        /// The range named.
        range: u64,
        /// How many ranges the digest had.
        range_count: u64,
    },
    /// After POSTCOPY_BEGIN, a record covers a page that is not deferred or has arrived
    /// already: the destination's guest may have written it, so it must not be overwritten.
    #[error("post-copy record for {page}, which is not a deferred page still missing")]
    PageNotAwaited {
        /// The page.
        page: PageNumber,
    },
    /// A post-copy commit digest came while deferred pages were still missing.
    #[error("commit digest after post-copy with {missing} deferred pages never sent")]
    DeferredPagesMissing {
        /// How many deferred pages had not arrived.
        missing: u64,
    },
    /// A dedup record names a source page whose content does not hash to the record's hash:
    /// a stale reference, which must never be applied.
    #[error(
        "dedup record for {page} names {source_page} with hash {expected}, which holds {found}"
    )]
    DedupHashMismatch {
        /// The page being written.
        page: PageNumber,
        /// The page the content should come from.
        source_page: PageNumber,
        /// The hash the record carries.
        expected: ContentHash,
        /// The hash of what the source page holds.
        found: ContentHash,
    },
}

/// A well-behaved peer that cannot talk to us.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIncompatible {
    /// The stream is written in a protocol version we do not read.
    #[error(
        "protocol version {version} is not supported (this reader accepts {oldest}..={newest})"
    )]
    UnsupportedVersion {
        /// The stream's version.
        version: u16,
        /// The oldest version this reader accepts.
        oldest: u16,
        /// The newest version this reader accepts.
        newest: u16,
    },
    /// A mandatory frame type this version does not know.
    #[error("unknown mandatory frame type {0}")]
    UnknownMandatoryFrame(FrameType),
    /// A page size this implementation does not support.
    #[error("page size {0} is not supported")]
    UnsupportedPageSize(u32),
    /// The peer lacks an encoding every peer must support (zero runs and raw pages).
    #[error("peer does not support the mandatory {0:?} encoding")]
    MissingMandatoryEncoding(Encoding),
    /// The peer describes another memory or migration than ours.
    #[error("peer describes another VM: {0}")]
    OtherVm(&'static str),
    /// The largest frame the peer accepts cannot hold a batch with one raw page.
    #[error("peer accepts frames of at most {max_frame_payload} bytes, a raw page needs {needed}")]
    FrameLimitTooSmall {
        /// The peer's limit.
        max_frame_payload: u32,
        /// The payload a batch with one raw page needs.
        needed: u32,
    },
}

/// A value this side asked to encode that the wire cannot carry. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload would be longer than the limit.
    #[error("payload of {length} bytes is over the limit of {max}")]
    PayloadTooLarge {
        /// The payload's length.
        length: u64,
        /// The limit.
        max: u64,
    },
    /// A page batch's records are not in strictly ascending page order, or overlap.
    #[error("record at {page} comes before {next}, the first page after the previous record")]
    PagesNotAscending {
        /// The record's page.
        page: PageNumber,
        /// The first page after the previous record.
        next: PageNumber,
    },
    /// A value breaks a rule a receiver checks (the error a receiver would report).
    #[error("value would be rejected by the receiver: {0}")]
    Invalid(#[from] Error),
}

impl From<InvalidMessage> for EncodeError {
    fn from(error: InvalidMessage) -> EncodeError {
        EncodeError::Invalid(Error::InvalidMessage(error))
    }
}

impl From<PeerMisbehaved> for EncodeError {
    fn from(error: PeerMisbehaved) -> EncodeError {
        EncodeError::Invalid(Error::PeerMisbehaved(error))
    }
}
