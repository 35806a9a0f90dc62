//! Simulator scale benchmark: a 16 GiB VM (4 Mi pages of 4 KiB) over 1 000 content-less
//! epochs, migrated over 10 Gbit/s under every registered strategy, and the same dirty pattern
//! over 8 GiB, to show that a strategy's cost after the first pass follows the dirty pages,
//! not the memory size.
//!
//! `cargo bench -p pagewire-bench --bench sim_scale` (a plain `main`, no criterion: each run
//! takes seconds). Options after `--`: `--gib N` (largest memory, default 16), `--epochs N`
//! (default 1 000), `--threads N` (default: rayon's, one per core), `--start-ms N` (trace time
//! at which the migration starts, default 0; with a start, the 1 s before it is the dirty-log
//! window the history strategies see, e.g. lru-order's first-pass order).
//!
//! Workload (the same at every memory size): epochs every 50 ms; each writes a hot set of 2 000
//! pages and the next 2 000 pages of a sweep over the first 64 Ki pages (256 MiB; about
//! 330 MB/s of writes, a quarter of the link). The migration starts with the trace. Both first
//! passes last long enough for the sweep to cover its region, so the pages left dirty after
//! the first pass are the same set at both sizes.
//!
//! Printed per strategy and memory size: wall-clock seconds of the whole run, of the part after
//! the first pass (from the second `plan` call on), the live rounds, and at the end the peak
//! resident set of the process (`VmHWM` in /proc/self/status; runs overlap on the rayon
//! threads, so it is the peak of up to that many runs at once). Wall times are noisy on a
//! shared machine: compare the two memory sizes of one strategy, measured in the same run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pagewire_bench::sim::{LinkSpec, SimConfig, Timeline, geometry_of, simulate_with};
use pagewire_bench::trace::{ContentMode, TraceHeader, TraceWriter};
use pagewire_codec::select::{self, Decision, Observation, Strategy};
use pagewire_codec::{PageBitmap, PageCount, PageNumber, PageSize};
use rayon::prelude::*;

const HOT_PAGES: u64 = 2_000;
const SWEEP_PAGES: u64 = 2_000;
const SWEEP_REGION: u64 = 1 << 16;
const EPOCH: Duration = Duration::from_millis(50);

struct Options {
    gib: u64,
    epochs: u64,
    threads: Option<usize>,
    start: Duration,
}

