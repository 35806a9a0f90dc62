//! [`TraceReader`]: reads a trace's header and footer at once, then the initial image and the
//! epochs one at a time.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use pagewire_codec::{PageBitmap, PageCount, PageNumber, PageSize};

use super::block::BlockDecoder;
use super::bytes::{Cursor, CursorError, unzigzag};
use super::error::{Corruption, TraceReadError};
use super::footer::TraceSummary;
use super::format::{END_MAGIC, FOOTER_LEN, TRAILER_LEN, tag};
use super::header::{ContentMode, TraceHeader};
use super::image::{ImageBacking, PageImage};

/// Tuning of a [`TraceReader`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Where the memory image of a content trace is kept.
    pub image: ImageBacking,
    /// Largest image [`ImageBacking::Memory`] may allocate (default 16 GiB); larger traces
    /// need [`ImageBacking::File`].
    pub max_memory_image: u64,
    /// Largest page count accepted (default 2^32 pages, 16 TiB of 4 KiB pages): the reader
    /// allocates a bitmap of one bit per page, and a list entry per page an epoch writes.
    pub max_page_count: PageCount,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            image: ImageBacking::Memory,
            max_memory_image: 16 << 30,
            max_page_count: PageCount(1 << 32),
        }
    }
}

/// How a page was written in an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteKind {
    /// Its content changed (the reader's image holds the new content).
    Changed,
    /// It was written with content identical to its previous version.
    Unchanged,
    /// It was written; the trace holds no content (dirty-only traces).
    Dirty,
}

/// One write of one page in an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageWrite {
    /// The page written.
    pub page: PageNumber,
    /// Whether its content changed.
    pub kind: WriteKind,
}

/// One epoch as [`TraceReader::next_epoch`] gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Epoch {
    /// Position of the epoch in the trace, from 0.
    pub index: u64,
    /// When its writes land, from the start of the trace. The writes happened after the
    /// previous epoch's time and up to this one.
    pub time: Duration,
    /// The pages written, each once, in the order stored (ascending for generated and
    /// recorded traces).
    pub writes: Vec<PageWrite>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Initial,
    BetweenEpochs,
    Done,
}

/// An entry decoded from the current block; contents are ranges of the block payload.
enum Entry {
    EpochBegin(Duration),
    EpochEnd,
    Initial(PageNumber, Range<usize>),
    Full(PageNumber, Range<usize>),
    Delta(PageNumber, Range<usize>),
    Unchanged(PageNumber),
    Zero(PageNumber),
    DirtyRun(PageNumber, u64),
}

/// Reads a trace (`spec/trace.md`) from a seekable input.
///
/// Opening reads and checks the header and the footer (so [`TraceReader::summary`] is known
/// before any epoch is decoded). [`TraceReader::next_epoch`] then decodes one epoch at a
/// time, checking every block's checksum, and applies it to the reader's image.
///
/// Memory: one decompressed block (at most 8 MiB) and its compressed form, two bitmaps of
/// one bit per page, the current epoch's list of writes (16 bytes per written page), and for
/// content traces the memory image (`page_count × page_size`, of which only the non-zero
/// part is backed with [`ImageBacking::Memory`]; a sparse file with [`ImageBacking::File`]).
pub struct TraceReader<R> {
    input: R,
    header: TraceHeader,
    summary: TraceSummary,
    file_len: u64,
    data_start: u64,
    footer_offset: u64,
    block_offset: u64,
    next_block: u64,
    blocks: BlockDecoder,
    payload: Vec<u8>,
    payload_pos: usize,
    image: Option<PageImage>,
    state: State,
    pending_epoch: Option<Duration>,
    last_time: Duration,
    entries: EntryDecoder,
    seen: PageBitmap,
    seen_is_empty: bool,
    seen_blocks: u64,
    seen_uncompressed: u64,
    seen_compressed: u64,
    seen_epochs: u64,
    seen_initial: u64,
    seen_writes: u64,
    seen_unchanged: u64,
}

impl TraceReader<BufReader<File>> {
    /// Opens the trace at `path` with default options (image in memory).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceReadError> {
        Self::open_with(path, ReaderOptions::default())
    }

    /// Opens the trace at `path` with `options`.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: ReaderOptions,
    ) -> Result<Self, TraceReadError> {
        let file = File::open(path)?;
        Self::from_reader(BufReader::with_capacity(1 << 20, file), options)
    }
}

