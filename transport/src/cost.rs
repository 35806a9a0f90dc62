//! The encoder's cost policy for a migration this transport carries: what a byte on the wire
//! costs, so the encoder spends CPU on a page only where that saves time.
//!
//! The codec's [`CostPolicy::LinkTime`] weighs an encoding's CPU time against its bytes at a
//! link speed. Over this transport a byte costs whichever is slower: the link, or the CPU the
//! source spends to push it through QUIC (packet framing, AES-GCM, UDP system calls), which
//! on a fast link or over loopback is the bound. A source that compressed every page there
//! (LZ4 runs at about 0.55 GB/s on real pages, zstd at 0.3) would spend several times what
//! sending the page raw costs, and move pages slower than without compression: the encoder
//! then keeps to the cheap encodings (zero runs, dedup, XBZRLE deltas, which cost less than
//! sending the page) and compresses only on links slow enough for it to pay.

use std::num::NonZeroU64;

use pagewire_codec::encoder::{CostPolicy, LinkTime};

/// Bytes per second one core of the source moves through this transport when nothing else
/// limits it: the source's CPU time per byte in a raw bulk transfer over loopback with
/// [`Tuning::default`](crate::Tuning), measured on the project's reference machines (2 vCPU):
/// 0.35–0.40 s per GB (`cargo bench -p pagewire-bench --bench pipeline`, the `raw quinn` row's
/// `src s/GB`), about 2.5 GB/s.
pub const SOURCE_BYTES_PER_CORE_SECOND: u64 = 2_500_000_000;

/// The policy for a link limited to `rate` bytes per second, or by nothing but this transport
/// (`None`): [`CostPolicy::LinkTime`] at the slower of `rate` and
/// [`SOURCE_BYTES_PER_CORE_SECOND`], with the codec's default CPU rates.
///
/// ```
/// use std::num::NonZeroU64;
/// use pagewire_codec::encoder::CostPolicy;
/// use pagewire_transport::cost::{SOURCE_BYTES_PER_CORE_SECOND, encoder_policy};
///
/// let speed = |policy| match policy {
///     CostPolicy::LinkTime(link) => link.link_bytes_per_second,
///     CostPolicy::SmallestBytes => unreachable!(),
/// };
/// let ten_megabit = NonZeroU64::new(1_250_000);
/// assert_eq!(speed(encoder_policy(ten_megabit)), 1.25e6);
/// assert_eq!(speed(encoder_policy(None)), SOURCE_BYTES_PER_CORE_SECOND as f64);
/// ```
pub fn encoder_policy(rate: Option<NonZeroU64>) -> CostPolicy {
    let bytes_per_second = rate.map_or(SOURCE_BYTES_PER_CORE_SECOND, |rate| {
        rate.get().min(SOURCE_BYTES_PER_CORE_SECOND)
    });
    CostPolicy::LinkTime(LinkTime::new(bytes_per_second as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagewire_codec::encoder::{Encoder, EncoderConfig};
    use pagewire_codec::{Encoding, EncodingSet, PageNumber, PageSize};

    /// A page of text: LZ4 and zstd shrink it several-fold.
    fn text_page(seed: u32) -> Vec<u8> {
        let line = format!("page {seed}: the quick brown fox jumps over the lazy dog. ");
        line.bytes().cycle().take(4096).collect()
    }

    /// The encodings `policy` chooses for a fresh text page and for a small change to it.
    fn choices(policy: CostPolicy) -> (Encoding, Encoding) {
        let mut config = EncoderConfig::new(PageSize::KIB_4, EncodingSet::all_known());
        config.policy = policy;
        let mut encoder = Encoder::new(config).expect("encoder");
        let mut page = text_page(7);
        let first = encoder.encode_page(PageNumber(3), &page).unwrap().unwrap();
        page[100..104].copy_from_slice(b"FOX!");
        let second = encoder.encode_page(PageNumber(3), &page).unwrap().unwrap();
        (first.body.encoding(), second.body.encoding())
    }

    #[test]
    fn an_unlimited_link_sends_raw_pages_and_deltas_but_does_not_compress() {
        assert_eq!(
            choices(encoder_policy(None)),
            (Encoding::Raw, Encoding::Xbzrle)
        );
    }

    #[test]
    fn a_slow_link_compresses() {
        let (first, second) = choices(encoder_policy(NonZeroU64::new(1_250_000)));
        assert!(
            matches!(first, Encoding::Lz4 | Encoding::Zstd),
            "a text page at 10 Mbit/s went {first:?}"
        );
        assert!(
            matches!(second, Encoding::Xbzrle | Encoding::XbzrleLz4),
            "a 4-byte change at 10 Mbit/s went {second:?}"
        );
    }

    #[test]
    fn a_rate_above_what_the_transport_moves_counts_as_the_transport() {
        let fast = NonZeroU64::new(100 * SOURCE_BYTES_PER_CORE_SECOND);
        assert_eq!(encoder_policy(fast), encoder_policy(None));
    }
}
