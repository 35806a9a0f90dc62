//! Resume after a dropped link (spec/wire.md §5.3): the sessions keep an interrupted
//! migration, the source reconnects with a resume HELLO, the destination answers RESUME, and
//! the migration completes with memories identical and digests agreeing — from the middle of
//! an iteration and from stop-and-copy. A destination that does not hold the migration
//! refuses it; a RESUME that does not fit the VM is a protocol violation; a migration not
//! resumed within the grace period is aborted and never runs. A fresh source starts a kept
//! migration over, unless its guest runs at the destination.

mod session_support;

use std::time::Duration;

use pagewire_codec::frame::{
    AbortReason, CommitAnswer, Frame, Hello, Iteration, Limits, ReservationAnswer, Resume, Role,
    StreamHeader,
};
use pagewire_codec::phase::Phase;
use pagewire_codec::session::{DestinationSession, Event, SessionError, SourceSession, StreamId};
use pagewire_codec::{InMemory, PageBitmap, PageCount, PageSize};
use session_support::{
    MIGRATION, PAGE_COUNT, PAGE_SIZE, Pair, PairConfig, count, destination_config, source_config,
};

/// A pair whose sessions both announce the resume feature.
fn resumable_pair(strategy: &str) -> Pair {
    let config = PairConfig::new(strategy, 3);
    let mut source = source_config(strategy, 3);
    source.resume = true;
    let mut destination = destination_config();
    destination.resume = true;
    destination.resume_grace = Duration::from_secs(5);
    Pair::with(
        config,
        source,
        destination,
        InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
    )
}

/// Steps until `until` holds (or panics after many steps).
fn step_until(pair: &mut Pair, until: impl Fn(&Pair) -> bool) {
    for _ in 0..20_000 {
        if until(pair) {
            return;
        }
        pair.step(|_, _| {});
    }
    panic!(
        "condition never held: {:?} {:?}",
        pair.source, pair.destination
    );
}

/// The link drops: bytes the source has produced but the destination has not received are
/// lost, and both sides learn that the connection is gone.
fn drop_link(pair: &mut Pair) {
    let now = pair.now;
    let streams: Vec<StreamId> = pair.source.streams().collect();
    for stream in streams {
        // In flight when the link died: never delivered.
        let _ = pair.source.poll_transmit(now, stream, 3000);
    }
    pair.source.handle_connection_lost(now).unwrap();
    pair.destination.handle_connection_lost(now).unwrap();
    assert!(pair.source.is_interrupted());
    assert!(pair.destination.is_interrupted());
    assert_eq!(pair.source.phase(), Phase::Hello);
    assert_eq!(pair.destination.phase(), Phase::Hello);
}

/// A resumable pair run until the source asks for the guest's suspension, which the test
/// then does itself ([`suspend`]).
fn suspension_requested(strategy: &str) -> Pair {
    let mut pair = resumable_pair(strategy);
    pair.auto_suspend = false;
    step_until(&mut pair, |pair| {
        pair.source_events.contains(&Event::SuspendRequested)
    });
    pair
}

/// The driver suspends the guest: no more writes, and the device state to the source.
fn suspend(pair: &mut Pair) {
    pair.suspended = true;
    pair.source
        .suspended(
            pair.now,
            bytes::Bytes::from_static(session_support::DEVICE_STATE),
        )
        .unwrap();
}

/// The migration ends as one without a dropped link would: activated, identical memory,
/// one agreeing commit, and one resume on each side.
fn assert_completed_after_resume(pair: &Pair) {
    pair.assert_no_errors();
    assert_eq!(pair.source.phase(), Phase::Done);
    assert!(pair.destination.activated());
    assert!(
        pair.destination.memory() == pair.source.memory(),
        "destination memory differs from the source's after a resume"
    );
    for events in [&pair.source_events, &pair.destination_events] {
        assert_eq!(count(events, |e| *e == Event::ConnectionInterrupted), 1);
        assert_eq!(count(events, |e| matches!(e, Event::Resumed { .. })), 1);
        assert_eq!(
            count(events, |e| *e == Event::CommitResult(CommitAnswer::Agree)),
            1
        );
        assert_eq!(count(events, |e| matches!(e, Event::Aborted(_))), 0);
    }
    assert_eq!(pair.source.stats().resumes, 1);
    assert_eq!(pair.destination.stats().resumes, 1);
    // The resume itself restored the memory: no commit resend had to repair it.
    assert_eq!(pair.source.stats().commit_mismatches, 0);
}

