//! The operator's trust anchor and one side's certificate chain and key, loaded from PEM files.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::TlsConfigError;

/// What one side of a migration needs for mutual TLS: the CA certificate(s) the operator
/// trusts, and this side's own certificate chain (leaf first) and private key.
///
/// Both sides load the same CA and each its own certificate; a peer whose certificate is not
/// signed by that CA is refused during the handshake.
#[derive(Debug)]
pub struct TlsIdentity {
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> TlsIdentity {
        TlsIdentity {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsIdentity {
    /// Loads the CA certificate(s) from `ca`, this side's certificate chain (leaf first) from
    /// `cert` and its private key (PKCS#8, PKCS#1 or SEC1) from `key`, all PEM files.
    ///
    /// Each error names the file and what was wrong with it.
    pub fn from_pem_files(
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<TlsIdentity, TlsConfigError> {
        let ca_certs = read_certificates(ca)?;
        let chain = read_certificates(cert)?;
        let key_pem = read_file(key)?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
            rustls_pki_types::pem::Error::NoItemsFound => TlsConfigError::NoPrivateKey {
                path: key.to_path_buf(),
            },
            source => TlsConfigError::Pem {
                path: key.to_path_buf(),
                source,
            },
        })?;
        TlsIdentity::from_der(ca_certs, chain, key_der)
    }

    /// An identity from certificates and a key already in DER form (for embedders that keep
    /// them elsewhere than in files). Neither list may be empty.
    pub fn from_der(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsIdentity, TlsConfigError> {
        if ca.is_empty() {
            return Err(TlsConfigError::NoCaCertificate);
        }
        if chain.is_empty() {
            return Err(TlsConfigError::EmptyChain);
        }
        Ok(TlsIdentity { ca, chain, key })
    }

    /// The trust anchors built from the CA certificate(s).
    pub(crate) fn root_store(&self) -> Result<RootCertStore, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        for certificate in &self.ca {
            roots
                .add(certificate.clone())
                .map_err(|source| TlsConfigError::CaRejected { source })?;
        }
        Ok(roots)
    }

    /// This side's certificate chain, leaf first.
    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.clone()
    }

    /// This side's private key.
    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read_file(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsConfigError::Pem {
            path: PathBuf::from(path),
            source,
        })?;
    if certificates.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}
