//! [`DestinationSession`]: the destination side of a migration, sans-IO.

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;

use crate::decoder::Decoder;
use crate::error::PeerIncompatible;
use crate::frame::{
    AbortReason, BitmapFrame, BitmapKind, CommitAnswer, CommitDigest, DeviceState, Features, Frame,
    FrameDecoder, FrameType, Hello, Iteration, IterationEnd, Limits, PageBatch, PageRequest,
    RefusalReason, ReservationAnswer, Resume, Role,
};
use crate::memory::DestinationMemory;
use crate::phase::{Direction, Phase};
use crate::session::core::Core;
use crate::session::digest::digest_of;
use crate::session::postcopy::{FaultError, FaultStatus, PostCopyPages};
use crate::session::resume::{Interruption, ReceivedPages, resume_fits};
use crate::session::source::{mandatory, name, send_limits};
use crate::session::{ConfigError, DestinationConfig, Event, SessionError, StreamId};
use crate::{ContentHash, PageBitmap, PageCount, PageNumber};

/// The destination side of a migration: checks that the source migrates the VM it reserved
/// for, applies page batches from the control and page streams to a [`DestinationMemory`]
/// (iteration ends are barriers across streams), compares the commit digest with its memory,
/// and runs the VM only after the digests agree and the source says ACTIVATE — or, in
/// post-copy, from POSTCOPY_BEGIN on ([`Event::PostCopyStarted`]), fetching the pages the guest
/// faults on ([`DestinationSession::fault`]). See the [module docs](crate::session) for how a
/// transport drives it.
pub struct DestinationSession<M: DestinationMemory> {
    core: Core,
    memory: M,
    config: DestinationConfig,
    /// What frames from the source are decoded within (narrowed after the hellos).
    receive_limits: Limits,
    decoder: Decoder,
    page_streams: Vec<PageStream>,
    /// The open iteration and how many of its batches have been applied.
    open: Option<Iteration>,
    applied: u64,
    /// An ITERATION_END that waits for batches still on their way (the barrier).
    held_end: Option<IterationEnd>,
    device_state: Vec<u8>,
    commit_rounds: u32,
    activated: bool,
    /// The DEFERRED bitmap, until POSTCOPY_BEGIN.
    deferred: Option<PageBitmap>,
    /// From POSTCOPY_BEGIN on.
    postcopy: Option<PostCopyPages>,
    /// The pages held from completed iterations (when the resume feature is in use).
    received: Option<ReceivedPages>,
    /// The link dropped; the source has not resumed yet.
    interruption: Option<Interruption>,
    stats: DestinationStats,
}

/// One page stream from the source.
#[derive(Debug)]
struct PageStream {
    frames: FrameDecoder,
    /// A batch of an iteration that has not started yet.
    held: Option<PageBatch>,
}

/// Counters of a destination session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestinationStats {
    /// Iterations completed.
    pub iterations: u64,
    /// Page batches applied.
    pub batches: u64,
    /// Pages covered by the records applied.
    pub pages: u64,
    /// Bytes received on every stream.
    pub bytes_received: u64,
    /// Bytes handed to the transport.
    pub bytes_sent: u64,
    /// Mismatching commit answers sent.
    pub commit_mismatches: u32,
    /// Batches that arrived on a page stream before their ITERATION_START and waited.
    pub held_batches: u64,
    /// ITERATION_ENDs that arrived before the batches they count and waited.
    pub held_ends: u64,
    /// Post-copy: pages deferred at POSTCOPY_BEGIN.
    pub deferred_pages: u64,
    /// Post-copy: pages requested because the guest faulted on them.
    pub faults: u64,
    /// Post-copy: PAGE_REQUEST frames sent.
    pub page_requests: u64,
    /// Post-copy: requested pages that arrived.
    pub faults_served: u64,
    /// Post-copy: the time from each fault to its page's arrival, summed.
    pub fault_wait_total: Duration,
    /// Post-copy: the longest time from a fault to its page's arrival.
    pub fault_wait_max: Duration,
    /// Times the migration resumed on a new connection after a dropped link.
    pub resumes: u32,
}

