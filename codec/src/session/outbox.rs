//! [`Outbox`]: the bytes one direction of one stream has yet to hand to the transport.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::error::EncodeError;
use crate::frame::{Frame, Limits, StreamHeader};

/// Frames shorter than this are copied together into one chunk by [`Outbox::take`]; longer
/// ones are handed out without a copy.
const SMALL_FRAME: usize = 16 << 10;

/// Encoded frames waiting for the transport, behind the stream header (written before the
/// first frame).
///
/// Each frame is encoded into a buffer of its exact length, and a large one is handed out as
/// slices of that buffer, so its bytes are written once: one growing buffer for all frames
/// would be copied as it grows, and a page batch is megabytes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    frames: VecDeque<Bytes>,
    len: usize,
    started: bool,
}

impl Outbox {
    /// Appends `frame`, checked against the receiver's `limits`; on error nothing is written.
    pub(crate) fn push(&mut self, frame: &Frame, limits: &Limits) -> Result<(), EncodeError> {
        let frame = frame.checked(limits)?;
        let header = if self.started { 0 } else { StreamHeader::LEN };
        let mut buffer = BytesMut::with_capacity(header + frame.encoded_len());
        if !self.started {
            StreamHeader::current().encode(&mut buffer);
        }
        frame.encode(&mut buffer);
        self.started = true;
        self.len += buffer.len();
        self.frames.push_back(buffer.freeze());
        Ok(())
    }

    /// How many bytes wait.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Up to `budget` bytes from the front, or `None` if nothing waits or the budget is 0.
    ///
    /// A large frame's bytes are handed out as slices of its buffer (one frame per call);
    /// small frames (control frames, batches of a few compressed pages) are copied together
    /// up to the budget, so that a chunk is not one 20-byte frame.
    pub(crate) fn take(&mut self, budget: usize) -> Option<Bytes> {
        let first = self.take_front(budget)?;
        if first.len() >= SMALL_FRAME || first.len() == budget || !self.front_is_small() {
            return Some(first);
        }
        let mut joined = BytesMut::with_capacity(budget.min(first.len() + self.len));
        joined.extend_from_slice(&first);
        while joined.len() < budget && self.front_is_small() {
            let Some(piece) = self.take_front(budget - joined.len()) else {
                break;
            };
            joined.extend_from_slice(&piece);
        }
        Some(joined.freeze())
    }

    /// Up to `budget` bytes of the front frame.
    fn take_front(&mut self, budget: usize) -> Option<Bytes> {
        let front = self.frames.front_mut().filter(|_| budget > 0)?;
        let bytes = if front.len() > budget {
            front.split_to(budget)
        } else {
            self.frames.pop_front()?
        };
        self.len -= bytes.len();
        Some(bytes)
    }

    fn front_is_small(&self) -> bool {
        self.frames
            .front()
            .is_some_and(|front| front.len() < SMALL_FRAME)
    }

    /// Drops everything not yet taken.
    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameDecoder, Iteration};

    #[test]
    fn frames_come_out_in_order_within_the_budget_and_decode() {
        let limits = Limits::default();
        let mut outbox = Outbox::default();
        let frames = [
            Frame::IterationStart(Iteration(1)),
            Frame::Suspend,
            Frame::IterationStart(Iteration(2)),
        ];
        for frame in &frames {
            outbox.push(frame, &limits).unwrap();
        }
        let total = StreamHeader::LEN + frames.iter().map(Frame::encoded_len).sum::<usize>();
        assert_eq!(outbox.len(), total);
        assert_eq!(outbox.take(0), None);

        let mut decoder = FrameDecoder::new(limits);
        let mut taken = 0;
        while let Some(bytes) = outbox.take(5) {
            assert!(!bytes.is_empty() && bytes.len() <= 5);
            taken += bytes.len();
            assert_eq!(outbox.len(), total - taken);
            decoder.push(&bytes);
        }
        assert_eq!(taken, total);
        for frame in frames {
            assert_eq!(decoder.poll().unwrap(), Some(frame));
        }
        assert_eq!(decoder.poll().unwrap(), None);
    }

    #[test]
    fn a_large_frame_is_handed_out_in_slices_of_its_buffer_and_small_ones_are_joined() {
        let (batch, limits) = crate::frame::raw_batch(8);
        let mut outbox = Outbox::default();
        outbox
            .push(&Frame::IterationStart(Iteration(0)), &limits)
            .unwrap();
        outbox.push(&Frame::Suspend, &limits).unwrap();
        outbox.push(&batch, &limits).unwrap();
        outbox.push(&Frame::Suspend, &limits).unwrap();
        // The two small frames (and the stream header) together, then the batch.
        let small = StreamHeader::LEN + 16 + 8;
        assert_eq!(outbox.take(1 << 20).unwrap().len(), small);
        let pieces: Vec<Bytes> = std::iter::from_fn(|| outbox.take(10_000)).collect();
        let lengths: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        // The batch's last 2 804 bytes are short: the small frame after it joins them.
        assert_eq!(batch.encoded_len(), 32_804);
        assert_eq!(lengths, [10_000, 10_000, 10_000, 2_804 + 8]);
        // The batch's slices follow one another in memory: one buffer, nothing copied.
        for pair in pieces[..3].windows(2) {
            assert_eq!(
                pair[0].as_ptr().wrapping_add(pair[0].len()),
                pair[1].as_ptr()
            );
        }
    }

    #[test]
    fn a_refused_frame_writes_nothing_not_even_the_stream_header() {
        let limits = Limits {
            max_frame_payload: 4,
            ..Limits::default()
        };
        let mut outbox = Outbox::default();
        let too_long = Frame::IterationStart(Iteration(1));
        assert!(outbox.push(&too_long, &limits).is_err());
        assert_eq!((outbox.len(), outbox.take(usize::MAX)), (0, None));
        outbox.push(&Frame::Suspend, &limits).unwrap();
        let bytes = outbox.take(usize::MAX).unwrap();
        assert_eq!(
            bytes.len(),
            StreamHeader::LEN + Frame::Suspend.encoded_len()
        );
        outbox.clear();
        assert_eq!(outbox.len(), 0);
    }
}
