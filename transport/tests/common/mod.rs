//! Shared by the integration tests: certificates made with rcgen, and endpoints on loopback.
#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use pagewire_transport::certs::{CertificateAuthority, IssuedCertificate, Validity};
use pagewire_transport::{ConnectError, Dialer, Listener, PeerName, Refusal, TlsIdentity, Tuning};

/// A CA and the two peers' certificates, as `pagewire certs` makes them.
pub struct Pki {
    pub ca: CertificateAuthority,
    pub source: IssuedCertificate,
    pub destination: IssuedCertificate,
}

impl Pki {
    pub fn new() -> Pki {
        Pki::with_ca_name("test CA")
    }

    pub fn with_ca_name(ca_name: &str) -> Pki {
        let ca = CertificateAuthority::new(ca_name).unwrap();
        let source = ca.issue(&["source"], Validity::days(1)).unwrap();
        let destination = ca.issue(&["destination"], Validity::days(1)).unwrap();
        Pki {
            ca,
            source,
            destination,
        }
    }

    pub fn source_identity(&self) -> TlsIdentity {
        self.source.identity(&self.ca).unwrap()
    }

    pub fn destination_identity(&self) -> TlsIdentity {
        self.destination.identity(&self.ca).unwrap()
    }
}

pub fn name(name: &str) -> PeerName {
    name.parse().unwrap()
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A listener on loopback that expects the client to be named `source`.
pub fn listener(identity: &TlsIdentity) -> Listener {
    Listener::bind(
        loopback(),
        identity,
        Some(name("source")),
        &Tuning::default(),
    )
    .unwrap()
}

pub fn dialer(identity: &TlsIdentity) -> Dialer {
    Dialer::bind(loopback(), identity, &Tuning::default()).unwrap()
}

/// Runs `future`, failing the test if it takes more than ten seconds.
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("test step took more than 10 s")
}

/// The refusal inside a connection error, failing the test for any other outcome.
pub fn refusal<T: std::fmt::Debug>(result: Result<T, ConnectError>) -> Refusal {
    match result {
        Err(ConnectError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Dials `address` as a client that expects the server to be named `destination`.
pub async fn connect(
    client: &Dialer,
    address: SocketAddr,
) -> Result<quinn::Connection, ConnectError> {
    client.connect(address, &name("destination")).await
}
