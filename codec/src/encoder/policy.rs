//! Cost policies: how the encoder weighs bytes on the wire against CPU time.

use crate::Encoding;

/// How the encoder ranks candidate encodings of a page.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum CostPolicy {
    /// The fewest bytes on the wire, whatever the CPU time (the default).
    #[default]
    SmallestBytes,
    /// The least time: wire bytes at the link's speed plus the CPU time of the encoding,
    /// estimated from configured throughputs (the codec has no clock).
    LinkTime(LinkTime),
}

/// The link speed and CPU throughputs of [`CostPolicy::LinkTime`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkTime {
    /// Bytes per second the link carries.
    pub link_bytes_per_second: f64,
    /// How fast each encoding consumes its input.
    pub rates: CpuRates,
}

impl LinkTime {
    /// A link of `link_bytes_per_second` with the default [`CpuRates`].
    pub fn new(link_bytes_per_second: f64) -> LinkTime {
        LinkTime {
            link_bytes_per_second,
            rates: CpuRates::default(),
        }
    }
}

/// Throughputs (bytes of input per second, on one core) the encoder assumes for the encodings
/// that cost CPU beyond the zero check and the content hash, which every page pays anyway.
///
/// The defaults are the figures measured on the project's reference machines (2 vCPU Zen 4,
/// see the performance facts in the design notes): lz4_flex about 0.55 GB/s and zstd level 1
/// about 0.3 GB/s on real text and code pages; XBZRLE about 4 GB/s on typical dirty pages
/// (QEMU's encoder out of cache; ours is not slower). Measure your own machine with
/// `cargo bench -p pagewire-codec --bench encoder` and set them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuRates {
    /// XBZRLE encoding, bytes of page per second.
    pub xbzrle: f64,
    /// LZ4 compression, bytes of input per second.
    pub lz4: f64,
    /// zstd compression at the configured level, bytes of input per second.
    pub zstd: f64,
}

impl Default for CpuRates {
    fn default() -> Self {
        CpuRates {
            xbzrle: 4.0e9,
            lz4: 0.55e9,
            zstd: 0.3e9,
        }
    }
}

/// A configuration value the policy cannot work with.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("{what} must be a positive, finite number of bytes per second, not {value}")]
pub struct InvalidRate {
    /// Which rate.
    pub what: &'static str,
    /// The value given.
    pub value: f64,
}

impl CostPolicy {
    /// This policy for a link no faster than `bytes_per_second`: [`CostPolicy::LinkTime`] at
    /// the slower of its own link speed and `bytes_per_second`, the CPU rates kept;
    /// [`CostPolicy::SmallestBytes`] (which ignores time) unchanged. A transport that measured
    /// its link caps the policy it was configured with this way: the configured speed stays
    /// the ceiling (the CPU cost of pushing bytes through the transport, or an operator's rate
    /// limit), the measured one lowers it.
    ///
    /// ```
    /// use pagewire_codec::encoder::{CostPolicy, LinkTime};
    ///
    /// let configured = CostPolicy::LinkTime(LinkTime::new(2.5e9));
    /// let CostPolicy::LinkTime(link) = configured.capped_at(1.25e6) else { unreachable!() };
    /// assert_eq!(link.link_bytes_per_second, 1.25e6);
    /// let CostPolicy::LinkTime(link) = configured.capped_at(1e12) else { unreachable!() };
    /// assert_eq!(link.link_bytes_per_second, 2.5e9);
    /// assert_eq!(CostPolicy::SmallestBytes.capped_at(1e6), CostPolicy::SmallestBytes);
    /// ```
    pub fn capped_at(self, bytes_per_second: f64) -> CostPolicy {
        match self {
            CostPolicy::LinkTime(link) => CostPolicy::LinkTime(LinkTime {
                link_bytes_per_second: link.link_bytes_per_second.min(bytes_per_second),
                ..link
            }),
            CostPolicy::SmallestBytes => CostPolicy::SmallestBytes,
        }
    }

    /// Checks that every rate is positive and finite.
    pub fn validate(&self) -> Result<(), InvalidRate> {
        let CostPolicy::LinkTime(link) = self else {
            return Ok(());
        };
        for (what, value) in [
            ("link speed", link.link_bytes_per_second),
            ("xbzrle rate", link.rates.xbzrle),
            ("lz4 rate", link.rates.lz4),
            ("zstd rate", link.rates.zstd),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(InvalidRate { what, value });
            }
        }
        Ok(())
    }

    /// The CPU seconds the policy charges for encoding `input` bytes with `encoding` (a page,
    /// or for [`Encoding::XbzrleLz4`] the delta the LZ4 pass reads; the XBZRLE pass that made
    /// the delta is charged separately). Zero under [`CostPolicy::SmallestBytes`].
    pub(crate) fn cpu_seconds(&self, encoding: Encoding, input: usize) -> f64 {
        let CostPolicy::LinkTime(link) = self else {
            return 0.0;
        };
        let rate = match encoding {
            Encoding::Xbzrle => link.rates.xbzrle,
            Encoding::Lz4 | Encoding::XbzrleLz4 => link.rates.lz4,
            Encoding::Zstd => link.rates.zstd,
            _ => return 0.0,
        };
        input as f64 / rate
    }

    /// The cost of sending `wire_bytes` after spending `cpu_seconds`: bytes under
    /// [`CostPolicy::SmallestBytes`], seconds under [`CostPolicy::LinkTime`].
    pub(crate) fn cost(&self, wire_bytes: usize, cpu_seconds: f64) -> f64 {
        match self {
            CostPolicy::SmallestBytes => wire_bytes as f64,
            CostPolicy::LinkTime(link) => {
                wire_bytes as f64 / link.link_bytes_per_second + cpu_seconds
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_zero_negative_and_nan_rates() {
        assert!(CostPolicy::SmallestBytes.validate().is_ok());
        assert!(CostPolicy::LinkTime(LinkTime::new(1e9)).validate().is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(CostPolicy::LinkTime(LinkTime::new(bad)).validate().is_err());
            let mut link = LinkTime::new(1e9);
            link.rates.zstd = bad;
            assert!(CostPolicy::LinkTime(link).validate().is_err());
        }
    }

    #[test]
    fn link_time_charges_cpu_by_rate_and_bytes_by_link() {
        let policy = CostPolicy::LinkTime(LinkTime::new(1e9));
        assert_eq!(policy.cpu_seconds(Encoding::Raw, 4096), 0.0);
        assert!((policy.cpu_seconds(Encoding::Zstd, 3_000_000) - 0.01).abs() < 1e-12);
        assert!((policy.cost(1_000_000, 0.5) - 0.501).abs() < 1e-12);
        assert_eq!(CostPolicy::SmallestBytes.cost(100, 7.0), 100.0);
    }
}
