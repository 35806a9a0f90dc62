//! Hostile and failing peers: each gives a typed error, an ABORT the other side can read, and
//! never an activation.

mod session_support;

use std::time::Duration;

use bytes::Bytes;
use pagewire_codec::error::{Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
use pagewire_codec::frame::{
    Abort, AbortReason, CommitAnswer, CommitDigest, DeviceState, Features, Frame, FrameType, Hello,
    Iteration, IterationEnd, PageBatch, RefusalReason, ReservationAnswer, Role, StreamHeader,
};
use pagewire_codec::phase::Phase;
use pagewire_codec::session::{
    DestinationSession, Event, SessionError, Side, SourceSession, StreamId,
};
use pagewire_codec::{ContentHash, InMemory, PageCount, PageNumber, PageRecord, RecordBody};
use session_support::{
    MIGRATION, PAGE_COUNT, PAGE_SIZE, Pair, PairConfig, destination_config, frames_of,
    initial_image, limits, source_config, stream,
};

const NOW: Duration = Duration::from_millis(5);

fn destination() -> DestinationSession<InMemory> {
    DestinationSession::new(
        destination_config(),
        InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
        Duration::ZERO,
    )
    .unwrap()
}

fn source_hello() -> Hello {
    let mut hello = Hello::new(Role::Source, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.features = Features::empty();
    hello
}

/// What the destination wrote on the control stream and nobody took yet. A fresh stream starts
/// with its header; on a stream already under way the frames follow directly.
fn destination_output(destination: &mut DestinationSession<InMemory>) -> Vec<Frame> {
    let chunks: Vec<Bytes> =
        std::iter::from_fn(|| destination.poll_transmit(NOW, StreamId::Control, 4096)).collect();
    if chunks.first().is_some_and(|c| c.starts_with(b"PAGEWIRE")) {
        return frames_of(chunks, limits());
    }
    let mut rest = Bytes::from(chunks.concat());
    std::iter::from_fn(|| Frame::decode(&mut rest, &limits()).ok().flatten()).collect()
}

/// The destination aborted on its own account with `reason`, told the source so, and holds
/// no activated VM.
fn assert_aborted(destination: &mut DestinationSession<InMemory>, reason: AbortReason) {
    assert_eq!(destination.phase(), Phase::Aborted);
    assert!(!destination.activated());
    let events: Vec<Event> = std::iter::from_fn(|| destination.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Aborted(info)
            if info.side == Side::Local && info.reason == reason)),
        "{events:?}"
    );
    assert!(!events.contains(&Event::Activated));
    let frames = destination_output(destination);
    match frames.last() {
        Some(Frame::Abort(abort)) => assert_eq!(abort.reason, reason),
        other => panic!("last frame {other:?}, expected ABORT"),
    }
    assert!(!frames.contains(&Frame::Activated));
}

fn feed(
    destination: &mut DestinationSession<InMemory>,
    stream: StreamId,
    bytes: &[u8],
) -> Result<(), SessionError> {
    destination.handle_stream_data(NOW, stream, bytes)
}

#[test]
fn unknown_mandatory_frame_after_the_stream_header_is_incompatible() {
    let mut destination = destination();
    let mut bytes = stream(&[]);
    bytes.extend_from_slice(&[0x42, 0x00, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
    let error = feed(&mut destination, StreamId::Control, &bytes).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerIncompatible(
                PeerIncompatible::UnknownMandatoryFrame(FrameType(0x42))
            ))
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::Incompatible);
}

#[test]
fn garbage_after_the_stream_header_is_malformed() {
    let mut destination = destination();
    let mut bytes = stream(&[]);
    // HELLO's type with non-zero flags.
    bytes.extend_from_slice(&[0x01, 0x00, 0x77, 0x00, 0xff, 0xff, 0xff, 0xff]);
    let error = feed(&mut destination, StreamId::Control, &bytes).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::InvalidMessage(
                InvalidMessage::ReservedNotZero { .. }
            ))
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::MalformedFrame);
}

#[test]
fn a_wrong_magic_is_refused_at_the_first_wrong_byte() {
    let mut destination = destination();
    let error = feed(&mut destination, StreamId::Control, b"PAGEX").unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::InvalidMessage(InvalidMessage::BadMagic(_)))
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::MalformedFrame);
}

#[test]
fn oversized_frame_length_is_refused_before_its_payload() {
    let mut destination = destination();
    let mut bytes = stream(&[Frame::Hello(source_hello())]);
    bytes.extend_from_slice(&[0x11, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x7f]);
    let error = feed(&mut destination, StreamId::Control, &bytes).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::InvalidMessage(InvalidMessage::FrameTooLarge {
                length: 0x7fff_ffff,
                ..
            }))
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::MalformedFrame);
}

