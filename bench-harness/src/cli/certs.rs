//! `pagewire certs --dir DIR`: a CA and a pair of peer certificates for trying a migration
//! out (production uses the operator's own PKI).

use std::path::PathBuf;

use clap::Args;
use pagewire_transport::certs::write_demo_set;

use super::CliResult;

/// Arguments of `pagewire certs`.
#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    /// The directory to write ca.pem, source.pem/.key and destination.pem/.key into (created
    /// if missing; existing files are replaced).
    #[arg(long)]
    dir: PathBuf,
    /// How many days the peer certificates are valid.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=3650))]
    days: i64,
}

/// Runs `pagewire certs`.
pub(crate) fn run(args: CertsArgs) -> CliResult {
    let set = write_demo_set(&args.dir, args.days)?;
    println!("CA certificate           {}", set.ca.display());
    println!(
        "source (name source)     {} {}",
        set.source.0.display(),
        set.source.1.display()
    );
    println!(
        "destination (names destination, localhost, 127.0.0.1, ::1)\n                         {} {}",
        set.destination.0.display(),
        set.destination.1.display()
    );
    println!(
        "valid for {} days; keys are readable by their owner only",
        args.days
    );
    Ok(())
}
