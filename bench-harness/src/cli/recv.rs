//! `pagewire recv --listen ADDR --out FILE --memory SIZE ...`: the destination of
//! `pagewire send`. It reserves a memory of `--memory` bytes for the VM `--vm`, accepts the
//! first source whose certificate chains to the CA and names `--client-name` (refused peers
//! are reported and the wait goes on), and writes the memory to `FILE.partial`, renamed to
//! FILE only once the digests agreed and the VM was activated. Without activation there is no
//! FILE, and the exit code says so.
//!
//! The memory is `FILE.partial` mapped into the process ([`MappedMemory`]): pages are
//! decoded in place, with no system call per page, and the file's blocks are reserved before
//! the migration starts, so a full disk refuses the migration instead of failing it halfway.
//! Nothing else may truncate `FILE.partial` while it is received.
//!
//! Post-copy (`send --strategy postcopy` or `hybrid`): the VM would run here from
//! POSTCOPY_BEGIN on. `recv` has no VM; a stand-in vCPU ([`TopDownToucher`]) touches every
//! page from the highest down, faulting in each missing page and waiting for it, without
//! writing, so FILE is still the source's memory as of its suspension. The summary shows the
//! faults and their wait.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::ProgressBar;
use pagewire_codec::memory::{DestinationMemory, MemoryError};
use pagewire_codec::session::{DestinationConfig, DestinationSession, Event};
use pagewire_codec::{PageCount, PageNumber, PageSize, Phase};
use pagewire_transport::driver::DriverConfig;
use pagewire_transport::memory::MappedMemory;
use pagewire_transport::resume::{DriveSetup, serve_destination};
use pagewire_transport::streams::StreamConfig;
use pagewire_transport::{ConnectError, Listener, PeerName};

use super::CliResult;
use super::fault_in::TopDownToucher;
use super::migration_summary::{Side, Summary, Timeline};
use super::peer::{Interrupts, LinkArgs, TlsArgs, conclude, migration_id, page_bar};
use super::units::{parse_duration, parse_size};

/// Page streams a source may open.
const MAX_PAGE_STREAMS: u16 = 16;

/// Arguments of `pagewire recv`.
#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// The address to listen on (port 0: any free port; the address is printed on stderr).
    #[arg(long)]
    listen: SocketAddr,
    /// Where the received memory goes.
    #[arg(long)]
    out: PathBuf,
    /// The memory reserved: only a VM of exactly this size is accepted.
    #[arg(long, value_parser = parse_size)]
    memory: u64,
    /// The page size reserved.
    #[arg(long, value_parser = parse_size, default_value = "4KiB")]
    page_size: u64,
    /// The VM reserved for (`send --vm`).
    #[arg(long, default_value = "vm")]
    vm: String,
    /// The name the source's certificate must carry.
    #[arg(long, default_value = "source")]
    client_name: PeerName,
    /// After a dropped link in iterative copy, stop-and-copy, post-copy or commit, keep the
    /// migration this long for the source to reconnect and resume it (only with the
    /// certificate that started it); 0s: a dropped link ends the migration.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    resume_grace: Duration,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

