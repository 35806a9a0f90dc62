//! How `drive` reports a migration that does not reach activation, over real QUIC and TLS:
//! an operator's abort is an error on its side and the peer's abort, with the reason, on the
//! other; a refused reservation is an error on both sides; neither destination activates.

mod common;

use std::time::{Duration, Instant};

use common::{bounded, connected, drive_destination};
use pagewire_codec::frame::{AbortReason, MigrationId, RefusalReason};
use pagewire_codec::select::{Geometry, build};
use pagewire_codec::session::{
    DestinationConfig, DestinationSession, SessionError, Side, SourceConfig, SourceSession,
};
use pagewire_codec::{InMemory, PageCount, PageSize};
use pagewire_transport::Tuning;
use pagewire_transport::driver::{DriveError, DriverConfig, drive_abortable};
use pagewire_transport::streams::{self, StreamConfig};

const ID: MigrationId = MigrationId([3; 16]);

/// What a run gives back: both sides' results, the destination, and how many page streams
/// the source reset (RESET_STREAM frames it sent).
type Outcome = (
    Result<(), DriveError>,
    Result<(), DriveError>,
    DestinationSession<InMemory>,
    u64,
);

/// Drives a source of `source_pages` pages of random bytes (they go raw: every page costs its
/// size on the link) against a destination that reserved `destination_pages`; the source's
/// operator aborts after `abort_after`, if given.
async fn run(source_pages: u64, destination_pages: u64, abort_after: Option<Duration>) -> Outcome {
    let peers = connected(&Tuning::default()).await;
    let geometry = Geometry {
        page_count: PageCount(source_pages),
        page_size: PageSize::KIB_4,
    };
    let strategy = build(&"precopy".parse().unwrap(), geometry).unwrap();
    let mut guest = InMemory::new(PageSize::KIB_4, PageCount(source_pages)).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for word in guest.as_bytes_mut().chunks_exact_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    let mut source =
        SourceSession::new(SourceConfig::new(ID, strategy), guest, Duration::ZERO).unwrap();
    let target = InMemory::new(PageSize::KIB_4, PageCount(destination_pages)).unwrap();
    let mut destination =
        DestinationSession::new(DestinationConfig::new(ID), target, Duration::ZERO).unwrap();
    // A slow link, so that the abort comes in the middle of the copy.
    let stream_config = StreamConfig {
        page_streams: 1,
        rate_limit: Some(pagewire_transport::RateLimit::per_second(
            std::num::NonZeroU64::new(1 << 20).unwrap(),
        )),
        ..StreamConfig::default()
    };
    let epoch = Instant::now();
    let source_side = async {
        let (outbox, inbox) = streams::open(&peers.source, &stream_config).await.unwrap();
        let abort = async {
            match abort_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
            (AbortReason::Cancelled, "stopped by the test".to_owned())
        };
        drive_abortable(
            &mut source,
            outbox,
            inbox,
            epoch,
            DriverConfig::default(),
            |session, now, event| match event {
                pagewire_codec::session::Event::SuspendRequested => {
                    session.suspended(now, bytes::Bytes::new())
                }
                _ => Ok(()),
            },
            abort,
        )
        .await
    };
    let destination_side =
        drive_destination(&mut destination, &peers.destination, &stream_config, epoch);
    let (sent, received) = bounded(async { tokio::join!(source_side, destination_side) }).await;
    let resets = peers.source.stats().frame_tx.reset_stream;
    peers.source.close(0u32.into(), b"done");
    (sent, received, destination, resets)
}

#[tokio::test]
async fn an_operator_abort_fails_both_sides_with_the_reason() {
    // 4 MiB at 1 MiB/s: the abort after 50 ms lands in the first round.
    let (sent, received, destination, resets) =
        run(1024, 1024, Some(Duration::from_millis(50))).await;
    match sent {
        Err(DriveError::Aborted(info)) => {
            assert_eq!(info.side, Side::Local);
            assert_eq!(info.reason, AbortReason::Cancelled);
            assert_eq!(info.message, "stopped by the test");
        }
        other => panic!("source: expected an abort, got {other:?}"),
    }
    match received {
        Err(DriveError::Session(SessionError::PeerAborted { reason, message })) => {
            assert_eq!(reason, AbortReason::Cancelled);
            assert_eq!(message, "stopped by the test");
        }
        other => panic!("destination: expected the peer's abort, got {other:?}"),
    }
    assert!(!destination.activated());
    // The page stream was reset, not drained: about 2 MiB were still queued (8 chunks of
    // 256 KiB), two seconds at this rate.
    assert_eq!(resets, 1, "the source's page stream should be reset");
}

#[tokio::test]
async fn a_reservation_for_another_vm_fails_both_sides() {
    let (sent, received, destination, _) = run(64, 128, None).await;
    // The destination refuses the hello; the source, reading the destination's hello, finds
    // the page counts differ before the refusal arrives, and says so.
    let sent = sent.expect_err("source");
    assert!(sent.to_string().contains("page count"), "source: {sent}");
    let received = received.expect_err("destination");
    assert!(
        matches!(
            received,
            DriveError::Session(SessionError::Refused(RefusalReason::WrongVm))
        ),
        "destination: {received:?}"
    );
    assert!(received.to_string().contains("not the VM"), "{received}");
    assert!(!destination.activated());
}
