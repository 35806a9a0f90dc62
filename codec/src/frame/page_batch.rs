//! PAGE_BATCH: page records of one iteration, with delta-coded page numbers.
//!
//! Payload: `iteration u64 | record_count u32 | record*`. A record is
//! `pfn_delta varint | tag u8 | body`; the first record's page is its delta, each later
//! record's page is the previous record's page plus the pages it covered plus the delta, so
//! pages are strictly ascending and records never overlap. The body depends on the tag (see
//! [`crate::Encoding`] and `spec/wire.md`). Payload bytes are `Bytes` slices of the frame; a
//! decoded batch shares the received buffer.

use bytes::BufMut;

use crate::error::{EncodeError, Error, InvalidMessage, PeerMisbehaved};
use crate::frame::reader::check_limit;
use crate::frame::{Iteration, Limits, Reader};
use crate::varint;
use crate::{ContentHash, Encoding, PageNumber, PageRecord, RecordBody};

/// The records of one page batch.
///
/// ```
/// use bytes::Bytes;
/// use pagewire_codec::frame::{Frame, Iteration, Limits, PageBatch};
/// use pagewire_codec::{EncodingSet, PageCount, PageNumber, PageRecord, PageSize, RecordBody};
/// let limits = Limits::default().with_memory(PageSize::KIB_4, PageCount(64), EncodingSet::all_known());
/// let batch = PageBatch {
///     iteration: Iteration(0),
///     records: vec![
///         PageRecord { page: PageNumber(0), body: RecordBody::ZeroRun { count: 16 } },
///         PageRecord { page: PageNumber(20), body: RecordBody::Raw(Bytes::from(vec![7; 4096])) },
///     ],
/// };
/// let mut wire = Vec::new();
/// Frame::PageBatch(batch.clone()).encode(&mut wire, &limits).unwrap();
/// let frame = Frame::decode(&mut Bytes::from(wire), &limits).unwrap().unwrap();
/// assert_eq!(frame, Frame::PageBatch(batch));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageBatch {
    /// The iteration the records belong to.
    pub iteration: Iteration,
    /// The records, pages strictly ascending and not overlapping.
    pub records: Vec<PageRecord>,
}

/// The fixed part of the payload: iteration (8) and record count (4).
const HEADER_LEN: usize = 12;

impl PageBatch {
    pub(crate) fn payload_len(&self) -> usize {
        let mut next = 0u64;
        let mut len = HEADER_LEN;
        for record in &self.records {
            len +=
                varint::encoded_len(record.page.0.wrapping_sub(next)) + 1 + body_len(&record.body);
            next = record.page.0.wrapping_add(record.body.pages_covered());
        }
        len
    }

    /// Checks that every record is one a receiver with `limits` accepts.
    pub(crate) fn check(&self, limits: &Limits) -> Result<(), EncodeError> {
        check_limit(
            "batch record count",
            self.records.len() as u64,
            u64::from(limits.max_records_per_batch),
        )?;
        let mut next = PageNumber(0);
        for record in &self.records {
            if record.page < next {
                return Err(EncodeError::PagesNotAscending {
                    page: record.page,
                    next,
                });
            }
            next = check_record(record, limits)?;
        }
        Ok(())
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u64_le(self.iteration.0);
        out.put_u32_le(self.records.len() as u32);
        let mut next = 0u64;
        for record in &self.records {
            varint::encode(record.page.0 - next, out);
            out.put_u8(record.body.encoding().tag());
            encode_body(&record.body, out);
            next = record.page.0 + record.body.pages_covered();
        }
    }

    pub(crate) fn decode_payload(reader: &mut Reader, limits: &Limits) -> Result<PageBatch, Error> {
        let iteration = Iteration(reader.u64("batch iteration")?);
        let count = reader.u32("batch record count")?;
        check_limit(
            "batch record count",
            u64::from(count),
            u64::from(limits.max_records_per_batch),
        )?;
        // Every record takes at least two bytes, so the payload bounds the allocation too.
        let mut records = Vec::with_capacity((count as usize).min(reader.remaining() / 2));
        let mut next = PageNumber(0);
        for _ in 0..count {
            let delta = reader.varint("record pfn delta")?;
            let page = next
                .checked_add(delta)
                .ok_or(InvalidMessage::PageNumberOverflow { after: next })?;
            let tag = reader.u8("record tag")?;
            let body = decode_body(page, tag, reader, limits)?;
            let record = PageRecord { page, body };
            next = check_record(&record, limits)?;
            records.push(record);
        }
        Ok(PageBatch { iteration, records })
    }
}

/// The smallest and largest payload a record of `encoding` may carry, for pages of
/// `page_size` bytes (raw: exactly one page; others: at most one page, since a larger payload
/// would be sent raw).
fn payload_bounds(encoding: Encoding, page_size: u64) -> (u64, u64) {
    match encoding {
        Encoding::Raw => (page_size, page_size),
        Encoding::Xbzrle => (0, page_size),
        _ => (1, page_size),
    }
}

fn check_payload_len(
    page: PageNumber,
    encoding: Encoding,
    length: u64,
    limits: &Limits,
) -> Result<(), InvalidMessage> {
    let (min, max) = payload_bounds(encoding, limits.page_size.get().into());
    if !(min..=max).contains(&length) {
        return Err(InvalidMessage::RecordLength {
            page,
            encoding,
            length,
            min,
            max,
        });
    }
    Ok(())
}

