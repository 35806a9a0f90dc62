//! LRU-order pre-copy: the first pass sends the least recently written pages first.
//!
//! Rule: round 0 sends every page, in order of last write: the pages not written during the
//! dirty-log window first (ascending), then the written ones from the longest-ago last write to
//! the most recent (ties ascending), so the pages most likely to be dirtied again go last and
//! have the least time to be. Later rounds are plain [`Precopy`](super::precopy) with its
//! limits. (The idea is common to the pre-copy literature's "send cold pages first" variants;
//! this is our formulation.)

use std::time::Duration;

use super::Geometry;
use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, unknown_param};
use crate::{PageBitmap, PageNumber};

/// LRU-order pre-copy.
pub type LruOrder = Iterative<LruOrderRule>;

/// Parameters of [`LruOrder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LruOrderParams {
    /// When the live rounds end.
    pub limits: Limits,
}

impl Params for LruOrderParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        if self.limits.set(key, value)? {
            Ok(())
        } else {
            Err(unknown_param(LruOrderRule::NAME, key))
        }
    }
}

/// The rule of [`LruOrder`].
#[derive(Clone, Debug)]
pub struct LruOrderRule {
    params: LruOrderParams,
    /// Per page, the 1-based index of the window interval that last wrote it (0: never).
    last_write: Vec<u16>,
    written: PageBitmap,
    intervals: u16,
}

impl LruOrder {
    /// LRU-order pre-copy over `geometry`.
    pub fn with(geometry: Geometry, params: LruOrderParams) -> Self {
        let pages = usize::try_from(geometry.page_count.0).expect("page count fits memory");
        Iterative::new(
            geometry,
            LruOrderRule {
                params,
                last_write: vec![0; pages],
                written: PageBitmap::new(geometry.page_count),
                intervals: 0,
            },
        )
    }
}

impl LruOrderRule {
    fn record(&mut self, written: &PageBitmap) {
        self.intervals = self.intervals.saturating_add(1);
        for page in written.iter() {
            if let Some(last) = self.last_write.get_mut(page.index()) {
                *last = self.intervals;
            }
        }
        self.written.union_with(written);
    }
}

impl RoundRule for LruOrderRule {
    const NAME: &'static str = "lru-order";

    fn observe_history(&mut self, _before_start: Duration, written: &PageBitmap) {
        self.record(written);
    }

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        if let Some(reason) = self.params.limits.check(context) {
            return Choice::Stop(reason);
        }
        send.union_with(context.stale);
        if context.iteration.0 > 0 {
            return Choice::Send(RoundPlan::PRECOPY);
        }
        self.record(context.observation.dirty);
        Choice::Send(RoundPlan {
            tail: self.oldest_write_first(),
            ..RoundPlan::PRECOPY
        })
    }
}

impl LruOrderRule {
    /// The written pages ordered by last write, oldest first, ties ascending: a counting sort
    /// over the window's intervals (two passes over `written`, no comparisons), so the cost is
    /// that of walking the written set.
    fn oldest_write_first(&self) -> Vec<PageNumber> {
        // `starts[i]`: where the pages last written in interval `i` begin in the order.
        let mut starts = vec![0usize; usize::from(self.intervals) + 1];
        for page in self.written.iter() {
            starts[usize::from(self.last_write[page.index()])] += 1;
        }
        let mut next = 0;
        for start in &mut starts {
            let count = *start;
            *start = next;
            next += count;
        }
        let mut order = vec![PageNumber(0); next];
        // Ascending within an interval: `written` is walked in page order.
        for page in self.written.iter() {
            let slot = &mut starts[usize::from(self.last_write[page.index()])];
            order[*slot] = page;
            *slot += 1;
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::{Script, Writes, after, params};

    #[test]
    fn first_pass_sends_least_recently_written_pages_first() {
        // 6 pages. Window: {1 4}, {4 2}, {5}: last writes 1 -> 1, 2 -> 2, 4 -> 2, 5 -> 3;
        // 0 and 3 never written.
        // Round 0 order: 0 3 (never written), 1 (interval 1), 2 4 (interval 2), 5 (interval 3);
        // page 5 is written before the round sends anything (to_skip), so it is skipped; {3}
        // is written after. Round 1 (pre-copy): to_send {3 5} -> sends 3 5.
        let script = Script::new(6);
        let mut strategy = LruOrder::with(Script::geometry(6), params("min-pages=0"));
        script.history(&mut strategy, &[&[1, 4], &[4, 2], &[5]]);
        let rounds = [
            Writes {
                before: &[5],
                after: &[3],
            },
            after(&[]),
        ];
        let outcome = script.run(&mut strategy, &rounds);
        assert_eq!(outcome.sent, [vec![0, 3, 1, 2, 4], vec![3, 5]]);
        assert!(outcome.remaining().is_empty());
    }

    #[test]
    fn counting_order_equals_sorting_by_last_write_then_page() {
        // 300 pages, 7 window intervals writing scattered, overlapping sets.
        let geometry = Script::geometry(300);
        let mut rule = LruOrderRule {
            params: LruOrderParams::default(),
            last_write: vec![0; 300],
            written: PageBitmap::new(geometry.page_count),
            intervals: 0,
        };
        for interval in 1..=7u64 {
            let mut written = PageBitmap::new(geometry.page_count);
            for page in (0..300).filter(|p| (p * 7 + interval * 13) % (interval + 3) == 0) {
                written.insert(PageNumber(page));
            }
            rule.record(&written);
        }
        let mut expected: Vec<PageNumber> = rule.written.iter().collect();
        expected.sort_by_key(|page| (rule.last_write[page.index()], *page));
        let order = rule.oldest_write_first();
        assert!(order.len() > 100, "{}", order.len());
        assert_eq!(order, expected);
        // Not simply ascending: the interval decides first.
        assert!(order.windows(2).any(|pair| pair[0] > pair[1]));
    }
}
