//! The machinery every round-based strategy shares: [`Iterative`] runs a [`RoundRule`] (which
//! pages the next round sends, or when to stop) and does the bookkeeping the rules would
//! otherwise repeat: the set of pages the destination lacks, the to_skip test, handing pages
//! out in batches, and the post-copy push.
//!
//! The invariant that makes every rule correct by construction: `stale` holds every page whose
//! latest content the destination may lack. It starts full; a page leaves it when it is handed
//! to the driver (which sends its current content) and comes back when a harvested dirty log
//! names it. Stop-and-copy sends exactly `stale` (plus the final harvest).

use std::time::Duration;

use super::postcopy::BackgroundPush;
use super::registry::{SpecError, parse_value};
use super::{
    CpuThrottle, Decision, FaultAction, Geometry, Iteration, Observation, PostCopy, Round,
    StopAndCopy, StopReason, Strategy, WriteMode, resend_cost,
};
use crate::{PageBitmap, PageCount, PageNumber};

/// A rule of a round-based strategy: at each sync point, the pages of the next live round, or
/// the end of the live rounds.
pub trait RoundRule: Send {
    /// The registry name of the strategy.
    const NAME: &'static str;

    /// Pages written during one interval of the dirty-log window, which ended `before_start`
    /// before the migration started (oldest first).
    fn observe_history(&mut self, before_start: Duration, written: &PageBitmap) {
        let _ = (before_start, written);
    }

    /// Chooses what happens next. `send` arrives empty; a [`Choice::Send`] fills it with the
    /// pages of the round (the engine keeps only those in `context.stale`).
    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice;
}

/// What a [`RoundRule`] sees at a sync point.
#[derive(Debug)]
pub struct RoundContext<'a> {
    /// The round about to start (round 0 is the first pass).
    pub iteration: Iteration,
    /// The driver's observation; its dirty log is already merged into `stale`.
    pub observation: &'a Observation<'a>,
    /// Pages whose latest content the destination may lack.
    pub stale: &'a PageBitmap,
    /// Pages handed to the driver at least once: the destination holds some version of them,
    /// so resending one can be a delta against it.
    pub sent: &'a PageBitmap,
    /// The memory being migrated.
    pub geometry: Geometry,
    /// What the round that just ended did (zeros before round 0).
    pub last_round: RoundStats,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Pages handed to the driver.
    pub pages_sent: u64,
    /// Pages skipped because they were written again during the round (to_skip).
    pub pages_skipped: u64,
    /// Wire bytes the driver reported for the round.
    pub bytes_sent: u64,
    /// How long the round took.
    pub duration: Duration,
}

/// A rule's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Run a live round with the pages written into `send`.
    Send(RoundPlan),
    /// Suspend and send what remains.
    Stop(StopReason),
    /// Switch to post-copy.
    PostCopy(PostCopyPlan),
}

/// How the post-copy phase runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostCopyPlan {
    /// Why the live rounds ended.
    pub reason: StopReason,
    /// Pages to push first, in this order; the other missing pages follow in pre-paging order
    /// (see [`BackgroundPush`]).
    pub push_first: Vec<PageNumber>,
}

impl PostCopyPlan {
    /// Post-copy with the plain pre-paging push.
    pub fn pre_paging(reason: StopReason) -> PostCopyPlan {
        PostCopyPlan {
            reason,
            push_first: Vec::new(),
        }
    }
}

/// How a live round runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundPlan {
    /// Skip a page written again since the round began (Xen's `to_skip`): it will be in the next
    /// dirty log anyway.
    pub skip_rewritten: bool,
    /// Guest CPU throttle during the round.
    pub throttle: CpuThrottle,
    /// Pages of `send` to send last, in this order, after the others (which go ascending).
    /// Pages not in `send` are passed over.
    pub tail: Vec<PageNumber>,
}

impl RoundPlan {
    /// Xen's plain round: ascending order, to_skip on, no throttle.
    pub const PRECOPY: RoundPlan = RoundPlan {
        skip_rewritten: true,
        throttle: CpuThrottle::NONE,
        tail: Vec::new(),
    };
}