impl<R: Read + Seek> TraceReader<R> {
    /// Reads the header and footer of the trace in `input` and prepares to replay it.
    pub fn from_reader(mut input: R, options: ReaderOptions) -> Result<Self, TraceReadError> {
        let file_len = input.seek(SeekFrom::End(0))?;
        input.seek(SeekFrom::Start(0))?;
        let (header, data_start) = TraceHeader::decode(&mut input, file_len)?;
        let footer_min = data_start + (FOOTER_LEN + TRAILER_LEN) as u64;
        if file_len < footer_min {
            return Err(TraceReadError::Truncated {
                file_len,
                what: "the file ends before its footer",
            });
        }
        let mut trailer = [0u8; TRAILER_LEN];
        input.seek(SeekFrom::Start(file_len - TRAILER_LEN as u64))?;
        input.read_exact(&mut trailer)?;
        if trailer[8..] != END_MAGIC {
            return Err(TraceReadError::Truncated {
                file_len,
                what: "the file does not end with the trailer",
            });
        }
        let footer_offset = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
        if footer_offset < data_start
            || footer_offset != file_len - (FOOTER_LEN + TRAILER_LEN) as u64
        {
            return Err(TraceReadError::Corrupt {
                offset: file_len - TRAILER_LEN as u64,
                problem: Corruption::BadFooterOffset(footer_offset),
            });
        }
        let mut footer = [0u8; FOOTER_LEN];
        input.seek(SeekFrom::Start(footer_offset))?;
        input.read_exact(&mut footer)?;
        let summary = TraceSummary::decode(&footer, footer_offset)?;
        if summary.page_count > options.max_page_count {
            return Err(TraceReadError::PageCountAboveLimit {
                count: summary.page_count,
                limit: options.max_page_count,
            });
        }
        let image = match header.content {
            ContentMode::Full => {
                let needed = summary
                    .page_count
                    .0
                    .saturating_mul(header.page_size.bytes() as u64);
                if options.image == ImageBacking::Memory && needed > options.max_memory_image {
                    return Err(TraceReadError::ImageTooLarge {
                        needed,
                        limit: options.max_memory_image,
                    });
                }
                Some(PageImage::new(
                    header.page_size,
                    summary.page_count,
                    &options.image,
                )?)
            }
            ContentMode::DirtyOnly => None,
        };
        input.seek(SeekFrom::Start(data_start))?;
        let entries = EntryDecoder {
            page_count: summary.page_count,
            page_bytes: header.page_size.bytes(),
            full: header.content == ContentMode::Full,
            next_pfn: 0,
        };
        Ok(TraceReader {
            input,
            seen: PageBitmap::new(summary.page_count),
            header,
            summary,
            file_len,
            data_start,
            footer_offset,
            block_offset: data_start,
            next_block: data_start,
            blocks: BlockDecoder::new()?,
            payload: Vec::new(),
            payload_pos: 0,
            image,
            state: State::Initial,
            pending_epoch: None,
            last_time: Duration::ZERO,
            entries,
            seen_is_empty: true,
            seen_blocks: 0,
            seen_uncompressed: 0,
            seen_compressed: 0,
            seen_epochs: 0,
            seen_initial: 0,
            seen_writes: 0,
            seen_unchanged: 0,
        })
    }

    /// The trace's header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The trace's totals, from its footer.
    pub fn summary(&self) -> &TraceSummary {
        &self.summary
    }

    /// The page size.
    pub fn page_size(&self) -> PageSize {
        self.header.page_size
    }

    /// The final page count (the size of the replayed memory).
    pub fn page_count(&self) -> PageCount {
        self.summary.page_count
    }

    /// The length of the trace file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Decodes the initial image into the reader's image, if not done yet (the first
    /// [`TraceReader::next_epoch`] does it too).
    pub fn load_initial_image(&mut self) -> Result<(), TraceReadError> {
        self.read_initial_image(true)
    }

