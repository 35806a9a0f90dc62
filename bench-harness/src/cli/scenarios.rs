//! `pagewire scenarios [--quick] [--out DIR]`: re-creates each seed paper's experiment with
//! the generators and prints the paper's claim next to what the simulator measured.

use std::path::PathBuf;

use clap::Args;
use pagewire_bench::scenarios::{Scale, run_all};

use super::CliResult;

/// Arguments of `pagewire scenarios`.
#[derive(Debug, Args)]
pub(crate) struct ScenariosArgs {
    /// Small sizes only (a smoke test, not the papers' set-ups).
    #[arg(long)]
    quick: bool,
    /// Directory for the generated traces and scenarios.json.
    #[arg(long, default_value = "scenarios-out")]
    out: PathBuf,
}

/// Runs `pagewire scenarios`.
pub(crate) fn run(args: ScenariosArgs) -> CliResult {
    let traces = args.out.join("traces");
    std::fs::create_dir_all(&traces)?;
    let scale = if args.quick {
        Scale::Quick
    } else {
        Scale::Full
    };
    let claims = run_all(&traces, scale)?;
    for claim in &claims {
        println!("{}", claim.paper);
        println!("  set-up:   {}", claim.setup);
        println!("  claim:    {}", claim.claim);
        println!("  measured: {}", claim.measured);
        println!("  verdict:  {}", claim.verdict);
        println!("  why:      {}", claim.why);
    }
    println!(
        "note: content-less traces (raw size model), simulated time; a claim held if we \
         measured at least half the claimed effect"
    );
    std::fs::write(
        args.out.join("scenarios.json"),
        serde_json::to_string_pretty(&claims)?,
    )?;
    std::fs::remove_dir_all(&traces)?;
    Ok(())
}
