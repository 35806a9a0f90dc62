//! The link as the source measures it while a migration runs: the bytes per second the
//! connection carried over intervals in which the source had more to send than it took, and
//! QUIC's round-trip estimate.
//!
//! Why: the encoder weighs CPU time against bytes at a link speed
//! ([`cost`](crate::cost)), and the strategy plans rounds with it. An operator who gives no
//! `--rate` leaves both at the speed one core pushes bytes through QUIC, right for a fast
//! link and wrong for a slow one: pages that would compress go raw, and rounds are planned as
//! if they took no time. The [driver](crate::driver) takes a [`Reading`] of the connection's
//! counters every [`MeterConfig::interval`] and hands what this meter makes of them to the
//! session (`link_measured`), which caps its configured policy at the measured speed.
//!
//! **Which intervals measure the link.** The connection's byte rate is the link's only while
//! the link is what holds the source back. An interval counts as *link-bound* if either
//! - the driver spent at least half of it waiting for room in a full stream queue (the link,
//!   or QUIC's congestion control, or the destination's flow control takes the bytes slower
//!   than the source makes them), or
//! - the writers handed QUIC a quarter more than it put on the wire, and at least 256 KiB
//!   more (its send buffer grew: the same, before that buffer fills).
//!
//! An interval in which QUIC reported being blocked by the destination's flow control does
//! not count: the destination set the pace. A destination that keeps up with flow control but
//! acknowledges late (a busy CPU) is not told apart from a slower link.
//!
//! Otherwise the source's CPU is the bound, and the rate is only a lower bound on the link's:
//! it never lowers the estimate, but one a quarter above it shows the estimate is stale (the
//! link got faster), which is then dropped. The estimate is the median of the last
//! [`MeterConfig::samples`] link-bound rates younger than [`MeterConfig::max_age`]; none left,
//! none known (0 bytes per second: the session falls back to its configured link). A source
//! that compresses because the link measured slow may stop being link-bound; the estimate then
//! lasts `max_age` and lapses, the source sends at its configured speed again, and a slow link
//! soon shows again.
//!
//! Rates count every byte QUIC put in UDP datagrams (headers, acknowledgements and
//! retransmissions too) less the bytes of the packets it declared lost: what crossed the
//! link. A loss is declared a round trip or so after the packet left, so an interval may be
//! charged with its predecessor's losses; the median smooths that. Counting lost bytes as
//! carried would put a link that drops what overflows its queue (a token bucket, a full
//! router buffer) well above its rate as soon as a large send window overfills it.
//!
//! ```
//! use std::time::Duration;
//! use pagewire_transport::link_meter::{LinkMeter, MeterConfig, Reading};
//!
//! let ms = Duration::from_millis;
//! let reading = |at, bytes, blocked| Reading {
//!     at: ms(at),
//!     wire_bytes: bytes,
//!     offered_bytes: bytes,
//!     blocked: ms(blocked),
//!     flow_blocked: 0,
//!     rtt: ms(20),
//! };
//! let mut meter = LinkMeter::new(MeterConfig::default());
//! assert_eq!(meter.observe(reading(0, 0, 0)), None);
//! // 250 ms in which the source waited for room 200 ms and 312 500 bytes crossed: 1.25 MB/s.
//! let link = meter.observe(reading(250, 312_500, 200)).unwrap();
//! assert_eq!(link.bytes_per_second, 1_250_000);
//! assert_eq!(link.rtt, ms(20));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use pagewire_codec::select::LinkEstimate;

/// How a [`LinkMeter`] samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    /// The shortest interval a sample covers (readings closer to the last one are ignored).
    pub interval: Duration,
    /// How long a link-bound sample counts.
    pub max_age: Duration,
    /// How many of the latest link-bound samples the estimate is the median of.
    pub samples: usize,
}

impl Default for MeterConfig {
    /// Samples of at least 250 ms (many round trips of any link a migration crosses, and
    /// enough to smooth QUIC's bursts), the median of the last 5, each counting for 10 s.
    fn default() -> MeterConfig {
        MeterConfig {
            interval: Duration::from_millis(250),
            max_age: Duration::from_secs(10),
            samples: 5,
        }
    }
}

