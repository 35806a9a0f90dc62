//! [`WireFrames`]: the sizes of the protocol frames a run puts on the wire, each taken from
//! the real frame of [`pagewire_codec::frame`] (`Frame::encoded_len`) built with the values
//! the run sends, so the simulated bytes follow the wire format (`spec/wire.md`) wherever it
//! changes.
//!
//! What a run sends, source to destination (charged to the link): HELLO; per round
//! ITERATION_START, the PAGE_BATCH frames (sized by [`super::sender::Sender`]),
//! ITERATION_END; SUSPEND; the stop-and-copy iteration; DEVICE_STATE in chunks that fit the
//! default frame payload limit; with post-copy a BITMAP of the deferred pages and
//! POSTCOPY_BEGIN; COMMIT_DIGEST over ranges of [`COMMIT_PAGES_PER_RANGE`] pages; ACTIVATE.
//! Destination to source (counted apart, not charged to the forward link; their latency is in
//! the round trips the run waits): HELLO, RESERVATION, PAGE_REQUEST per post-copy fault,
//! COMMIT_ANSWER, ACTIVATED.

use bytes::Bytes;
use pagewire_codec::frame::{
    BitmapFrame, BitmapKind, CommitAnswer, CommitDigest, DeviceState, Hello, Iteration,
    IterationEnd, MigrationId, PageRequest, ReservationAnswer, Role,
};
use pagewire_codec::{ContentHash, Frame, Limits, PageBitmap, PageCount, PageNumber, PageSize};

/// Pages per range of the commit digest (the spec's suggestion).
pub const COMMIT_PAGES_PER_RANGE: u32 = 4096;

/// Frame sizes for one migration's memory.
#[derive(Clone, Debug)]
pub struct WireFrames {
    page_size: PageSize,
    page_count: PageCount,
}

/// The wire length of `frame`.
fn len(frame: &Frame) -> u64 {
    frame.encoded_len() as u64
}

impl WireFrames {
    /// Frames for a memory of `page_count` pages of `page_size`.
    pub fn new(page_size: PageSize, page_count: PageCount) -> WireFrames {
        WireFrames {
            page_size,
            page_count,
        }
    }

    /// A HELLO of either side (no VM name).
    pub fn hello(&self, role: Role) -> u64 {
        len(&Frame::Hello(Hello::new(
            role,
            MigrationId([0; 16]),
            self.page_size,
            self.page_count,
        )))
    }

    /// The destination's RESERVATION (accepted).
    pub fn reservation(&self) -> u64 {
        len(&Frame::Reservation(ReservationAnswer::Accepted))
    }

    /// ITERATION_START of `iteration`.
    pub fn iteration_start(&self, iteration: u64) -> u64 {
        len(&Frame::IterationStart(Iteration(iteration)))
    }

    /// ITERATION_END of `iteration`, which held `batches` batches covering `pages` pages.
    pub fn iteration_end(&self, iteration: u64, batches: u64, pages: u64) -> u64 {
        len(&Frame::IterationEnd(IterationEnd {
            iteration: Iteration(iteration),
            batches,
            pages,
        }))
    }

    /// SUSPEND.
    pub fn suspend(&self) -> u64 {
        len(&Frame::Suspend)
    }

    /// POSTCOPY_BEGIN.
    pub fn postcopy_begin(&self) -> u64 {
        len(&Frame::PostcopyBegin)
    }

    /// ACTIVATE (the source's) or ACTIVATED (the destination's answer): both empty.
    pub fn activate(&self) -> u64 {
        len(&Frame::Activate)
    }

    /// The BITMAP of the pages deferred to post-copy (raw bits or runs, whichever is shorter).
    pub fn deferred(&self, pages: &PageBitmap) -> u64 {
        len(&Frame::Bitmap(BitmapFrame {
            kind: BitmapKind::Deferred,
            pages: pages.clone(),
        }))
    }

