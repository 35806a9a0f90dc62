//! The text table: one row per link, one column per strategy; each cell is
//! `total time / downtime / bytes on the wire / live rounds`. Below it, the guest degradation
//! the downtime column does not show: post-copy faults and their stalls, mirror's forwarded
//! writes, throttled CPU time.

use super::{BenchReport, format_bytes, format_seconds};
use crate::sim::RunResult;

/// Renders the report as a fixed-width text table.
pub fn to_table(report: &BenchReport) -> String {
    let cell = |strategy: &str, link: &str| match report.run(strategy, link) {
        Some(run) => format!(
            "{} / {} / {} / {}",
            format_seconds(run.total_seconds),
            format_seconds(run.downtime_seconds),
            format_bytes(run.total_bytes()),
            run.iterations
        ),
        None => "failed".to_owned(),
    };
    let mut rows = vec![
        std::iter::once("link".to_owned())
            .chain(report.strategies.iter().cloned())
            .collect::<Vec<_>>(),
    ];
    for link in &report.links {
        rows.push(
            std::iter::once(link.clone())
                .chain(report.strategies.iter().map(|s| cell(s, link)))
                .collect(),
        );
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "{} ({} memory, scale {}); cells: total time / downtime / bytes on the wire / live rounds\n",
        report.trace,
        format_bytes(report.memory_bytes),
        report.scale
    );
    for (index, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if index == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-+-"));
            out.push('\n');
        }
    }
    let degraded: Vec<String> = report
        .runs
        .iter()
        .filter_map(|run| {
            degradation(run).map(|text| format!("  {}@{}: {text}", run.strategy, run.link))
        })
        .collect();
    if !degraded.is_empty() {
        out.push_str("guest degradation (besides downtime):\n");
        for line in degraded {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// What a run cost the guest besides its downtime, if anything.
fn degradation(run: &RunResult) -> Option<String> {
    let mut parts = Vec::new();
    if run.postcopy_faults > 0 {
        parts.push(format!(
            "{} post-copy faults, {} stalled",
            run.postcopy_faults,
            format_seconds(run.postcopy_stall_seconds)
        ));
    }
    if run.mirror_forwards > 0 {
        parts.push(format!(
            "{} writes forwarded synchronously",
            run.mirror_forwards
        ));
    }
    if run.throttle_cpu_lost_seconds > 0.0 {
        parts.push(format!(
            "{} guest CPU lost to throttling",
            format_seconds(run.throttle_cpu_lost_seconds)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
