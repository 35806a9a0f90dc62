//! # pagewire-transport
//!
//! Live migration of memory pages over QUIC with mutual TLS: this crate moves bytes and time
//! into `pagewire-codec`'s sans-IO sessions and sends what they produce.
//!
//! - [`tls`]: the operator's CA and each side's certificate and key (PEM files), mutual TLS
//!   with no way to turn verification off, ALPN `pagewire/1`.
//! - [`Listener`] / [`Dialer`]: QUIC endpoints with [`Tuning`] for bulk transfer; refused
//!   handshakes are typed ([`Refusal`]).
//! - [`streams`]: one control stream and several page streams behind bounded queues
//!   ([`Outbox`], [`Inbox`]), with an optional [`RateLimit`] on page bytes.
//! - [`cost`]: the encoder's cost policy for a link this transport drives (what a byte on the
//!   wire costs, so pages are compressed only where that saves time).
//! - [`driver`]: runs a codec `SourceSession` or `DestinationSession` over those streams.
//! - [`link_meter`]: measures the link while the source sends (its speed while it holds the
//!   source back, and the round trip), for the session's strategy and encoder policy.
//! - [`resume`]: after a dropped link, the source reconnects and the destination waits for
//!   the same peer, and the migration continues where it stood.
//! - [`memory`]: guest memory for the source ([`memory::SourceMemory`]) and the destination
//!   (the codec's `DestinationMemory`), in a `Vec`, a file, or a mapped file.
//!
//! The only `unsafe` code maps a file into memory (`memory/mapping.rs`, the one module
//! allowed it); everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "certs")]
pub mod certs;
pub mod cost;
pub mod driver;
pub mod endpoint;
pub mod link_meter;
pub mod memory;
pub mod rate;
pub mod refusal;
pub mod resume;
pub mod streams;
pub mod tls;
pub mod tuning;

pub use endpoint::{Dialer, EndpointError, Listener, SocketBuffers};
pub use rate::RateLimit;
pub use refusal::{CloseCode, ConnectError, Refusal, RefusedBy};
pub use resume::{ResumeError, ResumePolicy};
pub use streams::{Inbox, Outbox, Received, StreamConfig, StreamError, StreamId};
pub use tls::{ALPN, PeerName, TlsConfigError, TlsIdentity};
pub use tuning::Tuning;
