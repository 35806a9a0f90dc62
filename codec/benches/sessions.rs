//! The sessions alone: a source and a destination wired in memory (no transport, no
//! encryption), migrating an idle guest with precopy. It measures what the codec side of the
//! pipeline costs per page (select, read, encode, frame, parse, decode, write), next to a
//! plain copy of the same memory in the same run, so the transport's share of the pipeline
//! bench (`pagewire-bench`'s `pipeline`) can be told apart from the sessions'.
//!
//! Cases: `incompressible` (random bytes: every page goes raw), `text` (a repeated phrase with
//! a per-page counter: lz4 or zstd wins) and `zero`.
//!
//! Both sessions run on one thread, and the figures are that thread's CPU time (from
//! `/proc/thread-self/schedstat`, Linux), not wall time; the copy is timed the same way, into
//! memory already touched. CPU time still swells several-fold when neighbours load the
//! machine (shared caches and memory bandwidth): compare figures of one run, or of runs at
//! the same load. The minor page faults per page do not depend on load: they count buffers
//! touched afresh instead of reused.
//!
//! `cargo bench -p pagewire-codec --bench sessions`; `PAGEWIRE_BENCH_MIB` sets the guest
//! (default 64), `PAGEWIRE_BENCH_REPEAT` how many migrations per case (default 3; the fastest
//! is reported). A filter argument runs only the cases whose name contains it
//! (`cargo bench -p pagewire-codec --bench sessions -- text`).

use std::collections::VecDeque;
use std::hint::black_box;
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pagewire_codec::frame::MigrationId;
use pagewire_codec::select::{Geometry, build};
use pagewire_codec::session::{
    DestinationConfig, DestinationSession, Event, SourceConfig, SourceSession, StreamId,
};
use pagewire_codec::{InMemory, PageCount, PageSize};

const PAGE: usize = 4096;
const BUDGET: usize = 256 << 10;
const PAGE_STREAMS: u16 = 2;

/// CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat (Linux)");
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .expect("schedstat's first field: CPU nanoseconds");
    Duration::from_nanos(nanos)
}

/// Minor page faults of the calling thread so far (`/proc/thread-self/stat`, Linux): each is a
/// page of memory touched for the first time since it was mapped, so they count buffers
/// allocated afresh (and zeroed by the kernel) instead of reused.
fn thread_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat (Linux)");
    // The command name, in parentheses, may hold spaces: count fields after it.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .nth(7)
        .and_then(|field| field.parse().ok())
        .expect("stat's minflt field")
}

fn guest(mib: u64, fill: impl Fn(usize, &mut [u8])) -> InMemory {
    let pages = mib * (1 << 20) / PAGE as u64;
    let mut memory = InMemory::new(PageSize::KIB_4, PageCount(pages)).expect("memory");
    for (index, page) in memory.as_bytes_mut().chunks_exact_mut(PAGE).enumerate() {
        fill(index, page);
    }
    memory
}

/// Writes the content of page `index`.
type Fill = fn(usize, &mut [u8]);

fn random(index: usize, page: &mut [u8]) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (index as u64).wrapping_mul(0x1000_0001);
    for word in page.chunks_exact_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
}

fn text(index: usize, page: &mut [u8]) {
    let phrase = format!("object {index}: pagewire moves memory pages over QUIC. ");
    for (at, byte) in page.iter_mut().enumerate() {
        *byte = phrase.as_bytes()[at % phrase.len()];
    }
}

/// What one migration cost the thread.
#[derive(Clone, Copy)]
struct Cost {
    cpu: Duration,
    faults: u64,
}

