//! Stop-and-copy: the non-live baseline.
//!
//! Rule: suspend the guest at once and send every page while it is stopped; downtime is the
//! whole memory's transfer time. Every live strategy is measured against it.

use super::StopReason;
use super::engine::{Choice, Iterative, RoundContext, RoundRule};
use super::registry::{Params, SpecError, unknown_param};
use crate::PageBitmap;

/// Stop-and-copy: no live round.
pub type StopAndCopy = Iterative<StopAndCopyRule>;

/// The rule of [`StopAndCopy`]: stop before any live round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopAndCopyRule;

impl Params for StopAndCopyRule {
    fn set(&mut self, key: &str, _value: &str) -> Result<(), SpecError> {
        Err(unknown_param(Self::NAME, key))
    }
}

impl RoundRule for StopAndCopyRule {
    const NAME: &'static str = "stop-and-copy";

    fn choose(&mut self, _context: &RoundContext<'_>, _send: &mut PageBitmap) -> Choice {
        Choice::Stop(StopReason::NoLiveRounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::{Script, before};
    use crate::select::{Decision, Strategy};

    #[test]
    fn stop_and_copy_sends_everything_while_suspended() {
        // No live round: the first plan stops with all 5 pages remaining.
        let mut strategy = StopAndCopy::new(Script::geometry(5), StopAndCopyRule);
        let outcome = Script::new(5).run(&mut strategy, &[before(&[1])]);
        assert!(outcome.sent.is_empty());
        assert_eq!(outcome.remaining(), [0, 1, 2, 3, 4]);
        let Decision::StopAndCopy(stop) = outcome.end() else {
            panic!("expected stop-and-copy");
        };
        assert_eq!(stop.reason, StopReason::NoLiveRounds);
        let mut out = Vec::new();
        assert_eq!(strategy.next_batch(&stop.remaining, 10, &mut out), 0);
    }
}
