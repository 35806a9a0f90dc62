//! Making a CA and peer certificates (feature `certs`), for trying pagewire out and for tests.
//!
//! Production deployments use the operator's own PKI; these certificates are ECDSA P-256,
//! valid from a day ago for a chosen number of days, and usable for both client and server
//! authentication (either side may listen).
//!
//! ```
//! use pagewire_transport::certs::{CertificateAuthority, Validity};
//! let ca = CertificateAuthority::new("pagewire example CA").unwrap();
//! let peer = ca.issue(&["destination"], Validity::days(1)).unwrap();
//! let identity = peer.identity(&ca).unwrap();
//! # let _ = identity;
//! ```

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::tls::{TlsConfigError, TlsIdentity};

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// rcgen refused the parameters (for example a name that is not a valid DNS name).
    #[error("cannot make the certificate")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The certificate could not be turned into a TLS identity.
    #[error(transparent)]
    Identity(#[from] TlsConfigError),
}

/// How long a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The first moment it is valid.
    pub not_before: OffsetDateTime,
    /// The last moment it is valid.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from a day ago (clock skew between the two machines) for `days` days from now.
    pub fn days(days: i64) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(days),
        }
    }

    /// Expired: valid for a day that ended a week ago.
    pub fn expired() -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::days(8),
            not_after: now - Duration::days(7),
        }
    }
}

/// A self-signed certificate authority that issues peer certificates.
pub struct CertificateAuthority {
    certificate: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

/// A certificate issued by a [`CertificateAuthority`], with its private key.
pub struct IssuedCertificate {
    certificate: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate").finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new CA named `common_name`, valid for ten years.
    pub fn new(common_name: &str) -> Result<CertificateAuthority, CertsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let validity = Validity::days(3650);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(CertificateAuthority { certificate, key })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// Issues a certificate naming `names` (DNS names or IP addresses) in its subject
    /// alternative names, for client and server authentication.
    pub fn issue(
        &self,
        names: &[&str],
        validity: Validity,
    ) -> Result<IssuedCertificate, CertsError> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.certificate, &self.key)?;
        Ok(IssuedCertificate { certificate, key })
    }
}

impl IssuedCertificate {
    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The private key, PKCS#8 DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    /// The TLS identity of a peer holding this certificate and trusting `ca`.
    pub fn identity(&self, ca: &CertificateAuthority) -> Result<TlsIdentity, CertsError> {
        Ok(TlsIdentity::from_der(
            vec![ca.certificate_der()],
            vec![self.certificate_der()],
            self.key_der(),
        )?)
    }
}

/// The files [`write_demo_set`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoSet {
    /// The CA certificate (both sides trust it).
    pub ca: PathBuf,
    /// The source's certificate and key.
    pub source: (PathBuf, PathBuf),
    /// The destination's certificate and key.
    pub destination: (PathBuf, PathBuf),
}

/// Makes a CA and two peer certificates, named `source` and `destination`, valid for `days`
/// days, into `directory`: `ca.pem`, `source.pem`, `source.key`, `destination.pem`,
/// `destination.key`. The destination's certificate also names `localhost`, `127.0.0.1` and
/// `::1`, so a trial on one machine can dial it by address. Keys are written with mode 0600.
pub fn write_demo_set(directory: &Path, days: i64) -> Result<DemoSet, CertsError> {
    let write = |name: &str, contents: &str, private: bool| -> Result<PathBuf, CertsError> {
        let path = directory.join(name);
        write_file(&path, contents, private).map_err(|source| CertsError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    std::fs::create_dir_all(directory).map_err(|source| CertsError::Write {
        path: directory.to_path_buf(),
        source,
    })?;
    let ca = CertificateAuthority::new("pagewire demo CA")?;
    let validity = Validity::days(days);
    let source = ca.issue(&["source"], validity)?;
    let destination = ca.issue(&["destination", "localhost", "127.0.0.1", "::1"], validity)?;
    Ok(DemoSet {
        ca: write("ca.pem", &ca.certificate_pem(), false)?,
        source: (
            write("source.pem", &source.certificate_pem(), false)?,
            write("source.key", &source.key_pem(), true)?,
        ),
        destination: (
            write("destination.pem", &destination.certificate_pem(), false)?,
            write("destination.key", &destination.key_pem(), true)?,
        ),
    })
}

fn write_file(path: &Path, contents: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}
