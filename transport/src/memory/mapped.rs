//! A guest memory backed by a file mapped into the process.
//!
//! [`MappedMemory`] reads and writes pages with a plain memory copy, no system call, and
//! lends pages to the decoder ([`DestinationMemory::page_mut`]), which then applies deltas and
//! decompresses in place. The file is faulted in as pages are touched, so an image far larger
//! than the heap could hold is migrated without reading it first.
//!
//! # The caller's contract
//! While a `MappedMemory` lives, no other process may truncate its file: touching a page past
//! the new end raises `SIGBUS`, which kills the process. Another process writing the file
//! changes the memory under the migration: a page read while it changes is torn, which the
//! protocol survives only for pages the source also learns are dirty (or which the
//! destination's commit digest then catches). See the `mapping` module for the `unsafe`
//! this rests on.

use std::path::Path;

use pagewire_codec::memory::{DestinationMemory, MemoryError, SourceMemory};
use pagewire_codec::{PageCount, PageNumber, PageSize};

use super::image::{Access, FileMemoryError, ImageFile, Layout, io_error};
use super::mapping::{Mapping, Sharing};

/// A guest memory held in a mapped file: page `n` is at offset `n × page_size`.
#[derive(Debug)]
pub struct MappedMemory {
    mapping: Mapping,
    layout: Layout,
}

impl MappedMemory {
    /// Maps an existing memory image (a whole number of pages) for reading and writing: pages
    /// written reach the file.
    pub fn open(path: &Path, page_size: PageSize) -> Result<MappedMemory, FileMemoryError> {
        let image = ImageFile::open(path, page_size, Access::ReadWrite)?;
        MappedMemory::map(path, image, Sharing::Shared)
    }

    /// Maps an existing memory image (a whole number of pages) copy-on-write: pages written
    /// stay in this process and the file is never written (it is opened read-only).
    pub fn copy_on_write(
        path: &Path,
        page_size: PageSize,
    ) -> Result<MappedMemory, FileMemoryError> {
        let image = ImageFile::open(path, page_size, Access::Read)?;
        MappedMemory::map(path, image, Sharing::Private)
    }

    /// Creates (or truncates) a file holding an all-zero memory of `page_count` pages and maps
    /// it; pages written reach the file. The file's blocks are reserved here, so a disk too
    /// full for the memory is this error and not a `SIGBUS` when a page is first written.
    pub fn create(
        path: &Path,
        page_size: PageSize,
        page_count: PageCount,
    ) -> Result<MappedMemory, FileMemoryError> {
        let image = ImageFile::create(path, page_size, page_count)?;
        // `file_length` fits an `off_t`: `create` checked it.
        let length = image.layout.file_length()? as i64;
        if length > 0 {
            nix::fcntl::posix_fallocate(&image.file, 0, length)
                .map_err(|errno| io_error("reserve", path)(errno.into()))?;
        }
        MappedMemory::map(path, image, Sharing::Shared)
    }

    /// Writes the pages changed through a shared mapping to the file and waits for the storage
    /// device; does nothing for a [`copy_on_write`](MappedMemory::copy_on_write) memory.
    pub fn sync(&self) -> std::io::Result<()> {
        self.mapping.flush()
    }

    fn map(
        path: &Path,
        image: ImageFile,
        sharing: Sharing,
    ) -> Result<MappedMemory, FileMemoryError> {
        let layout = image.layout;
        let length =
            usize::try_from(layout.file_length()?).map_err(|_| FileMemoryError::TooLarge {
                page_count: layout.page_count,
                page_size: layout.page_size,
            })?;
        let mapping = Mapping::new(&image.file, length, sharing).map_err(io_error("map", path))?;
        Ok(MappedMemory { mapping, layout })
    }

    /// The bytes of `page` in the mapping, after checking the page and the buffer length.
    fn range(
        &self,
        page: PageNumber,
        buffer_len: usize,
    ) -> Result<std::ops::Range<usize>, MemoryError> {
        // The offset lies inside the mapping, whose length is a `usize`.
        let start = self.layout.offset(page, buffer_len)? as usize;
        Ok(start..start + buffer_len)
    }
}

impl SourceMemory for MappedMemory {
    fn page_size(&self) -> PageSize {
        self.layout.page_size
    }

    fn page_count(&self) -> PageCount {
        self.layout.page_count
    }

    /// Copies the page out: the session encodes the copy, so a page changed meanwhile changes
    /// nothing already read (the write marks it dirty and it goes again).
    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        let range = self.range(page, out.len())?;
        out.copy_from_slice(&self.mapping.bytes()[range]);
        Ok(())
    }
}

impl DestinationMemory for MappedMemory {
    fn page_size(&self) -> PageSize {
        self.layout.page_size
    }

    fn page_count(&self) -> PageCount {
        self.layout.page_count
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        SourceMemory::read_page(self, page, out)
    }

    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        let range = self.range(page, bytes.len())?;
        self.mapping.bytes_mut()[range].copy_from_slice(bytes);
        Ok(())
    }

    fn page_mut(&mut self, page: PageNumber) -> Result<Option<&mut [u8]>, MemoryError> {
        let range = self.range(page, self.layout.page_size.bytes())?;
        Ok(Some(&mut self.mapping.bytes_mut()[range]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend_tests::{file_backed_tests, page_of, scratch};
    use super::*;

    file_backed_tests!(MappedMemory);

    #[test]
    fn pages_lent_for_decoding_in_place_are_written_to_the_file() {
        let path = scratch::<MappedMemory>("in-place");
        let mut memory = MappedMemory::create(&path, PageSize::KIB_4, PageCount(2)).unwrap();
        memory.page_mut(PageNumber(1)).unwrap().unwrap()[4095] = 9;
        assert!(matches!(
            memory.page_mut(PageNumber(2)),
            Err(MemoryError::PageOutOfRange { .. })
        ));
        memory.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * 4096);
        assert_eq!(bytes.iter().position(|byte| *byte != 0), Some(2 * 4096 - 1));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_copy_on_write_memory_never_writes_its_file() {
        let path = scratch::<MappedMemory>("private");
        std::fs::write(&path, [3u8; 2 * 4096]).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&path, permissions).unwrap();
        let mut memory = MappedMemory::copy_on_write(&path, PageSize::KIB_4).unwrap();
        memory.write_page(PageNumber(0), &[8u8; 4096]).unwrap();
        memory.sync().unwrap();
        assert_eq!(page_of(&memory, PageNumber(0)), [8u8; 4096]);
        assert_eq!(page_of(&memory, PageNumber(1)), [3u8; 4096]);
        assert_eq!(std::fs::read(&path).unwrap(), [3u8; 2 * 4096]);
        std::fs::remove_file(path).unwrap();
    }
}
