//! # pagewire-codec
//!
//! The sans-IO core of pagewire: page encodings, the wire frames of the migration protocol,
//! page bitmaps, page-selection strategies and the source/destination session state machines
//! ([`session`]). No sockets, no async, no clock of its own, no panics on any input,
//! bounded memory. `spec/wire.md` is the normative description of the bytes.
//!
//! # Embedding: the encoder on the send path, the decoder on the receive path
//!
//! ```
//! use pagewire_codec::{
//!     Decoder, Encoder, EncoderConfig, EncodingSet, InMemory, PageCount, PageNumber, PageSize,
//! };
//!
//! let encodings = EncodingSet::all_known(); // what both hellos announced
//! let mut guest = InMemory::new(PageSize::KIB_4, PageCount(64)).unwrap();
//! let mut encoder = Encoder::new(EncoderConfig::new(PageSize::KIB_4, encodings)).unwrap();
//! let mut destination = InMemory::new(PageSize::KIB_4, PageCount(64)).unwrap();
//! let mut decoder = Decoder::new(encodings);
//!
//! // First pass: the whole memory; zero pages become runs.
//! let mut records = Vec::new();
//! encoder.encode_range(PageNumber(0), guest.as_bytes(), &mut records).unwrap();
//! decoder.apply_all(&mut destination, &records).unwrap();
//!
//! // The guest writes; the dirty pages are sent again (deltas, dedup, compression, ...).
//! for round in 1..4u8 {
//!     guest.as_bytes_mut()[4096 * 7 + usize::from(round)] = round;
//!     let page = PageNumber(7);
//!     if let Some(record) = encoder.encode_page(page, guest.page(page).unwrap()).unwrap() {
//!         decoder.apply(&mut destination, &record).unwrap();
//!     }
//! }
//! assert!(destination == guest);
//! ```
//! `codec/examples/embed.rs` is a longer version with a guest that keeps writing.
#![deny(unsafe_code)]
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
pub mod session;
pub mod varint;
pub mod xbzrle;
pub mod zero;

pub use bitmap::PageBitmap;
pub use decoder::{ApplyError, Decoder};
pub use encoder::{CostPolicy, Encoder, EncoderConfig, EncoderStats};
pub use error::{EncodeError, Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
pub use frame::{Frame, FrameDecoder, FrameType, Limits, StreamHeader};
pub use hash::ContentHash;
pub use memory::{DestinationMemory, InMemory, SourceMemory};
pub use page::{InvalidPageSize, PageCount, PageNumber, PageSize};
pub use phase::{Direction, Phase, PhaseTracker};
pub use record::{Encoding, EncodingSet, PageRecord, RecordBody};
pub use select::{Decision, Observation, Strategy};
pub use xbzrle::{XbzrleDecodeError, XbzrleGaveUp, XbzrleMode};
