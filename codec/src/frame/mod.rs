//! Frames: the stream header and every frame of the migration protocol.
//!
//! Each direction of a connection is a byte stream: a 16-byte [`StreamHeader`], then frames.
//! A frame is an 8-byte [`FrameHeader`] (`type u16 LE | flags u16 LE | length u32 LE`) and a
//! payload of `length` bytes whose layout depends on the type. `spec/wire.md` is the
//! normative description; each submodule documents the payload it owns.
//!
//! Encoding writes into any [`BufMut`]; decoding reads from [`Bytes`] and slices page
//! payloads out of it without copying. Every length is checked against [`Limits`] before it
//! is used; a frame that does not parse is an [`InvalidMessage`], one that names pages
//! outside the memory or an encoding not negotiated is [`PeerMisbehaved`], an unknown
//! mandatory type is [`PeerIncompatible`](crate::error::PeerIncompatible). An unknown
//! *optional* type (bit 15 set) is skipped.
//!
//! ```
//! use bytes::Bytes;
//! use pagewire_codec::frame::{Abort, AbortReason, Frame, FrameDecoder, Limits, StreamHeader};
//! let limits = Limits::default();
//! let mut wire = Vec::new();
//! StreamHeader::current().encode(&mut wire);
//! let abort = Frame::Abort(Abort { reason: AbortReason::Cancelled, message: "operator".into() });
//! abort.encode(&mut wire, &limits).unwrap();
//!
//! // Bytes may arrive in any pieces.
//! let mut decoder = FrameDecoder::new(limits);
//! let (first, second) = wire.split_at(11);
//! decoder.push(first);
//! assert_eq!(decoder.poll(), Ok(None));
//! decoder.push(second);
//! assert_eq!(decoder.poll(), Ok(Some(abort)));
//! ```
//!
//! [`InvalidMessage`]: crate::error::InvalidMessage
//! [`PeerMisbehaved`]: crate::error::PeerMisbehaved

mod bitmap;
mod commit;
mod control;
mod header;
mod hello;
mod iteration;
mod limits;
mod page_batch;
mod reader;
mod reason;
mod types;

pub use bitmap::{BitmapForm, BitmapFrame, BitmapKind, bitmap_form};
pub use commit::{CommitAnswer, CommitDigest};
pub use control::{Abort, DeviceState, PageRequest, ReservationAnswer, Resume};
pub use header::{FrameHeader, OLDEST_READABLE_VERSION, StreamHeader, VERSION};
pub use hello::{Features, Hello, MigrationId, Negotiated, Role};
pub use iteration::{Iteration, IterationEnd};
pub use limits::Limits;
pub use page_batch::PageBatch;
pub use reader::Reader;
pub use reason::{AbortReason, RefusalReason};
pub use types::FrameType;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{EncodeError, Error, InvalidMessage};

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// HELLO (both directions).
    Hello(Hello),
    /// RESERVATION (destination to source).
    Reservation(ReservationAnswer),
    /// RESUME (destination to source).
    Resume(Resume),
    /// ITERATION_START (source to destination): payload `iteration u64`.
    IterationStart(Iteration),
    /// PAGE_BATCH (source to destination).
    PageBatch(PageBatch),
    /// ITERATION_END (source to destination).
    IterationEnd(IterationEnd),
    /// BITMAP (either direction, see [`BitmapKind`]).
    Bitmap(BitmapFrame),
    /// SUSPEND (source to destination): empty payload.
    Suspend,
    /// DEVICE_STATE (source to destination).
    DeviceState(DeviceState),
    /// POSTCOPY_BEGIN (source to destination): empty payload.
    PostcopyBegin,
    /// PAGE_REQUEST (destination to source).
    PageRequest(PageRequest),
    /// COMMIT_DIGEST (source to destination).
    CommitDigest(CommitDigest),
    /// COMMIT_ANSWER (destination to source).
    CommitAnswer(CommitAnswer),
    /// ACTIVATE (source to destination): empty payload.
    Activate,
    /// ACTIVATED (destination to source): empty payload.
    Activated,
    /// ABORT (either direction).
    Abort(Abort),
}

