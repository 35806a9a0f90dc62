//! Guest memory: read by the source, written by the destination.
//!
//! The traits are the codec's, so the sessions read and write through them directly:
//! [`SourceMemory`] (the source reads pages, possibly while the guest writes them) and
//! [`DestinationMemory`] (the decoder writes pages). Backends: the codec's [`InMemory`] (a
//! `Vec`) and [`FileMemory`] (a file, with positional reads and writes).

mod file;

pub use file::{FileMemory, FileMemoryError};
pub use pagewire_codec::memory::{DestinationMemory, InMemory, MemoryError, SourceMemory};
