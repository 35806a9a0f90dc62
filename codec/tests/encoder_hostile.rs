//! The decoder on hostile records: corrupt and mis-sized compressed payloads, bad deltas,
//! references outside the memory, stale dedup hashes. Every one is a typed error, never a
//! panic, and no page other than the record's own changes.

use bytes::Bytes;
use pagewire_codec::compress::{DecompressError, Lz4Compressor, ZstdCompressor};
use pagewire_codec::decoder::{ApplyError, ApplyErrorKind};
use pagewire_codec::memory::MemoryError;
use pagewire_codec::{
    ContentHash, Decoder, DestinationMemory, Encoding, EncodingSet, InMemory, PageCount,
    PageNumber, PageRecord, PageSize, RecordBody,
};
use proptest::prelude::*;

const PAGES: u64 = 4;
const PAGE: usize = 4096;

fn memory() -> InMemory {
    let mut memory = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap();
    for (i, byte) in memory.as_bytes_mut().iter_mut().enumerate() {
        *byte = (i / 7) as u8;
    }
    memory
}

fn apply(record: PageRecord) -> Result<(), ApplyError> {
    Decoder::new(EncodingSet::all_known()).apply(&mut memory(), &record)
}

fn record(page: u64, body: RecordBody) -> PageRecord {
    PageRecord {
        page: PageNumber(page),
        body,
    }
}

fn lz4_of(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(Lz4Compressor::new().compress(bytes, usize::MAX).unwrap())
}

fn zstd_of(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(
        ZstdCompressor::new(1)
            .unwrap()
            .compress(bytes, 1 << 20)
            .unwrap(),
    )
}

#[test]
fn compressed_pages_of_the_wrong_size_are_rejected() {
    for (len, tail) in [(PAGE - 1, "short"), (PAGE + 1, "long")] {
        let data = vec![3u8; len];
        for body in [
            RecordBody::Lz4(lz4_of(&data)),
            RecordBody::Zstd(zstd_of(&data)),
        ] {
            let error = apply(record(1, body)).unwrap_err();
            let ApplyError::Decompress { error, .. } = &error else {
                panic!("{tail}: {error:?}");
            };
            match tail {
                "short" => assert!(
                    matches!(error, DecompressError::TooShort { .. }),
                    "{error:?}"
                ),
                _ => assert!(
                    matches!(error, DecompressError::TooLong { .. }),
                    "{error:?}"
                ),
            }
        }
    }
}

#[test]
fn corrupt_compressed_pages_are_rejected() {
    let page: Vec<u8> = (0..PAGE).map(|i| (i % 251) as u8).collect();
    let lz4 = lz4_of(&page);
    let zstd = zstd_of(&page);
    for body in [
        RecordBody::Lz4(lz4.slice(..lz4.len() / 2)),
        RecordBody::Lz4(Bytes::from_static(&[0xf0, 0xff, 0xff, 0xff])),
        RecordBody::Lz4(Bytes::new()),
        RecordBody::Zstd(zstd.slice(..zstd.len() - 3)),
        RecordBody::Zstd(Bytes::from_static(b"not a zstd frame")),
        RecordBody::Zstd([&zstd[..], &zstd[..]].concat().into()),
    ] {
        let error = apply(record(2, body.clone())).unwrap_err();
        assert!(
            matches!(error, ApplyError::Decompress { .. }),
            "{body:?}: {error:?}"
        );
        assert_eq!(error.kind(), ApplyErrorKind::Malformed);
    }
}

