//! The model test of the encoder's state: random guest writes (random content, zeroes, copies
//! of other pages, small edits) interleaved with sends in random order, through a cache small
//! enough to evict. After every record is applied, every page sent since its last write is
//! identical at the destination. A stale cache entry (wrong XBZRLE base) or a stale dedup
//! entry would break this: the first corrupts the page, the second is rejected by the decoder.

use pagewire_codec::encoder::{CostPolicy, Encoder, EncoderConfig, LinkTime, body_wire_len};
use pagewire_codec::{Decoder, Encoding, EncodingSet, InMemory, PageCount, PageNumber, PageSize};
use proptest::prelude::*;

const PAGES: u64 = 6;
const PAGE: usize = 4096;

#[derive(Clone, Debug)]
enum Op {
    /// Fill the page with content from a small set (so contents repeat across pages).
    WriteContent { page: u64, content: u8 },
    /// Zero the page.
    WriteZero { page: u64 },
    /// Copy another page's content.
    Copy { from: u64, to: u64 },
    /// Change a few bytes.
    Edit {
        page: u64,
        offset: usize,
        value: u8,
        len: usize,
    },
    /// Send the page and apply its record.
    Send { page: u64 },
    /// Send every page, in order, through `encode_range` (zero runs coalesce).
    SendAll,
}

fn op() -> impl Strategy<Value = Op> {
    let page = 0..PAGES;
    prop_oneof![
        3 => (page.clone(), 0u8..5).prop_map(|(page, content)| Op::WriteContent { page, content }),
        1 => page.clone().prop_map(|page| Op::WriteZero { page }),
        2 => (page.clone(), page.clone()).prop_map(|(from, to)| Op::Copy { from, to }),
        3 => (page.clone(), 0..PAGE, any::<u8>(), 1usize..40)
            .prop_map(|(page, offset, value, len)| Op::Edit { page, offset, value, len }),
        8 => page.prop_map(|page| Op::Send { page }),
        1 => Just(Op::SendAll),
    ]
}

fn content(n: u8) -> Vec<u8> {
    // Five contents: text-like (compressible) and pseudo-random (not).
    let mut state = 0x2545_f491_4f6c_dd1du64.wrapping_mul(u64::from(n) + 1);
    (0..PAGE)
        .map(|i| {
            if n.is_multiple_of(2) {
                b"the quick brown fox "[(i + n as usize) % 20]
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            }
        })
        .collect()
}

