//! ITERATION_START and ITERATION_END: the markers around the page batches of one iteration.
//!
//! ITERATION_START payload: `iteration u64`. ITERATION_END payload:
//! `iteration u64 | batches u64 | pages u64`, the number of PAGE_BATCH frames of the iteration
//! and the number of pages their records cover, so a receiver that takes batches from several
//! streams knows when it has all of them.

use bytes::BufMut;

use crate::error::InvalidMessage;
use crate::frame::Reader;

/// The number of an iteration of the copy: 0 for the first, one more for each next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iteration(pub u64);

impl Iteration {
    /// The iteration after this one, or `None` past `u64::MAX`.
    pub fn next(self) -> Option<Iteration> {
        self.0.checked_add(1).map(Iteration)
    }
}

impl std::fmt::Display for Iteration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "iteration {}", self.0)
    }
}

/// The end of an iteration, with what it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterationEnd {
    /// The iteration that ends.
    pub iteration: Iteration,
    /// How many PAGE_BATCH frames it had.
    pub batches: u64,
    /// How many pages their records cover (a zero run counts each of its pages).
    pub pages: u64,
}

impl IterationEnd {
    pub(crate) const PAYLOAD_LEN: usize = 24;

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u64_le(self.iteration.0);
        out.put_u64_le(self.batches);
        out.put_u64_le(self.pages);
    }

    pub(crate) fn decode_payload(reader: &mut Reader) -> Result<IterationEnd, InvalidMessage> {
        Ok(IterationEnd {
            iteration: Iteration(reader.u64("iteration end iteration")?),
            batches: reader.u64("iteration end batches")?,
            pages: reader.u64("iteration end pages")?,
        })
    }
}
