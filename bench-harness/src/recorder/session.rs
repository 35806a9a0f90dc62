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
use super::phases::{thread_cpu_time, timed_with_cpu};
use super::sink::{EpochPages, EpochSink};
use super::snapshot::{ScanCounts, ScanError, Scanner};
use super::target::{ProcessId, Target, TargetExit};
use super::uffd::{self, PreloadLibrary, UffdError, WriteTracker};
use super::written::{RunBuffers, scan_written};

/// How long a program started with the preload library may take to create its userfaultfd.
const UFFD_WAIT: Duration = Duration::from_secs(5);

/// How the recorder learns which pages were written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrackerChoice {
    /// Content diffing: every present page is read and hashed each epoch.
    #[default]
    Diff,
    /// Exact write tracking (userfaultfd write-protection and `PAGEMAP_SCAN`, see
    /// [`super::uffd`]); recording fails if it is not available.
    Uffd,
    /// Exact write tracking when available, content diffing otherwise
    /// ([`Recorder::tracker_fallback`] says why).
    Auto,
}

impl std::str::FromStr for TrackerChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "diff" => Ok(Self::Diff),
            "uffd" => Ok(Self::Uffd),
            "auto" => Ok(Self::Auto),
            _ => Err(format!(
                "unknown tracker {text:?}: expected diff, uffd or auto"
            )),
        }
    }
}

