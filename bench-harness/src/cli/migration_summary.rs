//! The summary `pagewire send` and `recv` print at the end, in the manner of QEMU's
//! `info migrate`: status, times, bytes, pages per encoding, iterations, cache, throughput.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use pagewire_codec::Encoding;
use pagewire_codec::encoder::EncoderStats;
use pagewire_codec::select::LinkEstimate;
use pagewire_codec::session::{DestinationStats, SourceStats};

use super::units::format_bytes;

/// When the migration stopped the guest and activated it, in session time, as the side saw
/// it (set from the driver's events).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeline {
    /// Suspension (source) or the start of stop-and-copy (destination).
    pub(crate) stopped: Option<Duration>,
    /// POSTCOPY_BEGIN (the VM resumes at the destination before every page arrived).
    pub(crate) postcopy: Option<Duration>,
    /// Activation.
    pub(crate) activated: Option<Duration>,
}

/// What one side counted, besides the times.
pub(crate) enum Side<'a> {
    /// The source's counters, its encoders' (one per page stream), the live guest's
    /// (epochs landed before suspension, epochs in the trace) if one ran, and the link
    /// estimate the session held at the end (measured, or from `--rate`).
    Source {
        stats: SourceStats,
        encoders: &'a [EncoderStats],
        guest: Option<(u64, u64)>,
        link: LinkEstimate,
    },
    /// The destination's counters, and the device state's length if it arrived.
    Destination {
        stats: DestinationStats,
        device_state: Option<usize>,
    },
}

/// One side's summary of a migration; [`Display`] writes it.
pub(crate) struct Summary<'a> {
    /// `None` if the migration completed, else why not.
    failure: Option<String>,
    /// From the first byte to the end.
    total: Duration,
    timeline: Timeline,
    side: Side<'a>,
}

impl<'a> Summary<'a> {
    /// The summary of a migration that ended with `result` after `total`.
    pub(crate) fn new<E: Display>(
        result: &Result<(), E>,
        total: Duration,
        timeline: Timeline,
        side: Side<'a>,
    ) -> Summary<'a> {
        Summary {
            failure: result.as_ref().err().map(ToString::to_string),
            total,
            timeline,
            side,
        }
    }

    /// What the downtime measures, for the reader.
    fn downtime_is(&self) -> &'static str {
        match (&self.side, self.timeline.postcopy.is_some()) {
            (Side::Source { .. }, false) => "suspension to activation",
            (Side::Source { .. }, true) => "suspension to POSTCOPY_BEGIN",
            (Side::Destination { .. }, false) => "SUSPEND received to activation",
            (Side::Destination { .. }, true) => "SUSPEND received to POSTCOPY_BEGIN",
        }
    }

    /// Bytes sent and received on every stream, iterations completed, and the bytes that
    /// count for throughput (sent by the source, received by the destination).
    fn counters(&self) -> (u64, u64, u64, u64) {
        match &self.side {
            Side::Source { stats, .. } => (
                stats.bytes_sent,
                stats.bytes_received,
                stats.iterations,
                stats.bytes_sent,
            ),
            Side::Destination { stats, .. } => (
                stats.bytes_sent,
                stats.bytes_received,
                stats.iterations,
                stats.bytes_received,
            ),
        }
    }

    /// Status, times, bytes, throughput and iterations: what both sides show.
    fn fmt_common(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let seconds = self.total.as_secs_f64();
        match &self.failure {
            None => writeln!(f, "Migration status: completed")?,
            Some(failure) => writeln!(f, "Migration status: failed: {failure}")?,
        }
        writeln!(f, "total time: {:.0} ms", seconds * 1e3)?;
        // In post-copy the VM runs again at POSTCOPY_BEGIN (then stalls on each fault).
        let resumed = self.timeline.postcopy.or(self.timeline.activated);
        let downtime = self.timeline.stopped.zip(resumed);
        match downtime.map(|(stopped, activated)| activated.saturating_sub(stopped)) {
            Some(downtime) => writeln!(
                f,
                "downtime: {:.1} ms ({})",
                downtime.as_secs_f64() * 1e3,
                self.downtime_is()
            )?,
            None => writeln!(f, "downtime: -")?,
        }
        let (sent, received, iterations, payload) = self.counters();
        writeln!(
            f,
            "bytes on the wire: {} sent, {} received",
            format_bytes(sent as f64),
            format_bytes(received as f64)
        )?;
        let throughput = if seconds > 0.0 {
            payload as f64 * 8.0 / seconds / 1e6
        } else {
            0.0
        };
        writeln!(f, "throughput: {throughput:.2} mbps")?;
        writeln!(f, "iterations: {iterations}")
    }
}

