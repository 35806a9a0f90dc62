//! Page-selection strategies: which pages each iteration sends, and when to stop.
//!
//! Every strategy of the live-migration literature (and ours) sits behind one sans-IO trait,
//! [`Strategy`]. It has no clock and does no I/O: the driver — the discrete-event simulator on a
//! simulated clock, or the live sender on the real one — passes time, the dirty log, the link
//! estimate and per-page cost hints in, and gets decisions out.
//!
//! # How a driver runs a strategy
//! 1. Build it, from a [`registry`] spec (`"precopy"`, `"two-fold:t1=3"`, ...) or directly.
//! 2. Optionally, before the migration starts, feed the dirty-log window (pages written in each
//!    dirty-log interval before the start) with [`Strategy::observe_history`].
//! 3. Call [`Strategy::plan`] with an [`Observation`] whose `dirty` is the dirty log harvested
//!    (read and cleared) just now. The first call carries an empty log (or whatever the guest
//!    wrote since the last `observe_history`).
//! 4. On [`Decision::Round`]: keep the guest running at [`Round::throttle`], and pull pages with
//!    [`Strategy::next_batch`], passing the *live* dirty log (pages written since the last
//!    harvest, not cleared) each time, and send each page it returns with its current content,
//!    until it returns no page. If [`Round::writes`] is [`WriteMode::Mirror`], call
//!    [`Strategy::on_write`] for every guest write and forward the page at once when told.
//!    Then harvest the dirty log and go to 3.
//! 5. On [`Decision::StopAndCopy`]: suspend the guest, harvest the dirty log one last time, send
//!    [`StopAndCopy::remaining`] plus the pages of that last harvest, then the device state.
//!    Downtime is that transfer plus a round trip.
//! 6. On [`Decision::PostCopy`]: suspend, harvest the dirty log and pass it to
//!    [`Strategy::on_suspend`], send the device state, resume the guest at the destination.
//!    Then push the pages [`Strategy::next_batch`] returns (pass an empty dirty log) and, for
//!    every page fault the destination reports, call [`Strategy::on_fault`] and send the page
//!    first when it says so. The migration is complete when `next_batch` returns no page.
//!
//! Memory is bounded: bitmaps and per-page counters (`Vec<u8>`/`Vec<u16>`/`Vec<u32>`), no
//! per-page heap objects. After the first pass, a round's cost grows with the dirty pages, plus
//! a word scan of the bitmaps (memory / 64 steps).

pub mod engine;
pub mod history_majority;
pub mod hybrid;
pub mod improved_precopy;
pub mod lru_order;
pub mod mirror;
pub mod ours;
pub mod postcopy;
pub mod precopy;
pub mod registry;
pub mod stop_and_copy;
pub mod throttle;
pub mod time_series;
pub mod two_fold;
pub mod window;

#[cfg(test)]
mod script;

use std::time::Duration;

use crate::{PageBitmap, PageCount, PageNumber, PageSize};

pub use registry::{SpecError, StrategySpec, build, names, parse_list};

/// A page-selection strategy, driven step by step by the simulator or the live sender.
///
/// The module documentation gives the order of calls. A strategy never panics on any sequence
/// of calls: a call out of place (a batch asked for after the end) returns nothing.
pub trait Strategy: Send {
    /// The registry name of the strategy (`"precopy"`, `"two-fold"`, ...).
    fn name(&self) -> &'static str;

    /// Pages written during one dirty-log interval of the window before the migration starts;
    /// the interval ended `before_start` before the start. Drivers call it zero or more times,
    /// oldest interval first, before the first [`Strategy::plan`]. Strategies that learn from
    /// history use it; the others ignore it.
    fn observe_history(&mut self, before_start: Duration, written: &PageBitmap) {
        let _ = (before_start, written);
    }

    /// Decides what happens next, at a sync point: the start of the migration or the end of a
    /// round. `observation.dirty` is the dirty log the driver has just harvested.
    fn plan(&mut self, observation: &Observation<'_>) -> Decision;

    /// The next pages of the current round (or of the post-copy background push), at most
    /// `max` of them, appended to `out`; returns how many were appended. `dirty_now` is the live
    /// dirty log: pages written since the last harvest (empty while the guest is suspended).
    /// The driver sends each returned page with its current content. Zero means the round (or
    /// the push) is over.
    fn next_batch(
        &mut self,
        dirty_now: &PageBitmap,
        max: usize,
        out: &mut Vec<PageNumber>,
    ) -> usize;

    /// In a [`WriteMode::Mirror`] round, what to do with a guest write to `page`.
    fn on_write(&mut self, page: PageNumber) -> WriteAction {
        let _ = page;
        WriteAction::Log
    }

    /// After a [`Decision::PostCopy`], the pages written between the last harvest and the
    /// suspension; they are missing at the destination too.
    fn on_suspend(&mut self, dirty: &PageBitmap) {
        let _ = dirty;
    }

    /// During post-copy, the destination faulted on `page`.
    fn on_fault(&mut self, page: PageNumber) -> FaultAction {
        let _ = page;
        FaultAction::AlreadySent
    }
}

/// The shape of the guest memory being migrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// How many pages the memory holds.
    pub page_count: PageCount,
    /// How large each page is.
    pub page_size: PageSize,
}

impl Geometry {
    /// The memory size in bytes (saturating).
    pub fn memory_bytes(&self) -> u64 {
        self.page_count
            .0
            .saturating_mul(u64::from(self.page_size.get()))
    }
}

/// The index of a round of the iterative copy; round 0 is the first pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iteration(pub u32);

