//! [`SourceSession`]: the source side of a migration, sans-IO. The phases are here; the page
//! path (feeding pages to streams, encoding batches) is in [`pages`].

mod pages;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;

use crate::encoder::{CacheAdmission, CostPolicy, Encoder, EncoderConfig, EncoderStats};
use crate::frame::{
    AbortReason, BitmapFrame, BitmapKind, CommitAnswer, CommitDigest, DeviceState, Features, Frame,
    Hello, Iteration, IterationEnd, Limits, Negotiated, PageRequest, ReservationAnswer, Resume,
    Role,
};
use crate::memory::{SourceMemory, page_bytes};
use crate::phase::{Direction, Phase};
use crate::select::{
    Decision, FaultAction, LinkEstimate, Observation, Progress, Strategy, WriteMode,
};
use crate::session::core::Core;
use crate::session::digest::{digest_of, range_size};
use crate::session::outbox::Outbox;
use crate::session::resume::{SentPages, resume_fits};
use crate::session::{ConfigError, Event, PageAffinity, SessionError, SourceConfig, StreamId};
use crate::{ContentHash, Encoding, EncodingSet, PageBitmap, PageCount, PageNumber};
use pages::{Lane, ResendCosts};

/// How many control bytes may wait before the source stops starting new iterations (a
/// strategy that plans empty rounds cannot fill memory with markers).
const CONTROL_BACKLOG: usize = 64 << 10;

/// How many pages, per page stream and batch, may wait between the strategy and the encoder.
const PENDING_BATCHES: usize = 4;

/// The source side of a migration: reads guest memory through a [`SourceMemory`], asks a
/// [`Strategy`] which pages go in each iteration, encodes them lazily as the transport has
/// room, and follows the phases to activation. See the [module docs](crate::session) for how a
/// transport drives it.
pub struct SourceSession<M: SourceMemory> {
    core: Core,
    memory: M,
    strategy: Box<dyn Strategy>,
    settings: Settings,
    hello: Hello,
    affinity: PageAffinity,
    /// One encoder per page stream (after the hellos): dedup references name only pages of
    /// the same stream, whose records the destination applies in order.
    encoders: Vec<Encoder>,
    pages_out: Vec<Outbox>,
    pending: Vec<VecDeque<PageNumber>>,
    /// Post-copy: pages the destination asked for, per the page stream whose encoder holds
    /// their last version. They go on the control stream ahead of the background push.
    requested: Vec<VecDeque<PageNumber>>,
    /// Once POSTCOPY_BEGIN is sent: the pages it deferred (after a resume in post-copy, the
    /// destination's received set says which of them it still lacks).
    deferred: Option<PageBitmap>,
    dirty: PageBitmap,
    costs: ResendCosts,
    stage: Stage,
    mirror: bool,
    start: Duration,
    scratch: Vec<u8>,
    pulled: Vec<PageNumber>,
    digest: Option<CommitDigest>,
    device_state: Bytes,
    commit_rounds: u32,
    /// The iteration each page was last sent in (when the resume feature is in use).
    sent: Option<SentPages>,
    stats: SourceStats,
    error: Option<SessionError>,
}

/// The configuration values the session keeps after construction.
#[derive(Debug)]
struct Settings {
    max_batch_pages: usize,
    cache_bytes: u64,
    policy: CostPolicy,
    pages_per_range: NonZeroU32,
    max_commit_rounds: u32,
    limits: Limits,
    /// The link as configured (or set with `set_link_estimate`).
    link: LinkEstimate,
    /// The link as the transport last measured it (0 bytes per second and a zero round trip
    /// where it measured nothing).
    measured: LinkEstimate,
}

impl Settings {
    /// The link the strategy sees: what was measured, where something was, else what was
    /// configured.
    fn link(&self) -> LinkEstimate {
        LinkEstimate {
            bytes_per_second: match self.measured.bytes_per_second {
                0 => self.link.bytes_per_second,
                measured => measured,
            },
            rtt: match self.measured.rtt {
                Duration::ZERO => self.link.rtt,
                measured => measured,
            },
        }
    }

    /// The encoders' policy: the configured one, capped at the measured link speed.
    fn encoder_policy(&self) -> CostPolicy {
        match self.measured.bytes_per_second {
            0 => self.policy,
            measured => self.policy.capped_at(measured as f64),
        }
    }
}

/// What the source is doing.
#[derive(Debug)]
enum Stage {
    /// HELLO sent; waiting for the destination's HELLO and RESERVATION.
    Greeting,
    /// An iteration is being sent.
    Transfer(Transfer),
    /// The strategy ended the live rounds; waiting for the driver to suspend the guest. The
    /// pages the destination lacks, and what follows the suspension.
    AwaitSuspend(PageBitmap, Ending),
    /// The digest is sent; waiting for the answer.
    AwaitAnswer,
    /// ACTIVATE is sent; waiting for ACTIVATED.
    AwaitActivated,
    /// The link dropped; the migration waits to resume on a new connection.
    Interrupted(Interruption),
    /// The migration is over.
    Over,
}

