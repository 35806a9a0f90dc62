//! The streams of a migration connection: one bidirectional control stream and several
//! unidirectional page streams, behind bounded queues.
//!
//! The source opens every stream ([`open`]); the destination accepts them ([`accept`]),
//! numbering page streams as the source did. Which page goes on which page stream (pfn
//! affinity) is the session's decision; this module only maps the session's [`StreamId`] to a
//! quinn stream.
//!
//! **Bounded memory.** Each outgoing stream has a writer task fed by a queue of at most
//! [`StreamConfig::send_queue_chunks`] chunks; [`Outbox::send`] waits while the queue is full,
//! and the writer waits until QUIC flow control lets bytes go, so a slow destination slows the
//! source down to its pace. The source holds at most `send_queue_chunks` chunks per stream
//! plus quinn's send window; the destination at most [`StreamConfig::inbox_chunks`] reads of
//! at most [`StreamConfig::read_chunk`] bytes per stream plus its receive window. A stream the
//! driver leaves unread ([`Inbox::recv_from`]) stops being read once its queue is full.
//!
//! **Wake-ups.** QUIC hands a stream's data over one packet's segment at a time. A reader
//! passing each segment on by itself would wake the driver (and be woken back for room in
//! its queue) once per packet, a few kilobytes; so a reader takes every segment already
//! received, up to [`StreamConfig::read_chunk`] bytes, and queues them as one read. The
//! [`Inbox`] hands them out one by one, without copying them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::link_meter::Reading;
use crate::rate::{Pacer, RateLimit};
use crate::refusal::Refusal;

pub use pagewire_codec::session::StreamId;

/// The application error code of a page stream reset by [`Outbox::abandon_pages`]: the
/// migration ended without activation, and the pages still queued are not worth sending.
pub const PAGES_ABANDONED: quinn::VarInt = quinn::VarInt::from_u32(1);

/// The quinn priority of the source's control stream (page streams keep the default, 0).
const CONTROL_PRIORITY: i32 = 1;

/// How streams are set up and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Page streams the source opens (the destination accepts up to this many).
    pub page_streams: u16,
    /// Chunks queued per outgoing stream before [`Outbox::send`] waits.
    pub send_queue_chunks: usize,
    /// The most bytes read from a stream at once (every segment QUIC already holds, up to
    /// this many bytes, is queued as one read).
    pub read_chunk: usize,
    /// Reads queued but not yet taken from the [`Inbox`], per stream.
    pub inbox_chunks: usize,
    /// Limit on page-stream bytes (control frames are never held back, nor the post-copy pages
    /// a destination requested, which travel on the control stream).
    pub rate_limit: Option<RateLimit>,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            page_streams: 4,
            send_queue_chunks: 8,
            read_chunk: 256 << 10,
            inbox_chunks: 8,
            rate_limit: None,
        }
    }
}

/// Why a stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The connection was refused (a peer refusing us right after the handshake shows here).
    #[error("connection refused: {0}")]
    Refused(Refusal),
    /// The connection was lost or closed.
    #[error("connection lost")]
    ConnectionLost(#[source] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("cannot write to the {stream}")]
    Write {
        /// The stream.
        stream: StreamId,
        /// Why.
        source: quinn::WriteError,
    },
    /// Reading from a stream failed.
    #[error("cannot read from the {stream}")]
    Read {
        /// The stream.
        stream: StreamId,
        /// Why.
        source: quinn::ReadError,
    },
    /// The peer opened more page streams than configured.
    #[error("the peer opened more than {max} page streams")]
    TooManyPageStreams {
        /// The configured number.
        max: u16,
    },
    /// [`Outbox::send`] named a page stream that was not opened.
    #[error("there is no {0}")]
    NoSuchStream(StreamId),
}

impl From<quinn::ConnectionError> for StreamError {
    fn from(error: quinn::ConnectionError) -> StreamError {
        match Refusal::from_connection_error(&error) {
            Some(refusal) => StreamError::Refused(refusal),
            None => StreamError::ConnectionLost(error),
        }
    }
}

