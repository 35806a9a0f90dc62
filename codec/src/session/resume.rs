//! What each side remembers so that a migration can resume on a new connection after a
//! dropped link (spec/wire.md §5.3): the destination, which pages hold a version from a
//! completed iteration ([`ReceivedPages`]); the source, the iteration each page was last sent
//! in ([`SentPages`]).

use std::time::Duration;

use crate::frame::{Iteration, Limits};
use crate::session::SessionError;
use crate::{PageBitmap, PageCount, PageNumber, PageRecord};

/// The bytes of a RESUME payload before the bitmap's data: next_iteration (8), the bitmap's
/// page count (8) and form (1).
const RESUME_FIXED_LEN: u64 = 17;

/// Whether a RESUME for `page_count` pages fits a frame payload of `max_frame_payload` bytes
/// whatever set it carries (the raw bitmap form is the longest a writer may use). A side
/// announces the resume feature only when it does.
///
/// ```
/// use pagewire_codec::PageCount;
/// use pagewire_codec::session::resume_fits;
/// // 16 MiB frames hold the bitmap of 134 217 592 pages (just under 512 GiB of 4 KiB pages).
/// assert!(resume_fits(PageCount(134_217_592), 16 << 20));
/// assert!(!resume_fits(PageCount(134_217_593), 16 << 20));
/// ```
pub fn resume_fits(page_count: PageCount, max_frame_payload: u32) -> bool {
    let max = max_frame_payload.min(Limits::HARD_MAX_FRAME_PAYLOAD);
    RESUME_FIXED_LEN.saturating_add(page_count.0.div_ceil(8)) <= u64::from(max)
}

/// Destination: the pages whose content is the version the source sent in a completed
/// iteration (one whose ITERATION_END was processed), which a RESUME reports as received.
/// A page applied in the open iteration leaves the set until that iteration completes.
#[derive(Debug)]
pub(crate) struct ReceivedPages {
    held: PageBitmap,
    open: PageBitmap,
}

impl ReceivedPages {
    pub(crate) fn new(page_count: PageCount) -> ReceivedPages {
        ReceivedPages {
            held: PageBitmap::new(page_count),
            open: PageBitmap::new(page_count),
        }
    }

    /// The records of a batch of the open iteration were applied.
    pub(crate) fn applied(&mut self, records: &[PageRecord]) {
        for record in records {
            let count = record.body.pages_covered();
            self.held.remove_range(record.page, count);
            self.open.insert_range(record.page, count);
        }
    }

    /// The open iteration completed: its pages are held.
    pub(crate) fn completed(&mut self) {
        self.held.union_with(&self.open);
        self.open.clear();
    }

    /// The link dropped: the open iteration will not complete (its pages stay out of the set).
    pub(crate) fn interrupted(&mut self) {
        self.open.clear();
    }

    /// The pages held from completed iterations.
    pub(crate) fn held(&self) -> &PageBitmap {
        &self.held
    }
}

/// Source: the iteration each page was last sent in, as `iteration + 1` (0: never sent),
/// saturating at `u32::MAX` (then always taken as unconfirmed: resent after a resume). Four
/// bytes per page, allocated only when the resume feature is in use.
#[derive(Debug)]
pub(crate) struct SentPages {
    stamps: Vec<u32>,
}

impl SentPages {
    pub(crate) fn new(page_count: PageCount) -> Result<SentPages, SessionError> {
        let pages = usize::try_from(page_count.0)
            .map_err(|_| SessionError::OutOfMemory("the iteration each page was sent in"))?;
        let mut stamps = Vec::new();
        stamps
            .try_reserve_exact(pages)
            .map_err(|_| SessionError::OutOfMemory("the iteration each page was sent in"))?;
        stamps.resize(pages, 0);
        Ok(SentPages { stamps })
    }

    /// The records were sent in `iteration`.
    pub(crate) fn sent(&mut self, iteration: Iteration, records: &[PageRecord]) {
        let stamp = u32::try_from(iteration.0.saturating_add(1)).unwrap_or(u32::MAX);
        for record in records {
            let first = record.page.index();
            let count = usize::try_from(record.body.pages_covered()).unwrap_or(usize::MAX);
            let end = first.saturating_add(count).min(self.stamps.len());
            if let Some(slots) = self.stamps.get_mut(first..end) {
                slots.fill(stamp);
            }
        }
    }

    /// Adds to `pages` what a RESUME(`next_iteration`, `received`) obliges the source to send
    /// again: every page it has sent that is not in `received`, and every page it last sent
    /// in iteration `next_iteration` or later. (A page it never sent is still its strategy's
    /// to send; a page dirtied since it was last sent is in the dirty log or the strategy's
    /// plan, as without a resume.)
    pub(crate) fn to_resend(
        &self,
        next_iteration: Iteration,
        received: &PageBitmap,
        pages: &mut PageBitmap,
    ) {
        for (index, &stamp) in self.stamps.iter().enumerate() {
            if stamp == 0 {
                continue;
            }
            let page = PageNumber(index as u64);
            let unconfirmed = stamp == u32::MAX || u64::from(stamp) > next_iteration.0;
            if unconfirmed || !received.contains(page) {
                pages.insert(page);
            }
        }
    }
}

/// Destination: a migration whose link dropped, waiting for its source to resume it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interruption {
    /// When the link was lost (the grace period counts from here).
    pub(crate) since: Duration,
    /// The first iteration that did not complete.
    pub(crate) next_iteration: Iteration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordBody;
    use bytes::Bytes;

    fn raw(page: u64) -> PageRecord {
        PageRecord {
            page: PageNumber(page),
            body: RecordBody::Raw(Bytes::new()),
        }
    }

    #[test]
    fn received_pages_leave_the_set_while_their_iteration_is_open() {
        let mut received = ReceivedPages::new(PageCount(8));
        received.applied(&[PageRecord {
            page: PageNumber(0),
            body: RecordBody::ZeroRun { count: 3 },
        }]);
        assert!(received.held().is_empty());
        received.completed();
        assert_eq!(received.held().count(), 3);
        received.applied(&[raw(1)]);
        received.interrupted();
        received.completed();
        let held: Vec<u64> = received.held().iter().map(|p| p.0).collect();
        assert_eq!(held, [0, 2]);
    }

    #[test]
    fn resend_covers_unconfirmed_iterations_and_pages_not_received() {
        let mut sent = SentPages::new(PageCount(6)).unwrap();
        sent.sent(Iteration(0), &[raw(0), raw(1), raw(2)]);
        sent.sent(Iteration(1), &[raw(2), raw(3)]);
        // The destination completed iteration 0 but lost page 1 (it says so).
        let mut received = PageBitmap::new(PageCount(6));
        received.insert_range(PageNumber(0), 3);
        received.remove(PageNumber(1));
        let mut pages = PageBitmap::new(PageCount(6));
        sent.to_resend(Iteration(1), &received, &mut pages);
        let pages: Vec<u64> = pages.iter().map(|p| p.0).collect();
        // 1: not received; 2 and 3: sent in iteration 1; 4 and 5: never sent.
        assert_eq!(pages, [1, 2, 3]);
    }
}
