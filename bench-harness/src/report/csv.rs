//! CSV: one line per run, the scalar metrics (per-round figures are in the JSON).

use std::fmt::Write;

use super::BenchReport;

/// The CSV header line's columns.
const COLUMNS: &str = "strategy,link,link_bytes_per_second,rtt_s,memory_bytes,scale,start_s,\
total_s,downtime_s,data_bytes,control_bytes,device_bytes,return_bytes,pages_sent,iterations,redundancy,\
stop_reason,stop_copy_pages,throttle_cpu_lost_s,postcopy_faults,postcopy_stall_s,\
mirror_forwards,trace_replays,cache_hit_rate,bytes_per_record";

/// Renders every run of the report as CSV (with a header line).
pub fn to_csv(report: &BenchReport) -> String {
    let mut out = format!("{COLUMNS}\n");
    for run in &report.runs {
        let (hit_rate, per_record) = run
            .encoder
            .as_ref()
            .map(|e| (e.cache_hit_rate.to_string(), e.bytes_per_record.to_string()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&run.strategy),
            run.link,
            run.link_bytes_per_second,
            run.rtt_seconds,
            run.memory_bytes,
            run.scale,
            run.start_seconds,
            run.total_seconds,
            run.downtime_seconds,
            run.data_bytes,
            run.control_bytes,
            run.device_bytes,
            run.return_bytes,
            run.pages_sent,
            run.iterations,
            run.redundancy,
            run.stop_reason,
            run.stop_copy_pages,
            run.throttle_cpu_lost_seconds,
            run.postcopy_faults,
            run.postcopy_stall_seconds,
            run.mirror_forwards,
            run.trace_replays,
            hit_rate,
            per_record,
        );
    }
    out
}

/// A text field as CSV (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote
/// or a line break (a strategy spec with several parameters holds commas).
fn field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}
