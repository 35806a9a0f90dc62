//! Each way a frame can be wrong gives its own typed error.

mod frames_support;

use bytes::{BufMut, Bytes};
use frames_support::{PAGE_COUNT, encode, limits};
use pagewire_codec::error::{EncodeError, Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
use pagewire_codec::frame::{
    Abort, AbortReason, BitmapFrame, BitmapKind, CommitDigest, DeviceState, Frame, FrameDecoder,
    FrameType, Hello, Iteration, Limits, MigrationId, PageBatch, Role, StreamHeader,
};
use pagewire_codec::varint::VarintError;
use pagewire_codec::{
    ContentHash, Encoding, EncodingSet, PageBitmap, PageCount, PageNumber, PageRecord, RecordBody,
};

fn frame_bytes(frame_type: FrameType, payload: &[u8]) -> Bytes {
    let mut wire = Vec::new();
    wire.put_u16_le(frame_type.0);
    wire.put_u16_le(0);
    wire.put_u32_le(payload.len() as u32);
    wire.extend_from_slice(payload);
    Bytes::from(wire)
}

fn decode(frame_type: FrameType, payload: &[u8]) -> Result<Option<Frame>, Error> {
    Frame::decode(&mut frame_bytes(frame_type, payload), &limits())
}

/// A page batch payload: iteration 0, then `records` raw record bytes, declaring `count`.
fn batch(count: u32, records: &[u8]) -> Vec<u8> {
    let mut payload = vec![0u8; 8];
    payload.put_u32_le(count);
    payload.extend_from_slice(records);
    payload
}

fn invalid(error: Result<Option<Frame>, Error>) -> InvalidMessage {
    match error {
        Err(Error::InvalidMessage(e)) => e,
        other => panic!("expected an invalid message, got {other:?}"),
    }
}

fn misbehaved(error: Result<Option<Frame>, Error>) -> PeerMisbehaved {
    match error {
        Err(Error::PeerMisbehaved(e)) => e,
        other => panic!("expected misbehaviour, got {other:?}"),
    }
}

#[test]
fn decoder_rejects_bad_magic() {
    let mut wire = Bytes::from_static(b"PAGEWIRX\x01\0\0\0\0\0\0\0");
    assert_eq!(
        StreamHeader::decode(&mut wire),
        Err(InvalidMessage::BadMagic(*b"PAGEWIRX").into())
    );
    // The incremental decoder refuses as soon as a wrong byte arrives.
    let mut decoder = FrameDecoder::new(limits());
    decoder.push(b"PAGX");
    assert!(matches!(
        decoder.poll(),
        Err(Error::InvalidMessage(InvalidMessage::BadMagic(_)))
    ));
}

#[test]
fn decoder_rejects_versions_other_than_v_and_v_minus_1() {
    for version in [0u16, 2, 0xffff] {
        let mut wire = b"PAGEWIRE".to_vec();
        wire.put_u16_le(version);
        wire.extend_from_slice(&[0; 6]);
        assert_eq!(
            StreamHeader::decode(&mut Bytes::from(wire)),
            Err(PeerIncompatible::UnsupportedVersion {
                version,
                oldest: 1,
                newest: 1
            }
            .into())
        );
    }
}

#[test]
fn decoder_rejects_nonzero_reserved_header_bytes() {
    let wire = Bytes::from_static(b"PAGEWIRE\x01\0\0\0\0\0\x01\0");
    assert!(matches!(
        StreamHeader::decode(&mut wire.clone()),
        Err(Error::InvalidMessage(
            InvalidMessage::ReservedNotZero { .. }
        ))
    ));
}

#[test]
fn decoder_rejects_nonzero_frame_flags() {
    let mut wire = frame_bytes(FrameType::SUSPEND, &[]).to_vec();
    wire[2] = 1;
    assert_eq!(
        invalid(Frame::decode(&mut Bytes::from(wire), &limits())),
        InvalidMessage::ReservedNotZero {
            field: "frame flags",
            value: 1
        }
    );
}

#[test]
fn decoder_rejects_frame_over_length_limit_before_buffering_payload() {
    let mut decoder = FrameDecoder::new(limits());
    let mut wire = Vec::new();
    StreamHeader::current().encode(&mut wire);
    wire.put_u16_le(FrameType::PAGE_BATCH.0);
    wire.put_u16_le(0);
    wire.put_u32_le(Limits::DEFAULT_MAX_FRAME_PAYLOAD + 1);
    decoder.push(&wire);
    assert_eq!(
        decoder.poll(),
        Err(InvalidMessage::FrameTooLarge {
            frame_type: FrameType::PAGE_BATCH,
            length: Limits::DEFAULT_MAX_FRAME_PAYLOAD + 1,
            max: Limits::DEFAULT_MAX_FRAME_PAYLOAD,
        }
        .into())
    );
    // The error sticks: the stream cannot be trusted any more.
    assert!(decoder.poll().is_err());
}

#[test]
fn limits_cannot_raise_the_hard_frame_cap() {
    let limits = Limits {
        max_frame_payload: u32::MAX,
        ..limits()
    };
    let mut wire = frame_bytes(FrameType::DEVICE_STATE, &[]).to_vec();
    wire[4..8].copy_from_slice(&(Limits::HARD_MAX_FRAME_PAYLOAD + 1).to_le_bytes());
    assert!(matches!(
        Frame::decode(&mut Bytes::from(wire), &limits),
        Err(Error::InvalidMessage(InvalidMessage::FrameTooLarge {
            max: Limits::HARD_MAX_FRAME_PAYLOAD,
            ..
        }))
    ));
}

#[test]
fn decoder_skips_unknown_optional_frame() {
    let mut wire = frame_bytes(FrameType(0x8123), b"future").to_vec();
    wire.extend_from_slice(&frame_bytes(FrameType::SUSPEND, &[]));
    let mut input = Bytes::from(wire.clone());
    assert_eq!(Frame::decode(&mut input, &limits()), Ok(None));
    assert_eq!(
        Frame::decode(&mut input, &limits()),
        Ok(Some(Frame::Suspend))
    );

    let mut decoder = FrameDecoder::new(limits());
    let mut stream = Vec::new();
    StreamHeader::current().encode(&mut stream);
    stream.extend_from_slice(&wire);
    decoder.push(&stream);
    assert_eq!(decoder.poll(), Ok(Some(Frame::Suspend)));
    assert_eq!(decoder.skipped_frames(), 1);
}

#[test]
fn decoder_rejects_unknown_mandatory_frame() {
    assert_eq!(
        decode(FrameType(0x0123), b""),
        Err(PeerIncompatible::UnknownMandatoryFrame(FrameType(0x0123)).into())
    );
}

#[test]
fn decoder_rejects_trailing_bytes() {
    assert_eq!(
        invalid(decode(FrameType::SUSPEND, &[0])),
        InvalidMessage::TrailingBytes {
            frame_type: FrameType::SUSPEND,
            count: 1
        }
    );
    assert_eq!(
        invalid(decode(FrameType::ITERATION_START, &[0; 9])),
        InvalidMessage::TrailingBytes {
            frame_type: FrameType::ITERATION_START,
            count: 1
        }
    );
}

#[test]
fn decoder_rejects_truncated_payload() {
    assert_eq!(
        invalid(decode(FrameType::ITERATION_START, &[0; 7])),
        InvalidMessage::Truncated {
            field: "iteration start",
            needed: 8,
            available: 7
        }
    );
    let mut wire = frame_bytes(FrameType::ITERATION_START, &[0; 8]).to_vec();
    wire.pop();
    assert!(matches!(
        invalid(Frame::decode(&mut Bytes::from(wire), &limits())),
        InvalidMessage::Truncated {
            field: "frame payload",
            ..
        }
    ));
}

#[test]
fn decoder_rejects_overlong_varint() {
    // pfn delta 0 written in two bytes.
    let error = invalid(decode(
        FrameType::PAGE_BATCH,
        &batch(1, &[0x80, 0x00, 0x00, 0x01]),
    ));
    assert_eq!(
        error,
        InvalidMessage::BadVarint {
            field: "record pfn delta",
            error: VarintError::Overlong
        }
    );
}

#[test]
fn decoder_rejects_page_number_overflow() {
    // A zero run ending at u64::MAX, then a record one page further.
    let mut records = Vec::new();
    pagewire_codec::varint::encode(u64::MAX - 1, &mut records);
    records.extend_from_slice(&[0x00, 0x01]);
    records.extend_from_slice(&[0x00, 0x00, 0x01]);
    let limits = Limits {
        page_count: PageCount(u64::MAX),
        ..limits()
    };
    let result = Frame::decode(
        &mut frame_bytes(FrameType::PAGE_BATCH, &batch(2, &records)),
        &limits,
    );
    assert_eq!(
        invalid(result),
        InvalidMessage::PageNumberOverflow {
            after: PageNumber(u64::MAX)
        }
    );
}

#[test]
fn decoder_rejects_record_past_page_count() {
    // Zero run at PAGE_COUNT - 1 covering two pages.
    let mut records = Vec::new();
    pagewire_codec::varint::encode(PAGE_COUNT - 1, &mut records);
    records.extend_from_slice(&[0x00, 0x02]);
    assert_eq!(
        misbehaved(decode(FrameType::PAGE_BATCH, &batch(1, &records))),
        PeerMisbehaved::PageOutOfRange {
            page: PageNumber(PAGE_COUNT),
            page_count: PageCount(PAGE_COUNT)
        }
    );
}

#[test]
fn decoder_rejects_dedup_source_outside_memory() {
    let mut records = vec![0x00, 0x03];
    pagewire_codec::varint::encode(PAGE_COUNT, &mut records);
    records.extend_from_slice(&[0; 16]);
    assert_eq!(
        misbehaved(decode(FrameType::PAGE_BATCH, &batch(1, &records))),
        PeerMisbehaved::PageOutOfRange {
            page: PageNumber(PAGE_COUNT),
            page_count: PageCount(PAGE_COUNT)
        }
    );
}

#[test]
fn decoder_rejects_empty_zero_run() {
    assert_eq!(
        invalid(decode(
            FrameType::PAGE_BATCH,
            &batch(1, &[0x05, 0x00, 0x00])
        )),
        InvalidMessage::EmptyZeroRun {
            page: PageNumber(5)
        }
    );
}

#[test]
fn decoder_rejects_unknown_encoding_tag() {
    assert_eq!(
        invalid(decode(FrameType::PAGE_BATCH, &batch(1, &[0x00, 0x42]))),
        InvalidMessage::UnknownEncoding {
            page: PageNumber(0),
            tag: 0x42
        }
    );
}

#[test]
fn decoder_rejects_encoding_not_negotiated() {
    let limits = Limits {
        encodings: EncodingSet::empty()
            .with(Encoding::ZeroRun)
            .with(Encoding::Raw),
        ..limits()
    };
    let result = Frame::decode(
        &mut frame_bytes(FrameType::PAGE_BATCH, &batch(1, &[0x00, 0x02, 0x01, 0xaa])),
        &limits,
    );
    assert_eq!(
        misbehaved(result),
        PeerMisbehaved::EncodingNotNegotiated {
            page: PageNumber(0),
            encoding: Encoding::Xbzrle
        }
    );
}

#[test]
fn decoder_rejects_record_payload_longer_than_a_page() {
    let mut records = vec![0x00, 0x04];
    pagewire_codec::varint::encode(4097, &mut records);
    let error = invalid(decode(FrameType::PAGE_BATCH, &batch(1, &records)));
    assert_eq!(
        error,
        InvalidMessage::RecordLength {
            page: PageNumber(0),
            encoding: Encoding::Lz4,
            length: 4097,
            min: 1,
            max: 4096
        }
    );
    // Checked before the bytes are taken: the payload does not even hold them.
}

#[test]
fn decoder_rejects_xbzrle_lz4_delta_length_zero() {
    let error = invalid(decode(
        FrameType::PAGE_BATCH,
        &batch(1, &[0x00, 0x06, 0x00, 0x01, 0xff]),
    ));
    assert!(matches!(
        error,
        InvalidMessage::RecordLength {
            encoding: Encoding::XbzrleLz4,
            length: 0,
            ..
        }
    ));
}

#[test]
fn decoder_rejects_zstd_frame_declaring_another_size() {
    let frame = zstd::bulk::compress(&[0u8; 8192], 1).unwrap();
    let mut records = vec![0x00, 0x05];
    pagewire_codec::varint::encode(frame.len() as u64, &mut records);
    records.extend_from_slice(&frame);
    assert_eq!(
        invalid(decode(FrameType::PAGE_BATCH, &batch(1, &records))),
        InvalidMessage::ZstdContentSize {
            page: PageNumber(0),
            declared: Some(8192)
        }
    );
    // Not a zstd frame at all.
    assert_eq!(
        invalid(decode(
            FrameType::PAGE_BATCH,
            &batch(1, &[0x00, 0x05, 0x04, 1, 2, 3, 4])
        )),
        InvalidMessage::ZstdContentSize {
            page: PageNumber(0),
            declared: None
        }
    );
}

#[test]
fn decoder_rejects_too_many_records_before_reading_them() {
    let limits = Limits {
        max_records_per_batch: 2,
        ..limits()
    };
    let result = Frame::decode(
        &mut frame_bytes(FrameType::PAGE_BATCH, &batch(3, &[])),
        &limits,
    );
    assert_eq!(
        invalid(result),
        InvalidMessage::OverLimit {
            field: "batch record count",
            value: 3,
            max: 2
        }
    );
}

#[test]
fn decoded_payloads_share_the_input_buffer() {
    let page = Bytes::from(vec![0x5a; 4096]);
    let batch = Frame::PageBatch(PageBatch {
        iteration: Iteration(1),
        records: vec![PageRecord {
            page: PageNumber(9),
            body: RecordBody::Raw(page),
        }],
    });
    let wire = Bytes::from(encode(&batch));
    let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
    let Ok(Some(Frame::PageBatch(decoded))) = Frame::decode(&mut wire.clone(), &limits()) else {
        panic!("batch decodes")
    };
    let RecordBody::Raw(bytes) = &decoded.records[0].body else {
        panic!("raw record")
    };
    assert!(
        range.contains(&(bytes.as_ptr() as usize)),
        "the raw page was copied"
    );
}

fn bitmap_payload(page_count: u64, form: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = vec![BitmapKind::Dirty.code()];
    payload.put_u64_le(page_count);
    payload.put_u8(form);
    payload.extend_from_slice(data);
    payload
}

#[test]
fn decoder_rejects_bitmap_with_another_page_count() {
    assert_eq!(
        misbehaved(decode(FrameType::BITMAP, &bitmap_payload(8, 0, &[0]))),
        PeerMisbehaved::PageCountMismatch {
            field: "bitmap page count",
            expected: PageCount(PAGE_COUNT),
            got: PageCount(8)
        }
    );
}

#[test]
fn decoder_rejects_bitmap_runs_not_adding_up_to_page_count() {
    // 1000 clear, then the input ends: one page short.
    let mut short = Vec::new();
    pagewire_codec::varint::encode(1000, &mut short);
    assert!(matches!(
        invalid(decode(
            FrameType::BITMAP,
            &bitmap_payload(PAGE_COUNT, 1, &short)
        )),
        InvalidMessage::BadVarint {
            field: "bitmap run",
            error: VarintError::Truncated
        }
    ));
    // 1000 clear, then 2 set: one page past the end.
    let mut long = short.clone();
    long.push(2);
    assert_eq!(
        invalid(decode(
            FrameType::BITMAP,
            &bitmap_payload(PAGE_COUNT, 1, &long)
        )),
        InvalidMessage::BitmapRunsMismatch {
            covered: 1002,
            page_count: PAGE_COUNT
        }
    );
}

#[test]
fn decoder_rejects_zero_length_run_after_the_first() {
    let mut runs = vec![0x00, 0x05, 0x00];
    pagewire_codec::varint::encode(PAGE_COUNT - 5, &mut runs);
    assert_eq!(
        invalid(decode(
            FrameType::BITMAP,
            &bitmap_payload(PAGE_COUNT, 1, &runs)
        )),
        InvalidMessage::ZeroLengthRun { index: 2 }
    );
}

#[test]
fn decoder_accepts_a_zero_length_first_run() {
    let mut runs = vec![0x00];
    pagewire_codec::varint::encode(PAGE_COUNT, &mut runs);
    let Ok(Some(Frame::Bitmap(bitmap))) =
        decode(FrameType::BITMAP, &bitmap_payload(PAGE_COUNT, 1, &runs))
    else {
        panic!("a full set decodes")
    };
    assert_eq!(bitmap.pages, PageBitmap::full(PageCount(PAGE_COUNT)));
}

#[test]
fn decoder_rejects_raw_bitmap_bits_past_page_count() {
    let mut bits = vec![0u8; PAGE_COUNT.div_ceil(8) as usize];
    *bits.last_mut().unwrap() = 0x02; // page 1001 of 1001 pages (0-based 1001): past the end
    assert_eq!(
        invalid(decode(
            FrameType::BITMAP,
            &bitmap_payload(PAGE_COUNT, 0, &bits)
        )),
        InvalidMessage::BitmapBitsPastEnd {
            page_count: PAGE_COUNT
        }
    );
}

#[test]
fn decoder_rejects_unknown_bitmap_kind_and_form() {
    let mut payload = bitmap_payload(PAGE_COUNT, 0, &[0; 126]);
    payload[0] = 3;
    assert_eq!(
        invalid(decode(FrameType::BITMAP, &payload)),
        InvalidMessage::InvalidValue {
            field: "bitmap kind",
            value: 3
        }
    );
    assert_eq!(
        invalid(decode(
            FrameType::BITMAP,
            &bitmap_payload(PAGE_COUNT, 2, &[])
        )),
        InvalidMessage::InvalidValue {
            field: "bitmap form",
            value: 2
        }
    );
}

#[test]
fn decoder_rejects_abort_message_over_limit_or_not_utf8() {
    let mut payload = Vec::new();
    payload.put_u16_le(AbortReason::Cancelled.code());
    payload.put_u16_le(1025);
    payload.extend_from_slice(&[b'x'; 1025]);
    assert_eq!(
        invalid(decode(FrameType::ABORT, &payload)),
        InvalidMessage::OverLimit {
            field: "abort message length",
            value: 1025,
            max: 1024
        }
    );
    let not_utf8 = [0x01, 0x00, 0x02, 0x00, b'a', 0xff];
    assert_eq!(
        invalid(decode(FrameType::ABORT, &not_utf8)),
        InvalidMessage::NotUtf8 {
            field: "abort message",
            valid_up_to: 1
        }
    );
}

#[test]
fn abort_keeps_unknown_reason_codes() {
    let Ok(Some(Frame::Abort(abort))) = decode(FrameType::ABORT, &[0x34, 0x12, 0, 0]) else {
        panic!("abort decodes")
    };
    assert_eq!(
        abort,
        Abort {
            reason: AbortReason::Unknown(0x1234),
            message: String::new()
        }
    );
}

#[test]
fn decoder_rejects_device_state_chunk_past_its_total() {
    let mut payload = Vec::new();
    payload.put_u64_le(10);
    payload.put_u64_le(8);
    payload.extend_from_slice(&[1, 2, 3]);
    assert_eq!(
        invalid(decode(FrameType::DEVICE_STATE, &payload)),
        InvalidMessage::DeviceStateChunkPastEnd {
            offset: 8,
            length: 3,
            total: 10
        }
    );
    let mut huge = Vec::new();
    huge.put_u64_le(u64::MAX);
    huge.put_u64_le(0);
    assert!(matches!(
        invalid(decode(FrameType::DEVICE_STATE, &huge)),
        InvalidMessage::OverLimit {
            field: "device state total",
            ..
        }
    ));
}

#[test]
fn decoder_rejects_digest_with_wrong_range_count() {
    let mut payload = Vec::new();
    payload.put_u32_le(100);
    payload.put_u32_le(10); // 1001 pages need 11 ranges of 100
    payload.extend_from_slice(&[0; 160]);
    assert_eq!(
        misbehaved(decode(FrameType::COMMIT_DIGEST, &payload)),
        PeerMisbehaved::DigestRangeCount {
            expected: 11,
            got: 10
        }
    );
}

#[test]
fn decoder_rejects_digest_range_count_over_limit_before_allocating() {
    let mut payload = Vec::new();
    payload.put_u32_le(1);
    payload.put_u32_le(u32::MAX);
    assert!(matches!(
        invalid(decode(FrameType::COMMIT_DIGEST, &payload)),
        InvalidMessage::OverLimit {
            field: "digest range count",
            ..
        }
    ));
}

#[test]
fn digest_of_a_range_is_xxh3_of_its_page_hashes() {
    let pages: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 4096]).collect();
    let digest = CommitDigest::compute(2, PageCount(5), |p| ContentHash::of(&pages[p.0 as usize]));
    let mut last = Vec::new();
    last.extend_from_slice(&ContentHash::of(&pages[4]).to_le_bytes());
    assert_eq!(digest.ranges.len(), 3);
    assert_eq!(digest.ranges[2], ContentHash::of(&last));
    let mut first = Vec::new();
    first.extend_from_slice(&ContentHash::of(&pages[0]).to_le_bytes());
    first.extend_from_slice(&ContentHash::of(&pages[1]).to_le_bytes());
    assert_eq!(digest.ranges[0], ContentHash::of(&first));
}

