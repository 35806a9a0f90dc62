//! Shared by the integration tests: certificates made with rcgen, endpoints and connected
//! peers on loopback, and a destination driven over a connection.
#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pagewire_codec::frame::MigrationId;
use pagewire_codec::memory::DestinationMemory;
use pagewire_codec::select::{Geometry, build};
use pagewire_codec::session::{DestinationConfig, DestinationSession, SourceConfig, SourceSession};
use pagewire_codec::{InMemory, PageCount, PageSize};
use pagewire_transport::certs::{CertificateAuthority, IssuedCertificate, Validity};
use pagewire_transport::driver::{DriveError, DriverConfig, drive};
use pagewire_transport::streams::{self, StreamConfig};
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

/// A source and a destination connected over QUIC with mutual TLS on loopback, and their
/// endpoints (kept as long as the connections).
pub struct Connected {
    /// The destination's end (the listener accepted it).
    pub destination: quinn::Connection,
    /// The source's end (the dialer connected it).
    pub source: quinn::Connection,
    pub listener: Listener,
    pub dialer: Dialer,
}

/// Connects a source to a destination with certificates from a fresh CA, `tuning` on both.
pub async fn connected(tuning: &Tuning) -> Connected {
    let pki = Pki::new();
    let listener = Listener::bind(
        loopback(),
        &pki.destination_identity(),
        Some(name("source")),
        tuning,
    )
    .unwrap();
    let dialer = Dialer::bind(loopback(), &pki.source_identity(), tuning).unwrap();
    let address = listener.local_addr().unwrap();
    let (accepted, connected) =
        bounded(async { tokio::join!(listener.accept(), connect(&dialer, address)) }).await;
    Connected {
        destination: accepted.unwrap(),
        source: connected.unwrap(),
        listener,
        dialer,
    }
}

/// Drives `destination` over the streams the source opens on `connection`, answering no
/// event, with session time counted from `epoch`.
pub async fn drive_destination<M: DestinationMemory>(
    destination: &mut DestinationSession<M>,
    connection: &quinn::Connection,
    config: &StreamConfig,
    epoch: Instant,
) -> Result<(), DriveError> {
    let (outbox, inbox) = streams::accept(connection, config).await.unwrap();
    drive(
        destination,
        outbox,
        inbox,
        epoch,
        DriverConfig::default(),
        |_, _, _| Ok(()),
    )
    .await
}

/// A source session migrating `image` (4 KiB pages) under `strategy` with 3 page streams and
/// a 1 MiB cache, `tune` adjusting its configuration further, and a destination session with
/// an empty memory of the same size; both start at time zero.
pub fn sessions(
    id: MigrationId,
    strategy: &str,
    image: InMemory,
    tune: impl FnOnce(&mut SourceConfig),
) -> (SourceSession<InMemory>, DestinationSession<InMemory>) {
    let page_count = PageCount(image.as_bytes().len() as u64 / PageSize::KIB_4.bytes() as u64);
    let geometry = Geometry {
        page_count,
        page_size: PageSize::KIB_4,
    };
    let mut config = SourceConfig::new(id, build(&strategy.parse().unwrap(), geometry).unwrap());
    config.page_streams = std::num::NonZeroU16::new(3).unwrap();
    config.cache_bytes = 1 << 20;
    tune(&mut config);
    let source = SourceSession::new(config, image, Duration::ZERO).unwrap();
    let target = InMemory::new(PageSize::KIB_4, page_count).unwrap();
    let destination =
        DestinationSession::new(DestinationConfig::new(id), target, Duration::ZERO).unwrap();
    (source, destination)
}

/// A guest of `pages` 4 KiB pages of varied bytes (xorshift, fixed seed) that do not
/// compress, so every page costs its size on the wire.
pub fn incompressible_guest(pages: u64) -> InMemory {
    let mut memory = InMemory::new(PageSize::KIB_4, PageCount(pages)).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for byte in memory.as_bytes_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    memory
}
