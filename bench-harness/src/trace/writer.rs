//! [`TraceWriter`]: writes a trace to any [`Write`], epoch by epoch, in bounded memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pagewire_codec::zero::is_zero;
use pagewire_codec::{PageBitmap, PageCount, PageNumber};

use super::block::BlockEncoder;
use super::bytes::{put_varint, zigzag};
use super::delta;
use super::error::TraceWriteError;
use super::footer::TraceSummary;
use super::format::{MAX_BLOCK_UNCOMPRESSED, MAX_PAGE_COUNT, tag};
use super::header::{ContentMode, TraceHeader};
use super::history::PageHistory;
use super::sink::TraceSink;

/// Tuning of a [`TraceWriter`]; the defaults suit recorders and generators alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// zstd level of the blocks (default 3).
    pub zstd_level: i32,
    /// Uncompressed bytes at which a block is closed (default 1 MiB; clamped to
    /// 64 KiB..=4 MiB).
    pub block_bytes: usize,
    /// Budget of the cache of previous page versions used for deltas (default 1 GiB; pages
    /// beyond it are stored whole). Only the pages written occupy memory.
    pub delta_cache_bytes: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            zstd_level: 3,
            block_bytes: 1 << 20,
            delta_cache_bytes: 1 << 30,
        }
    }
}

/// How [`TraceWriter::write_page`] stored a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredAs {
    /// The whole page.
    Full,
    /// An XOR delta against the previous version, of this many bytes.
    Delta(usize),
    /// Nothing but the page number: the content equals the previous version.
    Unchanged,
    /// Nothing but the page number: the new content is all zero.
    Zero,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Initial,
    InEpoch,
    BetweenEpochs,
}

/// Writes a trace (`spec/trace.md`) to `W`, one epoch at a time.
///
/// Memory: one block buffer (about [`WriterOptions::block_bytes`] plus a page), for content
/// traces 8 bytes per page of hashes plus the delta cache
/// ([`WriterOptions::delta_cache_bytes`]), and two bitmaps of one bit per page.
///
/// ```
/// use std::time::Duration;
/// use pagewire_bench::trace::{ContentMode, TraceHeader, TraceReader, TraceWriter, Epoch};
/// use pagewire_codec::{PageCount, PageNumber, PageSize};
///
/// let header = TraceHeader::new(PageSize::KIB_4, ContentMode::Full, PageCount(4));
/// let mut writer = TraceWriter::new(Vec::new(), header)?;
/// writer.write_initial_page(PageNumber(1), &[7u8; 4096])?;
/// writer.begin_epoch(Duration::from_millis(100))?;
/// writer.write_page(PageNumber(1), &[7u8; 4096])?; // identical rewrite
/// writer.write_page(PageNumber(2), &[1u8; 4096])?;
/// writer.end_epoch()?;
/// let (bytes, summary) = writer.finish()?;
/// assert_eq!((summary.epochs, summary.pages_written, summary.pages_unchanged), (1, 2, 1));
///
/// let mut reader = TraceReader::from_reader(std::io::Cursor::new(bytes), Default::default())?;
/// let mut epoch = Epoch::default();
/// assert!(reader.next_epoch(&mut epoch)?);
/// assert_eq!(epoch.writes.len(), 2);
/// assert_eq!(reader.page(PageNumber(2))?, &[1u8; 4096][..]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TraceWriter<W: Write> {
    out: W,
    offset: u64,
    header: TraceHeader,
    block_bytes: usize,
    blocks: BlockEncoder,
    buf: Vec<u8>,
    delta_buf: Vec<u8>,
    history: Option<PageHistory>,
    state: State,
    next_pfn: u64,
    last_time: Duration,
    pending_run: Option<(u64, u64)>,
    epoch_pages: u64,
    seen_in_epoch: PageBitmap,
    written_ever: PageBitmap,
    summary: TraceSummary,
}

impl TraceWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes the header into it.
    pub fn create(path: impl AsRef<Path>, header: TraceHeader) -> Result<Self, TraceWriteError> {
        let file = File::create(path)?;
        TraceWriter::new(BufWriter::with_capacity(1 << 20, file), header)
    }
}