/// Checks one record against `limits` (negotiated encoding, payload lengths, pages inside the
/// memory); returns the page after the last one it covers.
fn check_record(record: &PageRecord, limits: &Limits) -> Result<PageNumber, Error> {
    let page = record.page;
    let encoding = record.body.encoding();
    if !limits.encodings.contains(encoding) {
        return Err(PeerMisbehaved::EncodingNotNegotiated { page, encoding }.into());
    }
    let page_count = limits.page_count;
    match &record.body {
        RecordBody::ZeroRun { count: 0 } => {
            return Err(InvalidMessage::EmptyZeroRun { page }.into());
        }
        RecordBody::ZeroRun { .. } => {}
        RecordBody::Raw(bytes) | RecordBody::Xbzrle(bytes) | RecordBody::Lz4(bytes) => {
            check_payload_len(page, encoding, bytes.len() as u64, limits)?;
        }
        RecordBody::Zstd(bytes) => {
            check_payload_len(page, encoding, bytes.len() as u64, limits)?;
            check_zstd_content_size(page, bytes, limits)?;
        }
        RecordBody::XbzrleLz4 {
            delta_len,
            compressed,
        } => {
            check_payload_len(page, Encoding::XbzrleLz4, u64::from(*delta_len), limits)?;
            check_payload_len(page, encoding, compressed.len() as u64, limits)?;
        }
        RecordBody::Dedup { source, .. } => {
            if !page_count.contains(*source) {
                return Err(PeerMisbehaved::PageOutOfRange {
                    page: *source,
                    page_count,
                }
                .into());
            }
        }
    }
    let end = page
        .checked_add(record.body.pages_covered())
        .ok_or(InvalidMessage::PageNumberOverflow { after: page })?;
    if end.0 > page_count.0 {
        return Err(PeerMisbehaved::PageOutOfRange {
            page: PageNumber(end.0 - 1),
            page_count,
        }
        .into());
    }
    Ok(end)
}

/// A zstd frame header that declares its content size must declare exactly one page.
fn check_zstd_content_size(
    page: PageNumber,
    frame: &[u8],
    limits: &Limits,
) -> Result<(), InvalidMessage> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(None) => Ok(()),
        Ok(Some(size)) if size == u64::from(limits.page_size.get()) => Ok(()),
        Ok(Some(size)) => Err(InvalidMessage::ZstdContentSize {
            page,
            declared: Some(size),
        }),
        Err(_) => Err(InvalidMessage::ZstdContentSize {
            page,
            declared: None,
        }),
    }
}

fn body_len(body: &RecordBody) -> usize {
    match body {
        RecordBody::ZeroRun { count } => varint::encoded_len(*count),
        RecordBody::Raw(bytes) => bytes.len(),
        RecordBody::Xbzrle(bytes) | RecordBody::Lz4(bytes) | RecordBody::Zstd(bytes) => {
            varint::encoded_len(bytes.len() as u64) + bytes.len()
        }
        RecordBody::Dedup { source, .. } => varint::encoded_len(source.0) + 16,
        RecordBody::XbzrleLz4 {
            delta_len,
            compressed,
        } => {
            varint::encoded_len(u64::from(*delta_len))
                + varint::encoded_len(compressed.len() as u64)
                + compressed.len()
        }
    }
}

fn encode_body<B: BufMut>(body: &RecordBody, out: &mut B) {
    match body {
        RecordBody::ZeroRun { count } => varint::encode(*count, out),
        RecordBody::Raw(bytes) => out.put_slice(bytes),
        RecordBody::Xbzrle(bytes) | RecordBody::Lz4(bytes) | RecordBody::Zstd(bytes) => {
            varint::encode(bytes.len() as u64, out);
            out.put_slice(bytes);
        }
        RecordBody::Dedup { source, hash } => {
            varint::encode(source.0, out);
            out.put_slice(&hash.to_le_bytes());
        }
        RecordBody::XbzrleLz4 {
            delta_len,
            compressed,
        } => {
            varint::encode(u64::from(*delta_len), out);
            varint::encode(compressed.len() as u64, out);
            out.put_slice(compressed);
        }
    }
}

fn decode_body(
    page: PageNumber,
    tag: u8,
    reader: &mut Reader,
    limits: &Limits,
) -> Result<RecordBody, Error> {
    let encoding = Encoding::from_tag(tag);
    let page_size = limits.page_size.bytes();
    // Reads a length-prefixed payload, checking the length before taking the bytes.
    let payload = |reader: &mut Reader, field: &'static str, encoding: Encoding| {
        let length = reader.varint(field)?;
        check_payload_len(page, encoding, length, limits)?;
        reader.take(field, length as usize)
    };
    Ok(match encoding {
        Encoding::ZeroRun => RecordBody::ZeroRun {
            count: reader.varint("zero run count")?,
        },
        Encoding::Raw => RecordBody::Raw(reader.take("raw page", page_size)?),
        Encoding::Xbzrle => RecordBody::Xbzrle(payload(reader, "xbzrle delta", encoding)?),
        Encoding::Dedup => RecordBody::Dedup {
            source: PageNumber(reader.varint("dedup source pfn")?),
            hash: ContentHash(reader.u128("dedup hash")?),
        },
        Encoding::Lz4 => RecordBody::Lz4(payload(reader, "lz4 block", encoding)?),
        Encoding::Zstd => RecordBody::Zstd(payload(reader, "zstd frame", encoding)?),
        Encoding::XbzrleLz4 => {
            let delta_len = reader.varint("xbzrle+lz4 delta length")?;
            check_payload_len(page, encoding, delta_len, limits)?;
            RecordBody::XbzrleLz4 {
                delta_len: delta_len as u32,
                compressed: payload(reader, "xbzrle+lz4 block", encoding)?,
            }
        }
        Encoding::Unknown(tag) => return Err(InvalidMessage::UnknownEncoding { page, tag }.into()),
    })
}
