//! Properties every strategy must keep, driven through the public API only, on random write
//! histories: when the migration ends, the destination holds the latest version of every page
//! (nothing is lost whatever the strategy holds back or skips), the run ends, and the same
//! inputs give the same decisions.

use std::time::Duration;

use pagewire_codec::select::{
    Decision, FaultAction, FlatCost, Geometry, LinkEstimate, Observation, Progress, Strategy,
    WriteAction, WriteMode, build, names,
};
use pagewire_codec::{PageBitmap, PageCount, PageNumber, PageSize};
use proptest::prelude::*;

/// What a run did: the pages of every batch, and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    batches: Vec<Vec<u64>>,
    end: String,
}

/// Drives `strategy` over `page_count` pages. Round `i` applies `rounds[i]` (none past the end)
/// in chunks, one chunk before each batch of at most 5 pages, so writes land during the round.
/// Tracks, per page, the version the guest holds and the version the destination holds, and
/// checks at the end that they agree everywhere.
fn drive(
    strategy: &mut dyn Strategy,
    page_count: u64,
    rounds: &[Vec<u64>],
    faults: &[u64],
) -> Trace {
    let count = PageCount(page_count);
    let mut guest = vec![0u32; page_count as usize];
    let mut destination = vec![u32::MAX; page_count as usize];
    let mut trace = Trace {
        batches: Vec::new(),
        end: String::new(),
    };
    let mut harvested = PageBitmap::new(count);
    let mut progress = Progress::default();
    let costs = FlatCost(4096);
    let link = LinkEstimate {
        bytes_per_second: 4096 * 16,
        rtt: Duration::from_millis(1),
    };
    for round in 0..200u32 {
        let observation = Observation {
            now: Duration::from_millis(250) * round,
            dirty: &harvested,
            link,
            costs: &costs,
            progress,
        };
        match strategy.plan(&observation) {
            Decision::Round(plan) => {
                let writes = rounds.get(round as usize).map(Vec::as_slice).unwrap_or(&[]);
                let mut chunks = writes.chunks(3);
                let mut live = PageBitmap::new(count);
                loop {
                    for &page in chunks.next().unwrap_or(&[]) {
                        guest[page as usize] += 1;
                        live.insert(PageNumber(page));
                        if plan.writes == WriteMode::Mirror
                            && strategy.on_write(PageNumber(page)) == WriteAction::Forward
                        {
                            destination[page as usize] = guest[page as usize];
                        }
                    }
                    let mut out = Vec::new();
                    if strategy.next_batch(&live, 5, &mut out) == 0 && chunks.len() == 0 {
                        break;
                    }
                    for page in &out {
                        destination[page.index()] = guest[page.index()];
                    }
                    progress.pages_sent += out.len() as u64;
                    progress.bytes_sent += 4096 * out.len() as u64;
                    trace.batches.push(out.iter().map(|p| p.0).collect());
                }
                harvested = live;
            }
            Decision::StopAndCopy(stop) => {
                for page in stop.remaining.iter() {
                    destination[page.index()] = guest[page.index()];
                }
                trace.end = format!("stop {:?} {:?}", stop.reason, stop.remaining);
                assert_eq!(guest, destination, "{} lost a page", strategy.name());
                return trace;
            }
            Decision::PostCopy(post) => {
                strategy.on_suspend(&PageBitmap::new(count));
                let mut faults = faults.iter();
                let empty = PageBitmap::new(count);
                loop {
                    if let Some(&page) = faults.next() {
                        let page = PageNumber(page % page_count);
                        if strategy.on_fault(page) == FaultAction::SendNow {
                            destination[page.index()] = guest[page.index()];
                        }
                        assert_eq!(destination[page.index()], guest[page.index()]);
                    }
                    let mut out = Vec::new();
                    if strategy.next_batch(&empty, 4, &mut out) == 0 && faults.len() == 0 {
                        break;
                    }
                    for page in &out {
                        destination[page.index()] = guest[page.index()];
                    }
                    trace.batches.push(out.iter().map(|p| p.0).collect());
                }
                trace.end = format!("postcopy {:?}", post.reason);
                assert_eq!(guest, destination, "{} lost a page", strategy.name());
                return trace;
            }
        }
    }
    panic!("{} did not end within 200 rounds", strategy.name());
}

fn geometry(page_count: u64) -> Geometry {
    Geometry {
        page_count: PageCount(page_count),
        page_size: PageSize::KIB_4,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_strategy_leaves_the_destination_current_and_is_deterministic(
        page_count in 1u64..150,
        rounds in proptest::collection::vec(proptest::collection::vec(0u64..150, 0..60), 0..12),
        faults in proptest::collection::vec(0u64..150, 0..10),
    ) {
        let rounds: Vec<Vec<u64>> = rounds
            .into_iter()
            .map(|r| r.into_iter().filter(|p| *p < page_count).collect())
            .collect();
        for name in names() {
            let spec = name.parse().unwrap();
            let first = drive(&mut *build(&spec, geometry(page_count)).unwrap(), page_count, &rounds, &faults);
            let second = drive(&mut *build(&spec, geometry(page_count)).unwrap(), page_count, &rounds, &faults);
            prop_assert_eq!(first, second, "{} is not deterministic", name);
        }
    }
}

#[test]
fn history_window_is_honoured_by_every_strategy() {
    // Feeding a dirty-log window must never lose pages either (two-fold skips those pages in
    // round 0, lru-order sends them last, ours may hold them).
    let rounds = vec![vec![1, 2, 3], vec![2, 3], vec![3]];
    for name in names() {
        let mut strategy = build(&name.parse().unwrap(), geometry(16)).unwrap();
        strategy.observe_history(Duration::from_millis(500), &bitmap(16, &[2, 3, 4]));
        strategy.observe_history(Duration::ZERO, &bitmap(16, &[3, 4]));
        drive(&mut *strategy, 16, &rounds, &[5, 3]);
    }
}

fn bitmap(page_count: u64, pages: &[u64]) -> PageBitmap {
    let mut bitmap = PageBitmap::new(PageCount(page_count));
    for page in pages {
        bitmap.insert(PageNumber(*page));
    }
    bitmap
}
