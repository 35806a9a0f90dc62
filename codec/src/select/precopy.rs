//! Pre-copy (Clark et al., "Live Migration of Virtual Machines", NSDI 2005; Xen's
//! `xc_domain_save`; KVM/QEMU).
//!
//! Rule: round 0 sends every page. Round `i` sends the pages dirtied during round `i - 1`
//! (`to_send`), skipping those dirtied again since round `i` began (`to_skip`: they will be in
//! the next dirty log anyway), so a round sends `to_send & !to_skip`, in ascending order. The
//! live rounds end (see [`Limits`]) when at most `min-pages` (50) pages remain, or the expected
//! downtime is at most `downtime-ms` (300), or after `max-rounds` (29) rounds, or once more than
//! `max-factor` (3) times the memory's pages have been sent; then the guest is suspended and the
//! remaining pages are sent (stop-and-copy).

use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, unknown_param};
use crate::PageBitmap;

/// Pre-copy with Xen's and QEMU's stop conditions.
pub type Precopy = Iterative<PrecopyRule>;

/// The rule of [`Precopy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrecopyRule {
    /// When the live rounds end.
    pub limits: Limits,
}

impl Params for PrecopyRule {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        if self.limits.set(key, value)? {
            Ok(())
        } else {
            Err(unknown_param(Self::NAME, key))
        }
    }
}

impl RoundRule for PrecopyRule {
    const NAME: &'static str = "precopy";

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        if let Some(reason) = self.limits.check(context) {
            return Choice::Stop(reason);
        }
        // Round 0: every page is stale. Later: the stale pages are exactly the pages dirtied in
        // the last round (every page of that round was sent or skipped, and a skipped page is
        // in the new dirty log).
        send.union_with(context.stale);
        Choice::Send(RoundPlan::PRECOPY)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::select::script::{Script, Writes, after, before};
    use crate::select::{Decision, LinkEstimate, StopReason};

    fn precopy(pages: u64, params: &str) -> Precopy {
        let mut rule = PrecopyRule::default();
        rule.set("min-pages", "0").unwrap();
        for item in params.split(',').filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').unwrap();
            rule.set(key, value).unwrap();
        }
        Precopy::new(Script::geometry(pages), rule)
    }

    #[test]
    fn precopy_sends_to_send_minus_to_skip_until_nothing_remains() {
        // 8 pages.
        // Round 0: to_send = all; {1, 2} written before sending (to_skip) -> sends 0 3 4 5 6 7;
        //          {3} written after. Dirty log D0 = {1, 2, 3}.
        // Round 1: to_send = {1, 2, 3}; {2} written before -> sends 1 3. D1 = {2}.
        // Round 2: to_send = {2}; nothing written -> sends 2. D2 = {}.
        // Plan 3: 0 pages remain <= min-pages 0 -> stop, nothing remaining.
        let rounds = [
            Writes {
                before: &[1, 2],
                after: &[3],
            },
            before(&[2]),
        ];
        let outcome = Script::new(8).run(&mut precopy(8, ""), &rounds);
        assert_eq!(outcome.sent, [vec![0, 3, 4, 5, 6, 7], vec![1, 3], vec![2]]);
        assert!(outcome.remaining().is_empty());
        assert!(matches!(
            outcome.end(),
            Decision::StopAndCopy(stop) if stop.reason == StopReason::FewPagesLeft
        ));
    }

    #[test]
    fn precopy_stops_at_the_round_limit_with_the_hot_page_remaining() {
        // max-rounds 3; page 5 is written before every round sends.
        // Round 0 sends all but 5; rounds 1 and 2 have to_send = {5} = to_skip, send nothing.
        // Plan 3: round limit; remaining {5}.
        let hot = before(&[5]);
        let outcome = Script::new(8).run(&mut precopy(8, "max-rounds=3"), &[hot, hot, hot, hot]);
        assert_eq!(outcome.sent, [vec![0, 1, 2, 3, 4, 6, 7], vec![], vec![]]);
        assert_eq!(outcome.remaining(), [5]);
        assert!(matches!(
            outcome.end(),
            Decision::StopAndCopy(stop) if stop.reason == StopReason::RoundLimit
        ));
    }

    #[test]
    fn precopy_stops_once_it_has_sent_more_than_k_times_memory() {
        // 4 pages, max-factor 1, every page written after each round.
        // Round 0 sends 4 (total 4, not > 4); round 1 sends 4 (total 8 > 4).
        // Plan 2: data limit; remaining = all 4.
        let all = after(&[0, 1, 2, 3]);
        let outcome = Script::new(4).run(&mut precopy(4, "max-factor=1"), &[all, all, all]);
        assert_eq!(outcome.sent.len(), 2);
        assert_eq!(outcome.remaining(), [0, 1, 2, 3]);
        assert!(matches!(
            outcome.end(),
            Decision::StopAndCopy(stop) if stop.reason == StopReason::DataLimit
        ));
    }

    #[test]
    fn precopy_stops_when_expected_downtime_meets_the_target() {
        // Link 40 960 B/s (10 pages/s), RTT 0, target 300 ms, 4096 bytes per page.
        // Round 0 sends 8; {0 1 2 3} written after. Plan 1: 4 pages = 400 ms > 300 -> round 1
        // sends 0 1 2 3; {0 1} written after. Plan 2: 2 pages = 200 ms <= 300 -> stop.
        let mut script = Script::new(8);
        script.link = LinkEstimate {
            bytes_per_second: 40_960,
            rtt: Duration::ZERO,
        };
        let rounds = [after(&[0, 1, 2, 3]), after(&[0, 1])];
        let outcome = script.run(&mut precopy(8, ""), &rounds);
        assert_eq!(outcome.sent[1], [0, 1, 2, 3]);
        assert_eq!(outcome.remaining(), [0, 1]);
        assert!(matches!(
            outcome.end(),
            Decision::StopAndCopy(stop) if stop.reason == StopReason::DowntimeTarget
        ));
    }

    #[test]
    fn precopy_defaults_are_xens_and_qemus() {
        let limits = PrecopyRule::default().limits;
        assert_eq!(
            (limits.max_rounds, limits.max_factor, limits.min_pages),
            (29, 3, 50)
        );
        assert_eq!(limits.downtime_target, Duration::from_millis(300));
    }
}
