//! # pagewire-codec
//!
//! The sans-IO core of pagewire: page encodings, the wire frames of the migration protocol,
//! page bitmaps, and (in later modules) page-selection strategies and the source/destination
//! session state machines. No sockets, no async, no clock of its own, no panics on any input,
//! bounded memory. `spec/wire.md` is the normative description of the bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bitmap;
pub mod cache;
pub mod compress;
pub mod decoder;
pub mod dedup;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod hash;
pub mod memory;
pub mod page;
pub mod phase;
pub mod record;
pub mod select;
pub mod varint;
pub mod xbzrle;
pub mod zero;

pub use bitmap::PageBitmap;
pub use decoder::{ApplyError, Decoder};
pub use encoder::{CostPolicy, Encoder, EncoderConfig, EncoderStats};
pub use hash::ContentHash;
pub use memory::{DestinationMemory, InMemory};
pub use page::{InvalidPageSize, PageCount, PageNumber, PageSize};
pub use record::{Encoding, EncodingSet, PageRecord, RecordBody};
pub use xbzrle::{XbzrleDecodeError, XbzrleGaveUp, XbzrleMode};
