//! Post-copy and hybrid through the sessions: the destination's guest runs from POSTCOPY_BEGIN
//! and faults pages in; hostile and out-of-phase post-copy frames get typed errors.

mod session_support;

use std::time::Duration;

use bytes::Bytes;
use pagewire_codec::error::{Error, PeerMisbehaved};
use pagewire_codec::frame::{
    AbortReason, BitmapFrame, BitmapKind, CommitDigest, DeviceState, Features, Frame, FrameType,
    Hello, Iteration, IterationEnd, Limits, PageBatch, PageRequest, Role,
};
use pagewire_codec::phase::Phase;
use pagewire_codec::session::{
    DestinationSession, Event, FaultError, FaultStatus, SessionError, Side, StreamId,
};
use pagewire_codec::{
    ContentHash, EncodingSet, InMemory, PageBitmap, PageCount, PageNumber, PageRecord, RecordBody,
};
use session_support::{
    MIGRATION, PAGE_COUNT, PAGE_SIZE, Pair, PairConfig, destination_config, limits, source_config,
    stream,
};

const NOW: Duration = Duration::from_millis(5);

/// The destination's guest: touches `order` one page at a time, faulting on missing pages and
/// waiting for each, and writes one byte into every page it touched.
struct FaultingGuest {
    order: Vec<PageNumber>,
    next: usize,
    waiting: Option<PageNumber>,
    requested: Vec<PageNumber>,
    running: bool,
}

impl FaultingGuest {
    fn new(order: Vec<PageNumber>) -> FaultingGuest {
        FaultingGuest {
            order,
            next: 0,
            waiting: None,
            requested: Vec::new(),
            running: false,
        }
    }

    fn on_event(
        &mut self,
        now: Duration,
        event: &Event,
        destination: &mut DestinationSession<InMemory>,
    ) {
        match event {
            Event::PostCopyStarted { .. } => self.running = true,
            Event::PageArrived(page) => {
                assert_eq!(
                    self.waiting,
                    Some(*page),
                    "arrival of a page nobody waits for"
                );
                self.waiting = None;
            }
            _ => {}
        }
        self.run(now, destination);
    }

    /// Touches pages until one is missing (then waits for it) or the list is done.
    fn run(&mut self, now: Duration, destination: &mut DestinationSession<InMemory>) {
        while self.running && self.waiting.is_none() {
            let Some(&page) = self.order.get(self.next) else {
                return;
            };
            match destination.fault(now, page).unwrap() {
                FaultStatus::Present => {
                    assert!(destination.is_present(page));
                    self.next += 1;
                    write(destination.memory_mut(), page);
                }
                FaultStatus::Requested => {
                    assert!(destination.missing_pages().0 > 0);
                    self.requested.push(page);
                    self.waiting = Some(page);
                }
                FaultStatus::Pending => panic!("{page} requested twice by one vCPU"),
            }
        }
    }
}

/// The guest's write into `page`.
fn write(memory: &mut InMemory, page: PageNumber) {
    let at = page.index() * PAGE_SIZE.bytes() + 17;
    memory.as_bytes_mut()[at] ^= 0xa5;
}

/// Runs `pair` with `guest` faulting at the destination, until both sides are closed.
fn run(pair: &mut Pair, guest: &mut FaultingGuest) {
    for _ in 0..pair.config.max_steps {
        if pair.source.is_closed() && pair.destination.is_closed() {
            return;
        }
        let now = pair.now + Duration::from_millis(1);
        pair.step(|event, destination| guest.on_event(now, event, destination));
    }
    panic!("no end: {:?} {:?}", pair.source, pair.destination);
}

/// The source's memory with the destination guest's writes applied.
fn expected(pair: &Pair, guest: &FaultingGuest) -> InMemory {
    let mut memory = pair.source.memory().clone();
    for &page in &guest.order[..guest.next] {
        write(&mut memory, page);
    }
    memory
}

fn descending(pages: &[u64]) -> Vec<PageNumber> {
    pages.iter().copied().map(PageNumber).collect()
}

