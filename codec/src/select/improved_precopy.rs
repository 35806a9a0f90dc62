//! Improved pre-copy (Ma, Liu and Liu, "Live virtual machine migration based on improved
//! pre-copy approach", IEEE ICSESS 2010).
//!
//! Rule: as [`Precopy`](super::precopy), but a page dirtied in two consecutive rounds is marked
//! frequently updated and held back: it is not sent again in any live round and goes with the
//! stop-and-copy. The live rounds are capped at 5 (`max-rounds`); the other limits are
//! pre-copy's. Our choices where the paper is loose: the mark is permanent once set, and the
//! "consecutive rounds" are the dirty logs harvested at two successive sync points (the first
//! compared pair is the log before round 0, usually empty, and round 0's).

use super::Geometry;
use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, unknown_param};
use crate::PageBitmap;

/// Improved pre-copy: frequently updated pages wait for stop-and-copy.
pub type ImprovedPrecopy = Iterative<ImprovedPrecopyRule>;

/// Parameters of [`ImprovedPrecopy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImprovedPrecopyParams {
    /// When the live rounds end (at most 5 rounds by default).
    pub limits: Limits,
}

impl Default for ImprovedPrecopyParams {
    fn default() -> Self {
        ImprovedPrecopyParams {
            limits: Limits {
                max_rounds: 5,
                ..Limits::default()
            },
        }
    }
}

impl Params for ImprovedPrecopyParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        if self.limits.set(key, value)? {
            Ok(())
        } else {
            Err(unknown_param(ImprovedPrecopyRule::NAME, key))
        }
    }
}

/// The rule of [`ImprovedPrecopy`].
#[derive(Clone, Debug)]
pub struct ImprovedPrecopyRule {
    params: ImprovedPrecopyParams,
    previous: PageBitmap,
    held: PageBitmap,
}

impl ImprovedPrecopy {
    /// Improved pre-copy over `geometry`.
    pub fn with(geometry: Geometry, params: ImprovedPrecopyParams) -> Self {
        Iterative::new(
            geometry,
            ImprovedPrecopyRule {
                params,
                previous: PageBitmap::new(geometry.page_count),
                held: PageBitmap::new(geometry.page_count),
            },
        )
    }
}

impl RoundRule for ImprovedPrecopyRule {
    const NAME: &'static str = "improved-precopy";

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        let dirty = context.observation.dirty;
        if dirty.page_count() == self.previous.page_count() {
            self.previous.intersect_with(dirty);
            self.held.union_with(&self.previous);
            self.previous.clear();
            self.previous.union_with(dirty);
        }
        if let Some(reason) = self.params.limits.check(context) {
            return Choice::Stop(reason);
        }
        send.union_with(context.stale);
        send.subtract(&self.held);
        Choice::Send(RoundPlan::PRECOPY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::StopReason;
    use crate::select::script::{Script, after, params, reason};

    #[test]
    fn pages_dirtied_in_consecutive_rounds_wait_for_stop_and_copy() {
        // 8 pages, max 5 rounds.
        // Round 0 sends 0..8; {1 2} written after. D0 = {1 2}.
        // Plan 1: D0 & D-1 = {} -> held {}. Sends 1 2; {2 3} written. D1 = {2 3}.
        // Plan 2: D1 & D0 = {2} -> held {2}. Stale {2 3} -> sends 3; {2 4} written. D2 = {2 4}.
        // Plan 3: D2 & D1 = {2}. Stale {2 4} -> sends 4; {4} written. D3 = {4}.
        // Plan 4: D3 & D2 = {4} -> held {2 4} = stale -> nothing to send: stop, remaining {2 4}.
        let rounds = [after(&[1, 2]), after(&[2, 3]), after(&[2, 4]), after(&[4])];
        let mut strategy = ImprovedPrecopy::with(Script::geometry(8), params("min-pages=0"));
        let outcome = Script::new(8).run(&mut strategy, &rounds);
        assert_eq!(
            outcome.sent,
            [vec![0, 1, 2, 3, 4, 5, 6, 7], vec![1, 2], vec![3], vec![4]]
        );
        assert_eq!(outcome.remaining(), [2, 4]);
        assert_eq!(reason(&outcome), StopReason::NothingToSend);
    }

    #[test]
    fn improved_precopy_stops_after_five_rounds() {
        // Pages 0..4 alternate (even rounds dirty {0 1}, odd rounds {2 3}), so no page is dirty
        // in two consecutive rounds and nothing is held; the 5-round cap ends it at plan 5.
        let (even, odd) = (after(&[0, 1]), after(&[2, 3]));
        let mut strategy = ImprovedPrecopy::with(Script::geometry(4), params("min-pages=0"));
        let outcome = Script::new(4).run(&mut strategy, &[even, odd, even, odd, even, odd]);
        assert_eq!(outcome.sent.len(), 5);
        assert_eq!(outcome.sent[4], [2, 3]);
        assert_eq!(outcome.remaining(), [0, 1]);
        assert_eq!(reason(&outcome), StopReason::RoundLimit);
    }
}
