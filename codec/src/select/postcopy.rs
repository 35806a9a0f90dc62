//! Post-copy (Hines and Gopalan, "Post-copy based live virtual machine migration using adaptive
//! pre-paging and dynamic self-ballooning", VEE 2009).
//!
//! Rule: no live round. The source suspends the guest at once, sends the CPU and device state,
//! and the guest resumes at the destination. The source then pushes every page in the
//! background (active push), while a page the destination touches before it arrives faults and
//! is fetched on demand, costing the guest a round trip of stall per fault.
//!
//! Push order ("pre-paging"): ascending from the start of memory; after a fault on page `p`
//! the push continues from `p + 1`, wrapping around at the end, because the pages after a
//! faulting page are likely the next to be touched. Hines and Gopalan's "bubbling" grows the
//! pivot in both directions; we only bubble forwards (one cursor, no per-page state), and
//! document that choice. Each page is sent exactly once.

use super::engine::{Choice, Iterative, PostCopyPlan, RoundContext, RoundRule};
use super::registry::{Params, SpecError, unknown_param};
use super::{FaultAction, StopReason};
use crate::{PageBitmap, PageNumber};

/// Post-copy: suspend at once, push pages in the background, fetch on fault.
pub type Postcopy = Iterative<PostcopyRule>;

/// The rule of [`Postcopy`]: switch to post-copy before any live round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostcopyRule;

impl Params for PostcopyRule {
    fn set(&mut self, key: &str, _value: &str) -> Result<(), SpecError> {
        Err(unknown_param(Self::NAME, key))
    }
}

impl RoundRule for PostcopyRule {
    const NAME: &'static str = "postcopy";

    fn choose(&mut self, _context: &RoundContext<'_>, _send: &mut PageBitmap) -> Choice {
        Choice::PostCopy(PostCopyPlan::pre_paging(StopReason::NoLiveRounds))
    }
}

/// The background push of post-copy: every missing page once, in pre-paging order, after the
/// pages of an optional first order (see [`BackgroundPush::push_first`]).
#[derive(Clone, Debug)]
pub struct BackgroundPush {
    missing: PageBitmap,
    cursor: u64,
    /// Pages to push before the ascending scan, in this order.
    first: Vec<PageNumber>,
    first_next: usize,
    pub(crate) reason: StopReason,
}

impl BackgroundPush {
    /// A push of the pages of `missing`, after live rounds that ended for `reason`.
    pub fn new(missing: PageBitmap, reason: StopReason) -> Self {
        BackgroundPush {
            missing,
            cursor: 0,
            first: Vec::new(),
            first_next: 0,
            reason,
        }
    }

    /// Pushes the pages of `order` first, in that order (those still missing when their turn
    /// comes), then the rest in pre-paging order.
    pub fn push_first(&mut self, order: Vec<PageNumber>) {
        self.first = order;
        self.first_next = 0;
    }

    /// Pages the destination still lacks.
    pub fn missing(&self) -> &PageBitmap {
        &self.missing
    }

    /// Adds pages the destination lacks (those written just before the suspension).
    pub fn add_missing(&mut self, pages: &PageBitmap) {
        self.missing.union_with(pages);
    }

    /// Appends up to `max` pages to push next.
    pub fn next_batch(&mut self, max: usize, out: &mut Vec<PageNumber>) {
        let mut added = 0;
        while added < max {
            let Some(page) = self.first.get(self.first_next).copied() else {
                break;
            };
            self.first_next += 1;
            if self.missing.remove(page) {
                out.push(page);
                added += 1;
            }
        }
        for _ in added..max {
            let found = self
                .missing
                .first_at_or_after(PageNumber(self.cursor))
                .or_else(|| self.missing.first_at_or_after(PageNumber(0)));
            let Some(page) = found else {
                return;
            };
            self.missing.remove(page);
            self.cursor = page.0 + 1;
            out.push(page);
        }
    }

    /// The destination faulted on `page`: send it now if it is still missing, and move the
    /// push to the pages after it.
    pub fn on_fault(&mut self, page: PageNumber) -> FaultAction {
        if self.missing.remove(page) {
            self.cursor = page.0.saturating_add(1);
            FaultAction::SendNow
        } else {
            FaultAction::AlreadySent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::{Script, pages};
    use crate::select::{Decision, Strategy};

    #[test]
    fn postcopy_suspends_at_once_and_pushes_every_page_once() {
        let mut strategy = Postcopy::new(Script::geometry(8), PostcopyRule);
        let decision = Script::new(8).plan_first(&mut strategy);
        let Decision::PostCopy(post) = decision else {
            panic!("expected post-copy, got {decision:?}");
        };
        assert_eq!(post.missing.count(), 8);
        assert_eq!(post.reason, StopReason::NoLiveRounds);
        let empty = PageBitmap::new(post.missing.page_count());
        let mut out = Vec::new();
        assert_eq!(strategy.next_batch(&empty, 3, &mut out), 3);
        assert_eq!(out, pages(&[0, 1, 2]));
    }

    #[test]
    fn fault_moves_the_push_after_the_faulting_page() {
        // Missing {0..8}. Push 0, 1. Fault on 5 -> send 5 now, push continues 6, 7, then wraps
        // to 2, 3, 4. A fault on an already pushed page (1) is answered "already sent".
        let mut strategy = Postcopy::new(Script::geometry(8), PostcopyRule);
        Script::new(8).plan_first(&mut strategy);
        let empty = PageBitmap::new(crate::PageCount(8));
        let mut out = Vec::new();
        strategy.next_batch(&empty, 2, &mut out);
        assert_eq!(strategy.on_fault(PageNumber(5)), FaultAction::SendNow);
        assert_eq!(strategy.on_fault(PageNumber(5)), FaultAction::AlreadySent);
        assert_eq!(strategy.on_fault(PageNumber(1)), FaultAction::AlreadySent);
        strategy.next_batch(&empty, 100, &mut out);
        assert_eq!(out, pages(&[0, 1, 6, 7, 2, 3, 4]));
        assert_eq!(strategy.next_batch(&empty, 100, &mut out), 0);
    }

    #[test]
    fn a_first_order_is_pushed_before_the_ascending_scan() {
        // Missing {0..6}, first order [4, 1, 5]. A fault on 5 before the push starts sends it
        // now (the push moves on to 6). The push then goes 4, 1 (5 is no longer missing),
        // then the ascending scan from 6: 6, wrapping to 0, 2, 3.
        let mut push = BackgroundPush::new(
            Script::bitmap(7, &[0, 1, 2, 3, 4, 5, 6]),
            StopReason::Stalled,
        );
        push.push_first(pages(&[4, 1, 5]));
        assert_eq!(push.on_fault(PageNumber(5)), FaultAction::SendNow);
        let mut out = Vec::new();
        push.next_batch(2, &mut out);
        assert_eq!(out, pages(&[4, 1]));
        push.next_batch(100, &mut out);
        assert_eq!(out, pages(&[4, 1, 6, 0, 2, 3]));
        assert!(push.missing().is_empty());
    }

    #[test]
    fn pages_reported_at_suspension_are_pushed_once() {
        // Every page is missing already; the final harvest {3} adds nothing: 0..4 once each.
        let mut strategy = Postcopy::new(Script::geometry(4), PostcopyRule);
        Script::new(4).plan_first(&mut strategy);
        strategy.on_suspend(&Script::bitmap(4, &[3]));
        let empty = PageBitmap::new(crate::PageCount(4));
        let mut out = Vec::new();
        strategy.next_batch(&empty, 100, &mut out);
        assert_eq!(out, pages(&[0, 1, 2, 3]));
    }
}
