//! Cost policies on real page pairs (the XBZRLE conformance pairs): `SmallestBytes` picks the
//! smallest candidate, and `LinkTime` trades bytes for CPU as the link speed says.

use std::path::PathBuf;

use pagewire_codec::encoder::{CostPolicy, Encoder, EncoderConfig, LinkTime, body_wire_len};
use pagewire_codec::{Encoding, EncodingSet, PageNumber, PageSize, RecordBody};

const PAGE: usize = 4096;
/// Pairs taken from each vector file: enough variety, quick in debug builds.
const PAIRS_PER_FILE: usize = 12;

/// (old, new) page pairs from every `conformance/vectors/xbzrle/*.pairs` file.
fn pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/xbzrle");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pairs"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "vector files missing in {}",
        dir.display()
    );
    let mut pairs = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for pair in bytes.chunks_exact(2 * PAGE).take(PAIRS_PER_FILE) {
            pairs.push((pair[..PAGE].to_vec(), pair[PAGE..].to_vec()));
        }
    }
    pairs
}

fn encoder(encodings: EncodingSet, policy: CostPolicy) -> Encoder {
    let mut config = EncoderConfig::new(PageSize::KIB_4, encodings);
    config.policy = policy;
    Encoder::new(config).unwrap()
}

/// Sends `old` then `new` as page 0 and returns the second record's body.
fn second_record(encoder: &mut Encoder, old: &[u8], new: &[u8]) -> Option<RecordBody> {
    encoder.encode_page(PageNumber(0), old).unwrap();
    encoder
        .encode_page(PageNumber(0), new)
        .unwrap()
        .map(|record| record.body)
}

fn size(body: &Option<RecordBody>) -> usize {
    body.as_ref()
        .map_or(0, |body| body_wire_len(body, PageSize::KIB_4))
}

#[test]
fn smallest_bytes_picks_the_smallest_candidate() {
    let singles = [
        Encoding::Raw,
        Encoding::Xbzrle,
        Encoding::XbzrleLz4,
        Encoding::Lz4,
        Encoding::Zstd,
    ];
    let mut compressed_wins = 0;
    for (old, new) in pairs() {
        let mut best = usize::MAX;
        for encoding in singles {
            let set = EncodingSet::empty().with(Encoding::ZeroRun).with(encoding);
            let body = second_record(&mut encoder(set, CostPolicy::SmallestBytes), &old, &new);
            best = best.min(size(&body));
        }
        let chosen = second_record(
            &mut encoder(EncodingSet::all_known(), CostPolicy::SmallestBytes),
            &old,
            &new,
        );
        assert_eq!(size(&chosen), best, "chose {chosen:?}");
        assert!(size(&chosen) <= 1 + PAGE);
        if matches!(
            chosen,
            Some(RecordBody::Lz4(_) | RecordBody::Zstd(_) | RecordBody::XbzrleLz4 { .. })
        ) {
            compressed_wins += 1;
        }
    }
    assert!(compressed_wins > 0, "the pairs never exercised compression");
}

/// The CPU seconds the default rates charge for `body` (as documented on `CpuRates`).
fn cpu_seconds(body: &RecordBody) -> f64 {
    let rates = pagewire_codec::encoder::CpuRates::default();
    let page = PAGE as f64;
    match body {
        RecordBody::Xbzrle(_) => page / rates.xbzrle,
        RecordBody::XbzrleLz4 { delta_len, .. } => {
            page / rates.xbzrle + f64::from(*delta_len) / rates.lz4
        }
        RecordBody::Lz4(_) => page / rates.lz4,
        RecordBody::Zstd(_) => page / rates.zstd,
        _ => 0.0,
    }
}

fn link_cost(body: &Option<RecordBody>, link: f64) -> f64 {
    body.as_ref().map_or(0.0, |b| {
        body_wire_len(b, PageSize::KIB_4) as f64 / link + cpu_seconds(b)
    })
}

#[test]
fn link_time_at_a_very_fast_link_prefers_cheap_cpu() {
    let policy = CostPolicy::LinkTime(LinkTime::new(1e13));
    for (old, new) in pairs() {
        let body = second_record(&mut encoder(EncodingSet::all_known(), policy), &old, &new);
        let encoding = body.as_ref().map(RecordBody::encoding);
        assert!(
            matches!(
                encoding,
                None | Some(Encoding::Raw | Encoding::ZeroRun | Encoding::Dedup)
            ),
            "{encoding:?} at 10 TB/s"
        );
    }
}

