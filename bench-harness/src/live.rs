//! The live guest of `pagewire send`: a trace's writes replayed in real time into the memory a
//! source session migrates, and [`LiveSource`], the session the transport's driver runs.
//!
//! [`GuestTrace`] opens the trace and gives its initial image; [`LiveGuest`] lands each epoch when the session clock reaches its time offset (less the
//! `start` the guest was pre-rolled to): it copies the epoch's page contents into the
//! memory and reports every page written (identical rewrites too) to the session with
//! `on_write`, so the session sees them dirty and sends them again. The guest replays the
//! trace once and then idles; on suspension it stops for good, so the memory at suspension is
//! the trace's image after the epochs that landed, and that is what the destination must
//! hold.
//!
//! An epoch is decoded one step ahead (the reader's image then holds its contents), but only
//! the pages it writes are copied, and only when it lands: no later content leaks early.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use pagewire_codec::frame::AbortReason;
use pagewire_codec::memory::MemoryTooLarge;
use pagewire_codec::memory::{DestinationMemory, MemoryError, SourceMemory};
use pagewire_codec::select::LinkEstimate;
use pagewire_codec::session::{Event, Session, SessionError, SourceSession, SourceStats, StreamId};
use pagewire_codec::{InMemory, PageCount, PageNumber, PageSize};

use crate::trace::{ContentMode, Epoch, TraceReadError, TraceReader};