/// Runs `pagewire recv`.
pub(crate) fn run(args: RecvArgs) -> CliResult {
    let identity = args.tls.identity()?;
    let tuning = args.link.tuning()?;
    let page_size = u32::try_from(args.page_size)
        .ok()
        .and_then(|bytes| PageSize::new(bytes).ok())
        .ok_or_else(|| format!("--page-size {} is not a page size", args.page_size))?;
    if args.memory == 0 || !args.memory.is_multiple_of(page_size.bytes() as u64) {
        return Err(format!("--memory {} is not a whole number of pages", args.memory).into());
    }
    let page_count = PageCount(args.memory / page_size.bytes() as u64);
    let partial = partial_path(&args.out);
    let bar = page_bar(page_count.0);
    let memory = Tallied {
        memory: MappedMemory::create(&partial, page_size, page_count)?,
        bar: bar.clone(),
    };
    let interrupts = Interrupts::watch("destination")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Post-copy that failed: (deferred pages missing, pages), for the last word.
    let mut guest_ran = None;
    let outcome = runtime.block_on(async {
        let listener = Listener::bind(
            args.listen,
            &identity,
            Some(args.client_name.clone()),
            &tuning,
        )?;
        eprintln!("listening on {}", listener.local_addr()?);
        let mut connection = loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(connection) => {
                        eprintln!("migrating from {}", connection.remote_address());
                        break connection;
                    }
                    Err(ConnectError::Refused(refusal)) => {
                        eprintln!("refused a peer: {refusal}");
                    }
                    Err(error) => return Err(error.into()),
                },
                (_, message) = interrupts.wait() => return Err(message.into()),
            }
        };
        let stream_config = StreamConfig {
            page_streams: MAX_PAGE_STREAMS,
            ..StreamConfig::default()
        };
        let epoch = Instant::now();
        let mut config = DestinationConfig::new(migration_id(&args.vm));
        config.vm_name = args.vm.clone();
        config.max_page_streams = MAX_PAGE_STREAMS;
        config.resume = !args.resume_grace.is_zero();
        config.resume_grace = args.resume_grace;
        let mut session = DestinationSession::new(config, memory, Duration::ZERO)?;
        let (mut timeline, mut device_state) = (Timeline::default(), None);
        let mut vcpu = TopDownToucher::default();
        let setup = DriveSetup {
            streams: &stream_config,
            driver: DriverConfig::default(),
            epoch,
        };
        let result = serve_destination(
            &mut session,
            &listener,
            &mut connection,
            setup,
            |session, now, event| {
                vcpu.on_event(session, now, &event)?;
                match event {
                    Event::PhaseChanged(Phase::StopAndCopy) => {
                        timeline.stopped = Some(now);
                        bar.set_message("stop-and-copy");
                    }
                    Event::PhaseChanged(phase) => bar.set_message(format!("{phase:?}")),
                    Event::IterationEnded { iteration, .. } => {
                        bar.set_message(format!("iteration {} applied", iteration.0));
                    }
                    Event::DeviceState(state) => device_state = Some(state.len()),
                    Event::PostCopyStarted { .. } => {
                        timeline.postcopy = Some(now);
                        bar.set_message("post-copy: the stand-in vCPU faults pages in");
                    }
                    Event::Activated => timeline.activated = Some(now),
                    Event::ConnectionInterrupted => {
                        bar.set_message("link lost: waiting for the source to resume");
                    }
                    Event::StartedOver => {
                        bar.set_message("the source started the migration over");
                    }
                    Event::Resumed { next_iteration, .. } => {
                        bar.set_message(format!("resumed at iteration {}", next_iteration.0));
                    }
                    _ => {}
                }
                Ok(())
            },
            interrupts.wait(),
        )
        .await;
        let total = conclude(&connection, &bar, epoch, &result, true).await;
        listener.shut_down().await;
        let side = Side::Destination {
            stats: session.stats(),
            device_state,
        };
        print!("{}", Summary::new(&result, total, timeline, side));
        let activated = session.activated();
        if session.postcopy_running() && !activated {
            guest_ran = Some((session.missing_pages(), session.memory().page_count()));
        }
        let memory = session.into_memory().memory;
        match result {
            Ok(()) if activated => Ok(memory),
            Ok(()) => Err("the migration ended without activation".into()),
            Err(error) => Err(error.into()),
        }
    });
    let result: CliResult = outcome.and_then(|memory: MappedMemory| {
        memory.sync()?;
        std::fs::rename(&partial, &args.out)?;
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
        match guest_ran {
            // The spec leaves such a guest to the operator (spec/wire.md §9.2); this
            // command's stand-in vCPU stops with the migration.
            Some((missing, pages)) => eprintln!(
                "post-copy failed: the guest ran here from POSTCOPY_BEGIN and lacks {} of its \
                 {} pages, which only the source holds; {} not written",
                missing.0,
                pages.0,
                args.out.display()
            ),
            None => eprintln!("no VM activated; {} not written", args.out.display()),
        }
    }
    result
}

/// `FILE.partial`, where the memory is written until activation.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The destination memory, counting pages written (or lent to be written) on the progress bar.
struct Tallied {
    memory: MappedMemory,
    bar: ProgressBar,
}

impl DestinationMemory for Tallied {
    fn page_size(&self) -> PageSize {
        DestinationMemory::page_size(&self.memory)
    }

    fn page_count(&self) -> PageCount {
        DestinationMemory::page_count(&self.memory)
    }

    fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
        DestinationMemory::read_page(&self.memory, page, out)
    }

    fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
        self.memory.write_page(page, bytes)?;
        self.bar.inc(1);
        Ok(())
    }

    fn page_mut(&mut self, page: PageNumber) -> Result<Option<&mut [u8]>, MemoryError> {
        let lent = self.memory.page_mut(page)?;
        self.bar.inc(1);
        Ok(lent)
    }
}