/// A migration whose link dropped: where it stood, and the pages it owes the destination
/// besides those a RESUME names.
#[derive(Debug)]
struct Interruption {
    point: ResumePoint,
    /// Pages handed out for sending but never encoded (taken from the strategy or from an
    /// iteration's fixed set), and, once suspended, the pages the stop-and-copy owes.
    carried: PageBitmap,
    /// How many iterations were started: a RESUME cannot continue past this.
    started: Iteration,
}

/// Where a migration continues after a resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResumePoint {
    /// Live rounds: after the pages to resend, the strategy's round goes on (if its feed was
    /// not exhausted) or the strategy plans the next step.
    Live { round_continues: bool },
    /// The strategy chose stop-and-copy; the driver has not suspended the guest yet.
    AwaitSuspend,
    /// The guest is suspended: SUSPEND, the remaining pages, the device state, the commit.
    Suspended,
    /// POSTCOPY_BEGIN is sent: the deferred pages the destination lacks, then the commit
    /// digest; or, if the destination never processed POSTCOPY_BEGIN (its HELLO does not say
    /// its guest runs), as [`ResumePoint::Suspended`] with every deferred page.
    PostCopy,
}

/// How the live rounds end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The remaining pages, the device state, then the commit.
    StopAndCopy,
    /// The deferred pages' bitmap, the device state, POSTCOPY_BEGIN, then the pages in the
    /// background and on request.
    PostCopy,
}

/// One iteration being sent.
#[derive(Debug)]
struct Transfer {
    iteration: Iteration,
    feed: Feed,
    purpose: Purpose,
    batches: u64,
    pages: u64,
    /// The feed has no more pages.
    exhausted: bool,
}

/// Where an iteration's pages come from.
#[derive(Debug)]
enum Feed {
    /// The strategy's `next_batch`.
    Strategy,
    /// A fixed set, in page order from `next`.
    Set { pages: PageBitmap, next: PageNumber },
}

/// Why an iteration is sent, which decides what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Live,
    StopAndCopy,
    /// The post-copy push (and the pages requested during it).
    PostCopy,
    Resend,
    /// After a resume: the pages the destination lacks; then the live rounds go on.
    Recovery {
        round_continues: bool,
    },
}

/// Counters of a source session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Iterations completed (live rounds, stop-and-copy and resends).
    pub iterations: u64,
    /// Page batches sent.
    pub batches: u64,
    /// Pages covered by the records sent (every version counts).
    pub pages_sent: u64,
    /// Bytes handed to the transport on every stream.
    pub bytes_sent: u64,
    /// Bytes received from the destination.
    pub bytes_received: u64,
    /// Mismatching commit answers received.
    pub commit_mismatches: u32,
    /// Post-copy: pages deferred at POSTCOPY_BEGIN.
    pub deferred_pages: u64,
    /// Post-copy: PAGE_REQUEST frames received.
    pub page_requests: u64,
    /// Post-copy: pages named in them.
    pub pages_requested: u64,
    /// Post-copy: requested pages sent ahead of the background push (the others had been
    /// pushed already).
    pub requested_sent: u64,
    /// Times the migration resumed on a new connection after a dropped link.
    pub resumes: u32,
    /// Pages sent again because of resumes (besides what the strategy plans).
    pub resent_after_resume: u64,
}

impl<M: SourceMemory> SourceSession<M> {
    /// A source migrating `memory`, starting at `now` (time since any epoch the driver
    /// chooses; later calls pass later values). The HELLO is queued on the control stream.
    pub fn new(
        config: SourceConfig,
        memory: M,
        now: Duration,
    ) -> Result<SourceSession<M>, ConfigError> {
        let page_size = memory.page_size();
        let page_count = memory.page_count();
        config
            .policy
            .validate()
            .map_err(crate::encoder::ConfigError::from)?;
        let needed = Limits::min_frame_payload(page_size);
        if config.limits.max_frame_payload < needed {
            return Err(ConfigError::FrameLimitTooSmall {
                max_frame_payload: config.limits.max_frame_payload,
                needed,
            });
        }
        let too_large = ConfigError::MemoryTooLarge {
            page_size,
            page_count,
        };
        let pages = usize::try_from(page_count.0).map_err(|_| too_large.clone())?;
        let mut cost_bytes = Vec::new();
        cost_bytes
            .try_reserve_exact(pages)
            .map_err(|_| too_large.clone())?;
        let raw = page_size.get() + 2;
        cost_bytes.resize(pages, raw);
        let streams = config.page_streams.get();
        let mut hello = Hello::new(Role::Source, config.migration_id, page_size, page_count);
        hello.encodings = mandatory(config.encodings);
        hello.features = Features::POSTCOPY;
        // The destination's RESUME must fit this side's frame limit whatever set it carries.
        if config.resume && resume_fits(page_count, config.limits.max_frame_payload) {
            hello.features = hello.features.union(Features::RESUME);
        }
        hello.max_frame_payload = config
            .limits
            .max_frame_payload
            .min(Limits::HARD_MAX_FRAME_PAYLOAD);
        hello.vm_name = name(config.vm_name);
        let mut core = Core::new(
            Direction::SourceToDestination,
            config.limits,
            config.idle_timeout,
        );
        core.start(now);
        let mut session = SourceSession {
            core,
            strategy: config.strategy,
            settings: Settings {
                max_batch_pages: (config.max_batch_pages.get() as usize).min(1 << 16),
                cache_bytes: config.cache_bytes,
                policy: config.policy,
                pages_per_range: config.pages_per_range,
                max_commit_rounds: config.max_commit_rounds,
                limits: config.limits,
                link: config.link,
                measured: LinkEstimate::UNKNOWN,
            },
            affinity: PageAffinity::new(config.page_streams),
            encoders: Vec::new(),
            pages_out: (0..streams).map(|_| Outbox::default()).collect(),
            pending: (0..streams).map(|_| VecDeque::new()).collect(),
            requested: (0..streams).map(|_| VecDeque::new()).collect(),
            deferred: None,
            dirty: PageBitmap::new(page_count),
            costs: ResendCosts {
                bytes: cost_bytes,
                raw,
            },
            stage: Stage::Greeting,
            mirror: false,
            start: now,
            scratch: vec![0; page_size.bytes()],
            pulled: Vec::new(),
            digest: None,
            device_state: Bytes::new(),
            commit_rounds: 0,
            sent: None,
            stats: SourceStats::default(),
            error: None,
            hello: hello.clone(),
            memory,
        };
        session
            .core
            .send(Frame::Hello(hello))
            .map_err(|_| ConfigError::FrameLimitTooSmall {
                max_frame_payload: config.limits.max_frame_payload,
                needed,
            })?;
        Ok(session)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.core.phase()
    }

