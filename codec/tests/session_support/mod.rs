//! A pair harness for the session tests: a source and a destination connected in memory, one
//! byte pipe per stream, a fake clock, and a deterministic guest that keeps writing.
#![allow(dead_code)] // each test file uses a different part

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::Bytes;
use pagewire_codec::frame::{Frame, FrameDecoder, Limits, MigrationId, StreamHeader};
use pagewire_codec::select::{Geometry, build};
use pagewire_codec::session::{
    DestinationConfig, DestinationSession, Event, SessionError, SourceConfig, SourceSession,
    StreamId,
};
use pagewire_codec::{InMemory, PageCount, PageNumber, PageSize};

pub const MIGRATION: MigrationId = MigrationId([0x5a; 16]);
pub const PAGE_SIZE: PageSize = PageSize::KIB_4;
/// 192 pages: three blocks of page affinity, so three page streams all carry pages.
pub const PAGE_COUNT: PageCount = PageCount(192);
pub const DEVICE_STATE: &[u8] = b"vcpu registers and device state";

/// A small deterministic random generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The guest image at the start: a third zero pages, a third text-like, a third random.
pub fn initial_image(seed: u64) -> InMemory {
    let mut memory = InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap();
    let mut rng = Rng::new(seed);
    let page = PAGE_SIZE.bytes();
    for (index, bytes) in memory.as_bytes_mut().chunks_mut(page).enumerate() {
        match index % 3 {
            0 => {}
            1 => {
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = b"pagewire moves memory pages "[(i + index) % 28];
                }
            }
            _ => bytes.iter_mut().for_each(|b| *b = rng.next() as u8),
        }
    }
    memory
}

/// A guest that writes a few bytes into pages of a hot set (and sometimes anywhere), copies a
/// page onto another (dedup), or zeroes a page.
#[derive(Clone, Debug)]
pub struct Guest {
    rng: Rng,
    pub writes_per_step: u32,
}

impl Guest {
    pub fn new(seed: u64, writes_per_step: u32) -> Guest {
        Guest {
            rng: Rng::new(seed),
            writes_per_step,
        }
    }

    /// One step of writes into the source's memory, each reported to the session.
    pub fn step(&mut self, source: &mut SourceSession<InMemory>) {
        let page_size = PAGE_SIZE.bytes();
        for _ in 0..self.writes_per_step {
            let page = if self.rng.below(4) == 0 {
                self.rng.below(PAGE_COUNT.0)
            } else {
                self.rng.below(24) * 7 % PAGE_COUNT.0
            };
            let start = page as usize * page_size;
            let bytes = source.memory_mut().as_bytes_mut();
            match self.rng.below(16) {
                0 => bytes[start..start + page_size].fill(0),
                1 => {
                    let from = self.rng.below(PAGE_COUNT.0) as usize * page_size;
                    bytes.copy_within(from..from + page_size, start);
                }
                _ => {
                    for _ in 0..1 + self.rng.below(8) {
                        let at = start + self.rng.below(page_size as u64) as usize;
                        bytes[at] = self.rng.next() as u8;
                    }
                }
            }
            source.on_write(PageNumber(page));
        }
    }
}

/// How a pair run is set up.
#[derive(Clone, Debug)]
pub struct PairConfig {
    pub strategy: String,
    pub page_streams: u16,
    pub seed: u64,
    pub writes_per_step: u32,
    /// The most bytes one poll moves on a page stream.
    pub page_budget: usize,
    /// The most bytes one poll moves on the control stream (small, to split frames).
    pub control_budget: usize,
    pub max_steps: u32,
}

impl PairConfig {
    pub fn new(strategy: &str, page_streams: u16) -> PairConfig {
        PairConfig {
            strategy: strategy.to_owned(),
            page_streams,
            seed: 7,
            writes_per_step: 3,
            page_budget: 24 << 10,
            control_budget: 4 << 10,
            max_steps: 20_000,
        }
    }
}

/// A source and a destination wired together.
pub struct Pair {
    pub source: SourceSession<InMemory>,
    pub destination: DestinationSession<InMemory>,
    pub guest: Guest,
    pub now: Duration,
    pub config: PairConfig,
    rng: Rng,
    /// Every event, in order, from each side.
    pub source_events: Vec<Event>,
    pub destination_events: Vec<Event>,
    /// Errors returned by either side.
    pub source_errors: Vec<SessionError>,
    pub destination_errors: Vec<SessionError>,
    /// Every chunk the source sent, in delivery order (for replaying into other sessions).
    pub transcript: Vec<(StreamId, Bytes)>,
    /// The guest is suspended (it writes no more).
    pub suspended: bool,
    /// Whether the harness answers `SuspendRequested` at once (else the test does).
    pub auto_suspend: bool,
}

pub fn source_config(strategy: &str, page_streams: u16) -> SourceConfig {
    let spec = strategy.parse().expect("strategy spec");
    let geometry = Geometry {
        page_count: PAGE_COUNT,
        page_size: PAGE_SIZE,
    };
    let mut config = SourceConfig::new(MIGRATION, build(&spec, geometry).expect("strategy"));
    config.page_streams = NonZeroU16::new(page_streams).expect("at least one page stream");
    config.cache_bytes = 256 << 10;
    config.max_batch_pages = NonZeroU32::new(32).unwrap();
    config.pages_per_range = NonZeroU32::new(16).unwrap();
    config.vm_name = "test-vm".into();
    config
}

