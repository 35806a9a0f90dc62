//! Guest memory: the small traits through which the source session reads guest pages
//! ([`SourceMemory`]) and the [`Decoder`](crate::decoder::Decoder) writes them at the
//! destination ([`DestinationMemory`]), and [`InMemory`], a plain in-memory implementation of
//! both.
//!
//! A hypervisor implements [`SourceMemory`] and [`DestinationMemory`] over its guest memory (an
//! mmap of guest RAM, a file, ...). The source reads a page while the guest may still write
//! it: a torn read is harmless, because the write also marks the page dirty and the dirty log
//! makes the page go again in a later iteration (at the latest in stop-and-copy). Only [`read_page`](DestinationMemory::read_page) and
//! [`write_page`](DestinationMemory::write_page) are required; a memory that can lend a page
//! mutably also implements [`page_mut`](DestinationMemory::page_mut), and the decoder then
//! applies XBZRLE deltas and decompresses pages in place, without a copy.

use crate::{PageCount, PageNumber, PageSize};

/// Why a page could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The page lies outside the memory.
    #[error("{page} is outside a memory of {page_count}")]
    PageOutOfRange {
        /// The page asked for.
        page: PageNumber,
        /// How many pages the memory holds.
        page_count: PageCount,
    },
    /// A buffer handed to the memory is not exactly one page long.
    #[error("buffer of {actual} bytes where one page of {expected} bytes was expected")]
    WrongLength {
        /// The page size.
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
    /// The memory's backing store failed (for memories backed by a file or device).
    #[error("guest memory backend failed")]
    Backend(#[from] std::io::Error),
}

/// A guest memory the source session reads pages from, page by page.
///
/// Pages are numbered `0..page_count()` and are `page_size()` bytes long.
/// [`read_page`](SourceMemory::read_page) returns [`MemoryError::PageOutOfRange`] for a page
/// outside the memory and [`MemoryError::WrongLength`] unless `out` is exactly one page long.
/// The source never writes guest memory.
pub trait SourceMemory {
    /// The size of every page.
    fn page_size(&self) -> PageSize;

    /// How many pages the memory holds.
    fn page_count(&self) -> PageCount;

    /// Copies the current content of `page` into `out` (exactly one page long).
    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError>;

    /// Lends the current content of `page` (one page long), so the source encodes and hashes
    /// it where it is, without a copy.
    ///
    /// `Ok(None)` (the default) means the memory cannot lend pages (a file, or a mapping the
    /// guest writes concurrently); the source then copies each page with
    /// [`read_page`](SourceMemory::read_page).
    fn lend_page(&self, page: PageNumber) -> Result<Option<&[u8]>, MemoryError> {
        let _ = page;
        Ok(None)
    }
}

/// The content of `page`: lent by `memory` if it can, else copied into `scratch` (one page
/// long).
pub(crate) fn page_bytes<'a, M: SourceMemory + ?Sized>(
    memory: &'a M,
    page: PageNumber,
    scratch: &'a mut [u8],
) -> Result<&'a [u8], MemoryError> {
    if let Some(bytes) = memory.lend_page(page)? {
        return Ok(bytes);
    }
    memory.read_page(page, scratch)?;
    Ok(scratch)
}

/// A guest memory the decoder writes pages into, page by page.
///
/// Pages are numbered `0..page_count()` and are `page_size()` bytes long. Every method that
/// takes a [`PageNumber`] returns [`MemoryError::PageOutOfRange`] for a page outside the
/// memory, and every buffer must be exactly one page long.
pub trait DestinationMemory {
    /// The size of every page.
    fn page_size(&self) -> PageSize;

    /// How many pages the memory holds.
    fn page_count(&self) -> PageCount;

    /// Copies the content of `page` into `out` (exactly one page long).
    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError>;

    /// Replaces the content of `page` with `bytes` (exactly one page long).
    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError>;

    /// Lends `page` mutably, so deltas are applied and pages decompressed in place.
    ///
    /// `Ok(None)` (the default) means the memory cannot lend pages; the decoder then reads the
    /// page into a buffer of its own, changes it there and writes it back.
    fn page_mut(&mut self, page: PageNumber) -> Result<Option<&mut [u8]>, MemoryError> {
        let _ = page;
        Ok(None)
    }
}

/// A guest memory held in one `Vec<u8>`: the reference [`SourceMemory`] and
/// [`DestinationMemory`], used by tests, the simulator and examples. It starts all zero.
///
/// Its inherent [`page_size`](InMemory::page_size), [`page_count`](InMemory::page_count) and
/// [`read_page`](InMemory::read_page) serve both traits, so calls need no disambiguation.
///
/// ```
/// use pagewire_codec::memory::{DestinationMemory, InMemory};
/// use pagewire_codec::{PageCount, PageNumber, PageSize};
///
/// let mut mem = InMemory::new(PageSize::KIB_4, PageCount(2)).unwrap();
/// mem.write_page(PageNumber(1), &[7u8; 4096]).unwrap();
/// assert_eq!(mem.page(PageNumber(1)).unwrap()[0], 7);
/// assert!(mem.write_page(PageNumber(2), &[7u8; 4096]).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct InMemory {
    page_size: PageSize,
    page_count: PageCount,
    bytes: Vec<u8>,
}

