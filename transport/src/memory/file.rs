//! A guest memory backed by a file, read and written with positional I/O.
//!
//! Why `pread`/`pwrite` ([`FileExt`]) and not mmap: a mapping of a file that another process
//! may truncate turns into `SIGBUS` on access, and handing out slices of a mapping that the
//! guest (or the trace replay) writes concurrently is a data race in Rust's model — both
//! need `unsafe` whose soundness the crate could not guarantee. Positional I/O copies each
//! page once through the page cache, at memory speed, and a concurrent writer only makes a
//! read torn (covered by dirty tracking, see [`SourceMemory`]), never undefined.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pagewire_codec::memory::{DestinationMemory, MemoryError, SourceMemory};
use pagewire_codec::{PageCount, PageNumber, PageSize};

/// Why a file could not serve as guest memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileMemoryError {
    /// The file could not be opened, created or sized.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What failed: "open", "create", "size".
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
    /// The memory asked for is larger than a file can be.
    #[error("a memory of {page_count} of {page_size} is too large for a file")]
    TooLarge {
        /// The page count asked for.
        page_count: PageCount,
        /// The page size.
        page_size: PageSize,
    },
}

/// A guest memory held in a file: page `n` is at offset `n × page_size`.
#[derive(Debug)]
pub struct FileMemory {
    file: File,
    page_size: PageSize,
    page_count: PageCount,
}

impl FileMemory {
    /// Opens an existing memory image for reading and writing; its length must be a whole
    /// number of pages.
    pub fn open(path: &Path, page_size: PageSize) -> Result<FileMemory, FileMemoryError> {
        let io = |action| {
            move |source| FileMemoryError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io("open"))?;
        let length = file.metadata().map_err(io("open"))?.len();
        let page_bytes = page_size.bytes() as u64;
        if length % page_bytes != 0 {
            return Err(FileMemoryError::NotWholePages {
                path: path.to_path_buf(),
                length,
                page_size,
            });
        }
        Ok(FileMemory {
            file,
            page_size,
            page_count: PageCount(length / page_bytes),
        })
    }

    /// Creates (or truncates) a file holding an all-zero memory of `page_count` pages. The
    /// file is sparse until pages are written.
    pub fn create(
        path: &Path,
        page_size: PageSize,
        page_count: PageCount,
    ) -> Result<FileMemory, FileMemoryError> {
        let io = |action| {
            move |source| FileMemoryError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let length = page_count
            .0
            .checked_mul(page_size.bytes() as u64)
            .filter(|length| i64::try_from(*length).is_ok())
            .ok_or(FileMemoryError::TooLarge {
                page_count,
                page_size,
            })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io("create"))?;
        file.set_len(length).map_err(io("size"))?;
        Ok(FileMemory {
            file,
            page_size,
            page_count,
        })
    }

    /// Flushes written pages to the storage device.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// The byte offset of `page`, after checking the page and the buffer length.
    fn offset(&self, page: PageNumber, buffer_len: usize) -> Result<u64, MemoryError> {
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
        // page < page_count and page_count × page_size fit in a u64 (checked when created
        // or measured by the file system).
        Ok(page.0 * self.page_size.bytes() as u64)
    }
}

impl SourceMemory for FileMemory {
    fn page_size(&self) -> PageSize {
        self.page_size
    }

    fn page_count(&self) -> PageCount {
        self.page_count
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        let offset = self.offset(page, out.len())?;
        self.file.read_exact_at(out, offset)?;
        Ok(())
    }
}

impl DestinationMemory for FileMemory {
    fn page_size(&self) -> PageSize {
        self.page_size
    }

    fn page_count(&self) -> PageCount {
        self.page_count
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        SourceMemory::read_page(self, page, out)
    }

    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        let offset = self.offset(page, bytes.len())?;
        self.file.write_all_at(bytes, offset)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pagewire-file-memory-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn pages_written_are_read_back_from_the_file_and_survive_reopening() {
        let path = scratch("roundtrip");
        let mut memory = FileMemory::create(&path, PageSize::KIB_4, PageCount(3)).unwrap();
        memory.write_page(PageNumber(2), &[5u8; 4096]).unwrap();
        drop(memory);
        let memory = FileMemory::open(&path, PageSize::KIB_4).unwrap();
        assert_eq!(SourceMemory::page_count(&memory), PageCount(3));
        let mut page = vec![1u8; 4096];
        SourceMemory::read_page(&memory, PageNumber(0), &mut page).unwrap();
        assert!(page.iter().all(|byte| *byte == 0));
        SourceMemory::read_page(&memory, PageNumber(2), &mut page).unwrap();
        assert!(page.iter().all(|byte| *byte == 5));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 4096);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn pages_outside_and_buffers_of_the_wrong_length_are_refused() {
        let path = scratch("bounds");
        let mut memory = FileMemory::create(&path, PageSize::KIB_4, PageCount(2)).unwrap();
        let mut page = vec![0u8; 4096];
        assert!(matches!(
            SourceMemory::read_page(&memory, PageNumber(2), &mut page),
            Err(MemoryError::PageOutOfRange {
                page: PageNumber(2),
                page_count: PageCount(2)
            })
        ));
        assert!(matches!(
            memory.write_page(PageNumber(0), &page[..10]),
            Err(MemoryError::WrongLength {
                expected: 4096,
                actual: 10
            })
        ));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_file_of_partial_pages_and_an_oversized_memory_are_refused() {
        let path = scratch("partial");
        std::fs::write(&path, vec![0u8; 4097]).unwrap();
        assert!(matches!(
            FileMemory::open(&path, PageSize::KIB_4),
            Err(FileMemoryError::NotWholePages { length: 4097, .. })
        ));
        assert!(matches!(
            FileMemory::create(&path, PageSize::MIB_2, PageCount(u64::MAX / 4096)),
            Err(FileMemoryError::TooLarge { .. })
        ));
        std::fs::remove_file(path).unwrap();
    }
}
