//! The source and destination session state machines, sans-IO, in the manner of
//! quinn-proto's `Connection`: bytes and time go in, bytes to send and events come out.
//!
//! A [`SourceSession`] and a [`DestinationSession`] own the protocol: the hello exchange
//! (the intersection of encodings; the destination accepts only the VM its memory was reserved
//! for), the iterations a [`Strategy`](crate::select::Strategy) plans, page records made by
//! the [`Encoder`](crate::Encoder) and applied by the [`Decoder`](crate::Decoder),
//! stop-and-copy with the device state, the commit digest (mismatching ranges are re-sent;
//! no activation before the digests agree), activation, and abort from either side. Every
//! frame sent and received goes through a [`PhaseTracker`](crate::PhaseTracker). They do no
//! I/O, have no clock (time is a [`Duration`](std::time::Duration) since an epoch the driver
//! chooses), never block and never panic on any input; memory is bounded.
//!
//! # Streams
//! One bidirectional control stream ([`StreamId::Control`]) and `page_streams` page streams
//! from the source ([`StreamId::Page`]`(0..n)`). Page batches go on the page streams, a page
//! always on the same one ([`PageAffinity`]); everything else on the control stream. Each
//! stream direction starts with the stream header, written by the session.
//!
//! # Driving a session (what a transport or simulator does)
//! - **Bytes in**: `handle_stream_data(now, stream, bytes)` for every chunk read from a
//!   stream, in order; `handle_stream_finished(now, stream)` when the peer finishes a stream;
//!   `handle_connection_lost(now)` when the connection is gone. On the destination, read a
//!   stream only while [`DestinationSession::wants_data`] says so: a stream held back by an
//!   iteration barrier must wait, so flow control slows the source down.
//! - **Bytes out**: `poll_transmit(now, stream, budget)` returns at most `budget` bytes for
//!   `stream`, or `None`. Call it for every stream whenever the stream can take bytes (the
//!   transport's send window). The source reads and encodes pages *only* here, so its buffers
//!   hold about `budget` bytes per stream: a slow link or a slow destination slows the source.
//! - **Events**: `poll_event()` after each call, until `None` ([`Event`]).
//! - **Time**: `poll_timeout()` gives the next deadline; call `handle_timeout(now)` then.
//! - **Operator**: `abort(now, reason, message)` aborts from either side, in any phase.
//! - **Guest (source)**: report writes with [`SourceSession::mark_dirty`] (the VMM's dirty
//!   log, harvested at each round's end by the session) or [`SourceSession::on_write`]; on
//!   [`Event::SuspendRequested`] suspend the guest, report its last writes, and call
//!   [`SourceSession::suspended`] with the device state. The guest memory is read through
//!   [`SourceMemory`](crate::memory::SourceMemory) and written at the destination through
//!   [`DestinationMemory`](crate::memory::DestinationMemory).
//! - **Post-copy** (strategies `postcopy` and `hybrid`; both HELLOs must announce the feature,
//!   else the source aborts with [`SessionError::PeerLacksFeature`]): on
//!   [`Event::SuspendRequested`] the source driver suspends as usual; the source then sends the
//!   DEFERRED bitmap, the device state and POSTCOPY_BEGIN, and both sides report
//!   [`Event::PostCopyStarted`]. The destination's VM runs from then on: before its guest
//!   touches a page that [`DestinationSession::is_present`] says is missing, the embedder calls
//!   [`DestinationSession::fault`] and holds the guest until [`Event::PageArrived`]. The source
//!   pushes the deferred pages in the background and sends requested ones first, on the
//!   control stream. The commit digest is then checked against the pages *as received*
//!   (the guest has written its own memory since); a mismatch aborts with DIGEST_MISMATCH.
//!   After POSTCOPY_BEGIN the source makes no dedup references: it no longer knows what any
//!   destination page holds.
//! - **Resume** (`resume` in both configs; spec/wire.md §5.3): when the connection is lost in
//!   iterative copy, stop-and-copy, post-copy or commit, `handle_connection_lost` keeps the
//!   migration and returns `Ok` ([`Event::ConnectionInterrupted`]; `is_interrupted()`). The
//!   source driver reconnects and calls [`SourceSession::resume`] on each new connection
//!   before feeding it; the destination driver feeds the new connection's streams to the same
//!   session, which answers the resume HELLO with RESUME, until its grace period
//!   (`poll_timeout`) ends. Both
//!   report [`Event::Resumed`]; the source sends again what the destination lacks, with empty
//!   caches. In post-copy the destination's guest keeps running (its faults wait for the
//!   resume), and only the deferred pages it lacks are sent. Which peer may resume is the
//!   transport's to check.
//! - **End**: when `is_closed()` is true, every byte is out: finish the streams and close.
//!   A destination runs the VM only if [`DestinationSession::activated`] is true.
//!
//! Any error (a malformed frame, a frame in the wrong phase or on the wrong stream, an
//! unknown mandatory frame, an oversized length, a truncated stream, a digest mismatch that
//! does not resolve, a peer gone) is returned as a [`SessionError`] from the call that found
//! it (from `poll_transmit`, through `take_error` on the source); the session queues ABORT
//! with the matching reason and reports [`Event::Aborted`].
//!
//! # Dedup across streams
//! Each page stream has its own encoder, so a dedup record names only a page of the same
//! stream. The destination applies a stream's records in order, so the content a reference
//! names is exactly the one the encoder saw; references never race across streams.
//!
//! ```
//! use std::num::NonZeroU16;
//! use std::time::Duration;
//! use pagewire_codec::frame::MigrationId;
//! use pagewire_codec::select::{build, Geometry};
//! use pagewire_codec::session::{
//!     DestinationConfig, DestinationSession, SourceConfig, SourceSession, StreamId,
//! };
//! use pagewire_codec::{InMemory, PageCount, PageSize};
//!
//! let (size, count) = (PageSize::KIB_4, PageCount(64));
//! let mut guest = InMemory::new(size, count).unwrap();
//! guest.as_bytes_mut()[5000] = 7;
//! let strategy = build(&"precopy".parse().unwrap(), Geometry { page_count: count, page_size: size }).unwrap();
//! let mut config = SourceConfig::new(MigrationId([1; 16]), strategy);
//! config.page_streams = NonZeroU16::new(2).unwrap();
//! config.cache_bytes = 1 << 20;
//! let mut source = SourceSession::new(config, guest, Duration::ZERO).unwrap();
//! let target = InMemory::new(size, count).unwrap();
//! let mut destination =
//!     DestinationSession::new(DestinationConfig::new(MigrationId([1; 16])), target, Duration::ZERO).unwrap();
//!
//! let now = Duration::ZERO;
//! let streams: Vec<StreamId> = source.streams().collect();
//! while !(source.is_closed() && destination.is_closed()) {
//!     for &stream in &streams {
//!         while let Some(bytes) = source.poll_transmit(now, stream, 64 << 10) {
//!             destination.handle_stream_data(now, stream, &bytes).unwrap();
//!         }
//!     }
//!     while let Some(bytes) = destination.poll_transmit(now, StreamId::Control, 64 << 10) {
//!         source.handle_stream_data(now, StreamId::Control, &bytes).unwrap();
//!     }
//!     while let Some(event) = source.poll_event() {
//!         if event == pagewire_codec::session::Event::SuspendRequested {
//!             source.suspended(now, bytes::Bytes::from_static(b"cpu")).unwrap();
//!         }
//!     }
//! }
//! assert!(destination.activated());
//! assert!(destination.memory() == source.memory());
//! ```

mod config;
mod core;
mod destination;
mod digest;
mod driven;
mod error;
mod event;
mod outbox;
mod postcopy;
mod resume;
mod source;
mod stream;

pub use config::{
    DEFAULT_MAX_COMMIT_ROUNDS, DEFAULT_RESUME_GRACE, DestinationConfig, SourceConfig,
};
pub use destination::{DestinationSession, DestinationStats};
pub use driven::Session;
pub use error::{ConfigError, SessionError};
pub use event::{AbortInfo, Event, Side};
pub use postcopy::{FaultError, FaultStatus};
pub use resume::resume_fits;
pub use source::{SourceSession, SourceStats};
pub use stream::{PageAffinity, StreamId};
