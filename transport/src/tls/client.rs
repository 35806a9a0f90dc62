//! The client side's QUIC configuration: presents a certificate, checks the server's.

use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;

use crate::tls::{ALPN, TlsConfigError, TlsIdentity, provider};

/// A QUIC client configuration that presents `identity`'s certificate and accepts only a
/// server whose certificate is signed by `identity`'s CA (and names the server as dialled;
/// the name is given per connection).
pub fn client_config(identity: &TlsIdentity) -> Result<quinn::ClientConfig, TlsConfigError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::Identity)?
        .with_root_certificates(identity.root_store()?)
        .with_client_auth_cert(identity.chain(), identity.key())
        .map_err(TlsConfigError::Identity)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls)?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
}