#[test]
fn decoder_rejects_unsupported_page_size_in_hello() {
    let hello = Hello::new(
        Role::Source,
        MigrationId([0; 16]),
        pagewire_codec::PageSize::KIB_4,
        PageCount(1),
    );
    let mut wire = encode(&Frame::Hello(hello));
    wire[8 + 4..8 + 8].copy_from_slice(&3000u32.to_le_bytes());
    assert_eq!(
        Frame::decode(&mut Bytes::from(wire), &limits()),
        Err(PeerIncompatible::UnsupportedPageSize(3000).into())
    );
}

#[test]
fn decoder_rejects_undefined_reservation_status_and_stray_reason() {
    assert_eq!(
        invalid(decode(FrameType::RESERVATION, &[2, 0, 0, 0])),
        InvalidMessage::InvalidValue {
            field: "reservation status",
            value: 2
        }
    );
    assert!(matches!(
        invalid(decode(FrameType::RESERVATION, &[0, 0, 1, 0])),
        InvalidMessage::ReservedNotZero { .. }
    ));
}

#[test]
fn decoder_rejects_page_request_outside_memory_or_empty() {
    let mut payload = vec![0x01];
    pagewire_codec::varint::encode(PAGE_COUNT, &mut payload);
    assert!(matches!(
        misbehaved(decode(FrameType::PAGE_REQUEST, &payload)),
        PeerMisbehaved::PageOutOfRange { .. }
    ));
    assert_eq!(
        invalid(decode(FrameType::PAGE_REQUEST, &[0x00])),
        InvalidMessage::InvalidValue {
            field: "page request",
            value: 0
        }
    );
}

