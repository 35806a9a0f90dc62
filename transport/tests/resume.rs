//! Resume after a dropped link, over real QUIC and real mutual TLS on loopback. The source
//! reaches the listener through a UDP relay in the test, which the test cuts in the middle of
//! the migration: nothing passes, in either direction, until both sides' QUIC connections
//! time out. The source reconnects through the relay; the destination takes the same peer back
//! and the migration completes with identical memory — or, once the destination's grace
//! period is over, no longer holds the migration, which never runs there. A source run again
//! after it gave up starts the kept migration over.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Pki, incompressible_guest, loopback, name};
use pagewire_codec::frame::{AbortReason, MigrationId, RefusalReason};
use pagewire_codec::phase::Phase;
use pagewire_codec::select::{Geometry, build};
use pagewire_codec::session::{
    DestinationConfig, DestinationSession, Event, SessionError, SourceConfig, SourceSession,
};
use pagewire_codec::{InMemory, PageCount, PageNumber, PageSize};
use pagewire_transport::certs::Validity;
use pagewire_transport::driver::{DriveError, DriverConfig, drive};
use pagewire_transport::resume::{DriveSetup, ResumePolicy, drive_source, serve_destination};
use pagewire_transport::streams::{self, StreamConfig};
use pagewire_transport::{Dialer, Listener, Refusal, RefusedBy, Tuning};
use tokio::net::UdpSocket;

const PAGES: u64 = 1024;
const ID: MigrationId = MigrationId([9; 16]);

/// A UDP relay between one client and `upstream`, cut once `cut_after` bytes went upstream
/// (counting from when it is armed), until [`Relay::restore`].
struct Relay {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    upstream_bytes: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: SocketAddr, cut_after: u64) -> Relay {
        let front = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
        let back = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
        back.connect(upstream).await.unwrap();
        let address = front.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let upstream_bytes = Arc::new(AtomicU64::new(0));
        let client = Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
        let up = {
            let (front, back, cut, bytes, client) = (
                front.clone(),
                back.clone(),
                cut.clone(),
                upstream_bytes.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 1 << 16];
                while let Ok((len, from)) = front.recv_from(&mut buffer).await {
                    *client.lock().unwrap() = Some(from);
                    let total = bytes.fetch_add(len as u64, Ordering::SeqCst) + len as u64;
                    if total >= cut_after && total - (len as u64) < cut_after {
                        cut.store(true, Ordering::SeqCst);
                    }
                    if !cut.load(Ordering::SeqCst) {
                        let _ = back.send(&buffer[..len]).await;
                    }
                }
            })
        };
        let down = {
            let (front, back, cut, client) = (front, back, cut.clone(), client);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 1 << 16];
                while let Ok(len) = back.recv(&mut buffer).await {
                    let to = *client.lock().unwrap();
                    if let Some(to) = to
                        && !cut.load(Ordering::SeqCst)
                    {
                        let _ = front.send_to(&buffer[..len], to).await;
                    }
                }
            })
        };
        Relay {
            address,
            cut,
            upstream_bytes,
            tasks: vec![up, down],
        }
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|task| task.abort());
    }
}

/// How long without a packet before either side calls the link dead. Short, so that a cut is
/// noticed soon; not shorter, because a debug build on a loaded 2-core machine may leave a
/// connection without a keep-alive for over a second, and a link lost before the cut (during
/// the hellos, where a migration cannot resume) fails the test.
const IDLE: Duration = Duration::from_secs(3);

fn tuning() -> Tuning {
    Tuning {
        idle_timeout: IDLE,
        keep_alive: IDLE / 6,
        ..Tuning::default()
    }
}

fn source_session() -> SourceSession<InMemory> {
    let geometry = Geometry {
        page_count: PageCount(PAGES),
        page_size: PageSize::KIB_4,
    };
    let strategy = build(&"precopy".parse().unwrap(), geometry).unwrap();
    let mut config = SourceConfig::new(ID, strategy);
    config.page_streams = std::num::NonZeroU16::new(3).unwrap();
    config.cache_bytes = 1 << 20;
    config.resume = true;
    SourceSession::new(config, incompressible_guest(PAGES), Duration::ZERO).unwrap()
}