impl Frame {
    /// The frame's type.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello(_) => FrameType::HELLO,
            Frame::Reservation(_) => FrameType::RESERVATION,
            Frame::Resume(_) => FrameType::RESUME,
            Frame::IterationStart(_) => FrameType::ITERATION_START,
            Frame::PageBatch(_) => FrameType::PAGE_BATCH,
            Frame::IterationEnd(_) => FrameType::ITERATION_END,
            Frame::Bitmap(_) => FrameType::BITMAP,
            Frame::Suspend => FrameType::SUSPEND,
            Frame::DeviceState(_) => FrameType::DEVICE_STATE,
            Frame::PostcopyBegin => FrameType::POSTCOPY_BEGIN,
            Frame::PageRequest(_) => FrameType::PAGE_REQUEST,
            Frame::CommitDigest(_) => FrameType::COMMIT_DIGEST,
            Frame::CommitAnswer(_) => FrameType::COMMIT_ANSWER,
            Frame::Activate => FrameType::ACTIVATE,
            Frame::Activated => FrameType::ACTIVATED,
            Frame::Abort(_) => FrameType::ABORT,
        }
    }

    /// The payload's length in bytes.
    pub fn payload_len(&self) -> usize {
        match self {
            Frame::Hello(hello) => hello.payload_len(),
            Frame::Reservation(_) => ReservationAnswer::PAYLOAD_LEN,
            Frame::Resume(resume) => resume.payload_len(),
            Frame::IterationStart(_) => 8,
            Frame::PageBatch(batch) => batch.payload_len(),
            Frame::IterationEnd(_) => IterationEnd::PAYLOAD_LEN,
            Frame::Bitmap(bitmap) => bitmap.payload_len(),
            Frame::Suspend | Frame::PostcopyBegin | Frame::Activate | Frame::Activated => 0,
            Frame::DeviceState(state) => state.payload_len(),
            Frame::PageRequest(request) => request.payload_len(),
            Frame::CommitDigest(digest) => digest.payload_len(),
            Frame::CommitAnswer(answer) => answer.payload_len(),
            Frame::Abort(abort) => abort.payload_len(),
        }
    }

    /// The frame's length on the wire: header and payload.
    pub fn encoded_len(&self) -> usize {
        FrameHeader::LEN + self.payload_len()
    }

    /// Checks the frame against what a receiver with `limits` accepts, without writing it.
    ///
    /// Everything [`Frame::decode`] checks on the value is checked here, so a frame that
    /// passes is one the receiver decodes (phase rules aside, see [`crate::phase`]).
    pub fn check(&self, limits: &Limits) -> Result<(), EncodeError> {
        self.checked(limits).map(|_| ())
    }

    /// Checks the frame as [`Frame::check`] does and returns it ready to write: its length is
    /// known, so a caller can size the buffer before writing it (once) with
    /// [`CheckedFrame::encode`].
    ///
    /// ```
    /// use pagewire_codec::frame::{Frame, Limits};
    /// let limits = Limits::default();
    /// let checked = Frame::Suspend.checked(&limits).unwrap();
    /// let mut out = Vec::with_capacity(checked.encoded_len());
    /// checked.encode(&mut out);
    /// assert_eq!(out.len(), Frame::Suspend.encoded_len());
    /// ```
    pub fn checked(&self, limits: &Limits) -> Result<CheckedFrame<'_>, EncodeError> {
        let length = self.payload_len();
        let max = limits.max_frame_payload.min(Limits::HARD_MAX_FRAME_PAYLOAD);
        let payload_len = u32::try_from(length)
            .ok()
            .filter(|length| *length <= max)
            .ok_or(EncodeError::PayloadTooLarge {
                length: length as u64,
                max: max.into(),
            })?;
        match self {
            Frame::Hello(hello) => hello.check()?,
            Frame::PageBatch(batch) => batch.check(limits)?,
            Frame::Bitmap(BitmapFrame { pages, .. })
            | Frame::Resume(Resume {
                received: pages, ..
            }) => {
                if pages.page_count() != limits.page_count {
                    return Err(crate::error::PeerMisbehaved::PageCountMismatch {
                        field: "bitmap page count",
                        expected: limits.page_count,
                        got: pages.page_count(),
                    }
                    .into());
                }
            }
            Frame::DeviceState(state) => state.check(limits)?,
            Frame::PageRequest(request) => request.check(limits)?,
            Frame::CommitDigest(digest) => digest.check(limits)?,
            Frame::CommitAnswer(answer) => answer.check(limits)?,
            Frame::Abort(abort) => abort.check(limits)?,
            Frame::Reservation(_)
            | Frame::IterationStart(_)
            | Frame::IterationEnd(_)
            | Frame::Suspend
            | Frame::PostcopyBegin
            | Frame::Activate
            | Frame::Activated => {}
        }
        Ok(CheckedFrame {
            frame: self,
            payload_len,
        })
    }

    /// Appends the frame (header and payload) to `out`, after checking it with
    /// [`Frame::check`] against the *receiver's* limits. On error nothing is written.
    pub fn encode<B: BufMut>(&self, out: &mut B, limits: &Limits) -> Result<(), EncodeError> {
        self.checked(limits)?.encode(out);
        Ok(())
    }

    /// Reads one whole frame from the front of `input` and advances past it. Returns
    /// `Ok(None)` for a frame of an unknown optional type, which is skipped.
    ///
    /// `input` must hold the whole frame; a short input is
    /// [`InvalidMessage::Truncated`]. (Use [`FrameDecoder`] for a stream arriving in pieces.)
    pub fn decode(input: &mut Bytes, limits: &Limits) -> Result<Option<Frame>, Error> {
        let mut reader = Reader::new(input.clone());
        let header = FrameHeader::parse(reader.array("frame header")?, limits)?;
        let payload = reader.take("frame payload", header.length as usize)?;
        let frame = Frame::decode_payload(header, payload, limits)?;
        input.advance(FrameHeader::LEN + header.length as usize);
        Ok(frame)
    }

    /// Decodes the payload of a frame whose header was parsed with [`FrameHeader::parse`].
    /// Returns `Ok(None)` for an unknown optional type.
    pub fn decode_payload(
        header: FrameHeader,
        payload: Bytes,
        limits: &Limits,
    ) -> Result<Option<Frame>, Error> {
        let frame_type = header.frame_type;
        let mut reader = Reader::new(payload);
        let r = &mut reader;
        let frame = match frame_type {
            FrameType::HELLO => Frame::Hello(Hello::decode_payload(r)?),
            FrameType::RESERVATION => Frame::Reservation(ReservationAnswer::decode_payload(r)?),
            FrameType::RESUME => Frame::Resume(Resume::decode_payload(r, limits)?),
            FrameType::ITERATION_START => {
                Frame::IterationStart(Iteration(r.u64("iteration start")?))
            }
            FrameType::PAGE_BATCH => Frame::PageBatch(PageBatch::decode_payload(r, limits)?),
            FrameType::ITERATION_END => Frame::IterationEnd(IterationEnd::decode_payload(r)?),
            FrameType::BITMAP => Frame::Bitmap(BitmapFrame::decode_payload(r, limits)?),
            FrameType::SUSPEND => Frame::Suspend,
            FrameType::DEVICE_STATE => Frame::DeviceState(DeviceState::decode_payload(r, limits)?),
            FrameType::POSTCOPY_BEGIN => Frame::PostcopyBegin,
            FrameType::PAGE_REQUEST => Frame::PageRequest(PageRequest::decode_payload(r, limits)?),
            FrameType::COMMIT_DIGEST => {
                Frame::CommitDigest(CommitDigest::decode_payload(r, limits)?)
            }
            FrameType::COMMIT_ANSWER => {
                Frame::CommitAnswer(CommitAnswer::decode_payload(r, limits)?)
            }
            FrameType::ACTIVATE => Frame::Activate,
            FrameType::ACTIVATED => Frame::Activated,
            FrameType::ABORT => Frame::Abort(Abort::decode_payload(r, limits)?),
            other if other.is_optional() => return Ok(None),
            other => {
                return Err(crate::error::PeerIncompatible::UnknownMandatoryFrame(other).into());
            }
        };
        reader.finish(frame_type)?;
        Ok(Some(frame))
    }
}