fn resumed_at(events: &[Event]) -> (Iteration, PageCount) {
    events
        .iter()
        .find_map(|event| match event {
            Event::Resumed {
                next_iteration,
                received,
            } => Some((*next_iteration, *received)),
            _ => None,
        })
        .expect("a Resumed event")
}

#[test]
fn resume_in_the_middle_of_an_iteration_completes_with_identical_memory() {
    let mut pair = resumable_pair("precopy");
    // Iteration 0 is complete at the destination and iteration 1 is on its way.
    step_until(&mut pair, |pair| {
        pair.destination.stats().iterations >= 1 && pair.destination.stats().batches >= 8
    });
    drop_link(&mut pair);
    // The guest keeps running while the link is down.
    for _ in 0..5 {
        pair.step(|_, _| {});
    }
    pair.source.resume(pair.now).unwrap();
    pair.run();
    assert_completed_after_resume(&pair);
    let (next, received) = resumed_at(&pair.source_events);
    assert_eq!(resumed_at(&pair.destination_events), (next, received));
    assert!(next >= Iteration(1), "{next:?}");
    assert!(received.0 > 0 && received.0 < PAGE_COUNT.0, "{received:?}");
    assert!(pair.source.stats().resent_after_resume > 0);
}

#[test]
fn resume_in_stop_and_copy_sends_the_rest_and_the_device_state_again() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| {
        pair.destination.phase() == Phase::StopAndCopy
    });
    assert!(matches!(
        pair.source.phase(),
        Phase::StopAndCopy | Phase::Commit
    ));
    drop_link(&mut pair);
    pair.source.resume(pair.now).unwrap();
    pair.run();
    assert_completed_after_resume(&pair);
    // The device state arrives whole after the resume (once more if it had arrived before).
    assert!(
        count(&pair.destination_events, |e| matches!(
            e,
            Event::DeviceState(_)
        )) >= 1
    );
}

#[test]
fn a_suspension_while_the_link_is_down_is_carried_into_the_resume() {
    let mut pair = suspension_requested("precopy");
    drop_link(&mut pair);
    // The driver suspends the guest while the link is down; its last writes come first.
    pair.guest.step(&mut pair.source);
    suspend(&mut pair);
    assert!(pair.source.is_interrupted());
    pair.source.resume(pair.now).unwrap();
    pair.run();
    assert_completed_after_resume(&pair);
    assert_eq!(
        count(&pair.destination_events, |e| matches!(
            e,
            Event::DeviceState(_)
        )),
        1
    );
}

#[test]
fn a_resume_before_the_driver_suspends_still_asks_for_the_suspension() {
    let mut pair = suspension_requested("precopy");
    drop_link(&mut pair);
    pair.source.resume(pair.now).unwrap();
    for _ in 0..10 {
        pair.step(|_, _| {});
    }
    assert_eq!(pair.source.phase(), Phase::IterativeCopy);
    pair.auto_suspend = true;
    suspend(&mut pair);
    pair.run();
    assert_completed_after_resume(&pair);
}

#[test]
fn a_resume_to_a_destination_that_does_not_hold_the_migration_is_refused() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| pair.destination.stats().iterations >= 1);
    drop_link(&mut pair);
    // Another destination session (a restarted process) gets the resume.
    let mut fresh = destination_config();
    fresh.resume = true;
    pair.destination = DestinationSession::new(
        fresh,
        InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
        pair.now,
    )
    .unwrap();
    pair.source.resume(pair.now).unwrap();
    for _ in 0..20 {
        pair.step(|_, _| {});
    }
    let refused = pagewire_codec::frame::RefusalReason::UnknownMigration;
    assert!(pair.source_events.contains(&Event::Refused(refused)));
    assert!(matches!(
        pair.source_errors.as_slice(),
        [SessionError::Refused(reason)] if *reason == refused
    ));
    assert_eq!(pair.source.phase(), Phase::Refused);
    assert_eq!(pair.destination.phase(), Phase::Refused);
    assert!(!pair.destination.activated());
    assert!(pair.source.is_closed());
}