#[test]
fn postcopy_runs_the_guest_early_and_faults_pages_ahead_of_the_push() {
    let mut pair = Pair::new(PairConfig::new("postcopy", 3));
    // The push goes up from page 0; the guest touches pages near the end first.
    let mut guest = FaultingGuest::new(descending(&[191, 190, 150, 120, 64, 2]));
    assert_eq!(pair.destination.missing_pages().0, 0, "before post-copy");
    run(&mut pair, &mut guest);
    pair.assert_no_errors();
    assert!(pair.destination.activated());
    assert_eq!(
        pair.destination.missing_pages().0,
        0,
        "every deferred page arrived"
    );
    assert_eq!(
        guest.next,
        guest.order.len(),
        "the guest touched every page"
    );
    assert!(pair.destination.memory() == &expected(&pair, &guest));

    let destination = pair.destination.stats();
    let source = pair.source.stats();
    assert_eq!(destination.deferred_pages, PAGE_COUNT.0);
    assert_eq!(source.deferred_pages, PAGE_COUNT.0);
    assert!(!guest.requested.is_empty());
    assert_eq!(destination.faults, guest.requested.len() as u64);
    assert_eq!(destination.faults_served, destination.faults);
    assert!(destination.fault_wait_max > Duration::ZERO);
    assert!(destination.fault_wait_total >= destination.fault_wait_max);
    assert_eq!(source.pages_requested, destination.faults);
    // The first fault (page 191) comes long before the push reaches it.
    assert!(source.requested_sent >= 1, "{source:?}");
    // Each deferred page was sent exactly once.
    assert_eq!(destination.pages, PAGE_COUNT.0);
    assert!(
        pair.destination_events
            .iter()
            .any(|e| matches!(e, Event::PostCopyStarted { deferred } if *deferred == PAGE_COUNT))
    );
}

#[test]
fn hybrid_copies_live_then_faults_the_pages_dirtied_last() {
    let mut config = PairConfig::new("hybrid", 2);
    config.writes_per_step = 6;
    let mut pair = Pair::new(config);
    let mut guest = FaultingGuest::new(Vec::new());
    // The guest touches every page, from the top: it faults on exactly the missing ones.
    guest.order = (0..PAGE_COUNT.0).rev().map(PageNumber).collect();
    run(&mut pair, &mut guest);
    pair.assert_no_errors();
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == &expected(&pair, &guest));
    let destination = pair.destination.stats();
    assert!(destination.deferred_pages > 0, "{destination:?}");
    assert!(destination.deferred_pages < PAGE_COUNT.0, "{destination:?}");
    assert!(destination.faults > 0);
    assert_eq!(destination.faults_served, destination.faults);
    assert!(
        pair.source.stats().iterations >= 2,
        "a live round, then the push"
    );
}

#[test]
fn a_passive_destination_completes_postcopy_without_faults() {
    let mut pair = Pair::new(PairConfig::new("postcopy", 1));
    pair.run();
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == pair.source.memory());
    assert_eq!(pair.destination.stats().faults, 0);
    assert_eq!(pair.source.stats().page_requests, 0);
}

#[test]
fn a_destination_without_postcopy_makes_the_source_abort_typed() {
    let mut destination = destination_config();
    destination.postcopy = false;
    let config = PairConfig::new("postcopy", 1);
    let mut pair = Pair::with(
        config.clone(),
        source_config(&config.strategy, 1),
        destination,
        InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
    );
    pair.run();
    assert!(
        matches!(
            pair.source_errors.as_slice(),
            [SessionError::PeerLacksFeature("post-copy")]
        ),
        "{:?}",
        pair.source_errors
    );
    assert!(!pair.destination.activated());
    assert!(pair.destination_events.iter().any(|e| matches!(e,
        Event::Aborted(info) if info.side == Side::Peer && info.reason == AbortReason::Incompatible)));
}

/// Steps `pair` until the source reaches `phase`.
fn step_until(pair: &mut Pair, phase: Phase) {
    for _ in 0..pair.config.max_steps {
        if pair.source.phase() == phase {
            return;
        }
        pair.step(|_, _| {});
    }
    panic!("never reached {phase:?}");
}

