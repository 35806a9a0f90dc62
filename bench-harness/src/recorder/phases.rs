//! Where a scan's time goes: the recorder times each part of a scan separately, and measures
//! the CPU time of its thread, so a slow scan can be told apart from a recorder waiting for a
//! CPU on a loaded machine.

use std::ops::AddAssign;
use std::time::{Duration, Instant};

/// Wall time spent in each part of one scan (or a sum over scans).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanPhases {
    /// Asking the kernel which pages to read: `PAGEMAP_SCAN` (exact write tracking) or reading
    /// `/proc/PID/pagemap` (content diffing).
    pub kernel_scan: Duration,
    /// Reading page contents through `/proc/PID/mem`.
    pub page_reads: Duration,
    /// Hashing the pages read, updating the page numbering and handing recorded pages on.
    pub digest: Duration,
    /// CPU time of the recording thread during the scan (all parts, plus listing mappings
    /// and opening `/proc` files). Below the scan's wall time when it waited for a CPU.
    pub cpu: Duration,
}

impl AddAssign for ScanPhases {
    fn add_assign(&mut self, other: Self) {
        self.kernel_scan += other.kernel_scan;
        self.page_reads += other.page_reads;
        self.digest += other.digest;
        self.cpu += other.cpu;
    }
}

/// Runs `work` and adds its wall time to `total`.
pub(crate) fn timed<T>(total: &mut Duration, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = work();
    *total += started.elapsed();
    result
}

/// Runs `work` and adds its wall time to `wall` and the calling thread's CPU time to `cpu`.
pub(crate) fn timed_with_cpu<T>(
    wall: &mut Duration,
    cpu: &mut Duration,
    work: impl FnOnce() -> T,
) -> T {
    let cpu_started = thread_cpu_time();
    let result = timed(wall, work);
    *cpu += thread_cpu_time().saturating_sub(cpu_started);
    result
}

/// CPU time used by the calling thread so far (zero if the clock is unavailable).
pub(crate) fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let before = thread_cpu_time();
        let mut spin = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(20) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        assert!(thread_cpu_time() > before);
    }

    #[test]
    fn timed_adds_up() {
        let mut total = Duration::from_millis(5);
        let value = timed(&mut total, || 7);
        assert_eq!(value, 7);
        assert!(total >= Duration::from_millis(5));
    }
}