#[test]
fn encoder_rejects_unordered_or_overlapping_records() {
    let records = vec![
        PageRecord {
            page: PageNumber(10),
            body: RecordBody::ZeroRun { count: 5 },
        },
        PageRecord {
            page: PageNumber(12),
            body: RecordBody::ZeroRun { count: 1 },
        },
    ];
    let frame = Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records,
    });
    let mut out = Vec::new();
    assert_eq!(
        frame.encode(&mut out, &limits()),
        Err(EncodeError::PagesNotAscending {
            page: PageNumber(12),
            next: PageNumber(15)
        })
    );
    assert!(out.is_empty(), "nothing is written on error");
}

#[test]
fn encoder_rejects_raw_page_of_the_wrong_length() {
    let records = vec![PageRecord {
        page: PageNumber(0),
        body: RecordBody::Raw(Bytes::from(vec![0; 100])),
    }];
    let frame = Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records,
    });
    assert!(matches!(
        frame.encode(&mut Vec::new(), &limits()),
        Err(EncodeError::Invalid(Error::InvalidMessage(
            InvalidMessage::RecordLength { length: 100, .. }
        )))
    ));
}

#[test]
fn encoder_rejects_payload_over_the_receivers_limit() {
    let state = DeviceState {
        total: 5000,
        offset: 0,
        data: Bytes::from(vec![0; 5000]),
    };
    let limits = Limits {
        max_frame_payload: 4096,
        ..limits()
    };
    assert_eq!(
        Frame::DeviceState(state).encode(&mut Vec::new(), &limits),
        Err(EncodeError::PayloadTooLarge {
            length: 5016,
            max: 4096
        })
    );
}

