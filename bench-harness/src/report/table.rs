//! The text table: one row per link, one column per strategy; each cell is
//! `total time / downtime / bytes on the wire / live rounds`.

use super::{BenchReport, format_bytes, format_seconds};

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
    out
}
