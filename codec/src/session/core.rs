//! [`Core`]: what both sessions share — the phase tracker, the control stream in both
//! directions, the event queue, the idle timer, and aborting.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;
use crate::frame::{Abort, AbortReason, Frame, FrameDecoder, Limits};
use crate::phase::{Direction, Phase, PhaseTracker};
use crate::session::outbox::Outbox;
use crate::session::{AbortInfo, Event, SessionError, Side};

/// The state both session kinds share.
#[derive(Debug)]
pub(crate) struct Core {
    /// The direction this side sends in.
    outgoing: Direction,
    tracker: PhaseTracker,
    /// Frames from the peer on the control stream.
    pub(crate) control_in: FrameDecoder,
    /// Frames to the peer on the control stream.
    control_out: Outbox,
    /// What the peer accepts (narrowed after the hellos).
    pub(crate) send_limits: Limits,
    events: VecDeque<Event>,
    idle_timeout: Option<Duration>,
    last_activity: Duration,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

impl Core {
    pub(crate) fn new(
        outgoing: Direction,
        receive_limits: Limits,
        idle_timeout: Option<Duration>,
    ) -> Core {
        Core {
            outgoing,
            tracker: PhaseTracker::new(),
            control_in: FrameDecoder::new(receive_limits),
            control_out: Outbox::default(),
            send_limits: Limits::default(),
            events: VecDeque::new(),
            idle_timeout,
            last_activity: Duration::ZERO,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    fn incoming(&self) -> Direction {
        match self.outgoing {
            Direction::SourceToDestination => Direction::DestinationToSource,
            Direction::DestinationToSource => Direction::SourceToDestination,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.tracker.phase()
    }

    pub(crate) fn tracker(&self) -> &PhaseTracker {
        &self.tracker
    }

    /// Whether the migration is over (done, refused or aborted).
    pub(crate) fn is_over(&self) -> bool {
        self.phase().is_terminal()
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds a frame this side sends to the tracker (without writing it anywhere).
    pub(crate) fn track_sent(&mut self, frame: &Frame) -> Result<(), SessionError> {
        self.track(self.outgoing, frame)
    }

    /// Feeds a frame the peer sent to the tracker.
    pub(crate) fn track_received(&mut self, frame: &Frame) -> Result<(), SessionError> {
        self.track(self.incoming(), frame)
    }

    fn track(&mut self, direction: Direction, frame: &Frame) -> Result<(), SessionError> {
        let before = self.tracker.phase();
        let after = self
            .tracker
            .on_frame(direction, frame)
            .map_err(|error| SessionError::Wire(Error::PeerMisbehaved(error)))?;
        if after != before && after != Phase::Aborted {
            self.emit(Event::PhaseChanged(after));
        }
        Ok(())
    }

    /// Sends a control frame: tracks it and queues it on the control stream.
    pub(crate) fn send(&mut self, frame: Frame) -> Result<(), SessionError> {
        frame.check(&self.send_limits)?;
        self.track_sent(&frame)?;
        self.control_out.push(&frame, &self.send_limits)?;
        Ok(())
    }

    /// A new connection replaces a lost one (a resume): the phase order starts again from the
    /// hellos, the control stream's bytes in both directions are dropped (a partial frame of
    /// the lost connection means nothing on the new one), and the peer's limits are unknown
    /// until its HELLO. Events, counters and timers stay.
    pub(crate) fn reconnect(&mut self, receive_limits: Limits) {
        self.tracker = PhaseTracker::new();
        self.control_in = FrameDecoder::new(receive_limits);
        // A new stream: its header is written again.
        self.control_out = Outbox::default();
        self.send_limits = Limits::default();
    }

    /// Drops the control bytes not yet taken: there is no connection to send them on.
    pub(crate) fn discard_output(&mut self) {
        self.control_out.clear();
    }

    /// Bytes of the control stream for the transport.
    pub(crate) fn take_control(&mut self, now: Duration, budget: usize) -> Option<Bytes> {
        let bytes = self.control_out.take(budget)?;
        self.sent(now, bytes.len());
        Some(bytes)
    }

    pub(crate) fn control_pending(&self) -> usize {
        self.control_out.len()
    }

    /// The latest time a call passed in.
    pub(crate) fn now(&self) -> Duration {
        self.last_activity
    }

    pub(crate) fn received(&mut self, now: Duration, len: usize) {
        self.bytes_in += len as u64;
        self.last_activity = self.last_activity.max(now);
    }

    pub(crate) fn sent(&mut self, now: Duration, len: usize) {
        self.bytes_out += len as u64;
        self.last_activity = self.last_activity.max(now);
    }

    /// Starts the idle timer at `now`.
    pub(crate) fn start(&mut self, now: Duration) {
        self.last_activity = now;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        if self.is_over() {
            return None;
        }
        self.idle_timeout
            .map(|idle| self.last_activity.saturating_add(idle))
    }

    /// The error the idle timer raises at `now`, if it has expired.
    pub(crate) fn expired(&self, now: Duration) -> Option<SessionError> {
        let deadline = self.poll_timeout()?;
        (now >= deadline).then(|| SessionError::Timeout(now - self.last_activity))
    }

    /// Aborts: sends ABORT (if the migration is not over already) and reports it.
    pub(crate) fn abort(&mut self, reason: AbortReason, message: String) {
        if self.is_over() {
            return;
        }
        let message = truncate(message, usize::from(self.send_limits.max_abort_message));
        let frame = Frame::Abort(Abort {
            reason,
            message: message.clone(),
        });
        // ABORT is legal in every phase; the frame fits the limits (message truncated), so
        // neither can fail, but if one did the migration is aborted all the same.
        if self.track_sent(&frame).is_ok() {
            let _ = self.control_out.push(&frame, &self.send_limits);
        }
        self.emit(Event::Aborted(AbortInfo {
            side: Side::Local,
            reason,
            message,
        }));
    }

    /// Aborts because of `error` (unless it is a refusal or the peer's own abort, which end
    /// the migration without an ABORT of ours), and hands the error back.
    pub(crate) fn fail(&mut self, error: SessionError) -> SessionError {
        match &error {
            SessionError::Refused(_) | SessionError::PeerAborted { .. } => {}
            _ => self.abort(error.abort_reason(), error.to_string()),
        }
        error
    }

    /// The peer's ABORT: reports it and ends the migration.
    pub(crate) fn peer_aborted(&mut self, abort: &Abort) -> SessionError {
        self.emit(Event::Aborted(AbortInfo {
            side: Side::Peer,
            reason: abort.reason,
            message: abort.message.clone(),
        }));
        SessionError::PeerAborted {
            reason: abort.reason,
            message: abort.message.clone(),
        }
    }

    /// Whether a stream's end is expected now (the migration is over).
    pub(crate) fn finish_ok(&self) -> bool {
        self.is_over()
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
