//! History-majority pre-copy (Sharma and Chawla, "A three phase optimization method for
//! precopy based VM live migration", SpringerPlus 5:1022, 2016: its second phase classifies
//! pages as frequently or non-frequently updated from their dirty history).
//!
//! Rule: round 0 sends every page. Round `i` sends a page only if it was dirtied in round
//! `i - 1` (`to_send`), has not been dirtied again since round `i` began (not in `to_skip`), and
//! was dirtied in fewer than half of the last `k` (3) rounds (`2 * count < k`, the window
//! including round `i - 1`). Any other page the destination lacks waits for stop-and-copy,
//! unless a later round finds it dirty and no longer in the majority. Pre-copy's limits apply.
//!
//! With `k = 3` the rule is a function of four booleans — `to_send`, `to_skip`, dirtied in
//! round `i - 2`, dirtied in round `i - 3` — and is true on one row of the sixteen:
//! `to_send & !to_skip & !d2 & !d3`. We could not retrieve the paper's own table; the test
//! `history_majority_matches_the_sixteen_row_table` derives the sixteen rows from the rule
//! above and checks the strategy against every one.

use super::Geometry;
use super::engine::{Choice, Iterative, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, parse_value, unknown_param};
use super::window::DirtyWindow;
use crate::PageBitmap;

/// History-majority pre-copy.
pub type HistoryMajority = Iterative<HistoryMajorityRule>;

/// Parameters of [`HistoryMajority`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryMajorityParams {
    /// How many recent rounds the history covers (`k`, default 3).
    pub k: u8,
    /// When the live rounds end.
    pub limits: Limits,
}

impl Default for HistoryMajorityParams {
    fn default() -> Self {
        HistoryMajorityParams {
            k: 3,
            limits: Limits::default(),
        }
    }
}

impl Params for HistoryMajorityParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        match key {
            "k" => self.k = parse_value(key, value)?,
            _ if self.limits.set(key, value)? => {}
            _ => return Err(unknown_param(HistoryMajorityRule::NAME, key)),
        }
        Ok(())
    }
}

/// The rule of [`HistoryMajority`].
#[derive(Clone, Debug)]
pub struct HistoryMajorityRule {
    params: HistoryMajorityParams,
    window: DirtyWindow,
}

impl HistoryMajority {
    /// History-majority pre-copy over `geometry`.
    pub fn with(geometry: Geometry, params: HistoryMajorityParams) -> Self {
        let window = DirtyWindow::new(geometry.page_count, params.k);
        Iterative::new(geometry, HistoryMajorityRule { params, window })
    }
}

impl RoundRule for HistoryMajorityRule {
    const NAME: &'static str = "history-majority";

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        let dirty = context.observation.dirty;
        self.window.push(dirty);
        if let Some(reason) = self.params.limits.check(context) {
            return Choice::Stop(reason);
        }
        if context.iteration.0 == 0 {
            send.union_with(context.stale);
        } else {
            let k = self.window.len();
            for page in dirty.iter() {
                if 2 * usize::from(self.window.count(page)) < k {
                    send.insert(page);
                }
            }
        }
        // to_skip is applied page by page as the round runs.
        Choice::Send(RoundPlan::PRECOPY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::{Script, Writes, after, params};

    #[test]
    fn history_majority_matches_the_sixteen_row_table() {
        // Page r (0..16) encodes row r: bit 3 = to_send (dirtied in round 2), bit 2 = to_skip
        // (dirtied in round 3 before it sends), bit 1 = d2 (dirtied in round 1), bit 0 = d3
        // (dirtied in round 0). Page 16 is always dirty so that rounds never run empty.
        // Round 3 sends page r iff to_send & !to_skip & count < 1.5 with count = to_send + d2 +
        // d3, i.e. iff r = 0b1000:
        //   to_send to_skip d2 d3 | send      to_send to_skip d2 d3 | send
        //      0       0    0  0  |  0           1       0    0  0  |  1
        //      0       0    0  1  |  0           1       0    0  1  |  0
        //      0       0    1  0  |  0           1       0    1  0  |  0
        //      0       0    1  1  |  0           1       0    1  1  |  0
        //      0       1    0  0  |  0           1       1    0  0  |  0
        //      0       1    0  1  |  0           1       1    0  1  |  0
        //      0       1    1  0  |  0           1       1    1  0  |  0
        //      0       1    1  1  |  0           1       1    1  1  |  0
        let rows: Vec<u64> = (0..16).collect();
        let with_bit = |bit: u64| -> Vec<u64> {
            let mut pages: Vec<u64> = rows.iter().copied().filter(|r| r & bit != 0).collect();
            pages.push(16);
            pages
        };
        let (d3, d2, to_send, to_skip) = (with_bit(1), with_bit(2), with_bit(8), with_bit(4));
        let rounds = [
            after(&d3),
            after(&d2),
            after(&to_send),
            Writes {
                before: &to_skip,
                after: &[],
            },
        ];
        let mut strategy = HistoryMajority::with(Script::geometry(17), params("min-pages=0"));
        let outcome = Script::new(17).run(&mut strategy, &rounds);
        let table: Vec<bool> = rows.iter().map(|r| outcome.sent[3].contains(r)).collect();
        let expected: Vec<bool> = rows.iter().map(|r| *r == 0b1000).collect();
        assert_eq!(table, expected);
    }

    #[test]
    fn history_majority_holds_a_page_dirty_in_most_recent_rounds() {
        // 4 pages, k = 3. Page 1 dirty in rounds 0 and 1 (E: the empty log before round 0).
        // Plan 1: window {E D0}: 1 -> 1, 2*1 < 3 -> sends 1.
        // Plan 2: window {E D0 D1}: 1 -> 2 -> held; nothing else -> nothing to send: stop.
        let rounds = [after(&[1]), after(&[1])];
        let mut strategy = HistoryMajority::with(Script::geometry(4), params("min-pages=0"));
        let outcome = Script::new(4).run(&mut strategy, &rounds);
        assert_eq!(outcome.sent, [vec![0, 1, 2, 3], vec![1]]);
        assert_eq!(outcome.remaining(), [1]);
    }
}