#[test]
fn xbzrle_lz4_checks_the_declared_delta_length() {
    let delta = [0u8, 2, 9, 9];
    for delta_len in [0, PAGE as u32 + 1, u32::MAX] {
        let body = RecordBody::XbzrleLz4 {
            delta_len,
            compressed: lz4_of(&delta),
        };
        assert!(matches!(
            apply(record(0, body)),
            Err(ApplyError::DeltaLength { .. })
        ));
    }
    let body = RecordBody::XbzrleLz4 {
        delta_len: 5,
        compressed: lz4_of(&delta),
    };
    assert!(matches!(
        apply(record(0, body)),
        Err(ApplyError::Decompress {
            error: DecompressError::TooShort {
                expected: 5,
                actual: 4,
                ..
            },
            ..
        })
    ));
    let body = RecordBody::XbzrleLz4 {
        delta_len: 4,
        compressed: lz4_of(&delta),
    };
    apply(record(0, body)).unwrap();
}

#[test]
fn invalid_deltas_are_rejected() {
    for delta in [&[0u8, 0][..], &[0xff, 0x1f, 2, 9, 9], &[5], &[0, 3, 1]] {
        let error =
            apply(record(1, RecordBody::Xbzrle(Bytes::copy_from_slice(delta)))).unwrap_err();
        assert!(
            matches!(error, ApplyError::Xbzrle { .. }),
            "{delta:?}: {error:?}"
        );
    }
}

#[test]
fn dedup_checks_range_and_hash() {
    let memory = memory();
    let held = ContentHash::of(memory.page(PageNumber(2)).unwrap());
    let error = apply(record(
        1,
        RecordBody::Dedup {
            source: PageNumber(PAGES),
            hash: held,
        },
    ))
    .unwrap_err();
    assert!(matches!(error, ApplyError::DedupSourceOutOfRange { .. }));
    assert_eq!(error.kind(), ApplyErrorKind::PeerMisbehaved);

    let stale = ContentHash::of(&[0u8; PAGE]);
    let error = apply(record(
        1,
        RecordBody::Dedup {
            source: PageNumber(2),
            hash: stale,
        },
    ))
    .unwrap_err();
    assert!(
        matches!(error, ApplyError::DedupHashMismatch { expected, actual, .. } if expected == stale && actual == held)
    );
    assert_eq!(error.kind(), ApplyErrorKind::PeerMisbehaved);

    let mut memory = memory;
    Decoder::new(EncodingSet::all_known())
        .apply(
            &mut memory,
            &record(
                1,
                RecordBody::Dedup {
                    source: PageNumber(2),
                    hash: held,
                },
            ),
        )
        .unwrap();
    assert_eq!(memory.page(PageNumber(1)), memory.page(PageNumber(2)));
}

#[test]
fn pages_and_runs_outside_the_memory_are_rejected() {
    let raw = || RecordBody::Raw(vec![1u8; PAGE].into());
    assert!(matches!(
        apply(record(PAGES, raw())),
        Err(ApplyError::PageOutOfRange { .. })
    ));
    assert!(matches!(
        apply(record(u64::MAX, raw())),
        Err(ApplyError::PageOutOfRange { .. })
    ));
    for (first, count) in [(0, PAGES + 1), (3, 2), (u64::MAX, 2), (1, u64::MAX)] {
        assert!(matches!(
            apply(record(first, RecordBody::ZeroRun { count })),
            Err(ApplyError::ZeroRunOutOfRange { .. })
        ));
    }
    assert!(matches!(
        apply(record(0, RecordBody::ZeroRun { count: 0 })),
        Err(ApplyError::EmptyZeroRun { .. })
    ));
    assert!(matches!(
        apply(record(0, RecordBody::Raw(vec![1u8; PAGE - 1].into()))),
        Err(ApplyError::RawLength { actual: 4095, .. })
    ));
}

#[test]
fn encodings_not_negotiated_are_rejected_but_raw_is_always_accepted() {
    let mut decoder = Decoder::new(EncodingSet::empty().with(Encoding::ZeroRun));
    let mut memory = memory();
    let body = RecordBody::Lz4(lz4_of(&[0u8; PAGE]));
    let error = decoder.apply(&mut memory, &record(0, body)).unwrap_err();
    assert!(matches!(
        error,
        ApplyError::NotNegotiated {
            encoding: Encoding::Lz4,
            ..
        }
    ));
    decoder
        .apply(
            &mut memory,
            &record(0, RecordBody::Raw(vec![4u8; PAGE].into())),
        )
        .unwrap();
}

