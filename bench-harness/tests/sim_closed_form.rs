//! The simulator against cases whose result can be worked out by hand, and determinism.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::HotColdTrace;
use pagewire_bench::sim::{Guest, LinkSpec, SimConfig, Timeline, simulate};
use pagewire_bench::trace::{ContentMode, TraceHeader, TraceWriter};
use pagewire_codec::{PageCount, PageNumber, PageSize};

const PAGE: u64 = 4096;

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pagewire-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A content-less trace of `pages` pages: 100 epochs 100 ms apart, each writing `written`.
fn dirty_trace(name: &str, pages: u64, written: std::ops::Range<u64>) -> PathBuf {
    let path = temp_path(name);
    let header = TraceHeader::new(PageSize::KIB_4, ContentMode::DirtyOnly, PageCount(pages));
    let mut writer = TraceWriter::create(&path, header).unwrap();
    for epoch in 1..=100u64 {
        writer
            .begin_epoch(Duration::from_millis(100 * epoch))
            .unwrap();
        for page in written.clone() {
            writer.write_dirty(PageNumber(page)).unwrap();
        }
        writer.end_epoch().unwrap();
    }
    writer.finish().unwrap();
    path
}

fn run(path: &Path, strategy: &str, config: &SimConfig) -> pagewire_bench::sim::RunResult {
    let timeline = Arc::new(Timeline::scan(path).unwrap());
    simulate(path, timeline, &strategy.parse().unwrap(), config).unwrap()
}

fn varint_len(value: u64) -> u64 {
    let mut len = 1;
    let mut rest = value >> 7;
    while rest > 0 {
        len += 1;
        rest >>= 7;
    }
    len
}

/// Page-record bytes of sending pages `0..pages` raw in frames of 64: each frame's first record
/// carries its pfn as the delta, the others a one-byte delta; raw bodies are a tag + the page.
fn raw_data_bytes(pages: u64) -> u64 {
    (0..pages)
        .map(|p| if p % 64 == 0 { varint_len(p) } else { 1 } + 1 + PAGE)
        .sum()
}

/// Frame sizes from spec/wire.md: an 8-byte frame header plus each payload.
mod frame {
    /// HELLO (49-byte payload, no VM name).
    pub const HELLO: u64 = 8 + 49;
    /// ITERATION_START (iteration u64).
    pub const ITERATION_START: u64 = 8 + 8;
    /// ITERATION_END (iteration, batches, pages: u64 each).
    pub const ITERATION_END: u64 = 8 + 24;
    /// A PAGE_BATCH's header and fixed payload (iteration u64, record count u32).
    pub const BATCH_OVERHEAD: u64 = 8 + 12;
    /// SUSPEND, ACTIVATE (empty payloads).
    pub const EMPTY: u64 = 8;
    /// DEVICE_STATE overhead of one chunk (total u64, offset u64).
    pub const DEVICE_STATE_OVERHEAD: u64 = 8 + 16;
    /// COMMIT_DIGEST of a memory of at most 4096 pages: pages_per_range, range_count, one digest.
    pub const COMMIT_ONE_RANGE: u64 = 8 + 8 + 16;
}

/// Control bytes of a migration whose pages all went in one iteration of `batches` frames:
/// hello, the iteration, suspend, device-state overhead, commit digest, activate.
fn one_iteration_control(batches: u64) -> u64 {
    frame::HELLO
        + frame::ITERATION_START
        + batches * frame::BATCH_OVERHEAD
        + frame::ITERATION_END
        + frame::EMPTY
        + frame::DEVICE_STATE_OVERHEAD
        + frame::COMMIT_ONE_RANGE
        + frame::EMPTY
}

fn link(bits: u64, rtt_ms: u64) -> LinkSpec {
    LinkSpec::from_bits(bits, Duration::from_millis(rtt_ms))
}

#[test]
fn idle_vm_stop_and_copy_takes_memory_over_bandwidth_plus_overheads() {
    let pages = 1024;
    let path = dirty_trace("idle.trace", pages, 0..0);
    let config = SimConfig::new(link(1_000_000_000, 1));
    let result = run(&path, "stop-and-copy", &config);
    let data = raw_data_bytes(pages);
    assert_eq!(result.data_bytes, data);
    let control = one_iteration_control(pages.div_ceil(64));
    assert_eq!(result.control_bytes, control);
    assert_eq!(result.device_bytes, 128 << 10);
    // The destination's HELLO (57), RESERVATION (12), COMMIT_ANSWER (9) and ACTIVATED (8).
    assert_eq!(result.return_bytes, 57 + 12 + 9 + 8);
    let wire = data + control + (128 << 10);
    // At 125 MB/s a byte takes exactly 8 ns; plus the hello and commit round trips.
    let expected = Duration::from_nanos(2_000_000 + wire * 8);
    assert_eq!(Duration::from_secs_f64(result.total_seconds), expected);
    // Downtime: everything after the hello and its round trip.
    assert_eq!(
        Duration::from_secs_f64(result.downtime_seconds),
        expected - Duration::from_nanos(1_000_000 + frame::HELLO * 8)
    );
    assert_eq!(result.pages_sent, pages);
    assert_eq!(result.iterations, 0);
    // Memory over bandwidth is the bulk of the time: overheads are about 0.1%.
    let ideal = (pages * PAGE) as f64 / 125e6;
    assert!(result.total_seconds > ideal && result.total_seconds < ideal * 1.2 + 0.002);
}

