//! The `pagewire` command line: one module per command group (`trace gen`, `trace info`, ...);
//! a new subcommand is a variant of the matching `Subcommand` enum and a module with its
//! arguments and `run` function.

mod bench;
mod certs;
mod fault_in;
mod migration_summary;
mod peer;
mod recv;
mod scenarios;
mod send;
mod trace_gen;
mod trace_info;
mod trace_record;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A result whose error is printed and turns into a non-zero exit code.
pub(crate) type CliResult = Result<(), Box<dyn std::error::Error>>;

/// pagewire: live migration of memory pages, and the tools to measure it.
#[derive(Debug, Parser)]
#[command(name = "pagewire", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dirty-page traces: generate, inspect.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Simulate migrating a trace under page-selection strategies over links; write reports.
    Bench(bench::BenchArgs),
    /// Re-create the seed papers' experiments and check their claims.
    Scenarios(scenarios::ScenariosArgs),
    /// Make a CA and a pair of peer certificates (source, destination) for trying things out.
    Certs(certs::CertsArgs),
    /// Migrate a memory image to `pagewire recv` while a live guest replays a trace into it.
    Send(send::SendArgs),
    /// Receive a migration from `pagewire send` and write the memory to a file.
    ///
    /// With a post-copy source (`send --strategy postcopy` or `hybrid`) the VM would run here
    /// from POSTCOPY_BEGIN on; recv runs no VM, so a stand-in vCPU touches every page from the
    /// highest down, faulting in each missing page and waiting for it, and writes nothing: the
    /// file is the source's memory as of its suspension. The summary shows the faults and the
    /// time waited for them.
    Recv(recv::RecvArgs),
}

#[derive(Debug, Subcommand)]
enum TraceCommand {
    /// Generate a synthetic trace.
    Gen(trace_gen::GenArgs),
    /// Print a trace's geometry and totals (read from its header and footer only).
    Info(trace_info::InfoArgs),
    /// Record a real process's writes (exact write tracking or content diffing).
    Record(trace_record::RecordArgs),
    /// Write the preload library that exact write tracking needs in a program started
    /// outside the recorder (load it with LD_PRELOAD, then `record --pid`).
    PreloadLibrary(trace_record::PreloadArgs),
}

/// Parses the command line, runs the command, and reports errors on stderr.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Trace(TraceCommand::Gen(args)) => trace_gen::run(args),
        Command::Trace(TraceCommand::Info(args)) => trace_info::run(args),
        Command::Trace(TraceCommand::Record(args)) => trace_record::run(args),
        Command::Trace(TraceCommand::PreloadLibrary(args)) => trace_record::write_preload(args),
        Command::Bench(args) => bench::run(args),
        Command::Scenarios(args) => scenarios::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Send(args) => send::run(args),
        Command::Recv(args) => recv::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The causes too, unless a message already includes its cause's.
            let mut message = error.to_string();
            let mut cause = error.source();
            while let Some(error) = cause {
                let text = error.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                cause = error.source();
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