impl<M: DestinationMemory> DestinationSession<M> {
    /// A destination that reserved `memory` for the migration `config` names, starting at
    /// `now`. It waits for the source's HELLO.
    pub fn new(
        config: DestinationConfig,
        memory: M,
        now: Duration,
    ) -> Result<DestinationSession<M>, ConfigError> {
        let needed = Limits::min_frame_payload(memory.page_size());
        if config.limits.max_frame_payload < needed {
            return Err(ConfigError::FrameLimitTooSmall {
                max_frame_payload: config.limits.max_frame_payload,
                needed,
            });
        }
        let mut core = Core::new(
            Direction::DestinationToSource,
            config.limits,
            config.idle_timeout,
        );
        core.start(now);
        let mut decoder = Decoder::new(mandatory(config.encodings));
        // Without the room for them, the digest reads the whole memory instead.
        decoder.keep_written_hashes(memory.page_count());
        Ok(DestinationSession {
            core,
            decoder,
            receive_limits: config.limits,
            page_streams: Vec::new(),
            open: None,
            applied: 0,
            held_end: None,
            device_state: Vec::new(),
            commit_rounds: 0,
            activated: false,
            deferred: None,
            postcopy: None,
            received: None,
            interruption: None,
            stats: DestinationStats::default(),
            config,
            memory,
        })
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.core.phase()
    }

    /// Whether this destination runs the VM: true only after ACTIVATE, which the source may
    /// send only after the digests agreed. After an abort, always false.
    pub fn activated(&self) -> bool {
        self.activated && self.core.phase() == Phase::Done
    }

    /// Whether the VM runs here before the commit: true from POSTCOPY_BEGIN on (see
    /// [`Event::PostCopyStarted`]). After an abort in post-copy the VM was already running;
    /// this stays true, and the embedder decides what to do with a guest that lacks pages.
    pub fn postcopy_running(&self) -> bool {
        self.postcopy.is_some()
    }

    /// Post-copy: how many deferred pages have not arrived (0 before post-copy). A guest
    /// that runs here while some are missing cannot go on without the source.
    pub fn missing_pages(&self) -> PageCount {
        PageCount(self.postcopy.as_ref().map_or(0, PostCopyPages::missing))
    }

    /// Whether `page` is in memory: always before post-copy (pages are applied before the VM
    /// runs), and in post-copy unless it was deferred and has not arrived yet.
    pub fn is_present(&self, page: PageNumber) -> bool {
        self.postcopy
            .as_ref()
            .is_none_or(|postcopy| postcopy.is_present(page))
    }

    /// Post-copy: the guest needs `page` at `now`. A missing page is requested from the source
    /// (PAGE_REQUEST on the control stream, with the next `poll_transmit`; a page already
    /// requested is not asked for twice); wait for [`Event::PageArrived`] before the guest
    /// touches it. At most [`DestinationConfig::max_outstanding_faults`] pages are requested
    /// and not arrived at a time. An error does not affect the migration.
    pub fn fault(&mut self, now: Duration, page: PageNumber) -> Result<FaultStatus, FaultError> {
        let page_count = self.memory.page_count();
        if !page_count.contains(page) {
            return Err(FaultError::PageOutOfRange { page, page_count });
        }
        let over = self.core.is_over();
        let Some(postcopy) = &mut self.postcopy else {
            return Err(FaultError::NotPostCopy);
        };
        if over && !postcopy.is_present(page) {
            return Err(FaultError::MigrationOver);
        }
        let status = postcopy.fault(now, page)?;
        if status == FaultStatus::Requested {
            self.stats.faults += 1;
        }
        Ok(status)
    }

    /// The guest memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The guest memory, mutably.
    ///
    /// Until this is first called, the session keeps the hash of each page as it writes it
    /// (16 bytes per page), and the commit digest reads from memory only the pages it never
    /// wrote: the whole-memory read stays out of the downtime. Once the memory is lent
    /// mutably, anything may have changed: every later digest reads the whole memory.
    pub fn memory_mut(&mut self) -> &mut M {
        self.decoder.forget_written_hashes();
        &mut self.memory
    }