fn encoded(frame: &Frame, limits: &Limits) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out, limits).unwrap();
    out
}

fn request(pages: &[u64]) -> Frame {
    Frame::PageRequest(PageRequest {
        pages: pages.iter().copied().map(PageNumber).collect(),
    })
}

#[test]
fn a_page_request_before_postcopy_is_a_protocol_violation() {
    let mut pair = Pair::new(PairConfig::new("precopy", 2));
    step_until(&mut pair, Phase::IterativeCopy);
    let bytes = encoded(&request(&[4]), &limits());
    let error = pair
        .source
        .handle_stream_data(pair.now, StreamId::Control, &bytes)
        .unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedFrame {
                frame_type: FrameType::PAGE_REQUEST,
                phase: Phase::IterativeCopy,
                ..
            }))
        ),
        "{error:?}"
    );
    assert_eq!(error.abort_reason(), AbortReason::ProtocolViolation);
    assert_eq!(pair.source.phase(), Phase::Aborted);
}

#[test]
fn a_page_request_beyond_the_memory_is_a_protocol_violation() {
    let mut pair = Pair::new(PairConfig::new("postcopy", 2));
    step_until(&mut pair, Phase::PostCopy);
    let wide = Limits::default().with_memory(PAGE_SIZE, PageCount(1000), EncodingSet::all_known());
    let bytes = encoded(&request(&[3, PAGE_COUNT.0]), &wide);
    let error = pair
        .source
        .handle_stream_data(pair.now, StreamId::Control, &bytes)
        .unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Wire(Error::PeerMisbehaved(PeerMisbehaved::PageOutOfRange {
                page: PageNumber(192),
                ..
            }))
        ),
        "{error:?}"
    );
    assert_eq!(pair.source.phase(), Phase::Aborted);
}

// Hostile sources, scripted frame by frame against a destination.

fn destination(postcopy: bool) -> DestinationSession<InMemory> {
    let mut config = destination_config();
    config.postcopy = postcopy;
    config.max_outstanding_faults = 1;
    DestinationSession::new(config, InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(), NOW).unwrap()
}

fn raw(page: u64, byte: u8) -> PageRecord {
    PageRecord {
        page: PageNumber(page),
        body: RecordBody::Raw(Bytes::from(vec![byte; PAGE_SIZE.bytes()])),
    }
}

