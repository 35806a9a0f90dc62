//! [`TraceSink`]: what produces a trace (a generator, the recorder) writes into.
//!
//! [`super::TraceWriter`] is the sink that writes a file; tests use sinks that remember what
//! was written, to compare with what a reader gives back.

use std::time::Duration;

use pagewire_codec::{PageCount, PageNumber};

use super::error::TraceWriteError;

/// The calls a trace producer makes, in this order: [`TraceSink::write_initial_page`] for
/// the non-zero pages of the initial image, then for each epoch
/// [`TraceSink::begin_epoch`], any number of [`TraceSink::write_page`] (content traces) or
/// [`TraceSink::write_dirty`] (dirty-only traces) with each page at most once per epoch,
/// and [`TraceSink::end_epoch`]. [`TraceSink::grow`] may come at any point between calls.
pub trait TraceSink {
    /// Sets a page of the initial image (pages never given are zero).
    fn write_initial_page(
        &mut self,
        page: PageNumber,
        content: &[u8],
    ) -> Result<(), TraceWriteError>;
    /// Starts an epoch whose writes land at `time` after the start of the trace.
    fn begin_epoch(&mut self, time: Duration) -> Result<(), TraceWriteError>;
    /// Records that `page` was written in this epoch with `content` (possibly identical to
    /// its previous version).
    fn write_page(&mut self, page: PageNumber, content: &[u8]) -> Result<(), TraceWriteError>;
    /// Records that `page` was written in this epoch, without content.
    fn write_dirty(&mut self, page: PageNumber) -> Result<(), TraceWriteError>;
    /// Ends the current epoch.
    fn end_epoch(&mut self) -> Result<(), TraceWriteError>;
    /// Grows the memory to `page_count` pages (new pages are zero).
    fn grow(&mut self, page_count: PageCount) -> Result<(), TraceWriteError>;
}
