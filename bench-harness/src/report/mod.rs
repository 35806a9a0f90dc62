//! Reports of a bench: the text table (rows: link speeds; columns: strategies, as in the seed
//! papers' tables), CSV, JSON and the SVG plots.

mod csv;
mod plot;
mod table;

use serde::Serialize;

use crate::sim::RunResult;

pub use csv::to_csv;
pub use plot::{PlotError, rounds_svg, to_svg};
pub use table::to_table;

/// Everything a bench measured, as written to JSON.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The trace's file name (no directory).
    pub trace: String,
    /// Memory migrated, bytes (after scaling).
    pub memory_bytes: u64,
    /// Copies of the trace's write pattern over disjoint memory.
    pub scale: u64,
    /// Whether page contents were encoded by the real encoder (false: raw size model).
    pub content: bool,
    /// Strategies, in column order.
    pub strategies: Vec<String>,
    /// Links, in row order.
    pub links: Vec<String>,
    /// How the runs were set up, and what they do not model.
    pub notes: Vec<String>,
    /// One result per (strategy, link), row by row.
    pub runs: Vec<RunResult>,
}

impl BenchReport {
    /// The run of `strategy` over `link`, if any.
    pub fn run(&self, strategy: &str, link: &str) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|run| run.strategy == strategy && run.link == link)
    }
}

/// Formats a byte count with a binary unit.
pub fn format_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// Formats seconds with a unit suited to their size.
pub fn format_seconds(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2}s")
    } else {
        format!("{:.1}ms", seconds * 1e3)
    }
}
