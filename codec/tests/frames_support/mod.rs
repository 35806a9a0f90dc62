//! Shared proptest strategies for the frame tests: every frame, over a small memory.
#![allow(dead_code)] // each test file uses a different part

use bytes::Bytes;
use pagewire_codec::frame::{
    Abort, AbortReason, BitmapFrame, BitmapKind, CommitAnswer, CommitDigest, DeviceState, Features,
    Frame, Hello, Iteration, IterationEnd, Limits, MigrationId, PageBatch, PageRequest,
    RefusalReason, ReservationAnswer, Resume, Role,
};
use pagewire_codec::{
    ContentHash, EncodingSet, PageBitmap, PageCount, PageNumber, PageRecord, PageSize, RecordBody,
};
use proptest::prelude::*;

/// The memory every strategy draws pages from: 1001 pages (not a multiple of 8 or 64).
pub const PAGE_COUNT: u64 = 1001;

/// Limits over that memory, 4 KiB pages, every encoding.
pub fn limits() -> Limits {
    Limits::default().with_memory(
        PageSize::KIB_4,
        PageCount(PAGE_COUNT),
        EncodingSet::all_known(),
    )
}

/// Encodes `frame` under `limits()`.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame
        .encode(&mut out, &limits())
        .expect("strategy frames are encodable");
    assert_eq!(out.len(), frame.encoded_len());
    out
}

fn bytes(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), len).prop_map(Bytes::from)
}

/// A real zstd frame of one 4 KiB page (the decoder checks its declared content size).
fn zstd_page() -> impl Strategy<Value = Bytes> {
    (any::<u8>(), 1usize..64).prop_map(|(fill, stripe)| {
        let page: Vec<u8> = (0..4096)
            .map(|i| if i % stripe == 0 { fill } else { 0 })
            .collect();
        Bytes::from(zstd::bulk::compress(&page, 1).expect("zstd compresses"))
    })
}

pub fn record_body() -> impl Strategy<Value = RecordBody> {
    prop_oneof![
        (1u64..40).prop_map(|count| RecordBody::ZeroRun { count }),
        any::<u8>().prop_map(|fill| RecordBody::Raw(Bytes::from(vec![fill; 4096]))),
        bytes(0..=80).prop_map(RecordBody::Xbzrle),
        (0..PAGE_COUNT, any::<u128>()).prop_map(|(source, hash)| RecordBody::Dedup {
            source: PageNumber(source),
            hash: ContentHash(hash),
        }),
        bytes(1..=80).prop_map(RecordBody::Lz4),
        zstd_page().prop_map(RecordBody::Zstd),
        (1u32..=4096, bytes(1..=80)).prop_map(|(delta_len, compressed)| RecordBody::XbzrleLz4 {
            delta_len,
            compressed,
        }),
    ]
}

/// Records with strictly ascending, non-overlapping pages inside the memory.
pub fn records() -> impl Strategy<Value = Vec<PageRecord>> {
    proptest::collection::vec((0u64..30, record_body()), 0..24).prop_map(|drafts| {
        let mut next = 0u64;
        let mut records = Vec::new();
        for (gap, body) in drafts {
            let page = next + gap;
            let end = page + body.pages_covered();
            if end > PAGE_COUNT {
                break;
            }
            records.push(PageRecord {
                page: PageNumber(page),
                body,
            });
            next = end;
        }
        records
    })
}

/// Sets over the memory: sparse ranges (run-length form) and dense noise (raw form).
pub fn page_bitmap() -> impl Strategy<Value = PageBitmap> {
    let ranges = proptest::collection::vec((0..PAGE_COUNT, 0u64..200), 0..6);
    let noise = proptest::collection::vec(0..PAGE_COUNT, 0..400);
    (ranges, noise, any::<bool>()).prop_map(|(ranges, noise, full)| {
        let mut set = if full {
            PageBitmap::full(PageCount(PAGE_COUNT))
        } else {
            PageBitmap::new(PageCount(PAGE_COUNT))
        };
        for (start, len) in ranges {
            set.insert_range(PageNumber(start), len);
        }
        for page in noise {
            set.insert(PageNumber(page));
        }
        set
    })
}

fn page_size() -> impl Strategy<Value = PageSize> {
    (12u32..=21).prop_map(|shift| PageSize::new(1 << shift).unwrap())
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        page_size(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<[u8; 16]>(),
        "[a-z0-9é-]{0,40}",
    )
        .prop_map(
            |(
                max_version,
                destination,
                resume,
                page_size,
                page_count,
                encodings,
                max_frame,
                features,
                id,
                name,
            )| Hello {
                max_version,
                role: if destination {
                    Role::Destination
                } else {
                    Role::Source
                },
                resume: resume && !destination,
                page_size,
                page_count: PageCount(page_count),
                encodings: EncodingSet(encodings),
                max_frame_payload: max_frame,
                features: Features(features),
                migration_id: MigrationId(id),
                vm_name: name,
            },
        )
}

fn ascending_pages(max_len: usize) -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::btree_set(0..PAGE_COUNT, 1..max_len)
        .prop_map(|set| set.into_iter().collect())
}

/// Every frame this version defines, valid under `limits()`.
pub fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        hello().prop_map(Frame::Hello),
        prop_oneof![
            Just(ReservationAnswer::Accepted),
            any::<u16>()
                .prop_map(|code| ReservationAnswer::Refused(RefusalReason::from_code(code))),
        ]
        .prop_map(Frame::Reservation),
        (any::<u64>(), page_bitmap()).prop_map(|(next, received)| Frame::Resume(Resume {
            next_iteration: Iteration(next),
            received,
        })),
        any::<u64>().prop_map(|i| Frame::IterationStart(Iteration(i))),
        (any::<u64>(), records()).prop_map(|(i, records)| Frame::PageBatch(PageBatch {
            iteration: Iteration(i),
            records,
        })),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(i, batches, pages)| {
            Frame::IterationEnd(IterationEnd {
                iteration: Iteration(i),
                batches,
                pages,
            })
        }),
        (0u8..3, page_bitmap()).prop_map(|(kind, pages)| Frame::Bitmap(BitmapFrame {
            kind: [
                BitmapKind::Dirty,
                BitmapKind::Received,
                BitmapKind::Deferred
            ][kind as usize],
            pages,
        })),
        Just(Frame::Suspend),
        (bytes(0..=100), 0u64..1000, 0u64..1000).prop_map(|(data, offset, extra)| {
            Frame::DeviceState(DeviceState {
                total: offset + data.len() as u64 + extra,
                offset,
                data,
            })
        }),
        Just(Frame::PostcopyBegin),
        ascending_pages(50).prop_map(|pages| Frame::PageRequest(PageRequest {
            pages: pages.into_iter().map(PageNumber).collect(),
        })),
        (1u32..2000, any::<u128>()).prop_map(|(pages_per_range, seed)| Frame::CommitDigest(
            CommitDigest::compute(pages_per_range, PageCount(PAGE_COUNT), |p| ContentHash(
                seed ^ u128::from(p.0)
            ),)
        )),
        prop_oneof![
            Just(CommitAnswer::Agree),
            ascending_pages(30).prop_map(CommitAnswer::Mismatch)
        ]
        .prop_map(Frame::CommitAnswer),
        Just(Frame::Activate),
        Just(Frame::Activated),
        (any::<u16>(), "[ -~é]{0,200}").prop_map(|(code, message)| Frame::Abort(Abort {
            reason: AbortReason::from_code(code),
            message,
        })),
    ]
}
