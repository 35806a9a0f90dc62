//! [`Guest`]: the source VM replaying a trace on the simulated clock.
//!
//! The guest has its own clock (trace time), which advances with simulated time at the speed
//! the throttle leaves it (full speed: 1 s per s; suspended: not at all). An epoch lands when
//! the guest clock reaches its timestamp: the reader decodes it then (so the reader's image is
//! the source's memory at that moment) and its pages are marked in the dirty log. When the
//! guest clock passes the trace's end, the trace is replayed from the start: the image goes back
//! to the initial one, and every page the trace ever writes is marked dirty at that instant
//! (its content may change back), and the replay is counted.
//!
//! With `scale` N > 1, page `p` of the trace stands for pages `p + k × pages` for every copy
//! `k < N`: each write lands on all N copies. Copy `k > 0` holds the trace's content with its
//! first eight bytes XORed with `k` (zero pages stay zero), so copies do not deduplicate
//! against each other.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pagewire_codec::{PageBitmap, PageCount, PageNumber, select::CpuThrottle};

use super::timeline::Timeline;
use crate::trace::{ContentMode, Epoch, TraceReadError, TraceReader};

/// The source VM: trace replay, the dirty log and the memory contents.
pub struct Guest {
    reader: TraceReader<BufReader<File>>,
    timeline: Arc<Timeline>,
    scale: u64,
    /// The trace's pages (one copy).
    trace_pages: u64,
    /// Guest clock: trace time of the current replay.
    trace_time: Duration,
    /// The next epoch to land in the current replay.
    next_epoch: usize,
    /// Completed replays of the trace.
    replays: u32,
    /// Simulated time the guest clock was last advanced to.
    last_sim: Duration,
    throttle: CpuThrottle,
    suspended: bool,
    dirty: PageBitmap,
    epoch: Epoch,
    scratch: Vec<u8>,
    /// Guest CPU time taken by the throttle.
    cpu_lost: Duration,
}

impl Guest {
    /// A guest replaying the trace at `path` (whose [`Timeline`] is `timeline`), `scale` copies
    /// wide, with its clock at trace time zero and simulated time zero.
    pub fn open(path: &Path, timeline: Arc<Timeline>, scale: u64) -> Result<Guest, TraceReadError> {
        let mut reader = TraceReader::open(path)?;
        reader.load_initial_image()?;
        let scale = scale.max(1);
        let trace_pages = timeline.page_count.0;
        Ok(Guest {
            reader,
            scratch: vec![0; timeline.page_size.bytes()],
            dirty: PageBitmap::new(PageCount(trace_pages * scale)),
            timeline,
            scale,
            trace_pages,
            trace_time: Duration::ZERO,
            next_epoch: 0,
            replays: 0,
            last_sim: Duration::ZERO,
            throttle: CpuThrottle::NONE,
            suspended: false,
            epoch: Epoch::default(),
            cpu_lost: Duration::ZERO,
        })
    }

    /// Pages of the (scaled) memory.
    pub fn page_count(&self) -> PageCount {
        PageCount(self.trace_pages * self.scale)
    }

    /// Whether the trace holds page contents.
    pub fn has_content(&self) -> bool {
        self.timeline.content == ContentMode::Full
    }

    /// Runs the guest alone (before the migration) up to trace time `start`, calling
    /// `window(before_start, written)` for every epoch landing within `window_len` before
    /// `start`. The dirty log is cleared afterwards.
    pub fn preroll(
        &mut self,
        start: Duration,
        window_len: Duration,
        window: &mut dyn FnMut(Duration, &PageBitmap),
    ) -> Result<(), TraceReadError> {
        let mut interval = PageBitmap::new(self.page_count());
        while self.trace_time < start {
            let Some(time) = self.next_landing() else {
                break;
            };
            if time > start {
                break;
            }
            self.trace_time = time;
            interval.clear();
            self.land(&mut |page| {
                interval.insert(page);
            })?;
            if start - time <= window_len {
                window(start - time, &interval);
            }
        }
        self.trace_time = start;
        self.dirty.clear();
        Ok(())
    }

    /// Sets the throttle (from now on).
    pub fn set_throttle(&mut self, throttle: CpuThrottle) {
        self.throttle = throttle;
    }

