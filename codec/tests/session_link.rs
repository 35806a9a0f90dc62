//! A measured link reaches the source session: the strategy sees it, and the encoders rank
//! the pages encoded after it at the measured speed (the configured policy is the ceiling).

mod session_support;

use std::time::Duration;

use pagewire_codec::encoder::{CostPolicy, EncoderStats, LinkTime};
use pagewire_codec::phase::Phase;
use pagewire_codec::select::LinkEstimate;
use pagewire_codec::session::Event;
use session_support::{Pair, PairConfig, destination_config, source_config};

/// One pre-copy migration of the test image (text-like pages among others) under a link-time
/// policy at 2.5 GB/s; `measure` runs once the first round started. Returns the pages
/// compressed (LZ4 or zstd, of pages or deltas).
fn compressed_pages(measure: impl FnOnce(&mut Pair)) -> u64 {
    let config = PairConfig::new("precopy", 2);
    let mut source = source_config(&config.strategy, config.page_streams);
    source.policy = CostPolicy::LinkTime(LinkTime::new(2.5e9));
    let memory =
        pagewire_codec::InMemory::new(session_support::PAGE_SIZE, session_support::PAGE_COUNT)
            .unwrap();
    let mut pair = Pair::with(config, source, destination_config(), memory);
    while !pair
        .source_events
        .iter()
        .any(|event| matches!(event, Event::RoundStarted { .. }))
    {
        pair.step(|_, _| {});
    }
    measure(&mut pair);
    pair.run();
    pair.assert_no_errors();
    assert_eq!(pair.destination.phase(), Phase::Done);
    assert!(pair.destination.memory() == pair.source.memory());
    let stats = pair.source.encoder_stats();
    stats.iter().map(compressed).sum()
}

fn compressed(stats: &EncoderStats) -> u64 {
    stats.lz4.pages + stats.zstd.pages + stats.xbzrle_lz4.pages
}

#[test]
fn a_slow_measured_link_makes_the_encoders_compress() {
    assert_eq!(compressed_pages(|_| {}), 0, "raw and deltas at 2.5 GB/s");
    let slow = LinkEstimate {
        bytes_per_second: 1_000_000,
        rtt: Duration::from_millis(5),
    };
    let pages = compressed_pages(|pair| {
        pair.source.link_measured(slow);
        assert_eq!(pair.source.link_estimate(), slow);
    });
    assert!(pages > 0, "nothing compressed at 1 MB/s");
}

#[test]
fn a_measurement_overrides_the_configured_link_until_it_expires() {
    let config = PairConfig::new("precopy", 1);
    let mut source = source_config(&config.strategy, config.page_streams);
    let told = LinkEstimate {
        bytes_per_second: 125_000_000,
        rtt: Duration::from_millis(1),
    };
    source.link = told;
    let memory =
        pagewire_codec::InMemory::new(session_support::PAGE_SIZE, session_support::PAGE_COUNT)
            .unwrap();
    let mut pair = Pair::with(config, source, destination_config(), memory);
    assert_eq!(pair.source.link_estimate(), told);
    // Only a round trip measured: the configured bandwidth stays.
    pair.source.link_measured(LinkEstimate {
        bytes_per_second: 0,
        rtt: Duration::from_millis(20),
    });
    assert_eq!(
        pair.source.link_estimate(),
        LinkEstimate {
            bytes_per_second: 125_000_000,
            rtt: Duration::from_millis(20),
        }
    );
    let measured = LinkEstimate {
        bytes_per_second: 2_000_000,
        rtt: Duration::from_millis(30),
    };
    pair.source.link_measured(measured);
    assert_eq!(pair.source.link_estimate(), measured);
    pair.source.link_measured(LinkEstimate::UNKNOWN);
    assert_eq!(pair.source.link_estimate(), told);
}