#[test]
fn page_batch_before_the_reservation_is_a_protocol_violation() {
    // No records: the frame parses, but no iteration can be open before the hellos.
    let mut destination = destination();
    let batch = Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: Vec::new(),
    });
    let error = feed(&mut destination, StreamId::Control, &stream(&[batch])).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedFrame {
                frame_type: FrameType::PAGE_BATCH,
                phase: Phase::Hello,
                ..
            }))
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::ProtocolViolation);
}

#[test]
fn page_batch_on_a_page_stream_before_the_hellos_names_pages_outside_the_memory() {
    // Before the hellos the destination knows no memory: every page is outside it.
    let mut destination = destination();
    let batch = Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: vec![PageRecord {
            page: PageNumber(0),
            body: RecordBody::ZeroRun { count: 1 },
        }],
    });
    let error = feed(&mut destination, StreamId::Page(0), &stream(&[batch])).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerMisbehaved(PeerMisbehaved::PageOutOfRange { .. }))
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::ProtocolViolation);
}

/// A source script up to a complete device state, with one raw page of 0x11 at page 3.
fn script_to_device_state() -> Vec<Frame> {
    vec![
        Frame::Hello(source_hello()),
        Frame::IterationStart(Iteration(0)),
        Frame::PageBatch(PageBatch {
            iteration: Iteration(0),
            records: vec![PageRecord {
                page: PageNumber(3),
                body: RecordBody::Raw(Bytes::from(vec![0x11; PAGE_SIZE.bytes()])),
            }],
        }),
        Frame::IterationEnd(IterationEnd {
            iteration: Iteration(0),
            batches: 1,
            pages: 1,
        }),
        Frame::Suspend,
        Frame::DeviceState(DeviceState {
            total: 0,
            offset: 0,
            data: Bytes::new(),
        }),
    ]
}

#[test]
fn activate_before_any_commit_is_a_protocol_violation() {
    let mut destination = destination();
    let mut script = script_to_device_state();
    script.push(Frame::Activate);
    let error = feed(&mut destination, StreamId::Control, &stream(&script)).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedFrame {
                frame_type: FrameType::ACTIVATE,
                phase: Phase::StopAndCopy,
                ..
            }))
        ),
        "{error:?}"
    );
    assert_eq!(destination.memory().page(PageNumber(3)).unwrap()[0], 0x11);
    assert_aborted(&mut destination, AbortReason::ProtocolViolation);
}

#[test]
fn activate_after_a_mismatching_answer_is_a_protocol_violation() {
    let mut destination = destination();
    let mut script = script_to_device_state();
    // A digest of another memory: the destination answers "mismatch", not "agree".
    script.push(Frame::CommitDigest(CommitDigest::compute(
        16,
        PAGE_COUNT,
        |_| ContentHash(1),
    )));
    script.push(Frame::Activate);
    let error = feed(&mut destination, StreamId::Control, &stream(&script)).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedFrame {
                frame_type: FrameType::ACTIVATE,
                phase: Phase::Commit,
                ..
            }))
        ),
        "{error:?}"
    );
    let events: Vec<Event> = std::iter::from_fn(|| destination.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CommitResult(CommitAnswer::Mismatch(_))))
    );
    assert!(!destination.activated());
    assert!(!events.contains(&Event::Activated));
}

#[test]
fn a_frame_other_than_page_batch_on_a_page_stream_is_refused() {
    let mut destination = destination();
    feed(
        &mut destination,
        StreamId::Control,
        &stream(&[Frame::Hello(source_hello())]),
    )
    .unwrap();
    let error = feed(
        &mut destination,
        StreamId::Page(1),
        &stream(&[Frame::Suspend]),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::FrameOnWrongStream {
                stream: StreamId::Page(1),
                frame_type: FrameType::SUSPEND
            }
        ),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::ProtocolViolation);
}

#[test]
fn a_page_stream_beyond_the_limit_is_refused() {
    let mut destination = destination();
    let error = feed(&mut destination, StreamId::Page(999), &stream(&[])).unwrap_err();
    assert!(
        matches!(error, SessionError::UnknownStream(StreamId::Page(999))),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::ProtocolViolation);
}

/// Steps the pair until the destination has applied a few batches of the first iteration.
fn copy_a_little(pair: &mut Pair) {
    while pair.destination.stats().batches < 2 {
        pair.step(|_, _| {});
    }
    assert_eq!(pair.destination.phase(), Phase::IterativeCopy);
}