impl<W: Write> TraceWriter<W> {
    /// A writer with default options; writes the header at once.
    pub fn new(out: W, header: TraceHeader) -> Result<Self, TraceWriteError> {
        Self::with_options(out, header, WriterOptions::default())
    }

    /// A writer with `options`; writes the header at once.
    pub fn with_options(
        mut out: W,
        header: TraceHeader,
        options: WriterOptions,
    ) -> Result<Self, TraceWriteError> {
        let bytes = header.encode()?;
        out.write_all(&bytes)?;
        let page_size = header.page_size.bytes();
        let history = (header.content == ContentMode::Full)
            .then(|| PageHistory::new(page_size, header.page_count, options.delta_cache_bytes));
        let max_block = MAX_BLOCK_UNCOMPRESSED as usize - page_size - 64;
        Ok(TraceWriter {
            out,
            offset: bytes.len() as u64,
            block_bytes: options
                .block_bytes
                .clamp(64 << 10, (4 << 20).min(max_block)),
            blocks: BlockEncoder::new(options.zstd_level)?,
            buf: Vec::new(),
            delta_buf: Vec::with_capacity(page_size),
            history,
            state: State::Initial,
            next_pfn: 0,
            last_time: Duration::ZERO,
            pending_run: None,
            epoch_pages: 0,
            seen_in_epoch: PageBitmap::new(header.page_count),
            written_ever: PageBitmap::new(header.page_count),
            summary: TraceSummary {
                page_count: header.page_count,
                ..TraceSummary::default()
            },
            header,
        })
    }

    /// The header this writer wrote.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Totals so far (the footer's values if the trace ended now).
    pub fn summary(&self) -> &TraceSummary {
        &self.summary
    }

    /// Sets a non-zero page of the initial image; all-zero content is accepted and costs
    /// nothing. Only before the first epoch; each page at most once.
    pub fn write_initial_page(
        &mut self,
        page: PageNumber,
        content: &[u8],
    ) -> Result<(), TraceWriteError> {
        if self.state != State::Initial {
            return Err(TraceWriteError::OutOfOrder(
                "initial pages must come before the first epoch",
            ));
        }
        self.check_content(content)?;
        self.check_new_in_epoch(page)?;
        if is_zero(content) {
            return Ok(());
        }
        self.push_entry_head(tag::INITIAL_PAGE, page);
        self.buf.extend_from_slice(content);
        let history = self.history.as_mut().expect("content mode has a history");
        history.record(page, content, PageHistory::hash(content));
        self.summary.initial_pages += 1;
        self.maybe_flush()
    }

    /// Starts an epoch at `time` after the start of the trace (not before the previous
    /// epoch's time).
    pub fn begin_epoch(&mut self, time: Duration) -> Result<(), TraceWriteError> {
        if self.state == State::InEpoch {
            return Err(TraceWriteError::OutOfOrder("begin_epoch inside an epoch"));
        }
        if time < self.last_time {
            return Err(TraceWriteError::TimeWentBackwards {
                previous: self.last_time,
                given: time,
            });
        }
        if self.state == State::Initial || self.epoch_pages > 0 {
            self.seen_in_epoch = PageBitmap::new(self.page_count());
        }
        self.state = State::InEpoch;
        self.last_time = time;
        self.next_pfn = 0;
        self.epoch_pages = 0;
        self.buf.push(tag::EPOCH_BEGIN);
        put_varint(
            &mut self.buf,
            u64::try_from(time.as_nanos()).unwrap_or(u64::MAX),
        );
        Ok(())
    }

