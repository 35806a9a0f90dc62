//! The control stream and page streams over real QUIC on loopback: bytes arrive in order per
//! stream, every stream finishes, and a destination that does not read holds the source back.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, connected};
use pagewire_transport::Tuning;
use pagewire_transport::streams::{self, Received, StreamConfig, StreamId};

#[tokio::test]
async fn every_stream_delivers_its_bytes_in_order_and_finishes() {
    let peers = connected(&Tuning::default()).await;
    let (destination, source) = (&peers.destination, &peers.source);
    let config = StreamConfig {
        page_streams: 3,
        ..StreamConfig::default()
    };
    let (mut source_out, mut source_in) = streams::open(source, &config).await.unwrap();
    // The destination sees the control stream once bytes are written on it.
    source_out
        .send(StreamId::Control, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let (mut destination_out, mut destination_in) = bounded(streams::accept(destination, &config))
        .await
        .unwrap();

    let mut expected: HashMap<StreamId, Vec<u8>> = HashMap::new();
    expected.insert(StreamId::Control, b"hello".to_vec());
    for round in 0..50u8 {
        for index in 0..3u16 {
            let stream = StreamId::Page(index);
            let chunk = vec![round.wrapping_mul(7) ^ index as u8; 1000 + usize::from(round)];
            expected
                .entry(stream)
                .or_default()
                .extend_from_slice(&chunk);
            source_out.send(stream, Bytes::from(chunk)).await.unwrap();
        }
    }
    let sent = source_out.finish().await.unwrap();
    assert_eq!(
        sent,
        expected
            .values()
            .map(|bytes| bytes.len() as u64)
            .sum::<u64>()
    );

    // Page streams keep the source's numbering (their QUIC sequence numbers).
    let mut received: HashMap<StreamId, Vec<u8>> = HashMap::new();
    let mut finished = 0;
    while finished < 4 {
        match bounded(destination_in.recv()).await.unwrap().unwrap() {
            Received::Bytes(stream, bytes) => received
                .entry(stream)
                .or_default()
                .extend_from_slice(&bytes),
            Received::Finished(_) => finished += 1,
        }
    }
    assert_eq!(received, expected);

    // And the answer travels back on the control stream.
    destination_out
        .send(StreamId::Control, Bytes::from_static(b"answer"))
        .await
        .unwrap();
    destination_out.finish().await.unwrap();
    let mut answer = Vec::new();
    loop {
        match bounded(source_in.recv()).await.unwrap().unwrap() {
            Received::Bytes(StreamId::Control, bytes) => answer.extend_from_slice(&bytes),
            Received::Finished(StreamId::Control) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(answer, b"answer");
}

#[tokio::test]
async fn a_destination_that_does_not_read_holds_the_source_back() {
    const WINDOW: u32 = 64 << 10;
    const CHUNK: usize = 16 << 10;
    let tuning = Tuning {
        stream_receive_window: WINDOW,
        receive_window: WINDOW,
        send_window: u64::from(WINDOW),
        ..Tuning::default()
    };
    let peers = connected(&tuning).await;
    let (destination, source) = (&peers.destination, &peers.source);
    let config = StreamConfig {
        page_streams: 1,
        send_queue_chunks: 1,
        read_chunk: CHUNK,
        inbox_chunks: 1,
        rate_limit: None,
    };
    let (mut source_out, _source_in) = streams::open(source, &config).await.unwrap();
    source_out
        .send(StreamId::Control, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let (_destination_out, mut destination_in) = bounded(streams::accept(destination, &config))
        .await
        .unwrap();

    // The destination reads nothing: sends complete only while windows and queues have room.
    let page = StreamId::Page(0);
    let mut accepted = 0usize;
    let chunk = Bytes::from(vec![1u8; CHUNK]);
    while tokio::time::timeout(
        Duration::from_millis(300),
        source_out.send(page, chunk.clone()),
    )
    .await
    .is_ok()
    {
        accepted += 1;
        assert!(accepted < 64, "the source never slowed down");
    }
    // Held bytes: the send and receive windows, the one-chunk queues (outbox, inbox) and the
    // chunk in each task's hands (writer, reader); nothing unbounded.
    let bound = (2 * WINDOW as usize + 6 * CHUNK) / CHUNK;
    assert!(
        accepted <= bound,
        "{accepted} chunks accepted, bound {bound}"
    );

    // Once the destination reads, the source goes on.
    let reader = tokio::spawn(async move {
        let mut bytes = 0usize;
        loop {
            match destination_in.recv().await.unwrap().unwrap() {
                Received::Bytes(StreamId::Page(_), chunk) => bytes += chunk.len(),
                Received::Finished(StreamId::Page(_)) => return bytes,
                _ => {}
            }
        }
    });
    for _ in 0..32 {
        bounded(source_out.send(page, chunk.clone())).await.unwrap();
    }
    source_out.finish().await.unwrap();
    // Every chunk whose send completed arrives; the one whose send timed out was never queued.
    assert_eq!(bounded(reader).await.unwrap(), (accepted + 32) * CHUNK);
}
