//! Writing a recording through the trace format's [`TraceWriter`].

use std::io::{self, Write};
use std::time::Duration;

use pagewire_codec::{PageCount, PageNumber};

use super::sink::{EpochPages, EpochSink, HeldImage};
use crate::trace::{TraceSummary, TraceWriteError, TraceWriter};

/// An [`EpochSink`] that writes into a [`TraceWriter`] whose header was created with a page
/// count of zero: the memory grows as the recorder numbers new pages.
///
/// The initial image is held in memory until the first epoch (or [`TraceFileSink::finish`]),
/// because the page count is only known once the initial scan is complete and the writer must
/// know it before it takes a page.
pub struct TraceFileSink<W: Write> {
    writer: TraceWriter<W>,
    initial: HeldImage,
    page_count: u64,
}

impl<W: Write> TraceFileSink<W> {
    /// Wraps a writer that has written its header and nothing else.
    pub fn new(writer: TraceWriter<W>) -> Self {
        let page_size = writer.header().page_size.bytes();
        Self {
            page_count: writer.header().page_count.0,
            writer,
            initial: HeldImage::new(page_size),
        }
    }

    /// Grows the trace's memory to cover `pages`.
    fn cover(&mut self, pages: &EpochPages) -> Result<(), TraceWriteError> {
        let needed = pages.iter().map(|(page, _)| page.0 + 1).max().unwrap_or(0);
        if needed > self.page_count {
            self.writer.grow(PageCount(needed))?;
            self.page_count = needed;
        }
        Ok(())
    }

    /// Writes the held initial image, once.
    fn flush_initial(&mut self) -> Result<(), TraceWriteError> {
        if let Some(initial) = self.initial.take() {
            self.cover(&initial)?;
            for (page, content) in initial.iter() {
                self.writer.write_initial_page(page, content)?;
            }
        }
        Ok(())
    }

    /// Grows the memory to the recorder's final page count (pages numbered but never
    /// written stay zero), writes the footer and returns the output with the totals.
    pub fn finish(mut self, page_count: u64) -> Result<(W, TraceSummary), TraceWriteError> {
        self.flush_initial()?;
        if page_count > self.page_count {
            self.writer.grow(PageCount(page_count))?;
        }
        self.writer.finish()
    }
}

fn to_io(error: TraceWriteError) -> io::Error {
    io::Error::other(error)
}

impl<W: Write> EpochSink for TraceFileSink<W> {
    fn initial_page(&mut self, page: PageNumber, content: &[u8]) -> io::Result<()> {
        self.initial.push(page, content)
    }

    fn epoch(&mut self, offset: Duration, pages: &EpochPages) -> io::Result<()> {
        self.flush_initial().map_err(to_io)?;
        self.cover(pages).map_err(to_io)?;
        self.writer.begin_epoch(offset).map_err(to_io)?;
        for (page, content) in pages.iter() {
            self.writer.write_page(page, content).map_err(to_io)?;
        }
        self.writer.end_epoch().map_err(to_io)
    }
}

/// Why [`add_metadata`] failed (the original trace is left as it was).
#[derive(Debug, thiserror::Error)]
pub enum AddMetadataError {
    /// The recorded trace could not be read back.
    #[error("reading the recorded trace back: {0}")]
    Read(#[from] crate::trace::TraceReadError),
    /// The copy could not be written.
    #[error("writing the trace copy: {0}")]
    Write(#[from] TraceWriteError),
    /// The copy could not replace the original.
    #[error("replacing the trace with its copy: {0}")]
    Rename(#[from] io::Error),
}

/// Copies the trace at `path` into a new file with `extra` metadata added to its header, then
/// replaces the original. The recorder uses it to store figures known only at the end (its
/// own overhead, why it stopped), since a trace's header is written first.
///
/// Memory: the reader's image of the trace (its non-zero pages) plus the writer's state.
pub fn add_metadata(
    path: &std::path::Path,
    extra: impl IntoIterator<Item = (String, String)>,
) -> Result<(), AddMetadataError> {
    use crate::trace::{Epoch, TraceReader, WriteKind};

    let mut reader = TraceReader::open(path)?;
    let mut header = reader.header().clone();
    header.page_count = reader.page_count();
    header.metadata.extend(extra);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    let mut writer = TraceWriter::create(&temporary, header)?;
    reader.load_initial_image()?;
    for page in 0..reader.page_count().0 {
        writer.write_initial_page(PageNumber(page), reader.page(PageNumber(page))?)?;
    }
    let mut epoch = Epoch::default();
    while reader.next_epoch(&mut epoch)? {
        writer.begin_epoch(epoch.time)?;
        for write in &epoch.writes {
            debug_assert_ne!(write.kind, WriteKind::Dirty);
            writer.write_page(write.page, reader.page(write.page)?)?;
        }
        writer.end_epoch()?;
    }
    writer.finish()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}
