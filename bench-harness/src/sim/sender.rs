//! [`Sender`]: the source's send path on the simulated link. It encodes every page with the
//! real [`Encoder`] on the page's current content, puts the records in real PAGE_BATCH frames,
//! and charges each frame's `encoded_len` to the [`LinkClock`]; every other frame a run sends
//! is sized by [`WireFrames`].
//!
//! Wire cost model:
//! - a page batch is one PAGE_BATCH frame of at most [`MAX_BATCH_PAGES`] pages, sized by
//!   `Frame::encoded_len` (frame header, iteration, record count, and each record's pfn delta,
//!   tag and body as `spec/wire.md` lays them out); consecutive zero pages are coalesced into
//!   one zero run. The records' bytes count as page data, the rest of the frame as control;
//! - the other frames (HELLO, ITERATION_START/END, SUSPEND, DEVICE_STATE, POSTCOPY_BEGIN, the
//!   deferred BITMAP, COMMIT_DIGEST, ACTIVATE) count as control, except DEVICE_STATE's data,
//!   which counts as device state; frames from the destination (HELLO, RESERVATION,
//!   PAGE_REQUEST, COMMIT_ANSWER, ACTIVATED) are counted apart as return bytes and are not
//!   charged to the forward link (their latency is in the round trips);
//! - content-less traces (the size model): every page is sent raw, a record of its pfn delta,
//!   the raw tag and `page_size` bytes (no zero pages, no deltas, no compression, no identical
//!   rewrites skipped), in the same frames;
//! - bytes count at the link's payload bandwidth (transport packet headers are not modelled).

use std::num::NonZeroU64;
use std::time::Duration;

use bytes::Bytes;
use pagewire_codec::encoder::{CacheAdmission, body_wire_len};
use pagewire_codec::frame::{Iteration, PageBatch, Role};
use pagewire_codec::select::PageCosts;
use pagewire_codec::{
    Encoder, EncoderConfig, EncoderStats, EncodingSet, Frame, PageBitmap, PageCount, PageNumber,
    PageRecord, PageSize, RecordBody, varint,
};
use pagewire_transport::cost::encoder_policy;

use super::guest::Guest;
use super::link::LinkClock;
use super::wire::WireFrames;
use crate::trace::TraceReadError;

/// Pages per page-batch frame.
pub const MAX_BATCH_PAGES: usize = 64;

/// The iteration whose batches are being sent.
#[derive(Clone, Copy, Debug)]
struct OpenIteration {
    number: u64,
    batches: u64,
    pages: u64,
}

/// The source's send path: encoder, link clock and byte counters.
pub struct Sender {
    encoder: Option<Encoder>,
    page_size: PageSize,
    clock: LinkClock,
    frames: WireFrames,
    /// The size model's raw body: one page of zeros, shared by every record.
    model_page: Bytes,
    batch: PageBatch,
    order: Vec<PageNumber>,
    open: Option<OpenIteration>,
    next_iteration: u64,
    /// Wire bytes of the last record sent for each page (the resend-cost hint).
    last_cost: Vec<u32>,
    /// Page-record bytes (pfn deltas, tags, bodies).
    pub data_bytes: u64,
    /// Every other byte the source sends, except device-state data: frame headers, batch
    /// headers, iteration markers, suspend, commit digest, activate, ...
    pub control_bytes: u64,
    /// Device state bytes (DEVICE_STATE data; its frame overhead is control).
    pub device_bytes: u64,
    /// Bytes of the destination's frames (not charged to the forward link).
    pub return_bytes: u64,
    /// Pages covered by records sent (every version counts; a zero run counts its pages).
    pub pages_sent: u64,
    /// Pages handed to the encoder whose content the destination already held.
    pub pages_unchanged: u64,
}