    /// Records a write of `page` with `content` in the current epoch (content traces only)
    /// and says how it was stored.
    pub fn write_page(
        &mut self,
        page: PageNumber,
        content: &[u8],
    ) -> Result<StoredAs, TraceWriteError> {
        self.check_content(content)?;
        self.check_epoch_write(page)?;
        let page_size = self.header.page_size.bytes();
        let history = self.history.as_mut().expect("content mode has a history");
        let hash = PageHistory::hash(content);
        let previous = history.previous(page);
        let unchanged = hash == history.hash_of(page) && previous.is_none_or(|p| p == content);
        self.delta_buf.clear();
        let stored = if unchanged {
            StoredAs::Unchanged
        } else if is_zero(content) {
            StoredAs::Zero
        } else if previous
            .is_some_and(|p| delta::encode(p, content, &mut self.delta_buf, page_size - 16))
        {
            StoredAs::Delta(self.delta_buf.len())
        } else {
            StoredAs::Full
        };
        if stored != StoredAs::Unchanged {
            history.record(page, content, hash);
        }
        let entry_tag = match stored {
            StoredAs::Full => tag::PAGE_FULL,
            StoredAs::Delta(_) => tag::PAGE_DELTA,
            StoredAs::Unchanged => tag::PAGE_UNCHANGED,
            StoredAs::Zero => tag::PAGE_ZERO,
        };
        self.push_entry_head(entry_tag, page);
        match stored {
            StoredAs::Full => {
                self.buf.extend_from_slice(content);
                self.summary.pages_full += 1;
            }
            StoredAs::Delta(len) => {
                put_varint(&mut self.buf, len as u64);
                self.buf.extend_from_slice(&self.delta_buf);
                self.summary.pages_delta += 1;
                self.summary.delta_bytes += len as u64;
            }
            StoredAs::Unchanged => self.summary.pages_unchanged += 1,
            StoredAs::Zero => self.summary.pages_zero += 1,
        }
        self.count_write(page);
        self.maybe_flush()?;
        Ok(stored)
    }

    /// Records a write of `page` in the current epoch without content (dirty-only traces
    /// only). Consecutive pages are stored as runs.
    pub fn write_dirty(&mut self, page: PageNumber) -> Result<(), TraceWriteError> {
        if self.header.content != ContentMode::DirtyOnly {
            return Err(TraceWriteError::WrongContentMode("write_dirty"));
        }
        self.check_epoch_write(page)?;
        match &mut self.pending_run {
            Some((start, len)) if *start + *len == page.0 => *len += 1,
            _ => {
                self.flush_run()?;
                self.pending_run = Some((page.0, 1));
            }
        }
        self.summary.pages_dirty += 1;
        self.count_write(page);
        Ok(())
    }

    /// Ends the current epoch.
    pub fn end_epoch(&mut self) -> Result<(), TraceWriteError> {
        if self.state != State::InEpoch {
            return Err(TraceWriteError::OutOfOrder("end_epoch outside an epoch"));
        }
        self.flush_run()?;
        self.buf.push(tag::EPOCH_END);
        self.state = State::BetweenEpochs;
        self.summary.epochs += 1;
        self.summary.duration = self.last_time;
        self.summary.max_epoch_pages = self.summary.max_epoch_pages.max(self.epoch_pages);
        self.maybe_flush()
    }

    /// Grows the memory to `page_count` pages; the new pages are zero. The final count goes
    /// into the footer, which readers consult before replaying.
    pub fn grow(&mut self, page_count: PageCount) -> Result<(), TraceWriteError> {
        if page_count < self.page_count() || page_count.0 > MAX_PAGE_COUNT {
            return Err(TraceWriteError::BadPageCount(page_count));
        }
        if page_count == self.page_count() {
            return Ok(());
        }
        if let Some(history) = &mut self.history {
            history.grow(page_count);
        }
        self.seen_in_epoch = grown(&self.seen_in_epoch, page_count);
        self.written_ever = grown(&self.written_ever, page_count);
        self.summary.page_count = page_count;
        Ok(())
    }

    /// Writes the last block, the footer and the trailer, flushes, and returns the output
    /// with the trace's totals. Fails inside an epoch.
    pub fn finish(mut self) -> Result<(W, TraceSummary), TraceWriteError> {
        if self.state == State::InEpoch {
            return Err(TraceWriteError::OutOfOrder("finish inside an epoch"));
        }
        self.flush_block()?;
        self.summary.distinct_pages_written = self.written_ever.count();
        let footer = self.summary.encode(self.offset);
        self.out.write_all(&footer)?;
        self.out.flush()?;
        Ok((self.out, self.summary))
    }

