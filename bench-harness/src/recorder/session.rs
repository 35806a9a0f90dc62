//! The epoch loop: initial image, then one scan per interval until the target exits or a limit
//! is reached.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::time::{Duration, Instant};

use super::RecorderError;
use super::layout::Layout;
use super::maps::{WritableRange, parse_writable_ranges};
use super::overhead::{OverheadReport, ScanCost};
use super::sink::{EpochPages, EpochSink};
use super::snapshot::{ScanCounts, ScanError, Scanner};
use super::target::{ProcessId, Target, TargetExit};

/// How to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// Time between scans.
    pub interval: Duration,
    /// Stop the target (`SIGSTOP`) during each scan for an exact snapshot.
    pub freeze: bool,
    /// Cap on the recorded memory, in bytes: recording stops when the process has had more
    /// distinct pages present than this.
    pub max_memory: u64,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(100),
            freeze: false,
            max_memory: 1 << 30,
        }
    }
}

/// When [`Recorder::run`] stops on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Stop after this much time from the initial scan.
    pub duration: Option<Duration>,
    /// Stop after this many epochs.
    pub max_epochs: Option<u64>,
}

/// Why recording ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The target exited.
    TargetExited(TargetExit),
    /// `--duration` elapsed.
    Duration,
    /// `--max-epochs` epochs were recorded.
    EpochLimit,
    /// The process had more distinct pages present than `--max-memory` allows; the epoch in
    /// progress was dropped.
    MemoryCap {
        /// The cap in bytes.
        limit_bytes: u64,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TargetExited(TargetExit::Child(status)) => {
                write!(f, "the target exited ({status})")
            }
            Self::TargetExited(TargetExit::Attached) => f.write_str("the target exited"),
            Self::Duration => f.write_str("the duration limit was reached"),
            Self::EpochLimit => f.write_str("the epoch limit was reached"),
            Self::MemoryCap { limit_bytes } => write!(
                f,
                "the process's writable memory grew past --max-memory ({} MiB); raise it to \
                 record more",
                limit_bytes >> 20
            ),
        }
    }
}

/// What one epoch recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSummary {
    /// 1-based epoch index (0 is the initial image).
    pub index: u64,
    /// Time of the scan from the start of the recording.
    pub offset: Duration,
    /// Cost and counts of the scan.
    pub cost: ScanCost,
}

/// The result of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The scan was recorded.
    Recorded(EpochSummary),
    /// Nothing was recorded: recording is over.
    Stopped(StopReason),
}

/// Records one target, one scan at a time ([`Recorder::scan_initial`],
/// [`Recorder::record_epoch`]) or on a timer ([`Recorder::run`]).
#[derive(Debug)]
pub struct Recorder {
    target: Target,
    options: RecordOptions,
    page_size: usize,
    layout: Layout,
    scanner: Scanner,
    epoch: EpochPages,
    ranges: Vec<WritableRange>,
    start: Option<Instant>,
    overhead: OverheadReport,
}

/// Opens `/proc/PID/mem` and `/proc/PID/pagemap`.
fn open_proc_files(pid: ProcessId) -> Result<(File, File), RecorderError> {
    let open = |name: &str| {
        let path = pid.proc_path(name);
        File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound
                || source.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32)
            {
                RecorderError::NoSuchProcess { pid }
            } else {
                RecorderError::proc_access(path, source)
            }
        })
    };
    Ok((open("mem")?, open("pagemap")?))
}

/// The machine's page size.
pub fn system_page_size() -> Result<usize, RecorderError> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(size)) if size > 0 => Ok(size as usize),
        _ => Err(RecorderError::PageSize),
    }
}

impl Recorder {
    /// Starts `command` and prepares to record it.
    pub fn spawn(command: &[OsString], options: RecordOptions) -> Result<Self, RecorderError> {
        Self::with_target(Target::spawn(command)?, options)
    }

    /// Prepares to record the running process `pid`.
    pub fn attach(pid: ProcessId, options: RecordOptions) -> Result<Self, RecorderError> {
        Self::with_target(Target::attach(pid)?, options)
    }

