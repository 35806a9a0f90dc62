//! The small control frames: RESERVATION, RESUME, DEVICE_STATE, PAGE_REQUEST and ABORT.
//! (SUSPEND, POSTCOPY_BEGIN, ACTIVATE and ACTIVATED have empty payloads.)

use bytes::{BufMut, Bytes};

use crate::error::{Error, InvalidMessage, PeerMisbehaved};
use crate::frame::bitmap::{body_len, decode_body, encode_body};
use crate::frame::hello::utf8;
use crate::frame::reader::check_limit;
use crate::frame::{AbortReason, Iteration, Limits, Reader, RefusalReason};
use crate::varint;
use crate::{PageBitmap, PageNumber};

/// RESERVATION: the destination's answer to the source's hello.
///
/// Payload: `status u8 (0 accepted, 1 refused) | reserved u8 | reason u16` (reason 0 when
/// accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservationAnswer {
    /// The destination holds memory for the VM and takes the migration.
    Accepted,
    /// The destination does not take the migration.
    Refused(RefusalReason),
}

impl ReservationAnswer {
    pub(crate) const PAYLOAD_LEN: usize = 4;

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        let (status, reason) = match self {
            ReservationAnswer::Accepted => (0, 0),
            ReservationAnswer::Refused(reason) => (1, reason.code()),
        };
        out.put_u8(status);
        out.put_u8(0);
        out.put_u16_le(reason);
    }

    pub(crate) fn decode_payload(reader: &mut Reader) -> Result<ReservationAnswer, InvalidMessage> {
        let status = reader.u8("reservation status")?;
        reader.reserved("reservation reserved byte", 1)?;
        let reason = reader.u16("reservation reason")?;
        match (status, reason) {
            (0, 0) => Ok(ReservationAnswer::Accepted),
            (0, reason) => Err(InvalidMessage::ReservedNotZero {
                field: "reason of an accepted reservation",
                value: reason.into(),
            }),
            (1, reason) => Ok(ReservationAnswer::Refused(RefusalReason::from_code(reason))),
            (other, _) => Err(InvalidMessage::InvalidValue {
                field: "reservation status",
                value: other.into(),
            }),
        }
    }
}

/// RESUME: the destination continues an interrupted migration (instead of RESERVATION).
///
/// Payload: `next_iteration u64 | bitmap body` (the received set, see the bitmap frames in `spec/wire.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The iteration number the source uses next (one past the last iteration whose
    /// ITERATION_END the destination received).
    pub next_iteration: Iteration,
    /// The pages the destination holds from completed iterations.
    pub received: PageBitmap,
}

impl Resume {
    pub(crate) fn payload_len(&self) -> usize {
        8 + body_len(&self.received)
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u64_le(self.next_iteration.0);
        encode_body(&self.received, out);
    }

    pub(crate) fn decode_payload(reader: &mut Reader, limits: &Limits) -> Result<Resume, Error> {
        Ok(Resume {
            next_iteration: Iteration(reader.u64("resume next iteration")?),
            received: decode_body(reader, limits)?,
        })
    }
}

/// DEVICE_STATE: one chunk of the VM's device state, opaque to the protocol.
///
/// Payload: `total u64 | offset u64 | data` (the rest of the payload). Chunks are sent in
/// order: the first at offset 0, each next one where the previous ended, the last ending at
/// `total`. `total` is the same in every chunk and at most the receiver's limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    /// The length of the whole device state.
    pub total: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// The chunk's bytes.
    pub data: Bytes,
}

impl DeviceState {
    pub(crate) fn payload_len(&self) -> usize {
        16 + self.data.len()
    }

    pub(crate) fn check(&self, limits: &Limits) -> Result<(), InvalidMessage> {
        check_limit("device state total", self.total, limits.max_device_state)?;
        let length = self.data.len() as u64;
        if self
            .offset
            .checked_add(length)
            .is_none_or(|end| end > self.total)
        {
            return Err(InvalidMessage::DeviceStateChunkPastEnd {
                offset: self.offset,
                length,
                total: self.total,
            });
        }
        Ok(())
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u64_le(self.total);
        out.put_u64_le(self.offset);
        out.put_slice(&self.data);
    }

    pub(crate) fn decode_payload(
        reader: &mut Reader,
        limits: &Limits,
    ) -> Result<DeviceState, InvalidMessage> {
        let state = DeviceState {
            total: reader.u64("device state total")?,
            offset: reader.u64("device state offset")?,
            data: reader.take_rest(),
        };
        state.check(limits)?;
        Ok(state)
    }
}

/// PAGE_REQUEST: post-copy, the destination asks for pages it needs now.
///
/// Payload: `count varint (>= 1) | pfn_delta varint * count`; the first page is its delta,
/// each next page is the previous one plus one plus its delta (strictly ascending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// The pages, strictly ascending.
    pub pages: Vec<PageNumber>,
}