/// A memory of `page_count` pages of `page_size` would not fit in this machine's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a memory of {page_count} of {page_size} does not fit in the address space")]
pub struct MemoryTooLarge {
    /// The page size asked for.
    pub page_size: PageSize,
    /// The page count asked for.
    pub page_count: PageCount,
}

impl InMemory {
    /// An all-zero memory of `page_count` pages of `page_size` bytes.
    pub fn new(page_size: PageSize, page_count: PageCount) -> Result<InMemory, MemoryTooLarge> {
        let len = usize::try_from(page_count.0)
            .ok()
            .and_then(|count| count.checked_mul(page_size.bytes()))
            .ok_or(MemoryTooLarge {
                page_size,
                page_count,
            })?;
        Ok(InMemory {
            page_size,
            page_count,
            bytes: vec![0; len],
        })
    }

    /// A memory holding `bytes`, whose length must be a whole number of pages.
    pub fn from_bytes(page_size: PageSize, bytes: Vec<u8>) -> Result<InMemory, MemoryError> {
        if !bytes.len().is_multiple_of(page_size.bytes()) {
            return Err(MemoryError::WrongLength {
                expected: page_size.bytes(),
                actual: bytes.len() % page_size.bytes(),
            });
        }
        let page_count = PageCount((bytes.len() / page_size.bytes()) as u64);
        Ok(InMemory {
            page_size,
            page_count,
            bytes,
        })
    }

    /// The size of every page.
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// How many pages the memory holds.
    pub fn page_count(&self) -> PageCount {
        self.page_count
    }

    /// Copies the content of `page` into `out` (exactly one page long).
    pub fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        self.check_length(out.len())?;
        let range = self.range(page)?;
        out.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    /// The content of `page`, or `None` outside the memory.
    pub fn page(&self, page: PageNumber) -> Option<&[u8]> {
        self.range(page).ok().map(|range| &self.bytes[range])
    }

    /// The whole memory, page 0 first.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole memory, mutably (for a source that changes its guest in tests and examples).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn range(&self, page: PageNumber) -> Result<std::ops::Range<usize>, MemoryError> {
        if !self.page_count.contains(page) {
            return Err(MemoryError::PageOutOfRange {
                page,
                page_count: self.page_count,
            });
        }
        // In range: page < page_count, and page_count * page_size fits in usize (checked in
        // the constructors), so neither operation overflows.
        let start = page.index() * self.page_size.bytes();
        Ok(start..start + self.page_size.bytes())
    }

    fn check_length(&self, len: usize) -> Result<(), MemoryError> {
        if len == self.page_size.bytes() {
            Ok(())
        } else {
            Err(MemoryError::WrongLength {
                expected: self.page_size.bytes(),
                actual: len,
            })
        }
    }
}

impl std::fmt::Debug for InMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemory")
            .field("page_size", &self.page_size)
            .field("page_count", &self.page_count)
            .finish_non_exhaustive()
    }
}

impl SourceMemory for InMemory {
    fn page_size(&self) -> PageSize {
        InMemory::page_size(self)
    }

    fn page_count(&self) -> PageCount {
        InMemory::page_count(self)
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        InMemory::read_page(self, page, out)
    }

    fn lend_page(&self, page: PageNumber) -> Result<Option<&[u8]>, MemoryError> {
        self.range(page).map(|range| Some(&self.bytes[range]))
    }
}

impl DestinationMemory for InMemory {
    fn page_size(&self) -> PageSize {
        InMemory::page_size(self)
    }

    fn page_count(&self) -> PageCount {
        InMemory::page_count(self)
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        InMemory::read_page(self, page, out)
    }

    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        self.check_length(bytes.len())?;
        let range = self.range(page)?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    fn page_mut(&mut self, page: PageNumber) -> Result<Option<&mut [u8]>, MemoryError> {
        let range = self.range(page)?;
        Ok(Some(&mut self.bytes[range]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_rejects_pages_outside_and_buffers_of_wrong_length() {
        let mut mem = InMemory::new(PageSize::KIB_4, PageCount(3)).unwrap();
        let mut buf = vec![0u8; 4096];
        assert!(matches!(
            mem.read_page(PageNumber(3), &mut buf),
            Err(MemoryError::PageOutOfRange {
                page: PageNumber(3),
                page_count: PageCount(3)
            })
        ));
        assert!(matches!(
            mem.write_page(PageNumber(0), &buf[..100]),
            Err(MemoryError::WrongLength {
                expected: 4096,
                actual: 100
            })
        ));
        assert!(mem.page_mut(PageNumber(u64::MAX)).is_err());
    }

    #[test]
    fn in_memory_pages_are_independent() {
        let mut mem = InMemory::new(PageSize::KIB_4, PageCount(3)).unwrap();
        mem.write_page(PageNumber(1), &[9u8; 4096]).unwrap();
        let mut buf = vec![1u8; 4096];
        mem.read_page(PageNumber(0), &mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == 0));
        mem.read_page(PageNumber(1), &mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == 9));
        assert_eq!(mem.page(PageNumber(2)).unwrap(), &[0u8; 4096][..]);
    }

    #[test]
    fn in_memory_refuses_sizes_beyond_the_address_space() {
        assert!(InMemory::new(PageSize::MIB_2, PageCount(u64::MAX)).is_err());
        assert!(InMemory::from_bytes(PageSize::KIB_4, vec![0; 4097]).is_err());
    }
}
