//! One scan of the target's writable memory: residency from pagemap, contents through
//! `/proc/PID/mem` in large reads, xxh3 digests compared with the previous scan.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use pagewire_codec::PageNumber;
use xxhash_rust::xxh3::xxh3_64;

use super::layout::{Layout, Observation, PageDigest, PageLimitReached};
use super::maps::{Backing, VirtualPage, WritableRange};
use super::pagemap::{PagemapReader, Residency};
use super::phases::{ScanPhases, timed};
use super::uffd::PageRun;

/// Pages whose pagemap entries are read at once (256 KiB of entries, 128 MiB of memory).
const PAGEMAP_CHUNK_PAGES: u64 = 32 * 1024;
/// Largest single read of memory, in pages (1 MiB at 4 KiB pages).
const READ_CHUNK_PAGES: usize = 256;

/// Counts from one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Writable private mappings listed.
    pub ranges: u64,
    /// Pages in those mappings (virtual size).
    pub mapped_pages: u64,
    /// Present pages read and hashed.
    pub pages_read: u64,
    /// Pages recorded (changed content, new non-zero pages, discarded pages now zero, and
    /// with exact write tracking pages rewritten unchanged).
    pub pages_changed: u64,
    /// Of the pages recorded, those written with the content they already had (seen only
    /// with exact write tracking).
    pub pages_unchanged: u64,
    /// Present pages that could not be read this scan (range vanished: `EIO`, `ESRCH`, ...).
    pub pages_skipped: u64,
}

impl ScanCounts {
    /// Adds the counts of another scan of other ranges.
    pub fn add(&mut self, other: ScanCounts) {
        self.ranges += other.ranges;
        self.mapped_pages += other.mapped_pages;
        self.pages_read += other.pages_read;
        self.pages_changed += other.pages_changed;
        self.pages_unchanged += other.pages_unchanged;
        self.pages_skipped += other.pages_skipped;
    }
}

/// How the recorder knows about a page it looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// Content diffing: the page is recorded only if its content changed.
    Scanned,
    /// The kernel reported it written: it is recorded even with unchanged content.
    Written,
}

/// Whether `page` lies in one of `runs` (sorted by address, not overlapping).
fn in_runs(runs: &[PageRun], page: VirtualPage) -> bool {
    let after = runs.partition_point(|run| run.start <= page);
    after > 0 && page.0 < runs[after - 1].start.0 + runs[after - 1].pages
}

/// Why a scan ended early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// `/proc/PID/pagemap` or `/proc/PID/mem` failed in a way other than a vanished range.
    #[error("reading /proc/PID/{file} failed: {source}")]
    Read {
        /// `pagemap` or `mem`.
        file: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A new page would exceed the memory cap.
    #[error(transparent)]
    PageLimit(#[from] PageLimitReached),
    /// Exact write tracking found none of the target's memory although the target lives: it
    /// executed another program, whose memory the taken-over userfaultfd does not cover.
    #[error(
        "write tracking lost the target's memory: it executed another program (exact write \
         tracking does not follow exec; record the program itself rather than a wrapper \
         script, or use --tracker diff)"
    )]
    TrackingLost,
    /// The consumer of changed pages failed (writing the trace).
    #[error("writing a recorded page failed: {0}")]
    Emit(#[source] io::Error),
}

/// Reads and hashes the target's writable memory.
#[derive(Debug)]
pub struct Scanner {
    mem: File,
    pagemap: PagemapReader,
    page_size: usize,
    zero_digest: PageDigest,
    zero_page: Vec<u8>,
    residency: Vec<Residency>,
    buffer: Vec<u8>,
    phases: ScanPhases,
}

/// Whether an error reading a range means the range (or the process) went away during the
/// scan, which only skips the range.
pub(crate) fn is_vanished_range(error: &io::Error) -> bool {
    use nix::errno::Errno;
    error.kind() == io::ErrorKind::UnexpectedEof
        || matches!(
            error.raw_os_error().map(Errno::from_raw),
            Some(Errno::EIO | Errno::ESRCH | Errno::EFAULT | Errno::ENOMEM | Errno::ENXIO)
        )
}

impl Scanner {
    /// Replaces the open `/proc/PID/mem` and `/proc/PID/pagemap` (they refer to the memory
    /// of the program running when they were opened, so they are reopened each scan to follow
    /// an `exec`).
    pub fn reopen(&mut self, mem: File, pagemap: File) {
        self.mem = mem;
        self.pagemap = PagemapReader::new(pagemap);
    }

