//! Stable trace page numbers for the target's virtual pages while mappings come and go.
//!
//! A virtual page gets a trace page number the first time it is seen present, and keeps it while
//! the writable mapping holding it lives with the same backing. When its mapping disappears
//! (unmapped, made read-only, or replaced by a mapping with another backing) the number is
//! retired: the trace simply never writes that page again. A region mapped later at the same
//! address gets new numbers. So the trace's page count is the number of distinct pages the
//! process ever had present in writable private memory while it was recorded, not its virtual
//! size (reserved but untouched address space costs nothing).
//!
//! Limitation: an unmap followed by a map of the same backing at the same address between two
//! scans cannot be seen and keeps the old numbers.

use std::collections::BTreeMap;

use pagewire_codec::PageNumber;

use super::maps::{Backing, VirtualPage, WritableRange};

/// 64-bit content hash of a page (xxh3-64).
pub type PageDigest = u64;

/// What the recorder knows about one live virtual page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TrackedPage {
    number: PageNumber,
    backing: Backing,
    digest: PageDigest,
}

/// The outcome of looking at one page's current content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Same content as last scan, for the page with this number.
    Unchanged(PageNumber),
    /// New content for the page with this number: record it.
    Changed(PageNumber),
    /// A page seen for the first time; it got this number. Its previous content in the trace is
    /// zeros, so it is recorded as written unless it is still all zeros.
    New(PageNumber),
}

/// The recorded memory would grow past the `--max-memory` cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the recorded memory reached its cap of {limit} pages")]
pub struct PageLimitReached {
    /// The cap, in pages.
    pub limit: u64,
}

/// Virtual page → trace page number map with the last seen content digest of each page.
#[derive(Debug, Clone)]
pub struct Layout {
    pages: BTreeMap<VirtualPage, TrackedPage>,
    next_number: u64,
    page_limit: u64,
    retired: u64,
}

impl Layout {
    /// An empty layout that hands out at most `page_limit` page numbers.
    pub fn new(page_limit: u64) -> Self {
        Self {
            pages: BTreeMap::new(),
            next_number: 0,
            page_limit,
            retired: 0,
        }
    }

    /// Page numbers handed out so far: the trace's page count.
    pub fn page_count(&self) -> u64 {
        self.next_number
    }

    /// Pages currently tracked (live).
    pub fn live_pages(&self) -> usize {
        self.pages.len()
    }

    /// Pages whose mapping went away since recording started.
    pub fn retired_pages(&self) -> u64 {
        self.retired
    }

    /// The trace page number of a live virtual page, if it has one.
    pub fn number_of(&self, page: VirtualPage) -> Option<PageNumber> {
        self.pages.get(&page).map(|tracked| tracked.number)
    }

    /// The last digest seen for a live page.
    pub fn digest_of(&self, page: VirtualPage) -> Option<PageDigest> {
        self.pages.get(&page).map(|tracked| tracked.digest)
    }

    /// The live pages in `start..end` with their last digests, in address order.
    pub fn tracked_in(
        &self,
        start: VirtualPage,
        end: VirtualPage,
    ) -> impl Iterator<Item = (VirtualPage, PageDigest)> + '_ {
        self.pages
            .range(start..end)
            .map(|(page, tracked)| (*page, tracked.digest))
    }

    /// Retires every tracked page that is no longer inside one of `ranges` (sorted by address,
    /// as `/proc/PID/maps` lists them) with the same backing.
    pub fn retain_live(&mut self, ranges: &[WritableRange]) {
        let before = self.pages.len();
        self.pages.retain(|page, tracked| {
            let index = ranges.partition_point(|range| range.end <= *page);
            ranges
                .get(index)
                .is_some_and(|range| range.start <= *page && range.backing == tracked.backing)
        });
        self.retired += (before - self.pages.len()) as u64;
    }

    /// Records the current digest of a page and says whether it changed.
    ///
    /// A page seen for the first time gets the next page number; `zero_digest` is the digest
    /// of an all-zero page, which is what a new page held before in the trace.
    pub fn observe(
        &mut self,
        page: VirtualPage,
        backing: Backing,
        digest: PageDigest,
    ) -> Result<Observation, PageLimitReached> {
        if let Some(tracked) = self.pages.get_mut(&page) {
            if tracked.digest == digest {
                return Ok(Observation::Unchanged(tracked.number));
            }
            tracked.digest = digest;
            return Ok(Observation::Changed(tracked.number));
        }
        if self.next_number >= self.page_limit {
            return Err(PageLimitReached {
                limit: self.page_limit,
            });
        }
        let number = PageNumber(self.next_number);
        self.next_number += 1;
        self.pages.insert(
            page,
            TrackedPage {
                number,
                backing,
                digest,
            },
        );
        Ok(Observation::New(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64) -> WritableRange {
        WritableRange {
            start: VirtualPage(start),
            end: VirtualPage(end),
            backing: Backing::Anonymous,
            name: String::new(),
        }
    }

    #[test]
    fn numbers_are_stable_and_changes_are_reported() {
        let mut layout = Layout::new(100);
        assert_eq!(
            layout.observe(VirtualPage(10), Backing::Anonymous, 1),
            Ok(Observation::New(PageNumber(0)))
        );
        assert_eq!(
            layout.observe(VirtualPage(5), Backing::Anonymous, 1),
            Ok(Observation::New(PageNumber(1)))
        );
        assert_eq!(
            layout.observe(VirtualPage(10), Backing::Anonymous, 1),
            Ok(Observation::Unchanged(PageNumber(0)))
        );
        assert_eq!(
            layout.observe(VirtualPage(10), Backing::Anonymous, 2),
            Ok(Observation::Changed(PageNumber(0)))
        );
        assert_eq!(layout.page_count(), 2);
    }

    #[test]
    fn unmapped_pages_are_retired_and_a_remap_gets_new_numbers() {
        let mut layout = Layout::new(100);
        for page in 10..14 {
            layout
                .observe(VirtualPage(page), Backing::Anonymous, 1)
                .unwrap();
        }
        // Pages 12 and 13 are unmapped.
        layout.retain_live(&[anon(0, 2), anon(10, 12)]);
        assert_eq!(layout.live_pages(), 2);
        assert_eq!(layout.retired_pages(), 2);
        assert_eq!(layout.number_of(VirtualPage(12)), None);
        // Mapped again: a new region with new numbers.
        assert_eq!(
            layout.observe(VirtualPage(12), Backing::Anonymous, 1),
            Ok(Observation::New(PageNumber(4)))
        );
        assert_eq!(layout.number_of(VirtualPage(10)), Some(PageNumber(0)));
    }

    #[test]
    fn a_page_whose_backing_changes_is_retired() {
        let mut layout = Layout::new(100);
        layout
            .observe(VirtualPage(3), Backing::Anonymous, 1)
            .unwrap();
        let file = WritableRange {
            backing: Backing::File {
                device: 1,
                inode: 2,
                page_delta: 0,
            },
            ..anon(0, 8)
        };
        layout.retain_live(&[file]);
        assert_eq!(layout.live_pages(), 0);
    }

    #[test]
    fn the_page_limit_is_enforced() {
        let mut layout = Layout::new(1);
        layout
            .observe(VirtualPage(1), Backing::Anonymous, 1)
            .unwrap();
        assert_eq!(
            layout.observe(VirtualPage(2), Backing::Anonymous, 1),
            Err(PageLimitReached { limit: 1 })
        );
        // Known pages are still observed.
        assert_eq!(
            layout.observe(VirtualPage(1), Backing::Anonymous, 3),
            Ok(Observation::Changed(PageNumber(0)))
        );
    }
}
