//! [`Timeline`]: what the simulator learns about a trace in one pass before any run: when each
//! epoch lands and how many pages it writes. Knowing the landing times ahead lets a run decode
//! an epoch (which changes the reader's image) exactly when it lands, never earlier.

use std::path::Path;
use std::time::Duration;

use pagewire_codec::{PageCount, PageSize};

use crate::trace::{ContentMode, Epoch, TraceReadError, TraceReader};

/// The epochs of a trace, without their contents.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Page size of the trace.
    pub page_size: PageSize,
    /// Pages of the traced memory (its final size, if it grew).
    pub page_count: PageCount,
    /// Whether the trace holds contents.
    pub content: ContentMode,
    /// When each epoch lands, from the start of the trace.
    pub times: Vec<Duration>,
    /// How many pages each epoch writes.
    pub writes: Vec<u64>,
}

impl Timeline {
    /// Reads every epoch of the trace at `path` once.
    pub fn scan(path: &Path) -> Result<Timeline, TraceReadError> {
        let mut reader = TraceReader::open(path)?;
        let page_count = reader.page_count();
        let mut timeline = Timeline {
            page_size: reader.page_size(),
            page_count,
            content: reader.header().content,
            times: Vec::new(),
            writes: Vec::new(),
        };
        let mut epoch = Epoch::default();
        while reader.next_epoch(&mut epoch)? {
            timeline.times.push(epoch.time);
            timeline.writes.push(epoch.writes.len() as u64);
        }
        Ok(timeline)
    }

    /// The time one replay of the trace covers: its last epoch's time, or 1 ms for a trace
    /// whose epochs all land at time zero (so replays still advance).
    pub fn period(&self) -> Duration {
        self.times
            .last()
            .copied()
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_millis(1))
    }

    /// The memory size in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.page_count.0 * self.page_size.bytes() as u64
    }
}
