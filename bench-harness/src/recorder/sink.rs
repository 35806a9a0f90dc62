//! Where recorded pages go: the trace writer, or memory (tests, small recordings).

use std::io;
use std::time::Duration;

use pagewire_codec::PageNumber;

/// The pages recorded in one epoch with their new contents, in scan (address) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochPages {
    page_size: usize,
    numbers: Vec<PageNumber>,
    contents: Vec<u8>,
}

impl EpochPages {
    /// An empty epoch for pages of `page_size` bytes.
    pub fn new(page_size: usize) -> Self {
        Self {
            page_size,
            numbers: Vec::new(),
            contents: Vec::new(),
        }
    }

    /// Adds a page (`content.len()` must be the page size).
    pub fn push(&mut self, page: PageNumber, content: &[u8]) {
        debug_assert_eq!(content.len(), self.page_size);
        self.numbers.push(page);
        self.contents.extend_from_slice(content);
    }

    /// Empties the epoch, keeping its buffers.
    pub fn clear(&mut self) {
        self.numbers.clear();
        self.contents.clear();
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether no page was recorded.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// The pages and their contents.
    pub fn iter(&self) -> impl Iterator<Item = (PageNumber, &[u8])> {
        self.numbers
            .iter()
            .copied()
            .zip(self.contents.chunks_exact(self.page_size.max(1)))
    }
}

/// The initial image a sink holds until the first epoch (or the end), then hands on once:
/// initial pages that come after that are refused.
#[derive(Debug)]
pub(crate) struct HeldImage(Option<EpochPages>);

impl HeldImage {
    /// An empty image of pages of `page_size` bytes.
    pub(crate) fn new(page_size: usize) -> HeldImage {
        HeldImage(Some(EpochPages::new(page_size)))
    }

    /// Adds a page, unless the image was taken already.
    pub(crate) fn push(&mut self, page: PageNumber, content: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            Some(image) => {
                image.push(page, content);
                Ok(())
            }
            None => Err(io::Error::other(
                "initial pages must come before the first epoch",
            )),
        }
    }

    /// The image, the first time only.
    pub(crate) fn take(&mut self) -> Option<EpochPages> {
        self.0.take()
    }
}

/// Receives a recording as it is made.
pub trait EpochSink {
    /// A page of the initial image (pages never given are zeros).
    fn initial_page(&mut self, page: PageNumber, content: &[u8]) -> io::Result<()>;
    /// One epoch: the pages written since the previous scan, at `offset` from the start of the
    /// recording (the time of the scan that saw them).
    fn epoch(&mut self, offset: Duration, pages: &EpochPages) -> io::Result<()>;
}

/// One recorded epoch kept in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEpoch {
    /// Time of the scan from the start of the recording.
    pub offset: Duration,
    /// The pages written, with contents.
    pub pages: EpochPages,
}

/// Keeps a whole recording in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySink {
    /// Initial image pages that are not zero.
    pub initial: Vec<(PageNumber, Vec<u8>)>,
    /// The epochs in order.
    pub epochs: Vec<RecordedEpoch>,
}

impl EpochSink for MemorySink {
    fn initial_page(&mut self, page: PageNumber, content: &[u8]) -> io::Result<()> {
        self.initial.push((page, content.to_vec()));
        Ok(())
    }

    fn epoch(&mut self, offset: Duration, pages: &EpochPages) -> io::Result<()> {
        self.epochs.push(RecordedEpoch {
            offset,
            pages: pages.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_image_is_handed_on_once_and_then_refuses_pages() {
        let mut held = HeldImage::new(4);
        held.push(PageNumber(2), &[1, 2, 3, 4]).unwrap();
        let image = held.take().unwrap();
        assert_eq!(
            image.iter().collect::<Vec<_>>(),
            [(PageNumber(2), &[1u8, 2, 3, 4][..])]
        );
        assert!(held.take().is_none());
        assert!(held.push(PageNumber(3), &[0; 4]).is_err());
    }
}
