//! `pagewire send --to ADDR --image FILE [--trace TRACE] [--strategy NAME] ...`: migrates a
//! memory image to `pagewire recv` over QUIC with mutual TLS, while a live guest replays a
//! trace's writes into it in real time.
//!
//! The memory is `--image` (a file of whole pages), or, with `--trace` and no `--image`, the
//! trace's initial image. The guest runs the trace once from `--start` and then idles; it
//! stops when the session suspends it.
//!
//! The image is mapped copy-on-write ([`MappedMemory::copy_on_write`]): pages are read from
//! the file as the migration reaches them, not all before it starts; the guest's writes stay
//! in this process and the file is never written. Nothing else may truncate or write the image
//! while it is sent (a page written by another process is not known to be dirty).

use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32, NonZeroU64};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use pagewire_bench::live::{GuestTrace, LiveGuest, LiveSource};
use pagewire_bench::sim::LinkSpec;
use pagewire_codec::PageSize;
use pagewire_codec::memory::{DestinationMemory, SourceMemory};
use pagewire_codec::select::{self, Geometry, LinkEstimate};
use pagewire_codec::session::{Event, SourceConfig, SourceSession};
use pagewire_transport::cost::encoder_policy;
use pagewire_transport::driver::{DriverConfig, ProbeWindow};
use pagewire_transport::memory::MappedMemory;
use pagewire_transport::resume::{DriveSetup, ResumePolicy, drive_source};
use pagewire_transport::streams::StreamConfig;
use pagewire_transport::{Dialer, PeerName, RateLimit};

use super::CliResult;
use super::migration_summary::{Side, Summary, Timeline};
use super::peer::{Interrupts, LinkArgs, TlsArgs, conclude, migration_id, page_bar};
use super::units::{parse_duration, parse_size};

/// Pages per page batch.
const BATCH_PAGES: u32 = 32;

/// Bounds of the bytes taken from the session at once (one queued chunk).
const MIN_CHUNK: usize = 16 << 10;
const MAX_CHUNK: usize = 256 << 10;

/// Arguments of `pagewire send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The destination (`pagewire recv --listen`).
    #[arg(long)]
    to: SocketAddr,
    /// The memory image to migrate, a file of whole pages (with --trace: of the trace's
    /// geometry).
    #[arg(long)]
    image: Option<PathBuf>,
    /// A content trace whose writes the guest replays in real time while it migrates; without
    /// --image, its initial image is the memory.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Where the guest starts in the trace (earlier epochs are written before the migration).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    start: Duration,
    /// Page size of an --image without --trace.
    #[arg(long, value_parser = parse_size, default_value = "4KiB")]
    page_size: u64,
    /// The page-selection strategy, with parameters (`precopy:max-rounds=10`). `postcopy`
    /// and `hybrid` (pre-copy rounds, then post-copy) suspend the guest here and resume it at
    /// the destination before every page arrived (the guest here writes nothing after its
    /// suspension; see `pagewire recv --help` for the destination's side).
    #[arg(long, default_value = "ours")]
    strategy: String,
    /// Page streams, besides the control stream.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    streams: u16,
    /// Rate limit on page bytes (decimal units: 100mbit, 1gbit); default: none. Pages are
    /// compressed (LZ4, zstd) only on links slow enough for the CPU time to pay: under about
    /// 2.5 GB/s, less the faster LZ4 and zstd run against the link. A link measured slower
    /// than this while it holds the source back counts at its measured speed. The limit holds
    /// the page streams; the control stream is not held back, so in post-copy the pages the
    /// destination's guest faulted on, which travel there, go at once (a faulting guest
    /// waits for them) and can take the throughput past the limit.
    #[arg(long)]
    rate: Option<LinkSpec>,
    /// Size of the encoder's cache of last-sent versions.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    cache: u64,
    /// The VM's name: the destination accepts only the VM it reserved for (`recv --vm`).
    #[arg(long, default_value = "vm")]
    vm: String,
    /// The name the destination's certificate must carry.
    #[arg(long, default_value = "destination")]
    server_name: PeerName,
    /// After a dropped link (the connection timed out or was reset), reconnect at most this
    /// many times and resume the migration where it stood (0: a dropped link ends the
    /// migration). Needs `recv --resume-grace` above 0.
    #[arg(long, default_value_t = 5)]
    resume_attempts: u32,
    /// The wait before the first reconnection; it doubles after each failed one, up to 8 s.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    resume_backoff: Duration,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

/// Runs `pagewire send`.
pub(crate) fn run(args: SendArgs) -> CliResult {
    match (&args.trace, &args.image) {
        (Some(trace), image) => {
            let mut trace = GuestTrace::open(trace)?;
            match image {
                Some(image) => {
                    let memory = MappedMemory::copy_on_write(image, trace.page_size())?;
                    migrate_live(&args, trace, memory)
                }
                None => {
                    let memory = trace.initial_image()?;
                    migrate_live(&args, trace, memory)
                }
            }
        }
        (None, Some(image)) => {
            let page_size = u32::try_from(args.page_size)
                .ok()
                .and_then(|bytes| PageSize::new(bytes).ok())
                .ok_or_else(|| format!("--page-size {} is not a page size", args.page_size))?;
            migrate(&args, None, MappedMemory::copy_on_write(image, page_size)?)
        }
        (None, None) => Err("give the memory to migrate: --image, --trace, or both".into()),
    }
}

/// Migrates `memory` with the trace's guest writing into it, from `--start` on.
fn migrate_live<M>(args: &SendArgs, trace: GuestTrace, mut memory: M) -> CliResult
where
    M: SourceMemory + DestinationMemory,
{
    let guest = trace.run_alone_until(args.start, &mut memory)?;
    migrate(args, Some(guest), memory)
}