fn destination_session(grace: Duration) -> DestinationSession<InMemory> {
    let mut config = DestinationConfig::new(ID);
    config.resume = true;
    config.resume_grace = grace;
    let memory = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap();
    DestinationSession::new(config, memory, Duration::ZERO).unwrap()
}

/// The live guest: each round rewrites a few pages; on `SuspendRequested` it is suspended.
fn live_guest(
    session: &mut SourceSession<InMemory>,
    now: Duration,
    event: Event,
) -> Result<(), SessionError> {
    match event {
        Event::RoundStarted { iteration, .. } => {
            for page in [3u64, 100, 101, 900] {
                let start = page as usize * 4096;
                session.memory_mut().as_bytes_mut()[start..start + 4096]
                    .fill(iteration.0 as u8 ^ page as u8);
                session.on_write(PageNumber(page));
            }
            Ok(())
        }
        Event::SuspendRequested => session.suspended(now, Bytes::from_static(b"cpu")),
        _ => Ok(()),
    }
}

struct Setup {
    pki: Pki,
    listener: Listener,
    dialer: Dialer,
    relay: Relay,
    streams: StreamConfig,
}

impl Setup {
    /// Accepts the source's connection and serves `destination` on it, taking the same peer
    /// back after a loss; the destination's side of the tests. The connection comes back with
    /// the result, to be kept open until the source has read the last answer.
    async fn serve(
        &self,
        destination: &mut DestinationSession<InMemory>,
        drive_setup: DriveSetup<'_>,
        on_event: impl FnMut(
            &mut DestinationSession<InMemory>,
            Duration,
            Event,
        ) -> Result<(), SessionError>,
    ) -> (Result<(), DriveError>, quinn::Connection) {
        let mut connection = self.listener.accept().await.unwrap();
        let served = serve_destination(
            destination,
            &self.listener,
            &mut connection,
            drive_setup,
            on_event,
            std::future::pending(),
        )
        .await;
        (served, connection)
    }

    /// Migrates `source` through the relay with the live guest writing, reconnecting as
    /// `policy` allows; the source's side of every test.
    async fn run_source(
        &self,
        source: &mut SourceSession<InMemory>,
        drive_setup: DriveSetup<'_>,
        policy: ResumePolicy,
    ) -> Result<(), DriveError> {
        let server = name("destination");
        let connect = || self.dialer.connect(self.relay.address, &server);
        let mut connection = connect().await.unwrap();
        drive_source(
            source,
            &mut connection,
            connect,
            drive_setup,
            policy,
            live_guest,
            std::future::pending(),
        )
        .await
    }
}

async fn setup(cut_after: u64) -> Setup {
    let pki = Pki::new();
    let listener = Listener::bind(
        loopback(),
        &pki.destination_identity(),
        Some(name("source")),
        &tuning(),
    )
    .unwrap();
    let dialer = Dialer::bind(loopback(), &pki.source_identity(), &tuning()).unwrap();
    let relay = Relay::start(listener.local_addr().unwrap(), cut_after).await;
    Setup {
        pki,
        listener,
        dialer,
        relay,
        streams: StreamConfig {
            page_streams: 3,
            ..StreamConfig::default()
        },
    }
}

