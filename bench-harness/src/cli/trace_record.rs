//! `pagewire trace record`: records a real process's writes into a trace (see
//! `pagewire_bench::recorder`).

use std::ffi::OsString;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use pagewire_bench::recorder::background::BackgroundSink;
use pagewire_bench::recorder::trace_file::{TraceFileSink, add_metadata};
use pagewire_bench::recorder::units::{parse_duration, parse_size};
use pagewire_bench::recorder::{Limits, ProcessId, RecordOptions, Recorder, TrackerChoice};
use pagewire_bench::trace::{ContentMode, TraceHeader, TraceWriter, WriterOptions};
use pagewire_codec::{PageCount, PageSize};

use super::CliResult;

/// Arguments of `pagewire trace record`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  pagewire trace record -o ls.trace -- ls -lR /usr\n  \
                  pagewire trace record --pid 4242 --duration 10s --freeze -o redis.trace\n\n\
                  Trackers: `uffd` (exact: pages written, including rewrites with unchanged \
                  content, from userfaultfd write-protection and PAGEMAP_SCAN; Linux 6.7+; the \
                  program must load the preload library, which `-- CMD` arranges and \
                  `pagewire trace preload-library` writes out for --pid targets), `diff` \
                  (content diffing of every present page), `auto` (uffd if available, else \
                  diff, saying why)."
)]
pub(crate) struct RecordArgs {
    /// The trace file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Time between scans (epoch length), e.g. 100ms.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    interval: Duration,
    /// Stop the target (SIGSTOP) during each scan for an exact snapshot; resume it after.
    #[arg(long)]
    freeze: bool,
    /// How written pages are found: uffd, diff or auto.
    #[arg(long, default_value = "auto")]
    tracker: TrackerChoice,
    /// Record the running process PID instead of starting a command.
    #[arg(long, conflicts_with = "command")]
    pid: Option<u32>,
    /// Stop after this long, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many epochs.
    #[arg(long)]
    max_epochs: Option<u64>,
    /// Stop when the process has had more distinct writable pages present than this, e.g.
    /// 512MiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    max_memory: u64,
    /// The program to start and record, with its arguments (after `--`).
    #[arg(last = true, required_unless_present = "pid")]
    command: Vec<OsString>,
}

/// zstd level while recording: the cheapest that keeps the file small enough. When recording
/// ends the trace is rewritten at the default level (to add the recorder's figures to its
/// header), so the level costs nothing in the final file.
const RECORDING_ZSTD_LEVEL: i32 = 1;

/// Runs `pagewire trace record`.
pub(crate) fn run(args: RecordArgs) -> CliResult {
    let options = RecordOptions {
        interval: args.interval,
        freeze: args.freeze,
        max_memory: args.max_memory,
        tracker: args.tracker,
    };
    let mut recorder = match args.pid {
        Some(pid) => Recorder::attach(ProcessId(pid), options)?,
        None => Recorder::spawn(&args.command, options)?,
    };
    let page_size = PageSize::new(recorder.page_size() as u32)?;
    let mut header = TraceHeader::new(page_size, ContentMode::Full, PageCount(0));
    header.metadata.extend(recorder.describe());
    let limits = Limits {
        duration: args.duration,
        max_epochs: args.max_epochs,
    };
    let writer = TraceWriter::with_options(
        BufWriter::with_capacity(1 << 20, File::create(&args.output)?),
        header,
        WriterOptions {
            zstd_level: RECORDING_ZSTD_LEVEL,
            ..WriterOptions::default()
        },
    )?;
    // Encoding (deltas and zstd) runs on a thread of its own so that scans keep their period.
    let mut sink = BackgroundSink::spawn(TraceFileSink::new(writer), recorder.page_size())?;
    if let Some(reason) = recorder.tracker_fallback() {
        eprintln!("exact write tracking unavailable, using content diffing: {reason}");
    }
    eprintln!(
        "recording pid {} every {} ms into {} ({})",
        recorder.pid(),
        args.interval.as_millis(),
        args.output.display(),
        if recorder.tracks_writes() {
            "exact write tracking"
        } else {
            "content diffing"
        }
    );
    let outcome = recorder.run(&mut sink, limits);
    let page_count = recorder.layout().page_count();
    let retired = recorder.layout().retired_pages();
    let untracked = recorder.untracked_ranges();
    let recorder_tracked = recorder.tracks_writes();
    let overhead = recorder.finish();
    // Whatever stopped the recording, close the trace so the epochs so far stay readable.
    let (file_sink, encoder) = sink.finish()?;
    let (_, summary) = file_sink.finish(page_count)?;
    let reason = outcome?;
    eprintln!("stopped: {reason}");
    let mut extra = overhead.metadata();
    extra.extend(encoder.metadata());
    extra.push(("recorder.stopped".to_owned(), reason.to_string()));
    extra.push(("recorder.retired_pages".to_owned(), retired.to_string()));
    if recorder_tracked {
        extra.push((
            "recorder.untracked_ranges".to_owned(),
            untracked.to_string(),
        ));
    }
    add_metadata(&args.output, extra)?;
    eprintln!(
        "trace: {} epochs over {:.2} s, {} pages ({} MiB), {} pages written ({} of them \
         distinct, {} with unchanged content), {} pages of unmapped regions retired",
        summary.epochs,
        summary.duration.as_secs_f64(),
        summary.page_count.0,
        (summary.page_count.0 * page_size.bytes() as u64) >> 20,
        summary.pages_written,
        summary.distinct_pages_written,
        summary.pages_unchanged,
        retired,
    );
    eprintln!(
        "recorder overhead:\n{overhead}\nencoder thread: {:.1} ms CPU, {:.2} us per page",
        encoder.cpu.as_secs_f64() * 1e3,
        encoder.micros_per_page()
    );
    Ok(())
}

/// Arguments of `pagewire trace preload-library`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (record a server started elsewhere with exact write tracking):\n  \
                  pagewire trace preload-library -o /some/dir/libpagewire_uffd_preload.so\n  \
                  LD_PRELOAD=/some/dir/libpagewire_uffd_preload.so redis-server &\n  \
                  pagewire trace record --tracker uffd --pid $! -o redis.trace"
)]
pub(crate) struct PreloadArgs {
    /// Where to write the library.
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs `pagewire trace preload-library`.
pub(crate) fn write_preload(args: PreloadArgs) -> CliResult {
    pagewire_bench::recorder::uffd::preload::write_library(&args.output)
        .map_err(|error| format!("writing {}: {error}", args.output.display()))?;
    Ok(())
}
