//! Dirty-page traces: the file format (`spec/trace.md`), its writer and reader, realistic page
//! contents, and generators.
//!
//! A trace is the write history of a memory: page size, page count, the initial image, then
//! epochs (a time offset and the pages written, with their new contents). Producers write
//! through [`TraceSink`] (implemented by [`TraceWriter`]); consumers replay with
//! [`TraceReader`], which knows the page count and totals ([`TraceSummary`]) before decoding
//! any epoch.

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
mod zero;

pub use error::{ChecksummedPart, Corruption, TraceReadError, TraceWriteError};
pub use footer::TraceSummary;
pub use header::{ContentMode, TraceHeader};
pub use image::{ImageBacking, PageImage};
pub use reader::{Epoch, PageWrite, ReaderOptions, TraceReader, WriteKind};
pub use sink::TraceSink;
pub use writer::{StoredAs, TraceWriter, WriterOptions};