impl StreamError {
    fn write(stream: StreamId, error: quinn::WriteError) -> StreamError {
        match error {
            quinn::WriteError::ConnectionLost(error) => error.into(),
            source => StreamError::Write { stream, source },
        }
    }

    fn read(stream: StreamId, error: quinn::ReadError) -> StreamError {
        match error {
            quinn::ReadError::ConnectionLost(error) => error.into(),
            source => StreamError::Read { stream, source },
        }
    }
}

/// The sending half of a migration connection: bounded queues to one writer task per stream.
#[derive(Debug)]
pub struct Outbox {
    control: mpsc::Sender<Bytes>,
    pages: Vec<mpsc::Sender<Bytes>>,
    writers: JoinSet<Result<u64, StreamError>>,
    signals: WriterSignals,
    /// Set by [`Outbox::abandon_pages`]: the page writers reset their streams.
    abandon: watch::Sender<bool>,
    connection: quinn::Connection,
}

/// What every writer task tells the [`Outbox`].
#[derive(Clone, Debug, Default)]
struct WriterSignals {
    /// Signalled by a writer each time it takes a chunk off its queue.
    room: Arc<Notify>,
    /// Bytes the writers handed to QUIC (a write counts once QUIC took all of it).
    offered: Arc<AtomicU64>,
}

/// Something that arrived on a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// The next bytes of a stream, in stream order.
    Bytes(StreamId, Bytes),
    /// The peer finished the stream: no more bytes will come on it.
    Finished(StreamId),
}

/// What the [`Inbox`] hands out.
type Item = Result<Received, StreamError>;

/// What a stream's reader task queues: the segments of one read (in stream order), or the
/// stream's end or failure.
type Read = Result<Segments, StreamError>;

/// The segments of one read, or the stream's end.
#[derive(Debug)]
enum Segments {
    Bytes(Vec<Bytes>),
    Finished,
}

/// One stream's queue in the [`Inbox`], with the segments of its last read not yet handed
/// out.
#[derive(Debug)]
struct Incoming {
    stream: StreamId,
    queue: mpsc::Receiver<Read>,
    /// Segments of the last read, reversed (the next one last).
    segments: Vec<Bytes>,
}

impl Incoming {
    fn new(stream: StreamId, queue: mpsc::Receiver<Read>) -> Incoming {
        Incoming {
            stream,
            queue,
            segments: Vec::new(),
        }
    }