#[test]
fn a_resume_bitmap_over_another_page_count_is_a_protocol_violation() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| pair.destination.stats().iterations >= 1);
    drop_link(&mut pair);
    let now = pair.now;
    pair.source.resume(now).unwrap();
    // A destination that answers with a RESUME over twice the memory.
    let mut hello = Hello::new(Role::Destination, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.vm_name = "test-vm".into();
    let other = PageCount(PAGE_COUNT.0 * 2);
    let limits =
        Limits::default().with_memory(PAGE_SIZE, other, pagewire_codec::EncodingSet::all_known());
    let mut bytes = Vec::new();
    StreamHeader::current().encode(&mut bytes);
    Frame::Hello(hello).encode(&mut bytes, &limits).unwrap();
    Frame::Resume(Resume {
        next_iteration: Iteration(1),
        received: PageBitmap::full(other),
    })
    .encode(&mut bytes, &limits)
    .unwrap();
    let error = pair
        .source
        .handle_stream_data(now, StreamId::Control, &bytes)
        .unwrap_err();
    assert_eq!(
        error.abort_reason(),
        AbortReason::ProtocolViolation,
        "{error}"
    );
    assert_eq!(pair.source.phase(), Phase::Aborted);
    assert!(!pair.source.is_interrupted());
}

#[test]
fn a_resume_that_claims_iterations_never_sent_is_a_protocol_violation() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| pair.destination.stats().iterations >= 1);
    drop_link(&mut pair);
    let now = pair.now;
    pair.source.resume(now).unwrap();
    let mut hello = Hello::new(Role::Destination, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.vm_name = "test-vm".into();
    let limits = session_support::limits();
    let mut bytes = Vec::new();
    StreamHeader::current().encode(&mut bytes);
    Frame::Hello(hello).encode(&mut bytes, &limits).unwrap();
    Frame::Resume(Resume {
        next_iteration: Iteration(1000),
        received: PageBitmap::full(PAGE_COUNT),
    })
    .encode(&mut bytes, &limits)
    .unwrap();
    let error = pair
        .source
        .handle_stream_data(now, StreamId::Control, &bytes)
        .unwrap_err();
    assert_eq!(
        error.abort_reason(),
        AbortReason::ProtocolViolation,
        "{error}"
    );
}

#[test]
fn a_destination_not_resumed_within_its_grace_period_aborts_and_never_runs() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| pair.destination.stats().iterations >= 1);
    drop_link(&mut pair);
    let lost = pair.now;
    let deadline = pair.destination.poll_timeout().unwrap();
    assert_eq!(deadline, lost + Duration::from_secs(5));
    pair.destination
        .handle_timeout(deadline - Duration::from_millis(1))
        .unwrap();
    assert!(pair.destination.is_interrupted());
    let error = pair.destination.handle_timeout(deadline).unwrap_err();
    assert!(matches!(error, SessionError::NotResumed(_)), "{error}");
    assert_eq!(error.abort_reason(), AbortReason::Timeout);
    assert_eq!(pair.destination.phase(), Phase::Aborted);
    assert!(!pair.destination.activated());
    assert!(pair.destination.is_closed());
    // The source's resume now finds nothing to resume: the destination ignores it.
    pair.source.resume(pair.now).unwrap();
    let hello = pair
        .source
        .poll_transmit(pair.now, StreamId::Control, 1 << 16)
        .unwrap();
    pair.destination
        .handle_stream_data(pair.now, StreamId::Control, &hello)
        .unwrap();
    assert!(!pair.destination.activated());
}

#[test]
fn without_the_resume_feature_a_dropped_link_aborts_both_sides() {
    let mut pair = Pair::new(PairConfig::new("precopy", 3));
    step_until(&mut pair, |pair| pair.destination.stats().iterations >= 1);
    let now = pair.now;
    assert!(matches!(
        pair.source.handle_connection_lost(now),
        Err(SessionError::PeerGone)
    ));
    assert!(matches!(
        pair.destination.handle_connection_lost(now),
        Err(SessionError::PeerGone)
    ));
    assert_eq!(pair.source.phase(), Phase::Aborted);
    assert_eq!(pair.destination.phase(), Phase::Aborted);
    assert!(!pair.source.is_interrupted());
    assert!(matches!(
        pair.source.resume(now),
        Err(SessionError::CallOutOfOrder(_))
    ));
}

