//! The recorder's own cost: time spent scanning, pages read, and how long the target was
//! stopped.

use std::fmt;
use std::time::Duration;

use super::phases::ScanPhases;
use super::snapshot::ScanCounts;

/// Cost of one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCost {
    /// Wall time of the scan (maps, pagemap, reads, hashing).
    pub scan_time: Duration,
    /// How long the target was stopped (`--freeze`), zero otherwise.
    pub frozen_time: Duration,
    /// Where the scan time went.
    pub phases: ScanPhases,
    /// Time the sink took to accept the epoch after the scan (encoding it into the trace when
    /// that happens on the recording thread).
    pub sink_time: Duration,
    /// CPU time of the recording thread while the sink accepted the epoch.
    pub sink_cpu: Duration,
    /// What the scan saw.
    pub counts: ScanCounts,
}

/// Totals over a recording; the initial scan is kept apart from the epochs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverheadReport {
    /// The epoch interval asked for.
    pub interval: Duration,
    /// Cost of the initial scan.
    pub initial: ScanCost,
    /// Epochs recorded.
    pub epochs: u64,
    /// Sum of epoch scan times.
    pub total_scan_time: Duration,
    /// Longest epoch scan.
    pub max_scan_time: Duration,
    /// Sum of the times the target was stopped during epoch scans.
    pub total_frozen_time: Duration,
    /// Sums of the parts of the epoch scans.
    pub phases: ScanPhases,
    /// Sum of the times the sink took to accept the epochs.
    pub total_sink_time: Duration,
    /// Longest time the sink took to accept an epoch.
    pub max_sink_time: Duration,
    /// Sum of the recording thread's CPU time while the sink accepted the epochs.
    pub total_sink_cpu: Duration,
    /// Present pages read over all epochs.
    pub pages_read: u64,
    /// Pages recorded over all epochs.
    pub pages_changed: u64,
    /// Of those, pages written with unchanged content (exact write tracking only).
    pub pages_unchanged: u64,
    /// Pages that could not be read (range vanished) over all epochs.
    pub pages_skipped: u64,
    /// Ticks missed because a scan took longer than the interval.
    pub overruns: u64,
}

impl OverheadReport {
    /// Adds one epoch's scan.
    pub fn add_epoch(&mut self, cost: ScanCost) {
        self.epochs += 1;
        self.total_scan_time += cost.scan_time;
        self.max_scan_time = self.max_scan_time.max(cost.scan_time);
        self.total_frozen_time += cost.frozen_time;
        self.phases += cost.phases;
        self.total_sink_time += cost.sink_time;
        self.max_sink_time = self.max_sink_time.max(cost.sink_time);
        self.total_sink_cpu += cost.sink_cpu;
        self.pages_read += cost.counts.pages_read;
        self.pages_changed += cost.counts.pages_changed;
        self.pages_unchanged += cost.counts.pages_unchanged;
        self.pages_skipped += cost.counts.pages_skipped;
    }

    /// Mean scan time per epoch.
    pub fn mean_scan_time(&self) -> Duration {
        self.per_epoch(self.total_scan_time)
    }

    /// Mean present pages read per epoch.
    pub fn mean_pages_read(&self) -> f64 {
        self.pages_read as f64 / self.epochs.max(1) as f64
    }

    /// Mean pages recorded per epoch.
    pub fn mean_pages_changed(&self) -> f64 {
        self.pages_changed as f64 / self.epochs.max(1) as f64
    }

    /// Mean scan time as a percentage of the interval.
    pub fn scan_percent_of_interval(&self) -> f64 {
        if self.interval.is_zero() {
            return 0.0;
        }
        100.0 * self.mean_scan_time().as_secs_f64() / self.interval.as_secs_f64()
    }

    /// Scan cost per page read, in microseconds.
    pub fn micros_per_page(&self) -> f64 {
        self.per_page(self.total_scan_time)
    }

    /// `total` (over all epochs) per page read, in microseconds.
    pub fn per_page(&self, total: Duration) -> f64 {
        total.as_secs_f64() * 1e6 / self.pages_read.max(1) as f64
    }

    /// `total` (over all epochs) per epoch.
    pub fn per_epoch(&self, total: Duration) -> Duration {
        total
            .checked_div(self.epochs.max(1) as u32)
            .unwrap_or_default()
    }

    /// The recording thread's CPU time during scans as a percentage of their wall time (below
    /// 100 when it waited for a CPU).
    pub fn cpu_percent_of_scan(&self) -> f64 {
        if self.total_scan_time.is_zero() {
            return 0.0;
        }
        100.0 * self.phases.cpu.as_secs_f64() / self.total_scan_time.as_secs_f64()
    }

