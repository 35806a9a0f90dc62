//! Dirty-page traces: the file format (`spec/trace.md`), its writer and reader, realistic page
//! contents, and generators.
//!
//! A trace is the write history of a memory: page size, page count, the initial image, then
//! epochs (a time offset and the pages written, with their new contents). Producers write
//! through [`TraceSink`] (implemented by [`TraceWriter`]); consumers replay with
//! [`TraceReader`], which knows the page count and totals ([`TraceSummary`]) before decoding
//! any epoch.
//!
//! Producing a trace (a recorder does this per epoch):
//! 1. [`TraceWriter::create`] (or [`TraceWriter::new`] over any `io::Write`) with a
//!    [`TraceHeader`]: page size, [`ContentMode`], the page count so far, and metadata
//!    (`command`, `interval_ns`, ...).
//! 2. [`TraceWriter::write_initial_page`] for each non-zero page of the initial image.
//! 3. Per epoch: [`TraceWriter::begin_epoch`] with the time offset,
//!    [`TraceWriter::write_page`] (content) or [`TraceWriter::write_dirty`] (dirty-only) for
//!    each page written, at most once each, then [`TraceWriter::end_epoch`]. The writer
//!    itself recognises identical rewrites and chooses delta, zero or full storage.
//! 4. [`TraceWriter::grow`] whenever the memory grows (new pages are zero); the final count
//!    goes into the footer, so readers know it before replaying.
//! 5. [`TraceWriter::finish`] writes the footer; a file without it reads as truncated.
//!
//! Replaying: [`TraceReader::open`], then [`TraceReader::next_epoch`] in a loop, with
//! [`TraceReader::page`] for contents and [`TraceReader::rewind`] to start over.

mod block;
mod bytes;
pub mod content;
mod delta;
mod error;
mod footer;
pub mod format;
#[path = "gen/mod.rs"]
pub mod generators;
mod header;
mod history;
mod image;
mod reader;
pub mod rng;
mod sink;
mod writer;

pub use error::{ChecksummedPart, Corruption, TraceReadError, TraceWriteError};
pub use footer::TraceSummary;
pub use header::{ContentMode, TraceHeader};
pub use image::{ImageBacking, PageImage};
pub use reader::{Epoch, PageWrite, ReaderOptions, TraceReader, WriteKind};
pub use sink::TraceSink;
pub use writer::{StoredAs, TraceWriter, WriterOptions};

/// The trace files in `dir` (its `*.trace` entries), sorted by path; an entry the directory
/// listing fails on is passed over. Errs only if `dir` cannot be listed.
///
/// ```
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces");
/// let traces = pagewire_bench::trace::trace_files(&dir).unwrap();
/// assert!(traces.iter().all(|path| path.extension().unwrap() == "trace"));
/// ```
pub fn trace_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut traces: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "trace"))
        .collect();
    traces.sort();
    Ok(traces)
}