/// The tracker in use.
#[derive(Debug)]
enum Tracking {
    Diff,
    Uffd(Box<WriteTracker>),
}

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
    /// How written pages are found.
    pub tracker: TrackerChoice,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(100),
            freeze: false,
            max_memory: 1 << 30,
            tracker: TrackerChoice::Diff,
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
    tracking: Tracking,
    tracker_fallback: Option<String>,
    /// Kept until recording ends: programs the target starts load it too.
    _preload: Option<PreloadLibrary>,
    runs: RunBuffers,
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
    /// Starts `command` and prepares to record it. With exact write tracking the program is
    /// started with the preload library (`LD_PRELOAD`), and its userfaultfd is taken over.
    pub fn spawn(command: &[OsString], options: RecordOptions) -> Result<Self, RecorderError> {
        let mut fallback = None;
        let preload = match options.tracker {
            TrackerChoice::Diff => None,
            TrackerChoice::Uffd => Some(install_preload().map_err(RecorderError::Uffd)?),
            TrackerChoice::Auto => install_preload()
                .map_err(|error| fallback = Some(error.to_string()))
                .ok(),
        };
        let env: Vec<(OsString, OsString)> = preload
            .iter()
            .map(|library| ("LD_PRELOAD".into(), library.ld_preload()))
            .collect();
        Self::with_target(Target::spawn(command, &env)?, options, preload, fallback)
    }

    /// Prepares to record the running process `pid`. Exact write tracking needs the process
    /// to have been started with the preload library.
    pub fn attach(pid: ProcessId, options: RecordOptions) -> Result<Self, RecorderError> {
        let target = Target::attach(pid)?;
        let mut fallback = None;
        if options.tracker != TrackerChoice::Diff
            && let Err(error) = uffd::probe()
        {
            match options.tracker {
                TrackerChoice::Auto => fallback = Some(error.to_string()),
                _ => return Err(RecorderError::Uffd(error)),
            }
        }
        Self::with_target(target, options, None, fallback)
    }

    /// Opens the target's `/proc` files and starts write tracking; on failure a child we
    /// started is ended.
    fn with_target(
        mut target: Target,
        options: RecordOptions,
        preload: Option<PreloadLibrary>,
        mut tracker_fallback: Option<String>,
    ) -> Result<Self, RecorderError> {
        let opened = open_proc_files(target.pid())
            .and_then(|(mem, pagemap)| Ok((mem, pagemap, system_page_size()?)));
        let (mem, pagemap, page_size) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                target.terminate();
                return Err(error);
            }
        };
        let tracking = if options.tracker == TrackerChoice::Diff || tracker_fallback.is_some() {
            Tracking::Diff
        } else {
            let pid = target.pid();
            let taken = if preload.is_some() {
                WriteTracker::take_over_new(pid, page_size as u64, UFFD_WAIT, &mut || {
                    target.exit().is_some()
                })
            } else {
                WriteTracker::take_over(pid, page_size as u64)
            };
            match (taken, options.tracker) {
                (Ok(tracker), _) => Tracking::Uffd(Box::new(tracker)),
                (Err(error), TrackerChoice::Auto) => {
                    tracker_fallback = Some(error.to_string());
                    Tracking::Diff
                }
                (Err(error), _) => {
                    target.terminate();
                    return Err(RecorderError::Uffd(error));
                }
            }
        };
        Ok(Self {
            target,
            layout: Layout::new(options.max_memory / page_size as u64),
            scanner: Scanner::new(mem, pagemap, page_size),
            tracking,
            tracker_fallback,
            _preload: preload,
            runs: RunBuffers::default(),
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

    /// Whether exact write tracking is in use.
    pub fn tracks_writes(&self) -> bool {
        matches!(self.tracking, Tracking::Uffd(_))
    }

    /// Why exact write tracking was asked for (`TrackerChoice::Auto`) but is not in use.
    pub fn tracker_fallback(&self) -> Option<&str> {
        self.tracker_fallback.as_deref()
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
        let cost = match self.scan(&mut emit, true)? {
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
        let scanned = self.scan(&mut emit, false);
        let result = match scanned {
            Err(error) => Err(error),
            Ok(Err(reason)) => Ok(Step::Stopped(reason)),
            // A scan that raced with the exit saw a partial or empty memory: drop it.
            Ok(Ok(_)) if self.target.exit().is_some() => Ok(Step::Stopped(
                StopReason::TargetExited(self.target.exit().expect("exit seen just above")),
            )),
            Ok(Ok(mut cost)) => {
                match timed_with_cpu(&mut cost.sink_time, &mut cost.sink_cpu, || {
                    sink.epoch(offset, &epoch)
                }) {
                    Ok(()) => {
                        self.overhead.add_epoch(cost);
                        Ok(Step::Recorded(EpochSummary {
                            index: self.overhead.epochs,
                            offset,
                            cost,
                        }))
                    }
                    Err(error) => Err(RecorderError::Sink(error)),
                }
            }
        };
        self.epoch = epoch;
        result
    }

    /// One scan, frozen if asked (`initial`: the scan of the initial image). The outer error
    /// is fatal; the inner one ends the recording.
    fn scan(
        &mut self,
        emit: &mut dyn FnMut(pagewire_codec::PageNumber, &[u8]) -> io::Result<()>,
        initial: bool,
    ) -> Result<Result<ScanCost, StopReason>, RecorderError> {
        let pid = self.target.pid();
        let started = Instant::now();
        let cpu_started = thread_cpu_time();
        self.scanner.take_phases();
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
        let counts = match &mut self.tracking {
            Tracking::Diff => self.scanner.scan(&self.ranges, &mut self.layout, emit),
            Tracking::Uffd(tracker) => scan_written(
                tracker,
                &mut self.scanner,
                &self.ranges,
                &mut self.layout,
                &mut self.runs,
                initial,
                emit,
            ),
        };
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
            Err(ScanError::TrackingLost) if self.target.exit().is_some() => {
                return Ok(Err(self.exited()));
            }
            Err(source) => return Err(RecorderError::Scan { pid, source }),
        };
        let scan_time = started.elapsed();
        let mut phases = self.scanner.take_phases();
        phases.cpu = thread_cpu_time().saturating_sub(cpu_started);
        Ok(Ok(ScanCost {
            scan_time,
            frozen_time: frozen_time.unwrap_or_default(),
            phases,
            sink_time: Duration::ZERO,
            sink_cpu: Duration::ZERO,
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
        if self.start.is_none()
            && let Step::Stopped(reason) = self.scan_initial(sink)?
        {
            return Ok(reason);
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
        let (tracker, method, unchanged_writes) = match &self.tracking {
            Tracking::Diff => (
                "diff",
                "content diffing: each epoch, present pages of writable private mappings \
                 (/proc/PID/maps, /proc/PID/pagemap) are read through /proc/PID/mem and their \
                 xxh3-64 digests compared with the previous scan",
                "not visible: a page written with the content it already had is not recorded; \
                 several writes to a page within an epoch appear as one",
            ),
            Tracking::Uffd(_) => (
                "uffd",
                "exact write tracking: a userfaultfd in async write-protect mode created in the \
                 target by the pagewire preload library and taken over with pidfd_getfd; each \
                 epoch PAGEMAP_SCAN on /proc/PID/pagemap lists the pages written since the \
                 last scan and write-protects them again; their contents are read through \
                 /proc/PID/mem; pages that left RAM are recorded as zeroed",
                "recorded: a page written with the content it already had is a write with \
                 unchanged content; several writes to a page within an epoch appear as one",
            ),
        };
        let mut pairs = vec![
            ("source", "pagewire trace record".to_owned()),
            ("command", command),
            ("kernel", kernel.trim().to_owned()),
            (
                "interval_ms",
                format!("{}", self.options.interval.as_secs_f64() * 1e3),
            ),
            ("tracker", tracker.to_owned()),
            ("method", method.to_owned()),
            ("unchanged_writes", unchanged_writes.to_owned()),
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
        ];
        if let Some(reason) = &self.tracker_fallback {
            pairs.push(("tracker_fallback", format!("uffd unavailable: {reason}")));
        }
        if let Tracking::Uffd(tracker) = &self.tracking
            && tracker.swap_active()
        {
            pairs.push((
                "discards",
                "swap was active: write-protected pages discarded (MADV_DONTNEED) cannot be \
                 told from swapped ones and are not recorded as zeroed"
                    .to_owned(),
            ));
        }
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Ranges that exact write tracking could not register so far (their content is diffed).
    pub fn untracked_ranges(&self) -> usize {
        match &self.tracking {
            Tracking::Diff => 0,
            Tracking::Uffd(tracker) => tracker.untracked_ranges(),
        }
    }
}

/// Checks that the kernel allows exact write tracking and installs the preload library.
fn install_preload() -> Result<PreloadLibrary, UffdError> {
    uffd::probe()?;
    PreloadLibrary::install().map_err(UffdError::Preload)
}
