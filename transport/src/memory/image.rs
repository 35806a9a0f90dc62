//! A memory image in a file, as both file-backed memories open and lay it out: page `n` is at
//! offset `n × page_size`, and the file is a whole number of pages.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use pagewire_codec::memory::MemoryError;
use pagewire_codec::{PageCount, PageNumber, PageSize};

/// Why a file could not serve as guest memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileMemoryError {
    /// The file could not be opened, created, sized or mapped.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What failed: "open", "create", "size", "reserve", "map".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file's length is not a whole number of pages.
    #[error("{} is {length} bytes long, not a whole number of {page_size} pages", path.display())]
    NotWholePages {
        /// The file.
        path: PathBuf,
        /// Its length.
        length: u64,
        /// The page size.
        page_size: PageSize,
    },
    /// The memory asked for is larger than a file (or, mapped, the address space) can be.
    #[error("a memory of {page_count} of {page_size} is too large for a file")]
    TooLarge {
        /// The page count asked for.
        page_count: PageCount,
        /// The page size.
        page_size: PageSize,
    },
}

/// How a memory image is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Read only: the file is never written.
    Read,
    /// Read and write.
    ReadWrite,
}

/// An open memory image and its layout.
#[derive(Debug)]
pub(super) struct ImageFile {
    pub(super) file: File,
    pub(super) layout: Layout,
}

impl ImageFile {
    /// Opens an existing image; its length must be a whole number of pages.
    pub(super) fn open(
        path: &Path,
        page_size: PageSize,
        access: Access,
    ) -> Result<ImageFile, FileMemoryError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(path)
            .map_err(io_error("open", path))?;
        let length = file.metadata().map_err(io_error("open", path))?.len();
        let page_bytes = page_size.bytes() as u64;
        if length % page_bytes != 0 {
            return Err(FileMemoryError::NotWholePages {
                path: path.to_path_buf(),
                length,
                page_size,
            });
        }
        Ok(ImageFile {
            file,
            layout: Layout {
                page_size,
                page_count: PageCount(length / page_bytes),
            },
        })
    }

    /// Creates (or truncates) a sparse, all-zero image of `page_count` pages.
    pub(super) fn create(
        path: &Path,
        page_size: PageSize,
        page_count: PageCount,
    ) -> Result<ImageFile, FileMemoryError> {
        let layout = Layout {
            page_size,
            page_count,
        };
        let length = layout.file_length()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_error("create", path))?;
        file.set_len(length).map_err(io_error("size", path))?;
        Ok(ImageFile { file, layout })
    }
}

/// Where the pages of a memory image lie in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub(super) page_size: PageSize,
    pub(super) page_count: PageCount,
}

impl Layout {
    /// The file's length in bytes; refused if a file cannot be that long (an `off_t`).
    pub(super) fn file_length(&self) -> Result<u64, FileMemoryError> {
        self.page_count
            .0
            .checked_mul(self.page_size.bytes() as u64)
            .filter(|length| i64::try_from(*length).is_ok())
            .ok_or(FileMemoryError::TooLarge {
                page_count: self.page_count,
                page_size: self.page_size,
            })
    }

    /// The byte offset of `page`, after checking the page and that the buffer is one page.
    pub(super) fn offset(&self, page: PageNumber, buffer_len: usize) -> Result<u64, MemoryError> {
        if buffer_len != self.page_size.bytes() {
            return Err(MemoryError::WrongLength {
                expected: self.page_size.bytes(),
                actual: buffer_len,
            });
        }
        if !self.page_count.contains(page) {
            return Err(MemoryError::PageOutOfRange {
                page,
                page_count: self.page_count,
            });
        }
        // page < page_count, and page_count × page_size fits in a u64 (checked when the file
        // was created, or measured by the file system).
        Ok(page.0 * self.page_size.bytes() as u64)
    }
}

/// Maps an I/O error on `path` to a [`FileMemoryError::Io`] saying what failed.
pub(super) fn io_error<'path>(
    action: &'static str,
    path: &'path Path,
) -> impl Fn(std::io::Error) -> FileMemoryError + 'path {
    move |source| FileMemoryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