pub fn destination_config() -> DestinationConfig {
    let mut config = DestinationConfig::new(MIGRATION);
    config.vm_name = "test-vm".into();
    config
}

impl Pair {
    pub fn new(config: PairConfig) -> Pair {
        Pair::with(
            config.clone(),
            source_config(&config.strategy, config.page_streams),
            destination_config(),
            InMemory::new(PAGE_SIZE, PAGE_COUNT).unwrap(),
        )
    }

    pub fn with(
        config: PairConfig,
        source: SourceConfig,
        destination: DestinationConfig,
        target: InMemory,
    ) -> Pair {
        let now = Duration::ZERO;
        Pair {
            source: SourceSession::new(source, initial_image(config.seed), now).unwrap(),
            destination: DestinationSession::new(destination, target, now).unwrap(),
            guest: Guest::new(config.seed ^ 0xdead_beef, config.writes_per_step),
            rng: Rng::new(config.seed ^ 0x1234),
            now,
            config,
            source_events: Vec::new(),
            destination_events: Vec::new(),
            source_errors: Vec::new(),
            destination_errors: Vec::new(),
            transcript: Vec::new(),
            suspended: false,
            auto_suspend: true,
        }
    }

    /// One step: the guest writes, every stream moves one chunk each way (streams in a random
    /// order, so page streams overtake the control stream), events are handled.
    pub fn step(&mut self, mut hook: impl FnMut(&Event, &mut DestinationSession<InMemory>)) {
        self.now += Duration::from_millis(1);
        let now = self.now;
        if !self.suspended {
            self.guest.step(&mut self.source);
        }
        let mut streams: Vec<StreamId> = self.source.streams().collect();
        let first = self.rng.below(streams.len() as u64) as usize;
        streams.rotate_left(first);
        for stream in streams {
            if !self.destination.wants_data(stream) {
                continue;
            }
            let max = if stream.is_control() {
                self.config.control_budget
            } else {
                self.config.page_budget
            };
            let budget = 1 + self.rng.below(max as u64) as usize;
            if let Some(bytes) = self.source.poll_transmit(now, stream, budget) {
                self.transcript.push((stream, bytes.clone()));
                if let Err(error) = self.destination.handle_stream_data(now, stream, &bytes) {
                    self.destination_errors.push(error);
                }
            }
        }
        if let Some(error) = self.source.take_error() {
            self.source_errors.push(error);
        }
        while let Some(bytes) =
            self.destination
                .poll_transmit(now, StreamId::Control, self.config.control_budget)
        {
            if let Err(error) = self
                .source
                .handle_stream_data(now, StreamId::Control, &bytes)
            {
                self.source_errors.push(error);
            }
        }
        while let Some(event) = self.destination.poll_event() {
            hook(&event, &mut self.destination);
            self.destination_events.push(event);
        }
        while let Some(event) = self.source.poll_event() {
            if event == Event::SuspendRequested && self.auto_suspend {
                self.suspended = true;
                if let Err(error) = self.source.suspended(now, Bytes::from_static(DEVICE_STATE)) {
                    self.source_errors.push(error);
                }
            }
            self.source_events.push(event);
        }
    }

    /// Asserts that neither side reported an error.
    pub fn assert_no_errors(&self) {
        assert!(self.source_errors.is_empty(), "{:?}", self.source_errors);
        assert!(
            self.destination_errors.is_empty(),
            "{:?}",
            self.destination_errors
        );
    }

    /// Steps until both sides are closed (or the step limit).
    pub fn run(&mut self) {
        self.run_with(|_, _| {});
    }

    pub fn run_with(&mut self, mut hook: impl FnMut(&Event, &mut DestinationSession<InMemory>)) {
        for _ in 0..self.config.max_steps {
            if self.source.is_closed() && self.destination.is_closed() {
                return;
            }
            self.step(&mut hook);
        }
        panic!(
            "no end after {} steps: source {:?}, destination {:?}",
            self.config.max_steps, self.source, self.destination
        );
    }
}

/// How many events of one kind a list holds.
pub fn count(events: &[Event], matches: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| matches(e)).count()
}

/// The frames in a transcript of one stream (header skipped), decoded with `limits`.
pub fn frames_of(chunks: impl IntoIterator<Item = Bytes>, limits: Limits) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(&chunk);
        while let Ok(Some(frame)) = decoder.poll() {
            frames.push(frame);
        }
    }
    frames
}

/// Limits over the test memory.
pub fn limits() -> Limits {
    Limits::default().with_memory(
        PAGE_SIZE,
        PAGE_COUNT,
        pagewire_codec::EncodingSet::all_known(),
    )
}

/// A stream: the header, then `frames` (encoded with [`limits`]).
pub fn stream(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    StreamHeader::current().encode(&mut out);
    for frame in frames {
        frame.encode(&mut out, &limits()).unwrap();
    }
    out
}