fn options() -> Options {
    let mut options = Options {
        gib: 16,
        epochs: 1_000,
        threads: None,
        start: Duration::ZERO,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--gib", Some(v)) if v >= 2 => options.gib = v,
            ("--epochs", Some(v)) if v >= 1 => options.epochs = v,
            ("--threads", Some(v)) if v >= 1 => options.threads = usize::try_from(v).ok(),
            ("--start-ms", Some(v)) => options.start = Duration::from_millis(v),
            // cargo bench passes --bench; anything else is ignored too.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

/// Writes the content-less trace over `pages` pages.
fn write_trace(path: &Path, pages: u64, epochs: u64) {
    let header = TraceHeader::new(PageSize::KIB_4, ContentMode::DirtyOnly, PageCount(pages));
    let mut writer = TraceWriter::create(path, header).expect("create the trace");
    let mut written = Vec::with_capacity((HOT_PAGES + SWEEP_PAGES) as usize);
    for epoch in 0..epochs {
        written.clear();
        // Hot pages spread over the region (every 32nd page), then the sweep.
        written.extend((0..HOT_PAGES).map(|n| n * (SWEEP_REGION / HOT_PAGES)));
        let from = epoch * SWEEP_PAGES % SWEEP_REGION;
        written.extend((from..from + SWEEP_PAGES).map(|n| n % SWEEP_REGION));
        written.sort_unstable();
        written.dedup();
        let time = EPOCH * u32::try_from(epoch + 1).expect("epochs fit u32");
        writer.begin_epoch(time).expect("epoch");
        for &page in &written {
            writer.write_dirty(PageNumber(page)).expect("write");
        }
        writer.end_epoch().expect("epoch end");
    }
    writer.finish().expect("finish the trace");
}

/// A strategy that notes when the first pass ended (its second `plan` call).
struct Timed {
    inner: Box<dyn Strategy>,
    plans: u32,
    first_pass_end: Arc<Mutex<Option<Instant>>>,
}

impl Strategy for Timed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn observe_history(&mut self, before_start: Duration, written: &PageBitmap) {
        self.inner.observe_history(before_start, written);
    }

    fn plan(&mut self, observation: &Observation<'_>) -> Decision {
        self.plans += 1;
        if self.plans == 2 {
            *self.first_pass_end.lock().expect("not poisoned") = Some(Instant::now());
        }
        self.inner.plan(observation)
    }

    fn next_batch(
        &mut self,
        dirty_now: &PageBitmap,
        max: usize,
        out: &mut Vec<PageNumber>,
    ) -> usize {
        self.inner.next_batch(dirty_now, max, out)
    }

    fn on_write(&mut self, page: PageNumber) -> select::WriteAction {
        self.inner.on_write(page)
    }

    fn on_suspend(&mut self, dirty: &PageBitmap) {
        self.inner.on_suspend(dirty);
    }

    fn on_fault(&mut self, page: PageNumber) -> select::FaultAction {
        self.inner.on_fault(page)
    }
}

struct Measured {
    strategy: String,
    gib: u64,
    total: Duration,
    after_first_pass: Duration,
    rounds: u32,
    pages_after: u64,
    simulated: f64,
}

fn run(trace: &Path, timeline: &Arc<Timeline>, name: &str, gib: u64, start: Duration) -> Measured {
    let config = SimConfig {
        start,
        ..SimConfig::new("10gbit".parse::<LinkSpec>().expect("a link"))
    };
    let spec = name.parse().expect("a registered strategy");
    let first_pass_end = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let strategy = Timed {
        inner: select::build(&spec, geometry_of(timeline, &config)).expect("default parameters"),
        plans: 0,
        first_pass_end: Arc::clone(&first_pass_end),
    };
    let result = simulate_with(trace, Arc::clone(timeline), Box::new(strategy), &config)
        .expect("the simulation runs");
    let ended = Instant::now();
    let after = first_pass_end
        .lock()
        .expect("not poisoned")
        .map_or(Duration::ZERO, |at| ended - at);
    Measured {
        strategy: name.to_owned(),
        gib,
        total: ended - started,
        after_first_pass: after,
        rounds: result.iterations,
        pages_after: result.pages_sent - result.rounds.first().map_or(0, |r| r.pages_sent),
        simulated: result.total_seconds,
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let options = options();
    if let Some(threads) = options.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .expect("the global pool is built once");
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("pagewire-sim-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let sizes = [options.gib / 2, options.gib];
    let traces: Vec<(u64, PathBuf, Arc<Timeline>)> = sizes
        .iter()
        .map(|&gib| {
            let path = dir.join(format!("scale-{gib}gib.trace"));
            write_trace(&path, gib << 18, options.epochs);
            let timeline = Arc::new(Timeline::scan(&path).expect("scan the trace"));
            (gib, path, timeline)
        })
        .collect();
    let names = select::names();
    let jobs: Vec<(usize, &str)> = (0..traces.len())
        .flat_map(|t| names.iter().map(move |n| (t, *n)))
        .collect();
    let started = Instant::now();
    let measured: Vec<Measured> = jobs
        .par_iter()
        .map(|&(t, name)| run(&traces[t].1, &traces[t].2, name, traces[t].0, options.start))
        .collect();
    let wall = started.elapsed();
    println!(
        "{} epochs of {} ms, {} pages written each, 10gbit, start at {} ms; wall seconds \
         (threads: {})",
        options.epochs,
        EPOCH.as_millis(),
        HOT_PAGES + SWEEP_PAGES,
        options.start.as_millis(),
        rayon::current_num_threads()
    );
    println!(
        "{:<18} {:>4} {:>8} {:>11} {:>6} {:>10} {:>8}  {:>11}",
        "strategy", "GiB", "run s", "after 1st s", "rounds", "pages after", "sim s", "after ratio"
    );
    for name in names {
        let of = |gib: u64| {
            measured
                .iter()
                .find(|m| m.strategy == *name && m.gib == gib)
        };
        let (Some(small), Some(large)) = (of(sizes[0]), of(sizes[1])) else {
            continue;
        };
        for m in [small, large] {
            let ratio = if m.gib == sizes[1] && small.after_first_pass > Duration::ZERO {
                format!(
                    "{:.2}",
                    m.after_first_pass.as_secs_f64() / small.after_first_pass.as_secs_f64()
                )
            } else {
                String::new()
            };
            println!(
                "{:<18} {:>4} {:>8.3} {:>11.3} {:>6} {:>10} {:>8.2}  {:>11}",
                m.strategy,
                m.gib,
                m.total.as_secs_f64(),
                m.after_first_pass.as_secs_f64(),
                m.rounds,
                m.pages_after,
                m.simulated,
                ratio
            );
        }
    }
    let sum = |gib: u64| -> f64 {
        measured
            .iter()
            .filter(|m| m.gib == gib)
            .map(|m| m.total.as_secs_f64())
            .sum()
    };
    println!(
        "sum of run seconds: {} GiB {:.2}, {} GiB {:.2}; wall for all runs {:.2}s",
        sizes[0],
        sum(sizes[0]),
        sizes[1],
        sum(sizes[1]),
        wall.as_secs_f64()
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS unknown (no /proc/self/status)"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
