//! The recorded process: spawning or attaching, noticing its exit, and stopping it
//! (`SIGSTOP`/`SIGCONT`) for an exact snapshot.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::RecorderError;

/// How long to wait for every thread of a stopped target to reach the stopped state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// A process id of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId(pub u32);

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ProcessId {
    /// `/proc/PID/<name>`.
    pub fn proc_path(self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{name}", self.0))
    }

    fn nix(self) -> Pid {
        Pid::from_raw(self.0 as i32)
    }
}

/// How the target ended, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetExit {
    /// A child we spawned exited with this status.
    Child(ExitStatus),
    /// An attached process is gone (or a zombie); its status belongs to its parent.
    Attached,
}

/// The process being recorded.
#[derive(Debug)]
pub struct Target {
    pid: ProcessId,
    child: Option<Child>,
    command_line: String,
}

impl Target {
    /// Starts `command` (program and arguments) as a child, with `env` added to its
    /// environment.
    pub fn spawn(
        command: &[OsString],
        env: &[(OsString, OsString)],
    ) -> Result<Self, RecorderError> {
        let (program, args) = command.split_first().ok_or(RecorderError::EmptyCommand)?;
        // `spawn` returns once the program has been executed, so `/proc/PID/mem` opened after
        // it refers to the new program's memory.
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .spawn()
            .map_err(|source| RecorderError::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            })?;
        let command_line = command
            .iter()
            .map(|arg| arg.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Self {
            pid: ProcessId(child.id()),
            child: Some(child),
            command_line,
        })
    }

    /// Attaches to a running process (which must exist).
    pub fn attach(pid: ProcessId) -> Result<Self, RecorderError> {
        let command_line = fs::read(pid.proc_path("cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|arg| !arg.is_empty())
                    .map(|arg| String::from_utf8_lossy(arg).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let target = Self {
            pid,
            child: None,
            command_line,
        };
        match fs::metadata(pid.proc_path("stat")) {
            Ok(_) if !target.is_zombie() => Ok(target),
            Ok(_) => Err(RecorderError::NoSuchProcess { pid }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(RecorderError::NoSuchProcess { pid })
            }
            Err(source) => Err(RecorderError::proc_access(pid.proc_path("stat"), source)),
        }
    }

    /// The command line the target was started with (read from `/proc/PID/cmdline` when
    /// attaching), kept from the start so it survives the target's exit.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// The target's process id.
    pub fn pid(&self) -> ProcessId {
        self.pid
    }

    /// Whether the target has exited (reaping it if it is our child).
    pub fn exit(&mut self) -> Option<TargetExit> {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(TargetExit::Child(status)),
                Ok(None) => None,
                Err(_) => Some(TargetExit::Attached),
            },
            None => self.is_zombie().then_some(TargetExit::Attached),
        }
    }

    /// Whether `/proc/PID/stat` is gone or says zombie/dead.
    fn is_zombie(&self) -> bool {
        match fs::read_to_string(self.pid.proc_path("stat")) {
            Ok(stat) => matches!(state_of(&stat), Some('Z' | 'X') | None),
            Err(_) => true,
        }
    }

    /// Stops the target with `SIGSTOP` and waits until every thread is stopped. The returned
    /// guard resumes it (`SIGCONT`) when dropped.
    pub fn freeze(&self) -> Result<Frozen, RecorderError> {
        let pid = self.pid;
        signal(pid, Signal::SIGSTOP)?;
        let frozen = Frozen { pid };
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while !all_threads_stopped(pid) {
            if self.is_zombie() {
                break;
            }
            if Instant::now() > deadline {
                return Err(RecorderError::FreezeTimeout { pid });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(frozen)
    }

    /// Ends a child we spawned that is still running (`SIGTERM`, then waits for it); an
    /// attached process is left alone.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = signal(self.pid, Signal::SIGTERM);
        child.wait().ok()
    }
}

/// Keeps the target stopped; resumes it when dropped.
#[derive(Debug)]
#[must_use = "the target resumes when this guard is dropped"]
pub struct Frozen {
    pid: ProcessId,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // The target may have exited meanwhile; nothing else to do then.
        let _ = kill(self.pid.nix(), Signal::SIGCONT);
    }
}

fn signal(pid: ProcessId, signal: Signal) -> Result<(), RecorderError> {
    kill(pid.nix(), signal).map_err(|errno| match errno {
        nix::errno::Errno::ESRCH => RecorderError::NoSuchProcess { pid },
        errno => RecorderError::Signal {
            pid,
            signal: signal.as_str(),
            errno,
        },
    })
}

/// The state letter of a `/proc/.../stat` line (after the parenthesised command name).
fn state_of(stat: &str) -> Option<char> {
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether every thread in `/proc/PID/task` is stopped (`T`) or exiting.
fn all_threads_stopped(pid: ProcessId) -> bool {
    let Ok(tasks) = fs::read_dir(pid.proc_path("task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        fs::read_to_string(task.path().join("stat"))
            .map(|stat| matches!(state_of(&stat), Some('T' | 't' | 'Z' | 'X') | None))
            .unwrap_or(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_after_a_command_name_with_parentheses() {
        assert_eq!(state_of("42 (a) b) S 1 2 3"), Some('S'));
        assert_eq!(state_of("42 (redis-server) T 1"), Some('T'));
        assert_eq!(state_of("garbage"), None);
    }
}