/// A memory that cannot lend pages: the decoder's copy-in, copy-out path.
struct CopyOnly(InMemory);

impl DestinationMemory for CopyOnly {
    fn page_size(&self) -> PageSize {
        self.0.page_size()
    }
    fn page_count(&self) -> PageCount {
        self.0.page_count()
    }
    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        self.0.read_page(page, out)
    }
    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        self.0.write_page(page, bytes)
    }
}

/// A hostile record body: arbitrary bytes in every payload, any lengths.
fn body() -> impl Strategy<Value = RecordBody> {
    let payload = proptest::collection::vec(any::<u8>(), 0..96).prop_map(Bytes::from);
    prop_oneof![
        (0u64..6).prop_map(|count| RecordBody::ZeroRun { count }),
        prop_oneof![Just(PAGE - 1), Just(PAGE), Just(PAGE + 1)]
            .prop_map(|len| RecordBody::Raw(vec![9u8; len].into())),
        payload.clone().prop_map(RecordBody::Xbzrle),
        (0u64..6, any::<u128>()).prop_map(|(source, hash)| RecordBody::Dedup {
            source: PageNumber(source),
            hash: ContentHash(hash),
        }),
        payload.clone().prop_map(RecordBody::Lz4),
        payload.clone().prop_map(RecordBody::Zstd),
        (0u32..5000, payload).prop_map(|(delta_len, compressed)| RecordBody::XbzrleLz4 {
            delta_len,
            compressed,
        }),
    ]
}

/// Flips, truncates or extends a valid compressed payload.
fn mutate(bytes: &Bytes, flips: &[(usize, u8)], cut: usize) -> Bytes {
    let mut out = bytes.to_vec();
    for (at, mask) in flips {
        if !out.is_empty() {
            let i = at % out.len();
            out[i] ^= mask;
        }
    }
    out.truncate(out.len().saturating_sub(cut % 4));
    out.into()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_records_never_panic_nor_touch_other_pages(
        page in prop_oneof![0u64..6, Just(u64::MAX)],
        body in body(),
        copy_only in any::<bool>(),
    ) {
        let before = memory();
        let record = record(page, body);
        let mut decoder = Decoder::new(EncodingSet::all_known());
        let (result, after) = if copy_only {
            let mut memory = CopyOnly(before.clone());
            (decoder.apply(&mut memory, &record), memory.0)
        } else {
            let mut memory = before.clone();
            (decoder.apply(&mut memory, &record), memory)
        };
        if let Err(error) = result {
            let _ = (error.to_string(), error.kind());
            // A rejected zero run changes no page at all; anything else at most its own.
            let own = (!matches!(record.body, RecordBody::ZeroRun { .. })).then_some(page);
            for other in (0..PAGES).filter(|p| Some(*p) != own) {
                prop_assert_eq!(before.page(PageNumber(other)), after.page(PageNumber(other)));
            }
        }
    }

    #[test]
    fn mutated_compressed_pages_never_panic(
        seed in any::<u8>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        cut in any::<usize>(),
    ) {
        let page: Vec<u8> = (0..PAGE).map(|i| ((i / 13) as u8).wrapping_add(seed)).collect();
        let mut decoder = Decoder::new(EncodingSet::all_known());
        for body in [
            RecordBody::Lz4(mutate(&lz4_of(&page), &flips, cut)),
            RecordBody::Zstd(mutate(&zstd_of(&page), &flips, cut)),
        ] {
            let mut memory = memory();
            match decoder.apply(&mut memory, &record(1, body)) {
                Ok(()) => {}
                Err(error) => prop_assert_eq!(error.kind(), ApplyErrorKind::Malformed),
            }
        }
    }
}