/// What the driver knows at a sync point.
#[derive(Clone, Copy)]
pub struct Observation<'a> {
    /// Time since the migration started (simulated or real).
    pub now: Duration,
    /// Pages written since the previous harvest, harvested (read and cleared) just now.
    pub dirty: &'a PageBitmap,
    /// The current estimate of the link.
    pub link: LinkEstimate,
    /// Per-page cost hints from the encoder.
    pub costs: &'a dyn PageCosts,
    /// What has been sent since the migration started.
    pub progress: Progress,
}

impl std::fmt::Debug for Observation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observation")
            .field("now", &self.now)
            .field("dirty", &self.dirty)
            .field("link", &self.link)
            .field("progress", &self.progress)
            .finish()
    }
}

/// Bandwidth and round-trip time of the link, as the caller knows them: the simulator from its
/// link model, `pagewire send` from its `--rate` (without one the bandwidth stays unknown; no
/// estimate is measured on a live connection yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEstimate {
    /// Payload bytes per second (0 when unknown: rules that need it are skipped).
    pub bytes_per_second: u64,
    /// Round-trip time.
    pub rtt: Duration,
}

impl LinkEstimate {
    /// Nothing known: 0 bytes per second, no round trip.
    pub const UNKNOWN: LinkEstimate = LinkEstimate {
        bytes_per_second: 0,
        rtt: Duration::ZERO,
    };

    /// How long `bytes` take to cross the link (`None` when the bandwidth is unknown).
    pub fn transfer_time(&self, bytes: u64) -> Option<Duration> {
        (self.bytes_per_second > 0)
            .then(|| Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64))
    }
}

/// Totals since the migration started, kept by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes put on the wire (page data and control).
    pub bytes_sent: u64,
    /// Page records sent (every version of a page counts).
    pub pages_sent: u64,
}

/// Per-page cost hints from the encoder: how many bytes resending a page now would likely put
/// on the wire. A hot page whose XBZRLE delta is 20 bytes is cheap; a page rewritten with
/// identical content costs only its record header.
pub trait PageCosts {
    /// The expected wire bytes to send `page` now.
    fn resend_bytes(&self, page: PageNumber) -> u32;
}

/// Every page costs the same (a content-less trace, or no encoder hints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatCost(pub u32);

impl PageCosts for FlatCost {
    fn resend_bytes(&self, _page: PageNumber) -> u32 {
        self.0
    }
}

/// A share of guest CPU time taken away by throttling, in percent (QEMU's
/// `cpu-throttle-percentage` meaning): 0 is full speed, 99 leaves the guest 1%.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuThrottle(pub u8);

impl CpuThrottle {
    /// No throttling.
    pub const NONE: CpuThrottle = CpuThrottle(0);

    /// The share of its CPU time the guest keeps, from 0.0 to 1.0.
    pub fn guest_speed(self) -> f64 {
        f64::from(100 - self.0.min(100)) / 100.0
    }
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Another live round; pages come from [`Strategy::next_batch`].
    Round(Round),
    /// Suspend the guest and send what remains.
    StopAndCopy(StopAndCopy),
    /// Suspend, move the device state, resume at the destination, then push the rest.
    PostCopy(PostCopy),
}

/// A live round of the iterative copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// Which round this is.
    pub iteration: Iteration,
    /// How many pages the round would send if none were skipped (for progress displays).
    pub planned: PageCount,
    /// How much to slow the guest down during the round.
    pub throttle: CpuThrottle,
    /// How guest writes are handled during the round.
    pub writes: WriteMode,
}

/// How guest writes are handled during a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Writes only mark pages in the dirty log.
    Log,
    /// Every write is passed to [`Strategy::on_write`], which may ask to forward it at once.
    Mirror,
}

/// What to do with a guest write in a [`WriteMode::Mirror`] round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Only the dirty log records it (the page has not been copied yet).
    Log,
    /// Send the page's new content now, as a control signal plus the page data.
    Forward,
}

/// The end of the live rounds: the guest is suspended and the rest sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopAndCopy {
    /// Pages whose latest content the destination lacks. The driver adds the pages written
    /// between the last harvest and the suspension.
    pub remaining: PageBitmap,
    /// Why the live rounds ended.
    pub reason: StopReason,
}

/// The switch to post-copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostCopy {
    /// Pages the destination still lacks (before the final harvest the driver passes to
    /// [`Strategy::on_suspend`]); they are pushed in the background or fetched on fault.
    pub missing: PageBitmap,
    /// Why the live rounds ended.
    pub reason: StopReason,
}

/// What to do about a post-copy page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Send the page now, ahead of the background push (one round trip of stall).
    SendNow,
    /// The page has been sent already (it is in flight); the destination waits for it.
    AlreadySent,
}

/// Why a strategy ended the live rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The strategy never runs live rounds (stop-and-copy, post-copy).
    NoLiveRounds,
    /// The remaining pages fell to the threshold.
    FewPagesLeft,
    /// The expected downtime fell under the target.
    DowntimeTarget,
    /// The round limit was reached.
    RoundLimit,
    /// The data limit (a multiple of memory) was exceeded.
    DataLimit,
    /// Rounds stopped making progress (ours).
    Stalled,
    /// The single mirror pass is complete.
    PassComplete,
    /// Every stale page is held back for stop-and-copy: a round would send nothing.
    NothingToSend,
}

/// The expected wire bytes to send every page of `pages` now.
pub fn resend_cost(pages: &PageBitmap, costs: &dyn PageCosts) -> u64 {
    pages
        .iter()
        .map(|page| u64::from(costs.resend_bytes(page)))
        .sum()
}