    /// Reads the initial image's entries (checking them), writing them into the image only
    /// if `apply`.
    fn read_initial_image(&mut self, apply: bool) -> Result<(), TraceReadError> {
        while self.state == State::Initial {
            match self.next_entry()? {
                Some(Entry::Initial(page, range)) => {
                    self.mark_seen(page)?;
                    if apply {
                        let image = self.image.as_mut().expect(CONTENT_HAS_IMAGE);
                        image.set(page, &self.payload[range])?;
                    }
                    self.seen_initial += 1;
                }
                Some(Entry::EpochBegin(time)) => {
                    self.pending_epoch = Some(time);
                    self.state = State::BetweenEpochs;
                }
                None => self.finish()?,
                Some(_) => {
                    return Err(
                        self.corrupt(Corruption::OutOfOrder("page write before the first epoch"))
                    );
                }
            }
        }
        Ok(())
    }

    /// Decodes the next epoch into `epoch` and applies its writes to the image; returns
    /// `false` after the last epoch (having checked the entries against the footer).
    pub fn next_epoch(&mut self, epoch: &mut Epoch) -> Result<bool, TraceReadError> {
        self.load_initial_image()?;
        if self.state == State::Done {
            return Ok(false);
        }
        let time = match self.pending_epoch.take() {
            Some(time) => time,
            None => match self.next_entry()? {
                Some(Entry::EpochBegin(time)) => time,
                None => {
                    self.finish()?;
                    return Ok(false);
                }
                Some(_) => {
                    return Err(self.corrupt(Corruption::OutOfOrder("page write outside an epoch")));
                }
            },
        };
        if time < self.last_time {
            return Err(self.corrupt(Corruption::TimeWentBackwards(time)));
        }
        self.last_time = time;
        self.entries.next_pfn = 0;
        if !self.seen_is_empty {
            self.seen = PageBitmap::new(self.summary.page_count);
            self.seen_is_empty = true;
        }
        epoch.index = self.seen_epochs;
        epoch.time = time;
        epoch.writes.clear();
        loop {
            let entry = self
                .next_entry()?
                .ok_or_else(|| self.corrupt(Corruption::UnterminatedEpoch))?;
            let (page, kind) = match entry {
                Entry::EpochEnd => break,
                Entry::Full(page, range) => {
                    self.mark_seen(page)?;
                    let image = self.image.as_mut().expect(CONTENT_HAS_IMAGE);
                    image.set(page, &self.payload[range])?;
                    (page, WriteKind::Changed)
                }
                Entry::Delta(page, range) => {
                    self.mark_seen(page)?;
                    let image = self.image.as_mut().expect(CONTENT_HAS_IMAGE);
                    if image.apply_delta(page, &self.payload[range])?.is_err() {
                        return Err(self.corrupt(Corruption::BadDelta));
                    }
                    (page, WriteKind::Changed)
                }
                Entry::Zero(page) => {
                    self.mark_seen(page)?;
                    self.image.as_mut().expect(CONTENT_HAS_IMAGE).zero(page)?;
                    (page, WriteKind::Changed)
                }
                Entry::Unchanged(page) => {
                    self.mark_seen(page)?;
                    self.seen_unchanged += 1;
                    (page, WriteKind::Unchanged)
                }
                Entry::DirtyRun(first, count) => {
                    for n in first.0..first.0 + count {
                        self.mark_seen(PageNumber(n))?;
                        epoch.writes.push(PageWrite {
                            page: PageNumber(n),
                            kind: WriteKind::Dirty,
                        });
                    }
                    self.seen_writes += count;
                    continue;
                }
                Entry::EpochBegin(_) => {
                    return Err(
                        self.corrupt(Corruption::OutOfOrder("epoch begins inside an epoch"))
                    );
                }
                Entry::Initial(..) => {
                    return Err(
                        self.corrupt(Corruption::OutOfOrder("initial page inside an epoch"))
                    );
                }
            };
            self.seen_writes += 1;
            epoch.writes.push(PageWrite { page, kind });
        }
        self.seen_epochs += 1;
        Ok(true)
    }

