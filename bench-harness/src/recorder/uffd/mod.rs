//! Exact write tracking: userfaultfd write-protection in async mode, read and re-armed with the
//! `PAGEMAP_SCAN` ioctl (Linux 6.7 and later).
//!
//! How it works:
//! 1. The target creates a userfaultfd in async write-protect mode itself: a userfaultfd
//!    belongs to the memory of the process that creates it. The preload library ([`preload`],
//!    loaded with `LD_PRELOAD`) does this when the program starts, and nothing else.
//! 2. The recorder takes a duplicate of that descriptor with `pidfd_getfd` (`locate` finds
//!    it in `/proc/PID/fd`) and registers the target's writable private ranges for
//!    write-protection with it, each time a new range appears in `/proc/PID/maps`.
//! 3. Each epoch, `PAGEMAP_SCAN` on `/proc/PID/pagemap` lists the pages written since the last
//!    scan (`PAGE_IS_WRITTEN`) and write-protects them again in the same walk
//!    (`PM_SCAN_WP_MATCHING`); `PM_SCAN_CHECK_WPASYNC` makes it fail instead of silently
//!    skipping memory that is not registered. A write to a protected page costs the target
//!    one minor fault that the kernel resolves by itself (async mode), once per page and
//!    epoch.
//!
//! The recorder then reads only the written pages, so its cost scales with the pages written,
//! and it sees pages written with the content they already had. Discarded memory
//! (`MADV_DONTNEED`) is not a write; a second, read-only scan finds pages that left RAM so the
//! recorder can record them as zeroed, as content diffing does.
//!
//! When the recorder closes its descriptor, the kernel unregisters everything and the target
//! runs on unaffected.

mod locate;
pub mod preload;
mod sys;

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::maps::{VirtualPage, WritableRange};
use super::target::ProcessId;
pub use preload::PreloadLibrary;
use sys::{PageRegion, ScanRequest};

/// Regions one `PAGEMAP_SCAN` call may return (24 bytes each).
const SCAN_REGIONS: usize = 4096;

/// Why exact write tracking is not available.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UffdError {
    /// The kernel refused a call that write tracking needs (no userfaultfd, no async
    /// write-protection, or no `PAGEMAP_SCAN`: Linux 6.7 or later is needed).
    #[error(
        "the kernel refused {call}: {source} (exact write tracking needs Linux 6.7 or later \
         with userfaultfd enabled, and CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1 unless \
         user-mode-only userfaultfds are allowed)"
    )]
    Refused {
        /// The syscall or ioctl.
        call: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The target has no userfaultfd in async write-protect mode.
    #[error(
        "pid {pid} has no userfaultfd from the pagewire preload library: start the program \
         under the recorder (`pagewire trace record --tracker uffd -- CMD`), or start it with \
         LD_PRELOAD set to the library written by `pagewire trace preload-library -o FILE`"
    )]
    NotInTarget {
        /// The target.
        pid: ProcessId,
    },
    /// A program started with the library did not create its userfaultfd in time.
    #[error(
        "pid {pid} created no userfaultfd within {} ms of starting: a statically linked \
         program ignores LD_PRELOAD, and a kernel that refuses userfaultfd makes the library \
         print why on the program's standard error",
        waited.as_millis()
    )]
    NotCreated {
        /// The target.
        pid: ProcessId,
        /// How long the recorder waited.
        waited: Duration,
    },
    /// The target exited before its userfaultfd could be taken over.
    #[error("pid {pid} exited before its userfaultfd could be taken over")]
    Exited {
        /// The target.
        pid: ProcessId,
    },
    /// Taking the descriptor over, or opening the target's pagemap, failed.
    #[error("taking over the userfaultfd of pid {pid} ({step}) failed: {source}")]
    TakeOver {
        /// The target.
        pid: ProcessId,
        /// What was being done.
        step: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The preload library could not be written.
    #[error("installing the uffd preload library failed: {0}")]
    Preload(#[source] io::Error),
}

/// Checks, in this process, that the kernel allows what exact write tracking needs: a
/// userfaultfd with async write-protection, and `PAGEMAP_SCAN`.
pub fn probe() -> Result<(), UffdError> {
    let refused = |call| move |source| UffdError::Refused { call, source };
    let uffd = sys::userfaultfd(0)
        .or_else(|error| match error.raw_os_error() {
            Some(libc::EPERM) => sys::userfaultfd(sys::UFFD_USER_MODE_ONLY),
            _ => Err(error),
        })
        .map_err(refused("userfaultfd"))?;
    sys::uffdio_api(
        uffd.as_fd(),
        sys::UFFD_FEATURE_WP_ASYNC | sys::UFFD_FEATURE_WP_UNPOPULATED,
    )
    .map_err(refused("UFFDIO_API with WP_ASYNC | WP_UNPOPULATED"))?;
    let pagemap =
        File::open("/proc/self/pagemap").map_err(refused("opening /proc/self/pagemap"))?;
    let marker = 0u8;
    let page = (std::hint::black_box(&marker) as *const u8 as u64) & !0xfff;
    let request = ScanRequest {
        start: page,
        end: page + 0x1000,
        category_mask: sys::PAGE_IS_PRESENT,
        return_mask: sys::PAGE_IS_PRESENT,
        ..ScanRequest::default()
    };
    sys::pagemap_scan(pagemap.as_fd(), &request, &mut Vec::with_capacity(1))
        .map_err(refused("PAGEMAP_SCAN"))?;
    Ok(())
}

/// A run of pages that a scan reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRun {
    /// First page.
    pub start: VirtualPage,
    /// Number of pages.
    pub pages: u64,
    /// Whether the pages are in RAM (or swapped out) rather than not populated.
    pub populated: bool,
}