    /// Suspends or resumes the guest (from now on).
    pub fn set_suspended(&mut self, suspended: bool) {
        self.suspended = suspended;
    }

    /// Stalls the guest for `stall` of simulated time from now on (a post-copy fault): that
    /// time does not advance the guest clock.
    pub fn stall(&mut self, stall: Duration) {
        self.last_sim += stall;
    }

    /// Advances the guest clock to simulated time `now`, landing every epoch due; calls
    /// `on_write` for every page written (after the reader's image holds its new content).
    pub fn advance_to(
        &mut self,
        now: Duration,
        on_write: &mut dyn FnMut(PageNumber),
    ) -> Result<(), TraceReadError> {
        if now <= self.last_sim {
            return Ok(());
        }
        let elapsed = now - self.last_sim;
        self.last_sim = now;
        if self.suspended {
            return Ok(());
        }
        let percent = u32::from(self.throttle.0.min(100));
        self.cpu_lost += elapsed * percent / 100;
        let mut target = self.trace_time + elapsed * (100 - percent) / 100;
        let period = self.timeline.period();
        loop {
            match self.next_landing() {
                Some(time) if time <= target => {
                    self.trace_time = time;
                    self.land(on_write)?;
                }
                None if !self.timeline.times.is_empty() && target > period => {
                    self.replay(on_write)?;
                    target -= period;
                }
                _ => break,
            }
        }
        self.trace_time = target;
        Ok(())
    }

    /// The live dirty log: pages written since the last harvest.
    pub fn dirty(&self) -> &PageBitmap {
        &self.dirty
    }

    /// Takes the dirty log, leaving it empty.
    pub fn harvest(&mut self) -> PageBitmap {
        let empty = PageBitmap::new(self.page_count());
        std::mem::replace(&mut self.dirty, empty)
    }

    /// The current content of `page` (of the scaled memory); `None` for content-less traces.
    pub fn page(&mut self, page: PageNumber) -> Result<Option<&[u8]>, TraceReadError> {
        if !self.has_content() {
            return Ok(None);
        }
        let copy = page.0 / self.trace_pages;
        let bytes = self.reader.page(PageNumber(page.0 % self.trace_pages))?;
        self.scratch.copy_from_slice(bytes);
        if copy > 0 && !pagewire_codec::zero::is_zero(&self.scratch) {
            let n = self.scratch.len().min(8);
            for (byte, key) in self.scratch[..n].iter_mut().zip(copy.to_le_bytes()) {
                *byte ^= key;
            }
        }
        Ok(Some(&self.scratch))
    }

    /// Completed replays of the trace (0 when the migration ended within one pass).
    pub fn replays(&self) -> u32 {
        self.replays
    }

    /// Guest CPU time the throttle has taken so far.
    pub fn cpu_lost(&self) -> Duration {
        self.cpu_lost
    }

    fn next_landing(&self) -> Option<Duration> {
        self.timeline.times.get(self.next_epoch).copied()
    }

    /// Decodes the next epoch and marks its writes, on every copy.
    fn land(&mut self, on_write: &mut dyn FnMut(PageNumber)) -> Result<(), TraceReadError> {
        self.reader.next_epoch(&mut self.epoch)?;
        self.next_epoch += 1;
        for write in &self.epoch.writes {
            for copy in 0..self.scale {
                let page = PageNumber(write.page.0 + copy * self.trace_pages);
                self.dirty.insert(page);
                on_write(page);
            }
        }
        Ok(())
    }

    /// Starts the trace over: the image returns to the initial one, and every page the trace
    /// writes is marked written now.
    fn replay(&mut self, on_write: &mut dyn FnMut(PageNumber)) -> Result<(), TraceReadError> {
        self.reader.rewind()?;
        self.reader.load_initial_image()?;
        self.next_epoch = 0;
        self.replays += 1;
        self.trace_time = Duration::ZERO;
        let timeline = Arc::clone(&self.timeline);
        for page in timeline.touched.iter() {
            for copy in 0..self.scale {
                let page = PageNumber(page.0 + copy * self.trace_pages);
                self.dirty.insert(page);
                on_write(page);
            }
        }
        Ok(())
    }
}
