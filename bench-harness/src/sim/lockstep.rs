//! [`lockstep`]: the round-synchronous model of the seed papers' own simulators, one trace
//! epoch per live round, with no clock and no link.
//!
//! Some papers (history-majority among them) evaluate a rule on a list of dirty patterns and
//! count pages: round `i` finds pattern `i` written while it runs, so pattern `i` is its
//! `to_skip` set and the next round's `to_send` set. The time-driven simulator ([`super::run`])
//! cannot reproduce that on their tiny memories: a 10-page VM is copied long before the next
//! pattern lands, the next dirty log is empty, and every strategy stops after one pass. This
//! driver gives each round exactly one pattern instead:
//!
//! - before round `i` hands out any page, epoch `i` of the trace lands (its pages are in the
//!   live dirty log, so a to_skip rule passes over them); the round then sends what the
//!   strategy hands out; its dirty log (epoch `i`) is harvested for the next `plan`;
//! - when the trace has no epoch left, rounds run with no writes;
//! - stop-and-copy sends the pages the strategy names plus the last harvest.
//!
//! It drives the strategies through [`Strategy`](pagewire_codec::select::Strategy) exactly as
//! the simulator does. Only round-based strategies that end in stop-and-copy make sense here;
//! a strategy asking for post-copy is reported as [`LockstepError::PostCopy`].

use std::path::Path;
use std::time::Duration;

use pagewire_codec::PageBitmap;
use pagewire_codec::select::{
    self, Decision, FlatCost, Geometry, LinkEstimate, Observation, Progress, StrategySpec,
};

use crate::trace::{Epoch, TraceReadError, TraceReader};

/// Pages handed out per `next_batch` call.
const BATCH: usize = 64;

/// Why a lock-step run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockstepError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceReadError),
    /// The strategy spec was refused.
    #[error(transparent)]
    Spec(#[from] select::SpecError),
    /// The strategy asked for post-copy, which this model has no rounds for.
    #[error("{0} switched to post-copy; the lock-step model covers stop-and-copy only")]
    PostCopy(String),
    /// The strategy kept running rounds past the limit.
    #[error("{strategy} ran {rounds} rounds without stopping")]
    NeverStopped {
        /// The strategy.
        strategy: String,
        /// The limit reached.
        rounds: u32,
    },
}

/// What a lock-step run sent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LockstepResult {
    /// Pages sent by each live round.
    pub rounds: Vec<u64>,
    /// Pages sent while the guest was suspended.
    pub stop_copy_pages: u64,
    /// Why the live rounds ended (the strategy's [`select::StopReason`]).
    pub stop_reason: String,
}

impl LockstepResult {
    /// Every page sent, live rounds and stop-and-copy.
    pub fn pages_sent(&self) -> u64 {
        self.rounds.iter().sum::<u64>() + self.stop_copy_pages
    }
}

