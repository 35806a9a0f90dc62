//! End to end over real QUIC and real mutual TLS on loopback: a source session migrates a
//! guest that keeps writing between rounds; the destination's memory equals the source's
//! final memory byte for byte, the digests agreed (the destination activated), and every
//! strategy tried gets there.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{bounded, connected, drive_destination, sessions};
use pagewire_codec::frame::MigrationId;
use pagewire_codec::session::Event;
use pagewire_codec::{InMemory, PageCount, PageNumber, PageSize};
use pagewire_transport::Tuning;
use pagewire_transport::driver::{DriverConfig, drive};
use pagewire_transport::streams::{self, StreamConfig};

const PAGES: u64 = 512;

/// A guest of 2 MiB: zero pages, repeated pages, and pages of varied bytes.
fn guest() -> InMemory {
    let mut memory = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap();
    for (index, page) in memory.as_bytes_mut().chunks_mut(4096).enumerate() {
        match index % 4 {
            0 => {}
            1 => page.fill(0x5a),
            _ => page
                .iter_mut()
                .enumerate()
                .for_each(|(at, byte)| *byte = (at * 31 + index * 7) as u8),
        }
    }
    memory
}

async fn migrate(strategy: &str) {
    let peers = connected(&Tuning::default()).await;

    let (mut source, mut destination) = sessions(MigrationId([7; 16]), strategy, guest(), |_| {});
    let epoch = Instant::now();
    let stream_config = StreamConfig {
        page_streams: 3,
        ..StreamConfig::default()
    };

    let source_side = async {
        let (outbox, inbox) = streams::open(&peers.source, &stream_config).await.unwrap();
        let mut rounds = 0u8;
        drive(
            &mut source,
            outbox,
            inbox,
            epoch,
            DriverConfig::default(),
            |session, now, event| {
                match event {
                    // The live guest: each round, it rewrites a few pages (one of them to zero).
                    Event::RoundStarted { .. } => {
                        rounds = rounds.wrapping_add(1);
                        for page in [3u64, 100, 101, 400] {
                            let start = page as usize * 4096;
                            session.memory_mut().as_bytes_mut()[start..start + 4096]
                                .fill(rounds.wrapping_mul(page as u8));
                            session.on_write(PageNumber(page));
                        }
                        Ok(())
                    }
                    Event::SuspendRequested => session.suspended(now, Bytes::from_static(b"cpu")),
                    _ => Ok(()),
                }
            },
        )
        .await
    };
    let destination_side =
        drive_destination(&mut destination, &peers.destination, &stream_config, epoch);
    let (sent, received) = bounded(async { tokio::join!(source_side, destination_side) }).await;
    sent.unwrap();
    received.unwrap();
    assert!(
        destination.activated(),
        "{strategy}: the destination did not activate"
    );
    assert!(
        destination.memory().as_bytes() == source.memory().as_bytes(),
        "{strategy}: the memories differ"
    );
    peers.source.close(0u32.into(), b"done");
}

#[tokio::test]
async fn precopy_migrates_a_changing_guest_over_quic() {
    migrate("precopy").await;
}

#[tokio::test]
async fn two_fold_history_majority_and_ours_migrate_over_quic() {
    for strategy in ["two-fold", "history-majority", "ours"] {
        migrate(strategy).await;
    }
}

/// Stop-and-copy asks to suspend before sending anything: the driver must look for bytes again
/// after the event is answered (nothing else would wake it).
#[tokio::test]
async fn stop_and_copy_migrates_over_quic() {
    migrate("stop-and-copy").await;
}
