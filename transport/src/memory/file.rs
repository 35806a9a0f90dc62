//! A guest memory backed by a file, read and written with positional I/O.
//!
//! [`FileMemory`] copies each page once through the page cache with `pread`/`pwrite`
//! ([`FileExt`]): no `unsafe`, and a file that another process shortens or writes only makes
//! a read fail or come out torn (covered by dirty tracking, see [`SourceMemory`]). A full disk
//! is an error on the write that needed the space. [`MappedMemory`](super::MappedMemory)
//! maps the file instead: no system call per page, and pages decoded in place.

use std::os::unix::fs::FileExt;
use std::path::Path;

use pagewire_codec::memory::{DestinationMemory, MemoryError, SourceMemory};
use pagewire_codec::{PageCount, PageNumber, PageSize};

use super::image::{Access, FileMemoryError, ImageFile};

/// A guest memory held in a file: page `n` is at offset `n × page_size`.
#[derive(Debug)]
pub struct FileMemory {
    image: ImageFile,
}

impl FileMemory {
    /// Opens an existing memory image for reading and writing; its length must be a whole
    /// number of pages.
    pub fn open(path: &Path, page_size: PageSize) -> Result<FileMemory, FileMemoryError> {
        let image = ImageFile::open(path, page_size, Access::ReadWrite)?;
        Ok(FileMemory { image })
    }

    /// Creates (or truncates) a file holding an all-zero memory of `page_count` pages. The
    /// file is sparse until pages are written.
    pub fn create(
        path: &Path,
        page_size: PageSize,
        page_count: PageCount,
    ) -> Result<FileMemory, FileMemoryError> {
        let image = ImageFile::create(path, page_size, page_count)?;
        Ok(FileMemory { image })
    }

    /// Flushes written pages to the storage device.
    pub fn sync(&self) -> std::io::Result<()> {
        self.image.file.sync_data()
    }
}

impl SourceMemory for FileMemory {
    fn page_size(&self) -> PageSize {
        self.image.layout.page_size
    }

    fn page_count(&self) -> PageCount {
        self.image.layout.page_count
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        let offset = self.image.layout.offset(page, out.len())?;
        self.image.file.read_exact_at(out, offset)?;
        Ok(())
    }
}

impl DestinationMemory for FileMemory {
    fn page_size(&self) -> PageSize {
        self.image.layout.page_size
    }

    fn page_count(&self) -> PageCount {
        self.image.layout.page_count
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        SourceMemory::read_page(self, page, out)
    }

    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        let offset = self.image.layout.offset(page, bytes.len())?;
        self.image.file.write_all_at(bytes, offset)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FileMemory;

    super::super::backend_tests::file_backed_tests!(FileMemory);
}