impl PageRequest {
    pub(crate) fn payload_len(&self) -> usize {
        ascending_len(self.pages.iter().map(|p| p.0))
    }

    pub(crate) fn check(&self, limits: &Limits) -> Result<(), Error> {
        check_count(
            "page request count",
            self.pages.len() as u64,
            limits.max_requested_pages.into(),
        )?;
        check_ascending("page request", self.pages.iter().map(|p| p.0))?;
        match self.pages.last() {
            Some(&page) if !limits.page_count.contains(page) => {
                Err(PeerMisbehaved::PageOutOfRange {
                    page,
                    page_count: limits.page_count,
                }
                .into())
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        encode_ascending(self.pages.iter().map(|p| p.0), out);
    }

    pub(crate) fn decode_payload(
        reader: &mut Reader,
        limits: &Limits,
    ) -> Result<PageRequest, Error> {
        let pages = decode_ascending(reader, "page request", limits.max_requested_pages.into())?;
        let request = PageRequest {
            pages: pages.into_iter().map(PageNumber).collect(),
        };
        request.check(limits)?;
        Ok(request)
    }
}

/// ABORT: the sender gives up on the migration.
///
/// Payload: `reason u16 | message_len u16 | message` (UTF-8, at most the receiver's limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abort {
    /// Why.
    pub reason: AbortReason,
    /// Details for the operator.
    pub message: String,
}

impl Abort {
    pub(crate) fn payload_len(&self) -> usize {
        4 + self.message.len()
    }

    pub(crate) fn check(&self, limits: &Limits) -> Result<(), InvalidMessage> {
        check_limit(
            "abort message length",
            self.message.len() as u64,
            limits.max_abort_message.into(),
        )
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u16_le(self.reason.code());
        out.put_u16_le(self.message.len() as u16);
        out.put_slice(self.message.as_bytes());
    }

    pub(crate) fn decode_payload(
        reader: &mut Reader,
        limits: &Limits,
    ) -> Result<Abort, InvalidMessage> {
        let reason = AbortReason::from_code(reader.u16("abort reason")?);
        let length = reader.u16("abort message length")?;
        check_limit(
            "abort message length",
            length.into(),
            limits.max_abort_message.into(),
        )?;
        let message = utf8(
            "abort message",
            reader.take("abort message", length.into())?,
        )?;
        Ok(Abort { reason, message })
    }
}

/// The length of a delta-coded ascending list (count, then deltas).
pub(crate) fn ascending_len(values: impl Iterator<Item = u64> + Clone) -> usize {
    let count = values.clone().count() as u64;
    let mut next = 0u64;
    let mut len = varint::encoded_len(count);
    for value in values {
        len += varint::encoded_len(value.wrapping_sub(next));
        next = value.wrapping_add(1);
    }
    len
}

/// Writes a delta-coded strictly ascending list: count, then each value's distance from one
/// past the previous value (from 0 for the first).
pub(crate) fn encode_ascending<B: BufMut>(values: impl Iterator<Item = u64> + Clone, out: &mut B) {
    varint::encode(values.clone().count() as u64, out);
    let mut next = 0u64;
    for value in values {
        varint::encode(value - next, out);
        next = value + 1;
    }
}

/// Reads a delta-coded strictly ascending list of at most `max` (and at least one) values.
pub(crate) fn decode_ascending(
    reader: &mut Reader,
    field: &'static str,
    max: u64,
) -> Result<Vec<u64>, InvalidMessage> {
    let count = reader.varint(field)?;
    check_count(field, count, max)?;
    let mut values = Vec::with_capacity((count as usize).min(reader.remaining()));
    let mut next = 0u64;
    for _ in 0..count {
        let value =
            next.checked_add(reader.varint(field)?)
                .ok_or(InvalidMessage::PageNumberOverflow {
                    after: PageNumber(next),
                })?;
        values.push(value);
        next = value
            .checked_add(1)
            .ok_or(InvalidMessage::PageNumberOverflow {
                after: PageNumber(value),
            })?;
    }
    Ok(values)
}

/// A list count must be at least 1 and at most `max`.
fn check_count(field: &'static str, count: u64, max: u64) -> Result<(), InvalidMessage> {
    if count == 0 {
        return Err(InvalidMessage::InvalidValue { field, value: 0 });
    }
    check_limit(field, count, max)
}

/// Values must be strictly ascending (and leave room for one past the last).
pub(crate) fn check_ascending(
    field: &'static str,
    mut values: impl Iterator<Item = u64>,
) -> Result<(), InvalidMessage> {
    let mut next = 0u64;
    values.try_for_each(|value| {
        if value < next {
            return Err(InvalidMessage::InvalidValue { field, value });
        }
        next = value
            .checked_add(1)
            .ok_or(InvalidMessage::PageNumberOverflow {
                after: PageNumber(value),
            })?;
        Ok(())
    })
}