    /// The next segment, from the last read or a new one; `Ready(None)` once the reader is
    /// gone.
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Item>> {
        use std::task::Poll;
        if let Some(bytes) = self.segments.pop() {
            return Poll::Ready(Some(Ok(Received::Bytes(self.stream, bytes))));
        }
        match self.queue.poll_recv(cx) {
            Poll::Ready(Some(Ok(Segments::Bytes(mut segments)))) => {
                segments.reverse();
                self.segments = segments;
                match self.segments.pop() {
                    Some(bytes) => Poll::Ready(Some(Ok(Received::Bytes(self.stream, bytes)))),
                    // A reader never queues an empty read; if it did, ask again.
                    None => self.poll_next(cx),
                }
            }
            Poll::Ready(Some(Ok(Segments::Finished))) => {
                Poll::Ready(Some(Ok(Received::Finished(self.stream))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The receiving half of a migration connection: one bounded queue per stream, so the driver
/// can leave a stream unread (for example one held back by an iteration barrier) while it
/// takes the others, and flow control then holds back that stream's sender.
#[derive(Debug)]
pub struct Inbox {
    streams: Vec<Incoming>,
    arrivals: Option<mpsc::Receiver<(StreamId, mpsc::Receiver<Read>)>>,
    /// Where the next poll starts, so no stream starves the others.
    next: usize,
    _readers: JoinSet<()>,
}

impl Outbox {
    /// Queues `bytes` for `stream`, waiting while that stream's queue is full. An error means
    /// a writer failed; it is the first writer error.
    pub async fn send(&mut self, stream: StreamId, bytes: Bytes) -> Result<(), StreamError> {
        let queue = self.queue(stream)?;
        if queue.send(bytes).await.is_err() {
            return Err(self.first_writer_error().await);
        }
        Ok(())
    }

    /// Whether `stream`'s queue takes a chunk now without waiting (a stream that does not
    /// exist never does).
    pub fn has_room(&self, stream: StreamId) -> bool {
        self.queue(stream).is_ok_and(|queue| queue.capacity() > 0)
    }

    /// Waits until a writer took a chunk off its queue since the last call (so some stream
    /// may have room again). A driver that found no room anywhere waits here.
    pub async fn room(&self) {
        self.signals.room.notified().await
    }

    fn queue(&self, stream: StreamId) -> Result<&mpsc::Sender<Bytes>, StreamError> {
        match stream {
            StreamId::Control => Ok(&self.control),
            StreamId::Page(index) => self
                .pages
                .get(usize::from(index))
                .ok_or(StreamError::NoSuchStream(stream)),
        }
    }

    /// Gives up the page streams: their writers drop what is queued and reset their streams
    /// with [`PAGES_ABANDONED`] (the peer's reads fail with that code), so a migration that
    /// ended without activation stops sending pages at once instead of draining the queues
    /// and quinn's send buffer. The control stream is not touched: an ABORT queued on it is
    /// still delivered by [`Outbox::finish`].
    pub fn abandon_pages(&self) {
        self.abandon.send_replace(true);
    }

    /// The connection's counters now, for the [`LinkMeter`](crate::link_meter::LinkMeter):
    /// `at` and `blocked` are the caller's (the instant on its clock, and how long it waited
    /// for room so far).
    pub fn reading(&self, at: Duration, blocked: Duration) -> Reading {
        let stats = self.connection.stats();
        Reading {
            at,
            wire_bytes: carried(&stats),
            offered_bytes: self.signals.offered.load(Ordering::Relaxed),
            blocked,
            flow_blocked: stats.frame_tx.data_blocked + stats.frame_tx.stream_data_blocked,
            rtt: stats.path.rtt,
        }
    }

    /// The bytes the connection carried so far: what QUIC sent in UDP datagrams less the
    /// packets it declared lost ([`Reading::wire_bytes`]).
    pub fn wire_bytes(&self) -> u64 {
        carried(&self.connection.stats())
    }

    /// Sets QUIC's send window of the connection: the bytes it buffers unacknowledged across
    /// all streams ([`Tuning::send_window`](crate::Tuning::send_window) at first). Writers
    /// wait while it is full.
    pub fn set_send_window(&self, bytes: u64) {
        self.connection.set_send_window(bytes);
    }

    /// How many page streams there are.
    pub fn page_streams(&self) -> u16 {
        self.pages.len() as u16
    }

    /// Finishes every stream once its queue is written, and waits until quinn holds every
    /// byte (it delivers them as long as the connection lives; close the connection only
    /// after the peer's last answer). Returns how many bytes the writers wrote in all.
    pub async fn finish(self) -> Result<u64, StreamError> {
        let Outbox {
            control,
            pages,
            mut writers,
            ..
        } = self;
        drop(control);
        drop(pages);
        let mut total = 0;
        while let Some(joined) = writers.join_next().await {
            // A writer never panics, and is cancelled only when the set is dropped, which
            // cannot happen while we hold it: a join error has nothing to report.
            if let Ok(written) = joined {
                total += written?;
            }
        }
        Ok(total)
    }

    async fn first_writer_error(&mut self) -> StreamError {
        while let Some(joined) = self.writers.join_next().await {
            if let Ok(Err(error)) = joined {
                return error;
            }
        }
        // Every writer ended without an error, so none dropped its queue: not reachable
        // through `send`, which only fails when a queue is closed.
        StreamError::ConnectionLost(quinn::ConnectionError::LocallyClosed)
    }
}

impl Inbox {
    /// The next thing that arrived on any stream, or `None` once every stream ended and no
    /// more can arrive.
    pub async fn recv(&mut self) -> Option<Item> {
        self.recv_from(|_| true).await
    }

    /// The next thing that arrived on a stream `wanted` accepts; the others stay queued (and
    /// their senders are held back by flow control). `None` once no accepted stream can
    /// deliver anything any more.
    pub async fn recv_from(&mut self, wanted: impl Fn(StreamId) -> bool) -> Option<Item> {
        std::future::poll_fn(|cx| self.poll_recv_from(cx, &wanted)).await
    }

    fn poll_recv_from(
        &mut self,
        cx: &mut std::task::Context<'_>,
        wanted: &impl Fn(StreamId) -> bool,
    ) -> std::task::Poll<Option<Item>> {
        use std::task::Poll;
        if let Some(arrivals) = &mut self.arrivals {
            loop {
                match arrivals.poll_recv(cx) {
                    Poll::Ready(Some((stream, queue))) => {
                        self.streams.push(Incoming::new(stream, queue));
                    }
                    Poll::Ready(None) => {
                        self.arrivals = None;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        let count = self.streams.len();
        for offset in 0..count {
            let at = (self.next + offset) % count;
            let incoming = &mut self.streams[at];
            if !wanted(incoming.stream) {
                continue;
            }
            match incoming.poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    self.next = at + 1;
                    return Poll::Ready(Some(item));
                }
                // The reader ended after its last item: forget the stream.
                Poll::Ready(None) => {
                    self.streams.swap_remove(at);
                    return self.poll_recv_from(cx, wanted);
                }
                Poll::Pending => {}
            }
        }
        let more_can_come =
            self.arrivals.is_some() || self.streams.iter().any(|incoming| wanted(incoming.stream));
        if more_can_come {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}

/// Opens the streams as the source: the control stream and `config.page_streams` page
/// streams. The peer sees a stream once its first bytes (the stream header) are written.
pub async fn open(
    connection: &quinn::Connection,
    config: &StreamConfig,
) -> Result<(Outbox, Inbox), StreamError> {
    let (control_send, control_recv) = connection.open_bi().await?;
    // quinn sends a higher-priority stream's data before the others' buffered data. The control
    // stream carries the pages a post-copy destination faulted on (the session puts them
    // there, spec/wire.md §9.3): they must not wait behind the megabytes the page streams hold
    // in quinn's send buffer. The stream was just opened, so it cannot be closed yet.
    let _ = control_send.set_priority(CONTROL_PRIORITY);
    let mut page_sends = Vec::with_capacity(usize::from(config.page_streams));
    for _ in 0..config.page_streams {
        page_sends.push(connection.open_uni().await?);
    }
    let pacer = config.rate_limit.map(Pacer::new);
    let mut writers = JoinSet::new();
    let signals = WriterSignals::default();
    let (abandon, abandoned) = watch::channel(false);
    let control = spawn_writer(
        &mut writers,
        &signals,
        StreamId::Control,
        control_send,
        None,
        None,
        config,
    );
    let pages = page_sends
        .into_iter()
        .enumerate()
        .map(|(index, send)| {
            let stream = StreamId::Page(index as u16);
            let abandoned = Some(abandoned.clone());
            spawn_writer(
                &mut writers,
                &signals,
                stream,
                send,
                pacer.clone(),
                abandoned,
                config,
            )
        })
        .collect();
    let mut readers = JoinSet::new();
    let control_queue = spawn_reader(&mut readers, StreamId::Control, control_recv, config);
    Ok((
        Outbox {
            control,
            pages,
            writers,
            signals,
            abandon,
            connection: connection.clone(),
        },
        Inbox {
            streams: vec![Incoming::new(StreamId::Control, control_queue)],
            arrivals: None,
            next: 0,
            _readers: readers,
        },
    ))
}

/// Accepts the streams as the destination: waits for the control stream, then takes page
/// streams as they arrive (up to `config.page_streams`) for as long as the [`Inbox`] lives.
pub async fn accept(
    connection: &quinn::Connection,
    config: &StreamConfig,
) -> Result<(Outbox, Inbox), StreamError> {
    let (control_send, control_recv) = connection.accept_bi().await?;
    let mut writers = JoinSet::new();
    let signals = WriterSignals::default();
    let control = spawn_writer(
        &mut writers,
        &signals,
        StreamId::Control,
        control_send,
        None,
        None,
        config,
    );
    let mut readers = JoinSet::new();
    let control_queue = spawn_reader(&mut readers, StreamId::Control, control_recv, config);
    let (arrived, arrivals) = mpsc::channel(usize::from(config.page_streams).max(1));
    readers.spawn(accept_page_streams(
        connection.clone(),
        arrived,
        config.clone(),
    ));
    Ok((
        Outbox {
            control,
            pages: Vec::new(),
            writers,
            signals,
            abandon: watch::channel(false).0,
            connection: connection.clone(),
        },
        Inbox {
            streams: vec![Incoming::new(StreamId::Control, control_queue)],
            arrivals: Some(arrivals),
            next: 0,
            _readers: readers,
        },
    ))
}

/// Starts the task writing `stream`'s queue to `send`, and returns the queue. A page
/// stream's writer (`abandoned` given) resets its stream once [`Outbox::abandon_pages`] is
/// called.
fn spawn_writer(
    writers: &mut JoinSet<Result<u64, StreamError>>,
    signals: &WriterSignals,
    stream: StreamId,
    mut send: quinn::SendStream,
    pacer: Option<Pacer>,
    abandoned: Option<watch::Receiver<bool>>,
    config: &StreamConfig,
) -> mpsc::Sender<Bytes> {
    let (queue, mut chunks) = mpsc::channel::<Bytes>(config.send_queue_chunks.max(1));
    let signals = signals.clone();
    writers.spawn(async move {
        let mut written = 0u64;
        let writing = write_queue(
            stream,
            &mut send,
            &mut chunks,
            &signals,
            pacer.as_ref(),
            &mut written,
        );
        let finished = tokio::select! {
            // Abandoned wins over a queue that happens to be written too.
            biased;
            () = until_abandoned(abandoned) => None,
            result = writing => Some(result),
        };
        match finished {
            Some(result) => {
                result?;
                // The queue closed: every chunk is with quinn. Finishing fails only if the
                // stream was already finished or reset, and the peer's stop shows on the
                // next write anyway.
                let _ = send.finish();
            }
            None => {
                // Fails only if the stream is already finished or reset: nothing left to stop.
                let _ = send.reset(PAGES_ABANDONED);
            }
        }
        Ok(written)
    });
    queue
}

/// Writes the chunks of `chunks` to `send` until the queue closes, counting them in `written`.
async fn write_queue(
    stream: StreamId,
    send: &mut quinn::SendStream,
    chunks: &mut mpsc::Receiver<Bytes>,
    signals: &WriterSignals,
    pacer: Option<&Pacer>,
    written: &mut u64,
) -> Result<(), StreamError> {
    while let Some(chunk) = chunks.recv().await {
        signals.room.notify_one();
        if let Some(pacer) = pacer {
            pacer.pace(chunk.len()).await;
        }
        let len = chunk.len() as u64;
        *written += len;
        send.write_chunk(chunk)
            .await
            .map_err(|error| StreamError::write(stream, error))?;
        signals.offered.fetch_add(len, Ordering::Relaxed);
    }
    Ok(())
}

/// Bytes sent in UDP datagrams less those of packets declared lost.
fn carried(stats: &quinn::ConnectionStats) -> u64 {
    stats.udp_tx.bytes.saturating_sub(stats.path.lost_bytes)
}

/// Completes once the flag is set (never without a flag, or once its sender is gone unset).
async fn until_abandoned(abandoned: Option<watch::Receiver<bool>>) {
    if let Some(mut abandoned) = abandoned
        && abandoned.wait_for(|abandoned| *abandoned).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// Starts a task reading `recv` into a new bounded queue, and returns the queue.
fn spawn_reader(
    readers: &mut JoinSet<()>,
    stream: StreamId,
    recv: quinn::RecvStream,
    config: &StreamConfig,
) -> mpsc::Receiver<Read> {
    let (queue, items) = mpsc::channel(config.inbox_chunks.max(1));
    readers.spawn(read_stream(stream, recv, queue, config.read_chunk));
    items
}

/// Reads `recv` into `queue` until the stream ends, fails, or the queue's reader is gone. Each
/// read waits for a first segment, then takes the segments already received, up to
/// `read_chunk` bytes in all.
async fn read_stream(
    stream: StreamId,
    mut recv: quinn::RecvStream,
    queue: mpsc::Sender<Read>,
    read_chunk: usize,
) {
    let read_chunk = read_chunk.max(1);
    let mut next = Some(recv.read_chunk(read_chunk, true).await);
    while let Some(first) = next.take() {
        let item = match first {
            Ok(Some(chunk)) => {
                let mut taken = chunk.bytes.len();
                let mut segments = vec![chunk.bytes];
                while taken < read_chunk {
                    match ready_now(recv.read_chunk(read_chunk - taken, true)).await {
                        Some(Ok(Some(chunk))) => {
                            taken += chunk.bytes.len();
                            segments.push(chunk.bytes);
                        }
                        // The end or a failure: queued after these segments.
                        Some(end) => {
                            next = Some(end);
                            break;
                        }
                        None => break,
                    }
                }
                Ok(Segments::Bytes(segments))
            }
            Ok(None) => Ok(Segments::Finished),
            Err(error) => Err(StreamError::read(stream, error)),
        };
        let last = !matches!(item, Ok(Segments::Bytes(_)));
        if queue.send(item).await.is_err() || last {
            return;
        }
        if next.is_none() {
            next = Some(recv.read_chunk(read_chunk, true).await);
        }
    }
}

/// `future`'s output if it is ready at its first poll, else `None` (it is dropped: use it with
/// cancel-safe operations only).
async fn ready_now<F: Future>(future: F) -> Option<F::Output> {
    use std::task::Poll;
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Accepts page streams until the connection closes, each read by its own task into its own
/// queue, handed to the [`Inbox`] through `arrived`. A page stream's index is its QUIC
/// sequence number among the source's unidirectional streams, so it is the source's index
/// whatever order the streams' first bytes arrive in.
async fn accept_page_streams(
    connection: quinn::Connection,
    arrived: mpsc::Sender<(StreamId, mpsc::Receiver<Read>)>,
    config: StreamConfig,
) {
    let mut readers = JoinSet::new();
    // The connection ending ends the loop: the readers report what it means for their streams.
    while let Ok(recv) = connection.accept_uni().await {
        let index = recv.id().index();
        let Some(index) = u16::try_from(index)
            .ok()
            .filter(|index| *index < config.page_streams)
        else {
            let max = config.page_streams;
            let (refusal, items) = mpsc::channel(1);
            let _ = refusal.try_send(Err(StreamError::TooManyPageStreams { max }));
            let _ = arrived.send((StreamId::Page(max), items)).await;
            break;
        };
        let stream = StreamId::Page(index);
        let items = spawn_reader(&mut readers, stream, recv, &config);
        if arrived.send((stream, items)).await.is_err() {
            break;
        }
    }
    while readers.join_next().await.is_some() {}
}
