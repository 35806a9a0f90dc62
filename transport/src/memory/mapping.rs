//! A file mapped into memory: the crate's only `unsafe` code.
//!
//! Mapping a file is `unsafe` because the mapped bytes belong to the file, not to this
//! process: anything else that writes the file changes them behind Rust's references, and
//! anything that shortens the file takes pages away, so that touching them raises `SIGBUS`
//! (the process dies; no other memory is read or written). Neither can be prevented from here
//! (advisory locks do not stop a writer). [`Mapping`] therefore states the bound it keeps and
//! leaves the rest to its caller:
//!
//! - **We check the length**: the file is at least as long as the mapping when it is made, so
//!   every byte of the mapping is backed by the file at that moment.
//! - **The caller's contract**: while the mapping lives, no other process truncates the file
//!   (that would be `SIGBUS` on the next access past the new end) or writes it (that would
//!   change bytes while a page is copied or decoded; a page read while it changes is torn).
//! - **What we bound**: the users of the mapping ([`super::MappedMemory`]) hold a reference
//!   into it only for one page copy or one in-place page decode, never across calls, and the
//!   protocol tolerates a torn page: the source resends pages that were written while it
//!   read them (dirty tracking), and the destination's commit digest catches any page that
//!   arrived different from the source's.

use std::fs::File;
use std::io;

use memmap2::{MmapMut, MmapOptions};

/// Whether writes to the mapping reach the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sharing {
    /// Writes go to the file (`MAP_SHARED`); other mappings of the file see them.
    Shared,
    /// Writes stay in this process (`MAP_PRIVATE`, copy on write); the file is never written.
    /// Pages not yet written here may still show what another process writes to the file.
    Private,
}

/// The first `length` bytes of a file, mapped read-write.
#[derive(Debug)]
pub(super) struct Mapping {
    map: MmapMut,
}

impl Mapping {
    /// Maps the first `length` bytes of `file`, which must be at least that long. A
    /// [`Sharing::Shared`] mapping needs `file` opened for writing.
    pub(super) fn new(file: &File, length: usize, sharing: Sharing) -> io::Result<Mapping> {
        let file_length = file.metadata()?.len();
        if file_length < length as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file is {file_length} bytes long, shorter than the {length} mapped"),
            ));
        }
        let mut options = MmapOptions::new();
        options.len(length);
        let map = match sharing {
            // SAFETY: the file is at least `length` bytes long (checked just above) and we map
            // exactly `length` bytes, so every mapped byte is backed by the file now. That no
            // other process truncates the file while it is mapped (`SIGBUS` on access) or
            // writes it (bytes change under a page copy) is the caller's contract, documented
            // on `MappedMemory`; references into the mapping last one page copy or decode.
            Sharing::Shared => unsafe { options.map_mut(file)? },
            // SAFETY: as above; the mapping is private, so our writes never reach the file,
            // and the same contract covers truncation and writes by other processes.
            Sharing::Private => unsafe { options.map_copy(file)? },
        };
        Ok(Mapping { map })
    }

    /// The mapped bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The mapped bytes, mutably.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Writes the changed pages of a shared mapping to the file and waits for the storage
    /// device (`msync`); nothing to do for a private mapping.
    pub(super) fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }
}