#[test]
fn a_truncated_stream_aborts_both_sides_without_activation() {
    let mut pair = Pair::new(PairConfig::new("precopy", 3));
    copy_a_little(&mut pair);
    // The control stream ends in the middle of the migration.
    let error = pair
        .destination
        .handle_stream_finished(pair.now, StreamId::Control)
        .unwrap_err();
    assert!(
        matches!(error, SessionError::StreamTruncated(StreamId::Control)),
        "{error:?}"
    );
    assert_aborted(&mut pair.destination, AbortReason::MalformedFrame);
    // The source loses the connection.
    let error = pair.source.handle_connection_lost(pair.now).unwrap_err();
    assert!(matches!(error, SessionError::PeerGone), "{error:?}");
    assert_eq!(pair.source.phase(), Phase::Aborted);
}

#[test]
fn a_stream_cut_inside_a_frame_is_truncated() {
    let mut destination = destination();
    let bytes = stream(&[Frame::Hello(source_hello())]);
    feed(
        &mut destination,
        StreamId::Control,
        &bytes[..bytes.len() - 5],
    )
    .unwrap();
    let error = destination
        .handle_stream_finished(NOW, StreamId::Control)
        .unwrap_err();
    assert!(
        matches!(error, SessionError::StreamTruncated(StreamId::Control)),
        "{error:?}"
    );
    assert_aborted(&mut destination, AbortReason::MalformedFrame);
}

#[test]
fn a_destination_reserved_for_another_vm_refuses_and_the_source_stops() {
    let target = InMemory::new(PAGE_SIZE, PageCount(PAGE_COUNT.0 * 2)).unwrap();
    let config = PairConfig::new("precopy", 1);
    let mut pair = Pair::with(
        config.clone(),
        source_config(&config.strategy, 1),
        destination_config(),
        target,
    );
    for _ in 0..10 {
        pair.step(|_, _| {});
    }
    assert!(matches!(
        pair.destination_errors.as_slice(),
        [SessionError::Refused(RefusalReason::WrongVm)]
    ));
    assert!(
        pair.destination_events
            .contains(&Event::Refused(RefusalReason::WrongVm))
    );
    assert_eq!(pair.destination.phase(), Phase::Refused);
    assert!(!pair.destination.activated());
    assert_eq!(pair.destination.stats().pages, 0);
    assert!(
        matches!(
            pair.source_errors.as_slice(),
            [SessionError::Wire(Error::PeerIncompatible(
                PeerIncompatible::OtherVm("page count")
            ))]
        ),
        "{:?}",
        pair.source_errors
    );
}

#[test]
fn the_source_aborts_mid_copy_and_the_destination_shows_the_reason() {
    let mut pair = Pair::new(PairConfig::new("precopy", 3));
    copy_a_little(&mut pair);
    pair.source
        .abort(pair.now, AbortReason::Cancelled, "operator stopped it");
    for _ in 0..5 {
        pair.step(|_, _| {});
    }
    assert!(
        matches!(
            pair.destination_errors.as_slice(),
            [SessionError::PeerAborted { reason: AbortReason::Cancelled, message }]
                if message == "operator stopped it"
        ),
        "{:?}",
        pair.destination_errors
    );
    assert!(pair.destination_events.iter().any(|e| matches!(e,
        Event::Aborted(info) if info.side == Side::Peer && info.reason == AbortReason::Cancelled)));
    assert_eq!(pair.destination.phase(), Phase::Aborted);
    assert!(!pair.destination.activated());
    assert!(pair.source.is_closed() && pair.destination.is_closed());
}

#[test]
fn the_destination_aborts_and_the_source_shows_the_reason() {
    let mut pair = Pair::new(PairConfig::new("ours", 1));
    copy_a_little(&mut pair);
    pair.destination
        .abort(pair.now, AbortReason::ResourceExhausted, "disk full");
    for _ in 0..5 {
        pair.step(|_, _| {});
    }
    assert!(
        matches!(
            pair.source_errors.as_slice(),
            [SessionError::PeerAborted { reason: AbortReason::ResourceExhausted, message }]
                if message == "disk full"
        ),
        "{:?}",
        pair.source_errors
    );
    assert_eq!(pair.source.phase(), Phase::Aborted);
    assert!(!pair.destination.activated());
}

#[test]
fn an_idle_peer_times_out() {
    let mut config = destination_config();
    config.idle_timeout = Some(Duration::from_secs(1));
    let mut destination =
        DestinationSession::new(config, InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(), NOW)
            .unwrap();
    assert_eq!(
        destination.poll_timeout(),
        Some(NOW + Duration::from_secs(1))
    );
    destination
        .handle_timeout(NOW + Duration::from_millis(500))
        .unwrap();
    let error = destination
        .handle_timeout(NOW + Duration::from_secs(2))
        .unwrap_err();
    assert!(matches!(error, SessionError::Timeout(_)), "{error:?}");
    assert_aborted(&mut destination, AbortReason::Timeout);
    assert_eq!(destination.poll_timeout(), None);
}

