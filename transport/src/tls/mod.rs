//! Mutual TLS for QUIC: both sides present a certificate signed by the operator's CA.
//!
//! - The **server** (the destination, by default) requires a client certificate that chains
//!   to the CA ([`rustls::server::WebPkiClientVerifier`]); a client without one, or with one
//!   from another CA, or an expired one, is refused during the handshake with the matching
//!   TLS alert.
//! - The **client** checks the server's certificate against the CA *and* against the name it
//!   dials ([`PeerName`]), as any TLS client does.
//! - The server can also require a **name for the client**: TLS has no such check built in,
//!   so the listener checks the client certificate's subject alternative names against the
//!   expected [`PeerName`] right after the handshake, before it accepts any stream (so before
//!   any frame is read), and closes the connection with
//!   [`CloseCode::PEER_NAME_MISMATCH`](crate::CloseCode::PEER_NAME_MISMATCH) if none matches.
//!
//! Only TLS 1.3 is offered (QUIC requires it), with ring as the crypto provider, and the ALPN
//! name [`ALPN`] names the protocol and its version. There is no way to turn verification off.

mod client;
mod error;
mod identity;
mod peer_name;
mod server;

pub use client::client_config;
pub use error::TlsConfigError;
pub use identity::TlsIdentity;
pub use peer_name::{InvalidPeerName, PeerName};
pub use server::server_config;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The ALPN protocol name: the protocol and its major version. A peer that offers another
/// is refused during the handshake (`no_application_protocol`).
pub const ALPN: &[u8] = b"pagewire/1";

/// The one crypto provider this crate uses (ring; aws-lc-rs would need cmake and a long
/// build for no gain here).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