impl Display for Summary<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.fmt_common(f)?;
        match &self.side {
            Side::Source {
                stats,
                encoders,
                guest,
                link,
            } => {
                fmt_source(f, stats, encoders, *guest)?;
                fmt_link(f, *link)
            }
            Side::Destination {
                stats,
                device_state,
            } => {
                writeln!(
                    f,
                    "pages applied: {} in {} batches",
                    stats.pages, stats.batches
                )?;
                if stats.resumes > 0 {
                    writeln!(f, "resumed after a dropped link: {} times", stats.resumes)?;
                }
                fmt_faults(f, stats)?;
                match device_state {
                    Some(bytes) => writeln!(f, "device state: {bytes} bytes"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The source's pages per encoding, cache and guest.
fn fmt_source(
    f: &mut Formatter<'_>,
    stats: &SourceStats,
    encoders: &[EncoderStats],
    guest: Option<(u64, u64)>,
) -> fmt::Result {
    writeln!(f, "pages sent: {}", stats.pages_sent)?;
    if stats.resumes > 0 {
        writeln!(
            f,
            "resumed after a dropped link: {} times, {} pages sent again",
            stats.resumes, stats.resent_after_resume
        )?;
    }
    if stats.deferred_pages > 0 {
        writeln!(
            f,
            "post-copy: {} pages deferred; {} pages requested in {} requests, {} sent ahead of the push",
            stats.deferred_pages, stats.pages_requested, stats.page_requests, stats.requested_sent
        )?;
    }
    let unchanged: u64 = encoders.iter().map(|e| e.unchanged).sum();
    write!(f, "pages per encoding:")?;
    for encoding in Encoding::KNOWN {
        let pages: u64 = encoders.iter().map(|e| e.of(encoding).pages).sum();
        let bytes: u64 = encoders.iter().map(|e| e.of(encoding).bytes).sum();
        if pages > 0 {
            write!(
                f,
                " {} {pages} ({})",
                encoding.name(),
                format_bytes(bytes as f64)
            )?;
        }
    }
    writeln!(f, "; unchanged, not sent: {unchanged}")?;
    let hits: u64 = encoders.iter().map(|e| e.cache.hits).sum();
    let misses: u64 = encoders.iter().map(|e| e.cache.misses).sum();
    let rate = if hits + misses > 0 {
        hits as f64 * 100.0 / (hits + misses) as f64
    } else {
        0.0
    };
    writeln!(
        f,
        "xbzrle cache: {hits} hits, {misses} misses, hit rate {rate:.1}%"
    )?;
    if let Some((landed, epochs)) = guest {
        writeln!(
            f,
            "guest: {landed} of {epochs} trace epochs written before suspension"
        )?;
    }
    Ok(())
}

/// The link estimate the source ended with.
fn fmt_link(f: &mut Formatter<'_>, link: LinkEstimate) -> fmt::Result {
    let rtt = link.rtt.as_secs_f64() * 1e3;
    match link.bytes_per_second {
        0 => writeln!(
            f,
            "link: speed unknown (it never held the source back), round trip {rtt:.1} ms"
        ),
        speed => writeln!(
            f,
            "link: {:.2} mbps, round trip {rtt:.1} ms",
            speed as f64 * 8.0 / 1e6
        ),
    }
}

/// The destination's post-copy faults and how long the guest waited for them.
fn fmt_faults(f: &mut Formatter<'_>, stats: &DestinationStats) -> fmt::Result {
    if stats.deferred_pages == 0 {
        return Ok(());
    }
    writeln!(
        f,
        "post-copy: {} pages deferred; {} faults in {} requests",
        stats.deferred_pages, stats.faults, stats.page_requests
    )?;
    let mean = stats
        .fault_wait_total
        .checked_div(u32::try_from(stats.faults_served).unwrap_or(u32::MAX))
        .unwrap_or_default();
    writeln!(
        f,
        "fault-in wait: {:.1} ms in all, {:.2} ms mean, {:.1} ms max ({} faults served)",
        stats.fault_wait_total.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        stats.fault_wait_max.as_secs_f64() * 1e3,
        stats.faults_served
    )
}
