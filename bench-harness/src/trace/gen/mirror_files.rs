//! The mirror-migration paper's set-up: a VM (64 MiB to 1 GiB) whose workload writes a number
//! of files; we model each file as a run of page-cache pages placed at a random position of
//! its share of memory, written sequentially file after file (wrapping around to rewrite the
//! first), at the dirty rate. File pages hold text.

use pagewire_codec::{PageCount, PageNumber};

use super::WritePattern;
use crate::trace::content::ContentClass;
use crate::trace::rng::{Rng, hash_of};

/// Sequential writes through `files` files of `file_pages` pages each.
#[derive(Clone, Debug)]
pub struct MirrorFiles {
    files: Vec<(u64, u64)>,
    pages_per_epoch: u64,
    file: usize,
    offset: u64,
}

impl MirrorFiles {
    /// `files` files of `file_pages` pages (clamped to each file's share of memory) placed in
    /// a memory of `page_count` pages as `seed` says.
    pub fn new(
        page_count: PageCount,
        files: u64,
        file_pages: u64,
        pages_per_epoch: u64,
        seed: u64,
    ) -> Self {
        let files = files.clamp(1, page_count.0.max(1));
        let share = page_count.0 / files;
        let len = file_pages.clamp(1, share.max(1));
        let files = (0..files)
            .map(|i| {
                let slack = share - len.min(share);
                (i * share + hash_of(&[seed, i, 0xf11e]) % (slack + 1), len)
            })
            .collect();
        MirrorFiles {
            files,
            pages_per_epoch,
            file: 0,
            offset: 0,
        }
    }
}

impl WritePattern for MirrorFiles {
    fn name(&self) -> &'static str {
        "mirror"
    }

    fn epoch_pages(&mut self, _epoch: u64, _rng: &mut Rng, out: &mut Vec<PageNumber>) {
        let total: u64 = self.files.iter().map(|f| f.1).sum();
        for _ in 0..self.pages_per_epoch.min(total) {
            let (start, len) = self.files[self.file];
            out.push(PageNumber(start + self.offset));
            self.offset += 1;
            if self.offset == len {
                self.offset = 0;
                self.file = (self.file + 1) % self.files.len();
            }
        }
    }

    fn class_of(&self, page: PageNumber) -> Option<ContentClass> {
        let i = self.files.partition_point(|f| f.0 <= page.0);
        (i > 0 && page.0 < self.files[i - 1].0 + self.files[i - 1].1).then_some(ContentClass::Text)
    }
}
