//! End to end: a source and a destination in memory, a guest that keeps writing, every
//! strategy the sessions are meant to run, one and three page streams.

mod session_support;

use std::num::NonZeroU16;

use pagewire_codec::PageNumber;
use pagewire_codec::frame::{CommitAnswer, Frame};
use pagewire_codec::phase::Phase;
use pagewire_codec::session::{Event, PageAffinity, StreamId};
use session_support::{DEVICE_STATE, Pair, PairConfig, count, frames_of, limits};

fn migrate(strategy: &str, page_streams: u16) -> Pair {
    let mut pair = Pair::new(PairConfig::new(strategy, page_streams));
    pair.run();
    pair.assert_no_errors();
    assert_eq!(pair.source.phase(), Phase::Done);
    assert_eq!(pair.destination.phase(), Phase::Done);
    assert!(pair.destination.activated());
    assert!(
        pair.destination.memory() == pair.source.memory(),
        "{strategy}, {page_streams} streams: destination memory differs from the source's"
    );
    for events in [&pair.source_events, &pair.destination_events] {
        assert_eq!(count(events, |e| *e == Event::Activated), 1);
        assert_eq!(
            count(events, |e| *e == Event::CommitResult(CommitAnswer::Agree)),
            1
        );
        assert_eq!(count(events, |e| matches!(e, Event::Aborted(_))), 0);
    }
    assert_eq!(
        count(&pair.destination_events, |e| *e
            == Event::DeviceState(bytes::Bytes::from_static(DEVICE_STATE))),
        1
    );
    let source = pair.source.stats();
    let destination = pair.destination.stats();
    assert!(source.iterations >= 2, "{strategy}: {source:?}");
    assert_eq!(source.iterations, destination.iterations);
    assert_eq!(source.batches, destination.batches);
    assert_eq!(source.pages_sent, destination.pages);
    assert_eq!(source.bytes_sent, destination.bytes_received);
    assert_pages_keep_their_stream(&pair, page_streams);
    assert_eq!(pair.source.encoder_stats().len(), usize::from(page_streams));
    pair
}

/// Every page travelled on the one stream its affinity names, and only batches travelled on
/// page streams.
fn assert_pages_keep_their_stream(pair: &Pair, page_streams: u16) {
    let affinity = PageAffinity::new(NonZeroU16::new(page_streams).unwrap());
    let mut pages = 0;
    for index in 0..page_streams {
        let chunks = pair
            .transcript
            .iter()
            .filter(|(stream, _)| *stream == StreamId::Page(index))
            .map(|(_, bytes)| bytes.clone());
        for frame in frames_of(chunks, limits()) {
            let Frame::PageBatch(batch) = frame else {
                panic!("{frame:?} on page stream {index}");
            };
            for record in &batch.records {
                for page in record.page.0..record.page.0 + record.body.pages_covered() {
                    assert_eq!(affinity.index_of(PageNumber(page)), usize::from(index));
                    pages += 1;
                }
            }
        }
    }
    assert_eq!(pages, pair.source.stats().pages_sent);
}

#[test]
fn precopy_one_stream() {
    migrate("precopy", 1);
}

#[test]
fn precopy_three_streams() {
    migrate("precopy", 3);
}

#[test]
fn two_fold_one_stream() {
    migrate("two-fold", 1);
}

#[test]
fn two_fold_three_streams() {
    migrate("two-fold", 3);
}

#[test]
fn history_majority_one_stream() {
    migrate("history-majority", 1);
}

#[test]
fn history_majority_three_streams() {
    migrate("history-majority", 3);
}

#[test]
fn ours_one_stream() {
    migrate("ours", 1);
}

#[test]
fn ours_three_streams() {
    migrate("ours", 3);
}

#[test]
fn several_live_rounds_run_while_the_guest_writes() {
    let pair = migrate("precopy:min-pages=4", 3);
    let rounds = count(&pair.source_events, |e| {
        matches!(e, Event::RoundStarted { .. })
    });
    assert!(rounds >= 2, "only {rounds} live rounds");
}

