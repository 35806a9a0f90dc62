//! The source's bounded cache of last-sent page versions, the base of XBZRLE deltas.
//!
//! An XBZRLE delta for page `p` applies to the content the destination holds for `p`, so the
//! cache must hold exactly the version last sent for `p`, or nothing for `p`. The
//! [`Encoder`](crate::encoder::Encoder) keeps that invariant: every page it sends, in any
//! encoding, replaces or removes the page's entry, or, a first send its
//! [`CacheAdmission`](crate::encoder::CacheAdmission) keeps out of a full cache, has none.
//!
//! Memory is bounded by the capacity given in bytes: the cache holds at most
//! `capacity / page_size` pages in one allocation made up front (the operating system commits
//! it as it is touched), plus a small index (about 40 bytes per cached page). Eviction is
//! CLOCK (second chance): an entry is marked when it is hit, and the clock hand evicts the
//! first unmarked entry, unmarking the ones it passes. Pages sent once and never dirtied again
//! go first.

use std::collections::HashMap;

use crate::{PageNumber, PageSize};

/// Counters of a [`PageCache`], as a plain struct for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found the page.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries evicted to make room for another page.
    pub evictions: u64,
    /// Hits whose delta did not fit (the page was sent another way).
    pub give_ups: u64,
    /// Pages stored (new entries and replaced versions).
    pub inserts: u64,
}