    /// The current content of `page`: after [`TraceReader::load_initial_image`], the initial
    /// image; after each [`TraceReader::next_epoch`], the content at the end of that epoch.
    pub fn page(&mut self, page: PageNumber) -> Result<&[u8], TraceReadError> {
        if !self.summary.page_count.contains(page) {
            return Err(TraceReadError::Corrupt {
                offset: 0,
                problem: Corruption::PageOutOfRange {
                    page: page.0,
                    count: self.summary.page_count,
                },
            });
        }
        let image = self.image.as_mut().ok_or(TraceReadError::NoContent)?;
        Ok(image.page(page)?)
    }

    /// Starts over from the initial image (to replay the trace again).
    pub fn rewind(&mut self) -> Result<(), TraceReadError> {
        if let Some(image) = &mut self.image {
            image.clear()?;
        }
        self.restart()
    }

    /// Starts the epochs over on the image as the last one left it: the initial image is
    /// read (and checked) but not applied, so replaying the epochs again applies the trace's
    /// writes to the current contents. A page written in full or as zero gets the trace's
    /// content; a delta (an XOR, see `spec/trace.md`) changes the same bytes by the same
    /// amount as it did in the trace, on whatever the page holds; an unchanged write leaves
    /// the page as it is. The contents then no longer match the trace's, but each write
    /// changes its page as much as the recorded one did.
    pub fn rewind_epochs(&mut self) -> Result<(), TraceReadError> {
        self.restart()?;
        self.read_initial_image(false)
    }

    /// Seeks back to the first entry and forgets what was decoded (not the image).
    fn restart(&mut self) -> Result<(), TraceReadError> {
        self.input.seek(SeekFrom::Start(self.data_start))?;
        self.block_offset = self.data_start;
        self.next_block = self.data_start;
        self.payload.clear();
        self.payload_pos = 0;
        self.state = State::Initial;
        self.pending_epoch = None;
        self.last_time = Duration::ZERO;
        self.entries.next_pfn = 0;
        self.seen = PageBitmap::new(self.summary.page_count);
        self.seen_is_empty = true;
        self.seen_blocks = 0;
        self.seen_uncompressed = 0;
        self.seen_compressed = 0;
        self.seen_epochs = 0;
        self.seen_initial = 0;
        self.seen_writes = 0;
        self.seen_unchanged = 0;
        Ok(())
    }

    fn mark_seen(&mut self, page: PageNumber) -> Result<(), TraceReadError> {
        if self.seen.contains(page) {
            return Err(self.corrupt(Corruption::DuplicatePage(page)));
        }
        self.seen.insert(page);
        self.seen_is_empty = false;
        Ok(())
    }

    /// Checks the totals of the entries read against the footer.
    fn finish(&mut self) -> Result<(), TraceReadError> {
        if self.pending_epoch.is_some() {
            return Err(self.corrupt(Corruption::UnterminatedEpoch));
        }
        let s = &self.summary;
        let checks = [
            ("blocks", s.blocks, self.seen_blocks),
            (
                "uncompressed_bytes",
                s.uncompressed_bytes,
                self.seen_uncompressed,
            ),
            ("compressed_bytes", s.compressed_bytes, self.seen_compressed),
            ("epochs", s.epochs, self.seen_epochs),
            ("initial_pages", s.initial_pages, self.seen_initial),
            ("pages_written", s.pages_written, self.seen_writes),
            ("pages_unchanged", s.pages_unchanged, self.seen_unchanged),
            (
                "duration_ns",
                s.duration.as_nanos() as u64,
                self.last_time.as_nanos() as u64,
            ),
        ];
        for (field, footer, actual) in checks {
            if footer != actual {
                return Err(TraceReadError::Corrupt {
                    offset: self.footer_offset,
                    problem: Corruption::FooterMismatch {
                        field,
                        footer,
                        actual,
                    },
                });
            }
        }
        self.state = State::Done;
        Ok(())
    }

    fn corrupt(&self, problem: Corruption) -> TraceReadError {
        TraceReadError::Corrupt {
            offset: self.block_offset,
            problem,
        }
    }

