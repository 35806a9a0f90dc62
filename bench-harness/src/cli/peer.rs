//! What both ends of `pagewire send` and `pagewire recv` share: the certificate and link
//! options, the migration's name, Ctrl-C, hanging up, and the progress bar.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::{SigSet, Signal};
use pagewire_codec::frame::{AbortReason, MigrationId};
use pagewire_transport::driver::DriveError;
use pagewire_transport::{TlsConfigError, TlsIdentity, Tuning};

use super::units::parse_duration;

/// How long a side that sent the last word waits for the peer to hang up.
const HANG_UP_WAIT: Duration = Duration::from_secs(2);

/// The certificate options.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// The CA certificate the peer's certificate must chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// This side's certificate chain, leaf first (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// This side's private key (PEM).
    #[arg(long)]
    key: PathBuf,
}

impl TlsArgs {
    /// Loads the files.
    pub(crate) fn identity(&self) -> Result<TlsIdentity, TlsConfigError> {
        TlsIdentity::from_pem_files(&self.ca, &self.cert, &self.key)
    }
}

/// The link options.
#[derive(Debug, Args)]
pub(crate) struct LinkArgs {
    /// How long a silent link counts as alive: a connection that hears nothing from the peer
    /// for this long is lost (the source then reconnects, see --resume-attempts). Keep-alives
    /// go every sixth of it. The shorter of the two sides' values applies.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    idle_timeout: Duration,
}

impl LinkArgs {
    /// The QUIC settings: the transport's defaults with this idle timeout.
    pub(crate) fn tuning(&self) -> Result<Tuning, String> {
        if self.idle_timeout < Duration::from_millis(100) {
            return Err("--idle-timeout must be at least 100ms".into());
        }
        Ok(Tuning {
            idle_timeout: self.idle_timeout,
            keep_alive: self.idle_timeout / 6,
            ..Tuning::default()
        })
    }
}

/// The migration id both sides derive from the VM's name (`--vm`): the destination accepts
/// only the migration it reserved for.
pub(crate) fn migration_id(vm: &str) -> MigrationId {
    MigrationId(xxhash_rust::xxh3::xxh3_128(vm.as_bytes()).to_le_bytes())
}

/// SIGINT and SIGTERM, as aborts: the operator's way to stop a migration.
pub(crate) struct Interrupts {
    side: &'static str,
    signal: tokio::sync::watch::Receiver<Option<Signal>>,
}

impl Interrupts {
    /// Starts watching. Call it before starting any thread (the tokio runtime): the signals
    /// are blocked in this thread and the threads it starts, and one thread waits for them.
    pub(crate) fn watch(side: &'static str) -> Result<Interrupts, nix::Error> {
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGINT);
        signals.add(Signal::SIGTERM);
        signals.thread_block()?;
        let (tell, signal) = tokio::sync::watch::channel(None);
        std::thread::spawn(move || {
            if let Ok(signal) = signals.wait() {
                let _ = tell.send(Some(signal));
            }
        });
        Ok(Interrupts { side, signal })
    }

    /// Completes with the abort a signal stands for, once one arrived.
    pub(crate) fn wait(&self) -> impl Future<Output = (AbortReason, String)> + use<> {
        let mut signal = self.signal.clone();
        let side = self.side;
        async move {
            match signal.wait_for(Option::is_some).await {
                Ok(received) => (
                    AbortReason::Cancelled,
                    format!(
                        "the {side} was interrupted ({})",
                        received.map_or("?", Signal::as_str)
                    ),
                ),
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Ends a migration that ended with `result`: clears the progress bar, closes the
/// connection, and returns the time from `epoch` to the end of the migration (before the
/// hang-up).
///
/// The side that sent the last frame (an ABORT or a refusal of its own, or the destination's
/// ACTIVATED) waits, for a bounded time, for the peer to read it and hang up first: closing
/// drops unsent stream data.
pub(crate) async fn conclude(
    connection: &quinn::Connection,
    bar: &ProgressBar,
    epoch: Instant,
    result: &Result<(), DriveError>,
    destination: bool,
) -> Duration {
    let total = epoch.elapsed();
    bar.finish_and_clear();
    if sent_last_frame(result, destination) {
        let _ = tokio::time::timeout(HANG_UP_WAIT, connection.closed()).await;
    }
    connection.close(0u32.into(), b"done");
    total
}

/// Whether this side sent the last frame of a migration that ended with `result` (the source
/// receives the last frame of a successful one).
fn sent_last_frame(result: &Result<(), DriveError>, destination: bool) -> bool {
    use pagewire_codec::session::{SessionError, Side};
    match result {
        Ok(()) => destination,
        Err(DriveError::Aborted(info)) => info.side == Side::Local,
        Err(DriveError::Refused(_) | DriveError::Session(SessionError::Refused(_))) => destination,
        Err(DriveError::Session(SessionError::PeerAborted { .. } | SessionError::PeerGone)) => {
            false
        }
        Err(DriveError::Session(_)) => true,
        Err(_) => false,
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal) counting pages.
pub(crate) fn page_bar(length: u64) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {bar:30} {pos}/{len} pages {per_sec} {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