/// The connection's counters at one instant (all since the connection opened, except `at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// When, on the migration's clock.
    pub at: Duration,
    /// Bytes QUIC sent in UDP datagrams, less those of packets it declared lost.
    pub wire_bytes: u64,
    /// Bytes the stream writers handed to QUIC.
    pub offered_bytes: u64,
    /// How long the driver waited with a stream queue full.
    pub blocked: Duration,
    /// DATA_BLOCKED and STREAM_DATA_BLOCKED frames QUIC sent: the destination's flow control
    /// held the source back.
    pub flow_blocked: u64,
    /// QUIC's smoothed round-trip time.
    pub rtt: Duration,
}

/// Estimates the link from [`Reading`]s. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct LinkMeter {
    config: MeterConfig,
    last: Option<Reading>,
    /// Link-bound rates, oldest first: (when measured, bytes per second).
    samples: VecDeque<(Duration, u64)>,
    /// The estimate last returned by [`LinkMeter::observe`].
    reported: LinkEstimate,
}

/// The least growth of QUIC's send buffer over an interval that shows the link holds the
/// source back: a few frames handed over just before a reading (a commit digest, say) are
/// not a backlog.
const MIN_GROWTH: u64 = 256 << 10;

impl LinkMeter {
    /// A meter that knows nothing yet.
    pub fn new(config: MeterConfig) -> LinkMeter {
        LinkMeter {
            config,
            last: None,
            samples: VecDeque::new(),
            reported: LinkEstimate::UNKNOWN,
        }
    }

    /// Whether a reading taken at `now` would make a sample (the first reading always does).
    pub fn due(&self, now: Duration) -> bool {
        self.last
            .is_none_or(|last| now.saturating_sub(last.at) >= self.config.interval)
    }

    /// The estimate now: the median link-bound rate (0 if none) and the last round trip.
    pub fn estimate(&self) -> LinkEstimate {
        self.reported
    }

    /// Takes a reading. Returns the estimate when it differs enough from the one returned
    /// last to tell the session: the rate by a tenth or more, or known against unknown, or
    /// the round trip by a quarter or more.
    pub fn observe(&mut self, reading: Reading) -> Option<LinkEstimate> {
        if !self.due(reading.at) {
            return None;
        }
        // The first reading only starts the first interval.
        let last = self.last.replace(reading)?;
        let elapsed = reading.at.saturating_sub(last.at);
        let wire = reading.wire_bytes.saturating_sub(last.wire_bytes);
        let offered = reading.offered_bytes.saturating_sub(last.offered_bytes);
        let blocked = reading.blocked.saturating_sub(last.blocked);
        let rate = per_second(wire, elapsed);
        // Held back by the destination's flow control: the destination, not the link, set
        // the pace (compressing would make it no faster).
        let flow_blocked = reading.flow_blocked > last.flow_blocked;
        let grown = offered.saturating_sub(wire);
        let link_bound = blocked * 2 >= elapsed || (grown > wire / 4 && grown >= MIN_GROWTH);
        if link_bound && !flow_blocked && rate > 0 {
            self.samples.push_back((reading.at, rate));
        } else if let Some(estimate) = self.median()
            && rate > estimate + estimate / 4
        {
            // The link carried more than the estimate while not even holding the source back.
            self.samples.clear();
        }
        while self.samples.len() > self.config.samples.max(1)
            || self
                .samples
                .front()
                .is_some_and(|&(at, _)| reading.at.saturating_sub(at) > self.config.max_age)
        {
            self.samples.pop_front();
        }
        let estimate = LinkEstimate {
            bytes_per_second: self.median().unwrap_or(0),
            rtt: reading.rtt,
        };
        if differs(self.reported, estimate) {
            self.reported = estimate;
            Some(estimate)
        } else {
            None
        }
    }

