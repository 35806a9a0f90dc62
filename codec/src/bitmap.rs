//! [`PageBitmap`]: a set of pages of a guest memory, one bit per page.
//!
//! Dirty sets, received sets and deferred sets are all page bitmaps. Their wire form (raw bits
//! or run lengths, whichever is smaller) is in [`crate::frame`].

use crate::{PageCount, PageNumber};

/// A set of pages of a memory of [`PageBitmap::page_count`] pages, stored as 64-bit words
/// (page `n` is bit `n % 64` of word `n / 64`). Bits past the page count are always clear.
///
/// ```
/// use pagewire_codec::{PageBitmap, PageCount, PageNumber};
/// let mut dirty = PageBitmap::new(PageCount(100));
/// dirty.insert(PageNumber(3));
/// dirty.insert(PageNumber(70));
/// assert!(dirty.contains(PageNumber(70)));
/// assert_eq!(dirty.count(), 2);
/// assert_eq!(dirty.iter().collect::<Vec<_>>(), [PageNumber(3), PageNumber(70)]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PageBitmap {
    page_count: u64,
    words: Vec<u64>,
}

impl PageBitmap {
    /// An empty set over a memory of `page_count` pages.
    ///
    /// Allocates `page_count / 8` bytes; callers that take a page count from the wire check it
    /// against their limits first.
    pub fn new(page_count: PageCount) -> PageBitmap {
        let words = usize::try_from(page_count.0.div_ceil(64)).expect("page count fits memory");
        PageBitmap {
            page_count: page_count.0,
            words: vec![0; words],
        }
    }

    /// The set of every page of a memory of `page_count` pages.
    pub fn full(page_count: PageCount) -> PageBitmap {
        let mut bitmap = PageBitmap::new(page_count);
        bitmap.words.fill(u64::MAX);
        bitmap.clear_tail();
        bitmap
    }

    /// The page count of the memory this set is over.
    pub fn page_count(&self) -> PageCount {
        PageCount(self.page_count)
    }

    /// The words, 64 pages each, least significant bit first.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Builds a set from words laid out as [`PageBitmap::words`] gives them.
    /// Returns `None` if the number of words does not match `page_count` or a bit past the page
    /// count is set.
    pub fn from_words(page_count: PageCount, words: Vec<u64>) -> Option<PageBitmap> {
        let bitmap = PageBitmap {
            page_count: page_count.0,
            words,
        };
        let expected = usize::try_from(page_count.0.div_ceil(64)).ok()?;
        (bitmap.words.len() == expected && bitmap.tail_is_clear()).then_some(bitmap)
    }

    /// Whether `page` is in the set (pages past the page count never are).
    pub fn contains(&self, page: PageNumber) -> bool {
        page.0 < self.page_count && self.words[(page.0 / 64) as usize] & bit(page) != 0
    }

    /// Adds `page`; returns whether it was newly added. Pages past the page count are ignored
    /// (and `false` is returned).
    pub fn insert(&mut self, page: PageNumber) -> bool {
        if page.0 >= self.page_count {
            return false;
        }
        let word = &mut self.words[(page.0 / 64) as usize];
        let added = *word & bit(page) == 0;
        *word |= bit(page);
        added
    }

    /// Removes `page`; returns whether it was in the set.
    pub fn remove(&mut self, page: PageNumber) -> bool {
        if page.0 >= self.page_count {
            return false;
        }
        let word = &mut self.words[(page.0 / 64) as usize];
        let was = *word & bit(page) != 0;
        *word &= !bit(page);
        was
    }

    /// Adds the `count` pages starting at `first` (clipped to the page count).
    pub fn insert_range(&mut self, first: PageNumber, count: u64) {
        self.for_range_words(first, count, |word, mask| *word |= mask);
    }

    /// Removes the `count` pages starting at `first` (clipped to the page count).
    pub fn remove_range(&mut self, first: PageNumber, count: u64) {
        self.for_range_words(first, count, |word, mask| *word &= !mask);
    }

