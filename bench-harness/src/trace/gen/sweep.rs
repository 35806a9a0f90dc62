//! A sequential sweep: a streaming writer that rewrites a region page after page, wrapping
//! around; the worst case for pre-copy, since every page is rewritten once per lap. Its pages
//! hold media-like data, replaced whole on every write.

use pagewire_codec::PageNumber;

use super::WritePattern;
use crate::trace::content::ContentClass;
use crate::trace::rng::Rng;

/// Writes `pages_per_epoch` consecutive pages of a region each epoch, continuing where the
/// previous epoch stopped.
#[derive(Clone, Debug)]
pub struct Sweep {
    region_start: u64,
    region_pages: u64,
    pages_per_epoch: u64,
    cursor: u64,
}

impl Sweep {
    /// A sweep over `region_pages` pages from `region_start` (at least one page).
    pub fn new(region_start: PageNumber, region_pages: u64, pages_per_epoch: u64) -> Self {
        Sweep {
            region_start: region_start.0,
            region_pages: region_pages.max(1),
            pages_per_epoch,
            cursor: 0,
        }
    }
}

impl WritePattern for Sweep {
    fn name(&self) -> &'static str {
        "sweep"
    }

    fn epoch_pages(&mut self, _epoch: u64, _rng: &mut Rng, out: &mut Vec<PageNumber>) {
        for _ in 0..self.pages_per_epoch.min(self.region_pages) {
            out.push(PageNumber(self.region_start + self.cursor));
            self.cursor = (self.cursor + 1) % self.region_pages;
        }
    }

    fn class_of(&self, page: PageNumber) -> Option<ContentClass> {
        (self.region_start..self.region_start + self.region_pages)
            .contains(&page.0)
            .then_some(ContentClass::Media)
    }
}
