//! `pagewire trace info FILE`: a trace's geometry and totals, from its header and footer
//! (no epoch is decoded, so it is instant on any size). `--verify` also decodes every block.

use std::path::PathBuf;

use clap::Args;
use pagewire_bench::trace::{ContentMode, Epoch, ImageBacking, ReaderOptions, TraceReader};

use super::CliResult;
use super::units::format_bytes;

/// Arguments of `pagewire trace info`.
#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// The trace file.
    file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also decode every epoch (checks every checksum and the footer's totals).
    #[arg(long)]
    verify: bool,
}

/// Runs `pagewire trace info`.
pub(crate) fn run(args: InfoArgs) -> CliResult {
    let options = ReaderOptions {
        image: ImageBacking::Memory,
        ..ReaderOptions::default()
    };
    let mut reader = TraceReader::open_with(&args.file, options)?;
    let rows = describe(&reader);
    if args.verify {
        let mut epoch = Epoch::default();
        while reader.next_epoch(&mut epoch)? {}
    }
    if args.json {
        let object: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(key, _, value)| (key.to_string(), value.clone()))
            .collect();
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else {
        for (key, text, _) in &rows {
            println!("{key:<24} {text}");
        }
        if args.verify {
            println!(
                "{:<24} ok (every block decoded, checksums and totals match)",
                "verified"
            );
        }
    }
    Ok(())
}

/// (key, human-readable value, JSON value) rows describing the trace.
fn describe<R>(reader: &TraceReader<R>) -> Vec<(String, String, serde_json::Value)>
where
    R: std::io::Read + std::io::Seek,
{
    use serde_json::json;
    let header = reader.header();
    let s = reader.summary();
    let page_size = header.page_size;
    let page_bytes = page_size.bytes() as f64;
    let memory = s.page_count.0 as f64 * page_bytes;
    let file_len = reader.file_len();
    let logical = s.logical_bytes(page_size);
    let mut rows = vec![
        (
            "page_size".into(),
            format!("{} bytes", page_size.get()),
            json!(page_size.get()),
        ),
        (
            "page_count".into(),
            format!("{} ({})", s.page_count.0, format_bytes(memory)),
            json!(s.page_count.0),
        ),
        (
            "content".into(),
            match header.content {
                ContentMode::Full => "full (initial image and page contents)".into(),
                ContentMode::DirtyOnly => "dirty-only (page numbers, no contents)".into(),
            },
            json!(match header.content {
                ContentMode::Full => "full",
                ContentMode::DirtyOnly => "dirty-only",
            }),
        ),
        ("epochs".into(), s.epochs.to_string(), json!(s.epochs)),
        (
            "duration".into(),
            format!("{:.3} s", s.duration.as_secs_f64()),
            json!(s.duration.as_secs_f64()),
        ),
        (
            "initial_pages".into(),
            format!("{} non-zero", s.initial_pages),
            json!(s.initial_pages),
        ),
        (
            "pages_written".into(),
            format!(
                "{} (full {}, delta {}, zero {}, unchanged {}, content-less {})",
                s.pages_written,
                s.pages_full,
                s.pages_delta,
                s.pages_zero,
                s.pages_unchanged,
                s.pages_dirty
            ),
            json!(s.pages_written),
        ),
        (
            "distinct_pages_written".into(),
            s.distinct_pages_written.to_string(),
            json!(s.distinct_pages_written),
        ),
        (
            "max_epoch_pages".into(),
            s.max_epoch_pages.to_string(),
            json!(s.max_epoch_pages),
        ),
        (
            "dirty_rate".into(),
            format!(
                "{:.1} pages/s, {:.2} MB/s",
                s.dirty_pages_per_second(),
                s.dirty_bytes_per_second(page_size) / 1e6
            ),
            json!(s.dirty_pages_per_second()),
        ),
        (
            "dirty_rate_mb_s".into(),
            format!("{:.2}", s.dirty_bytes_per_second(page_size) / 1e6),
            json!(s.dirty_bytes_per_second(page_size) / 1e6),
        ),
        (
            "unchanged_share".into(),
            format!("{:.1}% of written pages", s.unchanged_share() * 100.0),
            json!(s.unchanged_share()),
        ),
        (
            "mean_delta_bytes".into(),
            if s.pages_delta == 0 {
                "-".into()
            } else {
                format!("{:.0}", s.delta_bytes as f64 / s.pages_delta as f64)
            },
            json!(if s.pages_delta == 0 {
                0.0
            } else {
                s.delta_bytes as f64 / s.pages_delta as f64
            }),
        ),
        (
            "file_size".into(),
            format!("{file_len} bytes ({})", format_bytes(file_len as f64)),
            json!(file_len),
        ),
        (
            "compression_ratio".into(),
            format!(
                "{:.1}x (memory represented {} / file); zstd alone {:.2}x",
                logical as f64 / file_len.max(1) as f64,
                format_bytes(logical as f64),
                s.uncompressed_bytes as f64 / s.compressed_bytes.max(1) as f64
            ),
            json!(logical as f64 / file_len.max(1) as f64),
        ),
        ("blocks".into(), s.blocks.to_string(), json!(s.blocks)),
    ];
    for (key, value) in &header.metadata {
        rows.push((format!("meta.{key}"), value.clone(), json!(value)));
    }
    rows
}
