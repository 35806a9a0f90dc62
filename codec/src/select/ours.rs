//! Ours: interval- and cost-aware pre-copy.
//!
//! The waste of pre-copy is sending a page that is rewritten before the stop: its bytes buy
//! nothing. The gain of sending a page live is that it leaves the stop-and-copy set, which
//! shortens the downtime by the page's cost. So the question per stale page is: will it stay
//! clean until the stop, and what does it cost to (re)send? The rule:
//!
//! - **Write-interval estimate.** Every harvested dirty log (and the dirty-log window before
//!   the start) updates, per page, the time of its last observed write and an exponentially
//!   weighted mean of the gaps between observed writes (weight 1/4 for the newest gap). The
//!   estimate of how long the page stays clean is `max(mean gap, time since the last write)`:
//!   a page that has stayed clean longer than its usual gap has cooled. A page never seen
//!   written is cold.
//! - **Horizon.** The time until the page's next chance, i.e. roughly until the stop: the time
//!   to send every stale page once more at the link estimate (the last round's duration when
//!   the bandwidth is unknown).
//! - **Send** a stale page in the next round if its estimate is at least the horizon (it will
//!   likely stay clean), or if it is cheap — the encoder's resend hint is at most
//!   `cheap-bytes` (256): a hot page whose XBZRLE delta is tiny, or one rewritten with identical
//!   content, costs almost nothing to keep current and takes its bytes off the downtime.
//!   **Hold** the rest (hot and expensive) for stop-and-copy. Round 0 applies the same test,
//!   so pages hot in the window wait instead of going in the first pass. `to_skip` applies.
//! - **Stop** on pre-copy's limits (with the expected downtime computed from the encoder's
//!   per-page costs, not page counts), when every stale page is held, or when rounds stall:
//!   the stop-and-copy cost (sum of resend hints of the stale pages) failed to fall below
//!   `progress` (90)% of the best seen for `patience` (2) rounds in a row. Pre-copy on a
//!   workload that dirties faster than the link runs to its 29-round or 3x-memory limit; this
//!   rule stops after two rounds that do not help, with about the same downtime.
//!
//! State: two `u32` per page (8 bytes per page: 32 MiB for a 16 GiB guest of 4 KiB pages);
//! updates cost the dirty pages of each log, decisions the stale pages.

use std::time::Duration;

use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, parse_percent, parse_value, unknown_param};
use super::{Geometry, StopReason, resend_cost};
use crate::{PageBitmap, PageNumber};

/// Ours: interval- and cost-aware pre-copy.
pub type Ours = Iterative<OursRule>;

/// Parameters of [`Ours`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OursParams {
    /// Pages whose resend hint is at most this many bytes are always sent (`cheap-bytes`).
    pub cheap_bytes: u32,
    /// A round progresses if it brings the stop cost under this percentage of the best so far
    /// (`progress`, 90).
    pub progress: u8,
    /// Rounds without progress before stopping (`patience`, 2).
    pub patience: u32,
    /// Pre-copy limits.
    pub limits: Limits,
}

impl Default for OursParams {
    fn default() -> Self {
        OursParams {
            cheap_bytes: 256,
            progress: 90,
            patience: 2,
            limits: Limits::default(),
        }
    }
}

impl Params for OursParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        match key {
            "cheap-bytes" => self.cheap_bytes = parse_value(key, value)?,
            "progress" => self.progress = parse_percent(key, value, 100)?,
            "patience" => self.patience = parse_value(key, value)?,
            _ if self.limits.set(key, value)? => {}
            _ => return Err(unknown_param(OursRule::NAME, key)),
        }
        Ok(())
    }
}

/// Milliseconds on the rule's own time line (origin: the oldest observation).
type Millis = u32;
const NEVER: Millis = Millis::MAX;

/// The rule of [`Ours`].
#[derive(Clone, Debug)]
pub struct OursRule {
    params: OursParams,
    /// Per page: time of the last observed write, or [`NEVER`].
    last_write: Vec<Millis>,
    /// Per page: mean gap between observed writes (0: not known yet).
    mean_gap: Vec<Millis>,
    /// How long before the migration start the time line begins.
    origin_before_start: Option<Duration>,
    best_stop_cost: u64,
    stalled_rounds: u32,
}