    fn median(&self) -> Option<u64> {
        let mut rates: Vec<u64> = self.samples.iter().map(|&(_, rate)| rate).collect();
        rates.sort_unstable();
        rates.get(rates.len() / 2).copied()
    }
}

/// `bytes` over `elapsed`, in bytes per second (0 over no time).
fn per_second(bytes: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos();
    if nanos == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
}

/// Whether `new` is worth telling the session, `old` being what it was told last.
fn differs(old: LinkEstimate, new: LinkEstimate) -> bool {
    let (a, b) = (old.bytes_per_second, new.bytes_per_second);
    let rate = (a == 0) != (b == 0) || a.abs_diff(b) * 10 >= a.max(b);
    let (a, b) = (old.rtt, new.rtt);
    let rtt = a.abs_diff(b) * 4 >= a.max(b) && a != b;
    rate || rtt
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const RTT: Duration = Duration::from_millis(10);

    /// A meter fed readings 250 ms apart, with what it reported.
    struct Feed {
        meter: LinkMeter,
        at: Duration,
        wire: u64,
        offered: u64,
        blocked: Duration,
        reports: Vec<LinkEstimate>,
    }

    impl Feed {
        fn new() -> Feed {
            let mut meter = LinkMeter::new(MeterConfig::default());
            assert_eq!(
                meter.observe(reading(Duration::ZERO, 0, 0, Duration::ZERO)),
                None
            );
            Feed {
                meter,
                at: Duration::ZERO,
                wire: 0,
                offered: 0,
                blocked: Duration::ZERO,
                reports: Vec::new(),
            }
        }

        /// One 250 ms interval.
        fn interval(&mut self, wire: u64, offered: u64, blocked: Duration) -> &mut Feed {
            self.at += 250 * MS;
            self.wire += wire;
            self.offered += offered;
            self.blocked += blocked;
            let reading = reading(self.at, self.wire, self.offered, self.blocked);
            if let Some(link) = self.meter.observe(reading) {
                self.reports.push(link);
            }
            self
        }

        fn rate(&self) -> u64 {
            self.meter.estimate().bytes_per_second
        }
    }

    fn reading(at: Duration, wire_bytes: u64, offered_bytes: u64, blocked: Duration) -> Reading {
        Reading {
            at,
            wire_bytes,
            offered_bytes,
            blocked,
            flow_blocked: 0,
            rtt: RTT,
        }
    }

    #[test]
    fn a_blocked_source_measures_the_link() {
        let mut feed = Feed::new();
        // 1 MB/s: 250 000 bytes per 250 ms, the driver waiting most of the time.
        feed.interval(250_000, 250_000, 200 * MS);
        assert_eq!(feed.rate(), 1_000_000);
        assert_eq!(
            feed.reports,
            vec![LinkEstimate {
                bytes_per_second: 1_000_000,
                rtt: RTT
            }]
        );
    }

    #[test]
    fn a_growing_send_buffer_measures_the_link_before_the_queues_fill() {
        let mut feed = Feed::new();
        feed.interval(500_000, 8_000_000, Duration::ZERO);
        assert_eq!(feed.rate(), 2_000_000);
    }

    #[test]
    fn a_source_held_back_by_its_cpu_measures_nothing() {
        let mut feed = Feed::new();
        for _ in 0..8 {
            feed.interval(100_000_000, 99_000_000, 10 * MS);
        }
        assert_eq!(feed.rate(), 0);
        // Only the round trip was reported.
        assert!(feed.reports.iter().all(|link| link.bytes_per_second == 0));
    }

    #[test]
    fn the_estimate_is_the_median_of_recent_samples() {
        let mut feed = Feed::new();
        for rate in [1_000_000u64, 9_000_000, 2_000_000, 1_500_000, 1_200_000] {
            let bytes = rate / 4;
            feed.interval(bytes, bytes, 200 * MS);
        }
        assert_eq!(feed.rate(), 1_500_000);
        // Only the last five count: three more slow samples move the median down.
        for _ in 0..3 {
            feed.interval(250_000, 250_000, 200 * MS);
        }
        assert_eq!(feed.rate(), 1_000_000);
    }

    #[test]
    fn slower_unbound_intervals_keep_the_estimate_and_a_faster_one_drops_it() {
        let mut feed = Feed::new();
        feed.interval(250_000, 250_000, 200 * MS);
        assert_eq!(feed.rate(), 1_000_000);
        // Compressing, the source is CPU-bound below the link: no news about the link.
        feed.interval(100_000, 100_000, Duration::ZERO);
        assert_eq!(feed.rate(), 1_000_000);
        // The link took 2 MB/s without holding the source back: the estimate is stale.
        feed.interval(500_000, 500_000, Duration::ZERO);
        assert_eq!(feed.rate(), 0);
        assert_eq!(feed.reports.last().map(|l| l.bytes_per_second), Some(0));
    }

    #[test]
    fn samples_lapse_after_max_age() {
        let mut feed = Feed::new();
        feed.interval(250_000, 250_000, 200 * MS);
        // 10 s of CPU-bound intervals at the same rate: nothing confirms nor contradicts.
        for _ in 0..40 {
            feed.interval(200_000, 200_000, Duration::ZERO);
        }
        assert_eq!(feed.rate(), 1_000_000, "10 s old: still counts");
        feed.interval(200_000, 200_000, Duration::ZERO);
        assert_eq!(feed.rate(), 0, "older than 10 s");
    }

    #[test]
    fn readings_closer_than_the_interval_are_ignored() {
        let mut meter = LinkMeter::new(MeterConfig::default());
        meter.observe(reading(Duration::ZERO, 0, 0, Duration::ZERO));
        assert!(!meter.due(100 * MS));
        assert_eq!(meter.observe(reading(100 * MS, 100, 100, 100 * MS)), None);
        assert!(meter.due(250 * MS));
        // Measured from the first reading, not from the ignored one.
        let link = meter
            .observe(reading(250 * MS, 250_000, 250_000, 250 * MS))
            .unwrap();
        assert_eq!(link.bytes_per_second, 1_000_000);
    }

    #[test]
    fn small_changes_are_not_reported() {
        let mut feed = Feed::new();
        feed.interval(250_000, 250_000, 200 * MS);
        feed.interval(260_000, 260_000, 200 * MS);
        feed.interval(240_000, 240_000, 200 * MS);
        assert_eq!(feed.reports.len(), 1, "{:?}", feed.reports);
        assert!(differs(
            feed.reports[0],
            LinkEstimate {
                bytes_per_second: 1_000_000,
                rtt: 20 * MS,
            }
        ));
    }

    #[test]
    fn a_destination_holding_back_with_flow_control_is_not_the_link() {
        let mut meter = LinkMeter::new(MeterConfig::default());
        meter.observe(reading(Duration::ZERO, 0, 0, Duration::ZERO));
        let blocked_by_flow = Reading {
            flow_blocked: 2,
            ..reading(250 * MS, 250_000, 250_000, 250 * MS)
        };
        assert_eq!(
            meter.observe(blocked_by_flow).map(|l| l.bytes_per_second),
            Some(0)
        );
        // Not blocked again in the next interval: it counts.
        let next = Reading {
            flow_blocked: 2,
            ..reading(500 * MS, 500_000, 500_000, 500 * MS)
        };
        assert_eq!(meter.observe(next).unwrap().bytes_per_second, 1_000_000);
    }

    #[test]
    fn a_few_frames_handed_over_are_not_a_backlog() {
        let mut feed = Feed::new();
        // A 40 KiB frame queued just before the reading, 10 KiB sent: not a growing buffer.
        feed.interval(10_000, 40_000, Duration::ZERO);
        assert_eq!(feed.rate(), 0);
    }

    #[test]
    fn a_stalled_link_is_not_a_zero_rate() {
        let mut feed = Feed::new();
        feed.interval(250_000, 250_000, 200 * MS);
        // Nothing crossed (the link is down): no sample, the estimate stays.
        feed.interval(0, 0, 250 * MS);
        assert_eq!(feed.rate(), 1_000_000);
    }
}