/// What [`WriteTracker::take_written`] could do for a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeTracking {
    /// The range is tracked; the written pages were listed.
    Tracked,
    /// The kernel does not let this range be tracked (the caller diffs its content instead).
    Untracked,
}

/// The recorder's side of exact write tracking for one target.
#[derive(Debug)]
pub struct WriteTracker {
    pid: ProcessId,
    uffd: OwnedFd,
    pagemap: File,
    page_size: u64,
    registered: HashSet<(VirtualPage, VirtualPage)>,
    refused: HashSet<(VirtualPage, VirtualPage)>,
    regions: Vec<PageRegion>,
    swap_active: bool,
}

impl WriteTracker {
    /// Takes over the preload library's userfaultfd of a running process.
    pub fn take_over(pid: ProcessId, page_size: u64) -> Result<Self, UffdError> {
        let fd = locate::find_wp_async_uffd(pid)
            .map_err(|source| UffdError::TakeOver {
                pid,
                step: "listing /proc/PID/fd",
                source,
            })?
            .ok_or(UffdError::NotInTarget { pid })?;
        Self::take_fd(pid, fd, page_size)
    }

    /// Waits until a program just started with the preload library has created its
    /// userfaultfd (the library runs before the program's `main`), then takes it over.
    /// `exited` says whether the program is gone.
    pub fn take_over_new(
        pid: ProcessId,
        page_size: u64,
        timeout: Duration,
        exited: &mut dyn FnMut() -> bool,
    ) -> Result<Self, UffdError> {
        let started = Instant::now();
        loop {
            match Self::take_over(pid, page_size) {
                Err(UffdError::NotInTarget { .. }) if started.elapsed() < timeout => {}
                Err(UffdError::NotInTarget { .. }) => {
                    return Err(UffdError::NotCreated {
                        pid,
                        waited: started.elapsed(),
                    });
                }
                result => return result,
            }
            if exited() {
                return Err(UffdError::Exited { pid });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn take_fd(pid: ProcessId, fd: i32, page_size: u64) -> Result<Self, UffdError> {
        let step = |step| move |source| UffdError::TakeOver { pid, step, source };
        let pidfd = sys::pidfd_open(pid.0).map_err(step("pidfd_open"))?;
        let uffd = sys::pidfd_getfd(pidfd.as_fd(), fd).map_err(step("pidfd_getfd"))?;
        let pagemap = File::open(pid.proc_path("pagemap")).map_err(step("opening pagemap"))?;
        Ok(Self {
            pid,
            uffd,
            pagemap,
            page_size,
            registered: HashSet::new(),
            refused: HashSet::new(),
            regions: Vec::with_capacity(SCAN_REGIONS),
            swap_active: swap_active(),
        })
    }

    /// Whether swap was active when tracking started: then a write-protected page that was
    /// discarded cannot be told from one swapped out, and discards of such pages are not
    /// recorded.
    pub fn swap_active(&self) -> bool {
        self.swap_active
    }

    /// Ranges the kernel refused to register so far.
    pub fn untracked_ranges(&self) -> usize {
        self.refused.len()
    }

    /// Registers for write-protection every range not registered yet. A range the kernel
    /// refuses is remembered as untracked.
    pub fn register(&mut self, ranges: &[WritableRange]) {
        for range in ranges {
            let key = (range.start, range.end);
            if self.registered.contains(&key) || self.refused.contains(&key) {
                continue;
            }
            match self.register_range(range) {
                Ok(()) => self.registered.insert(key),
                Err(_) => self.refused.insert(key),
            };
        }
        // Forget ranges that are gone, so the sets stay as small as the maps.
        let live: HashSet<_> = ranges.iter().map(|r| (r.start, r.end)).collect();
        self.registered.retain(|key| live.contains(key));
        self.refused.retain(|key| live.contains(key));
    }

    fn register_range(&self, range: &WritableRange) -> io::Result<()> {
        sys::uffdio_register_wp(
            self.uffd.as_fd(),
            range.start.0 * self.page_size,
            range.pages() * self.page_size,
        )
    }

    /// Whether `range` is registered.
    pub fn is_tracked(&self, range: &WritableRange) -> bool {
        self.registered.contains(&(range.start, range.end))
    }

    /// Lists into `out` the pages of `range` written since the last call (or since it was
    /// registered: then every page counts as written) and write-protects them again.
    ///
    /// If the kernel reports memory in the range that is not registered (a mapping replaced
    /// between reading the maps and this scan), the range is registered again and scanned
    /// once more; if that fails, the range is untracked.
    pub fn take_written(
        &mut self,
        range: &WritableRange,
        out: &mut Vec<PageRun>,
    ) -> io::Result<RangeTracking> {
        let request = ScanRequest {
            flags: sys::PM_SCAN_WP_MATCHING | sys::PM_SCAN_CHECK_WPASYNC,
            start: range.start.0 * self.page_size,
            end: range.end.0 * self.page_size,
            category_inverted: 0,
            category_mask: sys::PAGE_IS_WRITTEN,
            return_mask: sys::PAGE_IS_PRESENT | sys::PAGE_IS_SWAPPED,
        };
        match self.scan(&request, out) {
            Err(error) if error.raw_os_error() == Some(libc::EPERM) => {
                if self.register_range(range).is_err() {
                    self.registered.remove(&(range.start, range.end));
                    self.refused.insert((range.start, range.end));
                    return Ok(RangeTracking::Untracked);
                }
                self.scan(&request, out)?;
            }
            result => result?,
        }
        Ok(RangeTracking::Tracked)
    }

    /// Lists into `out` the pages of `range` that are not in RAM: not populated, discarded,
    /// or (when swap is active) swapped out, which are left out as they still hold their
    /// content.
    pub fn take_absent(&mut self, range: &WritableRange, out: &mut Vec<PageRun>) -> io::Result<()> {
        let request = ScanRequest {
            flags: 0,
            start: range.start.0 * self.page_size,
            end: range.end.0 * self.page_size,
            category_inverted: sys::PAGE_IS_PRESENT,
            category_mask: sys::PAGE_IS_PRESENT,
            return_mask: sys::PAGE_IS_SWAPPED,
        };
        self.scan(&request, out)?;
        if self.swap_active {
            // A swap entry is either swapped-out content or a write-protect marker on an
            // empty page; without swap it can only be the latter.
            out.retain(|run| !run.populated);
        }
        Ok(())
    }

    /// Runs `request` over its whole range (several calls if the regions do not fit) into
    /// `out`. `populated` is set from the present and swapped bits.
    fn scan(&mut self, request: &ScanRequest, out: &mut Vec<PageRun>) -> io::Result<()> {
        out.clear();
        let mut request = *request;
        while request.start < request.end {
            let walk_end = sys::pagemap_scan(self.pagemap.as_fd(), &request, &mut self.regions)?;
            for region in &self.regions {
                let start = region.start / self.page_size;
                let end = region.end.div_ceil(self.page_size);
                out.push(PageRun {
                    start: VirtualPage(start),
                    pages: end.saturating_sub(start),
                    populated: region.categories & (sys::PAGE_IS_PRESENT | sys::PAGE_IS_SWAPPED)
                        != 0,
                });
            }
            if walk_end <= request.start || walk_end > request.end {
                return Err(io::Error::other(format!(
                    "PAGEMAP_SCAN on pid {} stopped at {walk_end:#x}, outside {:#x}..{:#x}",
                    self.pid, request.start, request.end
                )));
            }
            request.start = walk_end;
        }
        Ok(())
    }
}

/// Whether `/proc/swaps` lists an active swap area.
fn swap_active() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .map(|swaps| swaps.lines().skip(1).any(|line| !line.trim().is_empty()))
        .unwrap_or(true)
}
