//! Why a TLS configuration could not be built.

use std::path::PathBuf;

/// Why the certificates and key could not be loaded, or a TLS configuration built from them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file is not valid PEM (or holds a section that does not decode).
    #[error("{} is not valid PEM", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` section.
    #[error("{} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key section (PKCS#8, PKCS#1 or SEC1).
    #[error("{} holds no private key", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// No CA certificate was given.
    #[error("no CA certificate given")]
    NoCaCertificate,
    /// No certificate chain was given for this side.
    #[error("no certificate chain given for this side")]
    EmptyChain,
    /// A CA certificate cannot serve as a trust anchor.
    #[error("the CA certificate cannot serve as a trust anchor")]
    CaRejected {
        /// Why.
        source: rustls::Error,
    },
    /// The verifier of client certificates could not be built from the CA.
    #[error("cannot verify client certificates with this CA")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the certificate chain or key (unsupported key type, key not matching the
    /// certificate, ...).
    #[error("the certificate chain or private key is not usable")]
    Identity(#[source] rustls::Error),
    /// The TLS configuration has no cipher suite QUIC can start with.
    #[error("the TLS configuration cannot be used for QUIC")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}