    fn page_count(&self) -> PageCount {
        self.summary.page_count
    }

    fn check_content(&self, content: &[u8]) -> Result<(), TraceWriteError> {
        if self.header.content != ContentMode::Full {
            return Err(TraceWriteError::WrongContentMode("page content"));
        }
        if content.len() != self.header.page_size.bytes() {
            return Err(TraceWriteError::WrongPageLength {
                expected: self.header.page_size.bytes(),
                got: content.len(),
            });
        }
        Ok(())
    }

    fn check_epoch_write(&mut self, page: PageNumber) -> Result<(), TraceWriteError> {
        if self.state != State::InEpoch {
            return Err(TraceWriteError::OutOfOrder("page write outside an epoch"));
        }
        self.check_new_in_epoch(page)
    }

    fn check_new_in_epoch(&mut self, page: PageNumber) -> Result<(), TraceWriteError> {
        if !self.page_count().contains(page) {
            return Err(TraceWriteError::PageOutOfRange {
                page,
                count: self.page_count(),
            });
        }
        if self.seen_in_epoch.contains(page) {
            return Err(TraceWriteError::DuplicatePage(page));
        }
        self.seen_in_epoch.insert(page);
        Ok(())
    }

    fn count_write(&mut self, page: PageNumber) {
        self.summary.pages_written += 1;
        self.epoch_pages += 1;
        self.written_ever.insert(page);
    }

    fn push_entry_head(&mut self, entry_tag: u8, page: PageNumber) {
        self.buf.push(entry_tag);
        put_varint(
            &mut self.buf,
            zigzag(page.0.wrapping_sub(self.next_pfn) as i64),
        );
        self.next_pfn = page.0 + 1;
    }

    fn flush_run(&mut self) -> Result<(), TraceWriteError> {
        if let Some((start, len)) = self.pending_run.take() {
            self.buf.push(tag::DIRTY_RUN);
            put_varint(
                &mut self.buf,
                zigzag(start.wrapping_sub(self.next_pfn) as i64),
            );
            put_varint(&mut self.buf, len);
            self.next_pfn = start + len;
            self.maybe_flush()?;
        }
        Ok(())
    }

    fn maybe_flush(&mut self) -> Result<(), TraceWriteError> {
        if self.buf.len() >= self.block_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), TraceWriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self.blocks.write(&mut self.out, &self.buf)?;
        self.offset += written.total;
        self.summary.blocks += 1;
        self.summary.uncompressed_bytes += self.buf.len() as u64;
        self.summary.compressed_bytes += written.compressed;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> TraceSink for TraceWriter<W> {
    fn write_initial_page(
        &mut self,
        page: PageNumber,
        content: &[u8],
    ) -> Result<(), TraceWriteError> {
        TraceWriter::write_initial_page(self, page, content)
    }
    fn begin_epoch(&mut self, time: Duration) -> Result<(), TraceWriteError> {
        TraceWriter::begin_epoch(self, time)
    }
    fn write_page(&mut self, page: PageNumber, content: &[u8]) -> Result<(), TraceWriteError> {
        TraceWriter::write_page(self, page, content).map(|_| ())
    }
    fn write_dirty(&mut self, page: PageNumber) -> Result<(), TraceWriteError> {
        TraceWriter::write_dirty(self, page)
    }
    fn end_epoch(&mut self) -> Result<(), TraceWriteError> {
        TraceWriter::end_epoch(self)
    }
    fn grow(&mut self, page_count: PageCount) -> Result<(), TraceWriteError> {
        TraceWriter::grow(self, page_count)
    }
}

/// `bitmap` over a larger memory, with the same pages set.
fn grown(bitmap: &PageBitmap, page_count: PageCount) -> PageBitmap {
    let mut words = bitmap.words().to_vec();
    words.resize(page_count.0.div_ceil(64) as usize, 0);
    PageBitmap::from_words(page_count, words).expect("growing keeps bits inside the count")
}
