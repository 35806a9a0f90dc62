//! `pagewire bench [TRACE] [--strategies ...] [--link ...] [--rtt ...] [--out DIR]`: simulates
//! migrating a trace under every (strategy, link) pair, in parallel, and writes the reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pagewire_bench::report::{BenchReport, rounds_svg, to_csv, to_svg, to_table};
use pagewire_bench::sim::{LinkSpec, RunResult, SimConfig, Timeline, simulate};
use pagewire_bench::trace::{ContentMode, TraceReader, trace_files};
use pagewire_codec::select::{self, StrategySpec};
use rayon::prelude::*;

use super::CliResult;
use super::units::{parse_duration, parse_size};

/// Where `pagewire bench` looks for a trace when none is given (repo-relative).
const SHIPPED_TRACES: &str = "traces";

/// Arguments of `pagewire bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The trace (default: under `traces/`, the recorded trace with the highest dirty rate
    /// relative to its memory size).
    trace: Option<PathBuf>,
    /// Strategies, comma-separated, with parameters (`precopy:max-rounds=10,two-fold`);
    /// default: every registered strategy.
    #[arg(long)]
    strategies: Option<String>,
    /// Link speeds, comma-separated (decimal units: 100mbit, 1gbit, 10gbit).
    #[arg(long, value_delimiter = ',', default_value = "100mbit,1gbit,10gbit")]
    link: Vec<LinkSpec>,
    /// Round-trip time of every link.
    #[arg(long, value_parser = parse_duration, default_value = "1ms")]
    rtt: Duration,
    /// Where the migration starts in the trace: a time (`2s`) or a share of the trace (`25%`).
    #[arg(long, default_value = "25%")]
    start: String,
    /// Replay N copies of the trace's write pattern over disjoint memory.
    #[arg(long, default_value_t = 1)]
    scale: u64,
    /// Device state sent during the downtime.
    #[arg(long, value_parser = parse_size, default_value = "128KiB")]
    device_state: u64,
    /// Size of the encoder's cache of last-sent versions.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    cache: u64,
    /// Directory for bench.txt, bench.csv, bench.json, bench.svg and rounds.svg.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `pagewire bench`.