/// A frame that passed [`Frame::checked`] against the receiver's limits: writing it cannot
/// fail, and its length is known.
#[derive(Clone, Copy, Debug)]
pub struct CheckedFrame<'a> {
    frame: &'a Frame,
    payload_len: u32,
}

impl CheckedFrame<'_> {
    /// The frame's length on the wire: header and payload.
    pub fn encoded_len(&self) -> usize {
        FrameHeader::LEN + self.payload_len as usize
    }

    /// Appends the frame (header and payload) to `out`.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        FrameHeader {
            frame_type: self.frame.frame_type(),
            length: self.payload_len,
        }
        .encode(out);
        match self.frame {
            Frame::Hello(hello) => hello.encode_payload(out),
            Frame::Reservation(answer) => answer.encode_payload(out),
            Frame::Resume(resume) => resume.encode_payload(out),
            Frame::IterationStart(iteration) => out.put_u64_le(iteration.0),
            Frame::PageBatch(batch) => batch.encode_payload(out),
            Frame::IterationEnd(end) => end.encode_payload(out),
            Frame::Bitmap(bitmap) => bitmap.encode_payload(out),
            Frame::Suspend | Frame::PostcopyBegin | Frame::Activate | Frame::Activated => {}
            Frame::DeviceState(state) => state.encode_payload(out),
            Frame::PageRequest(request) => request.encode_payload(out),
            Frame::CommitDigest(digest) => digest.encode_payload(out),
            Frame::CommitAnswer(answer) => answer.encode_payload(out),
            Frame::Abort(abort) => abort.encode_payload(out),
        }
    }
}

