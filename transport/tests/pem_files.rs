//! Loading the PEM files `pagewire certs` writes, and the errors for bad files.

use std::path::PathBuf;

use pagewire_transport::certs::write_demo_set;
use pagewire_transport::{TlsConfigError, TlsIdentity};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pagewire-pem-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_demo_set_loads_and_bad_files_are_named_in_the_error() {
    let dir = scratch("demo");
    let set = write_demo_set(&dir, 1).unwrap();
    let (cert, key) = &set.source;
    TlsIdentity::from_pem_files(&set.ca, cert, key).unwrap();

    let missing = dir.join("missing.key");
    match TlsIdentity::from_pem_files(&set.ca, cert, &missing) {
        Err(TlsConfigError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a read error, got {other:?}"),
    }
    // A key where the certificate belongs, and a certificate where the key belongs.
    match TlsIdentity::from_pem_files(&set.ca, key, key) {
        Err(TlsConfigError::NoCertificate { path }) => assert_eq!(&path, key),
        other => panic!("expected no certificate, got {other:?}"),
    }
    match TlsIdentity::from_pem_files(&set.ca, cert, cert) {
        Err(TlsConfigError::NoPrivateKey { path }) => assert_eq!(&path, cert),
        other => panic!("expected no private key, got {other:?}"),
    }
    let garbled = dir.join("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    match TlsIdentity::from_pem_files(&garbled, cert, key) {
        Err(TlsConfigError::Pem { path, .. }) => assert_eq!(path, garbled),
        other => panic!("expected a PEM error, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).unwrap();
}