/// Runs `spec` over the trace at `path` in lock step (see the module documentation), for at
/// most `max_rounds` live rounds.
pub fn lockstep(
    path: &Path,
    spec: &StrategySpec,
    max_rounds: u32,
) -> Result<LockstepResult, LockstepError> {
    let mut reader = TraceReader::open(path)?;
    let geometry = Geometry {
        page_count: reader.page_count(),
        page_size: reader.page_size(),
    };
    let mut strategy = select::build(spec, geometry)?;
    let costs = FlatCost(geometry.page_size.get() + 2);
    let link = LinkEstimate::UNKNOWN;
    let mut epoch = Epoch::default();
    let mut dirty = PageBitmap::new(geometry.page_count);
    let mut harvest = PageBitmap::new(geometry.page_count);
    let mut batch = Vec::with_capacity(BATCH);
    let mut result = LockstepResult {
        rounds: Vec::new(),
        stop_copy_pages: 0,
        stop_reason: String::new(),
    };
    let mut pages_sent = 0;
    loop {
        let observation = Observation {
            now: Duration::from_secs(result.rounds.len() as u64),
            dirty: &harvest,
            link,
            costs: &costs,
            progress: Progress {
                bytes_sent: pages_sent * u64::from(costs.0),
                pages_sent,
            },
        };
        match strategy.plan(&observation) {
            Decision::Round(_) => {
                if result.rounds.len() as u64 >= u64::from(max_rounds) {
                    return Err(LockstepError::NeverStopped {
                        strategy: strategy.name().to_owned(),
                        rounds: max_rounds,
                    });
                }
                dirty.clear();
                if reader.next_epoch(&mut epoch)? {
                    epoch.writes.iter().for_each(|write| {
                        dirty.insert(write.page);
                    });
                }
                let mut sent = 0;
                loop {
                    batch.clear();
                    let count = strategy.next_batch(&dirty, BATCH, &mut batch);
                    if count == 0 {
                        break;
                    }
                    sent += count as u64;
                }
                result.rounds.push(sent);
                pages_sent += sent;
                std::mem::swap(&mut harvest, &mut dirty);
            }
            Decision::StopAndCopy(stop) => {
                let mut remaining = stop.remaining;
                remaining.union_with(&harvest);
                result.stop_copy_pages = remaining.count();
                result.stop_reason = format!("{:?}", stop.reason);
                return Ok(result);
            }
            Decision::PostCopy(_) => {
                return Err(LockstepError::PostCopy(strategy.name().to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{ContentMode, TraceHeader, TraceWriter};
    use pagewire_codec::{PageCount, PageNumber, PageSize};

    fn trace(name: &str, pages: u64, epochs: &[&[u64]]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pagewire-lockstep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let header = TraceHeader::new(PageSize::KIB_4, ContentMode::DirtyOnly, PageCount(pages));
        let mut writer = TraceWriter::create(&path, header).unwrap();
        for (index, written) in epochs.iter().enumerate() {
            writer
                .begin_epoch(Duration::from_millis(100 * (index as u64 + 1)))
                .unwrap();
            for &page in *written {
                writer.write_dirty(PageNumber(page)).unwrap();
            }
            writer.end_epoch().unwrap();
        }
        writer.finish().unwrap();
        path
    }

    #[test]
    fn precopy_sends_last_rounds_pattern_minus_the_current_one() {
        // 4 pages; patterns {0 1}, {1 2}, {2 3}.
        // Round 0: all pages but to_skip {0 1} -> sends 2 3; harvest {0 1}.
        // Round 1: to_send {0 1} (stale), to_skip {1 2} -> sends 0; harvest {1 2}.
        // Round 2: to_send {1 2}, to_skip {2 3} -> sends 1; harvest {2 3}.
        // Round 3 would be the fourth: the round cap stops it; stop-and-copy sends {2 3}.
        let path = trace("precopy.trace", 4, &[&[0, 1], &[1, 2], &[2, 3]]);
        let spec = "precopy:min-pages=0,downtime-ms=0,max-factor=0,max-rounds=3"
            .parse()
            .unwrap();
        let result = lockstep(&path, &spec, 10).unwrap();
        assert_eq!(result.rounds, [2, 1, 1]);
        assert_eq!(result.stop_copy_pages, 2);
        assert_eq!(result.stop_reason, "RoundLimit");
        assert_eq!(result.pages_sent(), 6);
    }

    #[test]
    fn history_majority_holds_a_page_precopy_keeps_resending() {
        // 3 pages; page 1 written in rounds 0, 2, 4 and page 0 in rounds 1, 3.
        // Pre-copy: round 0 sends 0 2 (1 skipped), then each round sends the page the last
        // pattern wrote and the current one did not: 1, 0, 1, 0; the cap stops it before
        // round 5; stop-and-copy sends 1. Seven pages.
        // History-majority (k = 3): rounds 0-2 as pre-copy (2, 1, 1 pages); before round 3
        // page 1 is in two of the last three logs and is held: nothing to send, stop-and-copy
        // sends 1. Five pages.
        let path = trace("alternate.trace", 3, &[&[1], &[0], &[1], &[0], &[1]]);
        let limits = "min-pages=0,downtime-ms=0,max-factor=0,max-rounds=5";
        let precopy = lockstep(&path, &format!("precopy:{limits}").parse().unwrap(), 10).unwrap();
        assert_eq!(precopy.rounds, [2, 1, 1, 1, 1]);
        assert_eq!(precopy.stop_copy_pages, 1);
        assert_eq!(precopy.pages_sent(), 7);
        let spec = format!("history-majority:{limits}").parse().unwrap();
        let majority = lockstep(&path, &spec, 10).unwrap();
        assert_eq!(majority.rounds, [2, 1, 1]);
        assert_eq!(majority.stop_copy_pages, 1);
        assert_eq!(majority.stop_reason, "NothingToSend");
        assert_eq!(majority.pages_sent(), 5);
    }

    #[test]
    fn a_strategy_that_never_stops_is_reported() {
        let path = trace("forever.trace", 2, &[&[0], &[1], &[0], &[1]]);
        let spec = "precopy:min-pages=0,downtime-ms=0,max-factor=0,max-rounds=100"
            .parse()
            .unwrap();
        assert!(matches!(
            lockstep(&path, &spec, 3),
            Err(LockstepError::NeverStopped { rounds: 3, .. })
        ));
    }
}