    /// The guest memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The guest memory, mutably (for drivers whose guest writes through the session's
    /// memory; every write must also be reported with [`SourceSession::on_write`] or
    /// [`SourceSession::mark_dirty`]).
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.memory
    }

    /// The guest memory, taking the session apart (for example to resume the guest here
    /// after a migration that did not activate the destination).
    pub fn into_memory(self) -> M {
        self.memory
    }

    /// The counters so far.
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            bytes_sent: self.core.bytes_out,
            bytes_received: self.core.bytes_in,
            ..self.stats
        }
    }

    /// The encoders' counters (pages per encoding, cache hits), one per page stream; empty
    /// before the hellos.
    pub fn encoder_stats(&self) -> Vec<EncoderStats> {
        self.encoders.iter().map(Encoder::stats).collect()
    }

    /// The streams this session writes: the control stream and every page stream.
    pub fn streams(&self) -> impl Iterator<Item = StreamId> + use<M> {
        let count = self.affinity.streams();
        std::iter::once(StreamId::Control).chain((0..count).map(StreamId::Page))
    }

    /// Updates the configured link estimate (the strategy sees it at its next decision where
    /// no measured one overrides it; see [`SourceSession::link_measured`]).
    pub fn set_link_estimate(&mut self, link: LinkEstimate) {
        self.settings.link = link;
    }

    /// Takes the link as the transport measured it (bytes per second it carried while the
    /// source had more to send, and the round-trip time; either 0 where not measured). The
    /// strategy sees the measured values at its next decision instead of the configured ones,
    /// and the encoders rank the pages encoded from now on with the configured
    /// [`SourceConfig::policy`] capped at the measured speed ([`CostPolicy::capped_at`]): on a
    /// link slower than configured, compressing a page pays where it did not. A measurement
    /// of 0 bytes per second (the transport's estimate expired) restores the configured
    /// policy.
    ///
    /// [`SourceConfig::policy`]: crate::session::SourceConfig::policy
    pub fn link_measured(&mut self, link: LinkEstimate) {
        self.settings.measured = link;
        let policy = self.settings.encoder_policy();
        for encoder in &mut self.encoders {
            // The configured policy was validated with the first encoder, and capping it at
            // a positive speed keeps it valid: this cannot fail, and would keep the old one.
            let _ = encoder.set_policy(policy);
        }
    }

    /// The link estimate the strategy sees now: measured where the transport measured it,
    /// configured otherwise.
    pub fn link_estimate(&self) -> LinkEstimate {
        self.settings.link()
    }

    /// Reports guest writes: every page of `pages` was written since the last report (the
    /// VMM's dirty log). A set over another page count is read page by page.
    pub fn mark_dirty(&mut self, pages: &PageBitmap) {
        if pages.page_count() == self.dirty.page_count() {
            self.dirty.union_with(pages);
        } else {
            pages.iter().for_each(|page| {
                self.dirty.insert(page);
            });
        }
    }

    /// Reports one guest write to `page`. In a mirror round, the strategy may have the page
    /// forwarded at once.
    pub fn on_write(&mut self, page: PageNumber) {
        self.dirty.insert(page);
        if self.mirror
            && matches!(self.stage, Stage::Transfer(_))
            && self.memory.page_count().contains(page)
            && self.strategy.on_write(page) == crate::select::WriteAction::Forward
        {
            self.pending[self.affinity.index_of(page)].push_front(page);
        }
    }

    /// The guest is suspended (after [`Event::SuspendRequested`]); `device_state` is its
    /// device and CPU state, opaque to the protocol. Report the guest's last writes with
    /// [`SourceSession::mark_dirty`] first. The remaining pages, the device state and the
    /// commit digest follow; or, in post-copy, the device state, then the pages while the VM
    /// runs at the destination (the guest here stays suspended and its memory unchanged).
    ///
    /// While the link is down ([`Event::ConnectionInterrupted`]) the call is taken too: the
    /// suspension is remembered and the rest follows the resume.
    pub fn suspended(&mut self, now: Duration, device_state: Bytes) -> Result<(), SessionError> {
        if let Stage::Interrupted(interruption) = &mut self.stage
            && interruption.point == ResumePoint::AwaitSuspend
        {
            interruption.carried.union_with(&self.dirty);
            self.dirty.clear();
            interruption.point = ResumePoint::Suspended;
            self.device_state = device_state;
            return Ok(());
        }
        let Stage::AwaitSuspend(remaining, ending) = &mut self.stage else {
            return Err(SessionError::CallOutOfOrder("suspended"));
        };
        let ending = *ending;
        let mut pages = std::mem::replace(remaining, PageBitmap::new(PageCount(0)));
        self.device_state = device_state;
        let result = (|| {
            self.core.send(Frame::Suspend)?;
            if ending == Ending::PostCopy {
                self.strategy.on_suspend(&self.dirty);
            }
            pages.union_with(&self.dirty);
            self.dirty.clear();
            match ending {
                Ending::StopAndCopy => self.start_transfer(
                    Feed::Set {
                        pages,
                        next: PageNumber(0),
                    },
                    Purpose::StopAndCopy,
                )?,
                Ending::PostCopy => self.begin_postcopy(pages)?,
            }
            self.drive(now)
        })();
        result.map_err(|error| self.fail(error))
    }

    /// Whether POSTCOPY_BEGIN is sent.
    fn postcopy(&self) -> bool {
        self.deferred.is_some()
    }

    /// Post-copy after SUSPEND: the deferred pages, the device state, POSTCOPY_BEGIN, and the
    /// iteration that carries the rest.
    fn begin_postcopy(&mut self, deferred: PageBitmap) -> Result<(), SessionError> {
        let count = deferred.count();
        self.core.send(Frame::Bitmap(BitmapFrame {
            kind: BitmapKind::Deferred,
            pages: deferred.clone(),
        }))?;
        self.send_device_state()?;
        self.core.send(Frame::PostcopyBegin)?;
        self.deferred = Some(deferred);
        // The destination's guest now writes its own memory: no page there is known to hold
        // any content, so references to other pages are over.
        self.encoders.iter_mut().for_each(Encoder::stop_dedup);
        self.stats.deferred_pages = count;
        self.core.emit(Event::PostCopyStarted {
            deferred: PageCount(count),
        });
        self.start_transfer(Feed::Strategy, Purpose::PostCopy)
    }

    /// PAGE_REQUEST: the destination's guest waits for these pages. During the push, each the
    /// strategy has not handed out yet, or that waits in its stream's queue unencoded, goes
    /// ahead of the push; after the push every page is on its way already.
    fn on_page_request(&mut self, request: &PageRequest) {
        self.stats.page_requests += 1;
        self.stats.pages_requested += request.pages.len() as u64;
        let pushing = matches!(&self.stage, Stage::Transfer(transfer) if transfer.purpose == Purpose::PostCopy);
        if !pushing {
            return;
        }
        for &page in &request.pages {
            let index = self.affinity.index_of(page);
            let queued = &mut self.pending[index];
            let handed_out = match &mut self.stage {
                // After a resume the push is a fixed set, not the strategy's: a page the set
                // has not handed out yet leaves it.
                Stage::Transfer(Transfer {
                    feed: Feed::Set { pages, next },
                    ..
                }) => page < *next || !pages.remove(page),
                _ => self.strategy.on_fault(page) == FaultAction::AlreadySent,
            };
            let ahead = !handed_out
                || match queued.iter().position(|p| *p == page) {
                    Some(at) => queued.remove(at).is_some(),
                    None => false,
                };
            if ahead {
                self.requested[index].push_back(page);
                self.stats.requested_sent += 1;
            }
        }
    }

    /// Aborts the migration with `reason`: ABORT goes out on the control stream, nothing
    /// after it.
    pub fn abort(&mut self, now: Duration, reason: AbortReason, message: impl Into<String>) {
        self.core.received(now, 0);
        self.core.abort(reason, message.into());
        self.close();
    }

    /// Bytes the peer sent on `stream` (only the control stream carries anything to the
    /// source). An error aborts the migration (ABORT is queued) and is returned once; later
    /// data is ignored.
    pub fn handle_stream_data(
        &mut self,
        now: Duration,
        stream: StreamId,
        data: &[u8],
    ) -> Result<(), SessionError> {
        if self.core.is_over() {
            return Ok(());
        }
        self.core.received(now, data.len());
        if stream != StreamId::Control {
            return Err(self.fail(SessionError::UnknownStream(stream)));
        }
        self.core.control_in.push(data);
        let result = self.read_control(now).and_then(|()| self.drive(now));
        result.map_err(|error| self.fail(error))
    }

    /// The peer finished `stream`. Before the migration is over, that is a truncated stream.
    pub fn handle_stream_finished(
        &mut self,
        now: Duration,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        self.core.received(now, 0);
        if self.core.finish_ok() {
            return Ok(());
        }
        Err(self.fail(SessionError::StreamTruncated(stream)))
    }

    /// The connection is gone. Before the migration is over, that aborts it, unless the
    /// resume feature is in use and the migration is at a point it can resume from (after
    /// the reservation and before ACTIVATE, but not between the strategy's choice of
    /// post-copy and the guest's suspension): then the migration is kept
    /// ([`Event::ConnectionInterrupted`], [`SourceSession::is_interrupted`]), `Ok` is
    /// returned, and the driver reconnects and calls [`SourceSession::resume`]. A loss
    /// during the hellos of a resume keeps it interrupted likewise.
    pub fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError> {
        self.core.received(now, 0);
        if self.core.finish_ok() {
            return Ok(());
        }
        if self.is_interrupted() {
            self.reset_connection();
            return Ok(());
        }
        match self.interruption() {
            Some(interruption) => {
                self.stage = Stage::Interrupted(interruption);
                self.reset_connection();
                self.core.emit(Event::ConnectionInterrupted);
                Ok(())
            }
            None => Err(self.fail(SessionError::PeerGone)),
        }
    }

    /// Whether the migration waits to resume on a new connection.
    pub fn is_interrupted(&self) -> bool {
        matches!(self.stage, Stage::Interrupted(_)) && !self.core.is_over()
    }

    /// Starts a new connection for an interrupted migration: queues a HELLO with the resume
    /// flag on its control stream (every stream starts afresh). Call it once per connection
    /// attempt, before feeding the connection's bytes. The destination answers with RESUME,
    /// and the migration continues: the XBZRLE caches and dedup indexes are emptied, and the
    /// pages the destination lacks are sent again before the strategy goes on. A destination
    /// that no longer holds the migration refuses (UNKNOWN_MIGRATION): the migration is over,
    /// and the guest is still here.
    pub fn resume(&mut self, now: Duration) -> Result<(), SessionError> {
        if !self.is_interrupted() {
            return Err(SessionError::CallOutOfOrder("resume"));
        }
        self.core.received(now, 0);
        self.reset_connection();
        let mut hello = self.hello.clone();
        hello.resume = true;
        self.core
            .send(Frame::Hello(hello))
            .map_err(|error| self.fail(error))
    }

    /// What to keep of the migration if the link drops now, or `None` if it cannot resume.
    fn interruption(&mut self) -> Option<Interruption> {
        let resumable =
            self.sent.is_some() && self.core.tracker().features().contains(Features::RESUME);
        let point = match &self.stage {
            _ if !resumable => return None,
            Stage::Transfer(transfer) => match transfer.purpose {
                Purpose::Live => ResumePoint::Live {
                    round_continues: !transfer.exhausted,
                },
                Purpose::Recovery { round_continues } => ResumePoint::Live { round_continues },
                Purpose::StopAndCopy | Purpose::Resend => ResumePoint::Suspended,
                Purpose::PostCopy => ResumePoint::PostCopy,
            },
            Stage::AwaitSuspend(_, Ending::StopAndCopy) => ResumePoint::AwaitSuspend,
            Stage::AwaitAnswer if self.postcopy() => ResumePoint::PostCopy,
            Stage::AwaitAnswer => ResumePoint::Suspended,
            Stage::AwaitSuspend(_, Ending::PostCopy)
            | Stage::Greeting
            | Stage::AwaitActivated
            | Stage::Interrupted(_)
            | Stage::Over => return None,
        };
        let mut carried = PageBitmap::new(self.memory.page_count());
        for page in self.pending.iter().flatten() {
            carried.insert(*page);
        }
        match std::mem::replace(&mut self.stage, Stage::Over) {
            Stage::Transfer(Transfer {
                feed: Feed::Set { pages, next },
                ..
            }) => pages.iter().filter(|page| *page >= next).for_each(|page| {
                carried.insert(page);
            }),
            Stage::AwaitSuspend(remaining, _) => carried.union_with(&remaining),
            _ => {}
        }
        Some(Interruption {
            point,
            carried,
            started: self.core.tracker().next_iteration(),
        })
    }

    /// Drops everything that belonged to the lost connection.
    fn reset_connection(&mut self) {
        self.pages_out
            .iter_mut()
            .for_each(|out| *out = Outbox::default());
        self.pending.iter_mut().for_each(VecDeque::clear);
        self.requested.iter_mut().for_each(VecDeque::clear);
        self.core.reconnect(self.settings.limits);
    }

    /// RESUME: continues the migration where the destination stands.
    fn on_resume(&mut self, resume: Resume) -> Result<(), SessionError> {
        let Stage::Interrupted(interruption) = std::mem::replace(&mut self.stage, Stage::Over)
        else {
            // The tracker lets RESUME through only after a resume HELLO, which only an
            // interrupted session sends.
            return Err(SessionError::CallOutOfOrder(
                "RESUME without an interruption",
            ));
        };
        if resume.next_iteration > interruption.started {
            return Err(SessionError::Wire(
                crate::error::PeerMisbehaved::ResumeAhead {
                    next_iteration: resume.next_iteration.0,
                    started: interruption.started.0,
                }
                .into(),
            ));
        }
        let page_count = self.memory.page_count();
        if resume.received.page_count() != page_count {
            return Err(SessionError::Wire(
                crate::error::PeerMisbehaved::PageCountMismatch {
                    field: "resume bitmap page count",
                    expected: page_count,
                    got: resume.received.page_count(),
                }
                .into(),
            ));
        }
        let guest_runs_there = self.core.phase() == Phase::PostCopy;
        if guest_runs_there && interruption.point != ResumePoint::PostCopy {
            return Err(SessionError::Wire(
                crate::error::PeerMisbehaved::PostCopyNotBegun.into(),
            ));
        }
        let mut pages = interruption.carried;
        if guest_runs_there {
            // Exactly the deferred pages it lacks: any other page there may hold the guest's
            // writes (§9.2).
            pages = self
                .deferred
                .clone()
                .unwrap_or_else(|| PageBitmap::new(page_count));
            pages.subtract(&resume.received);
        } else if let Some(sent) = &self.sent {
            sent.to_resend(resume.next_iteration, &resume.received, &mut pages);
        }
        let mut point = interruption.point;
        if point == ResumePoint::PostCopy && !guest_runs_there {
            // POSTCOPY_BEGIN was lost with the link: the guest never ran there. It stays
            // suspended here, and the pages it deferred go in a stop-and-copy.
            if let Some(deferred) = self.deferred.take() {
                pages.union_with(&deferred);
            }
            point = ResumePoint::Suspended;
        }
        // The destination may hold other versions than the ones last sent (§5.3).
        self.encoders.iter_mut().for_each(Encoder::forget_all);
        self.stats.resumes += 1;
        self.stats.resent_after_resume += pages.count();
        self.core.emit(Event::Resumed {
            next_iteration: resume.next_iteration,
            received: PageCount(resume.received.count()),
        });
        let feed = Feed::Set {
            pages,
            next: PageNumber(0),
        };
        match point {
            ResumePoint::PostCopy => self.start_transfer(feed, Purpose::PostCopy),
            ResumePoint::Live { round_continues } => {
                self.start_transfer(feed, Purpose::Recovery { round_continues })
            }
            ResumePoint::AwaitSuspend => {
                let Feed::Set { pages, .. } = feed else {
                    return Ok(());
                };
                // The driver still owes `suspended`; the pages go in the stop-and-copy.
                self.stage = Stage::AwaitSuspend(pages, Ending::StopAndCopy);
                Ok(())
            }
            ResumePoint::Suspended => {
                self.core.send(Frame::Suspend)?;
                self.start_transfer(feed, Purpose::StopAndCopy)
            }
        }
    }

    /// When [`SourceSession::handle_timeout`] should be called next (`None`: no timer).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.core.poll_timeout()
    }

    /// The timer of [`SourceSession::poll_timeout`] fired.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        match self.core.expired(now) {
            Some(error) => Err(self.fail(error)),
            None => Ok(()),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.poll_event()
    }

    /// The error that aborted the migration while the session was producing bytes
    /// ([`SourceSession::poll_transmit`]), taken once.
    pub fn take_error(&mut self) -> Option<SessionError> {
        self.error.take()
    }

    /// Whether the migration is over and every byte for the peer has been taken: the
    /// transport may finish the streams and close the connection.
    pub fn is_closed(&self) -> bool {
        self.core.is_over() && self.core.control_pending() == 0
    }

    /// Up to `budget` bytes to write on `stream` now, or `None` if it has nothing. Page bytes
    /// are read and encoded only here, when the transport has room: call it for every stream
    /// whenever that stream can take bytes.
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        stream: StreamId,
        budget: usize,
    ) -> Option<Bytes> {
        if let StreamId::Page(index) = stream {
            let index = usize::from(index);
            if index >= self.pages_out.len() {
                return None;
            }
            if !self.core.is_over() {
                let result = self.produce(index, budget).and_then(|()| self.drive(now));
                if let Err(error) = result {
                    let error = self.fail(error);
                    self.error.get_or_insert(error);
                }
            }
            let bytes = self.pages_out.get_mut(index)?.take(budget)?;
            self.core.sent(now, bytes.len());
            return Some(bytes);
        }
        if !self.core.is_over()
            && let Err(error) = self.send_requested().and_then(|()| self.drive(now))
        {
            let error = self.fail(error);
            self.error.get_or_insert(error);
        }
        self.core.take_control(now, budget)
    }

    fn fail(&mut self, error: SessionError) -> SessionError {
        let error = self.core.fail(error);
        self.close();
        error
    }

    /// The migration is over: nothing more goes on the page streams.
    fn close(&mut self) {
        self.stage = Stage::Over;
        self.pages_out.iter_mut().for_each(Outbox::clear);
        self.pending.iter_mut().for_each(VecDeque::clear);
        self.requested.iter_mut().for_each(VecDeque::clear);
    }

    /// Encodes the requested pages onto the control stream, where no background page is
    /// queued ahead of them (see `pages::Lane`).
    fn send_requested(&mut self) -> Result<(), SessionError> {
        for index in 0..self.requested.len() {
            while !self.requested[index].is_empty() {
                self.encode_batch(index, Lane::Control)?;
            }
        }
        Ok(())
    }

    fn read_control(&mut self, now: Duration) -> Result<(), SessionError> {
        while !self.core.is_over() {
            let Some(frame) = self.core.control_in.poll()? else {
                return Ok(());
            };
            self.core.track_received(&frame)?;
            self.on_frame(now, frame)?;
        }
        Ok(())
    }

    fn on_frame(&mut self, now: Duration, frame: Frame) -> Result<(), SessionError> {
        match frame {
            Frame::Hello(hello) => self.on_hello(&hello),
            Frame::Reservation(ReservationAnswer::Accepted) => self.plan(now),
            Frame::Reservation(ReservationAnswer::Refused(reason)) => {
                self.core.emit(Event::Refused(reason));
                self.close();
                Err(SessionError::Refused(reason))
            }
            Frame::Resume(resume) => self.on_resume(resume),
            Frame::CommitAnswer(answer) => self.on_answer(answer),
            Frame::PageRequest(request) => {
                self.on_page_request(&request);
                Ok(())
            }
            Frame::Activated => {
                self.core.emit(Event::Activated);
                self.stage = Stage::Over;
                Ok(())
            }
            Frame::Abort(abort) => {
                let error = self.core.peer_aborted(&abort);
                self.close();
                Err(error)
            }
            // The tracker lets nothing else through from a destination to a source in the
            // phases this session reaches.
            other => Err(SessionError::FrameOnWrongStream {
                stream: StreamId::Control,
                frame_type: other.frame_type(),
            }),
        }
    }

    fn on_hello(&mut self, hello: &Hello) -> Result<(), SessionError> {
        let negotiated = Hello::negotiate(&self.hello, hello)
            .map_err(|error| SessionError::Wire(error.into()))?;
        self.core
            .control_in
            .set_limits(negotiated.limits(self.settings.limits));
        self.core.send_limits = send_limits(&negotiated, negotiated.destination_max_frame_payload);
        let streams = self.pages_out.len() as u64;
        let config = EncoderConfig {
            cache_bytes: self.settings.cache_bytes / streams.max(1),
            cache_admission: CacheAdmission::ResendsOnceFull {
                page_count: negotiated.page_count,
            },
            policy: self.settings.encoder_policy(),
            ..EncoderConfig::new(negotiated.page_size, negotiated.encodings)
        };
        // On a resumed connection the encoders (and their counters) stay if the encodings
        // are the same; RESUME empties their caches.
        let same = self
            .encoders
            .first()
            .is_some_and(|encoder| encoder.config().encodings == negotiated.encodings);
        if !same {
            self.encoders = (0..streams)
                .map(|_| Encoder::new(config))
                .collect::<Result<_, _>>()
                .map_err(|_| SessionError::Unsupported("an encoder configuration"))?;
        }
        if self.postcopy() {
            // A resume in post-copy: still no dedup references (§9.2).
            self.encoders.iter_mut().for_each(Encoder::stop_dedup);
        }
        if negotiated.features.contains(Features::RESUME) && self.sent.is_none() {
            self.sent = Some(SentPages::new(negotiated.page_count)?);
        }
        self.core.emit(Event::Negotiated(negotiated));
        Ok(())
    }

    fn on_answer(&mut self, answer: CommitAnswer) -> Result<(), SessionError> {
        self.core.emit(Event::CommitResult(answer.clone()));
        match answer {
            CommitAnswer::Agree => {
                self.core.send(Frame::Activate)?;
                self.stage = Stage::AwaitActivated;
                Ok(())
            }
            CommitAnswer::Mismatch(ranges) => {
                self.commit_rounds += 1;
                self.stats.commit_mismatches = self.commit_rounds;
                // After post-copy the guest ran on what it received: nothing can be repaired.
                if self.postcopy() || self.commit_rounds > self.settings.max_commit_rounds {
                    return Err(SessionError::DigestMismatch {
                        rounds: self.commit_rounds,
                        ranges: ranges.len(),
                    });
                }
                let Some(digest) = &self.digest else {
                    return Err(SessionError::CallOutOfOrder(
                        "commit answer without a digest",
                    ));
                };
                let page_count = self.memory.page_count();
                let mut pages = PageBitmap::new(page_count);
                for range in ranges {
                    let span = digest.range_pages(range, page_count);
                    pages.insert_range(span.start, span.end.0 - span.start.0);
                    for page in span.start.0..span.end.0 {
                        let page = PageNumber(page);
                        // The destination's copy is not what the encoder believes: send the
                        // page whole, not as a delta or a reference.
                        self.encoders[self.affinity.index_of(page)].forget_page(page);
                    }
                }
                self.start_transfer(
                    Feed::Set {
                        pages,
                        next: PageNumber(0),
                    },
                    Purpose::Resend,
                )
            }
        }
    }

    /// Asks the strategy what comes next, with the dirty log harvested now.
    fn plan(&mut self, now: Duration) -> Result<(), SessionError> {
        let harvest = self.dirty.clone();
        self.dirty.clear();
        let observation = Observation {
            now: now.saturating_sub(self.start),
            dirty: &harvest,
            link: self.settings.link(),
            costs: &self.costs,
            progress: Progress {
                bytes_sent: self.core.bytes_out,
                pages_sent: self.stats.pages_sent,
            },
        };
        match self.strategy.plan(&observation) {
            Decision::Round(round) => {
                self.mirror = round.writes == WriteMode::Mirror;
                let iteration = self.core.tracker().next_iteration();
                self.start_transfer(Feed::Strategy, Purpose::Live)?;
                self.core.emit(Event::RoundStarted {
                    iteration,
                    planned: round.planned,
                    throttle: round.throttle,
                });
                Ok(())
            }
            Decision::StopAndCopy(stop) => {
                self.mirror = false;
                self.stage = Stage::AwaitSuspend(stop.remaining, Ending::StopAndCopy);
                self.core.emit(Event::SuspendRequested);
                Ok(())
            }
            Decision::PostCopy(post) => {
                if !self.core.tracker().features().contains(Features::POSTCOPY) {
                    return Err(SessionError::PeerLacksFeature("post-copy"));
                }
                self.mirror = false;
                self.stage = Stage::AwaitSuspend(post.missing, Ending::PostCopy);
                self.core.emit(Event::SuspendRequested);
                Ok(())
            }
        }
    }

    fn start_transfer(&mut self, feed: Feed, purpose: Purpose) -> Result<(), SessionError> {
        let iteration = self.core.tracker().next_iteration();
        self.core.send(Frame::IterationStart(iteration))?;
        self.stage = Stage::Transfer(Transfer {
            iteration,
            feed,
            purpose,
            batches: 0,
            pages: 0,
            exhausted: false,
        });
        Ok(())
    }

    /// Moves the migration on as far as it goes without the transport or the peer: ends an
    /// iteration whose pages are all queued, and starts what follows it.
    fn drive(&mut self, now: Duration) -> Result<(), SessionError> {
        while !self.core.is_over() && self.core.control_pending() < CONTROL_BACKLOG {
            let Stage::Transfer(transfer) = &self.stage else {
                return Ok(());
            };
            let queued = |queues: &[VecDeque<PageNumber>]| queues.iter().any(|q| !q.is_empty());
            if queued(&self.pending) || queued(&self.requested) {
                return Ok(());
            }
            if !transfer.exhausted {
                self.refill(0)?;
                if self.pending.iter().any(|pending| !pending.is_empty()) {
                    return Ok(());
                }
                continue;
            }
            self.finish_transfer(now)?;
        }
        Ok(())
    }

    fn finish_transfer(&mut self, now: Duration) -> Result<(), SessionError> {
        let Stage::Transfer(transfer) = std::mem::replace(&mut self.stage, Stage::Over) else {
            return Ok(());
        };
        self.core.send(Frame::IterationEnd(IterationEnd {
            iteration: transfer.iteration,
            batches: transfer.batches,
            pages: transfer.pages,
        }))?;
        self.stats.iterations += 1;
        self.core.emit(Event::IterationEnded {
            iteration: transfer.iteration,
            batches: transfer.batches,
            pages: transfer.pages,
        });
        match transfer.purpose {
            Purpose::Live => self.plan(now),
            Purpose::StopAndCopy => {
                self.send_device_state()?;
                self.send_digest()
            }
            Purpose::PostCopy | Purpose::Resend => self.send_digest(),
            // The strategy's round goes on in a new iteration (it has handed out some of its
            // pages already), or the strategy decides what follows.
            Purpose::Recovery {
                round_continues: true,
            } => self.start_transfer(Feed::Strategy, Purpose::Live),
            Purpose::Recovery {
                round_continues: false,
            } => self.plan(now),
        }
    }

    fn send_device_state(&mut self) -> Result<(), SessionError> {
        // Kept (a cheap handle): a resume after the suspension sends it again.
        let state = self.device_state.clone();
        let total = state.len() as u64;
        let chunk = (self.core.send_limits.max_frame_payload as usize)
            .saturating_sub(16)
            .max(1);
        let mut offset = 0;
        loop {
            let end = (offset + chunk).min(state.len());
            self.core.send(Frame::DeviceState(DeviceState {
                total,
                offset: offset as u64,
                data: state.slice(offset..end),
            }))?;
            offset = end;
            if offset >= state.len() {
                return Ok(());
            }
        }
    }

    fn send_digest(&mut self) -> Result<(), SessionError> {
        let digest = match &self.digest {
            Some(digest) => digest.clone(),
            None => {
                let memory = &self.memory;
                let page_count = memory.page_count();
                let per_range = range_size(
                    self.settings.pages_per_range,
                    page_count,
                    &self.core.send_limits,
                );
                let digest = digest_of(per_range, memory.page_size(), page_count, |page, out| {
                    page_bytes(memory, page, out).map(ContentHash::of)
                })?;
                self.digest = Some(digest.clone());
                digest
            }
        };
        self.core.send(Frame::CommitDigest(digest))?;
        self.stage = Stage::AwaitAnswer;
        Ok(())
    }
}

impl<M: SourceMemory> std::fmt::Debug for SourceSession<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSession")
            .field("phase", &self.phase())
            .field("strategy", &self.strategy.name())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// `encodings` with the two every peer must support.
pub(crate) fn mandatory(encodings: EncodingSet) -> EncodingSet {
    encodings.with(Encoding::ZeroRun).with(Encoding::Raw)
}

/// A VM name cut to the 255 bytes a hello holds, at a character boundary.
pub(crate) fn name(mut name: String) -> String {
    let mut end = name.len().min(Hello::MAX_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// The limits frames to the peer must keep: its frame limit over the negotiated memory, the
/// protocol's defaults for the rest.
pub(crate) fn send_limits(negotiated: &Negotiated, peer_max_frame_payload: u32) -> Limits {
    Limits {
        max_frame_payload: peer_max_frame_payload,
        ..negotiated.limits(Limits::default())
    }
}
