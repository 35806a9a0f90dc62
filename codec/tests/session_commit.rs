//! Commit: a destination page corrupted after the copy makes the digests differ; the source
//! re-sends the named range, the digests then agree, and only then is the VM activated.

mod session_support;

use pagewire_codec::frame::{CommitAnswer, CommitDigest};
use pagewire_codec::phase::Phase;
use pagewire_codec::session::Event;
use pagewire_codec::{DestinationMemory, PageNumber};
use session_support::{PAGE_COUNT, PAGE_SIZE, Pair, PairConfig, count};

/// The page the test corrupts, and the digest range it falls in (16 pages per range).
const CORRUPTED: PageNumber = PageNumber(37);
const RANGE: u64 = 37 / 16;

#[test]
fn a_corrupted_destination_page_is_resent_and_then_the_digests_agree() {
    let mut config = PairConfig::new("precopy", 3);
    // Control bytes trickle, so the stop-and-copy iteration's end is processed before the
    // digest arrives.
    config.control_budget = 16;
    let mut pair = Pair::new(config);
    let mut stopped = false;
    let mut corrupted = false;
    pair.run_with(|event, destination| match event {
        Event::PhaseChanged(Phase::StopAndCopy) => stopped = true,
        Event::IterationEnded { .. } if stopped && !corrupted => {
            corrupted = true;
            let page = vec![0xee; PAGE_SIZE.bytes()];
            destination
                .memory_mut()
                .write_page(CORRUPTED, &page)
                .unwrap();
        }
        _ => {}
    });
    assert!(corrupted);
    pair.assert_no_errors();
    let answers: Vec<&CommitAnswer> = pair
        .source_events
        .iter()
        .filter_map(|e| match e {
            Event::CommitResult(answer) => Some(answer),
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        [&CommitAnswer::Mismatch(vec![RANGE]), &CommitAnswer::Agree]
    );
    // The resend iteration carried exactly the range's pages, and came before the agreement.
    let range_pages = CommitDigest::compute(16, PAGE_COUNT, |_| pagewire_codec::ContentHash(0))
        .range_pages(RANGE, PAGE_COUNT);
    let last_end = pair.source_events.iter().rev().find_map(|e| match e {
        Event::IterationEnded { pages, .. } => Some(*pages),
        _ => None,
    });
    assert_eq!(last_end, Some(range_pages.end.0 - range_pages.start.0));
    assert_eq!(pair.source.stats().commit_mismatches, 1);
    assert_eq!(pair.destination.stats().commit_mismatches, 1);
    // Activated once, after the agreement, with identical memories.
    let agreed = pair
        .destination_events
        .iter()
        .position(|e| *e == Event::CommitResult(CommitAnswer::Agree))
        .unwrap();
    let activated = pair
        .destination_events
        .iter()
        .position(|e| *e == Event::Activated)
        .unwrap();
    assert!(agreed < activated);
    assert_eq!(
        count(&pair.destination_events, |e| *e == Event::Activated),
        1
    );
    assert!(pair.destination.activated());
    assert!(pair.destination.memory() == pair.source.memory());
}
