//! The server side's QUIC configuration: requires a client certificate from the CA.

use std::sync::Arc;

use quinn::crypto::rustls::QuicServerConfig;
use rustls::server::WebPkiClientVerifier;

use crate::tls::{ALPN, TlsConfigError, TlsIdentity, provider};

/// A QUIC server configuration that presents `identity`'s certificate and refuses any client
/// without a valid certificate signed by `identity`'s CA.
///
/// The transport settings are left at quinn's defaults; [`crate::endpoint`] sets its own.
pub fn server_config(identity: &TlsIdentity) -> Result<quinn::ServerConfig, TlsConfigError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(identity.root_store()?),
        provider.clone(),
    )
    .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::Identity)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain(), identity.key())
        .map_err(TlsConfigError::Identity)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls)?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(quic)))
}