#[test]
fn idle_vm_precopy_sends_memory_once_with_no_stop_copy_pages() {
    let pages = 1024;
    let path = dirty_trace("idle-precopy.trace", pages, 0..0);
    let config = SimConfig::new(link(1_000_000_000, 1));
    let result = run(&path, "precopy", &config);
    assert_eq!(result.iterations, 1);
    assert_eq!(result.stop_copy_pages, 0);
    assert_eq!(result.data_bytes, raw_data_bytes(pages));
    // The pages went in round 0; stop-and-copy opens no iteration for zero pages.
    assert_eq!(result.control_bytes, one_iteration_control(16));
    // One round trip before, one after; everything else is bytes at 125 MB/s (8 ns a byte).
    let wire = result.data_bytes + result.control_bytes + (128 << 10);
    assert_eq!(
        Duration::from_secs_f64(result.total_seconds),
        Duration::from_nanos(2_000_000 + wire * 8)
    );
}

#[test]
fn vm_dirtying_faster_than_the_link_makes_precopy_hit_its_round_cap() {
    // 400 pages (1.6 MB) rewritten every 100 ms: 16 MB/s against a 10 Mbit/s (1.25 MB/s) link.
    let path = dirty_trace("hot.trace", 1024, 0..400);
    let config = SimConfig::new(link(10_000_000, 1));
    let result = run(&path, "precopy:max-rounds=6,max-factor=0", &config);
    assert_eq!(result.stop_reason, "RoundLimit");
    assert_eq!(result.iterations, 6);
    // Every round after the first resends (about) the hot set, and stop-and-copy sends it again.
    assert!(result.stop_copy_pages >= 390, "{}", result.stop_copy_pages);
    assert!(result.downtime_seconds > 1.0, "{}", result.downtime_seconds);
    assert_eq!(result.trace_replays, 0);
}

#[test]
fn a_migration_outlasting_the_trace_replays_it() {
    // 4 MiB at 1 Mbit/s takes about 34 s; the trace covers 10 s.
    let path = dirty_trace("short.trace", 1024, 0..10);
    let result = run(&path, "precopy", &SimConfig::new(link(1_000_000, 1)));
    assert!(result.total_seconds > 30.0, "{}", result.total_seconds);
    assert_eq!(result.trace_replays, 3);
    assert_eq!(result.stop_reason, "FewPagesLeft");
}

#[test]
fn a_replay_continues_the_write_pattern_without_a_burst() {
    // Epochs at 100, 200, 300 ms writing pages {1}, {2}, {3}. After the trace's end (300 ms)
    // the epochs start over: nothing is written at the wrap, page 1 again at 400 ms.
    let path = temp_path("pattern.trace");
    let header = TraceHeader::new(PageSize::KIB_4, ContentMode::DirtyOnly, PageCount(8));
    let mut writer = TraceWriter::create(&path, header).unwrap();
    for page in 1..=3u64 {
        writer
            .begin_epoch(Duration::from_millis(100 * page))
            .unwrap();
        writer.write_dirty(PageNumber(page)).unwrap();
        writer.end_epoch().unwrap();
    }
    writer.finish().unwrap();
    let timeline = Arc::new(Timeline::scan(&path).unwrap());
    let mut guest = Guest::open(&path, timeline, 1).unwrap();
    let mut written = Vec::new();
    let mut advance = |guest: &mut Guest, millis: u64| {
        written.clear();
        guest
            .advance_to(Duration::from_millis(millis), &mut |page| {
                written.push(page.0)
            })
            .unwrap();
        guest.harvest();
        written.clone()
    };
    assert_eq!(advance(&mut guest, 300), [1, 2, 3]);
    assert_eq!(advance(&mut guest, 350), Vec::<u64>::new());
    assert_eq!(guest.replays(), 1);
    assert_eq!(advance(&mut guest, 400), [1]);
    assert_eq!(advance(&mut guest, 600), [2, 3]);
}

/// Pages of the content trace: few, because debug-mode encoding costs about a millisecond a
/// page and every strategy runs twice.
const CONTENT_PAGES: u64 = 128;

/// A content trace: `CONTENT_PAGES` pages, Zipf writes of ~100 KB/s (2 pages every
/// 100 ms), 40% identical rewrites.
fn content_trace(name: &str) -> PathBuf {
    let path = temp_path(name);
    HotColdTrace {
        pages: CONTENT_PAGES,
        interval: Duration::from_millis(100),
        epochs: 30,
        bytes_per_second: 1e5,
        identical_share: 0.4,
        seed: 7,
    }
    .write(&path);
    path
}

#[test]
fn same_inputs_give_the_same_result_for_every_strategy() {
    let path = content_trace("content.trace");
    // A 4 Mbit/s link: the copy spans several 100 ms epochs, so pages get dirty during it.
    let mut config = SimConfig::new(link(4_000_000, 1));
    config.start = Duration::from_secs(1);
    for name in pagewire_codec::select::names() {
        let first = run(&path, name, &config);
        let second = run(&path, name, &config);
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&second).unwrap(),
            "{name}"
        );
        assert!(first.total_seconds > 0.0, "{name}");
        assert!(first.encoder.is_some(), "{name}");
        // Every page reaches the destination at least once.
        assert!(
            first.pages_sent >= CONTENT_PAGES || first.encoder.as_ref().unwrap().unchanged > 0,
            "{name}"
        );
    }
}
