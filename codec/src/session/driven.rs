//! [`Session`]: the calls a driver makes on either session, as one trait.

use std::time::Duration;

use bytes::Bytes;

use crate::frame::AbortReason;
use crate::memory::{DestinationMemory, SourceMemory};
use crate::session::{DestinationSession, Event, SessionError, SourceSession, StreamId};

/// What a driver needs from a session: the calls both sides share, so one generic loop (the
/// transport's `drive`, a test harness) runs either side. Each method is the session's own,
/// documented there.
pub trait Session {
    /// The streams this side writes.
    fn outgoing(&self) -> Vec<StreamId>;
    /// See `poll_transmit` on the sessions.
    fn poll_transmit(&mut self, now: Duration, stream: StreamId, budget: usize) -> Option<Bytes>;
    /// See `handle_stream_data`.
    fn handle_stream_data(
        &mut self,
        now: Duration,
        stream: StreamId,
        data: &[u8],
    ) -> Result<(), SessionError>;
    /// See `handle_stream_finished`.
    fn handle_stream_finished(
        &mut self,
        now: Duration,
        stream: StreamId,
    ) -> Result<(), SessionError>;
    /// See `handle_connection_lost`.
    fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError>;
    /// See `poll_timeout`.
    fn poll_timeout(&self) -> Option<Duration>;
    /// See `handle_timeout`.
    fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError>;
    /// See `poll_event`.
    fn poll_event(&mut self) -> Option<Event>;
    /// An error found inside `poll_transmit` (the source reports them this way).
    fn take_error(&mut self) -> Option<SessionError>;
    /// See `is_closed`.
    fn is_closed(&self) -> bool;
    /// Whether to read `stream` now (the destination's barrier; the source always reads).
    fn wants_data(&self, stream: StreamId) -> bool;
    /// See `abort`.
    fn abort(&mut self, now: Duration, reason: AbortReason, message: String);
}

impl<M: SourceMemory> Session for SourceSession<M> {
    fn outgoing(&self) -> Vec<StreamId> {
        self.streams().collect()
    }
    fn poll_transmit(&mut self, now: Duration, stream: StreamId, budget: usize) -> Option<Bytes> {
        SourceSession::poll_transmit(self, now, stream, budget)
    }
    fn handle_stream_data(
        &mut self,
        now: Duration,
        stream: StreamId,
        data: &[u8],
    ) -> Result<(), SessionError> {
        SourceSession::handle_stream_data(self, now, stream, data)
    }
    fn handle_stream_finished(
        &mut self,
        now: Duration,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        SourceSession::handle_stream_finished(self, now, stream)
    }
    fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError> {
        SourceSession::handle_connection_lost(self, now)
    }
    fn poll_timeout(&self) -> Option<Duration> {
        SourceSession::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        SourceSession::handle_timeout(self, now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        SourceSession::poll_event(self)
    }
    fn take_error(&mut self) -> Option<SessionError> {
        SourceSession::take_error(self)
    }
    fn is_closed(&self) -> bool {
        SourceSession::is_closed(self)
    }
    fn wants_data(&self, _stream: StreamId) -> bool {
        true
    }
    fn abort(&mut self, now: Duration, reason: AbortReason, message: String) {
        SourceSession::abort(self, now, reason, message);
    }
}

impl<M: DestinationMemory> Session for DestinationSession<M> {
    fn outgoing(&self) -> Vec<StreamId> {
        vec![StreamId::Control]
    }
    fn poll_transmit(&mut self, now: Duration, stream: StreamId, budget: usize) -> Option<Bytes> {
        DestinationSession::poll_transmit(self, now, stream, budget)
    }
    fn handle_stream_data(
        &mut self,
        now: Duration,
        stream: StreamId,
        data: &[u8],
    ) -> Result<(), SessionError> {
        DestinationSession::handle_stream_data(self, now, stream, data)
    }
    fn handle_stream_finished(
        &mut self,
        now: Duration,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        DestinationSession::handle_stream_finished(self, now, stream)
    }
    fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError> {
        DestinationSession::handle_connection_lost(self, now)
    }
    fn poll_timeout(&self) -> Option<Duration> {
        DestinationSession::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        DestinationSession::handle_timeout(self, now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        DestinationSession::poll_event(self)
    }
    fn take_error(&mut self) -> Option<SessionError> {
        None
    }
    fn is_closed(&self) -> bool {
        DestinationSession::is_closed(self)
    }
    fn wants_data(&self, stream: StreamId) -> bool {
        DestinationSession::wants_data(self, stream)
    }
    fn abort(&mut self, now: Duration, reason: AbortReason, message: String) {
        DestinationSession::abort(self, now, reason, message);
    }
}
