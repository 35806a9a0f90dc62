//! The history-majority paper's set-up: tiny VMs (10, 15 or 20 pages) whose every epoch is a
//! random dirty pattern (each page dirtied independently with a given probability); the
//! paper uses 20 such patterns, i.e. 20 epochs.

use pagewire_codec::{PageCount, PageNumber};

use super::WritePattern;
use crate::trace::rng::Rng;

/// Each epoch dirties each page with probability `dirty_probability`.
#[derive(Clone, Debug)]
pub struct HistoryMajority {
    /// Pages of memory.
    pub page_count: PageCount,
    /// Probability that a page is dirtied in an epoch.
    pub dirty_probability: f64,
}

impl WritePattern for HistoryMajority {
    fn name(&self) -> &'static str {
        "history-majority"
    }

    fn epoch_pages(&mut self, _epoch: u64, rng: &mut Rng, out: &mut Vec<PageNumber>) {
        for page in 0..self.page_count.0 {
            if rng.chance(self.dirty_probability) {
                out.push(PageNumber(page));
            }
        }
    }
}
