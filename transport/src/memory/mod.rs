//! Guest memory: read by the source, written by the destination.
//!
//! The traits are the codec's, so the sessions read and write through them directly:
//! [`SourceMemory`] (the source reads pages, possibly while the guest writes them) and
//! [`DestinationMemory`] (the decoder writes pages). Backends: the codec's [`InMemory`] (a
//! `Vec`), [`FileMemory`] (a file, with positional reads and writes) and [`MappedMemory`] (a
//! file mapped into memory, with pages decoded in place; its file must not be truncated by
//! anyone else while it is mapped, see its docs).

#[cfg(test)]
mod backend_tests;
mod file;
mod image;
mod mapped;
#[allow(unsafe_code)]
mod mapping;

pub use file::FileMemory;
pub use image::FileMemoryError;
pub use mapped::MappedMemory;
pub use pagewire_codec::memory::{DestinationMemory, InMemory, MemoryError, SourceMemory};