/// A bounded cache of the last version sent of each page, with CLOCK eviction.
///
/// ```
/// use pagewire_codec::cache::PageCache;
/// use pagewire_codec::{PageNumber, PageSize};
///
/// // Room for two 4 KiB pages.
/// let mut cache = PageCache::new(8192, PageSize::KIB_4);
/// cache.insert(PageNumber(1), &[1u8; 4096]);
/// cache.insert(PageNumber(2), &[2u8; 4096]);
/// assert_eq!(cache.lookup(PageNumber(1)).unwrap()[0], 1);
/// cache.insert(PageNumber(3), &[3u8; 4096]); // evicts page 2, the one not hit
/// assert!(cache.lookup(PageNumber(2)).is_none());
/// assert_eq!(cache.stats().evictions, 1);
/// ```
pub struct PageCache {
    page_size: usize,
    data: Vec<u8>,
    /// The page each slot holds, if any.
    owners: Vec<Option<PageNumber>>,
    /// CLOCK's second-chance bits, one per slot.
    referenced: Vec<bool>,
    index: HashMap<PageNumber, usize>,
    /// Slots never used or freed by [`PageCache::remove`].
    free: Vec<usize>,
    hand: usize,
    stats: CacheStats,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache")
            .field("page_size", &self.page_size)
            .field("capacity_pages", &self.capacity_pages())
            .field("len", &self.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PageCache {
    /// A cache of at most `capacity_bytes` of page content (rounded down to whole pages). A
    /// capacity below one page gives a cache that stores nothing.
    pub fn new(capacity_bytes: u64, page_size: PageSize) -> PageCache {
        let page = page_size.bytes();
        let slots = usize::try_from(capacity_bytes / page as u64).unwrap_or(usize::MAX / page);
        PageCache {
            page_size: page,
            data: vec![0; slots * page],
            owners: vec![None; slots],
            referenced: vec![false; slots],
            index: HashMap::with_capacity(slots),
            free: (0..slots).rev().collect(),
            hand: 0,
            stats: CacheStats::default(),
        }
    }

    /// How many pages the cache can hold.
    pub fn capacity_pages(&self) -> usize {
        self.owners.len()
    }

    /// How many pages it holds now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether every slot holds a page (a cache of no slots is full): storing another page
    /// evicts one.
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Whether it holds no page.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The cached version of `page`, counting a hit (and marking the entry recently used) or a
    /// miss.
    pub fn lookup(&mut self, page: PageNumber) -> Option<&[u8]> {
        match self.index.get(&page) {
            Some(&slot) => {
                self.stats.hits += 1;
                self.referenced[slot] = true;
                Some(self.slot_bytes(slot))
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// The cached version of `page`, without touching the counters or the CLOCK bits.
    #[cfg(test)]
    pub(crate) fn peek(&self, page: PageNumber) -> Option<&[u8]> {
        let slot = *self.index.get(&page)?;
        Some(self.slot_bytes(slot))
    }

    /// Whether `page` is cached, without touching the counters or the CLOCK bits.
    pub fn contains(&self, page: PageNumber) -> bool {
        self.index.contains_key(&page)
    }

    /// Stores `bytes` as the version of `page` last sent, replacing any older version and
    /// evicting another page if the cache is full. Does nothing if the cache has no room at all
    /// or `bytes` is not one page long.
    pub fn insert(&mut self, page: PageNumber, bytes: &[u8]) {
        if bytes.len() != self.page_size {
            self.remove(page);
            return;
        }
        let slot = match self.index.get(&page) {
            Some(&slot) => slot,
            None => match self.free.pop().or_else(|| self.evict()) {
                Some(slot) => {
                    self.owners[slot] = Some(page);
                    self.referenced[slot] = false;
                    self.index.insert(page, slot);
                    slot
                }
                None => return,
            },
        };
        self.data[slot * self.page_size..(slot + 1) * self.page_size].copy_from_slice(bytes);
        self.stats.inserts += 1;
    }

    /// Drops the cached version of `page`, if any.
    pub fn remove(&mut self, page: PageNumber) {
        if let Some(slot) = self.index.remove(&page) {
            self.owners[slot] = None;
            self.referenced[slot] = false;
            self.free.push(slot);
        }
    }

    /// Drops every cached version (the counters stay): after a resume the destination may
    /// hold other versions than the ones sent last.
    pub fn clear(&mut self) {
        self.index.clear();
        self.owners.iter_mut().for_each(|owner| *owner = None);
        self.referenced.iter_mut().for_each(|bit| *bit = false);
        self.free = (0..self.owners.len()).rev().collect();
        self.hand = 0;
    }

    /// Counts a hit whose delta did not fit in its limit.
    pub fn note_give_up(&mut self) {
        self.stats.give_ups += 1;
    }

    /// The content of `slot`.
    fn slot_bytes(&self, slot: usize) -> &[u8] {
        &self.data[slot * self.page_size..(slot + 1) * self.page_size]
    }

    /// Frees one slot by CLOCK and returns it; `None` if the cache has no slots.
    fn evict(&mut self) -> Option<usize> {
        let slots = self.owners.len();
        if slots == 0 {
            return None;
        }
        // Every slot is occupied (the free list is empty), so at most two turns of the hand
        // find an unmarked one.
        loop {
            let slot = self.hand;
            self.hand = (self.hand + 1) % slots;
            if self.referenced[slot] {
                self.referenced[slot] = false;
                continue;
            }
            if let Some(owner) = self.owners[slot].take() {
                self.index.remove(&owner);
                self.stats.evictions += 1;
            }
            return Some(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(fill: u8) -> Vec<u8> {
        vec![fill; 4096]
    }

    #[test]
    fn holds_at_most_its_capacity_and_counts_evictions() {
        let mut cache = PageCache::new(3 * 4096 + 100, PageSize::KIB_4);
        assert_eq!(cache.capacity_pages(), 3);
        for n in 0..10u8 {
            cache.insert(PageNumber(n.into()), &page(n));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.stats().inserts, 10);
        assert_eq!(cache.stats().evictions, 7);
    }

    #[test]
    fn a_hit_gives_the_last_version_inserted() {
        let mut cache = PageCache::new(2 * 4096, PageSize::KIB_4);
        cache.insert(PageNumber(5), &page(1));
        cache.insert(PageNumber(5), &page(2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.lookup(PageNumber(5)).unwrap(), &page(2)[..]);
        assert!(cache.lookup(PageNumber(6)).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 2));
    }

    #[test]
    fn clock_spares_entries_that_were_hit() {
        let mut cache = PageCache::new(2 * 4096, PageSize::KIB_4);
        cache.insert(PageNumber(1), &page(1));
        cache.insert(PageNumber(2), &page(2));
        cache.lookup(PageNumber(1));
        cache.insert(PageNumber(3), &page(3));
        assert!(cache.contains(PageNumber(1)));
        assert!(!cache.contains(PageNumber(2)));
    }

    #[test]
    fn removed_slots_are_reused_without_eviction() {
        let mut cache = PageCache::new(2 * 4096, PageSize::KIB_4);
        cache.insert(PageNumber(1), &page(1));
        cache.insert(PageNumber(2), &page(2));
        cache.remove(PageNumber(1));
        cache.insert(PageNumber(3), &page(3));
        assert_eq!(cache.stats().evictions, 0);
        assert_eq!(cache.lookup(PageNumber(2)).unwrap(), &page(2)[..]);
        assert_eq!(cache.lookup(PageNumber(3)).unwrap(), &page(3)[..]);
    }

    #[test]
    fn a_cache_smaller_than_a_page_stores_nothing() {
        let mut cache = PageCache::new(4095, PageSize::KIB_4);
        cache.insert(PageNumber(1), &page(1));
        assert!(cache.is_empty());
        assert!(cache.lookup(PageNumber(1)).is_none());
    }

    #[test]
    fn a_buffer_of_the_wrong_length_drops_the_entry() {
        let mut cache = PageCache::new(4096, PageSize::KIB_4);
        cache.insert(PageNumber(1), &page(1));
        cache.insert(PageNumber(1), &[0u8; 10]);
        assert!(!cache.contains(PageNumber(1)));
    }
}