impl Ours {
    /// Our strategy over `geometry`.
    pub fn with(geometry: Geometry, params: OursParams) -> Self {
        let pages = usize::try_from(geometry.page_count.0).expect("page count fits memory");
        Iterative::new(
            geometry,
            OursRule {
                params,
                last_write: vec![NEVER; pages],
                mean_gap: vec![0; pages],
                origin_before_start: None,
                best_stop_cost: u64::MAX,
                stalled_rounds: 0,
            },
        )
    }
}

impl OursRule {
    fn millis(&mut self, since_start: Duration, before_start: Duration) -> Millis {
        let origin = *self.origin_before_start.get_or_insert(before_start);
        let at = (origin + since_start).saturating_sub(before_start);
        Millis::try_from(at.as_millis()).unwrap_or(NEVER - 1)
    }

    fn record(&mut self, at: Millis, written: &PageBitmap) {
        for page in written.iter() {
            let index = page.index();
            let (Some(last), Some(gap)) = (self.last_write.get(index), self.mean_gap.get(index))
            else {
                continue;
            };
            if *last != NEVER {
                let newest = at.saturating_sub(*last);
                let mean = if *gap == 0 {
                    newest
                } else {
                    ((u64::from(*gap) * 3 + u64::from(newest)) / 4) as Millis
                };
                self.mean_gap[index] = mean;
            }
            self.last_write[index] = at;
        }
    }

    /// How long `page` is expected to stay clean, from `now`.
    fn clean_for(&self, page: PageNumber, now: Millis) -> Millis {
        let last = self.last_write[page.index()];
        if last == NEVER {
            return NEVER;
        }
        self.mean_gap[page.index()].max(now.saturating_sub(last))
    }

    fn stalled(&mut self, stop_cost: u64) -> bool {
        let bar = self.best_stop_cost / 100 * u64::from(self.params.progress)
            + self.best_stop_cost % 100 * u64::from(self.params.progress) / 100;
        if stop_cost < bar || self.best_stop_cost == u64::MAX {
            self.stalled_rounds = 0;
        } else {
            self.stalled_rounds += 1;
        }
        self.best_stop_cost = self.best_stop_cost.min(stop_cost);
        self.params.patience > 0 && self.stalled_rounds >= self.params.patience
    }
}

impl RoundRule for OursRule {
    const NAME: &'static str = "ours";

