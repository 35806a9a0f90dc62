//! Two-fold pre-copy (Sharma and Chawla, "Two Fold Optimization of Precopy Based Virtual
//! Machine Live Migration", IJITCS 7(10), 2015).
//!
//! Rule, first fold: round 0 sends only the pages not dirtied during the dirty-log window
//! before the migration (what [`Strategy::observe_history`](super::Strategy::observe_history)
//! reports). Second fold: each page keeps a modification count (how many dirty logs, window
//! included, named it). A later round considers every page the destination lacks (the pages
//! dirtied in the last round, plus those held back so far) and sends a candidate only if its
//! count is below `T1 = floor((max + min) / 2)` over the candidates' counts; the others are
//! frequently updated and wait (they are reconsidered next round, and go with stop-and-copy at
//! the latest). Pre-copy's limits and `to_skip` apply.
//!
//! Our choice where the rule says nothing useful: when no candidate is below `T1` — every count
//! equal (`T1 = min`), or `max = min + 1` — the candidates with the minimum count are sent
//! (with all counts equal, that is every candidate). Otherwise the rule would hold every page
//! and end the live rounds after round 1 whenever the counts carry no information.

use super::Geometry;
use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, unknown_param};
use crate::PageBitmap;
use std::time::Duration;

/// Two-fold pre-copy.
pub type TwoFold = Iterative<TwoFoldRule>;

/// Parameters of [`TwoFold`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TwoFoldParams {
    /// When the live rounds end.
    pub limits: Limits,
}

impl Params for TwoFoldParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        if self.limits.set(key, value)? {
            Ok(())
        } else {
            Err(unknown_param(TwoFoldRule::NAME, key))
        }
    }
}

/// The rule of [`TwoFold`].
#[derive(Clone, Debug)]
pub struct TwoFoldRule {
    params: TwoFoldParams,
    window_dirty: PageBitmap,
    counts: Vec<u16>,
}

impl TwoFold {
    /// Two-fold pre-copy over `geometry`.
    pub fn with(geometry: Geometry, params: TwoFoldParams) -> Self {
        let pages = usize::try_from(geometry.page_count.0).expect("page count fits memory");
        Iterative::new(
            geometry,
            TwoFoldRule {
                params,
                window_dirty: PageBitmap::new(geometry.page_count),
                counts: vec![0; pages],
            },
        )
    }
}

impl TwoFoldRule {
    fn count(&mut self, dirty: &PageBitmap) {
        for page in dirty.iter() {
            if let Some(count) = self.counts.get_mut(page.index()) {
                *count = count.saturating_add(1);
            }
        }
    }
}

impl RoundRule for TwoFoldRule {
    const NAME: &'static str = "two-fold";

    fn observe_history(&mut self, _before_start: Duration, written: &PageBitmap) {
        self.window_dirty.union_with(written);
        self.count(written);
    }

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        let dirty = context.observation.dirty;
        self.count(dirty);
        if let Some(reason) = self.params.limits.check(context) {
            return Choice::Stop(reason);
        }
        if context.iteration.0 == 0 {
            send.union_with(context.stale);
            send.subtract(&self.window_dirty);
            send.subtract(dirty);
            return Choice::Send(RoundPlan::PRECOPY);
        }
        let count = |page: crate::PageNumber| self.counts[page.index()];
        let (min, max) = context
            .stale
            .iter()
            .map(count)
            .fold((u16::MAX, 0), |(lo, hi), c| (lo.min(c), hi.max(c)));
        let t1 = ((u32::from(min) + u32::from(max)) / 2) as u16;
        let limit = if min < t1 { t1 } else { min.saturating_add(1) };
        for page in context.stale.iter() {
            if count(page) < limit {
                send.insert(page);
            }
        }
        Choice::Send(RoundPlan::PRECOPY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::StopReason;
    use crate::select::script::{Script, after, params, reason};

    #[test]
    fn two_fold_skips_window_pages_then_sends_counts_below_t1() {
        // 8 pages. Window: {0 1 2}, {0 1}, {0}: counts 0 -> 3, 1 -> 2, 2 -> 1.
        // Round 0 sends the pages not dirtied in the window: 3 4 5 6 7; {0 3} written after:
        //   counts 0 -> 4, 3 -> 1.
        // Plan 1: candidates {0 1 2 3}, counts 4 2 1 1: T1 = (4 + 1) / 2 = 2 -> sends 2 3.
        // Plan 2: candidates {0 1}, counts 4 2: T1 = 3 -> sends 1.
        // Plan 3: candidates {0}, count 4 = min = max: all equal -> sends 0.
        // Plan 4: nothing stale -> stop.
        let script = Script::new(8);
        let mut strategy = TwoFold::with(Script::geometry(8), params("min-pages=0"));
        script.history(&mut strategy, &[&[0, 1, 2], &[0, 1], &[0]]);
        let outcome = script.run(&mut strategy, &[after(&[0, 3])]);
        assert_eq!(
            outcome.sent,
            [vec![3, 4, 5, 6, 7], vec![2, 3], vec![1], vec![0]]
        );
        assert!(outcome.remaining().is_empty());
        assert_eq!(reason(&outcome), StopReason::FewPagesLeft);
    }

    #[test]
    fn two_fold_sends_every_candidate_when_all_counts_are_equal() {
        // No window: round 0 sends 0..4; {1 2} written (counts 1 1). Plan 1: all equal -> sends
        // 1 2 (the literal rule, count < T1 = 1, would send nothing).
        // {1 2 3} written: counts 2 2 1. Plan 2: T1 = (2 + 1) / 2 = 1 = min: nobody below, so
        // the minimum-count candidates go: sends 3.
        let mut strategy = TwoFold::with(Script::geometry(4), params("min-pages=0,max-rounds=3"));
        let outcome = Script::new(4).run(&mut strategy, &[after(&[1, 2]), after(&[1, 2, 3])]);
        assert_eq!(outcome.sent, [vec![0, 1, 2, 3], vec![1, 2], vec![3]]);
        assert_eq!(outcome.remaining(), [1, 2]);
        assert_eq!(reason(&outcome), StopReason::RoundLimit);
    }
}
