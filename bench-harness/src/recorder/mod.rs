//! The recorder: captures the writes of a real Linux process into a trace.
//!
//! Method (content diffing, no kernel dirty tracking needed): every epoch the recorder lists
//! the target's writable private mappings in `/proc/PID/maps` ([`maps`]), skips pages that are
//! not present according to `/proc/PID/pagemap` ([`pagemap`]), reads the rest through
//! `/proc/PID/mem` in large reads, and compares each page's xxh3 digest with the previous scan
//! ([`snapshot`]). Changed pages go into the epoch with their new content; the first scan is the
//! initial image. Virtual pages get stable trace page numbers as mappings come and go
//! ([`layout`]). [`session`] runs the epochs, optionally stopping the target during each scan
//! (`--freeze`), and accounts for the recorder's own cost ([`overhead`], per part of a scan
//! in [`phases`]). The trace is encoded on a thread of its own ([`background`]) so that the
//! scans keep their period.
//!
//! Exact write tracking ([`uffd`], `--tracker uffd`) replaces the content comparison: the
//! kernel reports the pages written since the last scan (userfaultfd write-protection in
//! async mode, read with `PAGEMAP_SCAN`), and only those are read. It sees pages written with
//! the content they already had; its cost scales with the pages written.
//!
//! What content diffing cannot see: a page written with the content it already had, and
//! several writes to one page within an epoch (only the last content is seen). Without
//! `--freeze` a scan races with the target, so a page written during the scan may land in this
//! epoch or the next. Both are stated in the trace's metadata.

pub mod background;
pub mod maps;
pub mod overhead;
pub mod pagemap;
pub mod phases;
pub mod session;
pub mod sink;
pub mod snapshot;
pub mod target;
pub mod trace_file;
pub mod uffd;
pub mod units;
mod written;

pub mod layout;

use std::io;
use std::path::PathBuf;

pub use overhead::OverheadReport;
pub use session::{EpochSummary, Limits, RecordOptions, Recorder, Step, StopReason, TrackerChoice};
pub use sink::{EpochPages, EpochSink, MemorySink};
pub use target::{ProcessId, Target, TargetExit};

/// Everything that stops the recorder with an error (ends of recording that are not errors,
/// such as the target exiting, are [`StopReason`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// `record --` was given no program.
    #[error("no command to record: give a program after `--`")]
    EmptyCommand,
    /// The program could not be started.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No process with this id exists (or it already exited).
    #[error("no process with pid {pid} (it does not exist or has exited)")]
    NoSuchProcess {
        /// The pid asked for.
        pid: ProcessId,
    },
    /// A `/proc` file of the target may not be opened by us.
    #[error(
        "permission denied opening {path}: reading another process's memory needs ptrace \
         access to it; run the recorder as the target's user with kernel.yama.ptrace_scope=0, \
         or as root (or with CAP_SYS_PTRACE), or start the program under the recorder \
         (`pagewire trace record -- CMD`)"
    )]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// Another I/O error on a `/proc` file of the target.
    #[error("cannot read {path}: {source}")]
    Proc {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The maps file did not parse.
    #[error("unexpected /proc/{pid}/maps content: {source}")]
    Maps {
        /// The target.
        pid: ProcessId,
        /// What did not parse.
        #[source]
        source: maps::MapsParseError,
    },
    /// Reading the target's memory failed (other than a range vanishing, which is skipped).
    #[error("scanning pid {pid}: {source}")]
    Scan {
        /// The target.
        pid: ProcessId,
        /// The failure.
        #[source]
        source: snapshot::ScanError,
    },
    /// The target did not stop within the time limit after `SIGSTOP`.
    #[error("pid {pid} did not stop after SIGSTOP (is it being traced by another debugger?)")]
    FreezeTimeout {
        /// The target.
        pid: ProcessId,
    },
    /// Sending a signal failed.
    #[error("sending {signal} to pid {pid} failed: {errno}")]
    Signal {
        /// The target.
        pid: ProcessId,
        /// The signal's name.
        signal: &'static str,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The page size of this machine could not be determined.
    #[error("cannot determine the page size")]
    PageSize,
    /// Writing the trace failed.
    #[error("writing the trace failed: {0}")]
    Sink(#[source] io::Error),
    /// Exact write tracking was asked for (`--tracker uffd`) and is not available.
    #[error("exact write tracking (--tracker uffd) is unavailable: {0}")]
    Uffd(#[source] uffd::UffdError),
}

impl RecorderError {
    /// Classifies an error opening or reading a `/proc` file of the target.
    pub(crate) fn proc_access(path: PathBuf, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::PermissionDenied => Self::PermissionDenied { path },
            _ => Self::Proc { path, source },
        }
    }
}
