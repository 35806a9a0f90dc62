//! The link model: a FIFO pipe of fixed payload bandwidth and round-trip time. Simulated time
//! advances by bytes / bandwidth, computed exactly in integer nanoseconds from an anchor, so
//! a run's time does not drift with the number of frames.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A link: payload bandwidth and round-trip time.
///
/// ```
/// use pagewire_bench::sim::LinkSpec;
/// let link: LinkSpec = "1gbit".parse().unwrap();
/// assert_eq!(link.bytes_per_second, 125_000_000);
/// assert_eq!(link.to_string(), "1gbit");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct LinkSpec {
    /// Payload bytes per second (frame and record overheads count, packet headers do not).
    pub bytes_per_second: u64,
    /// Round-trip time.
    pub rtt: Duration,
}

/// A link speed that did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad link speed {0:?}: expected a number with kbit, mbit or gbit (e.g. 100mbit, 10gbit)")]
pub struct BadLinkSpeed(pub String);

impl LinkSpec {
    /// A link of `bits_per_second` (a multiple of 8) with round-trip time `rtt`.
    pub fn from_bits(bits_per_second: u64, rtt: Duration) -> LinkSpec {
        LinkSpec {
            bytes_per_second: bits_per_second / 8,
            rtt,
        }
    }

    /// How long `bytes` take to cross the link, rounded up to the nanosecond.
    pub fn transfer_time(&self, bytes: u64) -> Duration {
        Duration::from_nanos(transfer_nanos(bytes, self.bytes_per_second))
    }
}

fn transfer_nanos(bytes: u64, bytes_per_second: u64) -> u64 {
    let nanos = (u128::from(bytes) * 1_000_000_000).div_ceil(u128::from(bytes_per_second.max(1)));
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

impl FromStr for LinkSpec {
    type Err = BadLinkSpeed;

    /// Parses `100mbit`, `1gbit`, `2.5gbit`, `512kbit` (decimal units, as network speeds are
    /// quoted); the round-trip time is zero (set it separately).
    fn from_str(text: &str) -> Result<LinkSpec, BadLinkSpeed> {
        let bad = || BadLinkSpeed(text.to_owned());
        let lower = text.trim().to_ascii_lowercase();
        let (number, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)]
            .iter()
            .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n, *scale)))
            .ok_or_else(bad)?;
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        let bits = value * scale;
        if !(bits.is_finite() && (8.0..1e15).contains(&bits)) {
            return Err(bad());
        }
        Ok(LinkSpec::from_bits(bits.round() as u64, Duration::ZERO))
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.bytes_per_second as f64 * 8.0;
        let (value, unit) = if bits >= 1e9 {
            (bits / 1e9, "gbit")
        } else if bits >= 1e6 {
            (bits / 1e6, "mbit")
        } else {
            (bits / 1e3, "kbit")
        };
        write!(f, "{}{unit}", format_number(value))
    }
}

fn format_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The simulated clock as the link drives it: time is an anchor plus the transfer time of the
/// bytes queued since the anchor.
#[derive(Clone, Debug)]
pub struct LinkClock {
    link: LinkSpec,
    anchor: Duration,
    bytes_since_anchor: u64,
}

impl LinkClock {
    /// A clock at time zero over `link`.
    pub fn new(link: LinkSpec) -> LinkClock {
        LinkClock {
            link,
            anchor: Duration::ZERO,
            bytes_since_anchor: 0,
        }
    }

    /// The link.
    pub fn link(&self) -> LinkSpec {
        self.link
    }

    /// Now: when the last byte queued so far has crossed the link.
    pub fn now(&self) -> Duration {
        self.anchor + self.link.transfer_time(self.bytes_since_anchor)
    }

    /// Puts `bytes` on the link; returns the time they have all crossed it.
    pub fn send(&mut self, bytes: u64) -> Duration {
        self.bytes_since_anchor += bytes;
        self.now()
    }

    /// Waits `delay` with the link idle (a round trip).
    pub fn wait(&mut self, delay: Duration) -> Duration {
        self.anchor = self.now() + delay;
        self.bytes_since_anchor = 0;
        self.anchor
    }

    /// Waits one round trip.
    pub fn round_trip(&mut self) -> Duration {
        self.wait(self.link.rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_in_decimal_units() {
        assert_eq!(
            "100mbit".parse::<LinkSpec>().unwrap().bytes_per_second,
            12_500_000
        );
        assert_eq!(
            "2.5gbit".parse::<LinkSpec>().unwrap().bytes_per_second,
            312_500_000
        );
        assert!("fast".parse::<LinkSpec>().is_err());
        assert!("0gbit".parse::<LinkSpec>().is_err());
        assert_eq!(
            "2.5gbit".parse::<LinkSpec>().unwrap().to_string(),
            "2.5gbit"
        );
    }

    #[test]
    fn clock_time_is_exact_for_many_small_sends() {
        let link = LinkSpec::from_bits(8_000_000, Duration::from_millis(1));
        let mut clock = LinkClock::new(link);
        for _ in 0..1000 {
            clock.send(3);
        }
        // 3000 bytes at 1 MB/s: 3 ms, with no rounding drift.
        assert_eq!(clock.now(), Duration::from_millis(3));
        assert_eq!(clock.round_trip(), Duration::from_millis(4));
        assert_eq!(clock.send(1000), Duration::from_millis(5));
    }
}