    /// The DEVICE_STATE frames carrying `total` bytes, in chunks as large as the default frame
    /// payload limit allows.
    pub fn device_state(&self, total: u64) -> u64 {
        let chunk_max = u64::from(Limits::DEFAULT_MAX_FRAME_PAYLOAD) - 16;
        let chunk = Bytes::from(vec![0; usize::try_from(total.min(chunk_max)).unwrap_or(0)]);
        let mut bytes = 0;
        let mut offset = 0;
        loop {
            let take = (total - offset).min(chunk_max);
            bytes += len(&Frame::DeviceState(DeviceState {
                total,
                offset,
                data: chunk.slice(..take as usize),
            }));
            offset += take;
            if offset >= total {
                return bytes;
            }
        }
    }

    /// A PAGE_REQUEST for one page.
    pub fn page_request(&self, page: PageNumber) -> u64 {
        len(&Frame::PageRequest(PageRequest { pages: vec![page] }))
    }

    /// COMMIT_DIGEST over the whole memory.
    pub fn commit_digest(&self) -> u64 {
        let ranges = self
            .page_count
            .0
            .div_ceil(u64::from(COMMIT_PAGES_PER_RANGE));
        len(&Frame::CommitDigest(CommitDigest {
            pages_per_range: COMMIT_PAGES_PER_RANGE,
            ranges: vec![ContentHash(0); usize::try_from(ranges).unwrap_or(0)],
        }))
    }

    /// The destination's COMMIT_ANSWER when the digests agree.
    pub fn commit_agree(&self) -> u64 {
        len(&Frame::CommitAnswer(CommitAnswer::Agree))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> WireFrames {
        WireFrames::new(PageSize::KIB_4, PageCount(10_000))
    }

    #[test]
    fn sizes_follow_the_spec_layouts() {
        let wire = frames();
        // Header 8 + payloads from spec/wire.md.
        assert_eq!(wire.iteration_start(3), 8 + 8);
        assert_eq!(wire.iteration_end(3, 1, 64), 8 + 24);
        assert_eq!(wire.suspend(), 8);
        assert_eq!(wire.activate(), 8);
        assert_eq!(wire.reservation(), 8 + 4);
        assert_eq!(wire.hello(Role::Source), 8 + 49);
        // 10 000 pages: 3 ranges of 4096.
        assert_eq!(wire.commit_digest(), 8 + 8 + 3 * 16);
        assert_eq!(wire.commit_agree(), 8 + 1);
        // count varint + one pfn varint (1000 needs two bytes).
        assert_eq!(wire.page_request(PageNumber(1000)), 8 + 1 + 2);
    }

    #[test]
    fn device_state_is_chunked_to_the_frame_limit() {
        let wire = frames();
        let chunk = u64::from(Limits::DEFAULT_MAX_FRAME_PAYLOAD) - 16;
        assert_eq!(wire.device_state(0), 8 + 16);
        assert_eq!(wire.device_state(128 << 10), 8 + 16 + (128 << 10));
        assert_eq!(wire.device_state(chunk), 8 + 16 + chunk);
        assert_eq!(wire.device_state(chunk + 1), 2 * (8 + 16) + chunk + 1);
    }

    #[test]
    fn deferred_bitmap_takes_the_shorter_form() {
        let wire = frames();
        let mut few = PageBitmap::new(PageCount(10_000));
        few.insert(PageNumber(5));
        // kind + page_count + form + runs (5, 1, 9994): three varints of 1, 1 and 2 bytes.
        assert_eq!(wire.deferred(&few), 8 + 1 + 8 + 1 + 4);
        let mut alternating = PageBitmap::new(PageCount(10_000));
        for page in (0..10_000).step_by(2) {
            alternating.insert(PageNumber(page));
        }
        assert_eq!(wire.deferred(&alternating), 8 + 1 + 8 + 1 + 1250);
    }
}
