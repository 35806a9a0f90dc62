//! The driver: moves stream bytes and time into a codec session and sends what it produces,
//! over the [`streams`](crate::streams) of one QUIC connection.
//!
//! The loop, for either side:
//! 0. Every [`MeterConfig::interval`], read the connection's counters into a [`LinkMeter`]
//!    (with how long the loop waited for room in a full queue so far) and hand the session
//!    a changed estimate ([`Session::link_measured`]; the source's encoders and strategy use
//!    it, the destination ignores it). With a [`ProbeWindow`], QUIC's send window stays
//!    small until the link is known.
//! 1. For every stream the session writes whose queue has room, take up to
//!    [`DriverConfig::budget`] bytes from `poll_transmit` and queue them: one chunk per stream
//!    per pass, the streams in turn. The source reads and encodes pages only then, so a full
//!    queue (a slow link or a slow destination) stops the encoding: memory stays bounded.
//! 2. Hand every event to the caller (the source suspends the guest on `SuspendRequested`).
//! 3. Stop when the session is closed: finish the streams, wait for the writers. A migration
//!    that failed (abort, refusal, error) resets its page streams instead
//!    ([`Outbox::abandon_pages`]): only the control stream, which carries the ABORT, is
//!    drained. The peer takes a page stream reset that way as that stream's early end.
//! 4. Take bytes that arrived meanwhile (one chunk), or else yield to the runtime once, and go
//!    to 1; if nothing was sent or received in 1 and 2, wait for whichever comes first: bytes
//!    on a stream the session wants ([`Inbox::recv_from`] with `wants_data`, so a stream held
//!    by an iteration barrier stays unread and its sender is slowed by flow control), room in
//!    a queue, or the session's timeout.
//!
//! **What "sent" means.** A session counts a page (`pages_sent`) and its bytes (`bytes_sent`)
//! when `poll_transmit` returns them, and the driver queues them at once: the counters run
//! ahead of what quinn holds by at most [`StreamConfig::send_queue_chunks`] chunks of
//! [`DriverConfig::budget`] bytes per stream, and ahead of what the peer acknowledged by
//! quinn's send window ([`Tuning::send_window`]) on top. A progress bar fed by them shows
//! pages encoded and committed to the connection, not pages delivered.
//!
//! **Threads.** Encoding (source) and decoding (destination) run in `poll_transmit` and
//! `handle_stream_data`, on the task that runs the driver; the stream writers and readers and
//! quinn's own tasks run where [`streams::open`]/[`streams::accept`] were called. Run the
//! driver on another thread than the connection (for example `block_on` with a multi-thread
//! runtime, as `pagewire send` and `recv` do) and encoding overlaps sending; on one
//! current-thread runtime, quinn sends nothing while a chunk is being encoded.
//!
//! [`StreamConfig::send_queue_chunks`]: crate::streams::StreamConfig::send_queue_chunks
//! [`Tuning::send_window`]: crate::Tuning::send_window
//! [`streams::open`]: crate::streams::open
//! [`streams::accept`]: crate::streams::accept

use std::time::{Duration, Instant};

use pagewire_codec::frame::{AbortReason, RefusalReason};
use pagewire_codec::select::LinkEstimate;
pub use pagewire_codec::session::Session;
use pagewire_codec::session::{AbortInfo, Event, SessionError, Side};

use crate::link_meter::{LinkMeter, MeterConfig};
use crate::streams::{Inbox, Outbox, PAGES_ABANDONED, Received, StreamError, StreamId};

/// How the driver feeds a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// The most bytes taken from the session per `poll_transmit` (one queued chunk).
    pub budget: usize,
    /// How the link is measured for the session ([`Session::link_measured`]).
    pub meter: MeterConfig,
    /// A small QUIC send window while the link is not yet measured, or `None` to leave the
    /// connection's window as it is.
    pub probe: Option<ProbeWindow>,
}

impl Default for DriverConfig {
    /// 256 KiB chunks, the default meter, no probe window.
    fn default() -> DriverConfig {
        DriverConfig {
            budget: 256 << 10,
            meter: MeterConfig::default(),
            probe: None,
        }
    }
}

/// QUIC's send window while a source does not know its link yet.
///
/// Why: pages are encoded for the link the session believes in, and a session that was told
/// no speed believes in a fast link (pages go raw). QUIC's send window holds what was encoded
/// and not yet acknowledged, 32 MiB by default ([`Tuning::send_window`]): on a slow link all
/// of it is encoded raw before the [`LinkMeter`]'s first interval ends (a quarter of a
/// second), and takes seconds to cross. With a window of [`ProbeWindow::bytes`] instead, a
/// slow link holds the source back at once (the meter sees that), and far fewer pages are
/// encoded before the first estimate reaches the encoders.
///
/// The driver sets the window [`ProbeWindow::full`] again once the meter knows the link, or
/// once the link has carried [`ProbeWindow::LINK_PROVEN`] times the probe window (a link
/// that takes that much without holding the source back is fast enough for raw pages; the
/// meter then measures with the full window). A probe window smaller than the link's
/// bandwidth-delay product slows the first interval (1 MiB over a 50 ms round trip is
/// 21 MB/s), and the meter may then measure the window instead of the link; that low
/// estimate lasts until the full window lets more across than it says (the meter drops an
/// estimate once the link carries a quarter more than it).
///
/// [`Tuning::send_window`]: crate::Tuning::send_window
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeWindow {
    /// The send window until the link is known, in bytes.
    pub bytes: u64,
    /// The send window afterwards (the connection's [`Tuning::send_window`]).
    ///
    /// [`Tuning::send_window`]: crate::Tuning::send_window
    pub full: u64,
}

