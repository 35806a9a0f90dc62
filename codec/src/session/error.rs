//! [`SessionError`]: why a session stopped, and [`ConfigError`]: why one could not start.

use std::time::Duration;

use crate::decoder::{ApplyError, ApplyErrorKind};
use crate::error::{EncodeError, Error};
use crate::frame::{AbortReason, FrameType, RefusalReason};
use crate::memory::MemoryError;
use crate::session::StreamId;
use crate::{PageCount, PageSize};

/// Why a session stopped. Every variant but [`SessionError::Refused`] aborts the migration
/// (the session sends ABORT with [`SessionError::abort_reason`] if it can); a destination then
/// holds no activated VM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A received frame did not parse, broke the protocol, or came from an incompatible peer
    /// (the codec's three error families).
    #[error(transparent)]
    Wire(#[from] Error),
    /// Destination: a page record could not be applied.
    #[error("page record not applied: {0}")]
    Apply(#[from] ApplyError),
    /// This side's guest memory failed.
    #[error("guest memory failed: {0}")]
    Memory(#[from] MemoryError),
    /// A frame arrived on a stream it may not travel on (anything but PAGE_BATCH on a page
    /// stream, or anything on a stream the peer may not write).
    #[error("frame {frame_type} on {stream}, where it may not travel")]
    FrameOnWrongStream {
        /// The stream.
        stream: StreamId,
        /// The frame's type.
        frame_type: FrameType,
    },
    /// Bytes arrived on a stream this session does not have.
    #[error("data on {0}, which this session does not accept")]
    UnknownStream(StreamId),
    /// A stream ended (or the transport lost it) before the migration was over.
    #[error("{0} ended before the migration was over")]
    StreamTruncated(StreamId),
    /// The connection to the peer is gone.
    #[error("the peer is gone")]
    PeerGone,
    /// Nothing moved for longer than the idle timeout.
    #[error("nothing received or sent for {0:?}")]
    Timeout(Duration),
    /// Destination: a stream held back by an iteration barrier buffers more than allowed
    /// (the transport must stop reading a stream `wants_data` refuses).
    #[error("{stream} buffers {buffered} bytes behind a barrier, over the limit of {max}")]
    BufferLimit {
        /// The stream.
        stream: StreamId,
        /// Bytes buffered.
        buffered: usize,
        /// The limit.
        max: usize,
    },
    /// The memory digests still differed after the allowed number of resends.
    #[error("memory digests still differ after {rounds} resends ({ranges} ranges differ)")]
    DigestMismatch {
        /// How many mismatching answers there were.
        rounds: u32,
        /// How many ranges differed in the last answer.
        ranges: usize,
    },
    /// Destination: the link dropped and the source did not resume the migration within the
    /// grace period.
    #[error("the link dropped and the source did not resume within {0:?}")]
    NotResumed(Duration),
    /// The destination refused the reservation (the migration ends without an ABORT).
    #[error("the destination refused: {0}")]
    Refused(RefusalReason),
    /// The peer aborted.
    #[error("the peer aborted: {reason}: {message}")]
    PeerAborted {
        /// The reason it gave.
        reason: AbortReason,
        /// Its message.
        message: String,
    },
    /// Source: the strategy asked for something this session does not implement.
    #[error("the strategy asked for {0}, which the session does not implement")]
    Unsupported(&'static str),
    /// Source: the strategy switched to post-copy, but the destination did not announce the
    /// post-copy feature in its HELLO. The migration is aborted (INCOMPATIBLE) rather than
    /// finished another way.
    #[error("the strategy needs {0}, which the destination does not support")]
    PeerLacksFeature(&'static str),
    /// Post-copy state (a hash per page) could not be allocated.
    #[error("cannot hold {0}")]
    OutOfMemory(&'static str),
    /// The driver called a method at a time it has no meaning (for example `suspended`
    /// before [`Event::SuspendRequested`](crate::session::Event::SuspendRequested)).
    #[error("{0} called at the wrong time")]
    CallOutOfOrder(&'static str),
    /// A frame this side built was refused by its own checks (a bug on this side).
    #[error("internal error: {0}")]
    Internal(#[from] EncodeError),
}

impl SessionError {
    /// The reason code of the ABORT this error makes the session send.
    ///
    /// ```
    /// use pagewire_codec::frame::AbortReason;
    /// use pagewire_codec::session::SessionError;
    /// assert_eq!(SessionError::PeerGone.abort_reason(), AbortReason::Cancelled);
    /// ```
    pub fn abort_reason(&self) -> AbortReason {
        match self {
            SessionError::Wire(error) => error.abort_reason(),
            SessionError::Apply(error) => match error.kind() {
                ApplyErrorKind::Malformed => AbortReason::MalformedFrame,
                ApplyErrorKind::PeerMisbehaved => AbortReason::ProtocolViolation,
                ApplyErrorKind::Local => AbortReason::Internal,
            },
            SessionError::Memory(_)
            | SessionError::Internal(_)
            | SessionError::CallOutOfOrder(_) => AbortReason::Internal,
            SessionError::FrameOnWrongStream { .. } | SessionError::UnknownStream(_) => {
                AbortReason::ProtocolViolation
            }
            SessionError::StreamTruncated(_) => AbortReason::MalformedFrame,
            SessionError::PeerGone | SessionError::PeerAborted { .. } => AbortReason::Cancelled,
            SessionError::Timeout(_) | SessionError::NotResumed(_) => AbortReason::Timeout,
            SessionError::BufferLimit { .. } | SessionError::OutOfMemory(_) => {
                AbortReason::ResourceExhausted
            }
            SessionError::DigestMismatch { .. } => AbortReason::DigestMismatch,
            SessionError::Refused(_)
            | SessionError::Unsupported(_)
            | SessionError::PeerLacksFeature(_) => AbortReason::Incompatible,
        }
    }
}

/// Why a session could not be built from its configuration.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The encoder settings are invalid.
    #[error(transparent)]
    Encoder(#[from] crate::encoder::ConfigError),
    /// The frame limit cannot hold a batch with one raw page.
    #[error("frame limit {max_frame_payload} is below {needed}, the size of a batch of one page")]
    FrameLimitTooSmall {
        /// The configured limit.
        max_frame_payload: u32,
        /// What one raw page needs.
        needed: u32,
    },
    /// The memory is larger than this machine can track (a page bitmap would not fit).
    #[error("a memory of {page_count} of {page_size} is too large to migrate from this machine")]
    MemoryTooLarge {
        /// The page size.
        page_size: PageSize,
        /// The page count.
        page_count: PageCount,
    },
}
