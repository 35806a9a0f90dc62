//! Post-copy at the destination: which deferred pages are still missing, the faults the
//! embedder reported, and the hash of every page as received.
//!
//! After POSTCOPY_BEGIN the guest runs and writes its own memory, so the commit digest that
//! closes post-copy cannot be compared with the memory itself: it is compared with the hash
//! each page had when it was received (spec/wire.md, §9.2 "Post-copy"). Non-deferred pages keep
//! the hash the decoder took as it wrote them, or are hashed when post-copy begins, before the
//! guest runs; a deferred page when its record is applied, before the guest may touch it.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::decoder::WrittenHashes;
use crate::error::PeerMisbehaved;
use crate::frame::CommitDigest;
use crate::memory::DestinationMemory;
use crate::session::SessionError;
use crate::{ContentHash, PageBitmap, PageCount, PageNumber, PageRecord};

/// What [`DestinationSession::fault`](crate::session::DestinationSession::fault) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    /// The page is in memory: the guest may touch it now.
    Present,
    /// The page was missing; a PAGE_REQUEST for it goes out with the next control bytes. Wait
    /// for [`Event::PageArrived`](crate::session::Event::PageArrived).
    Requested,
    /// The page was requested already and has not arrived yet: keep waiting.
    Pending,
}

/// Why a fault could not be reported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// Post-copy has not begun (no page is missing on purpose yet), or never will.
    #[error("no post-copy in progress")]
    NotPostCopy,
    /// The page is outside the memory.
    #[error("{page} is outside the memory of {page_count}")]
    PageOutOfRange {
        /// The page.
        page: PageNumber,
        /// The memory's page count.
        page_count: PageCount,
    },
    /// As many pages as allowed are requested and not arrived yet: wait for one.
    #[error("{max} requested pages are outstanding already")]
    TooManyOutstanding {
        /// The bound ([`DestinationConfig::max_outstanding_faults`](crate::session::DestinationConfig::max_outstanding_faults)).
        max: usize,
    },
    /// The migration is over without the page: it will never arrive.
    #[error("the migration ended; missing pages will not arrive")]
    MigrationOver,
}

/// The destination's post-copy bookkeeping.
#[derive(Debug)]
pub(crate) struct PostCopyPages {
    /// Deferred pages that have not arrived.
    missing: PageBitmap,
    /// The hash of every page as received.
    hashes: WrittenHashes,
    /// Requested pages not arrived yet, with the time of their fault.
    outstanding: BTreeMap<PageNumber, Duration>,
    /// Requested pages not yet put in a PAGE_REQUEST.
    unsent: Vec<PageNumber>,
    max_outstanding: usize,
}

impl PostCopyPages {
    /// Post-copy begins with `deferred` missing: hashes every other page of `memory` as it is
    /// now (the guest has not run yet), taking the hash the decoder kept of a page it wrote
    /// (`written`) instead of reading the page.
    pub(crate) fn begin(
        deferred: PageBitmap,
        memory: &impl DestinationMemory,
        written: Option<WrittenHashes>,
        max_outstanding: usize,
    ) -> Result<PostCopyPages, SessionError> {
        let page_count = memory.page_count();
        let mut hashes = match written {
            Some(written) => written,
            None => WrittenHashes::new(page_count)
                .map_err(|_| SessionError::OutOfMemory("a hash per page for post-copy"))?,
        };
        let mut scratch = vec![0u8; memory.page_size().bytes()];
        for page in (0..page_count.0).map(PageNumber) {
            if deferred.contains(page) {
                hashes.forget(page);
            } else if hashes.get(page).is_none() {
                memory.read_page(page, &mut scratch)?;
                hashes.set(page, ContentHash::of(&scratch));
            }
        }
        Ok(PostCopyPages {
            missing: deferred,
            hashes,
            outstanding: BTreeMap::new(),
            unsent: Vec::new(),
            max_outstanding,
        })
    }

    /// Whether `page` is in memory.
    pub(crate) fn is_present(&self, page: PageNumber) -> bool {
        !self.missing.contains(page)
    }

    /// How many deferred pages have not arrived.
    pub(crate) fn missing(&self) -> u64 {
        self.missing.count()
    }

    /// The guest needs `page` (in the memory) at `now`.
    pub(crate) fn fault(
        &mut self,
        now: Duration,
        page: PageNumber,
    ) -> Result<FaultStatus, FaultError> {
        if self.is_present(page) {
            return Ok(FaultStatus::Present);
        }
        if self.outstanding.contains_key(&page) {
            return Ok(FaultStatus::Pending);
        }
        if self.outstanding.len() >= self.max_outstanding {
            return Err(FaultError::TooManyOutstanding {
                max: self.max_outstanding,
            });
        }
        self.outstanding.insert(page, now);
        self.unsent.push(page);
        Ok(FaultStatus::Requested)
    }

    /// The requested pages not yet sent and still missing, ascending (at most the outstanding
    /// bound). A page that arrived meanwhile is not asked for: after the commit digest no
    /// request may go out.
    pub(crate) fn take_unsent(&mut self) -> Vec<PageNumber> {
        let mut pages = std::mem::take(&mut self.unsent);
        pages.retain(|page| !self.is_present(*page));
        pages.sort_unstable();
        pages
    }

    /// The pages in memory as the source sent them or as the guest wrote them: every page
    /// but the deferred ones still missing (what a RESUME in post-copy reports as received).
    pub(crate) fn held(&self) -> PageBitmap {
        let mut held = PageBitmap::full(self.missing.page_count());
        held.subtract(&self.missing);
        held
    }

    /// The link dropped: the requests in flight may be lost with it, so every page still
    /// awaited is asked for again on the new connection.
    pub(crate) fn request_again(&mut self) {
        self.unsent = self.outstanding.keys().copied().collect();
    }

    /// Checks that every page `records` cover is a deferred page still missing: anything else
    /// would overwrite memory the guest may have written.
    pub(crate) fn check(&self, records: &[PageRecord]) -> Result<(), PeerMisbehaved> {
        for record in records {
            let covered = record.body.pages_covered();
            let first = record.page.0;
            let end = first.saturating_add(covered);
            if let Some(page) = (first..end).map(PageNumber).find(|p| self.is_present(*p)) {
                return Err(PeerMisbehaved::PageNotAwaited { page });
            }
        }
        Ok(())
    }

    /// `page` arrived at `now` with content hashing to `hash`; how long the guest waited for
    /// it, if it was requested.
    pub(crate) fn arrived(
        &mut self,
        page: PageNumber,
        hash: ContentHash,
        now: Duration,
    ) -> Option<Duration> {
        self.missing.remove(page);
        self.hashes.set(page, hash);
        let faulted = self.outstanding.remove(&page)?;
        Some(now.saturating_sub(faulted))
    }

    /// The commit digest of the memory as received.
    pub(crate) fn digest(&self, pages_per_range: NonZeroU32) -> CommitDigest {
        // Every page is known here but a page whose content hashes to 0, which `get` cannot
        // tell from an unknown one.
        CommitDigest::compute(pages_per_range.get(), self.hashes.page_count(), |page| {
            self.hashes.get(page).unwrap_or(ContentHash(0))
        })
    }
}
