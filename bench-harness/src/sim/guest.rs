//! [`Guest`]: the source VM replaying a trace on the simulated clock.
//!
//! The guest has its own clock (trace time), which advances with simulated time at the speed
//! the throttle leaves it (full speed: 1 s per s; suspended: not at all). An epoch lands when
//! the guest clock reaches its timestamp: the reader decodes it then (so the reader's image is
//! the source's memory at that moment) and its pages are marked in the dirty log. When the
//! guest clock passes the trace's end, the trace's epochs are replayed from the first one, and
//! the replay is counted.
//!
//! A replay continues the program; it does not restore the trace's initial image. The image is
//! a snapshot of the program's memory when recording began, not something the program does: a
//! program that keeps running never rewrites every page it touches in one instant, and never
//! turns its memory back to an earlier state. Restoring it would dirty every page the trace
//! ever writes at once — for `redis.trace` 1722 pages, 3.5 epochs' worth of writes, for a
//! sequential writer its whole region — and change each by the difference between the trace's
//! last and first image, which is no write the program made. Instead, the first epoch's writes
//! land at their time offset on the memory as the last epoch left it, and so on: the guest
//! keeps its write pattern (which pages, when, how many) and every write changes its page by as
//! much as the recorded write did (an XOR delta changes the same bytes on the current content,
//! a full or zero write sets the recorded content, an unchanged write changes nothing), so the
//! encoder's deltas and identical rewrites cost what they cost in the trace. What is lost is
//! only that the contents after a replay no longer equal a state the recorded program was in
//! ([`TraceReader::rewind_epochs`]).
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
                    self.replay()?;
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

    /// Starts the trace's epochs over on the current memory (see the module documentation):
    /// nothing is written at this instant.
    fn replay(&mut self) -> Result<(), TraceReadError> {
        self.reader.rewind_epochs()?;
        self.next_epoch = 0;
        self.replays += 1;
        self.trace_time = Duration::ZERO;
        Ok(())
    }
}
