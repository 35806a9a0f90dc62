//! The stand-in guest of `pagewire recv` in post-copy: `recv` runs no VM, so after
//! POSTCOPY_BEGIN one stand-in vCPU touches every page from the highest down (the reverse of
//! the source's background push, so it faults often), faulting in each missing page and
//! waiting for it before it goes on. It writes nothing: the received file is the source's
//! memory as of its suspension, and the faults show what fetching pages on demand costs.

use pagewire_codec::PageNumber;
use pagewire_codec::memory::DestinationMemory;
use pagewire_codec::session::{DestinationSession, Event, FaultStatus, SessionError};
use std::time::Duration;

/// The stand-in vCPU: where it is, and whether it waits for a page.
#[derive(Debug, Default)]
pub(crate) struct TopDownToucher {
    /// The next page to touch (`None`: not started, or done).
    next: Option<PageNumber>,
    /// The page it waits for.
    waiting: Option<PageNumber>,
}

impl TopDownToucher {
    /// Moves the vCPU on after `event`: it starts at post-copy's start and goes on when the
    /// page it waits for arrives.
    pub(crate) fn on_event<M: DestinationMemory>(
        &mut self,
        session: &mut DestinationSession<M>,
        now: Duration,
        event: &Event,
    ) -> Result<(), SessionError> {
        match event {
            Event::PostCopyStarted { .. } => {
                let pages = session.memory().page_count().0;
                self.next = pages.checked_sub(1).map(PageNumber);
            }
            Event::PageArrived(page) if self.waiting == Some(*page) => self.waiting = None,
            _ => return Ok(()),
        }
        while self.waiting.is_none() {
            let Some(page) = self.next else {
                return Ok(());
            };
            match session.fault(now, page) {
                Ok(FaultStatus::Present) => self.next = page.0.checked_sub(1).map(PageNumber),
                Ok(FaultStatus::Requested | FaultStatus::Pending) => self.waiting = Some(page),
                // The bound on outstanding faults cannot be reached by one vCPU; a migration
                // that ended leaves nothing to touch.
                Err(_) => self.next = None,
            }
        }
        Ok(())
    }
}