/// Migrates `memory` once.
fn migrate(memory: InMemory) -> Cost {
    let geometry = Geometry {
        page_count: memory.page_count(),
        page_size: memory.page_size(),
    };
    let id = MigrationId([3; 16]);
    let strategy = build(&"precopy".parse().unwrap(), geometry).expect("strategy");
    let mut config = SourceConfig::new(id, strategy);
    config.page_streams = NonZeroU16::new(PAGE_STREAMS).unwrap();
    let target = InMemory::new(geometry.page_size, geometry.page_count).expect("memory");
    let started = Instant::now();
    let (cpu, faults) = (thread_cpu(), thread_faults());
    let mut source = SourceSession::new(config, memory, Duration::ZERO).expect("source");
    let mut destination =
        DestinationSession::new(DestinationConfig::new(id), target, Duration::ZERO)
            .expect("destination");
    let streams: Vec<StreamId> = source.streams().collect();
    let mut held: Vec<VecDeque<Bytes>> = vec![VecDeque::new(); streams.len()];
    while !(source.is_closed() && destination.is_closed()) {
        let now = started.elapsed();
        let mut moved = false;
        for (queue, &stream) in held.iter_mut().zip(&streams) {
            if let Some(bytes) = source.poll_transmit(now, stream, BUDGET) {
                queue.push_back(bytes);
            }
            while destination.wants_data(stream)
                && let Some(bytes) = queue.pop_front()
            {
                destination
                    .handle_stream_data(now, stream, &bytes)
                    .expect("destination");
                moved = true;
            }
        }
        if let Some(error) = source.take_error() {
            panic!("source: {error}");
        }
        while let Some(bytes) = destination.poll_transmit(now, StreamId::Control, BUDGET) {
            source
                .handle_stream_data(now, StreamId::Control, &bytes)
                .expect("source");
            moved = true;
        }
        while let Some(event) = source.poll_event() {
            moved = true;
            if event == Event::SuspendRequested {
                source
                    .suspended(now, Bytes::from_static(b"cpu"))
                    .expect("suspend");
            }
        }
        while destination.poll_event().is_some() {
            moved = true;
        }
        if !moved && held.iter().all(VecDeque::is_empty) {
            // Only timers can move things on: fire whichever is due.
            let now = started.elapsed();
            if source.poll_timeout().is_some_and(|at| at <= now) {
                source.handle_timeout(now).expect("source timeout");
            }
            if destination.poll_timeout().is_some_and(|at| at <= now) {
                destination
                    .handle_timeout(now)
                    .expect("destination timeout");
            }
        }
    }
    assert!(destination.activated(), "the destination did not activate");
    let cost = Cost {
        cpu: thread_cpu() - cpu,
        faults: thread_faults() - faults,
    };
    assert!(
        source.memory().as_bytes() == destination.memory().as_bytes(),
        "memories differ"
    );
    cost
}

fn copy_time(memory: &InMemory) -> Duration {
    let mut target = vec![1u8; memory.as_bytes().len()];
    let started = thread_cpu();
    for (to, from) in target
        .chunks_exact_mut(PAGE)
        .zip(memory.as_bytes().chunks_exact(PAGE))
    {
        to.copy_from_slice(from);
    }
    black_box(&target);
    thread_cpu() - started
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mib = env_u64("PAGEWIRE_BENCH_MIB", 64);
    let repeat = env_u64("PAGEWIRE_BENCH_REPEAT", 3).max(1);
    println!(
        "sessions in memory (no transport), precopy of an idle {mib} MiB guest, \
         {PAGE_STREAMS} page streams; CPU time of the fastest of {repeat} runs"
    );
    println!(
        "{:<16} {:>10} {:>12} {:>12} {:>10} {:>16}",
        "case", "GB/s CPU", "µs per page", "copy GB/s", "vs copy", "faults per page"
    );
    let cases: [(&str, Fill); 3] = [
        ("incompressible", random),
        ("text", text),
        ("zero", |_, _| {}),
    ];
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .unwrap_or_default();
    for (name, fill) in cases.into_iter().filter(|(name, _)| name.contains(&filter)) {
        let memory = guest(mib, fill);
        let copy = copy_time(&memory);
        let runs: Vec<Cost> = (0..repeat).map(|_| migrate(memory.clone())).collect();
        let best = runs.iter().map(|run| run.cpu).min().expect("one run");
        let faults = runs.iter().map(|run| run.faults).min().expect("one run");
        let bytes = memory.as_bytes().len() as f64;
        let pages = bytes / PAGE as f64;
        println!(
            "{:<16} {:>10.3} {:>12.2} {:>12.2} {:>9.3}x {:>16.2}",
            name,
            bytes / best.as_secs_f64() / 1e9,
            best.as_secs_f64() * 1e6 / pages,
            bytes / copy.as_secs_f64() / 1e9,
            copy.as_secs_f64() / best.as_secs_f64(),
            faults as f64 / pages,
        );
    }
}
