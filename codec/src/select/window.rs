//! [`DirtyWindow`]: how many of the last `N` dirty logs named each page, kept as a ring of `N`
//! bitmaps and one `u8` counter per page, so updating it costs the pages of the entering and
//! the leaving log, not the memory size.

use crate::{PageBitmap, PageCount, PageNumber};

/// The last `len` dirty logs and, per page, in how many of them it appears.
#[derive(Clone, Debug)]
pub struct DirtyWindow {
    logs: Vec<PageBitmap>,
    counts: Vec<u8>,
    next: usize,
}

impl DirtyWindow {
    /// An empty window of `len` logs (at least 1, at most 255) over `page_count` pages.
    pub fn new(page_count: PageCount, len: u8) -> Self {
        let len = usize::from(len.max(1));
        DirtyWindow {
            logs: vec![PageBitmap::new(page_count); len],
            counts: vec![0; usize::try_from(page_count.0).expect("page count fits memory")],
            next: 0,
        }
    }

    /// How many logs the window holds.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// Always false: a window holds at least one log.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Adds the newest log, dropping the oldest.
    pub fn push(&mut self, dirty: &PageBitmap) {
        let Some(slot) = self.logs.get_mut(self.next) else {
            return;
        };
        if dirty.page_count() != slot.page_count() {
            return;
        }
        for page in slot.iter() {
            self.counts[page.index()] -= 1;
        }
        slot.clear();
        slot.union_with(dirty);
        for page in dirty.iter() {
            self.counts[page.index()] += 1;
        }
        self.next = (self.next + 1) % self.logs.len();
    }

    /// In how many logs of the window `page` appears.
    pub fn count(&self, page: PageNumber) -> u8 {
        self.counts.get(page.index()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::Script;

    #[test]
    fn window_counts_only_the_last_len_logs() {
        // len 2: push {1,2}, {2}, {2,3}: page 1 left with the first log, 2 is in both kept logs.
        let mut window = DirtyWindow::new(PageCount(4), 2);
        for pages in [&[1, 2][..], &[2], &[2, 3]] {
            window.push(&Script::bitmap(4, pages));
        }
        let counts: Vec<u8> = (0..4).map(|p| window.count(PageNumber(p))).collect();
        assert_eq!(counts, [0, 0, 2, 1]);
        assert_eq!(window.len(), 2);
    }
}