    /// Calls `apply` with each word the range touches and the mask of its pages in the word.
    fn for_range_words(&mut self, first: PageNumber, count: u64, apply: impl Fn(&mut u64, u64)) {
        let end = first.0.saturating_add(count).min(self.page_count);
        let mut page = first.0;
        while page < end {
            let in_word = page % 64;
            let take = (64 - in_word).min(end - page);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << in_word
            };
            apply(&mut self.words[(page / 64) as usize], mask);
            page += take;
        }
    }

    /// How many pages are in the set.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Removes every page.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Adds every page of `other` (a set over the same page count).
    ///
    /// # Panics
    /// If the page counts differ.
    pub fn union_with(&mut self, other: &PageBitmap) {
        self.zip_words(other, |a, b| a | b);
    }

    /// Keeps only the pages also in `other`.
    ///
    /// # Panics
    /// If the page counts differ.
    pub fn intersect_with(&mut self, other: &PageBitmap) {
        self.zip_words(other, |a, b| a & b);
    }

    /// Removes every page of `other`.
    ///
    /// # Panics
    /// If the page counts differ.
    pub fn subtract(&mut self, other: &PageBitmap) {
        self.zip_words(other, |a, b| a & !b);
    }

    /// The pages in the set, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = PageNumber> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(index, &word)| SetBits { word }.map(move |b| index as u64 * 64 + b))
            .map(PageNumber)
    }

    /// The first page of the set at or after `from`, or `None` if there is none. Scans whole
    /// words, so walking a set with it costs one step per set page plus one per empty word.
    ///
    /// ```
    /// use pagewire_codec::{PageBitmap, PageCount, PageNumber};
    /// let mut set = PageBitmap::new(PageCount(200));
    /// set.insert(PageNumber(5));
    /// set.insert(PageNumber(130));
    /// assert_eq!(set.first_at_or_after(PageNumber(6)), Some(PageNumber(130)));
    /// assert_eq!(set.first_at_or_after(PageNumber(131)), None);
    /// ```
    pub fn first_at_or_after(&self, from: PageNumber) -> Option<PageNumber> {
        if from.0 >= self.page_count {
            return None;
        }
        let mut index = (from.0 / 64) as usize;
        let mut word = self.words[index] & (u64::MAX << (from.0 % 64));
        loop {
            if word != 0 {
                return Some(PageNumber(
                    index as u64 * 64 + u64::from(word.trailing_zeros()),
                ));
            }
            index += 1;
            word = *self.words.get(index)?;
        }
    }

    fn zip_words(&mut self, other: &PageBitmap, op: impl Fn(u64, u64) -> u64) {
        assert_eq!(
            self.page_count, other.page_count,
            "bitmaps over different memories"
        );
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a = op(*a, *b);
        }
    }

    fn tail_mask(&self) -> u64 {
        match self.page_count % 64 {
            0 => u64::MAX,
            used => (1u64 << used) - 1,
        }
    }

    fn clear_tail(&mut self) {
        let mask = self.tail_mask();
        if let Some(last) = self.words.last_mut() {
            *last &= mask;
        }
    }

    fn tail_is_clear(&self) -> bool {
        self.words.last().is_none_or(|w| w & !self.tail_mask() == 0)
    }
}

impl std::fmt::Debug for PageBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBitmap")
            .field("page_count", &self.page_count)
            .field("count", &self.count())
            .finish()
    }
}

fn bit(page: PageNumber) -> u64 {
    1u64 << (page.0 % 64)
}

/// The positions of the set bits of a word, lowest first.
struct SetBits {
    word: u64,
}

impl Iterator for SetBits {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.word == 0 {
            return None;
        }
        let position = self.word.trailing_zeros();
        self.word &= self.word - 1;
        Some(u64::from(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_bitmap_has_no_bits_past_page_count() {
        let full = PageBitmap::full(PageCount(70));
        assert_eq!(full.count(), 70);
        assert!(!full.contains(PageNumber(70)));
        assert!(PageBitmap::from_words(PageCount(70), full.words().to_vec()).is_some());
        assert!(PageBitmap::from_words(PageCount(70), vec![u64::MAX, u64::MAX]).is_none());
        assert!(PageBitmap::from_words(PageCount(70), vec![0]).is_none());
    }

    #[test]
    fn pages_past_the_end_are_ignored() {
        let mut set = PageBitmap::new(PageCount(10));
        assert!(!set.insert(PageNumber(10)));
        assert!(!set.remove(PageNumber(u64::MAX)));
        set.insert_range(PageNumber(8), 100);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [PageNumber(8), PageNumber(9)]
        );
    }

    #[test]
    fn set_operations_follow_their_names() {
        let count = PageCount(200);
        let mut a = PageBitmap::new(count);
        let mut b = PageBitmap::new(count);
        a.insert_range(PageNumber(0), 100);
        b.insert_range(PageNumber(50), 100);
        let mut union = a.clone();
        union.union_with(&b);
        assert_eq!(union.count(), 150);
        let mut both = a.clone();
        both.intersect_with(&b);
        assert_eq!(both.count(), 50);
        a.subtract(&b);
        assert_eq!(a.iter().last(), Some(PageNumber(49)));
    }

    proptest! {
        #[test]
        fn bitmap_matches_a_set_of_pages(
            page_count in 1u64..500,
            pages in proptest::collection::vec(0u64..600, 0..100),
        ) {
            let mut bitmap = PageBitmap::new(PageCount(page_count));
            let mut model = std::collections::BTreeSet::new();
            for p in pages {
                prop_assert_eq!(bitmap.insert(PageNumber(p)), p < page_count && model.insert(p));
            }
            prop_assert_eq!(bitmap.count(), model.len() as u64);
            let listed: Vec<u64> = bitmap.iter().map(|p| p.0).collect();
            prop_assert_eq!(listed, model.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn first_at_or_after_finds_the_next_member(
            page_count in 1u64..300,
            pages in proptest::collection::vec(0u64..300, 0..40),
            from in 0u64..320,
        ) {
            let mut bitmap = PageBitmap::new(PageCount(page_count));
            for p in &pages {
                bitmap.insert(PageNumber(*p));
            }
            let expected = bitmap.iter().find(|p| p.0 >= from);
            prop_assert_eq!(bitmap.first_at_or_after(PageNumber(from)), expected);
        }

        #[test]
        fn insert_range_equals_inserting_each_page(
            page_count in 1u64..300, first in 0u64..320, count in 0u64..200,
        ) {
            let mut by_range = PageBitmap::new(PageCount(page_count));
            by_range.insert_range(PageNumber(first), count);
            let mut by_page = PageBitmap::new(PageCount(page_count));
            for p in first..first + count {
                by_page.insert(PageNumber(p));
            }
            prop_assert_eq!(by_range, by_page);
        }
    }
}
