//! What the writer remembers of each page's previous version: a 64-bit hash of every page
//! (to recognise identical rewrites) and a bounded, direct-mapped cache of previous contents
//! (to store deltas).
//!
//! Memory: 8 bytes per page for the hashes, plus a cache of at most `cache_bytes` (and never
//! more slots than pages). A page whose previous version is not cached is stored whole (or
//! as a zero page) instead of as a delta, so the cache size trades file size for writer
//! memory, never correctness. Identical rewrites of uncached pages are recognised by hash
//! alone: two different versions of a page with equal xxh3-64 hashes (probability about
//! 2^-64 per write) would be recorded as unchanged.

use pagewire_codec::{PageCount, PageNumber};
use xxhash_rust::xxh3::xxh3_64;

const EMPTY_SLOT: u64 = u64::MAX;

/// Per-page hashes and a direct-mapped cache of previous page versions.
pub(crate) struct PageHistory {
    page_size: usize,
    cache_bytes: u64,
    zero_hash: u64,
    zero_page: Vec<u8>,
    hashes: Vec<u64>,
    tags: Vec<u64>,
    store: Vec<u8>,
}

impl PageHistory {
    /// A history of `page_count` zero pages with a cache of at most `cache_bytes` bytes.
    pub(crate) fn new(page_size: usize, page_count: PageCount, cache_bytes: u64) -> Self {
        let zero_page = vec![0u8; page_size];
        let zero_hash = xxh3_64(&zero_page);
        let mut history = PageHistory {
            page_size,
            cache_bytes,
            zero_hash,
            zero_page,
            hashes: Vec::new(),
            tags: Vec::new(),
            store: Vec::new(),
        };
        history.grow(page_count);
        history
    }

    /// Extends the memory to `page_count` pages (new pages are zero).
    pub(crate) fn grow(&mut self, page_count: PageCount) {
        let count = usize::try_from(page_count.0).expect("page count fits memory");
        if count <= self.hashes.len() {
            return;
        }
        self.hashes.resize(count, self.zero_hash);
        let budget =
            usize::try_from(self.cache_bytes / self.page_size as u64).unwrap_or(usize::MAX);
        if count.min(budget) > self.tags.len() {
            // Rebuilding moves every cached page, so a memory that grows a little at a time
            // (a recording) doubles the cache instead of rebuilding it on every growth.
            let slots = count.max(self.tags.len().saturating_mul(2)).min(budget);
            self.rebuild_cache(slots);
        }
    }

    fn rebuild_cache(&mut self, slots: usize) {
        let old_tags = std::mem::replace(&mut self.tags, vec![EMPTY_SLOT; slots]);
        let old_store = std::mem::replace(&mut self.store, vec![0u8; slots * self.page_size]);
        for (slot, &tag) in old_tags.iter().enumerate() {
            if tag != EMPTY_SLOT {
                let content = &old_store[slot * self.page_size..(slot + 1) * self.page_size];
                self.cache(PageNumber(tag), content);
            }
        }
    }

    /// The hash of `content` as this history computes it.
    pub(crate) fn hash(content: &[u8]) -> u64 {
        xxh3_64(content)
    }

    /// The hash of the page's current version.
    pub(crate) fn hash_of(&self, page: PageNumber) -> u64 {
        self.hashes[page.index()]
    }

    /// The page's current version, if known: cached, or never written since it was zero.
    pub(crate) fn previous(&self, page: PageNumber) -> Option<&[u8]> {
        if let Some(slot) = self.slot(page)
            && self.tags[slot] == page.0
        {
            return Some(&self.store[slot * self.page_size..(slot + 1) * self.page_size]);
        }
        (self.hashes[page.index()] == self.zero_hash).then_some(&self.zero_page[..])
    }

    /// Records `content` (with its `hash`) as the page's current version.
    pub(crate) fn record(&mut self, page: PageNumber, content: &[u8], hash: u64) {
        self.hashes[page.index()] = hash;
        self.cache(page, content);
    }

    fn cache(&mut self, page: PageNumber, content: &[u8]) {
        if let Some(slot) = self.slot(page) {
            self.tags[slot] = page.0;
            self.store[slot * self.page_size..(slot + 1) * self.page_size].copy_from_slice(content);
        }
    }

    fn slot(&self, page: PageNumber) -> Option<usize> {
        (!self.tags.is_empty()).then(|| (page.0 % self.tags.len() as u64) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_is_zero_before_any_write_and_cached_after() {
        let mut history = PageHistory::new(4096, PageCount(4), 2 * 4096);
        assert_eq!(history.previous(PageNumber(3)), Some(&[0u8; 4096][..]));
        let page = vec![5u8; 4096];
        history.record(PageNumber(3), &page, PageHistory::hash(&page));
        assert_eq!(history.previous(PageNumber(3)), Some(&page[..]));
        // Page 1 shares page 3's slot (two slots): writing it evicts page 3.
        history.record(PageNumber(1), &page, PageHistory::hash(&page));
        assert_eq!(history.previous(PageNumber(3)), None);
        assert_eq!(history.hash_of(PageNumber(3)), PageHistory::hash(&page));
    }

    #[test]
    fn growing_keeps_cached_pages() {
        let mut history = PageHistory::new(4096, PageCount(2), 1 << 20);
        let page = vec![9u8; 4096];
        history.record(PageNumber(1), &page, PageHistory::hash(&page));
        history.grow(PageCount(100));
        assert_eq!(history.previous(PageNumber(1)), Some(&page[..]));
        assert_eq!(history.previous(PageNumber(99)), Some(&[0u8; 4096][..]));
    }

    #[test]
    fn small_growths_double_the_cache_within_its_budget() {
        let mut history = PageHistory::new(4096, PageCount(100), 1 << 20);
        history.grow(PageCount(101));
        assert_eq!(history.tags.len(), 200);
        history.grow(PageCount(150));
        assert_eq!(history.tags.len(), 200, "no rebuild while the pages fit");
        history.grow(PageCount(201));
        assert_eq!(history.tags.len(), 256, "capped by the budget of 256 pages");
    }
}
