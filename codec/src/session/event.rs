//! [`Event`]: what a session tells its driver, in the order it happened.

use bytes::Bytes;

use crate::frame::{AbortReason, CommitAnswer, Iteration, Negotiated, RefusalReason};
use crate::phase::Phase;
use crate::select::CpuThrottle;
use crate::{PageCount, PageNumber};

/// Which side ended a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// This side (its operator, or an error it found).
    Local,
    /// The peer, by an ABORT frame (or by going away).
    Peer,
}

/// Why and by whom a migration was aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortInfo {
    /// Who aborted.
    pub side: Side,
    /// The reason code (the one the ABORT frame carries).
    pub reason: AbortReason,
    /// Details for the operator.
    pub message: String,
}

/// Something a session reports to its driver. Poll them with `poll_event` after every call
/// that feeds the session; they are few per iteration, so the queue stays short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The migration entered `phase`.
    PhaseChanged(Phase),
    /// Both hellos are in; this is what the peers agreed on.
    Negotiated(Negotiated),
    /// The destination refused the reservation (terminal).
    Refused(RefusalReason),
    /// Source: a live round begins. Slow the guest down to `throttle` for its duration.
    RoundStarted {
        /// The iteration carrying the round.
        iteration: Iteration,
        /// How many pages the round plans to send (for progress displays).
        planned: PageCount,
        /// How much guest CPU time to take away during the round.
        throttle: CpuThrottle,
    },
    /// An iteration is complete: sent (source) or applied (destination).
    IterationEnded {
        /// The iteration.
        iteration: Iteration,
        /// How many page batches it had.
        batches: u64,
        /// How many pages its records covered.
        pages: u64,
    },
    /// Source: the live rounds are over. Suspend the guest, then call
    /// `SourceSession::suspended` with its device state.
    SuspendRequested,
    /// Post-copy began (POSTCOPY_BEGIN sent or received). On the destination: load the device
    /// state and run the VM now, before every page arrived; before the guest touches a page
    /// that `DestinationSession::is_present` says is missing, call
    /// `DestinationSession::fault` and let the guest wait for [`Event::PageArrived`]. On the
    /// source: the guest stays suspended; the rest of memory follows in the background.
    PostCopyStarted {
        /// How many pages were deferred (missing at the destination when it started).
        deferred: PageCount,
    },
    /// Destination, post-copy: a page asked for with `DestinationSession::fault` arrived and
    /// is in memory; the guest waiting on it may go on.
    PageArrived(PageNumber),
    /// Destination: the complete device state, to load before the VM runs.
    DeviceState(Bytes),
    /// The destination's verdict on a commit digest (sent by the destination, received by
    /// the source). On a mismatch the source re-sends the named ranges.
    CommitResult(CommitAnswer),
    /// The VM runs at the destination: on the destination, run it now; on the source, the
    /// destination confirmed, and the source may free the VM (terminal).
    Activated,
    /// The connection dropped in a phase that allows a resume (spec/wire.md §5.3), and the
    /// session keeps the migration: the source may reconnect and call
    /// `SourceSession::resume`; the destination waits for the source's resume HELLO on a new
    /// connection, for at most its grace period. The guest does not run at the destination.
    ConnectionInterrupted,
    /// Destination: a source sent a fresh HELLO (no resume flag) for the migration kept after
    /// a dropped link, before its guest ran here, and the destination started the migration
    /// over (spec/wire.md §5.3): what it kept is dropped, and every page comes again.
    StartedOver,
    /// The migration continues on a new connection: RESUME sent (destination) or received
    /// (source).
    Resumed {
        /// The iteration the source continues with.
        next_iteration: Iteration,
        /// The pages the destination holds from completed iterations (the rest, and every
        /// page of a later iteration, are sent again).
        received: PageCount,
    },
    /// The migration was aborted (terminal). A destination then holds no activated VM.
    Aborted(AbortInfo),
}