#[test]
fn bitmap_page_count_must_match_on_encode() {
    let frame = Frame::Bitmap(BitmapFrame {
        kind: BitmapKind::Dirty,
        pages: PageBitmap::new(PageCount(8)),
    });
    assert!(frame.encode(&mut Vec::new(), &limits()).is_err());
}

#[test]
fn negotiation_refuses_another_vm_and_missing_mandatory_encodings() {
    let source = Hello::new(
        Role::Source,
        MigrationId([1; 16]),
        pagewire_codec::PageSize::KIB_4,
        PageCount(100),
    );
    let destination = Hello {
        role: Role::Destination,
        ..source.clone()
    };
    assert!(Hello::negotiate(&source, &destination).is_ok());
    let other = Hello {
        migration_id: MigrationId([2; 16]),
        ..destination.clone()
    };
    assert_eq!(
        Hello::negotiate(&source, &other),
        Err(PeerIncompatible::OtherVm("migration id"))
    );
    let bigger = Hello {
        page_count: PageCount(101),
        ..destination.clone()
    };
    assert_eq!(
        Hello::negotiate(&source, &bigger),
        Err(PeerIncompatible::OtherVm("page count"))
    );
    let no_raw = Hello {
        encodings: EncodingSet::empty().with(Encoding::ZeroRun),
        ..destination.clone()
    };
    assert_eq!(
        Hello::negotiate(&source, &no_raw),
        Err(PeerIncompatible::MissingMandatoryEncoding(Encoding::Raw))
    );
    let tiny = Hello {
        max_frame_payload: 4096,
        ..destination
    };
    assert_eq!(
        Hello::negotiate(&source, &tiny),
        Err(PeerIncompatible::FrameLimitTooSmall {
            max_frame_payload: 4096,
            needed: 4096 + 64
        })
    );
}