    /// The guest memory, taking the session apart.
    pub fn into_memory(self) -> M {
        self.memory
    }

    /// The counters so far.
    pub fn stats(&self) -> DestinationStats {
        DestinationStats {
            bytes_received: self.core.bytes_in,
            bytes_sent: self.core.bytes_out,
            ..self.stats
        }
    }

    /// Aborts the migration with `reason`: ABORT goes out on the control stream. The VM does
    /// not run here.
    pub fn abort(&mut self, now: Duration, reason: AbortReason, message: impl Into<String>) {
        self.core.received(now, 0);
        self.core.abort(reason, message.into());
    }

    /// Whether the transport should read more from `stream` now. A stream that an iteration
    /// barrier holds back wants nothing once it buffers a whole frame: stop reading it (flow
    /// control then slows the source) until this turns true again.
    pub fn wants_data(&self, stream: StreamId) -> bool {
        let frame = self.receive_limits.max_frame_payload as usize + 8;
        match stream {
            StreamId::Control => self.held_end.is_none() || self.core.control_in.buffered() < frame,
            StreamId::Page(index) => self
                .page_streams
                .get(usize::from(index))
                .is_none_or(|s| s.held.is_none() || s.frames.buffered() < frame),
        }
    }

    /// Bytes the source sent on `stream`. An error aborts the migration (ABORT is queued)
    /// and is returned once; later data is ignored.
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
        let result = self.push(stream, data).and_then(|()| self.pump());
        result.map_err(|error| self.core.fail(error))
    }

    /// The source finished `stream`. Before the migration is over, that is a truncated stream.
    pub fn handle_stream_finished(
        &mut self,
        now: Duration,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        self.core.received(now, 0);
        if self.core.finish_ok() {
            return Ok(());
        }
        Err(self.end_early(SessionError::StreamTruncated(stream)))
    }

    /// The connection is gone. Before the migration is over, that aborts it, unless the
    /// resume feature is in use and the phase allows a resume (iterative copy, stop-and-copy,
    /// post-copy, commit before an agreeing answer): then the migration is kept
    /// ([`Event::ConnectionInterrupted`], [`DestinationSession::is_interrupted`]), `Ok` is
    /// returned, and the session waits for the source's resume HELLO on a new connection (feed
    /// its streams as usual), for at most [`DestinationConfig::resume_grace`]
    /// ([`DestinationSession::poll_timeout`]). A loss during the hellos of a resume keeps it
    /// waiting likewise.
    pub fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError> {
        self.core.received(now, 0);
        if self.core.finish_ok() {
            return Ok(());
        }
        if let Some(aborted) = self.pending_abort() {
            return Err(aborted);
        }
        let next_iteration = match self.interruption {
            Some(interruption) => Some(interruption.next_iteration),
            None => self.resumable_at(),
        };
        let Some(next_iteration) = next_iteration else {
            return Err(self.core.fail(SessionError::PeerGone));
        };
        self.interrupt(now, next_iteration);
        Ok(())
    }

    /// Whether the migration waits for its source to resume it after a dropped link.
    pub fn is_interrupted(&self) -> bool {
        self.interruption.is_some() && !self.core.is_over()
    }

    /// The first iteration that did not complete, if a lost link may be resumed now.
    fn resumable_at(&self) -> Option<Iteration> {
        let phase = self.core.phase();
        let resumable_phase = matches!(
            phase,
            Phase::IterativeCopy | Phase::StopAndCopy | Phase::PostCopy | Phase::Commit
        );
        (self.received.is_some()
            && resumable_phase
            && self.core.tracker().features().contains(Features::RESUME))
        .then(|| self.open.unwrap_or(self.core.tracker().next_iteration()))
    }

    /// Keeps the migration for a resume: what belonged to the lost connection (partial frames,
    /// held batches, the open iteration, a partial device state) is dropped.
    fn interrupt(&mut self, now: Duration, next_iteration: Iteration) {
        self.interruption = Some(Interruption {
            since: now,
            next_iteration,
        });
        self.open = None;
        self.applied = 0;
        self.held_end = None;
        self.page_streams.clear();
        self.device_state.clear();
        self.deferred = None;
        if let Some(received) = &mut self.received {
            received.interrupted();
        }
        if let Some(postcopy) = &mut self.postcopy {
            postcopy.request_again();
        }
        self.receive_limits = self.config.limits;
        self.core.reconnect(self.config.limits);
        self.core.emit(Event::ConnectionInterrupted);
    }

    /// A stream or the connection ended before the migration was over. If the source sent
    /// ABORT, the ABORT says why; otherwise `error` does.
    fn end_early(&mut self, error: SessionError) -> SessionError {
        match self.pending_abort() {
            Some(aborted) => aborted,
            None => self.core.fail(error),
        }
    }

    /// An ABORT the source sent that waits unread in the control stream (behind an
    /// ITERATION_END held for batches the aborting source never sent), reported.
    fn pending_abort(&mut self) -> Option<SessionError> {
        while let Ok(Some(frame)) = self.core.control_in.poll() {
            if let Frame::Abort(abort) = &frame
                && self.core.track_received(&frame).is_ok()
            {
                return Some(self.core.peer_aborted(abort));
            }
        }
        None
    }

    /// When [`DestinationSession::handle_timeout`] should be called next (`None`: no timer):
    /// the idle timeout, and while interrupted the end of the grace period.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let idle = self.core.poll_timeout();
        match self.grace_end() {
            Some(end) => Some(idle.map_or(end, |idle| idle.min(end))),
            None => idle,
        }
    }

    /// The timer of [`DestinationSession::poll_timeout`] fired. An interrupted migration
    /// whose grace period is over is aborted ([`SessionError::NotResumed`]); the VM never runs
    /// here.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        if self.grace_end().is_some_and(|end| now >= end) {
            let error = self
                .core
                .fail(SessionError::NotResumed(self.config.resume_grace));
            // No connection carries the ABORT.
            self.core.discard_output();
            return Err(error);
        }
        match self.core.expired(now) {
            Some(error) => Err(self.core.fail(error)),
            None => Ok(()),
        }
    }

    fn grace_end(&self) -> Option<Duration> {
        let interruption = self.interruption.filter(|_| !self.core.is_over())?;
        Some(interruption.since.saturating_add(self.config.resume_grace))
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.poll_event()
    }

    /// Up to `budget` bytes to write on `stream` (only the control stream carries anything
    /// from the destination).
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        stream: StreamId,
        budget: usize,
    ) -> Option<Bytes> {
        match stream {
            StreamId::Control => {
                if let Err(error) = self.send_page_requests() {
                    self.core.fail(error);
                }
                self.core.take_control(now, budget)
            }
            StreamId::Page(_) => None,
        }
    }

    /// Whether the migration is over and every byte for the peer has been taken.
    pub fn is_closed(&self) -> bool {
        self.core.is_over() && self.core.control_pending() == 0
    }

    /// Puts the faults reported since the last call into PAGE_REQUEST frames.
    fn send_page_requests(&mut self) -> Result<(), SessionError> {
        let Some(postcopy) = &mut self.postcopy else {
            return Ok(());
        };
        // Not while the link is down or the hellos of a resume run: the faults wait for
        // the resumed post-copy.
        if self.core.is_over() || !matches!(self.core.phase(), Phase::PostCopy | Phase::Commit) {
            return Ok(());
        }
        let pages = postcopy.take_unsent();
        let per_frame = (self.core.send_limits.max_requested_pages as usize).max(1);
        for chunk in pages.chunks(per_frame) {
            self.core.send(Frame::PageRequest(PageRequest {
                pages: chunk.to_vec(),
            }))?;
            self.stats.page_requests += 1;
        }
        Ok(())
    }

    fn push(&mut self, stream: StreamId, data: &[u8]) -> Result<(), SessionError> {
        match stream {
            StreamId::Control => self.core.control_in.push(data),
            StreamId::Page(index) => {
                let index = usize::from(index);
                if index >= usize::from(self.config.max_page_streams) {
                    return Err(SessionError::UnknownStream(stream));
                }
                while self.page_streams.len() <= index {
                    self.page_streams.push(PageStream {
                        frames: FrameDecoder::new(self.receive_limits),
                        held: None,
                    });
                }
                self.page_streams[index].frames.push(data);
            }
        }
        Ok(())
    }

    /// Processes every frame that can be processed, across streams, until none can.
    fn pump(&mut self) -> Result<(), SessionError> {
        loop {
            let mut progressed = self.pump_control()?;
            for index in 0..self.page_streams.len() {
                progressed |= self.pump_page_stream(index)?;
            }
            if !progressed || self.core.is_over() {
                break;
            }
        }
        let max = self
            .config
            .max_held_bytes
            .max(self.receive_limits.max_frame_payload as usize + 8);
        let control = (
            self.held_end.is_some(),
            StreamId::Control,
            self.core.control_in.buffered(),
        );
        let pages = self.page_streams.iter().enumerate().map(|(index, s)| {
            (
                s.held.is_some(),
                StreamId::Page(index as u16),
                s.frames.buffered(),
            )
        });
        for (held, stream, buffered) in std::iter::once(control).chain(pages) {
            if held && buffered > max {
                return Err(SessionError::BufferLimit {
                    stream,
                    buffered,
                    max,
                });
            }
        }
        Ok(())
    }

    fn pump_control(&mut self) -> Result<bool, SessionError> {
        let mut progressed = false;
        if let Some(end) = self.held_end {
            if self.applied < end.batches {
                return Ok(false);
            }
            self.held_end = None;
            self.end_iteration(end)?;
            progressed = true;
        }
        while !self.core.is_over() {
            let Some(frame) = self.core.control_in.poll()? else {
                break;
            };
            progressed = true;
            if let Frame::IterationEnd(end) = frame
                && self.open == Some(end.iteration)
                && self.applied < end.batches
            {
                self.held_end = Some(end);
                self.stats.held_ends += 1;
                break;
            }
            self.on_control(frame)?;
        }
        Ok(progressed)
    }

    fn pump_page_stream(&mut self, index: usize) -> Result<bool, SessionError> {
        let mut progressed = false;
        while !self.core.is_over() {
            let stream = &mut self.page_streams[index];
            let was_held = stream.held.is_some();
            let batch = match stream.held.take() {
                Some(batch) => batch,
                None => match stream.frames.poll()? {
                    Some(Frame::PageBatch(batch)) => batch,
                    Some(other) => {
                        return Err(SessionError::FrameOnWrongStream {
                            stream: StreamId::Page(index as u16),
                            frame_type: other.frame_type(),
                        });
                    }
                    None => break,
                },
            };
            if self.must_wait(&batch) {
                self.page_streams[index].held = Some(batch);
                self.stats.held_batches += u64::from(!was_held);
                break;
            }
            self.apply_batch(batch)?;
            progressed = true;
        }
        Ok(progressed)
    }

    /// Whether a batch from a page stream belongs to an iteration not started yet, so it waits
    /// for its ITERATION_START on the control stream. That may be a later iteration than the
    /// next one: a stream that carried no batch of the next iteration goes on to the one after.
    fn must_wait(&self, batch: &PageBatch) -> bool {
        self.core
            .phase()
            .allows(Direction::SourceToDestination, FrameType::PAGE_BATCH)
            && self.open != Some(batch.iteration)
            && batch.iteration >= self.core.tracker().next_iteration()
    }

    fn apply_batch(&mut self, batch: PageBatch) -> Result<(), SessionError> {
        let frame = Frame::PageBatch(batch);
        self.core.track_received(&frame)?;
        let Frame::PageBatch(batch) = frame else {
            return Ok(());
        };
        if let Some(postcopy) = &self.postcopy {
            postcopy
                .check(&batch.records)
                .map_err(|error| SessionError::Wire(error.into()))?;
        }
        self.decoder.apply_all(&mut self.memory, &batch.records)?;
        if self.postcopy.is_some() {
            self.received_in_postcopy(&batch)?;
        }
        if let Some(received) = &mut self.received {
            received.applied(&batch.records);
        }
        self.applied += 1;
        self.stats.batches += 1;
        self.stats.pages += batch
            .records
            .iter()
            .map(|r| r.body.pages_covered())
            .sum::<u64>();
        Ok(())
    }

    /// Post-copy: the pages of `batch` are applied; keeps their hashes as received and tells
    /// the embedder about the requested ones.
    fn received_in_postcopy(&mut self, batch: &PageBatch) -> Result<(), SessionError> {
        let Some(postcopy) = &mut self.postcopy else {
            return Ok(());
        };
        let now = self.core.now();
        let mut scratch = vec![0u8; self.memory.page_size().bytes()];
        for record in &batch.records {
            let first = record.page.0;
            let end = first.saturating_add(record.body.pages_covered());
            for page in (first..end).map(PageNumber) {
                self.memory.read_page(page, &mut scratch)?;
                if let Some(wait) = postcopy.arrived(page, ContentHash::of(&scratch), now) {
                    self.stats.faults_served += 1;
                    self.stats.fault_wait_total += wait;
                    self.stats.fault_wait_max = self.stats.fault_wait_max.max(wait);
                    self.core.emit(Event::PageArrived(page));
                }
            }
        }
        Ok(())
    }

    fn end_iteration(&mut self, end: IterationEnd) -> Result<(), SessionError> {
        self.core.track_received(&Frame::IterationEnd(end))?;
        self.open = None;
        if let Some(received) = &mut self.received {
            received.completed();
        }
        self.stats.iterations += 1;
        self.core.emit(Event::IterationEnded {
            iteration: end.iteration,
            batches: end.batches,
            pages: end.pages,
        });
        Ok(())
    }

    fn on_control(&mut self, frame: Frame) -> Result<(), SessionError> {
        match frame {
            Frame::PageBatch(batch) => return self.apply_batch(batch),
            Frame::IterationEnd(end) => return self.end_iteration(end),
            _ => {}
        }
        self.core.track_received(&frame)?;
        match frame {
            Frame::Hello(hello) => self.on_hello(&hello),
            Frame::IterationStart(iteration) => {
                self.open = Some(iteration);
                self.applied = 0;
                Ok(())
            }
            Frame::DeviceState(chunk) => {
                self.on_device_state(&chunk);
                Ok(())
            }
            Frame::CommitDigest(digest) => self.on_digest(&digest),
            Frame::Bitmap(BitmapFrame {
                kind: BitmapKind::Deferred,
                pages,
            }) => {
                match &mut self.deferred {
                    Some(deferred) => deferred.union_with(&pages),
                    None => self.deferred = Some(pages),
                }
                Ok(())
            }
            Frame::PostcopyBegin => self.begin_postcopy(),
            // Requests go the other way; the tracker refuses them from the source.
            Frame::PageRequest(_) => Ok(()),
            Frame::Activate => {
                self.activated = true;
                self.core.send(Frame::Activated)?;
                self.core.emit(Event::Activated);
                Ok(())
            }
            Frame::Abort(abort) => Err(self.core.peer_aborted(&abort)),
            // Dirty bitmaps are informational and SUSPEND only changes the phase; the tracker
            // refuses everything else (no resume is negotiated).
            _ => Ok(()),
        }
    }

    fn on_hello(&mut self, source: &Hello) -> Result<(), SessionError> {
        let mut ours = Hello::new(
            Role::Destination,
            self.config.migration_id,
            self.memory.page_size(),
            self.memory.page_count(),
        );
        ours.encodings = mandatory(self.config.encodings);
        ours.features = Features::empty();
        if self.config.postcopy {
            ours.features = ours.features.union(Features::POSTCOPY);
        }
        // The RESUME frame must fit the source's frame limit whatever set it carries.
        if self.config.resume && resume_fits(source.page_count, source.max_frame_payload) {
            ours.features = ours.features.union(Features::RESUME);
        }
        // Answering a resume of a migration whose guest runs here: the source must go on
        // with post-copy, whatever it knows of POSTCOPY_BEGIN's fate.
        if source.resume && self.interruption.is_some() && self.postcopy.is_some() {
            ours.features = ours.features.union(Features::POSTCOPY_RUNNING);
        }
        ours.max_frame_payload = self
            .config
            .limits
            .max_frame_payload
            .min(Limits::HARD_MAX_FRAME_PAYLOAD);
        ours.vm_name = name(self.config.vm_name.clone());
        self.core.send(Frame::Hello(ours.clone()))?;
        let resuming = self.interruption.is_some();
        let negotiated = match Hello::negotiate(source, &ours) {
            // A resume names a migration this session does not hold: a fresh session, or
            // one whose link has not dropped.
            _ if source.resume && !resuming => Err(RefusalReason::UnknownMigration),
            // A fresh HELLO for the kept migration, on a connection from the peer that started
            // it (the transport hands a kept migration to no other), starts it over while its
            // guest has not run here: that source lost the link before it knew the migration
            // had begun, or gave up on it.
            Ok(negotiated) if !source.resume && resuming && self.postcopy.is_none() => {
                self.start_over();
                Ok(negotiated)
            }
            // A fresh migration cannot replace one whose guest runs here.
            _ if !source.resume && resuming => Err(RefusalReason::Busy),
            Ok(negotiated) if resuming && !negotiated.features.contains(Features::RESUME) => {
                Err(RefusalReason::UnknownMigration)
            }
            Ok(negotiated) => Ok(negotiated),
            Err(PeerIncompatible::OtherVm(_)) => Err(RefusalReason::WrongVm),
            Err(PeerIncompatible::MissingMandatoryEncoding(_)) => {
                Err(RefusalReason::NoCommonEncoding)
            }
            Err(error) => return Err(SessionError::Wire(error.into())),
        };
        match negotiated {
            Ok(negotiated) => {
                self.receive_limits = negotiated.limits(self.config.limits);
                self.core.control_in.set_limits(self.receive_limits);
                for stream in &mut self.page_streams {
                    stream.frames.set_limits(self.receive_limits);
                }
                self.core.send_limits =
                    send_limits(&negotiated, negotiated.source_max_frame_payload);
                self.decoder.set_encodings(negotiated.encodings);
                self.core.emit(Event::Negotiated(negotiated));
                if negotiated.features.contains(Features::RESUME) && self.received.is_none() {
                    self.received = Some(ReceivedPages::new(negotiated.page_count));
                }
                match self.interruption.take() {
                    Some(interruption) => self.send_resume(interruption.next_iteration),
                    None => self
                        .core
                        .send(Frame::Reservation(ReservationAnswer::Accepted)),
                }
            }
            Err(reason) => {
                self.core
                    .send(Frame::Reservation(ReservationAnswer::Refused(reason)))?;
                self.core.emit(Event::Refused(reason));
                Err(SessionError::Refused(reason))
            }
        }
    }

    /// Drops the kept migration for a fresh one on the same reservation: besides what the
    /// lost connection left (dropped when it was lost), the received set, the commit rounds and
    /// the counters go. The memory keeps its content, which the new migration writes again,
    /// and the hashes kept of it.
    fn start_over(&mut self) {
        self.interruption = None;
        self.received = None;
        self.commit_rounds = 0;
        self.stats = DestinationStats::default();
        self.core.emit(Event::StartedOver);
    }

    /// Answers a resume HELLO: the migration continues at `next_iteration`, and the source
    /// sends again what the destination does not hold from completed iterations.
    fn send_resume(&mut self, next_iteration: Iteration) -> Result<(), SessionError> {
        let page_count = self.memory.page_count();
        let received = match (&self.postcopy, &self.received) {
            // Post-copy: the guest may have written any page it holds, so every page here
            // counts, whichever iteration brought it.
            (Some(postcopy), _) => postcopy.held(),
            (None, Some(received)) => received.held().clone(),
            (None, None) => PageBitmap::new(page_count),
        };
        let count = received.count();
        self.core.send(Frame::Resume(Resume {
            next_iteration,
            received,
        }))?;
        self.stats.resumes += 1;
        self.core.emit(Event::Resumed {
            next_iteration,
            received: PageCount(count),
        });
        Ok(())
    }

    fn on_device_state(&mut self, chunk: &DeviceState) {
        // The tracker checked the chunk continues the previous one, and the decoder that the
        // total is within the limit, so the buffer grows to at most the limit.
        self.device_state.extend_from_slice(&chunk.data);
        if self.device_state.len() as u64 == chunk.total {
            let state = Bytes::from(std::mem::take(&mut self.device_state));
            self.core.emit(Event::DeviceState(state));
        }
    }

    /// POSTCOPY_BEGIN: the VM may run now. Every page but the deferred ones is hashed as
    /// received before the guest can write it.
    fn begin_postcopy(&mut self) -> Result<(), SessionError> {
        let page_count = self.memory.page_count();
        let deferred = self
            .deferred
            .take()
            .unwrap_or_else(|| PageBitmap::new(page_count));
        let count = deferred.count();
        let max = self.config.max_outstanding_faults.max(1);
        // The guest writes its memory from now on: the kept hashes go to post-copy's own.
        let written = self.decoder.forget_written_hashes();
        self.postcopy = Some(PostCopyPages::begin(deferred, &self.memory, written, max)?);
        self.stats.deferred_pages = count;
        self.core.emit(Event::PostCopyStarted {
            deferred: PageCount(count),
        });
        Ok(())
    }

    /// The commit digest after post-copy: every deferred page must have arrived, and the
    /// digest must match the pages as received. A mismatch cannot be repaired (the guest may
    /// have used the wrong content): the migration is aborted with DIGEST_MISMATCH.
    fn on_postcopy_digest(&mut self, digest: &CommitDigest) -> Result<(), SessionError> {
        let Some(postcopy) = &self.postcopy else {
            return Ok(());
        };
        let missing = postcopy.missing();
        if missing > 0 {
            return Err(SessionError::Wire(
                crate::error::PeerMisbehaved::DeferredPagesMissing { missing }.into(),
            ));
        }
        let per_range = NonZeroU32::new(digest.pages_per_range).unwrap_or(NonZeroU32::MIN);
        let answer = digest.compare(&postcopy.digest(per_range));
        if let CommitAnswer::Mismatch(ranges) = &answer {
            self.stats.commit_mismatches = 1;
            return Err(SessionError::DigestMismatch {
                rounds: 1,
                ranges: ranges.len(),
            });
        }
        self.core.send(Frame::CommitAnswer(answer.clone()))?;
        self.core.emit(Event::CommitResult(answer));
        Ok(())
    }

    fn on_digest(&mut self, digest: &CommitDigest) -> Result<(), SessionError> {
        if self.postcopy.is_some() {
            return self.on_postcopy_digest(digest);
        }
        let per_range = NonZeroU32::new(digest.pages_per_range).unwrap_or(NonZeroU32::MIN);
        let memory = &mut self.memory;
        let decoder = &self.decoder;
        let (page_size, page_count) = (memory.page_size(), memory.page_count());
        // The pages the decoder wrote, by the hash it kept; the others hashed where they lie
        // when the memory lends pages: no copy.
        let ours = digest_of(per_range, page_size, page_count, |page, out| {
            if let Some(hash) = decoder.written_hash(page) {
                return Ok(hash);
            }
            if let Some(bytes) = memory.page_mut(page)? {
                return Ok(ContentHash::of(bytes));
            }
            memory.read_page(page, out)?;
            Ok(ContentHash::of(out))
        })?;
        let answer = digest.compare(&ours);
        if let CommitAnswer::Mismatch(ranges) = &answer {
            self.commit_rounds += 1;
            self.stats.commit_mismatches = self.commit_rounds;
            if self.commit_rounds > self.config.max_commit_rounds {
                return Err(SessionError::DigestMismatch {
                    rounds: self.commit_rounds,
                    ranges: ranges.len(),
                });
            }
        }
        self.core.send(Frame::CommitAnswer(answer.clone()))?;
        self.core.emit(Event::CommitResult(answer));
        Ok(())
    }
}

impl<M: DestinationMemory> std::fmt::Debug for DestinationSession<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationSession")
            .field("phase", &self.phase())
            .field("activated", &self.activated())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
