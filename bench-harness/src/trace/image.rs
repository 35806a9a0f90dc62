//! [`PageImage`]: the reader's copy of the traced memory (needed to apply deltas), in memory
//! or in a sparse scratch file for memories larger than the machine's RAM.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use pagewire_codec::{PageCount, PageNumber, PageSize};

use super::delta::{self, BadDelta};

/// Where a reader keeps the current memory image of a content trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ImageBacking {
    /// In a zero-initialised allocation: the OS backs only the pages written, so memory use
    /// is the part of the image that is non-zero.
    #[default]
    Memory,
    /// In a sparse file created (or truncated) at this path; memory use is one page plus the
    /// OS page cache.
    File(PathBuf),
}

enum Storage {
    Memory(Vec<u8>),
    File { file: File, scratch: Vec<u8> },
}

/// The current content of every page of a traced memory.
pub struct PageImage {
    page_size: usize,
    page_count: PageCount,
    storage: Storage,
}

impl PageImage {
    /// An all-zero image of `page_count` pages of `page_size`.
    pub(crate) fn new(
        page_size: PageSize,
        page_count: PageCount,
        backing: &ImageBacking,
    ) -> io::Result<Self> {
        let bytes = page_count.0 * page_size.bytes() as u64;
        let storage = match backing {
            ImageBacking::Memory => {
                Storage::Memory(vec![0u8; usize::try_from(bytes).map_err(io::Error::other)?])
            }
            ImageBacking::File(path) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)?;
                file.set_len(bytes)?;
                Storage::File {
                    file,
                    scratch: vec![0u8; page_size.bytes()],
                }
            }
        };
        Ok(PageImage {
            page_size: page_size.bytes(),
            page_count,
            storage,
        })
    }

    /// The number of pages.
    pub fn page_count(&self) -> PageCount {
        self.page_count
    }

    /// The current content of `page` (which must be inside the page count).
    pub fn page(&mut self, page: PageNumber) -> io::Result<&[u8]> {
        let range = self.range(page);
        match &mut self.storage {
            Storage::Memory(bytes) => Ok(&bytes[range]),
            Storage::File { file, scratch } => {
                file.read_exact_at(scratch, range.start as u64)?;
                Ok(scratch)
            }
        }
    }

    /// Sets `page` to `content`.
    pub(crate) fn set(&mut self, page: PageNumber, content: &[u8]) -> io::Result<()> {
        let range = self.range(page);
        match &mut self.storage {
            Storage::Memory(bytes) => {
                bytes[range].copy_from_slice(content);
                Ok(())
            }
            Storage::File { file, .. } => file.write_all_at(content, range.start as u64),
        }
    }

    /// Sets `page` to zero bytes.
    pub(crate) fn zero(&mut self, page: PageNumber) -> io::Result<()> {
        let range = self.range(page);
        match &mut self.storage {
            Storage::Memory(bytes) => {
                bytes[range].fill(0);
                Ok(())
            }
            Storage::File { file, scratch } => {
                scratch.fill(0);
                file.write_all_at(scratch, range.start as u64)
            }
        }
    }

    /// Applies an XOR delta to `page`.
    pub(crate) fn apply_delta(
        &mut self,
        page: PageNumber,
        delta: &[u8],
    ) -> io::Result<Result<(), BadDelta>> {
        let range = self.range(page);
        match &mut self.storage {
            Storage::Memory(bytes) => Ok(delta::apply(delta, &mut bytes[range])),
            Storage::File { file, scratch } => {
                file.read_exact_at(scratch, range.start as u64)?;
                let applied = delta::apply(delta, scratch);
                if applied.is_ok() {
                    file.write_all_at(scratch, range.start as u64)?;
                }
                Ok(applied)
            }
        }
    }

    /// Sets every page to zero.
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        match &mut self.storage {
            Storage::Memory(bytes) => {
                // A fresh zeroed allocation, not a fill: untouched pages stay unbacked.
                *bytes = vec![0u8; bytes.len()];
                Ok(())
            }
            Storage::File { file, .. } => {
                let len = file.metadata()?.len();
                file.set_len(0)?;
                file.set_len(len)
            }
        }
    }

    fn range(&self, page: PageNumber) -> std::ops::Range<usize> {
        assert!(self.page_count.contains(page), "{page} outside the image");
        let start = page.index() * self.page_size;
        start..start + self.page_size
    }
}