/// The stop conditions of pre-copy, as Xen's `xc_domain_save` and QEMU apply them.
///
/// Xen (`tools/libxc/xc_domain_save.c`, `DEF_MAX_ITERS 29`, `DEF_MAX_FACTOR 3`) suspends the
/// guest when fewer than 50 pages went in the last round, after 29 rounds, or once it has sent
/// more than 3x the memory's pages. QEMU stops when the expected downtime is under
/// `downtime-limit` (300 ms by default). We apply all four, checked from round 1 on; "fewer
/// than 50" is read as "at most `min_pages` pages remain" (the pages the next round would send),
/// and a zero disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Live rounds at most, round 0 included (`max-rounds`).
    pub max_rounds: u32,
    /// Stop once more than this many times the memory's pages have been sent (`max-factor`).
    pub max_factor: u32,
    /// Stop when at most this many pages remain (`min-pages`).
    pub min_pages: u64,
    /// Stop when the expected downtime is at most this (`downtime-ms`; zero: off).
    pub downtime_target: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rounds: 29,
            max_factor: 3,
            min_pages: 50,
            downtime_target: Duration::from_millis(300),
        }
    }
}

impl Limits {
    /// Sets one limit from a `key=value` parameter; `Ok(false)` if `key` is not a limit.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, SpecError> {
        match key {
            "max-rounds" => self.max_rounds = parse_value(key, value)?,
            "max-factor" => self.max_factor = parse_value(key, value)?,
            "min-pages" => self.min_pages = parse_value(key, value)?,
            "downtime-ms" => {
                self.downtime_target = Duration::from_millis(parse_value(key, value)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether a round of `pages` pages starting at `context.iteration` is the last one the
    /// round and data limits allow (the next [`Limits::check`] would end the live rounds).
    pub fn last_round(&self, context: &RoundContext<'_>, pages: u64) -> bool {
        let next = context.iteration.0.saturating_add(1);
        let sent = context
            .observation
            .progress
            .pages_sent
            .saturating_add(pages);
        next >= self.max_rounds
            || (self.max_factor > 0
                && sent
                    > context
                        .geometry
                        .page_count
                        .0
                        .saturating_mul(self.max_factor.into()))
    }

    /// Whether the live rounds should end before `context.iteration`, and why.
    pub fn check(&self, context: &RoundContext<'_>) -> Option<StopReason> {
        let round = context.iteration.0;
        if round >= self.max_rounds {
            return Some(StopReason::RoundLimit);
        }
        if round == 0 {
            return None;
        }
        if context.stale.count() <= self.min_pages {
            return Some(StopReason::FewPagesLeft);
        }
        let observation = context.observation;
        if self.max_factor > 0
            && observation.progress.pages_sent
                > context
                    .geometry
                    .page_count
                    .0
                    .saturating_mul(self.max_factor.into())
        {
            return Some(StopReason::DataLimit);
        }
        if !self.downtime_target.is_zero() {
            let bytes = resend_cost(context.stale, observation.costs);
            if let Some(time) = observation.link.transfer_time(bytes)
                && time + observation.link.rtt <= self.downtime_target
            {
                return Some(StopReason::DowntimeTarget);
            }
        }
        None
    }
}

/// A round-based strategy: a [`RoundRule`] plus the shared bookkeeping.
#[derive(Debug)]
pub struct Iterative<R> {
    rule: R,
    geometry: Geometry,
    stale: PageBitmap,
    sent: PageBitmap,
    send: PageBitmap,
    phase: Phase,
    next_iteration: u32,
    round: RoundStats,
    round_started: Duration,
    bytes_at_round_start: u64,
}

#[derive(Debug)]
enum Phase {
    Start,
    Live(LiveRound),
    PostCopy(BackgroundPush),
    Done(StopReason),
}

#[derive(Debug)]
struct LiveRound {
    cursor: u64,
    skip_rewritten: bool,
    tail: Vec<PageNumber>,
    tail_next: usize,
}

impl<R: RoundRule> Iterative<R> {
    /// A strategy over `geometry` running `rule`.
    pub fn new(geometry: Geometry, rule: R) -> Self {
        Iterative {
            rule,
            geometry,
            stale: PageBitmap::full(geometry.page_count),
            sent: PageBitmap::new(geometry.page_count),
            send: PageBitmap::new(geometry.page_count),
            phase: Phase::Start,
            next_iteration: 0,
            round: RoundStats::default(),
            round_started: Duration::ZERO,
            bytes_at_round_start: 0,
        }
    }

    /// The rule this strategy runs.
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// Pages whose latest content the destination may lack.
    pub fn stale(&self) -> &PageBitmap {
        &self.stale
    }

    fn end(&mut self, reason: StopReason) -> Decision {
        self.phase = Phase::Done(reason);
        Decision::StopAndCopy(StopAndCopy {
            remaining: self.stale.clone(),
            reason,
        })
    }

    fn next_live_page(live: &mut LiveRound, send: &PageBitmap) -> Option<PageNumber> {
        if let Some(page) = send.first_at_or_after(PageNumber(live.cursor)) {
            live.cursor = page.0 + 1;
            return Some(page);
        }
        live.cursor = u64::MAX;
        let page = live.tail.get(live.tail_next).copied();
        live.tail_next += 1;
        page
    }
}

impl<R: RoundRule> Strategy for Iterative<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn observe_history(&mut self, before_start: Duration, written: &PageBitmap) {
        if matches!(self.phase, Phase::Start) && written.page_count() == self.geometry.page_count {
            self.rule.observe_history(before_start, written);
        }
    }

    fn plan(&mut self, observation: &Observation<'_>) -> Decision {
        if let Phase::Done(reason) | Phase::PostCopy(BackgroundPush { reason, .. }) = &self.phase {
            // Asked again after the end: repeat the end with what is still stale.
            return Decision::StopAndCopy(StopAndCopy {
                remaining: self.stale.clone(),
                reason: *reason,
            });
        }
        if observation.dirty.page_count() == self.geometry.page_count {
            self.stale.union_with(observation.dirty);
        }
        let bytes_sent = observation.progress.bytes_sent;
        self.round.bytes_sent = bytes_sent.saturating_sub(self.bytes_at_round_start);
        self.round.duration = observation.now.saturating_sub(self.round_started);
        let context = RoundContext {
            iteration: Iteration(self.next_iteration),
            observation,
            stale: &self.stale,
            sent: &self.sent,
            geometry: self.geometry,
            last_round: self.round,
        };
        self.send.clear();
        let choice = self.rule.choose(&context, &mut self.send);
        match choice {
            Choice::Send(mut plan) => {
                self.send.intersect_with(&self.stale);
                if self.next_iteration > 0 && self.send.is_empty() {
                    return self.end(StopReason::NothingToSend);
                }
                // Tail pages leave the ascending part; those not in `send` are dropped.
                plan.tail.retain(|page| self.send.remove(*page));
                let planned = self.send.count() + plan.tail.len() as u64;
                let iteration = Iteration(self.next_iteration);
                self.next_iteration = self.next_iteration.saturating_add(1);
                self.round = RoundStats::default();
                self.round_started = observation.now;
                self.bytes_at_round_start = bytes_sent;
                self.phase = Phase::Live(LiveRound {
                    cursor: 0,
                    skip_rewritten: plan.skip_rewritten,
                    tail: plan.tail,
                    tail_next: 0,
                });
                Decision::Round(Round {
                    iteration,
                    planned: PageCount(planned),
                    throttle: plan.throttle,
                    writes: WriteMode::Log,
                })
            }
            Choice::Stop(reason) => self.end(reason),
            Choice::PostCopy(PostCopyPlan { reason, push_first }) => {
                let missing = self.stale.clone();
                let mut push = BackgroundPush::new(missing.clone(), reason);
                push.push_first(push_first);
                self.phase = Phase::PostCopy(push);
                Decision::PostCopy(PostCopy { missing, reason })
            }
        }
    }

    fn next_batch(
        &mut self,
        dirty_now: &PageBitmap,
        max: usize,
        out: &mut Vec<PageNumber>,
    ) -> usize {
        match &mut self.phase {
            Phase::Live(live) => {
                let mut added = 0;
                while added < max {
                    let Some(page) = Self::next_live_page(live, &self.send) else {
                        break;
                    };
                    if live.skip_rewritten && dirty_now.contains(page) {
                        self.round.pages_skipped += 1;
                        continue;
                    }
                    self.stale.remove(page);
                    self.sent.insert(page);
                    out.push(page);
                    added += 1;
                }
                self.round.pages_sent += added as u64;
                added
            }
            Phase::PostCopy(push) => {
                let before = out.len();
                push.next_batch(max, out);
                for page in &out[before..] {
                    self.stale.remove(*page);
                    self.sent.insert(*page);
                }
                out.len() - before
            }
            Phase::Start | Phase::Done(_) => 0,
        }
    }

    fn on_suspend(&mut self, dirty: &PageBitmap) {
        if let Phase::PostCopy(push) = &mut self.phase
            && dirty.page_count() == self.geometry.page_count
        {
            self.stale.union_with(dirty);
            push.add_missing(dirty);
        }
    }

    fn on_fault(&mut self, page: PageNumber) -> FaultAction {
        match &mut self.phase {
            Phase::PostCopy(push) => {
                let action = push.on_fault(page);
                if action == FaultAction::SendNow {
                    self.stale.remove(page);
                    self.sent.insert(page);
                }
                action
            }
            _ => FaultAction::AlreadySent,
        }
    }
}
