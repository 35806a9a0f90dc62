//! Hybrid pre-copy/post-copy (the hybrid scheme Hines and Gopalan discuss in their VEE 2009
//! post-copy paper; QEMU's `postcopy-ram` switch after pre-copy rounds works the same way).
//!
//! Rule: run pre-copy rounds (with `to_skip`) for `rounds` (1) rounds, or fewer if pre-copy's
//! limits would stop earlier; then switch to post-copy: suspend, move the device state, resume
//! at the destination, push the pages still stale in the background and fetch faulted ones on
//! demand (see [`BackgroundPush`](super::postcopy::BackgroundPush)). One round — a full pass —
//! is our default: it moves the cold pages live and leaves only the working set to post-copy.

use super::engine::{Choice, Limits, PostCopyPlan, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, parse_value, unknown_param};
use crate::PageBitmap;

/// Hybrid: a few pre-copy rounds, then post-copy.
pub type Hybrid = super::engine::Iterative<HybridRule>;

/// The rule of [`Hybrid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HybridRule {
    /// How many pre-copy rounds run before the switch (`rounds`, default 1).
    pub rounds: u32,
    /// Pre-copy limits that switch earlier.
    pub limits: Limits,
}

impl Default for HybridRule {
    fn default() -> Self {
        HybridRule {
            rounds: 1,
            limits: Limits::default(),
        }
    }
}

impl Params for HybridRule {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        match key {
            "rounds" => self.rounds = parse_value(key, value)?,
            _ if self.limits.set(key, value)? => {}
            _ => return Err(unknown_param(Self::NAME, key)),
        }
        Ok(())
    }
}

impl RoundRule for HybridRule {
    const NAME: &'static str = "hybrid";

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        if context.iteration.0 >= self.rounds {
            return Choice::PostCopy(PostCopyPlan::pre_paging(super::StopReason::RoundLimit));
        }
        if let Some(reason) = self.limits.check(context) {
            return Choice::PostCopy(PostCopyPlan::pre_paging(reason));
        }
        send.union_with(context.stale);
        Choice::Send(RoundPlan::PRECOPY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::{Script, after, pages, params};
    use crate::select::{Decision, FaultAction, StopReason, Strategy};
    use crate::{PageCount, PageNumber};

    #[test]
    fn hybrid_switches_to_postcopy_after_its_precopy_rounds() {
        // 8 pages, 2 rounds. Round 0 sends 0..8; {1 2 6} written. Round 1 sends 1 2 6; {2 5}
        // written. Plan 2: switch: missing {2 5}. The final harvest adds {7}. A fault on 5
        // sends it now; the push then goes 7 (after 5), wraps to 2.
        let mut strategy = Hybrid::new(Script::geometry(8), params("rounds=2,min-pages=0"));
        let outcome = Script::new(8).run(&mut strategy, &[after(&[1, 2, 6]), after(&[2, 5])]);
        assert_eq!(outcome.sent[1], [1, 2, 6]);
        let Decision::PostCopy(post) = outcome.end() else {
            panic!("expected post-copy");
        };
        assert_eq!(post.reason, StopReason::RoundLimit);
        assert_eq!(outcome.remaining(), [2, 5]);
        strategy.on_suspend(&Script::bitmap(8, &[7]));
        assert_eq!(strategy.on_fault(PageNumber(5)), FaultAction::SendNow);
        let mut out = Vec::new();
        let empty = crate::PageBitmap::new(PageCount(8));
        while strategy.next_batch(&empty, 1, &mut out) > 0 {}
        assert_eq!(out, pages(&[7, 2]));
        assert!(strategy.stale().is_empty());
    }
}