impl ProbeWindow {
    /// How many probe windows the link must carry to count as fast without a measurement.
    pub const LINK_PROVEN: u64 = 4;

    /// A 1 MiB probe window (a millisecond at 8 Gbit/s: a fast link is barely slowed),
    /// returning to `full` afterwards.
    pub fn mib(full: u64) -> ProbeWindow {
        ProbeWindow {
            bytes: 1 << 20,
            full,
        }
    }

    /// Whether probing is over: the meter knows the link, or the link carried
    /// [`ProbeWindow::LINK_PROVEN`] windows (`wire_bytes` since the connection opened).
    fn over(&self, link: LinkEstimate, wire_bytes: u64) -> bool {
        link.bytes_per_second > 0 || wire_bytes >= self.bytes.saturating_mul(Self::LINK_PROVEN)
    }
}

/// Why a driven migration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The session found an error, or the peer refused or aborted (the session queued ABORT
    /// where one was due, and the driver sent it before returning).
    #[error("migration failed: {0}")]
    Session(#[from] SessionError),
    /// The migration was aborted without an error from the session: by this side's operator
    /// (`abort` on the session, for example from the event callback).
    #[error("migration aborted {}: {}: {}", side_name(.0.side), .0.reason, .0.message)]
    Aborted(AbortInfo),
    /// The destination refused the reservation.
    #[error("migration refused by the destination: {0}")]
    Refused(RefusalReason),
    /// A stream failed (the session was told the connection is lost).
    #[error("transport failed: {0}")]
    Stream(#[from] StreamError),
    /// A dropped link could not be resumed (see [`crate::resume`]).
    #[error("resume failed: {0}")]
    Resume(#[from] crate::resume::ResumeError),
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Local => "by this side",
        Side::Peer => "by the peer",
    }
}

impl DriveError {
    /// The failure an event stands for, if it ends the migration without activation.
    fn from_event(event: &Event) -> Option<DriveError> {
        match event {
            Event::Aborted(info) => Some(DriveError::Aborted(info.clone())),
            Event::Refused(reason) => Some(DriveError::Refused(*reason)),
            _ => None,
        }
    }
}

/// Drives `session` over `outbox`/`inbox` until it is closed. `on_event` sees every event
/// (with the session, to answer it: the source calls `suspended` on `SuspendRequested`).
/// `epoch` is the instant the session's time counts from.
///
/// `Ok` means the migration reached activation and every byte the session produced was handed
/// to QUIC. A refusal or an abort, by either side and for any reason, is an error: the first
/// one found, so a session error (which names what went wrong) comes before the
/// [`Event::Aborted`] it causes, and an abort by this side's operator (no session error) is
/// [`DriveError::Aborted`]. Keep the connection open until the peer is done too.
pub async fn drive<S: Session>(
    session: &mut S,
    outbox: Outbox,
    inbox: Inbox,
    epoch: Instant,
    config: DriverConfig,
    on_event: impl FnMut(&mut S, Duration, Event) -> Result<(), SessionError>,
) -> Result<(), DriveError> {
    let never = std::future::pending();
    drive_abortable(session, outbox, inbox, epoch, config, on_event, never).await
}

/// [`drive`], and when `abort` completes first (the operator pressed Ctrl-C, a deadline
/// passed), the session aborts with the reason and message it gives: ABORT goes to the peer,
/// and the result is [`DriveError::Aborted`].
pub async fn drive_abortable<S: Session>(
    session: &mut S,
    mut outbox: Outbox,
    mut inbox: Inbox,
    epoch: Instant,
    config: DriverConfig,
    mut on_event: impl FnMut(&mut S, Duration, Event) -> Result<(), SessionError>,
    abort: impl Future<Output = (AbortReason, String)>,
) -> Result<(), DriveError> {
    let mut abort = std::pin::pin!(abort);
    let mut abort_pending = true;
    let mut early_ends: Vec<StreamId> = Vec::new();
    let outgoing = session.outgoing();
    let mut failure: Option<DriveError> = None;
    let mut meter = LinkMeter::new(config.meter);
    let mut probe = config.probe;
    if let Some(probe) = &probe {
        outbox.set_send_window(probe.bytes);
    }
    // How long the loop waited with a stream queue full, in all.
    let mut blocked = Duration::ZERO;
    loop {
        let now = epoch.elapsed();
        if meter.due(now)
            && let Some(link) = meter.observe(outbox.reading(now, blocked))
        {
            session.link_measured(link);
        }
        // Checked every pass: a fast link carries the probe windows in milliseconds.
        if let Some(window) =
            probe.take_if(|probe| probe.over(meter.estimate(), outbox.wire_bytes()))
        {
            outbox.set_send_window(window.full);
        }
        let mut progressed = false;
        let mut full = false;
        for &stream in &outgoing {
            if !outbox.has_room(stream) {
                full = true;
                continue;
            }
            if let Some(bytes) = session.poll_transmit(now, stream, config.budget) {
                outbox.send(stream, bytes).await?;
                progressed = true;
            }
        }
        if let Some(error) = session.take_error() {
            failure.get_or_insert(error.into());
        }
        while let Some(event) = session.poll_event() {
            // Answering an event (suspending the guest) may give the session bytes to send:
            // look again before waiting, or nothing would wake the loop.
            progressed = true;
            if let Some(ended) = DriveError::from_event(&event) {
                failure.get_or_insert(ended);
            }
            if let Err(error) = on_event(session, now, event) {
                failure.get_or_insert(error.into());
            }
        }
        if session.is_closed() {
            break;
        }
        let deadline = session.poll_timeout().map(|at| epoch + at);
        let waiting = Instant::now();
        // After progress, bytes that already arrived are still taken before sending more
        // (`biased`: in this order): a source whose page streams always have room would
        // otherwise read nothing until its pages ran out, and a post-copy PAGE_REQUEST would
        // wait behind the whole background push. After progress the loop also yields to the
        // runtime (the last branch): a pass encodes at most one chunk per stream, and quinn's
        // tasks, which may share this thread, run between passes. Without that, a source
        // whose queues have room would encode them full in one go: seconds without an ACK or
        // a keep-alive on a loaded machine, long enough for the peer's idle timeout.
        let result = tokio::select! {
            biased;
            (reason, message) = &mut abort, if abort_pending => {
                abort_pending = false;
                session.abort(epoch.elapsed(), reason, message);
                Ok(())
            }
            received = inbox.recv_from(|stream| session.wants_data(stream)) => {
                let now = epoch.elapsed();
                match received {
                    Some(Ok(Received::Bytes(stream, bytes))) => {
                        session.handle_stream_data(now, stream, &bytes)
                    }
                    // A page stream's end means something only with the control stream's: a
                    // peer that aborts ends its page streams mid-batch and says why on the
                    // control stream, whose bytes may arrive later.
                    Some(Ok(Received::Finished(stream))) if stream != StreamId::Control => {
                        early_ends.push(stream);
                        Ok(())
                    }
                    Some(Ok(Received::Finished(_))) | None => {
                        let ended = match received {
                            Some(_) => session.handle_stream_finished(now, StreamId::Control),
                            None => session.handle_connection_lost(now),
                        };
                        early_ends.drain(..).fold(ended, |result, stream| {
                            result.and(session.handle_stream_finished(now, stream))
                        })
                    }
                    // A peer that aborts resets its page streams: like a page stream's early
                    // end, it means something only with the control stream's end.
                    Some(Err(StreamError::Read {
                        stream,
                        source: quinn::ReadError::Reset(code),
                    })) if stream != StreamId::Control && code == PAGES_ABANDONED => {
                        early_ends.push(stream);
                        Ok(())
                    }
                    Some(Err(error)) => {
                        let lost = session.handle_connection_lost(now);
                        failure.get_or_insert(error.into());
                        lost
                    }
                }
            }
            () = outbox.room(), if !progressed => Ok(()),
            () = sleep_until(deadline), if !progressed => session.handle_timeout(epoch.elapsed()),
            () = tokio::task::yield_now(), if progressed => Ok(()),
        };
        if full && !progressed {
            blocked += waiting.elapsed();
        }
        if let Err(error) = result {
            failure.get_or_insert(error.into());
        }
        if matches!(failure, Some(DriveError::Stream(_))) && !session.is_closed() {
            // Nothing more can be sent or received.
            break;
        }
    }
    if failure.is_some() {
        // No activation will come: the queued pages are not worth sending.
        outbox.abandon_pages();
    }
    let finished = outbox.finish().await;
    match failure {
        Some(error) => Err(error),
        None => finished.map(|_| ()).map_err(DriveError::from),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_ends_once_the_link_is_known_or_has_carried_four_windows() {
        let probe = ProbeWindow::mib(32 << 20);
        assert!(!probe.over(LinkEstimate::UNKNOWN, 0));
        assert!(!probe.over(LinkEstimate::UNKNOWN, (4 << 20) - 1));
        assert!(probe.over(LinkEstimate::UNKNOWN, 4 << 20));
        let measured = LinkEstimate {
            bytes_per_second: 2_000_000,
            rtt: Duration::from_millis(20),
        };
        assert!(probe.over(measured, 0));
    }
}
