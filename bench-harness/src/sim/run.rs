//! [`simulate`]: one migration of one trace under one strategy over one link, driven through
//! the [`Strategy`](pagewire_codec::select::Strategy) trait in the order its module documentation gives.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pagewire_codec::select::{
    self, Decision, FaultAction, Geometry, LinkEstimate, Observation, Progress, StrategySpec,
    WriteAction, WriteMode,
};
use pagewire_codec::{PageBitmap, PageCount, PageNumber};

use super::guest::Guest;
use super::link::{LinkClock, LinkSpec};
use super::metrics::{EncoderSummary, RoundStat, RunResult};
use super::sender::{MAX_BATCH_PAGES, Sender};
use super::timeline::Timeline;
use crate::trace::TraceReadError;

/// Settings of a run besides the trace, the strategy and the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The link.
    pub link: LinkSpec,
    /// Trace time at which the migration starts (the guest runs alone before it).
    pub start: Duration,
    /// How far before the start the dirty-log window reaches ([`select::Strategy::observe_history`]).
    pub history_window: Duration,
    /// Copies of the trace's write pattern over disjoint memory.
    pub scale: u64,
    /// Bytes of device (CPU and device) state sent while the guest is suspended.
    pub device_state_bytes: u64,
    /// Bytes of the encoder's cache of last-sent versions.
    pub cache_bytes: u64,
    /// Live rounds after which the driver gives up on a strategy that never stops.
    pub max_rounds: u32,
}

