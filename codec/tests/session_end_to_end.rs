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
