//! Every encoding through the encoder and the decoder, at several page sizes: the decoded
//! memory equals the source, the expected encoding is chosen, and no record is larger than raw.

use pagewire_codec::encoder::{Encoder, EncoderConfig, body_wire_len};
use pagewire_codec::{
    Decoder, Encoding, EncodingSet, InMemory, PageCount, PageNumber, PageRecord, PageSize,
};
use proptest::prelude::*;

/// Deterministic bytes from a small alphabet (compressible) or the full range (not).
fn bytes(seed: u64, len: usize, alphabet: u16) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 24) % u64::from(alphabet)) as u8
        })
        .collect()
}

fn text_page(seed: u64, len: usize) -> Vec<u8> {
    // Words from a small vocabulary: compresses well, like text and code pages.
    let words = [&b"page "[..], b"wire ", b"migration ", b"guest ", b"memory ", b"delta "];
    let choices = bytes(seed, len, 6);
    let mut page = Vec::with_capacity(len + 16);
    let mut i = 0;
    while page.len() < len {
        page.extend_from_slice(words[choices[i % len] as usize]);
        i += 1;
    }
    page.truncate(len);
    page
}

struct Pair {
    encoder: Encoder,
    decoder: Decoder,
    source: InMemory,
    destination: InMemory,
}

impl Pair {
    fn new(page_size: PageSize, pages: u64, encodings: EncodingSet) -> Pair {
        let mut config = EncoderConfig::new(page_size, encodings);
        config.cache_bytes = 8 * page_size.bytes() as u64;
        Pair {
            encoder: Encoder::new(config).unwrap(),
            decoder: Decoder::new(encodings),
            source: InMemory::new(page_size, PageCount(pages)).unwrap(),
            destination: InMemory::new(page_size, PageCount(pages)).unwrap(),
        }
    }

    fn write(&mut self, page: u64, content: &[u8]) {
        let size = content.len();
        let start = page as usize * size;
        self.source.as_bytes_mut()[start..start + size].copy_from_slice(content);
    }

    /// Sends `page`, applies the record, and returns it.
    fn send(&mut self, page: u64) -> Option<PageRecord> {
        let page = PageNumber(page);
        let bytes = self.source.page(page).unwrap().to_vec();
        let record = self.encoder.encode_page(page, &bytes).unwrap();
        if let Some(record) = &record {
            let page_size = PageSize::new(bytes.len() as u32).unwrap();
            assert!(body_wire_len(&record.body, page_size) <= 1 + bytes.len());
            self.decoder.apply(&mut self.destination, record).unwrap();
        }
        assert_eq!(self.destination.page(page), self.source.page(page));
        record
    }
}

fn only(encoding: Encoding) -> EncodingSet {
    EncodingSet::empty().with(encoding)
}

/// Sends a page through an encoder negotiated for one encoding (plus raw) and checks the
/// encoding of the record that content must get.
fn check_every_encoding(page_size: PageSize) {
    let size = page_size.bytes();
    let random = bytes(7, size, 256);
    let text = text_page(11, size);
    let mut edited = random.clone();
    for i in (0..size).step_by(997) {
        edited[i] ^= 0x5a;
    }
    // Many repetitive changes: a long delta that LZ4 shrinks.
    let mut text_edited = text.clone();
    for i in (0..size).step_by(64) {
        text_edited[i..i + 8].copy_from_slice(b"CHANGED!");
    }

    let mut pair = Pair::new(page_size, 4, only(Encoding::ZeroRun));
    pair.write(1, &random);
    pair.send(1);
    pair.write(1, &vec![0; size]);
    assert_eq!(pair.send(1).unwrap().body.encoding(), Encoding::ZeroRun);

    let mut pair = Pair::new(page_size, 4, EncodingSet::empty());
    pair.write(2, &text);
    assert_eq!(pair.send(2).unwrap().body.encoding(), Encoding::Raw);

    for (encoding, content) in [(Encoding::Lz4, &text), (Encoding::Zstd, &text)] {
        let mut pair = Pair::new(page_size, 4, only(encoding));
        pair.write(3, content);
        assert_eq!(pair.send(3).unwrap().body.encoding(), encoding);
    }

    let mut pair = Pair::new(page_size, 4, only(Encoding::Xbzrle));
    pair.write(0, &random);
    assert_eq!(pair.send(0).unwrap().body.encoding(), Encoding::Raw);
    pair.write(0, &edited);
    assert_eq!(pair.send(0).unwrap().body.encoding(), Encoding::Xbzrle);
    assert!(pair.send(0).is_none(), "resending the same content sends nothing");

    let mut pair = Pair::new(page_size, 4, only(Encoding::XbzrleLz4));
    pair.write(0, &text);
    pair.send(0);
    pair.write(0, &text_edited);
    assert_eq!(pair.send(0).unwrap().body.encoding(), Encoding::XbzrleLz4);

    let mut pair = Pair::new(page_size, 4, only(Encoding::Dedup));
    pair.write(0, &random);
    pair.write(3, &random);
    pair.send(0);
    let record = pair.send(3).unwrap();
    assert_eq!(record.body.encoding(), Encoding::Dedup);
}