/// A destination that answers every digest with "range 0 differs": the source re-sends range
/// 0 each time, gives up after its allowed rounds, and never sends ACTIVATE.
#[test]
fn a_destination_that_lies_about_the_digest_never_gets_activated() {
    let mut config = source_config("precopy", 2);
    config.max_commit_rounds = 2;
    let mut source = SourceSession::new(config, initial_image(3), Duration::ZERO).unwrap();
    let mut decoder = pagewire_codec::frame::FrameDecoder::new(limits());
    let mut sent = Vec::new();
    let mut reply = |source: &mut SourceSession<InMemory>, frame: Frame| {
        let mut bytes = Vec::new();
        if sent.is_empty() {
            StreamHeader::current().encode(&mut bytes);
        }
        frame.encode(&mut bytes, &limits()).unwrap();
        sent.push(frame);
        source.handle_stream_data(NOW, StreamId::Control, &bytes)
    };
    let mut hello = Hello::new(Role::Destination, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.features = Features::empty();
    let mut result = Ok(());
    let mut received = Vec::new();
    for _ in 0..2000 {
        for stream in [StreamId::Page(0), StreamId::Page(1)] {
            while source.poll_transmit(NOW, stream, 1 << 20).is_some() {}
        }
        while let Some(bytes) = source.poll_transmit(NOW, StreamId::Control, 1 << 20) {
            decoder.push(&bytes);
        }
        while let Ok(Some(frame)) = decoder.poll() {
            match &frame {
                Frame::Hello(_) => {
                    result = reply(&mut source, Frame::Hello(hello.clone())).and_then(|()| {
                        reply(&mut source, Frame::Reservation(ReservationAnswer::Accepted))
                    });
                }
                Frame::CommitDigest(_) => {
                    let lie = Frame::CommitAnswer(CommitAnswer::Mismatch(vec![0]));
                    result = reply(&mut source, lie);
                }
                _ => {}
            }
            received.push(frame);
        }
        while let Some(event) = source.poll_event() {
            if event == Event::SuspendRequested {
                source.suspended(NOW, Bytes::new()).unwrap();
            }
        }
        if result.is_err() || source.is_closed() {
            break;
        }
    }
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::DigestMismatch {
                rounds: 3,
                ranges: 1
            }
        ),
        "{error:?}"
    );
    assert_eq!(source.phase(), Phase::Aborted);
    // Drain the ABORT.
    while let Some(bytes) = source.poll_transmit(NOW, StreamId::Control, 1 << 20) {
        decoder.push(&bytes);
    }
    while let Ok(Some(frame)) = decoder.poll() {
        received.push(frame);
    }
    assert!(!received.contains(&Frame::Activate));
    let digests = received
        .iter()
        .filter(|f| matches!(f, Frame::CommitDigest(_)))
        .count();
    assert_eq!(digests, 3);
    // Between the digests, two iterations re-send range 0 (16 pages) and nothing else.
    let resends: Vec<u64> = received
        .windows(2)
        .filter_map(|w| match w {
            [Frame::IterationEnd(end), Frame::CommitDigest(_)] => Some(end.pages),
            _ => None,
        })
        .collect();
    assert_eq!(resends, [16, 16]);
    assert!(matches!(
        received.last(),
        Some(Frame::Abort(Abort {
            reason: AbortReason::DigestMismatch,
            ..
        }))
    ));
}

#[test]
fn an_abort_behind_a_held_iteration_end_names_the_reason_when_a_page_stream_ends() {
    // The source announced a batch it never sent (it aborted mid-batch) and ended its page
    // stream: the ABORT waits behind the held ITERATION_END, and is what the end means.
    let mut destination = destination();
    let control = stream(&[
        Frame::Hello(source_hello()),
        Frame::IterationStart(Iteration(0)),
        Frame::IterationEnd(IterationEnd {
            iteration: Iteration(0),
            batches: 1,
            pages: 1,
        }),
        Frame::Abort(Abort {
            reason: AbortReason::Cancelled,
            message: "operator stopped it".into(),
        }),
    ]);
    feed(&mut destination, StreamId::Control, &control).unwrap();
    feed(&mut destination, StreamId::Page(0), &stream(&[])).unwrap();
    let error = destination
        .handle_stream_finished(NOW, StreamId::Page(0))
        .unwrap_err();
    assert!(
        matches!(&error, SessionError::PeerAborted { reason: AbortReason::Cancelled, message }
            if message == "operator stopped it"),
        "{error:?}"
    );
    assert_eq!(destination.phase(), Phase::Aborted);
    assert!(!destination.activated());
}