impl SimConfig {
    /// Defaults over `link`: start at trace time zero, a 1 s history window, scale 1, 128 KiB
    /// of device state, QEMU's 64 MiB cache, at most 10 000 rounds.
    pub fn new(link: LinkSpec) -> SimConfig {
        SimConfig {
            link,
            start: Duration::ZERO,
            history_window: Duration::from_secs(1),
            scale: 1,
            device_state_bytes: 128 << 10,
            cache_bytes: pagewire_codec::encoder::DEFAULT_CACHE_BYTES,
            max_rounds: 10_000,
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceReadError),
    /// The strategy spec was refused.
    #[error(transparent)]
    Spec(#[from] select::SpecError),
    /// The strategy kept running live rounds past the driver's limit.
    #[error("{strategy} ran {rounds} live rounds without stopping")]
    NeverStopped {
        /// The strategy.
        strategy: String,
        /// The limit reached.
        rounds: u32,
    },
}

/// Simulates migrating the trace at `path` (scanned into `timeline`) with `spec` under
/// `config`. Deterministic: the same inputs give the same result.
pub fn simulate(
    path: &Path,
    timeline: Arc<Timeline>,
    spec: &StrategySpec,
    config: &SimConfig,
) -> Result<RunResult, SimError> {
    let strategy = select::build(spec, geometry_of(&timeline, config))?;
    simulate_with(path, timeline, strategy, config)
}

/// The memory a run over `timeline` migrates: the trace's pages times the scale.
pub fn geometry_of(timeline: &Timeline, config: &SimConfig) -> Geometry {
    Geometry {
        page_count: PageCount(timeline.page_count.0 * config.scale.max(1)),
        page_size: timeline.page_size,
    }
}

/// [`simulate`] with a strategy already built (over [`geometry_of`] the trace and config), for
/// callers that wrap a strategy, e.g. to time it.
pub fn simulate_with(
    path: &Path,
    timeline: Arc<Timeline>,
    mut strategy: Box<dyn select::Strategy>,
    config: &SimConfig,
) -> Result<RunResult, SimError> {
    let mut guest = Guest::open(path, timeline.clone(), config.scale)?;
    let geometry = geometry_of(&timeline, config);
    guest.preroll(
        config.start,
        config.history_window,
        &mut |before, written| strategy.observe_history(before, written),
    )?;
    let clock = LinkClock::new(config.link);
    let content = guest.has_content();
    let mut sender = Sender::new(
        geometry.page_size,
        geometry.page_count.0,
        content,
        config.cache_bytes,
        clock,
    );
    let link = LinkEstimate {
        bytes_per_second: config.link.bytes_per_second,
        rtt: config.link.rtt,
    };
    let mut run = Run {
        result: RunResult {
            strategy: strategy.name().to_owned(),
            link: config.link.to_string(),
            link_bytes_per_second: config.link.bytes_per_second,
            rtt_seconds: config.link.rtt.as_secs_f64(),
            memory_bytes: geometry.memory_bytes(),
            scale: config.scale.max(1),
            start_seconds: config.start.as_secs_f64(),
            total_seconds: 0.0,
            downtime_seconds: 0.0,
            data_bytes: 0,
            control_bytes: 0,
            device_bytes: 0,
            return_bytes: 0,
            pages_sent: 0,
            iterations: 0,
            redundancy: 0.0,
            stop_reason: String::new(),
            stop_copy_pages: 0,
            throttle_cpu_lost_seconds: 0.0,
            postcopy_faults: 0,
            postcopy_stall_seconds: 0.0,
            mirror_forwards: 0,
            trace_replays: 0,
            encoder: None,
            rounds: Vec::new(),
        },
        batch: Vec::with_capacity(MAX_BATCH_PAGES),
        forwards: Vec::new(),
    };

    // Hello and reservation: one round trip before any page moves.
    sender.hello();
    guest_advance(&mut guest, &sender, None)?;
    let mut harvest = guest.harvest();
    loop {
        let observation = Observation {
            now: sender.now(),
            dirty: &harvest,
            link,
            costs: &sender,
            progress: Progress {
                bytes_sent: sender.total_bytes(),
                pages_sent: sender.pages_sent,
            },
        };
        let decision = strategy.plan(&observation);
        if let Some(last) = run.result.rounds.last_mut() {
            last.dirtied = harvest.count();
        }
        match decision {
            Decision::Round(round) => {
                if run.result.iterations >= config.max_rounds {
                    return Err(SimError::NeverStopped {
                        strategy: run.result.strategy,
                        rounds: config.max_rounds,
                    });
                }
                run.result.iterations += 1;
                guest.set_throttle(round.throttle);
                let (started, bytes_before, pages_before) =
                    (sender.now(), sender.total_bytes(), sender.pages_sent);
                sender.begin_iteration();
                let mirror = round.writes == WriteMode::Mirror;
                loop {
                    run.land_writes(&mut guest, &mut sender, &mut *strategy, mirror)?;
                    run.batch.clear();
                    if strategy.next_batch(guest.dirty(), MAX_BATCH_PAGES, &mut run.batch) == 0 {
                        break;
                    }
                    sender.send_pages(&run.batch, &mut guest)?;
                }
                sender.end_iteration();
                // Writes during ITERATION_END only reach the dirty log.
                guest_advance(&mut guest, &sender, None)?;
                guest.set_throttle(select::CpuThrottle::NONE);
                run.result.rounds.push(RoundStat {
                    iteration: round.iteration.0,
                    planned: round.planned.0,
                    pages_sent: sender.pages_sent - pages_before,
                    bytes: sender.total_bytes() - bytes_before,
                    dirtied: 0,
                    seconds: (sender.now() - started).as_secs_f64(),
                    throttle_percent: round.throttle.0,
                });
                harvest = guest.harvest();
            }
            Decision::StopAndCopy(stop) => {
                run.result.stop_reason = format!("{:?}", stop.reason);
                guest_advance(&mut guest, &sender, None)?;
                guest.set_suspended(true);
                let suspended_at = sender.now();
                sender.suspend();
                let mut remaining = stop.remaining;
                remaining.union_with(&guest.harvest());
                if !remaining.is_empty() {
                    let pages: Vec<PageNumber> = remaining.iter().collect();
                    let pages_before = sender.pages_sent;
                    sender.begin_iteration();
                    sender.send_pages(&pages, &mut guest)?;
                    sender.end_iteration();
                    run.result.stop_copy_pages = sender.pages_sent - pages_before;
                }
                sender.device_state(config.device_state_bytes);
                sender.commit_and_activate();
                run.result.downtime_seconds = (sender.now() - suspended_at).as_secs_f64();
                break;
            }
            Decision::PostCopy(post) => {
                run.result.stop_reason = format!("{:?}", post.reason);
                guest_advance(&mut guest, &sender, None)?;
                guest.set_suspended(true);
                let suspended_at = sender.now();
                sender.suspend();
                let last = guest.harvest();
                strategy.on_suspend(&last);
                let mut missing = post.missing;
                missing.union_with(&last);
                sender.device_state(config.device_state_bytes);
                sender.postcopy_begin(&missing);
                sender.clock_mut().round_trip();
                run.result.downtime_seconds = (sender.now() - suspended_at).as_secs_f64();
                guest.set_suspended(false);
                sender.begin_iteration();
                run.post_copy(&mut guest, &mut sender, &mut *strategy, &mut missing)?;
                sender.end_iteration();
                sender.commit_and_activate();
                break;
            }
        }
    }
    run.result.total_seconds = sender.now().as_secs_f64();
    run.result.data_bytes = sender.data_bytes;
    run.result.control_bytes = sender.control_bytes;
    run.result.device_bytes = sender.device_bytes;
    run.result.return_bytes = sender.return_bytes;
    run.result.pages_sent = sender.pages_sent;
    run.result.redundancy = sender.total_bytes() as f64 / geometry.memory_bytes().max(1) as f64;
    run.result.throttle_cpu_lost_seconds = guest.cpu_lost().as_secs_f64();
    run.result.trace_replays = guest.replays();
    run.result.encoder = sender.encoder_stats().as_ref().map(EncoderSummary::of);
    Ok(run.result)
}

/// Advances the guest to the sender's clock; `on_write` sees every write.
fn guest_advance(
    guest: &mut Guest,
    sender: &Sender,
    on_write: Option<&mut dyn FnMut(PageNumber)>,
) -> Result<(), TraceReadError> {
    let mut ignore = |_: PageNumber| {};
    guest.advance_to(sender.now(), on_write.unwrap_or(&mut ignore))
}

/// The state of a run in progress.
struct Run {
    result: RunResult,
    batch: Vec<PageNumber>,
    forwards: Vec<PageNumber>,
}

impl Run {
    /// Lands the guest's writes up to now; in a mirror round, forwards each write the strategy
    /// asks for at once (a control signal plus the page), which moves the clock on, so it loops
    /// until no write is pending.
    fn land_writes(
        &mut self,
        guest: &mut Guest,
        sender: &mut Sender,
        strategy: &mut dyn select::Strategy,
        mirror: bool,
    ) -> Result<(), TraceReadError> {
        loop {
            let forwards = &mut self.forwards;
            forwards.clear();
            if mirror {
                let mut on_write = |page: PageNumber| {
                    if strategy.on_write(page) == WriteAction::Forward {
                        forwards.push(page);
                    }
                };
                guest_advance(guest, sender, Some(&mut on_write))?;
            } else {
                guest_advance(guest, sender, None)?;
            }
            if self.forwards.is_empty() {
                return Ok(());
            }
            self.result.mirror_forwards += self.forwards.len() as u64;
            for index in 0..self.forwards.len() {
                sender.send_pages(&self.forwards[index..=index], guest)?;
            }
        }
    }

    /// The post-copy phase: the guest runs at the destination; every write to a page the
    /// destination lacks is a fault, sent first and stalling the guest for a round trip plus
    /// the page's transfer; the strategy pushes the rest in the background.
    fn post_copy(
        &mut self,
        guest: &mut Guest,
        sender: &mut Sender,
        strategy: &mut dyn select::Strategy,
        missing: &mut PageBitmap,
    ) -> Result<(), TraceReadError> {
        let nothing_dirty = PageBitmap::new(guest.page_count());
        let link = sender.clock().link();
        loop {
            let mut faults = Vec::new();
            let mut on_write = |page: PageNumber| {
                if missing.contains(page) {
                    faults.push(page);
                }
            };
            guest_advance(guest, sender, Some(&mut on_write))?;
            faults.sort_unstable();
            faults.dedup();
            for page in faults {
                if !missing.remove(page) {
                    continue;
                }
                self.result.postcopy_faults += 1;
                sender.page_request(page);
                let mut bytes = 0;
                if strategy.on_fault(page) == FaultAction::SendNow {
                    bytes = sender.send_pages(&[page], guest)?;
                }
                let stall = link.rtt + link.transfer_time(bytes);
                self.result.postcopy_stall_seconds += stall.as_secs_f64();
                guest.stall(stall);
            }
            self.batch.clear();
            if strategy.next_batch(&nothing_dirty, MAX_BATCH_PAGES, &mut self.batch) == 0 {
                return Ok(());
            }
            self.batch.retain(|page| missing.remove(*page));
            sender.send_pages(&self.batch, guest)?;
        }
    }
}