    /// The next entry, reading the next block when the current one is used up; `None` at
    /// the footer.
    fn next_entry(&mut self) -> Result<Option<Entry>, TraceReadError> {
        if self.payload_pos == self.payload.len() {
            if self.next_block == self.footer_offset {
                return Ok(None);
            }
            self.block_offset = self.next_block;
            let block = self.blocks.read(
                &mut self.input,
                self.block_offset,
                self.footer_offset,
                &mut self.payload,
            )?;
            self.next_block += block.total;
            self.payload_pos = 0;
            self.seen_blocks += 1;
            self.seen_uncompressed += self.payload.len() as u64;
            self.seen_compressed += block.compressed;
        }
        let mut cursor = Cursor::new(&self.payload[self.payload_pos..]);
        let entry = self
            .entries
            .decode(&mut cursor, self.payload_pos)
            .map_err(|problem| TraceReadError::Corrupt {
                offset: self.block_offset,
                problem,
            })?;
        self.payload_pos += cursor.position();
        Ok(Some(entry))
    }
}

/// Decodes entries: knows the trace's geometry and the page number the next delta is from.
struct EntryDecoder {
    page_count: PageCount,
    page_bytes: usize,
    full: bool,
    next_pfn: u64,
}

impl EntryDecoder {
    fn decode(&mut self, cursor: &mut Cursor<'_>, base: usize) -> Result<Entry, Corruption> {
        let page_bytes = self.page_bytes;
        let full = self.full;
        let entry_tag = cursor.u8().map_err(cursor_problem)?;
        let entry = match entry_tag {
            tag::EPOCH_BEGIN => Entry::EpochBegin(Duration::from_nanos(
                cursor.varint().map_err(cursor_problem)?,
            )),
            tag::EPOCH_END => Entry::EpochEnd,
            tag::INITIAL_PAGE | tag::PAGE_FULL if full => {
                let page = self.page_number(cursor)?;
                let start = base + cursor.position();
                cursor.take(page_bytes).map_err(cursor_problem)?;
                let range = start..start + page_bytes;
                if entry_tag == tag::INITIAL_PAGE {
                    Entry::Initial(page, range)
                } else {
                    Entry::Full(page, range)
                }
            }
            tag::PAGE_DELTA if full => {
                let page = self.page_number(cursor)?;
                let len = cursor.varint().map_err(cursor_problem)?;
                if len == 0 || len >= page_bytes as u64 {
                    return Err(Corruption::BadDelta);
                }
                let start = base + cursor.position();
                cursor.take(len as usize).map_err(cursor_problem)?;
                Entry::Delta(page, start..start + len as usize)
            }
            tag::PAGE_UNCHANGED if full => Entry::Unchanged(self.page_number(cursor)?),
            tag::PAGE_ZERO if full => Entry::Zero(self.page_number(cursor)?),
            tag::DIRTY_RUN if !full => {
                let delta = cursor.varint().map_err(cursor_problem)?;
                let count = cursor.varint().map_err(cursor_problem)?;
                if count == 0 {
                    return Err(Corruption::EmptyRun);
                }
                Entry::DirtyRun(self.pages(delta, count)?, count)
            }
            other => return Err(Corruption::UnexpectedTag(other)),
        };
        Ok(entry)
    }

    /// Decodes a page-number delta naming one page.
    fn page_number(&mut self, cursor: &mut Cursor<'_>) -> Result<PageNumber, Corruption> {
        let delta = cursor.varint().map_err(cursor_problem)?;
        self.pages(delta, 1)
    }

    /// The first of `count` pages named by the zigzag `delta` from the expected next page,
    /// all inside the page count; advances the expected next page past them.
    fn pages(&mut self, delta: u64, count: u64) -> Result<PageNumber, Corruption> {
        let delta = unzigzag(delta);
        let first = i128::from(self.next_pfn) + i128::from(delta);
        let end = first + i128::from(count);
        let page_count = self.page_count;
        if first < 0 || end > i128::from(page_count.0) {
            return Err(Corruption::PageOutOfRange {
                page: first.clamp(0, i128::from(u64::MAX)) as u64,
                count: page_count,
            });
        }
        self.next_pfn = end as u64;
        Ok(PageNumber(first as u64))
    }
}

const CONTENT_HAS_IMAGE: &str =
    "content traces have an image, and content entries are rejected in dirty-only traces";

