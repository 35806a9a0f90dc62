//! Time-series pre-copy (Hu, Lei, Wang, Yuan and Chen, "A time-series based precopy approach
//! for live migration of virtual machines", IEEE ICPADS 2011).
//!
//! Rule: as [`Precopy`](super::precopy), but a page dirtied in at least `k` (2) of the last
//! `n` (5) rounds' dirty logs is high-dirty: it is not sent in this round but held to the last
//! round (stop-and-copy), unless a later round finds it dirty again and no longer high-dirty.
//! A round's candidates are the pages dirtied in the previous round (`to_send`), minus `to_skip`
//! as in pre-copy. The paper's exact `k` and `n` were not available to us; 2 of 5 is our
//! default. Pre-copy's limits apply.

use super::Geometry;
use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, parse_value, unknown_param};
use super::window::DirtyWindow;
use crate::PageBitmap;

/// Time-series pre-copy: pages dirtied `k` of the last `n` rounds wait for the last round.
pub type TimeSeries = Iterative<TimeSeriesRule>;

/// Parameters of [`TimeSeries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSeriesParams {
    /// How many dirty marks in the window make a page high-dirty (`k`, default 2).
    pub k: u8,
    /// How many recent rounds the window covers (`n`, default 5).
    pub n: u8,
    /// When the live rounds end.
    pub limits: Limits,
}

impl Default for TimeSeriesParams {
    fn default() -> Self {
        TimeSeriesParams {
            k: 2,
            n: 5,
            limits: Limits::default(),
        }
    }
}

impl Params for TimeSeriesParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        match key {
            "k" => self.k = parse_value(key, value)?,
            "n" => self.n = parse_value(key, value)?,
            _ if self.limits.set(key, value)? => {}
            _ => return Err(unknown_param(TimeSeriesRule::NAME, key)),
        }
        Ok(())
    }
}

/// The rule of [`TimeSeries`].
#[derive(Clone, Debug)]
pub struct TimeSeriesRule {
    params: TimeSeriesParams,
    window: DirtyWindow,
}

impl TimeSeries {
    /// Time-series pre-copy over `geometry`.
    pub fn with(geometry: Geometry, params: TimeSeriesParams) -> Self {
        let window = DirtyWindow::new(geometry.page_count, params.n);
        Iterative::new(geometry, TimeSeriesRule { params, window })
    }
}

impl RoundRule for TimeSeriesRule {
    const NAME: &'static str = "time-series";

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        let dirty = context.observation.dirty;
        self.window.push(dirty);
        if let Some(reason) = self.params.limits.check(context) {
            return Choice::Stop(reason);
        }
        if context.iteration.0 == 0 {
            send.union_with(context.stale);
        } else {
            for page in dirty.iter() {
                if self.window.count(page) < self.params.k {
                    send.insert(page);
                }
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
    fn pages_dirty_k_of_n_rounds_are_held_to_the_last_round() {
        // 6 pages, k = 2, n = 3.
        // Round 0 sends 0..6; {1 2} written. Window {D0}: 1 -> 1, 2 -> 1.
        // Plan 1: to_send {1 2}, both counts 1 < 2 -> sends 1 2; {2 3} written.
        // Plan 2: window {D0 D1}: 2 -> 2 (held), 3 -> 1 -> sends 3; {2 4} written.
        // Plan 3: window {D0 D1 D2}: 2 -> 3 (held), 4 -> 1 -> sends 4; {5} written.
        // Plan 4: window {D1 D2 D3}: to_send {5}, count 1 -> sends 5; nothing written.
        // Plan 5: to_send {} but 2 is still stale (held) -> nothing to send: stop with {2}.
        let rounds = [after(&[1, 2]), after(&[2, 3]), after(&[2, 4]), after(&[5])];
        let mut strategy = TimeSeries::with(Script::geometry(6), params("k=2,n=3,min-pages=0"));
        let outcome = Script::new(6).run(&mut strategy, &rounds);
        assert_eq!(
            outcome.sent,
            [
                vec![0, 1, 2, 3, 4, 5],
                vec![1, 2],
                vec![3],
                vec![4],
                vec![5]
            ]
        );
        assert_eq!(outcome.remaining(), [2]);
        assert_eq!(reason(&outcome), StopReason::NothingToSend);
    }

    #[test]
    fn a_page_that_cools_down_is_sent_again_when_next_dirtied() {
        // 4 pages, k = 2, n = 2.
        // Round 0 sends 0..4; {1} written.      Plan 1: window {E D0}: 1 -> 1: sends 1.
        // Round 1: {0 1} written.               Plan 2: window {D0 D1}: 1 -> 2 held; sends 0.
        // Round 2: {2} written.                 Plan 3: window {D1 D2}: to_send {2}: sends 2.
        // Round 3: {1} written.                 Plan 4: window {D2 D3}: 1 -> 1: sends 1.
        // Plan 5: nothing stale -> stop, nothing remaining.
        let rounds = [after(&[1]), after(&[0, 1]), after(&[2]), after(&[1])];
        let mut strategy = TimeSeries::with(Script::geometry(4), params("k=2,n=2,min-pages=0"));
        let outcome = Script::new(4).run(&mut strategy, &rounds);
        assert_eq!(
            outcome.sent,
            [vec![0, 1, 2, 3], vec![1], vec![0], vec![2], vec![1]]
        );
        assert!(outcome.remaining().is_empty());
        assert_eq!(reason(&outcome), StopReason::FewPagesLeft);
    }
}
