//! A scripted driver for the strategies' unit tests: tiny memories, hand-made write histories,
//! one simulated second per round, every page sent in one batch.

use std::time::Duration;

use super::{Decision, Geometry, LinkEstimate, Observation, PageCosts, Progress, Strategy};
use crate::{PageBitmap, PageCount, PageNumber, PageSize};

/// Per-page resend costs for tests (4096 bytes unless set).
pub(crate) struct Costs(pub Vec<u32>);

impl PageCosts for Costs {
    fn resend_bytes(&self, page: PageNumber) -> u32 {
        self.0.get(page.index()).copied().unwrap_or(4096)
    }
}

/// Writes during one round: `before` land before the round sends anything (so they are in
/// to_skip), `after` land once it has sent everything.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Writes<'a> {
    pub before: &'a [u64],
    pub after: &'a [u64],
}

/// Writes that all land before the round sends anything.
pub(crate) fn before(pages: &[u64]) -> Writes<'_> {
    Writes {
        before: pages,
        after: &[],
    }
}

/// Writes that all land after the round has sent everything.
pub(crate) fn after(pages: &[u64]) -> Writes<'_> {
    Writes {
        before: &[],
        after: pages,
    }
}

/// What a scripted run did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The pages each live round sent, in sending order.
    pub sent: Vec<Vec<u64>>,
    /// The decision of every `plan` call, in order.
    pub decisions: Vec<Decision>,
}

impl Outcome {
    /// The final decision.
    pub fn end(&self) -> &Decision {
        self.decisions.last().expect("at least one plan")
    }

    /// The pages left for stop-and-copy (or post-copy), ascending.
    pub fn remaining(&self) -> Vec<u64> {
        match self.end() {
            Decision::StopAndCopy(stop) => stop.remaining.iter().map(|p| p.0).collect(),
            Decision::PostCopy(post) => post.missing.iter().map(|p| p.0).collect(),
            Decision::Round(_) => panic!("run ended inside a round"),
        }
    }
}

/// The scripted driver.
pub(crate) struct Script {
    pub page_count: u64,
    pub link: LinkEstimate,
    pub costs: Costs,
    pub round_time: Duration,
}

impl Script {
    pub fn new(page_count: u64) -> Self {
        Script {
            page_count,
            link: LinkEstimate::UNKNOWN,
            costs: Costs(Vec::new()),
            round_time: Duration::from_secs(1),
        }
    }

    pub fn geometry(page_count: u64) -> Geometry {
        Geometry {
            page_count: PageCount(page_count),
            page_size: PageSize::KIB_4,
        }
    }

    pub fn bitmap(page_count: u64, pages: &[u64]) -> PageBitmap {
        let mut bitmap = PageBitmap::new(PageCount(page_count));
        for page in pages {
            bitmap.insert(PageNumber(*page));
        }
        bitmap
    }

    /// Feeds a dirty-log window: one interval per entry, oldest first, one round time apart,
    /// the last ending at the start.
    pub fn history(&self, strategy: &mut dyn Strategy, intervals: &[&[u64]]) {
        for (index, written) in intervals.iter().enumerate() {
            let back = (intervals.len() - 1 - index) as u32;
            strategy.observe_history(
                self.round_time * back,
                &Self::bitmap(self.page_count, written),
            );
        }
    }

    /// The first `plan`, with an empty dirty log.
    pub fn plan_first(&self, strategy: &mut dyn Strategy) -> Decision {
        let empty = PageBitmap::new(PageCount(self.page_count));
        strategy.plan(&self.observation(Duration::ZERO, &empty, Progress::default()))
    }

    fn observation<'a>(
        &'a self,
        now: Duration,
        dirty: &'a PageBitmap,
        progress: Progress,
    ) -> Observation<'a> {
        Observation {
            now,
            dirty,
            link: self.link,
            costs: &self.costs,
            progress,
        }
    }

    /// Runs `strategy` until it stops; round `i` sees the writes `rounds[i]` (none past the
    /// end). At most 100 rounds.
    pub fn run(&self, strategy: &mut dyn Strategy, rounds: &[Writes<'_>]) -> Outcome {
        let mut outcome = Outcome {
            sent: Vec::new(),
            decisions: Vec::new(),
        };
        let mut harvested = PageBitmap::new(PageCount(self.page_count));
        let mut progress = Progress::default();
        for round in 0..100 {
            let now = self.round_time * round as u32;
            let decision = strategy.plan(&self.observation(now, &harvested, progress));
            outcome.decisions.push(decision.clone());
            if !matches!(decision, Decision::Round(_)) {
                return outcome;
            }
            let writes = rounds.get(round).copied().unwrap_or_default();
            let mut live = Self::bitmap(self.page_count, writes.before);
            let mut out = Vec::new();
            while strategy.next_batch(&live, 1000, &mut out) > 0 {}
            for page in &out {
                progress.pages_sent += 1;
                progress.bytes_sent += u64::from(self.costs.resend_bytes(*page));
            }
            for page in writes.after {
                live.insert(PageNumber(*page));
            }
            outcome.sent.push(out.iter().map(|p| p.0).collect());
            harvested = live;
        }
        panic!("strategy did not stop within 100 rounds");
    }
}

/// Page numbers from plain numbers.
pub(crate) fn pages(numbers: &[u64]) -> Vec<PageNumber> {
    numbers.iter().copied().map(PageNumber).collect()
}

/// Parameters from `key=value,...` over the defaults (panics on a bad spec: tests only).
pub(crate) fn params<P: super::registry::Params>(text: &str) -> P {
    let mut params = P::default();
    for item in text.split(',').filter(|item| !item.is_empty()) {
        let (key, value) = item.split_once('=').expect("key=value");
        params.set(key, value).expect("valid parameter");
    }
    params
}

/// The reason of the final decision.
pub(crate) fn reason(outcome: &Outcome) -> super::StopReason {
    match outcome.end() {
        Decision::StopAndCopy(stop) => stop.reason,
        Decision::PostCopy(post) => post.reason,
        Decision::Round(_) => panic!("run ended inside a round"),
    }
}