fn cursor_problem(error: CursorError) -> Corruption {
    match error {
        CursorError::End => Corruption::EntryTruncated,
        CursorError::BadVarint => Corruption::BadVarint,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor as IoCursor;

    use proptest::prelude::*;

    use super::*;
    use crate::trace::block::BlockEncoder;
    use crate::trace::bytes::{put_varint, zigzag};

    /// A file with valid checksums around an arbitrary entry payload.
    fn file_with_payload(content: ContentMode, page_count: u64, payload: &[u8]) -> Vec<u8> {
        let header = TraceHeader::new(PageSize::KIB_4, content, PageCount(page_count));
        let mut bytes = header.encode().unwrap();
        let mut summary = TraceSummary {
            page_count: PageCount(page_count),
            ..TraceSummary::default()
        };
        if !payload.is_empty() {
            let block = BlockEncoder::new(1)
                .unwrap()
                .write(&mut bytes, payload)
                .unwrap();
            summary.blocks = 1;
            summary.uncompressed_bytes = payload.len() as u64;
            summary.compressed_bytes = block.compressed;
        }
        let offset = bytes.len() as u64;
        bytes.extend_from_slice(&summary.encode(offset));
        bytes
    }

    fn read(content: ContentMode, payload: &[u8]) -> Result<(), TraceReadError> {
        let bytes = file_with_payload(content, 8, payload);
        let mut reader = TraceReader::from_reader(IoCursor::new(bytes), ReaderOptions::default())?;
        let mut epoch = Epoch::default();
        while reader.next_epoch(&mut epoch)? {}
        Ok(())
    }

    fn entry(tag: u8, page: i64, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        put_varint(&mut out, zigzag(page));
        out.extend_from_slice(rest);
        out
    }

    fn epoch_of(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![tag::EPOCH_BEGIN, 1];
        entries.iter().for_each(|e| out.extend_from_slice(e));
        out.push(tag::EPOCH_END);
        out
    }

    fn problem(result: Result<(), TraceReadError>) -> Corruption {
        match result {
            Err(TraceReadError::Corrupt { problem, .. }) => problem,
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn entries_that_break_the_rules_are_named() {
        let full = ContentMode::Full;
        let unchanged = |page| entry(tag::PAGE_UNCHANGED, page, &[]);
        assert_eq!(
            problem(read(full, &epoch_of(&[unchanged(9)]))),
            Corruption::PageOutOfRange {
                page: 9,
                count: PageCount(8)
            }
        );
        // Second write of page 2: the delta from next (3) is -1.
        assert_eq!(
            problem(read(full, &epoch_of(&[unchanged(2), unchanged(-1)]))),
            Corruption::DuplicatePage(PageNumber(2))
        );
        let past_end = entry(tag::PAGE_DELTA, 0, &[4, 0x80, 0x20, 0x10, 1, 2, 3, 4]);
        assert_eq!(
            problem(read(full, &epoch_of(&[past_end]))),
            Corruption::BadDelta
        );
        assert_eq!(
            problem(read(full, &epoch_of(&[entry(tag::DIRTY_RUN, 0, &[1])]))),
            Corruption::UnexpectedTag(tag::DIRTY_RUN)
        );
        assert_eq!(
            problem(read(
                ContentMode::DirtyOnly,
                &epoch_of(&[entry(tag::DIRTY_RUN, 0, &[0])])
            )),
            Corruption::EmptyRun
        );
        assert_eq!(
            problem(read(full, &[tag::EPOCH_BEGIN, 1])),
            Corruption::UnterminatedEpoch
        );
        assert_eq!(
            problem(read(
                full,
                &[
                    tag::EPOCH_BEGIN,
                    5,
                    tag::EPOCH_END,
                    tag::EPOCH_BEGIN,
                    4,
                    tag::EPOCH_END
                ]
            )),
            Corruption::TimeWentBackwards(Duration::from_nanos(4))
        );
        assert!(matches!(
            problem(read(full, &epoch_of(&[]))),
            Corruption::FooterMismatch {
                field: "epochs",
                footer: 0,
                actual: 1
            }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_entries_never_panic(payload in proptest::collection::vec(any::<u8>(), 1..64),
                                         dirty_only in any::<bool>()) {
            let content = if dirty_only { ContentMode::DirtyOnly } else { ContentMode::Full };
            let _ = read(content, &payload);
        }
    }
}
