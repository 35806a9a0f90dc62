//! Residency of the target's pages from `/proc/PID/pagemap` (one 64-bit entry per page).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::maps::VirtualPage;

/// Bit 63 of a pagemap entry: the page is present in RAM.
const PRESENT: u64 = 1 << 63;
/// Bit 62 of a pagemap entry: the page is swapped out.
const SWAPPED: u64 = 1 << 62;
/// Bytes per pagemap entry.
const ENTRY_BYTES: usize = 8;

/// Where one page of the target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// In RAM: its content can be read without faulting it in.
    Present,
    /// Swapped out: its content is unchanged since it was last present.
    Swapped,
    /// Never touched, or discarded (`MADV_DONTNEED`): anonymous memory reads as zeros.
    Absent,
}

impl Residency {
    /// Decodes one pagemap entry.
    pub fn from_entry(entry: u64) -> Self {
        if entry & PRESENT != 0 {
            Self::Present
        } else if entry & SWAPPED != 0 {
            Self::Swapped
        } else {
            Self::Absent
        }
    }
}

/// Reads pagemap entries for whole ranges at once.
#[derive(Debug)]
pub struct PagemapReader {
    file: File,
    raw: Vec<u8>,
}

impl PagemapReader {
    /// Wraps an open `/proc/PID/pagemap`.
    pub fn new(file: File) -> Self {
        Self {
            file,
            raw: Vec::new(),
        }
    }

    /// Replaces `out` with the residency of `count` pages from `first`, in one read.
    pub fn read(
        &mut self,
        first: VirtualPage,
        count: usize,
        out: &mut Vec<Residency>,
    ) -> io::Result<()> {
        self.raw.resize(count * ENTRY_BYTES, 0);
        let offset = first.0 * ENTRY_BYTES as u64;
        let mut filled = 0;
        while filled < self.raw.len() {
            match self
                .file
                .read_at(&mut self.raw[filled..], offset + filled as u64)?
            {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        out.clear();
        out.extend(self.raw.chunks_exact(ENTRY_BYTES).map(|entry| {
            Residency::from_entry(u64::from_le_bytes(entry.try_into().expect("8-byte chunk")))
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_present_swapped_and_absent_entries() {
        assert_eq!(Residency::from_entry(PRESENT | 0x1234), Residency::Present);
        assert_eq!(Residency::from_entry(SWAPPED | 7), Residency::Swapped);
        assert_eq!(Residency::from_entry(0), Residency::Absent);
        // A present entry that also reports soft-dirty or exclusive bits is still present.
        assert_eq!(
            Residency::from_entry(PRESENT | 1 << 55 | 1 << 56),
            Residency::Present
        );
    }

    #[test]
    fn reads_our_own_stack_as_present() {
        let marker = [7u8; 64];
        let address = std::hint::black_box(&marker).as_ptr() as u64;
        let file = File::open("/proc/self/pagemap").unwrap();
        let mut reader = PagemapReader::new(file);
        let mut out = Vec::new();
        reader
            .read(VirtualPage(address / 4096), 1, &mut out)
            .unwrap();
        assert_eq!(out, [Residency::Present]);
    }
}