#[test]
fn iteration_barriers_hold_streams_that_run_ahead() {
    // The control stream trickles: batches of the next iteration overtake its
    // ITERATION_START and wait for it.
    let mut config = PairConfig::new("precopy:min-pages=4", 3);
    config.control_budget = 24;
    let mut pair = Pair::new(config.clone());
    pair.run();
    let stats = pair.destination.stats();
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == pair.source.memory());
    assert!(stats.held_batches > 0, "{stats:?}");
    // The page streams trickle: ITERATION_ENDs overtake the batches they count and wait.
    config.control_budget = 1 << 16;
    config.page_budget = 4096;
    let mut pair = Pair::new(config);
    pair.run();
    let stats = pair.destination.stats();
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == pair.source.memory());
    assert!(stats.held_ends > 0, "{stats:?}");
}

#[test]
fn a_stream_with_no_batch_in_the_next_iteration_runs_two_ahead_and_waits() {
    // Page stream 1 carries batches of iterations 0 and 2 and none of 1 (page stream 0 carries
    // that one), so its batch of iteration 2 arrives while the destination is still in
    // iteration 0: it is held until ITERATION_START(2), not a protocol violation.
    use bytes::Bytes;
    use pagewire_codec::frame::{Features, Hello, Iteration, IterationEnd, PageBatch, Role};
    use pagewire_codec::session::DestinationSession;
    use pagewire_codec::{InMemory, PageRecord, RecordBody};
    use session_support::{MIGRATION, PAGE_COUNT, PAGE_SIZE, destination_config, stream};
    use std::time::Duration;

    let batch = |iteration: u64, page: u64, fill: u8| {
        Frame::PageBatch(PageBatch {
            iteration: Iteration(iteration),
            records: vec![PageRecord {
                page: PageNumber(page),
                body: RecordBody::Raw(Bytes::from(vec![fill; PAGE_SIZE.bytes()])),
            }],
        })
    };
    let end = |iteration: u64| {
        Frame::IterationEnd(IterationEnd {
            iteration: Iteration(iteration),
            batches: 1,
            pages: 1,
        })
    };
    let now = Duration::from_millis(1);
    let mut destination = DestinationSession::new(
        destination_config(),
        InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
        Duration::ZERO,
    )
    .unwrap();
    let mut hello = Hello::new(Role::Source, MIGRATION, PAGE_SIZE, PAGE_COUNT);
    hello.features = Features::empty();
    let control = stream(&[Frame::Hello(hello), Frame::IterationStart(Iteration(0))]);
    destination
        .handle_stream_data(now, StreamId::Control, &control)
        .unwrap();
    let page_stream_1 = stream(&[batch(0, 2, 0x22), batch(2, 4, 0x44)]);
    destination
        .handle_stream_data(now, StreamId::Page(1), &page_stream_1)
        .unwrap();
    assert_eq!(destination.memory().page(PageNumber(2)).unwrap()[0], 0x22);
    assert_eq!(destination.memory().page(PageNumber(4)).unwrap()[0], 0);
    assert_eq!(destination.stats().held_batches, 1);

    let mut rest = Vec::new();
    for frame in [
        end(0),
        Frame::IterationStart(Iteration(1)),
        end(1),
        Frame::IterationStart(Iteration(2)),
        end(2),
    ] {
        frame.encode(&mut rest, &limits()).unwrap();
    }
    let page_stream_0 = stream(&[batch(1, 3, 0x33)]);
    destination
        .handle_stream_data(now, StreamId::Page(0), &page_stream_0)
        .unwrap();
    destination
        .handle_stream_data(now, StreamId::Control, &rest)
        .unwrap();
    assert_eq!(destination.memory().page(PageNumber(3)).unwrap()[0], 0x33);
    assert_eq!(destination.memory().page(PageNumber(4)).unwrap()[0], 0x44);
    assert_eq!(destination.phase(), Phase::IterativeCopy);
    assert!(
        !std::iter::from_fn(|| destination.poll_event()).any(|e| matches!(e, Event::Aborted(_)))
    );
}
