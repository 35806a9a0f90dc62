//! The summary `pagewire send` and `recv` print at the end, in the manner of QEMU's
//! `info migrate`: status, times, bytes, pages per encoding, iterations, cache, throughput.

use std::fmt::Write;
use std::time::Duration;

use pagewire_codec::Encoding;
use pagewire_codec::encoder::EncoderStats;
use pagewire_codec::session::{DestinationStats, SourceStats};

use super::units::format_bytes;

/// What both sides measure.
pub(crate) struct Common {
    /// "completed", or why not.
    pub(crate) status: String,
    /// From the first byte to the end.
    pub(crate) total: Duration,
    /// From suspension (source) or the start of stop-and-copy (destination) to activation.
    pub(crate) downtime: Option<Duration>,
    /// What `downtime` measures, for the reader.
    pub(crate) downtime_is: &'static str,
    /// Bytes sent and received on every stream.
    pub(crate) bytes_sent: u64,
    /// Bytes received on every stream.
    pub(crate) bytes_received: u64,
    /// Iterations completed.
    pub(crate) iterations: u64,
}

impl Common {
    fn write(&self, out: &mut String, payload: u64) {
        let seconds = self.total.as_secs_f64();
        let _ = writeln!(out, "Migration status: {}", self.status);
        let _ = writeln!(out, "total time: {:.0} ms", seconds * 1e3);
        match self.downtime {
            Some(downtime) => {
                let _ = writeln!(
                    out,
                    "downtime: {:.1} ms ({})",
                    downtime.as_secs_f64() * 1e3,
                    self.downtime_is
                );
            }
            None => {
                let _ = writeln!(out, "downtime: -");
            }
        }
        let _ = writeln!(
            out,
            "bytes on the wire: {} sent, {} received",
            format_bytes(self.bytes_sent as f64),
            format_bytes(self.bytes_received as f64)
        );
        let throughput = if seconds > 0.0 {
            payload as f64 * 8.0 / seconds / 1e6
        } else {
            0.0
        };
        let _ = writeln!(out, "throughput: {throughput:.2} mbps");
        let _ = writeln!(out, "iterations: {}", self.iterations);
    }
}

/// The source's summary; `encoders` holds one entry per page stream.
pub(crate) fn source(
    common: &Common,
    stats: &SourceStats,
    encoders: &[EncoderStats],
    guest: Option<(u64, u64)>,
) -> String {
    let mut out = String::new();
    common.write(&mut out, common.bytes_sent);
    let _ = writeln!(out, "pages sent: {}", stats.pages_sent);
    let unchanged: u64 = encoders.iter().map(|e| e.unchanged).sum();
    let _ = write!(out, "pages per encoding:");
    for encoding in Encoding::KNOWN {
        let pages: u64 = encoders.iter().map(|e| e.of(encoding).pages).sum();
        let bytes: u64 = encoders.iter().map(|e| e.of(encoding).bytes).sum();
        if pages > 0 {
            let _ = write!(
                out,
                " {} {pages} ({})",
                encoding.name(),
                format_bytes(bytes as f64)
            );
        }
    }
    let _ = writeln!(out, "; unchanged, not sent: {unchanged}");
    let hits: u64 = encoders.iter().map(|e| e.cache.hits).sum();
    let misses: u64 = encoders.iter().map(|e| e.cache.misses).sum();
    let rate = if hits + misses > 0 {
        hits as f64 * 100.0 / (hits + misses) as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "xbzrle cache: {hits} hits, {misses} misses, hit rate {rate:.1}%"
    );
    if let Some((landed, epochs)) = guest {
        let _ = writeln!(
            out,
            "guest: {landed} of {epochs} trace epochs written before suspension"
        );
    }
    out
}

/// The destination's summary.
pub(crate) fn destination(
    common: &Common,
    stats: &DestinationStats,
    device_state: Option<usize>,
) -> String {
    let mut out = String::new();
    common.write(&mut out, common.bytes_received);
    let _ = writeln!(
        out,
        "pages applied: {} in {} batches",
        stats.pages, stats.batches
    );
    if let Some(bytes) = device_state {
        let _ = writeln!(out, "device state: {bytes} bytes");
    }
    out
}