/// Migrates `memory`, with `guest` writing into it if there is one.
fn migrate<M>(args: &SendArgs, guest: Option<LiveGuest>, memory: M) -> CliResult
where
    M: SourceMemory + DestinationMemory,
{
    let identity = args.tls.identity()?;
    let geometry = Geometry {
        page_count: SourceMemory::page_count(&memory),
        page_size: SourceMemory::page_size(&memory),
    };
    let spec = match select::parse_list(&args.strategy)?.as_slice() {
        [spec] => spec.clone(),
        _ => return Err("--strategy takes one strategy".into()),
    };
    let mut config = SourceConfig::new(migration_id(&args.vm), select::build(&spec, geometry)?);
    config.vm_name = args.vm.clone();
    config.page_streams = NonZeroU16::new(args.streams).ok_or("--streams must be at least 1")?;
    config.cache_bytes = args.cache;
    // A batch is encoded whole when its stream has room: small batches keep the session's
    // view of what was sent close to what the link took (see the queues below).
    config.max_batch_pages = NonZeroU32::new(BATCH_PAGES).expect("non-zero");
    config.resume = args.resume_attempts > 0;
    let policy = ResumePolicy {
        attempts: args.resume_attempts,
        first_backoff: args.resume_backoff,
        ..ResumePolicy::default()
    };
    let rate_limit = args
        .rate
        .and_then(|link| NonZeroU64::new(link.bytes_per_second))
        .map(RateLimit::per_second);
    // Compress only where it saves time: on a fast link the CPU of compressing a page costs
    // more than sending it raw.
    config.policy = encoder_policy(rate_limit.map(|limit| limit.bytes_per_second));
    if let Some(limit) = rate_limit {
        config.link = LinkEstimate {
            bytes_per_second: limit.bytes_per_second.get(),
            rtt: Duration::ZERO,
        };
    }
    // Short queues: the session encodes a page only when its stream has room, so what waits
    // in a queue counts as sent for the strategy. Two chunks per stream, each about 20 ms of
    // a rate-limited link (16 KiB to 256 KiB), keep that lag short and still fill the link.
    let chunk = rate_limit.map_or(MAX_CHUNK, |limit| {
        (limit.bytes_per_second.get() / 50).clamp(MIN_CHUNK as u64, MAX_CHUNK as u64) as usize
    });
    let stream_config = StreamConfig {
        page_streams: args.streams,
        rate_limit,
        send_queue_chunks: 2,
        ..StreamConfig::default()
    };
    let tuning = args.link.tuning()?;
    // Without --rate the encoders assume a fast link until the meter finds otherwise: a
    // small send window until then keeps a slow link from taking 32 MiB of raw pages first.
    let driver_config = DriverConfig {
        budget: chunk,
        probe: rate_limit
            .is_none()
            .then(|| ProbeWindow::mib(tuning.send_window)),
        ..DriverConfig::default()
    };
    let interrupts = Interrupts::watch("source")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let local: SocketAddr = if args.to.is_ipv6() {
            "[::]:0".parse()?
        } else {
            "0.0.0.0:0".parse()?
        };
        let dialer = Dialer::bind(local, &identity, &tuning)?;
        let mut connection = tokio::select! {
            connected = dialer.connect(args.to, &args.server_name) => connected?,
            (_, message) = interrupts.wait() => {
                // The peer may hold a connection already: tell it.
                dialer.shut_down().await;
                return Err(message.into());
            }
        };
        eprintln!("migrating to {}", connection.remote_address());
        let epoch = Instant::now();
        let session = SourceSession::new(config, memory, Duration::ZERO)?;
        let mut live = LiveSource::new(session, guest);
        let bar = page_bar(0);
        let observed = bar.clone();
        live.observe(Box::new(move |stats| {
            observed.set_position(stats.pages_sent)
        }));
        let mut timeline = Timeline::default();
        let setup = DriveSetup {
            streams: &stream_config,
            driver: driver_config,
            epoch,
        };
        let connect = || dialer.connect(args.to, &args.server_name);
        let result = drive_source(
            &mut live,
            &mut connection,
            connect,
            setup,
            policy,
            |live, now, event| {
                match event {
                    Event::RoundStarted {
                        iteration, planned, ..
                    } => {
                        bar.set_length(live.session().stats().pages_sent + planned.0);
                        bar.set_message(format!("iteration {}", iteration.0));
                    }
                    Event::SuspendRequested => {
                        timeline.stopped = Some(now);
                        bar.set_message("stop-and-copy");
                        return live.suspend(now, Bytes::from(args.vm.clone().into_bytes()));
                    }
                    Event::PhaseChanged(phase) => bar.set_message(format!("{phase:?}")),
                    Event::PostCopyStarted { .. } => timeline.postcopy = Some(now),
                    Event::Activated => timeline.activated = Some(now),
                    Event::ConnectionInterrupted => {
                        bar.set_message("link lost: reconnecting");
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
        let total = conclude(&connection, &bar, epoch, &result, false).await;
        dialer.shut_down().await;
        let encoders = live.session().encoder_stats();
        let side = Side::Source {
            stats: live.session().stats(),
            encoders: &encoders,
            guest: live.guest().map(LiveGuest::epochs_landed),
            link: live.session().link_estimate(),
        };
        let postcopy_began = timeline.postcopy.is_some();
        print!("{}", Summary::new(&result, total, timeline, side));
        if result.is_err() && postcopy_began {
            eprintln!(
                "post-copy failed: the guest has run at the destination since POSTCOPY_BEGIN; \
                 this side holds its memory as of the suspension, which that run has moved past"
            );
        }
        if let Some(failure) = live.guest_failure() {
            return Err(failure.to_string().into());
        }
        result.map_err(Into::into)
    })
}