impl Sender {
    /// A send path for `page_count` pages of `page_size` over `clock`; with an encoder (a
    /// content trace; every known encoding, a cache of `cache_bytes` that admits first sends
    /// only while it has room, as the live source's does, the live source's cost
    /// policy at the link's speed) or with the raw size model (`content` false).
    pub fn new(
        page_size: PageSize,
        page_count: u64,
        content: bool,
        cache_bytes: u64,
        clock: LinkClock,
    ) -> Sender {
        let encoder = content.then(|| {
            let mut config = EncoderConfig::new(page_size, EncodingSet::all_known());
            config.cache_bytes = cache_bytes;
            config.cache_admission = CacheAdmission::ResendsOnceFull {
                page_count: PageCount(page_count),
            };
            // As the live source chooses (`pagewire send`): a link faster than the transport
            // moves bytes on one core counts as that.
            config.policy = encoder_policy(NonZeroU64::new(clock.link().bytes_per_second));
            Encoder::new(config).expect("default encoder settings and a positive link speed")
        });
        let raw = raw_record_bytes(page_size);
        Sender {
            encoder,
            page_size,
            clock,
            frames: WireFrames::new(page_size, PageCount(page_count)),
            model_page: if content {
                Bytes::new()
            } else {
                Bytes::from(vec![0; page_size.bytes()])
            },
            batch: PageBatch {
                iteration: Iteration(0),
                records: Vec::with_capacity(MAX_BATCH_PAGES),
            },
            order: Vec::new(),
            open: None,
            next_iteration: 0,
            last_cost: vec![raw; usize::try_from(page_count).expect("page count fits memory")],
            data_bytes: 0,
            control_bytes: 0,
            device_bytes: 0,
            return_bytes: 0,
            pages_sent: 0,
            pages_unchanged: 0,
        }
    }

    /// The link clock.
    pub fn clock(&self) -> &LinkClock {
        &self.clock
    }

    /// The link clock, to wait on it.
    pub fn clock_mut(&mut self) -> &mut LinkClock {
        &mut self.clock
    }

    /// Now, on the simulated clock.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// All bytes the source put on the wire.
    pub fn total_bytes(&self) -> u64 {
        self.data_bytes + self.control_bytes + self.device_bytes
    }

    /// The encoder's counters (`None` under the size model).
    pub fn encoder_stats(&self) -> Option<EncoderStats> {
        self.encoder.as_ref().map(Encoder::stats)
    }

    fn control_frame(&mut self, bytes: u64) {
        self.control_bytes += bytes;
        self.clock.send(bytes);
    }

    /// The opening: the source's HELLO, then a round trip for the destination's HELLO and
    /// RESERVATION.
    pub fn hello(&mut self) {
        self.control_frame(self.frames.hello(Role::Source));
        self.return_bytes += self.frames.hello(Role::Destination) + self.frames.reservation();
        self.clock.round_trip();
    }

    /// Opens the next iteration (ITERATION_START); page batches belong to it until
    /// [`Sender::end_iteration`].
    pub fn begin_iteration(&mut self) {
        let number = self.next_iteration;
        self.next_iteration += 1;
        self.open = Some(OpenIteration {
            number,
            batches: 0,
            pages: 0,
        });
        self.control_frame(self.frames.iteration_start(number));
    }

    /// Closes the open iteration (ITERATION_END with its batch and page counts), if any.
    pub fn end_iteration(&mut self) {
        if let Some(open) = self.open.take() {
            self.control_frame(
                self.frames
                    .iteration_end(open.number, open.batches, open.pages),
            );
        }
    }

    /// SUSPEND.
    pub fn suspend(&mut self) {
        self.control_frame(self.frames.suspend());
    }

    /// Sends `bytes` of device state (DEVICE_STATE frames).
    pub fn device_state(&mut self, bytes: u64) {
        let frames = self.frames.device_state(bytes);
        self.device_bytes += bytes;
        self.control_bytes += frames - bytes;
        self.clock.send(frames);
    }

    /// The switch to post-copy: the BITMAP of the deferred pages, then POSTCOPY_BEGIN.
    pub fn postcopy_begin(&mut self, deferred: &PageBitmap) {
        self.control_frame(self.frames.deferred(deferred) + self.frames.postcopy_begin());
    }

