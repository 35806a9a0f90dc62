//! A hostile source over real QUIC and TLS (its certificate is valid; its bytes are not):
//! garbage after the handshake, an oversized frame length, a truncated control stream. The
//! destination's drive ends with the typed error, tells the source why with an ABORT, and never
//! activates.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bounded, connected, drive_destination};
use pagewire_codec::error::{Error, InvalidMessage};
use pagewire_codec::frame::{AbortReason, Features, Frame, Hello, Limits, MigrationId, Role};
use pagewire_codec::session::{DestinationConfig, DestinationSession, SessionError, StreamId};
use pagewire_codec::{InMemory, PageCount, PageSize, StreamHeader};
use pagewire_transport::Tuning;
use pagewire_transport::driver::DriveError;
use pagewire_transport::streams::StreamConfig;

const ID: MigrationId = MigrationId([9; 16]);
const PAGES: PageCount = PageCount(16);

/// The stream header and a valid source HELLO.
fn hello() -> Vec<u8> {
    let mut out = Vec::new();
    StreamHeader::current().encode(&mut out);
    let mut hello = Hello::new(Role::Source, ID, PageSize::KIB_4, PAGES);
    hello.features = Features::empty();
    Frame::Hello(hello)
        .encode(&mut out, &Limits::default())
        .unwrap();
    out
}

/// Sends `bytes` on the control stream (then finishes it if `finish`), and drives a
/// destination against that. Returns the destination's result, the destination, and the
/// frames it sent back.
async fn against(
    bytes: Vec<u8>,
    finish: bool,
) -> (
    Result<(), DriveError>,
    DestinationSession<InMemory>,
    Vec<Frame>,
) {
    let peers = connected(&Tuning::default()).await;
    let hostile = &peers.source;
    let target = InMemory::new(PageSize::KIB_4, PAGES).unwrap();
    let mut destination =
        DestinationSession::new(DestinationConfig::new(ID), target, Duration::ZERO).unwrap();
    let hostile_side = async {
        let (mut send, mut recv) = hostile.open_bi().await.unwrap();
        send.write_all(&bytes).await.unwrap();
        if finish {
            send.finish().unwrap();
        }
        // What the destination answers, up to the end of its control stream.
        let answer = recv.read_to_end(1 << 20).await.unwrap();
        let mut answer = Bytes::from(answer);
        StreamHeader::decode(&mut answer).unwrap();
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = Frame::decode(&mut answer, &Limits::default()) {
            frames.push(frame);
        }
        frames
    };
    let stream_config = StreamConfig::default();
    let destination_side = drive_destination(
        &mut destination,
        &peers.destination,
        &stream_config,
        Instant::now(),
    );
    let (frames, result) = bounded(async { tokio::join!(hostile_side, destination_side) }).await;
    hostile.close(0u32.into(), b"done");
    (result, destination, frames)
}

/// The destination did not activate and its last frame is an ABORT with `reason`.
fn assert_refused(
    destination: &DestinationSession<InMemory>,
    frames: &[Frame],
    reason: AbortReason,
) {
    assert!(!destination.activated());
    assert!(!frames.contains(&Frame::Activated));
    match frames.last() {
        Some(Frame::Abort(abort)) => assert_eq!(abort.reason, reason),
        other => panic!("last frame {other:?}, expected ABORT"),
    }
}

#[tokio::test]
async fn garbage_after_the_handshake_is_malformed() {
    let mut bytes = Vec::new();
    StreamHeader::current().encode(&mut bytes);
    // HELLO's type with non-zero flags, then noise.
    bytes.extend_from_slice(&[0x01, 0x00, 0x77, 0x00, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    let (result, destination, frames) = against(bytes, false).await;
    assert!(
        matches!(
            result,
            Err(DriveError::Session(SessionError::Wire(
                Error::InvalidMessage(InvalidMessage::ReservedNotZero { .. })
            )))
        ),
        "{result:?}"
    );
    assert_refused(&destination, &frames, AbortReason::MalformedFrame);
}

#[tokio::test]
async fn an_oversized_frame_length_is_refused_before_its_payload() {
    let mut bytes = hello();
    // A frame declaring 2 GiB of payload, none of which follows.
    bytes.extend_from_slice(&[0x11, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x7f]);
    let (result, destination, frames) = against(bytes, false).await;
    assert!(
        matches!(
            result,
            Err(DriveError::Session(SessionError::Wire(
                Error::InvalidMessage(InvalidMessage::FrameTooLarge {
                    length: 0x7fff_ffff,
                    ..
                })
            )))
        ),
        "{result:?}"
    );
    assert_refused(&destination, &frames, AbortReason::MalformedFrame);
}

#[tokio::test]
async fn a_control_stream_cut_inside_a_frame_is_truncated() {
    let mut bytes = hello();
    let whole = bytes.len();
    bytes.truncate(whole - 5);
    let (result, destination, frames) = against(bytes, true).await;
    assert!(
        matches!(
            result,
            Err(DriveError::Session(SessionError::StreamTruncated(
                StreamId::Control
            )))
        ),
        "{result:?}"
    );
    assert_refused(&destination, &frames, AbortReason::MalformedFrame);
}
