//! Commit: a destination page corrupted after the copy makes the digests differ; the source
//! re-sends the named range, the digests then agree, and only then is the VM activated. The
//! destination's digest comes from the hashes it kept of the pages it wrote, not from reading
//! its memory again.

mod session_support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use pagewire_codec::frame::{CommitAnswer, CommitDigest};
use pagewire_codec::memory::MemoryError;
use pagewire_codec::phase::Phase;
use pagewire_codec::session::{DestinationSession, Event};
use pagewire_codec::{DestinationMemory, InMemory, PageCount, PageNumber, PageSize};
use session_support::{PAGE_COUNT, PAGE_SIZE, Pair, PairConfig, count, destination_config};

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

/// A destination memory that refuses every read once sealed: the destination may then only
/// answer from what it kept.
struct Sealable {
    memory: InMemory,
    sealed: Rc<Cell<bool>>,
}

impl Sealable {
    fn check(&self, page: PageNumber) -> Result<(), MemoryError> {
        if self.sealed.get() {
            return Err(MemoryError::Backend(std::io::Error::other(format!(
                "{page} read after the last page arrived"
            ))));
        }
        Ok(())
    }
}

impl DestinationMemory for Sealable {
    fn page_size(&self) -> PageSize {
        self.memory.page_size()
    }
    fn page_count(&self) -> PageCount {
        self.memory.page_count()
    }
    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        self.check(page)?;
        self.memory.read_page(page, out)
    }
    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        self.memory.write_page(page, bytes)
    }
    fn page_mut(&mut self, page: PageNumber) -> Result<Option<&mut [u8]>, MemoryError> {
        self.check(page)?;
        self.memory.page_mut(page)
    }
}

/// Replays a whole migration's source bytes into a destination whose memory is sealed once
/// the last iteration is applied; with `forget`, the destination's memory is lent mutably
/// first. Returns the destination's events, its first error, and whether its memory ends
/// equal to the source's.
fn replay_sealed(forget: bool) -> (Vec<Event>, Option<String>, bool) {
    let mut config = PairConfig::new("precopy", 3);
    // Control bytes trickle: the digest completes in a later chunk than the last iteration's
    // end, so the seal comes between them.
    config.control_budget = 16;
    let mut pair = Pair::new(config);
    pair.run();
    pair.assert_no_errors();
    let last_iteration = pair
        .destination_events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::IterationEnded { iteration, .. } => Some(*iteration),
            _ => None,
        })
        .unwrap();

    let sealed = Rc::new(Cell::new(false));
    let memory = Sealable {
        memory: InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
        sealed: Rc::clone(&sealed),
    };
    let now = Duration::from_millis(1);
    let mut destination = DestinationSession::new(destination_config(), memory, now).unwrap();
    if forget {
        destination.memory_mut();
    }
    let mut events = Vec::new();
    let mut failed = None;
    for (stream, bytes) in &pair.transcript {
        if let Err(error) = destination.handle_stream_data(now, *stream, bytes) {
            failed.get_or_insert(format!("{error:?}"));
        }
        while let Some(event) = destination.poll_event() {
            let last = |iteration: &_| *iteration == last_iteration;
            if matches!(&event, Event::IterationEnded { iteration, .. } if last(iteration)) {
                sealed.set(true);
            }
            events.push(event);
        }
    }
    assert!(sealed.get(), "the replay applied the last iteration");
    let same = destination.memory().memory == *pair.source.memory();
    (events, failed, same)
}

#[test]
fn the_destination_answers_the_digest_from_the_hashes_it_kept_without_reading_its_memory() {
    let (events, failed, same) = replay_sealed(false);
    assert_eq!(failed, None);
    assert!(events.contains(&Event::CommitResult(CommitAnswer::Agree)));
    assert!(same);
}

#[test]
fn a_destination_whose_memory_was_lent_mutably_reads_it_all_for_the_digest() {
    let (events, failed, _) = replay_sealed(true);
    let failed = failed.expect("the digest needed a sealed page");
    assert!(
        failed.contains("read after the last page arrived"),
        "{failed}"
    );
    assert!(!events.contains(&Event::CommitResult(CommitAnswer::Agree)));
}
