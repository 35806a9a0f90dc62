//! Guest memory: read by the source, written by the destination.
//!
//! The destination side is `pagewire_codec::memory::DestinationMemory` (the decoder writes
//! through it). The source side is [`SourceMemory`], defined here until the codec's sessions
//! define their own; both use the codec's [`MemoryError`]. Backends: the codec's
//! [`InMemory`] (a `Vec`) and [`FileMemory`] (a file, with positional reads and writes).

mod file;

pub use file::{FileMemory, FileMemoryError};
pub use pagewire_codec::memory::{DestinationMemory, InMemory, MemoryError};

use pagewire_codec::{PageCount, PageNumber, PageSize};

/// A guest memory the source reads pages from.
///
/// The guest may keep running and writing while a page is read: the copy may then mix old and
/// new bytes. That is harmless because the write also marks the page dirty, so the next
/// iteration sends it again (and the final iteration runs with the guest stopped).
pub trait SourceMemory {
    /// The size of every page.
    fn page_size(&self) -> PageSize;

    /// How many pages the memory holds.
    fn page_count(&self) -> PageCount;

    /// Copies the content of `page` into `out` (exactly one page long). A page outside the
    /// memory is [`MemoryError::PageOutOfRange`], a buffer of another length
    /// [`MemoryError::WrongLength`].
    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError>;
}

impl SourceMemory for InMemory {
    fn page_size(&self) -> PageSize {
        DestinationMemory::page_size(self)
    }

    fn page_count(&self) -> PageCount {
        DestinationMemory::page_count(self)
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        DestinationMemory::read_page(self, page, out)
    }
}
