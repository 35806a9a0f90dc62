//! The source's dedup index: which page the destination holds now with a given content.
//!
//! A dedup record tells the destination "copy page `source`, whose content hashes to `h`".
//! It is valid only if, when the destination applies it, page `source` still holds content
//! hashing to `h`; otherwise the destination rejects it. The index therefore only names
//! pages whose content *at the destination, now* it knows: every page sent, in any encoding,
//! updates what the index knows of that page ([`DedupIndex::page_sent`] or
//! [`DedupIndex::forget`]), and an entry dies as soon as its page's content changes.
//!
//! Forgetting is always safe (fewer dedup opportunities); remembering wrongly never is. The
//! index is bounded by a number of entries: past it, newly sent pages are simply not
//! indexed. Each entry costs about 60 bytes.

use std::collections::HashMap;

use crate::{ContentHash, PageNumber};

/// The default bound on indexed pages: 262 144 (1 GiB of 4 KiB pages, about 15 MiB of index).
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 18;

/// Content hash -> a page the destination holds now with that content, and page -> the
/// content the destination holds for it.
///
/// ```
/// use pagewire_codec::dedup::DedupIndex;
/// use pagewire_codec::{ContentHash, PageNumber};
///
/// let mut index = DedupIndex::new(1024);
/// let h = ContentHash::of(b"some page");
/// index.page_sent(PageNumber(3), h);
/// assert_eq!(index.holder(h), Some(PageNumber(3)));
/// // Page 3 is overwritten with other content: the entry dies.
/// index.page_sent(PageNumber(3), ContentHash::of(b"other"));
/// assert_eq!(index.holder(h), None);
/// ```
#[derive(Clone, Debug)]
pub struct DedupIndex {
    /// What the destination holds for each indexed page.
    by_page: HashMap<PageNumber, ContentHash>,
    /// For each content, one page in `by_page` holding it (the most recently sent).
    by_hash: HashMap<ContentHash, PageNumber>,
    max_entries: usize,
}

impl Default for DedupIndex {
    fn default() -> Self {
        DedupIndex::new(DEFAULT_MAX_ENTRIES)
    }
}

impl DedupIndex {
    /// An empty index that indexes at most `max_entries` pages at a time.
    pub fn new(max_entries: usize) -> DedupIndex {
        DedupIndex {
            by_page: HashMap::new(),
            by_hash: HashMap::new(),
            max_entries,
        }
    }

    /// A page the destination holds now whose content hashes to `hash`, if the index knows one.
    pub fn holder(&self, hash: ContentHash) -> Option<PageNumber> {
        self.by_hash.get(&hash).copied()
    }

    /// The hash of the content the destination holds now for `page`, if the index knows it.
    pub fn content_of(&self, page: PageNumber) -> Option<ContentHash> {
        self.by_page.get(&page).copied()
    }

    /// How many pages are indexed.
    pub fn len(&self) -> usize {
        self.by_page.len()
    }

    /// Whether no page is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_page.is_empty()
    }

    /// Records that the destination now holds content hashing to `hash` at `page` (the page
    /// was just sent, in any encoding). Any entry for the page's previous content dies.
    pub fn page_sent(&mut self, page: PageNumber, hash: ContentHash) {
        if self.by_page.get(&page) == Some(&hash) {
            self.by_hash.insert(hash, page);
            return;
        }
        self.forget(page);
        if self.by_page.len() < self.max_entries {
            self.by_page.insert(page, hash);
            self.by_hash.insert(hash, page);
        }
    }

    /// Forgets every page: the index knows nothing of the destination's memory any more.
    pub fn clear(&mut self) {
        self.by_page.clear();
        self.by_hash.clear();
    }

    /// Records that the index no longer knows what the destination holds at `page` (its
    /// content changed and is not worth indexing, e.g. a zero page).
    pub fn forget(&mut self, page: PageNumber) {
        if let Some(old) = self.by_page.remove(&page)
            && self.by_hash.get(&old) == Some(&page)
        {
            self.by_hash.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Send `page` with content number `content` (few distinct contents, so they repeat).
        Send {
            page: u64,
            content: u8,
        },
        Forget {
            page: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..16u64, 0..6u8).prop_map(|(page, content)| Op::Send { page, content }),
            1 => (0..16u64).prop_map(|page| Op::Forget { page }),
        ]
    }

    fn hash_of(content: u8) -> ContentHash {
        ContentHash::of(&[content; 64])
    }

    proptest! {
        /// Model: the destination's memory as page -> content (None = unknown to the index).
        /// After every operation, every answer the index gives is true of the model.
        #[test]
        fn index_never_names_a_page_that_does_not_hold_the_content(
            ops in proptest::collection::vec(op(), 1..200),
            max_entries in 1usize..20,
        ) {
            let mut index = DedupIndex::new(max_entries);
            let mut destination: HashMap<u64, u8> = HashMap::new();
            for op in ops {
                match op {
                    Op::Send { page, content } => {
                        destination.insert(page, content);
                        index.page_sent(PageNumber(page), hash_of(content));
                    }
                    Op::Forget { page } => {
                        // The page changed to content the model does not track.
                        destination.remove(&page);
                        index.forget(PageNumber(page));
                    }
                }
                prop_assert!(index.len() <= max_entries);
                for content in 0..6u8 {
                    if let Some(holder) = index.holder(hash_of(content)) {
                        prop_assert_eq!(destination.get(&holder.0), Some(&content));
                    }
                }
                for page in 0..16u64 {
                    if let Some(hash) = index.content_of(PageNumber(page)) {
                        let content = destination.get(&page).copied();
                        prop_assert_eq!(content.map(hash_of), Some(hash));
                    }
                }
            }
        }
    }

    #[test]
    fn a_second_holder_is_found_after_the_first_changes_only_if_resent() {
        let mut index = DedupIndex::new(16);
        let h = ContentHash::of(b"x");
        index.page_sent(PageNumber(1), h);
        index.page_sent(PageNumber(2), h);
        assert_eq!(index.holder(h), Some(PageNumber(2)));
        index.page_sent(PageNumber(1), ContentHash::of(b"y"));
        assert_eq!(index.holder(h), Some(PageNumber(2)));
        index.forget(PageNumber(2));
        assert_eq!(index.holder(h), None);
    }
}
