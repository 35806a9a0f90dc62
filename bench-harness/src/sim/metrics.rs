//! [`RunResult`]: what one simulated migration measured. Times are seconds of simulated time.

use serde::Serialize;

/// One live round (iteration) of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundStat {
    /// The round's index (0 is the first pass).
    pub iteration: u32,
    /// Pages the strategy planned for the round.
    pub planned: u64,
    /// Pages covered by records sent in the round (mirror forwards included).
    pub pages_sent: u64,
    /// Bytes put on the wire during the round.
    pub bytes: u64,
    /// Pages the guest dirtied during the round (the harvest at its end).
    pub dirtied: u64,
    /// Length of the round, seconds.
    pub seconds: f64,
    /// Guest CPU throttle during the round, percent.
    pub throttle_percent: u8,
}

/// Encoder counters of a run (content traces only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EncoderSummary {
    /// Pages handed to the encoder.
    pub pages_in: u64,
    /// Pages the destination already held identically (nothing sent).
    pub unchanged: u64,
    /// Cache hits / (hits + misses) of the XBZRLE cache of last-sent versions.
    pub cache_hit_rate: f64,
    /// Mean record bytes per page record sent.
    pub bytes_per_record: f64,
    /// Records by encoding: zero, raw, xbzrle, dedup, lz4, zstd, xbzrle+lz4.
    pub records_by_encoding: [u64; 7],
}

/// Everything one simulated migration measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunResult {
    /// The strategy's registry name.
    pub strategy: String,
    /// The link, as written on the command line (`1gbit`).
    pub link: String,
    /// Link payload bandwidth, bytes per second.
    pub link_bytes_per_second: u64,
    /// Round-trip time, seconds.
    pub rtt_seconds: f64,
    /// Memory migrated, bytes (the scaled memory).
    pub memory_bytes: u64,
    /// Copies of the trace's write pattern over disjoint memory.
    pub scale: u64,
    /// Trace time at which the migration started, seconds.
    pub start_seconds: f64,
    /// From the hello to the destination's activation (post-copy: to the last page), seconds.
    pub total_seconds: f64,
    /// Guest suspended: the final transfer, device state and a round trip, seconds.
    pub downtime_seconds: f64,
    /// Page-record bytes on the wire.
    pub data_bytes: u64,
    /// Every other byte the source sent except device-state data: frame and batch headers,
    /// iteration markers, suspend, commit digest, activate (mirror forwards' frame overhead
    /// included).
    pub control_bytes: u64,
    /// Device state bytes.
    pub device_bytes: u64,
    /// Bytes of the destination's frames (hello, reservation, page requests, commit answer,
    /// activated); not in [`RunResult::total_bytes`].
    pub return_bytes: u64,
    /// Page records' pages sent (every version counts).
    pub pages_sent: u64,
    /// Live rounds run (stop-and-copy and post-copy push not counted).
    pub iterations: u32,
    /// All bytes on the wire / memory size.
    pub redundancy: f64,
    /// Why the live rounds ended.
    pub stop_reason: String,
    /// Pages sent while the guest was suspended.
    pub stop_copy_pages: u64,
    /// Guest CPU time taken by throttling, seconds.
    pub throttle_cpu_lost_seconds: f64,
    /// Post-copy page faults (writes to pages the destination lacked).
    pub postcopy_faults: u64,
    /// Guest stall from post-copy faults (a round trip plus the page's transfer each), seconds.
    pub postcopy_stall_seconds: f64,
    /// Guest writes forwarded at once in mirror rounds.
    pub mirror_forwards: u64,
    /// Times the trace's epochs were replayed from the first (on the current memory) because
    /// the migration outlasted them.
    pub trace_replays: u32,
    /// Encoder counters (`None` under the content-less size model).
    pub encoder: Option<EncoderSummary>,
    /// Per-round figures.
    pub rounds: Vec<RoundStat>,
}

impl RunResult {
    /// All bytes the source put on the wire.
    pub fn total_bytes(&self) -> u64 {
        self.data_bytes + self.control_bytes + self.device_bytes
    }
}

impl EncoderSummary {
    /// Summarises encoder counters.
    pub fn of(stats: &pagewire_codec::EncoderStats) -> EncoderSummary {
        let lookups = stats.cache.hits + stats.cache.misses;
        let records = stats.total_records();
        EncoderSummary {
            pages_in: stats.pages_in,
            unchanged: stats.unchanged,
            cache_hit_rate: ratio(stats.cache.hits, lookups),
            bytes_per_record: ratio(stats.total_bytes(), records),
            records_by_encoding: [
                stats.zero.records,
                stats.raw.records,
                stats.xbzrle.records,
                stats.dedup.records,
                stats.lz4.records,
                stats.zstd.records,
                stats.xbzrle_lz4.records,
            ],
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
