//! A read-mostly idle VM: a handful of kernel pages (timers, statistics) written every epoch
//! with counter updates, and a trickle of random background writes.

use pagewire_codec::{PageCount, PageNumber};

use super::{WritePattern, uniform_pages};
use crate::trace::content::ContentClass;
use crate::trace::rng::{Rng, hash_of};

/// `hot_pages` counter pages written every epoch, plus on average `background_per_epoch`
/// random pages.
#[derive(Clone, Debug)]
pub struct Idle {
    page_count: u64,
    hot: Vec<u64>,
    background_per_epoch: f64,
}

impl Idle {
    /// An idle pattern over `page_count` pages; the hot pages' places follow from `seed`.
    pub fn new(
        page_count: PageCount,
        hot_pages: u64,
        background_per_epoch: f64,
        seed: u64,
    ) -> Self {
        let n = page_count.0.max(1);
        let mut hot: Vec<u64> = (0..hot_pages.min(n))
            .map(|i| hash_of(&[seed, i, 0x1d1e]) % n)
            .collect();
        hot.sort_unstable();
        hot.dedup();
        Idle {
            page_count: n,
            hot,
            background_per_epoch: background_per_epoch.max(0.0),
        }
    }
}

impl WritePattern for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }

    fn epoch_pages(&mut self, _epoch: u64, rng: &mut Rng, out: &mut Vec<PageNumber>) {
        out.extend(self.hot.iter().map(|&p| PageNumber(p)));
        let whole = self.background_per_epoch.floor();
        let count = whole as u64 + u64::from(rng.chance(self.background_per_epoch - whole));
        uniform_pages(rng, 0, self.page_count, count, out);
    }

    fn class_of(&self, page: PageNumber) -> Option<ContentClass> {
        self.hot
            .binary_search(&page.0)
            .is_ok()
            .then_some(ContentClass::Counters)
    }
}
