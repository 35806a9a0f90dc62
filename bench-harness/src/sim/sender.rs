//! [`Sender`]: the source's send path on the simulated link. It encodes every page with the
//! real [`Encoder`] on the page's current content, frames the records, and charges the bytes to
//! the [`LinkClock`].
//!
//! Wire cost model (the frames part owns the real layout; these are the sizes charged):
//! - a page batch is one frame of at most [`MAX_BATCH_PAGES`] pages, with a
//!   [`FRAME_HEADER_BYTES`] header (type, length, iteration); inside it each record costs its
//!   exact `pfn_delta` varint plus [`body_wire_len`] (tag and body as `spec/wire.md` lays it
//!   out), consecutive zero pages coalesced into one zero run;
//! - a control signal (iteration start or end, a forwarded mirror write, a post-copy fault
//!   request, the resume notice) costs [`CONTROL_SIGNAL_BYTES`];
//! - content-less traces (size model): every page is sent raw, `1 + page_size` bytes plus its
//!   `pfn_delta` (no zero pages, no deltas, no compression);
//! - bytes count at the link's payload bandwidth (transport packet headers are not modelled).

use std::time::Duration;

use pagewire_codec::encoder::{CostPolicy, LinkTime, body_wire_len};
use pagewire_codec::select::PageCosts;
use pagewire_codec::{
    Encoder, EncoderConfig, EncoderStats, EncodingSet, PageNumber, PageRecord, PageSize, RecordBody,
};

use super::guest::Guest;
use super::link::LinkClock;
use crate::trace::TraceReadError;

/// Pages per page-batch frame.
pub const MAX_BATCH_PAGES: usize = 64;
/// Bytes of a page-batch frame header.
pub const FRAME_HEADER_BYTES: u64 = 8;
/// Bytes of one control signal.
pub const CONTROL_SIGNAL_BYTES: u64 = 8;

/// The source's send path: encoder, link clock and byte counters.
pub struct Sender {
    encoder: Option<Encoder>,
    page_size: PageSize,
    clock: LinkClock,
    records: Vec<PageRecord>,
    order: Vec<PageNumber>,
    /// Wire bytes of the last record sent for each page (the resend-cost hint).
    last_cost: Vec<u32>,
    /// Page-record bytes (pfn deltas, tags, bodies).
    pub data_bytes: u64,
    /// Frame headers and control signals.
    pub control_bytes: u64,
    /// Device state bytes.
    pub device_bytes: u64,
    /// Pages covered by records sent (every version counts; a zero run counts its pages).
    pub pages_sent: u64,
    /// Pages handed to the encoder whose content the destination already held.
    pub pages_unchanged: u64,
}

impl Sender {
    /// A send path for `page_count` pages of `page_size` over `clock`; with an encoder (a
    /// content trace; every known encoding, a cache of `cache_bytes`, the link-time cost
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
            config.policy =
                CostPolicy::LinkTime(LinkTime::new(clock.link().bytes_per_second as f64));
            Encoder::new(config).expect("default encoder settings and a positive link speed")
        });
        let raw = raw_record_bytes(page_size);
        Sender {
            encoder,
            page_size,
            clock,
            records: Vec::new(),
            order: Vec::new(),
            last_cost: vec![raw; usize::try_from(page_count).expect("page count fits memory")],
            data_bytes: 0,
            control_bytes: 0,
            device_bytes: 0,
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

    /// All bytes put on the wire.
    pub fn total_bytes(&self) -> u64 {
        self.data_bytes + self.control_bytes + self.device_bytes
    }

    /// The encoder's counters (`None` under the size model).
    pub fn encoder_stats(&self) -> Option<EncoderStats> {
        self.encoder.as_ref().map(Encoder::stats)
    }

    /// Sends one control signal.
    pub fn control(&mut self) {
        self.control_bytes += CONTROL_SIGNAL_BYTES;
        self.clock.send(CONTROL_SIGNAL_BYTES);
    }

    /// Sends `bytes` of device state.
    pub fn device_state(&mut self, bytes: u64) {
        self.device_bytes += bytes;
        self.clock.send(bytes);
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
        self.records.clear();
        for index in 0..self.order.len() {
            let page = self.order[index];
            let record = match (&mut self.encoder, guest.page(page)?) {
                (Some(encoder), Some(bytes)) => encoder
                    .encode_page(page, bytes)
                    .expect("the guest's pages are one page long"),
                _ => Some(PageRecord {
                    page,
                    body: RecordBody::Raw(bytes::Bytes::new()),
                }),
            };
            match record {
                Some(record) => match &mut self.encoder {
                    Some(encoder) => encoder.push_coalesced(&mut self.records, record),
                    None => self.records.push(record),
                },
                None => {
                    self.pages_unchanged += 1;
                    self.last_cost[page.index()] = 1;
                }
            }
        }
        if self.records.is_empty() {
            return Ok(0);
        }
        let mut bytes = FRAME_HEADER_BYTES;
        let mut next_expected = 0u64;
        for record in &self.records {
            let covered = match record.body {
                RecordBody::ZeroRun { count } => count,
                _ => 1,
            };
            let record_bytes = varint_len(record.page.0 - next_expected)
                + body_wire_len(&record.body, self.page_size) as u64;
            next_expected = record.page.0 + covered;
            let per_page = u32::try_from(record_bytes.div_ceil(covered)).unwrap_or(u32::MAX);
            for n in record.page.0..next_expected {
                self.last_cost[n as usize] = per_page;
            }
            self.pages_sent += covered;
            self.data_bytes += record_bytes;
            bytes += record_bytes;
        }
        self.control_bytes += FRAME_HEADER_BYTES;
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

/// Bytes of `value` as a LEB128 varint.
fn varint_len(value: u64) -> u64 {
    u64::from((64 - (value | 1).leading_zeros()).div_ceil(7))
}

#[cfg(test)]
mod tests {
    use super::varint_len;

    #[test]
    fn varint_lengths() {
        for (value, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)] {
            assert_eq!(varint_len(value), len);
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
