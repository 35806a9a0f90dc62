//! Uniform random writes: every epoch writes a fixed number of distinct pages drawn uniformly
//! over the whole memory (no locality at all).

use pagewire_codec::{PageCount, PageNumber};

use super::{WritePattern, uniform_pages};
use crate::trace::rng::Rng;

/// Writes `pages_per_epoch` distinct uniformly random pages each epoch.
#[derive(Clone, Debug)]
pub struct Uniform {
    /// Pages of memory.
    pub page_count: PageCount,
    /// Distinct pages written per epoch.
    pub pages_per_epoch: u64,
}

impl WritePattern for Uniform {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn epoch_pages(&mut self, _epoch: u64, rng: &mut Rng, out: &mut Vec<PageNumber>) {
        uniform_pages(rng, 0, self.page_count.0, self.pages_per_epoch, out);
    }
}