    /// A scanner over the target's open `/proc/PID/mem` and `/proc/PID/pagemap`.
    pub fn new(mem: File, pagemap: File, page_size: usize) -> Self {
        let zero_page = vec![0; page_size];
        Self {
            mem,
            pagemap: PagemapReader::new(pagemap),
            page_size,
            zero_digest: xxh3_64(&zero_page),
            zero_page,
            residency: Vec::new(),
            buffer: vec![0; READ_CHUNK_PAGES * page_size],
            phases: ScanPhases::default(),
        }
    }

    /// The time spent in each part of the scans since the last call (the CPU time is left to
    /// the caller), and resets it.
    pub fn take_phases(&mut self) -> ScanPhases {
        std::mem::take(&mut self.phases)
    }

    /// Adds time spent asking the kernel which pages to read (exact write tracking).
    pub(crate) fn add_kernel_scan(&mut self, time: std::time::Duration) {
        self.phases.kernel_scan += time;
    }

    /// Scans `ranges`, updates `layout`, and passes every page whose content changed since the
    /// last scan (or that appeared with non-zero content) to `emit` with its new content.
    pub fn scan(
        &mut self,
        ranges: &[WritableRange],
        layout: &mut Layout,
        emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
    ) -> Result<ScanCounts, ScanError> {
        let mut counts = ScanCounts {
            ranges: ranges.len() as u64,
            ..ScanCounts::default()
        };
        for range in ranges {
            counts.mapped_pages += range.pages();
            let mut first = range.start.0;
            while first < range.end.0 {
                let count = (range.end.0 - first).min(PAGEMAP_CHUNK_PAGES);
                let (pagemap, residency) = (&mut self.pagemap, &mut self.residency);
                match timed(&mut self.phases.kernel_scan, || {
                    pagemap.read(VirtualPage(first), count as usize, residency)
                }) {
                    Ok(()) => {}
                    Err(error) if is_vanished_range(&error) => {
                        first += count;
                        continue;
                    }
                    Err(source) => {
                        return Err(ScanError::Read {
                            file: "pagemap",
                            source,
                        });
                    }
                }
                self.scan_chunk(VirtualPage(first), range.backing, layout, emit, &mut counts)?;
                first += count;
            }
        }
        Ok(counts)
    }

    /// Handles the pages of one pagemap chunk (`self.residency`, starting at `first`).
    fn scan_chunk(
        &mut self,
        first: VirtualPage,
        backing: Backing,
        layout: &mut Layout,
        emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
        counts: &mut ScanCounts,
    ) -> Result<(), ScanError> {
        let residency = std::mem::take(&mut self.residency);
        let mut index = 0;
        while index < residency.len() {
            let page = VirtualPage(first.0 + index as u64);
            match residency[index] {
                Residency::Present => {
                    let run = residency[index..]
                        .iter()
                        .take(READ_CHUNK_PAGES)
                        .take_while(|r| **r == Residency::Present)
                        .count();
                    self.scan_present_run(
                        page,
                        run,
                        backing,
                        layout,
                        emit,
                        counts,
                        Evidence::Scanned,
                    )?;
                    index += run;
                }
                Residency::Absent if backing == Backing::Anonymous => {
                    // Discarded anonymous memory reads as zeros: a page we knew with other
                    // content was (in effect) zeroed.
                    if layout
                        .digest_of(page)
                        .is_some_and(|d| d != self.zero_digest)
                    {
                        self.record(page, backing, layout, emit, counts, None, Evidence::Scanned)?;
                    }
                    index += 1;
                }
                Residency::Absent | Residency::Swapped => index += 1,
            }
        }
        self.residency = residency;
        Ok(())
    }