/// Room a [`FrameDecoder`] keeps past the end of the frame it reassembles, once that frame's
/// header is in: the piece that completes the frame usually carries the start of the next one
/// too, and without room for it the whole frame (megabytes for a page batch) would be copied
/// into a larger buffer just before it is decoded.
const ROOM_PAST_FRAME: usize = 64 << 10;

/// A sans-IO decoder for one direction of a connection: push bytes as they arrive, poll
/// frames out.
///
/// It checks the stream header first, then parses each frame header as soon as its 8 bytes
/// are in, so an over-long frame is refused before its payload is buffered. Unknown optional
/// frames are skipped (and counted). Received bytes are copied once into an internal buffer
/// to reassemble frames; page payloads of decoded frames are slices of that buffer.
///
/// After an error the stream cannot be trusted: the decoder keeps returning the error.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    buffer: BytesMut,
    version: Option<u16>,
    skipped: u64,
    failed: Option<Error>,
}

impl FrameDecoder {
    /// A decoder that accepts frames within `limits`.
    pub fn new(limits: Limits) -> FrameDecoder {
        FrameDecoder {
            limits,
            buffer: BytesMut::new(),
            version: None,
            skipped: 0,
            failed: None,
        }
    }

    /// The limits frames are decoded within.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (after the hellos, set the negotiated memory and encodings).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The stream's protocol version, once its header has been read.
    pub fn version(&self) -> Option<u16> {
        self.version
    }

    /// How many frames of unknown optional types were skipped.
    pub fn skipped_frames(&self) -> u64 {
        self.skipped
    }

    /// How many received bytes are buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Appends received bytes.
    ///
    /// The decoder keeps what it is given until [`FrameDecoder::poll`] takes it out; a caller
    /// that polls until `Ok(None)` after each push holds at most one incomplete frame (at most
    /// the limits' frame size, checked from its header before any room is reserved) plus the
    /// bytes of the last push. The sessions do so. Its buffer has room for the frame under way
    /// and 64 KiB more, so a frame arriving in pieces is not copied as it grows.
    pub fn push(&mut self, bytes: &[u8]) {
        let before = self.buffer.len();
        if before + bytes.len() > self.buffer.capacity() {
            self.reserve_for_frame(bytes.len());
        }
        self.buffer.extend_from_slice(bytes);
        if before < FrameHeader::LEN {
            // The frame's header may have just come in: make its room while little is held.
            self.reserve_for_frame(0);
        }
    }

    /// Makes room for `more` bytes, and for the whole frame at the front of the buffer and
    /// [`ROOM_PAST_FRAME`] bytes past it once its header is in.
    fn reserve_for_frame(&mut self, more: usize) {
        let len = self.buffer.len();
        let room = self.frame_end().map_or(0, |end| end + ROOM_PAST_FRAME);
        let wanted = (len + more).max(room);
        if wanted > self.buffer.capacity() {
            self.buffer.reserve(wanted - len);
        }
    }

    /// Where the frame at the front of the buffer ends, once its header is in and within the
    /// limits (the stream's header is read).
    fn frame_end(&self) -> Option<usize> {
        self.version?;
        let header = self.buffer.get(..FrameHeader::LEN)?.try_into().ok()?;
        let header = FrameHeader::parse(header, &self.limits).ok()?;
        Some(FrameHeader::LEN + header.length as usize)
    }