    /// Opens the target's `/proc` files; on failure a child we started is ended.
    fn with_target(mut target: Target, options: RecordOptions) -> Result<Self, RecorderError> {
        let opened = open_proc_files(target.pid())
            .and_then(|(mem, pagemap)| Ok((mem, pagemap, system_page_size()?)));
        let (mem, pagemap, page_size) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                target.terminate();
                return Err(error);
            }
        };
        Ok(Self {
            target,
            layout: Layout::new(options.max_memory / page_size as u64),
            scanner: Scanner::new(mem, pagemap, page_size),
            epoch: EpochPages::new(page_size),
            ranges: Vec::new(),
            start: None,
            overhead: OverheadReport {
                interval: options.interval,
                ..OverheadReport::default()
            },
            options,
            page_size,
        })
    }

    /// The target's pid.
    pub fn pid(&self) -> ProcessId {
        self.target.pid()
    }

    /// Bytes per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The page numbering so far (page count, live and retired pages).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The recorder's cost so far.
    pub fn overhead(&self) -> &OverheadReport {
        &self.overhead
    }

    /// The options in use.
    pub fn options(&self) -> &RecordOptions {
        &self.options
    }

    /// Scans the whole writable memory once and gives its non-zero pages to `sink` as the
    /// initial image. Starts the recording clock.
    pub fn scan_initial(&mut self, sink: &mut dyn EpochSink) -> Result<Step, RecorderError> {
        if let Some(exit) = self.target.exit() {
            return Ok(Step::Stopped(StopReason::TargetExited(exit)));
        }
        let start = Instant::now();
        self.start = Some(start);
        let mut emit = |page, content: &[u8]| sink.initial_page(page, content);
        let cost = match self.scan(&mut emit)? {
            Ok(cost) => cost,
            Err(reason) => return Ok(Step::Stopped(reason)),
        };
        self.overhead.initial = cost;
        Ok(Step::Recorded(EpochSummary {
            index: 0,
            offset: Duration::ZERO,
            cost,
        }))
    }

    /// Scans once and gives the pages changed since the previous scan to `sink` as one epoch.
    ///
    /// If the target exited (before or during the scan) nothing is recorded and the result is
    /// [`Step::Stopped`].
    pub fn record_epoch(&mut self, sink: &mut dyn EpochSink) -> Result<Step, RecorderError> {
        let start = *self.start.get_or_insert_with(Instant::now);
        if let Some(exit) = self.target.exit() {
            return Ok(Step::Stopped(StopReason::TargetExited(exit)));
        }
        let offset = start.elapsed();
        let mut epoch = std::mem::take(&mut self.epoch);
        epoch.clear();
        let mut emit = |page, content: &[u8]| {
            epoch.push(page, content);
            Ok(())
        };
        let scanned = self.scan(&mut emit);
        let result = match scanned {
            Err(error) => Err(error),
            Ok(Err(reason)) => Ok(Step::Stopped(reason)),
            // A scan that raced with the exit saw a partial or empty memory: drop it.
            Ok(Ok(_)) if self.target.exit().is_some() => Ok(Step::Stopped(
                StopReason::TargetExited(self.target.exit().expect("exit seen just above")),
            )),
            Ok(Ok(cost)) => match sink.epoch(offset, &epoch) {
                Ok(()) => {
                    self.overhead.add_epoch(cost);
                    Ok(Step::Recorded(EpochSummary {
                        index: self.overhead.epochs,
                        offset,
                        cost,
                    }))
                }
                Err(error) => Err(RecorderError::Sink(error)),
            },
        };
        self.epoch = epoch;
        result
    }

    /// One scan, frozen if asked. The outer error is fatal; the inner one ends the recording.
    fn scan(
        &mut self,
        emit: &mut dyn FnMut(pagewire_codec::PageNumber, &[u8]) -> io::Result<()>,
    ) -> Result<Result<ScanCost, StopReason>, RecorderError> {
        let pid = self.target.pid();
        let started = Instant::now();
        let frozen = if self.options.freeze {
            match self.target.freeze() {
                Ok(frozen) => Some(frozen),
                Err(RecorderError::NoSuchProcess { .. }) => return Ok(Err(self.exited())),
                Err(error) => return Err(error),
            }
        } else {
            None
        };
        match open_proc_files(pid) {
            Ok((mem, pagemap)) => self.scanner.reopen(mem, pagemap),
            Err(RecorderError::NoSuchProcess { .. }) => return Ok(Err(self.exited())),
            Err(error) => return Err(error),
        }
        let maps_path = pid.proc_path("maps");
        let maps = match fs::read_to_string(&maps_path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Err(self.exited())),
            Err(error) if error.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) => {
                return Ok(Err(self.exited()));
            }
            Err(source) => return Err(RecorderError::proc_access(maps_path, source)),
        };
        self.ranges = parse_writable_ranges(&maps, self.page_size as u64)
            .map_err(|source| RecorderError::Maps { pid, source })?;
        self.layout.retain_live(&self.ranges);
        let counts = self.scanner.scan(&self.ranges, &mut self.layout, emit);
        let frozen_time = frozen.map(|guard| {
            drop(guard);
            started.elapsed()
        });
        let counts: ScanCounts = match counts {
            Ok(counts) => counts,
            Err(ScanError::PageLimit(_)) => {
                return Ok(Err(StopReason::MemoryCap {
                    limit_bytes: self.options.max_memory,
                }));
            }
            Err(ScanError::Emit(error)) => return Err(RecorderError::Sink(error)),
            Err(source) => return Err(RecorderError::Scan { pid, source }),
        };
        Ok(Ok(ScanCost {
            scan_time: started.elapsed(),
            frozen_time: frozen_time.unwrap_or_default(),
            counts,
        }))
    }

    /// The stop reason once the target is gone.
    fn exited(&mut self) -> StopReason {
        StopReason::TargetExited(self.target.exit().unwrap_or(TargetExit::Attached))
    }

    /// Records the initial image (unless [`Recorder::scan_initial`] already did) and then one
    /// epoch per interval until the target exits or a limit is reached. A scan longer than the interval skips the missed ticks (counted as
    /// overruns).
    pub fn run(
        &mut self,
        sink: &mut dyn EpochSink,
        limits: Limits,
    ) -> Result<StopReason, RecorderError> {
        if self.start.is_none() {
            if let Step::Stopped(reason) = self.scan_initial(sink)? {
                return Ok(reason);
            }
        }
        let start = self.start.expect("set by the initial scan");
        let interval = self.options.interval.max(Duration::from_micros(100));
        let mut tick: u32 = 1;
        loop {
            if limits
                .max_epochs
                .is_some_and(|max| self.overhead.epochs >= max)
            {
                return Ok(StopReason::EpochLimit);
            }
            let due = interval * tick;
            if limits.duration.is_some_and(|limit| due > limit) {
                return Ok(StopReason::Duration);
            }
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            if let Step::Stopped(reason) = self.record_epoch(sink)? {
                return Ok(reason);
            }
            let next = (start.elapsed().as_nanos() / interval.as_nanos()) as u32 + 1;
            self.overhead.overruns += u64::from(next.saturating_sub(tick + 1));
            tick = next.max(tick + 1);
        }
    }

    /// Ends the recording: a child we started that is still running gets `SIGTERM` and is
    /// waited for; an attached process is left running. Returns the cost report.
    pub fn finish(mut self) -> OverheadReport {
        self.target.terminate();
        self.overhead
    }

    /// `key = value` pairs describing how this recording was made, for the trace header.
    pub fn describe(&self) -> Vec<(String, String)> {
        let command = self.target.command_line().to_owned();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        [
            ("source", "pagewire trace record".to_owned()),
            ("command", command),
            ("kernel", kernel.trim().to_owned()),
            (
                "interval_ms",
                format!("{}", self.options.interval.as_secs_f64() * 1e3),
            ),
            (
                "method",
                "content diffing: each epoch, present pages of writable private mappings \
                 (/proc/PID/maps, /proc/PID/pagemap) are read through /proc/PID/mem and their \
                 xxh3-64 digests compared with the previous scan"
                    .to_owned(),
            ),
            (
                "unchanged_writes",
                "not visible: a page written with the content it already had is not recorded; \
                 several writes to a page within an epoch appear as one"
                    .to_owned(),
            ),
            (
                "snapshot",
                if self.options.freeze {
                    "exact: the target was stopped (SIGSTOP) during each scan".to_owned()
                } else {
                    "racy: the target ran during each scan, so a page written during a scan may \
                     appear in that epoch or the next"
                        .to_owned()
                },
            ),
            (
                "page_numbers",
                "assigned in order of first appearance; pages of an unmapped region are no \
                 longer written, a region mapped again gets new numbers"
                    .to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