    /// Records the pages of `range` that the kernel reported written (`written`, from exact
    /// write tracking): every one of them is recorded, including those written with the
    /// content they already had. Pages not populated read as zeros in anonymous memory; in a
    /// file mapping they hold the file's content and are left out.
    pub fn record_written(
        &mut self,
        range: &WritableRange,
        written: &[PageRun],
        layout: &mut Layout,
        emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
    ) -> Result<ScanCounts, ScanError> {
        let mut counts = ScanCounts::default();
        for run in written {
            let end = run.start.0 + run.pages;
            let mut page = run.start.0;
            while page < end {
                if run.populated {
                    let count = (end - page).min(READ_CHUNK_PAGES as u64) as usize;
                    self.scan_present_run(
                        VirtualPage(page),
                        count,
                        range.backing,
                        layout,
                        emit,
                        &mut counts,
                        Evidence::Written,
                    )?;
                    page += count as u64;
                } else {
                    if range.backing == Backing::Anonymous {
                        self.record(
                            VirtualPage(page),
                            range.backing,
                            layout,
                            emit,
                            &mut counts,
                            None,
                            Evidence::Written,
                        )?;
                    }
                    page += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Records as zeroed the known non-zero pages of an anonymous `range` that are in
    /// `absent` runs (discarded memory reads as zeros), except those in `written` runs, which
    /// were recorded in this epoch already.
    pub fn record_discarded(
        &mut self,
        range: &WritableRange,
        absent: &[PageRun],
        written: &[PageRun],
        layout: &mut Layout,
        emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
    ) -> Result<ScanCounts, ScanError> {
        let mut counts = ScanCounts::default();
        if range.backing != Backing::Anonymous {
            return Ok(counts);
        }
        for run in absent {
            let end = VirtualPage(run.start.0 + run.pages);
            let discarded: Vec<VirtualPage> = layout
                .tracked_in(run.start, end)
                .filter(|(page, digest)| *digest != self.zero_digest && !in_runs(written, *page))
                .map(|(page, _)| page)
                .collect();
            for page in discarded {
                self.record(
                    page,
                    range.backing,
                    layout,
                    emit,
                    &mut counts,
                    None,
                    Evidence::Scanned,
                )?;
            }
        }
        Ok(counts)
    }

    /// Reads `run` present pages from `start` in one read and records them (the changed ones
    /// unless they are known to be written).
    #[allow(clippy::too_many_arguments)]
    fn scan_present_run(
        &mut self,
        start: VirtualPage,
        run: usize,
        backing: Backing,
        layout: &mut Layout,
        emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
        counts: &mut ScanCounts,
        evidence: Evidence,
    ) -> Result<(), ScanError> {
        let bytes = run * self.page_size;
        let mut filled = 0;
        let mut buffer = std::mem::take(&mut self.buffer);
        let reading = Instant::now();
        while filled < bytes {
            let offset = start.0 * self.page_size as u64 + filled as u64;
            match self.mem.read_at(&mut buffer[filled..bytes], offset) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if is_vanished_range(&error) => break,
                Err(source) => {
                    self.buffer = buffer;
                    self.phases.page_reads += reading.elapsed();
                    return Err(ScanError::Read {
                        file: "mem",
                        source,
                    });
                }
            }
        }
        let digesting = Instant::now();
        self.phases.page_reads += digesting - reading;
        let whole_pages = filled / self.page_size;
        counts.pages_read += whole_pages as u64;
        counts.pages_skipped += (run - whole_pages) as u64;
        let mut result = Ok(());
        for (i, content) in buffer[..whole_pages * self.page_size]
            .chunks_exact(self.page_size)
            .enumerate()
        {
            let page = VirtualPage(start.0 + i as u64);
            result = self.record(page, backing, layout, emit, counts, Some(content), evidence);
            if result.is_err() {
                break;
            }
        }
        self.phases.digest += digesting.elapsed();
        self.buffer = buffer;
        result
    }

    /// Observes one page's content (`None`: zeros) and emits it when it changed, or when it
    /// is known to be written.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        page: VirtualPage,
        backing: Backing,
        layout: &mut Layout,
        emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
        counts: &mut ScanCounts,
        content: Option<&[u8]>,
        evidence: Evidence,
    ) -> Result<(), ScanError> {
        let content = content.unwrap_or(&self.zero_page);
        let digest = xxh3_64(content);
        let number = match (layout.observe(page, backing, digest)?, evidence) {
            (Observation::Unchanged(_), Evidence::Scanned) => return Ok(()),
            (Observation::Unchanged(number), Evidence::Written) => {
                counts.pages_unchanged += 1;
                number
            }
            // A page that enters the memory as zeros changes nothing in the trace, where
            // every page starts as zeros.
            (Observation::New(_), _) if digest == self.zero_digest => return Ok(()),
            (Observation::New(number) | Observation::Changed(number), _) => number,
        };
        counts.pages_changed += 1;
        emit(number, content).map_err(ScanError::Emit)
    }
}
