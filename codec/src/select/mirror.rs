//! Mirror migration (one pass plus write forwarding, as in the I/O-mirroring migration of
//! VMware's storage migration, Mashtizadeh et al., "The Design and Evolution of Live Storage
//! Migration in VMware ESX", USENIX ATC 2011, applied to memory).
//!
//! Rule: a single pass over memory in ascending order; once a page has been copied, every
//! guest write to it is forwarded at once (a control signal plus the page data), so the copy
//! never falls behind and no page is re-sent in rounds. A write to a page the pass has not
//! reached yet needs nothing: the pass copies its latest content. When the pass ends the
//! destination is current, and stop-and-copy moves only the device state. The guest may stall
//! when writes outpace the link; the driver measures that.

use super::registry::{Params, SpecError, unknown_param};
use super::{
    CpuThrottle, Decision, Geometry, Iteration, Observation, Round, StopAndCopy, StopReason,
    Strategy, WriteAction, WriteMode,
};
use crate::{PageBitmap, PageNumber};

/// Mirror migration: one pass, writes forwarded.
#[derive(Clone, Debug)]
pub struct Mirror {
    geometry: Geometry,
    cursor: u64,
    started: bool,
}

/// Parameters of [`Mirror`] (it has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorParams;

impl Params for MirrorParams {
    fn set(&mut self, key: &str, _value: &str) -> Result<(), SpecError> {
        Err(unknown_param("mirror", key))
    }
}

impl Mirror {
    /// Mirror migration over `geometry`.
    pub fn with(geometry: Geometry, _params: MirrorParams) -> Self {
        Mirror {
            geometry,
            cursor: 0,
            started: false,
        }
    }
}

impl Strategy for Mirror {
    fn name(&self) -> &'static str {
        "mirror"
    }

    fn plan(&mut self, _observation: &Observation<'_>) -> Decision {
        if !self.started {
            self.started = true;
            return Decision::Round(Round {
                iteration: Iteration(0),
                planned: self.geometry.page_count,
                throttle: CpuThrottle::NONE,
                writes: WriteMode::Mirror,
            });
        }
        // Whatever the pass has not reached (nothing, once it is complete) remains.
        let mut remaining = PageBitmap::new(self.geometry.page_count);
        remaining.insert_range(PageNumber(self.cursor), self.geometry.page_count.0);
        self.cursor = self.geometry.page_count.0;
        Decision::StopAndCopy(StopAndCopy {
            remaining,
            reason: StopReason::PassComplete,
        })
    }

    fn next_batch(
        &mut self,
        _dirty_now: &PageBitmap,
        max: usize,
        out: &mut Vec<PageNumber>,
    ) -> usize {
        if !self.started {
            return 0;
        }
        let end = self.geometry.page_count.0;
        let take = (max as u64).min(end - self.cursor);
        out.extend((self.cursor..self.cursor + take).map(PageNumber));
        self.cursor += take;
        take as usize
    }

    fn on_write(&mut self, page: PageNumber) -> WriteAction {
        if page.0 < self.cursor && self.started {
            WriteAction::Forward
        } else {
            WriteAction::Log
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::{Script, pages};

    #[test]
    fn mirror_copies_once_and_forwards_writes_to_copied_pages() {
        // 4 pages. The pass hands out 0 1; a write to 1 (copied) is forwarded, a write to 2
        // (not reached) only logged; the pass hands out 2 3; then a write to 3 is forwarded.
        // The pass is over: stop-and-copy with nothing remaining.
        let script = Script::new(4);
        let mut mirror = Mirror::with(Script::geometry(4), MirrorParams);
        assert_eq!(mirror.on_write(PageNumber(0)), WriteAction::Log);
        let Decision::Round(round) = script.plan_first(&mut mirror) else {
            panic!("expected the pass");
        };
        assert_eq!((round.writes, round.planned.0), (WriteMode::Mirror, 4));
        let empty = Script::bitmap(4, &[]);
        let mut out = Vec::new();
        assert_eq!(mirror.next_batch(&empty, 2, &mut out), 2);
        assert_eq!(mirror.on_write(PageNumber(1)), WriteAction::Forward);
        assert_eq!(mirror.on_write(PageNumber(2)), WriteAction::Log);
        mirror.next_batch(&empty, 10, &mut out);
        assert_eq!(out, pages(&[0, 1, 2, 3]));
        assert_eq!(mirror.on_write(PageNumber(3)), WriteAction::Forward);
        assert_eq!(mirror.next_batch(&empty, 10, &mut out), 0);
        let Decision::StopAndCopy(stop) = script.plan_first(&mut mirror) else {
            panic!("expected the end");
        };
        assert!(stop.remaining.is_empty());
        assert_eq!(stop.reason, StopReason::PassComplete);
    }
}