#[test]
fn link_time_at_a_slow_link_compresses() {
    let policy = CostPolicy::LinkTime(LinkTime::new(1e6));
    let (mut link_bytes, mut smallest_bytes) = (0, 0);
    for (old, new) in pairs() {
        let link = second_record(&mut encoder(EncodingSet::all_known(), policy), &old, &new);
        let smallest = second_record(
            &mut encoder(EncodingSet::all_known(), CostPolicy::SmallestBytes),
            &old,
            &new,
        );
        link_bytes += size(&link);
        smallest_bytes += size(&smallest);
    }
    // At 1 MB/s a byte costs 1 µs: compression nearly always pays.
    assert!(
        link_bytes * 100 <= smallest_bytes * 102,
        "{link_bytes} vs {smallest_bytes}"
    );
}

#[test]
fn link_time_never_costs_more_than_the_smallest_choice() {
    for link in [1e8, 1e9, 4e9] {
        let policy = CostPolicy::LinkTime(LinkTime::new(link));
        let mut compressed = 0;
        for (old, new) in pairs() {
            let chosen = second_record(&mut encoder(EncodingSet::all_known(), policy), &old, &new);
            let smallest = second_record(
                &mut encoder(EncodingSet::all_known(), CostPolicy::SmallestBytes),
                &old,
                &new,
            );
            let raw = second_record(
                &mut encoder(
                    EncodingSet::empty().with(Encoding::ZeroRun),
                    CostPolicy::SmallestBytes,
                ),
                &old,
                &new,
            );
            let cost = link_cost(&chosen, link);
            assert!(
                cost <= link_cost(&smallest, link) * (1.0 + 1e-9),
                "{chosen:?} at {link}"
            );
            assert!(
                cost <= link_cost(&raw, link) * (1.0 + 1e-9),
                "{chosen:?} at {link}"
            );
            if matches!(chosen, Some(RecordBody::Lz4(_) | RecordBody::Zstd(_))) {
                compressed += 1;
            }
        }
        if link >= 1e9 {
            // At 1 GB/s, sending a 4 KiB page (4.1 µs) is cheaper than LZ4 (7.4 µs of CPU).
            assert_eq!(compressed, 0, "page compression chosen at {link} B/s");
        }
    }
}

/// A page of random bytes over 64 values: no repeats for LZ4 to find, but 6 bits of entropy
/// per byte, which zstd's entropy coding shrinks by about a quarter.
fn random_six_bit_page() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..PAGE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'0' + (state >> 58) as u8
        })
        .collect()
}

#[test]
fn zstd_is_not_tried_on_a_page_lz4_cannot_shrink() {
    let page = random_six_bit_page();
    let zstd_only = EncodingSet::empty().with(Encoding::Zstd);
    let alone = encoder(zstd_only, CostPolicy::SmallestBytes)
        .encode_page(PageNumber(0), &page)
        .unwrap()
        .unwrap();
    assert_eq!(
        alone.body.encoding(),
        Encoding::Zstd,
        "zstd alone shrinks it"
    );
    let lz4_only = EncodingSet::empty().with(Encoding::Lz4);
    let lz4 = encoder(lz4_only, CostPolicy::SmallestBytes)
        .encode_page(PageNumber(0), &page)
        .unwrap()
        .unwrap();
    assert_eq!(lz4.body.encoding(), Encoding::Raw, "LZ4 cannot shrink it");
    let both = encoder(zstd_only.with(Encoding::Lz4), CostPolicy::SmallestBytes)
        .encode_page(PageNumber(0), &page)
        .unwrap()
        .unwrap();
    assert_eq!(
        both.body.encoding(),
        Encoding::Raw,
        "LZ4's failure skips zstd"
    );
}

#[test]
fn a_new_policy_applies_to_the_pages_encoded_after_it() {
    let text: Vec<u8> = b"pagewire moves pages; "
        .iter()
        .copied()
        .cycle()
        .take(PAGE)
        .collect();
    let fast = CostPolicy::LinkTime(LinkTime::new(1e13));
    let body = |encoder: &mut Encoder, page| {
        let record = encoder.encode_page(PageNumber(page), &text).unwrap();
        record.unwrap().body.encoding()
    };
    // Dedup off: the same content on page 1 is compressed again rather than referenced.
    let mut encoder = encoder(EncodingSet::all_known().without(Encoding::Dedup), fast);
    assert_eq!(body(&mut encoder, 0), Encoding::Raw);
    encoder.set_policy(fast.capped_at(1e6)).unwrap();
    assert!(matches!(
        body(&mut encoder, 1),
        Encoding::Lz4 | Encoding::Zstd
    ));
    let invalid = CostPolicy::LinkTime(LinkTime::new(0.0));
    assert!(encoder.set_policy(invalid).is_err());
    assert_eq!(
        encoder.config().policy,
        fast.capped_at(1e6),
        "kept on error"
    );
}
