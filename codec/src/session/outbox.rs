//! [`Outbox`]: the bytes one direction of one stream has yet to hand to the transport.

use bytes::{Bytes, BytesMut};

use crate::error::EncodeError;
use crate::frame::{Frame, Limits, StreamHeader};

/// Encoded frames waiting for the transport, behind the stream header (written before the
/// first frame).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    buffer: BytesMut,
    started: bool,
}

impl Outbox {
    /// Appends `frame`, checked against the receiver's `limits`; on error nothing is written.
    pub(crate) fn push(&mut self, frame: &Frame, limits: &Limits) -> Result<(), EncodeError> {
        frame.check(limits)?;
        if !self.started {
            StreamHeader::current().encode(&mut self.buffer);
            self.started = true;
        }
        frame.encode(&mut self.buffer, limits)
    }

    /// How many bytes wait.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Up to `budget` bytes from the front, or `None` if nothing waits or the budget is 0.
    pub(crate) fn take(&mut self, budget: usize) -> Option<Bytes> {
        let len = self.buffer.len().min(budget);
        (len > 0).then(|| self.buffer.split_to(len).freeze())
    }

    /// Drops everything not yet taken.
    pub(crate) fn clear(&mut self) {
        self.buffer.clear();
    }
}