    /// A post-copy fault: the destination's PAGE_REQUEST for `page`.
    pub fn page_request(&mut self, page: PageNumber) {
        self.return_bytes += self.frames.page_request(page);
    }

    /// The commit: COMMIT_DIGEST, a round trip for the agreeing COMMIT_ANSWER, ACTIVATE (the
    /// destination's ACTIVATED comes back after the guest runs there, so no wait for it).
    pub fn commit_and_activate(&mut self) {
        self.control_frame(self.frames.commit_digest());
        self.clock.round_trip();
        self.return_bytes += self.frames.commit_agree();
        self.control_frame(self.frames.activate());
        self.return_bytes += self.frames.activate();
    }

    /// Sends `pages` (at most [`MAX_BATCH_PAGES`] make one frame; more make several) with their
    /// current contents in `guest`; returns the bytes put on the wire.
    pub fn send_pages(
        &mut self,
        pages: &[PageNumber],
        guest: &mut Guest,
    ) -> Result<u64, TraceReadError> {
        let mut total = 0;
        for chunk in pages.chunks(MAX_BATCH_PAGES) {
            total += self.send_frame(chunk, guest)?;
        }
        Ok(total)
    }

    fn send_frame(
        &mut self,
        pages: &[PageNumber],
        guest: &mut Guest,
    ) -> Result<u64, TraceReadError> {
        self.order.clear();
        self.order.extend_from_slice(pages);
        self.order.sort_unstable();
        self.order.dedup();
        self.batch.records.clear();
        for index in 0..self.order.len() {
            let page = self.order[index];
            let record = match (&mut self.encoder, guest.page(page)?) {
                (Some(encoder), Some(bytes)) => encoder
                    .encode_page(page, bytes)
                    .expect("the guest's pages are one page long"),
                _ => Some(PageRecord {
                    page,
                    body: RecordBody::Raw(self.model_page.clone()),
                }),
            };
            match record {
                Some(record) => match &mut self.encoder {
                    Some(encoder) => encoder.push_coalesced(&mut self.batch.records, record),
                    None => self.batch.records.push(record),
                },
                None => {
                    self.pages_unchanged += 1;
                    self.last_cost[page.index()] = 1;
                }
            }
        }
        if self.batch.records.is_empty() {
            return Ok(0);
        }
        let mut data = 0;
        let mut covered_total = 0;
        let mut next_expected = 0u64;
        for record in &self.batch.records {
            let covered = record.body.pages_covered();
            let record_bytes = varint::encoded_len(record.page.0 - next_expected) as u64
                + body_wire_len(&record.body, self.page_size) as u64;
            next_expected = record.page.0 + covered;
            let per_page = u32::try_from(record_bytes.div_ceil(covered)).unwrap_or(u32::MAX);
            for n in record.page.0..next_expected {
                self.last_cost[n as usize] = per_page;
            }
            covered_total += covered;
            data += record_bytes;
        }
        let open = self.open.get_or_insert(OpenIteration {
            number: self.next_iteration,
            batches: 0,
            pages: 0,
        });
        open.batches += 1;
        open.pages += covered_total;
        self.batch.iteration = Iteration(open.number);
        let frame = Frame::PageBatch(std::mem::replace(
            &mut self.batch,
            PageBatch {
                iteration: Iteration(0),
                records: Vec::new(),
            },
        ));
        let bytes = frame.encoded_len() as u64;
        if let Frame::PageBatch(batch) = frame {
            self.batch = batch;
        }
        self.pages_sent += covered_total;
        self.data_bytes += data;
        self.control_bytes += bytes - data;
        self.clock.send(bytes);
        Ok(bytes)
    }
}

impl PageCosts for Sender {
    fn resend_bytes(&self, page: PageNumber) -> u32 {
        self.last_cost
            .get(page.index())
            .copied()
            .unwrap_or_else(|| raw_record_bytes(self.page_size))
    }
}

/// A raw record's bytes with a one-byte pfn delta.
fn raw_record_bytes(page_size: PageSize) -> u32 {
    page_size.get() + 2
}