    fn observe_history(&mut self, before_start: Duration, written: &PageBitmap) {
        let at = self.millis(Duration::ZERO, before_start);
        self.record(at, written);
    }

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        let observation = context.observation;
        let now = self.millis(observation.now, Duration::ZERO);
        self.record(now, observation.dirty);
        if let Some(reason) = self.params.limits.check(context) {
            return Choice::Stop(reason);
        }
        let stop_cost = resend_cost(context.stale, observation.costs);
        if context.iteration.0 > 0 && self.stalled(stop_cost) {
            return Choice::Stop(StopReason::Stalled);
        }
        let horizon = observation
            .link
            .transfer_time(stop_cost)
            .unwrap_or(context.last_round.duration);
        let horizon = Millis::try_from(horizon.as_millis()).unwrap_or(NEVER);
        for page in context.stale.iter() {
            if observation.costs.resend_bytes(page) <= self.params.cheap_bytes
                || self.clean_for(page, now) >= horizon
            {
                send.insert(page);
            }
        }
        Choice::Send(RoundPlan::PRECOPY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::LinkEstimate;
    use crate::select::script::{Costs, Script, after, params, reason};

    fn link(bytes_per_second: u64) -> LinkEstimate {
        LinkEstimate {
            bytes_per_second,
            rtt: Duration::ZERO,
        }
    }

    #[test]
    fn cheap_hot_pages_are_resent_expensive_ones_held_and_stalls_stop() {
        // 4 pages; page 1 resends in 20 bytes (tiny delta), others 4096. Link 4096 B/s, one
        // second per round. Pages 1 and 2 are written after every round.
        // Round 0 (no history: every page cold) sends 0 1 2 3.
        // Plan 1 (t = 1 s): stale {1 2}, stop cost 4116 B (1.005 s > 300 ms target). Horizon
        //   1.005 s. Page 1 is cheap -> send. Page 2: first write seen, clean for
        //   max(0, 0) = 0 < horizon -> held. Sends 1. Best stop cost 4116.
        // Plan 2: stop cost 4116, not under 90% of 4116 -> stall 1. Page 2: gap 1 s, clean
        //   for 1000 ms < 1005 ms -> held. Sends 1.
        // Plan 3: stall 2 = patience -> stop, remaining {1 2}.
        let mut script = Script::new(4);
        script.link = link(4096);
        script.costs = Costs(vec![4096, 20, 4096, 4096]);
        let mut strategy = Ours::with(Script::geometry(4), params("min-pages=0"));
        let hot = after(&[1, 2]);
        let outcome = script.run(&mut strategy, &[hot, hot, hot, hot]);
        assert_eq!(outcome.sent, [vec![0, 1, 2, 3], vec![1], vec![1]]);
        assert_eq!(outcome.remaining(), [1, 2]);
        assert_eq!(reason(&outcome), StopReason::Stalled);
    }

    #[test]
    fn a_page_hot_in_the_window_waits_until_it_cools() {
        // 4 pages of 4096 bytes, link 12 288 B/s (3 pages/s), one second per round.
        // Window: page 3 written at -2 s, -1 s and 0 s: mean gap 1000 ms, last write at 0.
        // Plan 0: stop cost 4 pages = 1.33 s horizon; page 3 clean for max(1000, 0) = 1000 ms
        //   < 1333 -> held; sends 0 1 2. Nothing written.
        // Plan 1 (t = 1 s): stale {3}: horizon 0.33 s; page 3 clean for max(1000, 1000) ->
        //   sent. (Expected downtime 333 ms > 300 ms target: no stop yet.)
        // Plan 2: nothing stale -> stop.
        let mut script = Script::new(4);
        script.link = link(12_288);
        let mut strategy = Ours::with(Script::geometry(4), params("min-pages=0"));
        script.history(&mut strategy, &[&[3], &[3], &[3]]);
        let outcome = script.run(&mut strategy, &[]);
        assert_eq!(outcome.sent, [vec![0, 1, 2], vec![3]]);
        assert!(outcome.remaining().is_empty());
        assert_eq!(reason(&outcome), StopReason::FewPagesLeft);
    }

    #[test]
    fn ours_sends_less_than_precopy_when_the_hot_set_never_converges() {
        // 64 pages, pages 0..16 rewritten after every round, link of 8 pages/s (the hot set
        // costs 2 s > the 300 ms target). Pre-copy resends the hot set each round until it has
        // sent more than 3x memory: 64 + 16 * 9 = 208 > 192 pages at plan 10. Ours: at plan 1
        // every stale page is hot (clean for 0 ms < 2 s horizon) and expensive, so all are
        // held and it stops at once. Both leave the 16 hot pages for stop-and-copy.
        let mut script = Script::new(64);
        script.link = link(8 * 4096);
        let hot: Vec<u64> = (0..16).collect();
        let rounds = vec![after(&hot); 40];
        let mut ours = Ours::with(Script::geometry(64), params("min-pages=0"));
        let ours = script.run(&mut ours, &rounds);
        let mut precopy =
            crate::select::precopy::Precopy::new(Script::geometry(64), params("min-pages=0"));
        let precopy = script.run(&mut precopy, &rounds);
        let total = |o: &crate::select::script::Outcome| -> usize {
            o.sent.iter().map(Vec::len).sum::<usize>() + o.remaining().len()
        };
        assert_eq!(precopy.sent.len(), 10);
        assert_eq!(reason(&precopy), StopReason::DataLimit);
        assert_eq!(reason(&ours), StopReason::NothingToSend);
        assert_eq!((total(&ours), total(&precopy)), (64 + 16, 64 + 16 * 9 + 16));
        assert_eq!(ours.remaining().len(), precopy.remaining().len());
    }
}