#[test]
fn a_resume_hello_to_a_session_that_never_lost_its_link_is_refused() {
    // A second source that claims to resume the migration a live destination is running.
    let source_config = {
        let mut config = source_config("precopy", 1);
        config.resume = true;
        config
    };
    let mut destination_config = destination_config();
    destination_config.resume = true;
    let mut destination = DestinationSession::new(
        destination_config,
        InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
        Duration::ZERO,
    )
    .unwrap();
    let memory = InMemory::new(PageSize::KIB_4, PAGE_COUNT).unwrap();
    let mut source = SourceSession::new(source_config, memory, Duration::ZERO).unwrap();
    let mut hello = Hello::new(Role::Source, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.resume = true;
    let mut bytes = Vec::new();
    StreamHeader::current().encode(&mut bytes);
    Frame::Hello(hello)
        .encode(&mut bytes, &Limits::default())
        .unwrap();
    let result = destination.handle_stream_data(Duration::ZERO, StreamId::Control, &bytes);
    let refused = pagewire_codec::frame::RefusalReason::UnknownMigration;
    assert!(matches!(result, Err(SessionError::Refused(reason)) if reason == refused));
    let answer = destination
        .poll_transmit(Duration::ZERO, StreamId::Control, 1 << 16)
        .unwrap();
    // The answer is the destination's HELLO, then a refused RESERVATION.
    let frames = session_support::frames_of([answer], session_support::limits());
    assert!(
        matches!(frames.as_slice(), [Frame::Hello(_), Frame::Reservation(ReservationAnswer::Refused(reason))] if *reason == refused)
    );
    // (The fresh source never resumes: it has no interruption.)
    assert!(matches!(
        source.resume(Duration::ZERO),
        Err(SessionError::CallOutOfOrder(_))
    ));
}

#[test]
fn a_link_that_drops_again_during_the_resume_is_resumed_once_more() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| {
        pair.destination.stats().iterations >= 1 && pair.destination.stats().batches >= 8
    });
    drop_link(&mut pair);
    let now = pair.now;
    pair.source.resume(now).unwrap();
    // The resume HELLO arrives and the destination answers, but the answer is lost.
    let hello = pair
        .source
        .poll_transmit(now, StreamId::Control, 1 << 16)
        .unwrap();
    pair.destination
        .handle_stream_data(now, StreamId::Control, &hello)
        .unwrap();
    let lost_answer = pair
        .destination
        .poll_transmit(now, StreamId::Control, 1 << 16);
    assert!(lost_answer.is_some());
    pair.source.handle_connection_lost(now).unwrap();
    pair.destination.handle_connection_lost(now).unwrap();
    assert!(pair.source.is_interrupted() && pair.destination.is_interrupted());
    pair.source.resume(now).unwrap();
    pair.run();
    pair.assert_no_errors();
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == pair.source.memory());
    assert_eq!(pair.source.stats().resumes, 1);
    assert_eq!(pair.destination.stats().resumes, 2);
    assert_eq!(pair.source.stats().commit_mismatches, 0);
}

/// Post-copy resumes too: the destination's guest runs, so it reports every page it holds
/// and the source sends exactly the deferred pages still missing, each once.
#[test]
fn resume_in_post_copy_sends_only_the_deferred_pages_the_destination_lacks() {
    let mut pair = resumable_pair("postcopy");
    step_until(&mut pair, |pair| {
        pair.destination.postcopy_running() && pair.destination.stats().pages >= 40
    });
    let missing = pair.destination.missing_pages();
    assert!(missing.0 > 0, "the push ended before the link dropped");
    drop_link(&mut pair);
    // The guest at the destination waits on its faults meanwhile; none is asked for yet.
    pair.source.resume(pair.now).unwrap();
    pair.run();
    assert_completed_after_resume(&pair);
    let (_, received) = resumed_at(&pair.destination_events);
    assert_eq!(received.0, PAGE_COUNT.0 - missing.0);
    assert_eq!(pair.source.stats().resent_after_resume, missing.0);
    let destination = pair.destination.stats();
    // Every page was deferred, and each arrived exactly once (a second copy would have been
    // refused as a page not awaited).
    assert_eq!(destination.deferred_pages, PAGE_COUNT.0);
    assert_eq!(destination.pages, PAGE_COUNT.0);
    assert_eq!(pair.destination.missing_pages().0, 0);
    for events in [&pair.source_events, &pair.destination_events] {
        assert_eq!(
            count(events, |e| matches!(e, Event::PostCopyStarted { .. })),
            1
        );
    }
}