fn run(
    ops: Vec<Op>,
    cache_pages: u64,
    dedup_entries: usize,
    policy: CostPolicy,
) -> Result<(), TestCaseError> {
    let page_size = PageSize::KIB_4;
    let encodings = EncodingSet::all_known();
    let mut config = EncoderConfig::new(page_size, encodings);
    config.cache_bytes = cache_pages * PAGE as u64;
    config.dedup_entries = dedup_entries;
    config.policy = policy;
    let mut encoder = Encoder::new(config).unwrap();
    let mut decoder = Decoder::new(encodings);
    let mut source = InMemory::new(page_size, PageCount(PAGES)).unwrap();
    let mut destination = InMemory::new(page_size, PageCount(PAGES)).unwrap();
    // The destination starts with garbage: nothing may be assumed about unsent pages.
    destination.as_bytes_mut().fill(0xa5);
    let mut clean = [false; PAGES as usize];

    for op in ops {
        let bytes = source.as_bytes_mut();
        let range = |page: u64| page as usize * PAGE..(page as usize + 1) * PAGE;
        match op {
            Op::WriteContent { page, content: n } => {
                bytes[range(page)].copy_from_slice(&content(n));
                clean[page as usize] = false;
            }
            Op::WriteZero { page } => {
                bytes[range(page)].fill(0);
                clean[page as usize] = false;
            }
            Op::Copy { from, to } => {
                bytes.copy_within(range(from), range(to).start);
                clean[to as usize] = false;
            }
            Op::Edit {
                page,
                offset,
                value,
                len,
            } => {
                let start = range(page).start + offset;
                let end = (start + len).min(range(page).end);
                bytes[start..end].fill(value);
                clean[page as usize] = false;
            }
            Op::Send { page } => {
                let page = PageNumber(page);
                let record = encoder
                    .encode_page(page, source.page(page).unwrap())
                    .unwrap();
                if let Some(record) = record {
                    prop_assert!(body_wire_len(&record.body, page_size) <= 1 + PAGE);
                    decoder
                        .apply(&mut destination, &record)
                        .map_err(|e| TestCaseError::fail(format!("{record:?} rejected: {e}")))?;
                }
                clean[page.index()] = true;
            }
            Op::SendAll => {
                let mut records = Vec::new();
                encoder
                    .encode_range(PageNumber(0), source.as_bytes(), &mut records)
                    .unwrap();
                for record in &records {
                    decoder
                        .apply(&mut destination, record)
                        .map_err(|e| TestCaseError::fail(format!("{record:?} rejected: {e}")))?;
                }
                clean = [true; PAGES as usize];
            }
        }
        for page in (0..PAGES).filter(|p| clean[*p as usize]) {
            let page = PageNumber(page);
            let (sent, held) = (source.page(page).unwrap(), destination.page(page).unwrap());
            if let Some(offset) = sent.iter().zip(held).position(|(a, b)| a != b) {
                return Err(TestCaseError::fail(format!(
                    "{page} differs at byte {offset}"
                )));
            }
        }
    }
    let stats = encoder.stats();
    prop_assert!(stats.cache.inserts >= stats.cache.evictions);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn destination_equals_source_for_every_sent_page(
        ops in proptest::collection::vec(op(), 1..120),
        cache_pages in 0u64..5,
        dedup_entries in 1usize..16,
    ) {
        run(ops, cache_pages, dedup_entries, CostPolicy::SmallestBytes)?;
    }

    #[test]
    fn destination_equals_source_under_link_time(
        ops in proptest::collection::vec(op(), 1..120),
        cache_pages in 0u64..5,
        link in prop_oneof![Just(1e6), Just(1e9), Just(1e12)],
    ) {
        run(ops, cache_pages, 64, CostPolicy::LinkTime(LinkTime::new(link)))?;
    }
}

#[test]
fn the_model_exercises_every_encoding() {
    // A fixed scenario that must hit every encoding, so the property above is known to
    // cover them all (not just raw).
    let page_size = PageSize::KIB_4;
    let mut config = EncoderConfig::new(page_size, EncodingSet::all_known());
    config.cache_bytes = 4 * PAGE as u64;
    let mut encoder = Encoder::new(config).unwrap();
    let random = content(1);
    let text = content(2);
    let mut small_edit = random.clone();
    small_edit[10] ^= 1;
    let mut big_edit = text.clone();
    for i in (0..PAGE).step_by(64) {
        big_edit[i..i + 8].copy_from_slice(b"CHANGED!");
    }
    let mut seen = std::collections::HashSet::new();
    for (page, bytes) in [
        (0, &vec![0u8; PAGE]),
        (1, &random),
        (2, &text),
        (3, &random),
        (1, &small_edit),
        (2, &big_edit),
    ] {
        let record = encoder
            .encode_page(PageNumber(page), bytes)
            .unwrap()
            .unwrap();
        seen.insert(record.body.encoding());
    }
    let mut compressed = text.clone();
    compressed[0] = b'X';
    let record = encoder
        .encode_page(PageNumber(5), &compressed)
        .unwrap()
        .unwrap();
    seen.insert(record.body.encoding());
    let expected = [
        Encoding::ZeroRun,
        Encoding::Raw,
        Encoding::Zstd,
        Encoding::Dedup,
        Encoding::Xbzrle,
        Encoding::XbzrleLz4,
    ];
    for encoding in expected {
        assert!(
            seen.contains(&encoding),
            "{encoding:?} not seen in {seen:?}"
        );
    }
}
