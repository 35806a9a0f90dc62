//! The source's page path: pulling pages from the iteration's feed into per-stream queues,
//! and encoding them into batches when the transport asks for bytes.

use std::collections::VecDeque;

use crate::PageNumber;
use crate::PageRecord;
use crate::encoder::body_wire_len;
use crate::frame::{Frame, Limits, PageBatch};
use crate::memory::{MemoryError, SourceMemory, page_bytes};
use crate::select::PageCosts;
use crate::session::SessionError;

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
            self.encode_batch(index)?;
        }
        Ok(())
    }

    /// Encodes up to one batch's worth of the pages waiting for stream `index` (more than one
    /// batch if the records do not fit one frame).
    fn encode_batch(&mut self, index: usize) -> Result<(), SessionError> {
        let take = self.pending[index].len().min(self.settings.max_batch_pages);
        let mut pages: Vec<PageNumber> = self.pending[index].drain(..take).collect();
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
            let Some(record) = record else {
                self.costs.note(page, RECORD_HEADER as u32);
                continue;
            };
            let len = RECORD_HEADER + body_wire_len(&record.body, page_size);
            self.costs.note(page, len as u32);
            if size + len > max_payload && !records.is_empty() {
                self.send_batch(index, std::mem::take(&mut records))?;
                size = BATCH_HEADER;
            }
            size += len;
            self.encoders[index].push_coalesced(&mut records, record);
        }
        if !records.is_empty() {
            self.send_batch(index, records)?;
        }
        Ok(())
    }

    fn send_batch(&mut self, index: usize, records: Vec<PageRecord>) -> Result<(), SessionError> {
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
        self.core.track_sent(&frame)?;
        self.pages_out[index].push(&frame, &self.core.send_limits)?;
        self.stats.batches += 1;
        self.stats.pages_sent += covered;
        Ok(())
    }
}