pub(crate) fn run(args: BenchArgs) -> CliResult {
    let trace = match args.trace.clone() {
        Some(path) => path,
        None => shipped_trace(Path::new(SHIPPED_TRACES))?,
    };
    if args.scale == 0 {
        return Err("--scale must be at least 1".into());
    }
    let specs = match &args.strategies {
        Some(list) => select::parse_list(list)?,
        None => select::names()
            .iter()
            .map(|name| name.parse())
            .collect::<Result<Vec<StrategySpec>, _>>()?,
    };
    let timeline = Arc::new(Timeline::scan(&trace)?);
    let start = parse_start(&args.start, timeline.period())?;
    let links: Vec<LinkSpec> = args
        .link
        .iter()
        .map(|link| LinkSpec {
            rtt: args.rtt,
            ..*link
        })
        .collect();
    let pairs: Vec<(usize, usize)> = (0..links.len())
        .flat_map(|l| (0..specs.len()).map(move |s| (l, s)))
        .collect();
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(pairs.len() as u64)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed_precise} {msg}")
            .expect("a valid template"),
    );
    let results: Vec<_> = pairs
        .par_iter()
        .map(|&(l, s)| {
            let config = SimConfig {
                start,
                scale: args.scale,
                device_state_bytes: args.device_state,
                cache_bytes: args.cache,
                ..SimConfig::new(links[l])
            };
            let result = simulate(&trace, Arc::clone(&timeline), &specs[s], &config);
            progress.inc(1);
            progress.set_message(format!("{} over {}", specs[s].name, links[l]));
            // Columns are labelled by the whole spec, so that one strategy under several
            // parameter sets gets one column each.
            result
                .map(|run| RunResult {
                    strategy: specs[s].to_string(),
                    ..run
                })
                .map_err(|error| format!("{} over {}: {error}", specs[s], links[l]))
        })
        .collect();
    progress.finish_and_clear();
    let runs = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let content = timeline.content == ContentMode::Full;
    let report = BenchReport {
        trace: trace
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        memory_bytes: timeline.memory_bytes() * args.scale,
        scale: args.scale,
        content,
        strategies: runs
            .iter()
            .take(specs.len())
            .map(|run| run.strategy.clone())
            .collect(),
        links: links.iter().map(ToString::to_string).collect(),
        notes: notes(&args, start, content, &runs),
        runs,
    };
    std::fs::create_dir_all(&args.out)?;
    let table = to_table(&report);
    std::fs::write(args.out.join("bench.txt"), &table)?;
    std::fs::write(args.out.join("bench.csv"), to_csv(&report))?;
    std::fs::write(
        args.out.join("bench.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("bench.svg"), to_svg(&report)?)?;
    std::fs::write(args.out.join("rounds.svg"), rounds_svg(&report)?)?;
    print!("{table}");
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(())
}

/// The default trace in `dir`: among the `*.trace` files, recorded ones (no `generator` in
/// their metadata) before generated ones, and among those the highest dirty rate relative to
/// memory size (pages written per second over page count): strategies differ most there.
fn shipped_trace(dir: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let traces = trace_files(dir)
        .map_err(|error| format!("no TRACE given and {}: {error}", dir.display()))?;
    let mut best: Option<((bool, f64), PathBuf)> = None;
    for path in traces {
        let Ok(reader) = TraceReader::open(&path) else {
            continue;
        };
        let recorded = !reader.header().metadata.contains_key("generator");
        let Ok(timeline) = Timeline::scan(&path) else {
            continue;
        };
        let writes: u64 = timeline.writes.iter().sum();
        let rate =
            writes as f64 / timeline.period().as_secs_f64() / timeline.page_count.0.max(1) as f64;
        let key = (recorded, rate);
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, path));
        }
    }
    best.map(|(_, path)| path).ok_or_else(|| {
        format!(
            "no TRACE given and no readable *.trace file in {}",
            dir.display()
        )
        .into()
    })
}

/// Parses `--start`: a duration, or a percentage of the trace's length.
fn parse_start(text: &str, period: Duration) -> Result<Duration, String> {
    match text.strip_suffix('%') {
        Some(percent) => {
            let percent: f64 = percent
                .parse()
                .map_err(|_| format!("bad --start {text:?}"))?;
            if !(0.0..=100.0).contains(&percent) {
                return Err(format!("--start {text:?} is not between 0% and 100%"));
            }
            Ok(period.mul_f64(percent / 100.0))
        }
        None => parse_duration(text),
    }
}

/// What the reader of the report must know about how it was made.
fn notes(
    args: &BenchArgs,
    start: Duration,
    content: bool,
    runs: &[pagewire_bench::sim::RunResult],
) -> Vec<String> {
    let mut notes = vec![format!(
        "migration starts {:.3}s into the trace; simulated time, not measured",
        start.as_secs_f64()
    )];
    if args.scale > 1 {
        notes.push(format!(
            "memory scaled: {} copies of the trace's write pattern over disjoint memory",
            args.scale
        ));
    }
    if !content {
        notes.push(
            "content-less trace: size model, every page sent raw (pfn delta + tag + page) in \
             real PAGE_BATCH frames"
                .into(),
        );
    }
    let replayed: Vec<String> = runs
        .iter()
        .filter(|run| run.trace_replays > 0)
        .map(|run| format!("{}@{} x{}", run.strategy, run.link, run.trace_replays))
        .collect();
    if !replayed.is_empty() {
        notes.push(format!(
            "migration outlasted the trace, its writes replayed from the first epoch on the \
             current memory (no return to the initial image): {}",
            replayed.join(", ")
        ));
    }
    notes.push(
        "not simulated: mirror's synchronous-write stalls, encoder CPU time, parallel streams"
            .into(),
    );
    notes
}