/// HELLO (post-copy announced) up to a complete (empty) device state, nothing copied.
fn script_to_device_state() -> Vec<Frame> {
    let mut hello = Hello::new(Role::Source, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.features = Features::POSTCOPY;
    vec![
        Frame::Hello(hello),
        Frame::Suspend,
        Frame::DeviceState(DeviceState {
            total: 0,
            offset: 0,
            data: Bytes::new(),
        }),
    ]
}

/// The script to POSTCOPY_BEGIN with pages 5 and 6 deferred, then an open iteration 0.
fn script_to_push() -> Vec<Frame> {
    let mut deferred = PageBitmap::new(PAGE_COUNT);
    deferred.insert(PageNumber(5));
    deferred.insert(PageNumber(6));
    let mut script = script_to_device_state();
    script.extend([
        Frame::Bitmap(BitmapFrame {
            kind: BitmapKind::Deferred,
            pages: deferred,
        }),
        Frame::PostcopyBegin,
        Frame::IterationStart(Iteration(0)),
    ]);
    script
}

fn assert_misbehaved(error: &SessionError, expected: impl Fn(&PeerMisbehaved) -> bool) {
    match error {
        SessionError::Wire(Error::PeerMisbehaved(inner)) if expected(inner) => {}
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn postcopy_begin_during_the_iterative_copy_is_refused() {
    let mut destination = destination(true);
    let mut hello = Hello::new(Role::Source, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.features = Features::POSTCOPY;
    let bytes = stream(&[Frame::Hello(hello), Frame::PostcopyBegin]);
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &bytes)
        .unwrap_err();
    assert_misbehaved(&error, |e| {
        matches!(
            e,
            PeerMisbehaved::UnexpectedFrame {
                frame_type: FrameType::POSTCOPY_BEGIN,
                phase: Phase::IterativeCopy,
                ..
            }
        )
    });
    assert!(!destination.postcopy_running());
}

#[test]
fn postcopy_begin_before_the_device_state_is_refused() {
    let mut destination = destination(true);
    let mut script = script_to_device_state();
    script.pop();
    script.push(Frame::PostcopyBegin);
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap_err();
    assert_misbehaved(&error, |e| {
        matches!(e, PeerMisbehaved::DeviceStateIncomplete { .. })
    });
    assert!(!destination.postcopy_running());
}

#[test]
fn postcopy_begin_without_the_feature_is_refused() {
    let mut destination = destination(false);
    let mut script = script_to_device_state();
    script.push(Frame::PostcopyBegin);
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap_err();
    assert_misbehaved(&error, |e| {
        matches!(
            e,
            PeerMisbehaved::FeatureNotNegotiated {
                frame_type: FrameType::POSTCOPY_BEGIN
            }
        )
    });
    assert_eq!(destination.phase(), Phase::Aborted);
}

#[test]
fn faults_are_checked_deduplicated_and_bounded() {
    let mut destination = destination(true);
    assert_eq!(
        destination.fault(NOW, PageNumber(5)),
        Err(FaultError::NotPostCopy)
    );
    destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script_to_push()))
        .unwrap();
    assert!(destination.postcopy_running());
    let events: Vec<Event> = std::iter::from_fn(|| destination.poll_event()).collect();
    assert!(events.contains(&Event::PostCopyStarted {
        deferred: PageCount(2)
    }));
    assert_eq!(
        destination.fault(NOW, PAGE_COUNT_PAGE),
        Err(FaultError::PageOutOfRange {
            page: PAGE_COUNT_PAGE,
            page_count: PAGE_COUNT
        })
    );
    assert_eq!(
        destination.fault(NOW, PageNumber(4)),
        Ok(FaultStatus::Present)
    );
    assert_eq!(
        destination.fault(NOW, PageNumber(6)),
        Ok(FaultStatus::Requested)
    );
    assert_eq!(
        destination.fault(NOW, PageNumber(6)),
        Ok(FaultStatus::Pending)
    );
    // One outstanding fault is the bound here.
    assert_eq!(
        destination.fault(NOW, PageNumber(5)),
        Err(FaultError::TooManyOutstanding { max: 1 })
    );
    assert_eq!(
        control_frames(&mut destination).last(),
        Some(&request(&[6]))
    );
    assert_eq!(destination.stats().page_requests, 1);
    assert_eq!(destination.stats().faults, 1);

    // Page 6 arrives: the waiting guest hears of it, and the bound has room again.
    let later = NOW + Duration::from_millis(3);
    let batch = Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: vec![raw(6, 0x66)],
    });
    destination
        .handle_stream_data(later, StreamId::Control, &encoded(&batch, &limits()))
        .unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| destination.poll_event()).collect();
    assert_eq!(events, [Event::PageArrived(PageNumber(6))]);
    assert!(destination.is_present(PageNumber(6)));
    assert!(!destination.is_present(PageNumber(5)));
    assert_eq!(destination.stats().fault_wait_max, Duration::from_millis(3));
    assert_eq!(
        destination.fault(later, PageNumber(5)),
        Ok(FaultStatus::Requested)
    );
    assert_eq!(control_frames(&mut destination), [request(&[5])]);
}

/// The frames the destination queued on the control stream since the last call.
fn control_frames(destination: &mut DestinationSession<InMemory>) -> Vec<Frame> {
    let mut bytes: Vec<u8> =
        std::iter::from_fn(|| destination.poll_transmit(NOW, StreamId::Control, 1 << 16))
            .flat_map(|b| b.to_vec())
            .collect();
    if bytes.starts_with(b"PAGEWIRE") {
        bytes.drain(..16);
    }
    let mut rest = Bytes::from(bytes);
    std::iter::from_fn(|| Frame::decode(&mut rest, &limits()).ok().flatten()).collect()
}