/// A link lost once every deferred page arrived, with the commit digest lost in flight (or
/// not yet sent): the resumed post-copy has nothing left to push, and the digest goes again.
#[test]
fn a_link_lost_after_the_last_deferred_page_resumes_to_the_commit() {
    let mut pair = resumable_pair("postcopy");
    step_until(&mut pair, |pair| pair.destination.postcopy_running());
    assert!(pair.destination.missing_pages().0 > 0);
    // The rest of the push arrives; what the source writes on the control stream from now
    // on (ITERATION_END, COMMIT_DIGEST) is lost with the link.
    let now = pair.now;
    let streams: Vec<StreamId> = pair.source.streams().collect();
    while pair.destination.missing_pages().0 > 0 || pair.source.phase() != Phase::Commit {
        for &stream in &streams {
            let Some(bytes) = pair.source.poll_transmit(now, stream, 4096) else {
                continue;
            };
            if !stream.is_control() {
                pair.destination
                    .handle_stream_data(now, stream, &bytes)
                    .unwrap();
            }
        }
    }
    assert_eq!(pair.destination.phase(), Phase::PostCopy);
    drop_link(&mut pair);
    pair.source.resume(pair.now).unwrap();
    pair.run();
    assert_completed_after_resume(&pair);
    assert_eq!(pair.source.stats().resent_after_resume, 0);
    assert_eq!(pair.destination.stats().pages, PAGE_COUNT.0);
}

/// POSTCOPY_BEGIN lost with the link: the destination never ran the guest, so its HELLO does
/// not say post-copy runs there, and the source sends every deferred page in a stop-and-copy
/// instead (the guest stays suspended at the source).
#[test]
fn a_post_copy_begin_lost_with_the_link_ends_in_stop_and_copy() {
    let mut pair = suspension_requested("postcopy");
    suspend(&mut pair);
    assert_eq!(pair.source.phase(), Phase::PostCopy);
    drop_link(&mut pair);
    assert!(!pair.destination.postcopy_running());
    pair.source.resume(pair.now).unwrap();
    pair.run();
    assert_completed_after_resume(&pair);
    assert_eq!(
        count(&pair.destination_events, |e| matches!(
            e,
            Event::PostCopyStarted { .. }
        )),
        0
    );
    assert!(!pair.destination.postcopy_running());
}

/// A source that lost its link and starts afresh (a new `SourceSession`, as after the link
/// dropped before the RESERVATION reached it, or as a `send` run again).
fn fresh_source(pair: &mut Pair) {
    let mut config = source_config(&pair.config.strategy, 3);
    config.resume = true;
    let memory = pair.source.memory().clone();
    pair.source = SourceSession::new(config, memory, pair.now).unwrap();
    pair.suspended = false;
}

#[test]
fn a_fresh_hello_starts_a_kept_migration_over_while_its_guest_has_not_run_here() {
    let mut pair = resumable_pair("precopy");
    step_until(&mut pair, |pair| pair.destination.stats().iterations >= 1);
    drop_link(&mut pair);
    fresh_source(&mut pair);
    pair.run();
    pair.assert_no_errors();
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == pair.source.memory());
    let events = &pair.destination_events;
    assert_eq!(count(events, |e| *e == Event::StartedOver), 1);
    assert_eq!(count(events, |e| matches!(e, Event::Resumed { .. })), 0);
    assert_eq!(count(events, |e| matches!(e, Event::Refused(_))), 0);
    // The counters are the new migration's: it sent every page again, and the destination
    // applied what it sent.
    assert_eq!(pair.destination.stats().resumes, 0);
    assert_eq!(
        pair.destination.stats().pages,
        pair.source.stats().pages_sent
    );
    assert!(pair.source.stats().pages_sent >= PAGE_COUNT.0);
}

#[test]
fn a_fresh_hello_for_a_kept_migration_whose_guest_runs_here_is_refused_busy() {
    let mut pair = resumable_pair("postcopy");
    step_until(&mut pair, |pair| {
        pair.destination.postcopy_running() && pair.destination.stats().pages >= 40
    });
    drop_link(&mut pair);
    fresh_source(&mut pair);
    for _ in 0..20 {
        pair.step(|_, _| {});
    }
    let busy = pagewire_codec::frame::RefusalReason::Busy;
    assert!(pair.source_events.contains(&Event::Refused(busy)));
    assert_eq!(pair.source.phase(), Phase::Refused);
    // Its guest keeps the pages it had: nothing started over.
    assert!(pair.destination.postcopy_running());
    assert!(!pair.destination_events.contains(&Event::StartedOver));
}
