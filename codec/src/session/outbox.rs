//! [`Outbox`]: the bytes one direction of one stream has yet to hand to the transport.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::EncodeError;
use crate::frame::{Frame, Limits, StreamHeader};
use crate::session::buffer_pool::BufferPool;

/// Encoded frames waiting for the transport, behind the stream header (written before the
/// first frame).
///
/// Frames are encoded into a buffer from a [`BufferPool`], with room reserved for each whole
/// frame before it is written (no growth that copies the bytes already there). When the
/// transport asks for bytes, the buffer is frozen and handed out in slices; it returns to the
/// pool when the transport has dropped them all.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Frozen bytes not yet taken, ahead of `filling`.
    ready: Bytes,
    /// Frames encoded since the last buffer was frozen.
    filling: Vec<u8>,
    pool: Arc<BufferPool>,
    started: bool,
}

impl Outbox {
    /// Appends `frame`, checked against the receiver's `limits`; on error nothing is written.
    pub(crate) fn push(&mut self, frame: &Frame, limits: &Limits) -> Result<(), EncodeError> {
        frame.check(limits)?;
        let header = if self.started { 0 } else { StreamHeader::LEN };
        self.filling.reserve(header + frame.encoded_len());
        if !self.started {
            StreamHeader::current().encode(&mut self.filling);
            self.started = true;
        }
        frame.encode(&mut self.filling, limits)
    }

    /// How many bytes wait.
    pub(crate) fn len(&self) -> usize {
        self.ready.len() + self.filling.len()
    }

    /// Up to `budget` bytes from the front, or `None` if nothing waits or the budget is 0.
    pub(crate) fn take(&mut self, budget: usize) -> Option<Bytes> {
        if self.ready.is_empty() && !self.filling.is_empty() {
            let filled = std::mem::replace(&mut self.filling, self.pool.get());
            self.ready = BufferPool::freeze(&self.pool, filled);
        }
        let len = self.ready.len().min(budget);
        (len > 0).then(|| self.ready.split_to(len))
    }

    /// Drops everything not yet taken.
    pub(crate) fn clear(&mut self) {
        self.ready = Bytes::new();
        self.filling.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Iteration;

    #[test]
    fn bytes_come_out_in_order_in_budget_sized_pieces() {
        let limits = Limits::default();
        let mut outbox = Outbox::default();
        let mut expected = Vec::new();
        StreamHeader::current().encode(&mut expected);
        for n in 0..3 {
            let frame = Frame::IterationStart(Iteration(n));
            frame.encode(&mut expected, &limits).unwrap();
            outbox.push(&frame, &limits).unwrap();
        }
        assert_eq!(outbox.len(), expected.len());
        let mut taken = Vec::new();
        // Pushed while bytes are out: they follow them.
        taken.extend_from_slice(&outbox.take(20).unwrap());
        let frame = Frame::IterationStart(Iteration(9));
        frame.encode(&mut expected, &limits).unwrap();
        outbox.push(&frame, &limits).unwrap();
        while let Some(piece) = outbox.take(7) {
            assert!(piece.len() <= 7);
            taken.extend_from_slice(&piece);
        }
        assert_eq!(taken, expected);
        assert_eq!(outbox.len(), 0);
        assert_eq!(outbox.take(0), None);
    }
}
