//! The source's page path: pulling pages from the iteration's feed into per-stream queues,
//! and encoding them into batches when the transport asks for bytes.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::encoder::body_wire_len;
use crate::frame::{Frame, Limits, PageBatch};
use crate::memory::{MemoryError, SourceMemory, page_bytes};
use crate::select::PageCosts;
use crate::session::SessionError;
use crate::{Encoding, EncodingSet, PageNumber, PageRecord, RecordBody};

use super::{Feed, PENDING_BATCHES, SourceSession, Stage};

/// The expected wire bytes to resend each page, from its last record (for the strategy).
#[derive(Debug)]
pub(super) struct ResendCosts {
    pub(super) bytes: Vec<u32>,
    pub(super) raw: u32,
}

impl PageCosts for ResendCosts {
    fn resend_bytes(&self, page: PageNumber) -> u32 {
        self.bytes.get(page.index()).copied().unwrap_or(self.raw)
    }
}

impl ResendCosts {
    fn note(&mut self, page: PageNumber, bytes: u32) {
        if let Some(slot) = self.bytes.get_mut(page.index()) {
            *slot = bytes;
        }
    }
}

/// Where an encoded batch goes.
///
/// Post-copy priority: a page the destination requested must not wait behind the background
/// push, which fills each page stream's queues (the session's outbox, the transport's send
/// queue, QUIC's send buffer: megabytes). Requested pages therefore travel on the control
/// stream, which carries nothing else large in post-copy and which the transport sends first.
/// Their versions stay in order without page-stream affinity because after POSTCOPY_BEGIN each
/// deferred page is sent exactly once, and its earlier versions belong to iterations the
/// destination finished before (spec/wire.md §9.3). They are encoded by their page stream's
/// encoder, whose XBZRLE cache holds their last version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    /// The page stream's own queue and outbox.
    PageStream,
    /// The requested pages of the page stream, onto the control stream.
    Control,
}

/// A batch's fixed header: iteration and record count.
const BATCH_HEADER: usize = 12;
/// The most bytes a record takes before its body: the page-number delta (a varint).
const RECORD_HEADER: usize = 10;

impl<M: SourceMemory> SourceSession<M> {
    /// Pulls pages from the iteration's feed into the per-stream queues until stream `want`
    /// has some, the feed is exhausted, or the queues are full.
    pub(super) fn refill(&mut self, want: usize) -> Result<(), SessionError> {
        let Stage::Transfer(transfer) = &mut self.stage else {
            return Ok(());
        };
        let max = self.settings.max_batch_pages;
        let cap = max * PENDING_BATCHES * self.pending.len();
        let page_count = self.memory.page_count();
        while self.pending[want].is_empty()
            && !transfer.exhausted
            && self.pending.iter().map(VecDeque::len).sum::<usize>() < cap
        {
            self.pulled.clear();
            let count = match &mut transfer.feed {
                Feed::Strategy => self.strategy.next_batch(&self.dirty, max, &mut self.pulled),
                Feed::Set { pages, next } => {
                    while self.pulled.len() < max
                        && let Some(page) = pages.first_at_or_after(*next)
                    {
                        self.pulled.push(page);
                        *next = page.next();
                        if page.0 == u64::MAX {
                            break;
                        }
                    }
                    self.pulled.len()
                }
            };
            if count == 0 {
                transfer.exhausted = true;
            }
            for &page in &self.pulled {
                if page_count.contains(page) {
                    self.pending[self.affinity.index_of(page)].push_back(page);
                }
            }
        }
        Ok(())
    }

    /// Encodes batches for page stream `index` until `budget` bytes wait or it has no pages.
    pub(super) fn produce(&mut self, index: usize, budget: usize) -> Result<(), SessionError> {
        while self.pages_out[index].len() < budget && matches!(self.stage, Stage::Transfer(_)) {
            if self.pending[index].is_empty() {
                self.refill(index)?;
            }
            if self.pending[index].is_empty() {
                return Ok(());
            }
            self.encode_batch(index, Lane::PageStream)?;
        }
        Ok(())
    }

    /// Encodes up to one batch's worth of the pages waiting for stream `index` in `lane`
    /// (more than one batch if the records do not fit one frame).
    pub(super) fn encode_batch(&mut self, index: usize, lane: Lane) -> Result<(), SessionError> {
        let queue = match lane {
            Lane::PageStream => &mut self.pending[index],
            Lane::Control => &mut self.requested[index],
        };
        let take = queue.len().min(self.settings.max_batch_pages);
        let mut pages: Vec<PageNumber> = queue.drain(..take).collect();
        pages.sort_unstable();
        pages.dedup();
        let page_size = self.memory.page_size();
        let max_payload = self
            .core
            .send_limits
            .max_frame_payload
            .min(Limits::HARD_MAX_FRAME_PAYLOAD) as usize;
        let mut records = Vec::new();
        let mut size = BATCH_HEADER;
        for page in pages {
            let bytes = page_bytes(&self.memory, page, &mut self.scratch)?;
            let encoder = &mut self.encoders[index];
            let record =
                encoder
                    .encode_page(page, bytes)
                    .map_err(|wrong| MemoryError::WrongLength {
                        expected: wrong.expected,
                        actual: wrong.actual,
                    })?;
            let record = match record {
                Some(record) => record,
                // Post-copy: the destination waits for every deferred page, even one whose
                // content it holds already.
                None if self.deferred.is_some() => {
                    unchanged(page, bytes, encoder.config().encodings)
                }
                None => {
                    self.costs.note(page, RECORD_HEADER as u32);
                    continue;
                }
            };
            let len = RECORD_HEADER + body_wire_len(&record.body, page_size);
            self.costs.note(page, len as u32);
            if size + len > max_payload && !records.is_empty() {
                self.send_batch(index, lane, std::mem::take(&mut records))?;
                size = BATCH_HEADER;
            }
            size += len;
            self.encoders[index].push_coalesced(&mut records, record);
        }
        if !records.is_empty() {
            self.send_batch(index, lane, records)?;
        }
        Ok(())
    }

    fn send_batch(
        &mut self,
        index: usize,
        lane: Lane,
        records: Vec<PageRecord>,
    ) -> Result<(), SessionError> {
        let Stage::Transfer(transfer) = &mut self.stage else {
            return Ok(());
        };
        let covered: u64 = records.iter().map(|r| r.body.pages_covered()).sum();
        let frame = Frame::PageBatch(PageBatch {
            iteration: transfer.iteration,
            records,
        });
        frame.check(&self.core.send_limits)?;
        transfer.batches += 1;
        transfer.pages += covered;
        if let (Some(sent), Frame::PageBatch(batch)) = (&mut self.sent, &frame) {
            sent.sent(batch.iteration, &batch.records);
        }
        match lane {
            Lane::PageStream => {
                self.core.track_sent(&frame)?;
                self.pages_out[index].push(&frame, &self.core.send_limits)?;
            }
            Lane::Control => self.core.send(frame)?,
        }
        self.stats.batches += 1;
        self.stats.pages_sent += covered;
        Ok(())
    }
}

/// A record for `page` (content `bytes`) that the destination already holds: an empty XBZRLE
/// delta where XBZRLE is negotiated, the page itself otherwise.
fn unchanged(page: PageNumber, bytes: &[u8], encodings: EncodingSet) -> PageRecord {
    let body = if encodings.contains(Encoding::Xbzrle) {
        RecordBody::Xbzrle(Bytes::new())
    } else {
        RecordBody::Raw(Bytes::copy_from_slice(bytes))
    };
    PageRecord { page, body }
}