/// Why the live guest could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The trace could not be read.
    #[error("cannot replay the trace: {0}")]
    Trace(#[from] TraceReadError),
    /// The trace records which pages were written but not their contents.
    #[error("the trace holds no page contents (a dirty-only trace cannot drive a live guest)")]
    NoContent,
    /// The guest memory refused a page.
    #[error("cannot write the guest memory: {0}")]
    Memory(#[from] MemoryError),
    /// The trace's memory does not fit in this process.
    #[error(transparent)]
    TooLarge(#[from] MemoryTooLarge),
    /// The image given does not have the trace's geometry.
    #[error("the image holds {image} of {page_size}, the trace {trace}")]
    Geometry {
        /// Pages in the image.
        image: PageCount,
        /// Pages in the trace.
        trace: PageCount,
        /// The trace's page size.
        page_size: PageSize,
    },
}

/// A trace opened for a live guest that has not run yet: it gives the initial image, and
/// [`run_alone_until`](GuestTrace::run_alone_until) starts the guest in a memory.
pub struct GuestTrace {
    reader: TraceReader<BufReader<File>>,
}

impl GuestTrace {
    /// Opens the trace at `path`; it must hold page contents.
    pub fn open(path: &Path) -> Result<GuestTrace, LiveError> {
        let mut reader = TraceReader::open(path)?;
        if reader.header().content != ContentMode::Full {
            return Err(LiveError::NoContent);
        }
        reader.load_initial_image()?;
        Ok(GuestTrace { reader })
    }

    /// The size of the trace's pages.
    pub fn page_size(&self) -> PageSize {
        self.reader.page_size()
    }

    /// The trace's initial image, as a memory of the trace's geometry.
    pub fn initial_image(&mut self) -> Result<InMemory, LiveError> {
        let mut memory = InMemory::new(self.reader.page_size(), self.reader.page_count())?;
        for n in 0..self.reader.page_count().0 {
            let page = PageNumber(n);
            memory.write_page(page, self.reader.page(page)?)?;
        }
        Ok(memory)
    }

    /// Starts the guest in `memory` (which must have the trace's geometry) and runs it alone
    /// up to trace time `start`: the epochs up to `start` land at once, unreported (they
    /// happened before the migration), and the rest land at session time `epoch time - start`.
    pub fn run_alone_until(
        self,
        start: Duration,
        memory: &mut impl DestinationMemory,
    ) -> Result<LiveGuest, LiveError> {
        let reader = self.reader;
        let (page_size, page_count) = (reader.page_size(), reader.page_count());
        if memory.page_size() != page_size || memory.page_count() != page_count {
            return Err(LiveError::Geometry {
                image: memory.page_count(),
                trace: page_count,
                page_size,
            });
        }
        let mut guest = LiveGuest {
            epochs: reader.summary().epochs,
            reader,
            next: None,
            start: Duration::ZERO,
            landed: 0,
            suspended: false,
        };
        guest.decode_next()?;
        guest.land_due(start, memory, &mut |_| {})?;
        guest.start = start;
        Ok(guest)
    }
}

/// A trace replayed in real time into guest memory.
pub struct LiveGuest {
    reader: TraceReader<BufReader<File>>,
    /// The next epoch to land, decoded (`None` once the trace is over).
    next: Option<Epoch>,
    /// Trace time at session time zero.
    start: Duration,
    landed: u64,
    epochs: u64,
    suspended: bool,
}

impl LiveGuest {
    /// Session time at which the next epoch lands (`None`: the trace is over, or the guest is
    /// suspended).
    pub fn next_landing(&self) -> Option<Duration> {
        if self.suspended {
            return None;
        }
        let next = self.next.as_ref()?;
        Some(next.time.saturating_sub(self.start))
    }

    /// Lands every epoch due at session time `now`: writes its pages into `memory` and calls
    /// `on_write` for each page written.
    pub fn land_due(
        &mut self,
        now: Duration,
        memory: &mut impl DestinationMemory,
        on_write: &mut dyn FnMut(PageNumber),
    ) -> Result<(), LiveError> {
        while self.next_landing().is_some_and(|at| at <= now) {
            let Some(epoch) = self.next.take() else { break };
            for write in &epoch.writes {
                memory.write_page(write.page, self.reader.page(write.page)?)?;
                on_write(write.page);
            }
            self.landed += 1;
            self.decode_next()?;
        }
        Ok(())
    }

    /// Stops the guest for good (the VM is suspended for stop-and-copy).
    pub fn suspend(&mut self) {
        self.suspended = true;
    }

    /// Epochs landed so far (including those before `start`), and the trace's epoch count.
    pub fn epochs_landed(&self) -> (u64, u64) {
        (self.landed, self.epochs)
    }

    fn decode_next(&mut self) -> Result<(), LiveError> {
        let mut epoch = Epoch::default();
        self.next = self.reader.next_epoch(&mut epoch)?.then_some(epoch);
        Ok(())
    }
}

/// Reports the source's counters as it sends (for progress displays).
pub type StatsObserver = Box<dyn FnMut(&SourceStats)>;

/// A source session whose guest runs while it migrates: the session the transport's
/// [`drive`](pagewire_transport::driver::drive) runs for `pagewire send`. Every call that
/// brings the time lands the epochs due first, and the next landing is a timeout, so the
/// guest keeps its schedule while the driver waits.
pub struct LiveSource<M: SourceMemory = InMemory> {
    session: SourceSession<M>,
    guest: Option<LiveGuest>,
    written: Vec<PageNumber>,
    failure: Option<LiveError>,
    observer: Option<StatsObserver>,
}

impl<M: SourceMemory + DestinationMemory> LiveSource<M> {
    /// Runs `session` with `guest` writing into its memory (`None`: an idle guest).
    pub fn new(session: SourceSession<M>, guest: Option<LiveGuest>) -> LiveSource<M> {
        LiveSource {
            session,
            guest,
            written: Vec::new(),
            failure: None,
            observer: None,
        }
    }

    /// Calls `observer` with the counters whenever the session produced bytes.
    pub fn observe(&mut self, observer: StatsObserver) {
        self.observer = Some(observer);
    }

    /// The session.
    pub fn session(&self) -> &SourceSession<M> {
        &self.session
    }

    /// The guest, if one runs.
    pub fn guest(&self) -> Option<&LiveGuest> {
        self.guest.as_ref()
    }

    /// Why the guest failed (which aborted the migration), if it did.
    pub fn guest_failure(&self) -> Option<&LiveError> {
        self.failure.as_ref()
    }

    /// Suspends the guest (on [`Event::SuspendRequested`]): it lands what is due at `now`, then
    /// writes no more; the session goes on to stop-and-copy with `device_state`.
    pub fn suspend(&mut self, now: Duration, device_state: Bytes) -> Result<(), SessionError> {
        self.land(now);
        if let Some(guest) = &mut self.guest {
            guest.suspend();
        }
        self.session.suspended(now, device_state)
    }

    /// Lands the epochs due at `now` and reports their pages; a guest failure aborts.
    fn land(&mut self, now: Duration) {
        let Some(guest) = &mut self.guest else {
            return;
        };
        let written = &mut self.written;
        let result = guest.land_due(now, self.session.memory_mut(), &mut |page| {
            written.push(page);
        });
        for page in self.written.drain(..) {
            self.session.on_write(page);
        }
        if let Err(error) = result {
            guest.suspend();
            self.session.abort(
                now,
                AbortReason::Internal,
                format!("the live guest failed: {error}"),
            );
            self.failure = Some(error);
        }
    }
}

impl<M: SourceMemory + DestinationMemory> Session for LiveSource<M> {
    fn outgoing(&self) -> Vec<StreamId> {
        self.session.streams().collect()
    }
    fn poll_transmit(&mut self, now: Duration, stream: StreamId, budget: usize) -> Option<Bytes> {
        self.land(now);
        let bytes = self.session.poll_transmit(now, stream, budget);
        if bytes.is_some()
            && let Some(observer) = &mut self.observer
        {
            observer(&self.session.stats());
        }
        bytes
    }
    fn handle_stream_data(
        &mut self,
        now: Duration,
        stream: StreamId,
        data: &[u8],
    ) -> Result<(), SessionError> {
        self.land(now);
        self.session.handle_stream_data(now, stream, data)
    }
    fn handle_stream_finished(
        &mut self,
        now: Duration,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        self.session.handle_stream_finished(now, stream)
    }
    fn handle_connection_lost(&mut self, now: Duration) -> Result<(), SessionError> {
        self.session.handle_connection_lost(now)
    }
    fn poll_timeout(&self) -> Option<Duration> {
        let landing = self.guest.as_ref().and_then(LiveGuest::next_landing);
        match (self.session.poll_timeout(), landing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        self.land(now);
        self.session.handle_timeout(now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }
    fn take_error(&mut self) -> Option<SessionError> {
        self.session.take_error()
    }
    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
    fn wants_data(&self, _stream: StreamId) -> bool {
        true
    }
    fn abort(&mut self, now: Duration, reason: AbortReason, message: String) {
        self.session.abort(now, reason, message);
    }
    fn link_measured(&mut self, link: LinkEstimate) {
        self.session.link_measured(link);
    }
}

/// The guest keeps running while the link is down; the session resumes underneath it.
impl<M: SourceMemory + DestinationMemory> pagewire_transport::resume::ResumableSource
    for LiveSource<M>
{
    fn is_interrupted(&self) -> bool {
        self.session.is_interrupted()
    }
    fn resumes(&self) -> u32 {
        self.session.stats().resumes
    }
    fn resume(&mut self, now: Duration) -> Result<(), SessionError> {
        self.land(now);
        self.session.resume(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::content::{ContentMix, ContentModel};
    use crate::trace::generators::{GenConfig, Uniform, generate};
    use crate::trace::{TraceHeader, TraceWriter};

    const PAGES: u64 = 32;

    /// 10 epochs of 10 ms, 4 pages each, over 32 pages.
    fn trace(name: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("pagewire-live-{}-{name}", std::process::id()));
        let config = GenConfig {
            page_size: PageSize::KIB_4,
            page_count: PageCount(PAGES),
            interval: Duration::from_millis(10),
            epochs: 10,
            content: ContentMode::Full,
            model: ContentModel::new(1, ContentMix::default(), 64),
            identical_share: 0.0,
            seed: 1,
        };
        let mut pattern = Uniform {
            page_count: config.page_count,
            pages_per_epoch: 4,
        };
        let header = TraceHeader::new(config.page_size, config.content, config.page_count);
        let mut writer = TraceWriter::create(&path, header).unwrap();
        generate(&config, &mut pattern, &mut writer, &mut |_| {}).unwrap();
        writer.finish().unwrap();
        path
    }

    /// The trace's image after `epochs` epochs, and the pages those epochs wrote.
    fn replayed(path: &Path, epochs: u64) -> (Vec<u8>, Vec<PageNumber>) {
        let mut reader = TraceReader::open(path).unwrap();
        reader.load_initial_image().unwrap();
        let mut epoch = Epoch::default();
        let mut written = Vec::new();
        for _ in 0..epochs {
            reader.next_epoch(&mut epoch).unwrap();
            written.extend(epoch.writes.iter().map(|write| write.page));
        }
        let mut image = Vec::new();
        for page in 0..PAGES {
            image.extend_from_slice(reader.page(PageNumber(page)).unwrap());
        }
        (image, written)
    }

    #[test]
    fn epochs_land_at_their_time_after_the_start_and_stop_at_suspension() {
        let path = trace("land");
        let mut trace = GuestTrace::open(&path).unwrap();
        let mut memory = trace.initial_image().unwrap();
        assert_eq!(memory.as_bytes(), replayed(&path, 0).0.as_slice());
        let mut guest = trace
            .run_alone_until(Duration::from_millis(20), &mut memory)
            .unwrap();
        // Epochs at 10 and 20 ms landed before the migration; the third lands 10 ms in.
        assert_eq!(guest.epochs_landed(), (2, 10));
        assert_eq!(memory.as_bytes(), replayed(&path, 2).0.as_slice());
        assert_eq!(guest.next_landing(), Some(Duration::from_millis(10)));
        let mut written = Vec::new();
        guest
            .land_due(Duration::from_millis(9), &mut memory, &mut |page| {
                written.push(page)
            })
            .unwrap();
        assert!(written.is_empty());
        guest
            .land_due(Duration::from_millis(25), &mut memory, &mut |page| {
                written.push(page)
            })
            .unwrap();
        let (image, all_written) = replayed(&path, 4);
        assert_eq!(guest.epochs_landed(), (4, 10));
        assert_eq!(memory.as_bytes(), image.as_slice());
        assert_eq!(written, all_written[replayed(&path, 2).1.len()..]);
        guest.suspend();
        assert_eq!(guest.next_landing(), None);
        guest
            .land_due(Duration::from_secs(1), &mut memory, &mut |_| {
                panic!("a suspended guest wrote")
            })
            .unwrap();
        assert_eq!(memory.as_bytes(), image.as_slice());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_image_of_another_size_is_refused() {
        let path = trace("geometry");
        let mut image = InMemory::new(PageSize::KIB_4, PageCount(PAGES + 1)).unwrap();
        assert!(matches!(
            GuestTrace::open(&path)
                .unwrap()
                .run_alone_until(Duration::ZERO, &mut image),
            Err(LiveError::Geometry { .. })
        ));
        std::fs::remove_file(path).unwrap();
    }
}