const PAGE_COUNT_PAGE: PageNumber = PageNumber(PAGE_COUNT.0);

#[test]
fn a_postcopy_record_for_a_page_not_deferred_is_a_protocol_violation() {
    let mut destination = destination(true);
    let mut script = script_to_push();
    script.push(Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: vec![raw(5, 1), raw(7, 2)],
    }));
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap_err();
    assert_misbehaved(
        &error,
        |e| matches!(e, PeerMisbehaved::PageNotAwaited { page } if *page == PageNumber(7)),
    );
    // Nothing of the refused batch was applied.
    assert_eq!(destination.memory().page(PageNumber(5)).unwrap()[0], 0);
}

#[test]
fn a_deferred_page_sent_twice_is_a_protocol_violation() {
    let mut destination = destination(true);
    let mut script = script_to_push();
    for byte in [1, 2] {
        script.push(Frame::PageBatch(PageBatch {
            iteration: Iteration(0),
            records: vec![raw(5, byte)],
        }));
    }
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap_err();
    assert_misbehaved(
        &error,
        |e| matches!(e, PeerMisbehaved::PageNotAwaited { page } if *page == PageNumber(5)),
    );
}

/// The digest of the destination's memory with page 5 and 6 as `(five, six)` raw bytes.
fn digest_with(five: u8, six: u8) -> CommitDigest {
    CommitDigest::compute(16, PAGE_COUNT, |page| match page.0 {
        5 => ContentHash::of(&vec![five; PAGE_SIZE.bytes()]),
        6 => ContentHash::of(&vec![six; PAGE_SIZE.bytes()]),
        _ => ContentHash::of(&vec![0; PAGE_SIZE.bytes()]),
    })
}

fn push_both(script: &mut Vec<Frame>) {
    script.push(Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: vec![raw(5, 0x55), raw(6, 0x66)],
    }));
    script.push(Frame::IterationEnd(IterationEnd {
        iteration: Iteration(0),
        batches: 1,
        pages: 2,
    }));
}

#[test]
fn the_postcopy_digest_is_checked_against_pages_as_received() {
    let mut destination = destination(true);
    let mut script = script_to_push();
    push_both(&mut script);
    destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap();
    // The guest writes a page after it arrived: the memory now differs from what was sent,
    // and the digest still agrees.
    write(destination.memory_mut(), PageNumber(6));
    write(destination.memory_mut(), PageNumber(100));
    let bytes = encoded(&Frame::CommitDigest(digest_with(0x55, 0x66)), &limits());
    destination
        .handle_stream_data(NOW, StreamId::Control, &bytes)
        .unwrap();
    assert_eq!(destination.phase(), Phase::Committed);
}

#[test]
fn a_postcopy_digest_mismatch_aborts_without_a_resend() {
    let mut destination = destination(true);
    let mut script = script_to_push();
    push_both(&mut script);
    script.push(Frame::CommitDigest(digest_with(0x55, 0x67)));
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap_err();
    assert!(
        matches!(error, SessionError::DigestMismatch { ranges: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.abort_reason(), AbortReason::DigestMismatch);
    assert_eq!(destination.phase(), Phase::Aborted);
    assert!(!destination.activated());
    // The guest was running already: that does not change.
    assert!(destination.postcopy_running());
}

#[test]
fn a_postcopy_digest_before_every_deferred_page_is_a_protocol_violation() {
    let mut destination = destination(true);
    let mut script = script_to_push();
    script.push(Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: vec![raw(5, 0x55)],
    }));
    script.push(Frame::IterationEnd(IterationEnd {
        iteration: Iteration(0),
        batches: 1,
        pages: 1,
    }));
    script.push(Frame::CommitDigest(digest_with(0x55, 0)));
    let error = destination
        .handle_stream_data(NOW, StreamId::Control, &stream(&script))
        .unwrap_err();
    assert_misbehaved(&error, |e| {
        matches!(e, PeerMisbehaved::DeferredPagesMissing { missing: 1 })
    });
    assert_eq!(
        destination.fault(NOW, PageNumber(6)),
        Err(FaultError::MigrationOver)
    );
}
