//! [`Session`]: the calls a driver makes on either session, as one trait.

use std::time::Duration;

use bytes::Bytes;

use crate::frame::AbortReason;
use crate::memory::{DestinationMemory, SourceMemory};
use crate::select::LinkEstimate;
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
    /// The transport measured the link: see `SourceSession::link_measured` (the destination
    /// has no use for it).
    fn link_measured(&mut self, link: LinkEstimate);
}

/// The trait methods both sessions have as inherent methods of the same name and signature,
/// forwarded as they are.
macro_rules! forward_shared_methods {
    ($session:ident) => {
        fn poll_transmit(
            &mut self,
            now: Duration,
            stream: StreamId,
            budget: usize,
        ) -> Option<Bytes> {
            $session::poll_transmit(self, now, stream, budget)
        }
        fn handle_stream_data(
            &mut self,
            now: Duration,
            stream: StreamId,
            data: &[u8],
        ) -> Result<(), SessionError> {
            $session::handle_stream_data(self, now, stream, data)
        }
        fn handle_stream_finished(
            &mut self,
            now: Duration,
            stream: StreamId,
        ) -> Result<(), SessionError> {
            $session::handle_stream_finished(self, now, stream)
        }
        fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError> {
            $session::handle_connection_lost(self, now)
        }
        fn poll_timeout(&self) -> Option<Duration> {
            $session::poll_timeout(self)
        }
        fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
            $session::handle_timeout(self, now)
        }
        fn poll_event(&mut self) -> Option<Event> {
            $session::poll_event(self)
        }
        fn is_closed(&self) -> bool {
            $session::is_closed(self)
        }
        fn abort(&mut self, now: Duration, reason: AbortReason, message: String) {
            $session::abort(self, now, reason, message);
        }
    };
}

impl<M: SourceMemory> Session for SourceSession<M> {
    forward_shared_methods!(SourceSession);

    fn outgoing(&self) -> Vec<StreamId> {
        self.streams().collect()
    }
    fn take_error(&mut self) -> Option<SessionError> {
        SourceSession::take_error(self)
    }
    fn wants_data(&self, _stream: StreamId) -> bool {
        true
    }
    fn link_measured(&mut self, link: LinkEstimate) {
        SourceSession::link_measured(self, link)
    }
}

impl<M: DestinationMemory> Session for DestinationSession<M> {
    forward_shared_methods!(DestinationSession);

    fn outgoing(&self) -> Vec<StreamId> {
        vec![StreamId::Control]
    }
    fn take_error(&mut self) -> Option<SessionError> {
        None
    }
    fn wants_data(&self, stream: StreamId) -> bool {
        DestinationSession::wants_data(self, stream)
    }
    fn link_measured(&mut self, _link: LinkEstimate) {}
}