#[test]
fn every_encoding_round_trips_at_4_kib() {
    check_every_encoding(PageSize::KIB_4);
}

#[test]
fn every_encoding_round_trips_at_16_kib() {
    check_every_encoding(PageSize::KIB_16);
}

#[test]
fn every_encoding_round_trips_at_64_kib() {
    check_every_encoding(PageSize::KIB_64);
}

#[test]
fn every_encoding_round_trips_at_2_mib() {
    check_every_encoding(PageSize::MIB_2);
}

#[test]
fn an_idle_memory_costs_one_zero_run() {
    // 32 GiB of 2 MiB pages would be 16 384 pages: same shape, smaller test. 4096 pages of
    // 4 KiB zero memory in one range give one record of a few bytes.
    let config = EncoderConfig::new(PageSize::KIB_4, EncodingSet::all_known());
    let mut encoder = Encoder::new(config).unwrap();
    let mut memory = vec![0u8; 4096 * 4096];
    memory[4096 * 1000] = 1;
    let mut records = Vec::new();
    encoder
        .encode_range(PageNumber(0), &memory, &mut records)
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].body, pagewire_codec::RecordBody::ZeroRun { count: 1000 });
    assert_eq!(records[2].body, pagewire_codec::RecordBody::ZeroRun { count: 3095 });
    let stats = encoder.stats();
    assert_eq!(stats.zero.records, 2);
    assert_eq!(stats.zero.pages, 4095);
    assert_eq!(stats.zero.bytes, 3 + 3);
    assert!(stats.total_bytes() < 100, "{stats:?}");

    let mut destination = InMemory::new(PageSize::KIB_4, PageCount(4096)).unwrap();
    destination.as_bytes_mut().fill(0xee);
    Decoder::new(EncodingSet::all_known())
        .apply_all(&mut destination, &records)
        .unwrap();
    assert_eq!(destination.as_bytes(), &memory[..]);
}

/// Page content for properties: zero, random, compressible text, or a run-structured mix.
fn page_content(size: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![0u8; size]),
        any::<u64>().prop_map(move |seed| bytes(seed, size, 256)),
        any::<u64>().prop_map(move |seed| text_page(seed, size)),
        (any::<u64>(), 1u16..8).prop_map(move |(seed, alphabet)| bytes(seed, size, alphabet)),
    ]
}

/// An edit of a page: set `len` bytes at `offset` to `value`.
fn edits() -> impl Strategy<Value = Vec<(usize, usize, u8)>> {
    proptest::collection::vec((any::<usize>(), 1usize..64, any::<u8>()), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any content, then edits of it, through an encoder with every encoding negotiated:
    /// the destination always equals the source and no record is larger than raw.
    #[test]
    fn any_content_and_edits_round_trip(
        first in page_content(4096),
        rounds in proptest::collection::vec(edits(), 1..4),
        page_size_choice in 0usize..3,
    ) {
        let page_size = [PageSize::KIB_4, PageSize::KIB_16, PageSize::KIB_64][page_size_choice];
        let size = page_size.bytes();
        let mut content: Vec<u8> = first.iter().cycle().take(size).copied().collect();
        let mut pair = Pair::new(page_size, 2, EncodingSet::all_known());
        pair.write(1, &content);
        pair.send(1);
        for round in rounds {
            for (offset, len, value) in round {
                let offset = offset % size;
                let end = (offset + len).min(size);
                content[offset..end].fill(value);
            }
            pair.write(1, &content);
            pair.send(1);
        }
    }
}