    /// The next frame, `Ok(None)` if more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<Frame>, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.poll_inner();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn poll_inner(&mut self) -> Result<Option<Frame>, Error> {
        if self.version.is_none() {
            if self.buffer.len() < StreamHeader::LEN {
                // Reject a wrong magic as soon as its bytes are in.
                let seen = self.buffer.len().min(8);
                if self.buffer[..seen] != StreamHeader::MAGIC[..seen] {
                    let mut magic = [0u8; 8];
                    magic[..seen].copy_from_slice(&self.buffer[..seen]);
                    return Err(InvalidMessage::BadMagic(magic).into());
                }
                return Ok(None);
            }
            let mut header = self.buffer.split_to(StreamHeader::LEN).freeze();
            self.version = Some(StreamHeader::decode(&mut header)?.version);
        }
        loop {
            let Some(header_bytes) = self.buffer.get(..FrameHeader::LEN) else {
                return Ok(None);
            };
            let header =
                FrameHeader::parse(header_bytes.try_into().expect("8 bytes"), &self.limits)?;
            let total = FrameHeader::LEN + header.length as usize;
            if self.buffer.len() < total {
                self.reserve_for_frame(0);
                return Ok(None);
            }
            let mut frame = self.buffer.split_to(total).freeze();
            frame.advance(FrameHeader::LEN);
            match Frame::decode_payload(header, frame, &self.limits)? {
                Some(frame) => return Ok(Some(frame)),
                None => self.skipped += 1,
            }
        }
    }
}

/// A batch of `pages` raw 4 KiB pages (page `p` filled with byte `p`), and limits over a
/// memory of 64 pages that accept it.
#[cfg(test)]
pub(crate) fn raw_batch(pages: u64) -> (Frame, Limits) {
    use crate::{EncodingSet, PageCount, PageNumber, PageRecord, PageSize, RecordBody};
    let limits =
        Limits::default().with_memory(PageSize::KIB_4, PageCount(64), EncodingSet::all_known());
    let batch = Frame::PageBatch(PageBatch {
        iteration: Iteration(0),
        records: (0..pages)
            .map(|page| PageRecord {
                page: PageNumber(page),
                body: RecordBody::Raw(vec![page as u8; 4096].into()),
            })
            .collect(),
    });
    (batch, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Pushes `wire` in pieces of 1350 bytes and checks that the buffer always has room for
    /// the next piece while it holds more than one (growing it would copy what it holds).
    /// `poll` says whether to poll after each push, as a session does while the stream is not
    /// held back. Returns the frames decoded.
    fn push_in_pieces(decoder: &mut FrameDecoder, wire: &[u8], poll: bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        for piece in wire.chunks(1350) {
            let (held, capacity) = (decoder.buffer.len(), decoder.buffer.capacity());
            assert!(
                held <= 1350 || held + piece.len() <= capacity,
                "no room for a piece: the {held} bytes held would move"
            );
            decoder.push(piece);
            while poll && let Some(frame) = decoder.poll().unwrap() {
                frames.push(frame);
            }
        }
        frames
    }

    #[test]
    fn frames_arriving_in_pieces_are_not_copied_as_the_buffer_grows() {
        let (batch, limits) = raw_batch(64);
        let mut wire = Vec::new();
        StreamHeader::current().encode(&mut wire);
        for _ in 0..3 {
            batch.encode(&mut wire, &limits).unwrap();
        }
        let mut decoder = FrameDecoder::new(limits);
        let frames = push_in_pieces(&mut decoder, &wire, true);
        assert!(frames.len() == 3 && frames.iter().all(|frame| *frame == batch));
    }

    #[test]
    fn a_frame_arriving_while_its_stream_is_held_is_not_copied_as_the_buffer_grows() {
        let (batch, limits) = raw_batch(64);
        let mut wire = Vec::new();
        StreamHeader::current().encode(&mut wire);
        batch.encode(&mut wire, &limits).unwrap();
        let mut decoder = FrameDecoder::new(limits);
        let first = push_in_pieces(&mut decoder, &wire, true);
        assert!(first == [batch.clone()]);
        // The next frame arrives unpolled, as it does on a stream an iteration barrier holds
        // back.
        let mut second = Vec::new();
        batch.encode(&mut second, &limits).unwrap();
        let (head, rest) = second.split_at(100);
        decoder.push(head);
        assert!(push_in_pieces(&mut decoder, rest, false).is_empty());
        assert!(decoder.poll().unwrap() == Some(batch));
    }
}