/// Runs `future`, failing the test if it takes more than 60 seconds.
async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("test step took more than 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_cut_in_the_middle_resumes_and_completes_with_identical_memory() {
    let setup = setup(1 << 20).await;
    let mut source = source_session();
    let mut destination = destination_session(Duration::from_secs(20));
    let epoch = Instant::now();
    let policy = ResumePolicy {
        attempts: 10,
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        ..ResumePolicy::default()
    };
    let drive_setup = DriveSetup {
        streams: &setup.streams,
        driver: DriverConfig::default(),
        epoch,
    };
    // Once the destination noticed the loss of the cut link (one idle timeout), the relay
    // lets packets through; a source that has not noticed yet finds its connection gone.
    let noticed = AtomicBool::new(false);
    let restorer = async {
        while !noticed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        setup.relay.restore();
    };
    let source_side = setup.run_source(&mut source, drive_setup, policy);
    // The connection is kept open until the source has read the last answer (dropped after
    // the join).
    let destination_side = setup.serve(&mut destination, drive_setup, |_, _, event| {
        if event == Event::ConnectionInterrupted && setup.relay.is_cut() {
            noticed.store(true, Ordering::SeqCst);
        }
        Ok(())
    });
    let (sent, (received, _connection), ()) =
        bounded(async { tokio::join!(source_side, destination_side, restorer) }).await;
    sent.unwrap();
    received.unwrap();
    assert!(setup.relay.upstream_bytes.load(Ordering::SeqCst) > 1 << 20);
    assert!(destination.activated());
    assert_eq!(source.phase(), Phase::Done);
    assert!(destination.memory() == source.memory());
    assert!(source.stats().resumes >= 1, "{:?}", source.stats());
    assert_eq!(source.stats().resumes, destination.stats().resumes);
    assert_eq!(source.stats().commit_mismatches, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_the_grace_period_finds_no_migration_and_nothing_runs() {
    let setup = setup(1 << 20).await;
    let mut source = source_session();
    let mut destination = destination_session(Duration::from_millis(300));
    let epoch = Instant::now();
    // The source comes back only after the destination gave up.
    let policy = ResumePolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(2500),
        max_backoff: Duration::from_millis(2500),
        ..ResumePolicy::default()
    };
    let drive_setup = DriveSetup {
        streams: &setup.streams,
        driver: DriverConfig::default(),
        epoch,
    };
    let source_side = setup.run_source(&mut source, drive_setup, policy);
    let destination_side = async {
        // The lost connection is kept until the block ends, as the other tests keep theirs.
        let (served, _lost) = setup
            .serve(&mut destination, drive_setup, |_, _, _| Ok(()))
            .await;
        // The listener stays up; the destination no longer holds the migration, so the
        // resume meets a session that never heard of it.
        setup.relay.restore();
        let connection = setup.listener.accept().await.unwrap();
        let mut fresh = destination_session(Duration::from_secs(1));
        let (outbox, inbox) = streams::accept(&connection, &setup.streams).await.unwrap();
        let answered = drive(
            &mut fresh,
            outbox,
            inbox,
            epoch,
            DriverConfig::default(),
            |_, _, _| Ok(()),
        )
        .await;
        (served, answered, fresh, connection)
    };
    // The refusing destination keeps its connection until the source has read the answer.
    let (sent, (served, answered, fresh, _connection)) =
        bounded(async { tokio::join!(source_side, destination_side) }).await;
    let refused = RefusalReason::UnknownMigration;
    assert!(
        matches!(
            served,
            Err(DriveError::Session(SessionError::NotResumed(_)))
        ),
        "{served:?}"
    );
    assert_eq!(destination.phase(), Phase::Aborted);
    assert!(!destination.activated());
    assert!(!fresh.activated());
    assert!(
        matches!(answered, Err(DriveError::Session(SessionError::Refused(r)) | DriveError::Refused(r)) if r == refused),
        "{answered:?}"
    );
    assert!(
        matches!(sent, Err(DriveError::Session(SessionError::Refused(r)) | DriveError::Refused(r)) if r == refused),
        "{sent:?}"
    );
    assert_eq!(source.phase(), Phase::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_certificate_cannot_take_over_an_interrupted_migration() {
    let setup = setup(1 << 20).await;
    let mut source = source_session();
    let mut destination = destination_session(Duration::from_secs(20));
    let epoch = Instant::now();
    let policy = ResumePolicy {
        attempts: 10,
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        ..ResumePolicy::default()
    };
    let drive_setup = DriveSetup {
        streams: &setup.streams,
        driver: DriverConfig::default(),
        epoch,
    };
    // Same CA, same name as the source, another key: it passes the listener's checks, but
    // it is not the peer whose migration waits.
    let impostor = {
        let issued = setup.pki.ca.issue(&["source"], Validity::days(1)).unwrap();
        Dialer::bind(
            loopback(),
            &issued.identity(&setup.pki.ca).unwrap(),
            &tuning(),
        )
        .unwrap()
    };
    let destination_address = setup.listener.local_addr().unwrap();
    // Set when the destination noticed the loss of the cut link (after one idle timeout) and
    // waits for its peer: the intruder comes then, however long a loaded machine took to get
    // there (a loss before the cut, which the source resumes at once, does not count).
    let waiting = AtomicBool::new(false);
    let intruder = async {
        while !waiting.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let connection = impostor
            .connect(destination_address, &name("destination"))
            .await
            .unwrap();
        let closed = connection.closed().await;
        setup.relay.restore();
        (Refusal::from_connection_error(&closed), closed)
    };
    let source_side = setup.run_source(&mut source, drive_setup, policy);
    // The connection is kept open until the source has read the last answer (dropped after
    // the join).
    let destination_side = setup.serve(&mut destination, drive_setup, |_, _, event| {
        if event == Event::ConnectionInterrupted && setup.relay.is_cut() {
            waiting.store(true, Ordering::SeqCst);
        }
        Ok(())
    });
    let (sent, (received, _connection), (refusal, closed)) =
        bounded(async { tokio::join!(source_side, destination_side, intruder) }).await;
    assert_eq!(
        refusal,
        Some(Refusal::OtherPeer {
            by: RefusedBy::Peer
        }),
        "{closed}"
    );
    sent.unwrap();
    received.unwrap();
    assert!(destination.activated());
    assert!(destination.memory() == source.memory());
    assert!(source.stats().resumes >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_aborts_a_destination_whose_peer_never_opens_its_streams() {
    let setup = setup(u64::MAX).await;
    let mut destination = destination_session(Duration::from_secs(60));
    let drive_setup = DriveSetup {
        streams: &setup.streams,
        driver: DriverConfig::default(),
        epoch: Instant::now(),
    };
    // Connected through the mutual-TLS handshake, and then silent (quinn's keep-alives hold
    // the connection open): no stream, no HELLO.
    let server_name = name("destination");
    let (silent, accepted) = bounded(async {
        tokio::join!(
            setup.dialer.connect(setup.relay.address, &server_name),
            setup.listener.accept()
        )
    })
    .await;
    let (silent, mut connection) = (silent.unwrap(), accepted.unwrap());
    let operator = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        (
            AbortReason::Cancelled,
            "operator pressed Ctrl-C".to_string(),
        )
    };
    let started = Instant::now();
    let served = bounded(serve_destination(
        &mut destination,
        &setup.listener,
        &mut connection,
        drive_setup,
        |_, _, _| Ok(()),
        operator,
    ))
    .await;
    assert!(
        matches!(&served, Err(DriveError::Aborted(info)) if info.reason == AbortReason::Cancelled),
        "{served:?}"
    );
    // Before quinn's idle timeout would have ended the wait.
    assert!(started.elapsed() < IDLE, "{:?}", started.elapsed());
    assert_eq!(destination.phase(), Phase::Aborted);
    assert!(!destination.activated());
    drop(silent);
}

/// A source that gave up after the link dropped (no resume: as when the link drops before the
/// RESERVATION reaches it) is run again by its operator: the destination, which kept the
/// migration, starts it over at once instead of refusing it until its grace period ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_run_again_after_a_dropped_link_starts_the_kept_migration_over() {
    let setup = setup(1 << 20).await;
    let mut first = source_session();
    let mut destination = destination_session(Duration::from_secs(30));
    let epoch = Instant::now();
    let drive_setup = DriveSetup {
        streams: &setup.streams,
        driver: DriverConfig::default(),
        epoch,
    };
    let started_over = AtomicU64::new(0);
    let destination_side = setup.serve(&mut destination, drive_setup, |_, _, event| {
        if event == Event::StartedOver {
            started_over.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    let source_side = async {
        let gives_up = ResumePolicy {
            attempts: 0,
            ..ResumePolicy::default()
        };
        let lost = setup.run_source(&mut first, drive_setup, gives_up).await;
        setup.relay.restore();
        // Run again: a new source session, the same certificate.
        let mut again = source_session();
        let sent = setup
            .run_source(&mut again, drive_setup, ResumePolicy::default())
            .await;
        (lost, sent, again)
    };
    let ((served, _connection), (lost, sent, again)) =
        bounded(async { tokio::join!(destination_side, source_side) }).await;
    assert!(lost.is_err(), "{lost:?}");
    assert_ne!(first.phase(), Phase::Done);
    sent.unwrap();
    served.unwrap();
    assert_eq!(started_over.load(Ordering::SeqCst), 1);
    assert!(destination.activated());
    assert_eq!(again.phase(), Phase::Done);
    assert!(destination.memory() == again.memory());
    assert_eq!(destination.stats().resumes, 0);
}