    /// The figures as `key = value` pairs for the trace's metadata.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        [
            ("recorder.epochs", self.epochs.to_string()),
            ("recorder.initial_scan_ms", ms(self.initial.scan_time)),
            (
                "recorder.initial_pages_read",
                self.initial.counts.pages_read.to_string(),
            ),
            ("recorder.mean_scan_ms", ms(self.mean_scan_time())),
            ("recorder.max_scan_ms", ms(self.max_scan_time)),
            (
                "recorder.scan_percent_of_interval",
                format!("{:.1}", self.scan_percent_of_interval()),
            ),
            (
                "recorder.mean_pages_read",
                format!("{:.0}", self.mean_pages_read()),
            ),
            (
                "recorder.mean_pages_changed",
                format!("{:.1}", self.mean_pages_changed()),
            ),
            ("recorder.pages_unchanged", self.pages_unchanged.to_string()),
            (
                "recorder.us_per_page_read",
                format!("{:.2}", self.micros_per_page()),
            ),
            (
                "recorder.kernel_scan_ms_per_epoch",
                ms(self.per_epoch(self.phases.kernel_scan)),
            ),
            (
                "recorder.page_reads_us_per_page",
                format!("{:.2}", self.per_page(self.phases.page_reads)),
            ),
            (
                "recorder.digest_us_per_page",
                format!("{:.2}", self.per_page(self.phases.digest)),
            ),
            (
                "recorder.cpu_us_per_page",
                format!("{:.2}", self.per_page(self.phases.cpu)),
            ),
            (
                "recorder.cpu_percent_of_scan",
                format!("{:.1}", self.cpu_percent_of_scan()),
            ),
            (
                "recorder.mean_sink_ms",
                ms(self.per_epoch(self.total_sink_time)),
            ),
            ("recorder.max_sink_ms", ms(self.max_sink_time)),
            (
                "recorder.sink_cpu_us_per_page",
                format!("{:.2}", self.per_page(self.total_sink_cpu)),
            ),
            ("recorder.total_frozen_ms", ms(self.total_frozen_time)),
            ("recorder.pages_skipped", self.pages_skipped.to_string()),
            ("recorder.overruns", self.overruns.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl fmt::Display for OverheadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "initial scan: {:.1} ms, {} pages read",
            self.initial.scan_time.as_secs_f64() * 1e3,
            self.initial.counts.pages_read
        )?;
        writeln!(
            f,
            "epochs: {}, scan {:.2} ms mean / {:.2} ms max ({:.1}% of the {} ms interval), \
             {:.2} us per page read",
            self.epochs,
            self.mean_scan_time().as_secs_f64() * 1e3,
            self.max_scan_time.as_secs_f64() * 1e3,
            self.scan_percent_of_interval(),
            self.interval.as_millis(),
            self.micros_per_page(),
        )?;
        writeln!(
            f,
            "scan parts: kernel scan {:.2} ms per epoch, page reads {:.2} us per page, digest \
             {:.2} us per page; thread CPU {:.2} us per page ({:.0}% of the scan's wall time); \
             handing epochs to the trace {:.2} ms mean / {:.2} ms max, {:.2} us CPU per page",
            self.per_epoch(self.phases.kernel_scan).as_secs_f64() * 1e3,
            self.per_page(self.phases.page_reads),
            self.per_page(self.phases.digest),
            self.per_page(self.phases.cpu),
            self.cpu_percent_of_scan(),
            self.per_epoch(self.total_sink_time).as_secs_f64() * 1e3,
            self.max_sink_time.as_secs_f64() * 1e3,
            self.per_page(self.total_sink_cpu),
        )?;
        write!(
            f,
            "pages per epoch: {:.0} read, {:.1} recorded; {} rewritten unchanged and {} \
             skipped in total; target stopped {:.1} ms in total; {} overruns",
            self.mean_pages_read(),
            self.mean_pages_changed(),
            self.pages_unchanged,
            self.pages_skipped,
            self.total_frozen_time.as_secs_f64() * 1e3,
            self.overruns,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_and_share_of_interval() {
        let mut report = OverheadReport {
            interval: Duration::from_millis(100),
            ..OverheadReport::default()
        };
        for (ms, read) in [(10, 1000), (30, 3000)] {
            report.add_epoch(ScanCost {
                scan_time: Duration::from_millis(ms),
                frozen_time: Duration::ZERO,
                phases: ScanPhases {
                    page_reads: Duration::from_millis(ms / 2),
                    cpu: Duration::from_millis(ms / 2),
                    ..ScanPhases::default()
                },
                sink_time: Duration::from_millis(ms),
                sink_cpu: Duration::ZERO,
                counts: ScanCounts {
                    pages_read: read,
                    pages_changed: 5,
                    ..ScanCounts::default()
                },
            });
        }
        assert_eq!(report.mean_scan_time(), Duration::from_millis(20));
        assert_eq!(report.max_scan_time, Duration::from_millis(30));
        assert!((report.scan_percent_of_interval() - 20.0).abs() < 1e-9);
        assert!((report.mean_pages_read() - 2000.0).abs() < 1e-9);
        assert!((report.micros_per_page() - 10.0).abs() < 1e-9);
        assert!((report.per_page(report.phases.page_reads) - 5.0).abs() < 1e-9);
        assert!((report.cpu_percent_of_scan() - 50.0).abs() < 1e-9);
        assert_eq!(report.max_sink_time, Duration::from_millis(30));
        assert!(
            report
                .metadata()
                .contains(&("recorder.epochs".to_owned(), "2".to_owned()))
        );
    }
}
