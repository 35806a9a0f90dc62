//! The destination-side decoder: applies [`PageRecord`]s to a [`DestinationMemory`].
//!
//! Every record is checked before it touches memory: its encoding must be one the peers
//! negotiated (raw is always accepted), its page (or zero run) must lie inside the memory,
//! raw payloads must be one page long, compressed payloads must decompress to exactly one page
//! (or to the delta length they declare, at most one page), and a dedup reference must name a
//! page inside the memory whose content hashes to the record's hash *now*. Nothing is
//! allocated per record beyond one page of scratch space held by the decoder.
//!
//! A destination session's decoder also keeps the hash of every page it writes, so that the
//! commit digest need not read back the pages it wrote (see
//! [`DestinationSession::memory_mut`](crate::session::DestinationSession::memory_mut)).
//!
//! If a record is rejected, no page other than the record's own has changed; the record's own
//! page may have been partly written when an LZ4 or zstd payload turns out corrupt midway
//! (XBZRLE deltas are checked whole before they are applied). A session that sees an error
//! must treat that page as not received.
//!
//! ```
//! use pagewire_codec::decoder::Decoder;
//! use pagewire_codec::memory::InMemory;
//! use pagewire_codec::{EncodingSet, PageCount, PageNumber, PageRecord, PageSize, RecordBody};
//!
//! let mut memory = InMemory::new(PageSize::KIB_4, PageCount(4)).unwrap();
//! let mut decoder = Decoder::new(EncodingSet::all_known());
//! let raw = PageRecord { page: PageNumber(2), body: RecordBody::Raw(vec![7u8; 4096].into()) };
//! decoder.apply(&mut memory, &raw).unwrap();
//! assert_eq!(memory.page(PageNumber(2)).unwrap()[0], 7);
//! let outside = PageRecord { page: PageNumber(4), ..raw };
//! assert!(decoder.apply(&mut memory, &outside).is_err());
//! ```

mod written;

use crate::compress::{DecompressError, ZstdDecompressor, lz4};
use crate::memory::{DestinationMemory, MemoryError};
use crate::xbzrle::{self, XbzrleDecodeError};
use crate::{ContentHash, Encoding, EncodingSet, PageCount, PageNumber, PageRecord, RecordBody};
pub(crate) use written::WrittenHashes;

/// Whose fault an [`ApplyError`] is, following the crate's error families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplyErrorKind {
    /// The record's bytes are malformed (a corrupt payload, a wrong length).
    Malformed,
    /// Well-formed, but the peer broke the protocol (a page outside the memory, an encoding
    /// it did not negotiate, a stale dedup reference).
    PeerMisbehaved,
    /// The destination's own memory failed.
    Local,
}

/// Why a record could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The record uses an encoding the peers did not negotiate.
    #[error("{page}: encoding {} was not negotiated", encoding.name())]
    NotNegotiated {
        /// The record's page.
        page: PageNumber,
        /// Its encoding.
        encoding: Encoding,
    },
    /// The record's page lies outside the memory.
    #[error("{page} is outside a memory of {page_count}")]
    PageOutOfRange {
        /// The record's page.
        page: PageNumber,
        /// The memory's size.
        page_count: PageCount,
    },
    /// A zero run reaches past the end of the memory.
    #[error("zero run of {count} pages from {first} passes the end of a memory of {page_count}")]
    ZeroRunOutOfRange {
        /// The run's first page.
        first: PageNumber,
        /// Its length.
        count: u64,
        /// The memory's size.
        page_count: PageCount,
    },
    /// A zero run of no pages.
    #[error("{page}: zero run of length 0")]
    EmptyZeroRun {
        /// The run's page.
        page: PageNumber,
    },
    /// A raw payload that is not exactly one page.
    #[error("{page}: raw payload of {actual} bytes, pages are {expected} bytes")]
    RawLength {
        /// The record's page.
        page: PageNumber,
        /// The page size.
        expected: usize,
        /// The payload's length.
        actual: usize,
    },
    /// An XBZRLE+LZ4 record whose declared delta length is 0 or more than a page.
    #[error("{page}: declared delta length {delta_len} is outside 1..={page_size}")]
    DeltaLength {
        /// The record's page.
        page: PageNumber,
        /// The declared length.
        delta_len: u32,
        /// The page size.
        page_size: usize,
    },
    /// An XBZRLE delta that does not apply.
    #[error("{page}: invalid XBZRLE delta")]
    Xbzrle {
        /// The record's page.
        page: PageNumber,
        /// What was wrong.
        #[source]
        error: XbzrleDecodeError,
    },
    /// A compressed payload that does not decompress to exactly the expected length.
    #[error("{page}: invalid compressed payload")]
    Decompress {
        /// The record's page.
        page: PageNumber,
        /// What was wrong.
        #[source]
        error: DecompressError,
    },
    /// A dedup reference to a page outside the memory.
    #[error("{page}: dedup reference to {from}, outside a memory of {page_count}")]
    DedupSourceOutOfRange {
        /// The record's page.
        page: PageNumber,
        /// The page it names.
        from: PageNumber,
        /// The memory's size.
        page_count: PageCount,
    },
    /// A dedup reference whose source page does not hold the content the record names (a
    /// stale reference: the source's index and the destination disagree).
    #[error("{page}: dedup reference to {from} expects content {expected}, it holds {actual}")]
    DedupHashMismatch {
        /// The record's page.
        page: PageNumber,
        /// The page it names.
        from: PageNumber,
        /// The hash the record carries.
        expected: ContentHash,
        /// The hash of what the named page holds.
        actual: ContentHash,
    },
    /// The destination memory failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

impl ApplyError {
    /// Whose fault the error is.
    pub fn kind(&self) -> ApplyErrorKind {
        match self {
            ApplyError::NotNegotiated { .. }
            | ApplyError::PageOutOfRange { .. }
            | ApplyError::ZeroRunOutOfRange { .. }
            | ApplyError::DedupSourceOutOfRange { .. }
            | ApplyError::DedupHashMismatch { .. } => ApplyErrorKind::PeerMisbehaved,
            ApplyError::EmptyZeroRun { .. }
            | ApplyError::RawLength { .. }
            | ApplyError::DeltaLength { .. }
            | ApplyError::Xbzrle { .. }
            | ApplyError::Decompress { .. } => ApplyErrorKind::Malformed,
            ApplyError::Memory(_) => ApplyErrorKind::Local,
        }
    }
}

/// Applies page records to a destination memory. See the [module docs](self).
pub struct Decoder {
    encodings: EncodingSet,
    zstd: ZstdDecompressor,
    /// One page, for memories that cannot lend pages and for dedup copies.
    scratch: Vec<u8>,
    /// One page of zeros, for zero runs.
    zeros: Vec<u8>,
    /// A decompressed XBZRLE+LZ4 delta (at most one page).
    delta: Vec<u8>,
    /// The hash of each page as written, while kept (see [`Decoder::keep_written_hashes`]).
    written: Option<WrittenHashes>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("encodings", &self.encodings)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder accepting the `encodings` the peers negotiated (and raw, always).
    pub fn new(encodings: EncodingSet) -> Decoder {
        Decoder {
            encodings,
            zstd: ZstdDecompressor::new(),
            scratch: Vec::new(),
            zeros: Vec::new(),
            delta: Vec::new(),
            written: None,
        }
    }

    /// From now on, accepts the `encodings` the peers negotiated (and raw): a resumed
    /// migration may negotiate anew. The hashes kept of written pages stay.
    pub(crate) fn set_encodings(&mut self, encodings: EncodingSet) {
        self.encodings = encodings;
    }

    /// Keeps the hash of every page this decoder writes to a memory of `page_count` pages,
    /// which nothing else writes until [`Decoder::forget_written_hashes`]; false (and
    /// nothing kept) if the memory for the hashes cannot be had.
    pub(crate) fn keep_written_hashes(&mut self, page_count: PageCount) -> bool {
        self.written = WrittenHashes::new(page_count).ok();
        self.written.is_some()
    }

    /// The hash of `page`'s content as this decoder wrote it, if it keeps hashes and wrote
    /// the page whole.
    pub(crate) fn written_hash(&self, page: PageNumber) -> Option<ContentHash> {
        self.written.as_ref()?.get(page)
    }

    /// Stops keeping hashes and drops those kept: the memory may change by other means now.
    /// Hands them over, for a caller that knows which of them still hold.
    pub(crate) fn forget_written_hashes(&mut self) -> Option<WrittenHashes> {
        self.written.take()
    }

    /// Applies every record of `records` in order, stopping at the first error.
    pub fn apply_all<M: DestinationMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        records: &[PageRecord],
    ) -> Result<(), ApplyError> {
        records
            .iter()
            .try_for_each(|record| self.apply(memory, record))
    }

    /// Applies one record to `memory`.
    pub fn apply<M: DestinationMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        record: &PageRecord,
    ) -> Result<(), ApplyError> {
        let result = self.apply_record(memory, record);
        if result.is_err() {
            // The record's pages may be written in part; which ones is not worth tracking on
            // a path that ends the migration.
            self.written = None;
        }
        result
    }

    fn apply_record<M: DestinationMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        record: &PageRecord,
    ) -> Result<(), ApplyError> {
        let page = record.page;
        let encoding = record.body.encoding();
        if encoding != Encoding::Raw && !self.encodings.contains(encoding) {
            return Err(ApplyError::NotNegotiated { page, encoding });
        }
        let page_size = memory.page_size().bytes();
        let page_count = memory.page_count();
        if let RecordBody::ZeroRun { count } = record.body {
            return self.apply_zero_run(memory, page, count);
        }
        if !page_count.contains(page) {
            return Err(ApplyError::PageOutOfRange { page, page_count });
        }
        let track = self.written.is_some();
        let written = match &record.body {
            RecordBody::ZeroRun { .. } => None,
            RecordBody::Raw(bytes) => {
                if bytes.len() != page_size {
                    return Err(ApplyError::RawLength {
                        page,
                        expected: page_size,
                        actual: bytes.len(),
                    });
                }
                memory.write_page(page, bytes)?;
                track.then(|| ContentHash::of(bytes))
            }
            RecordBody::Xbzrle(delta) => {
                modify_page(memory, &mut self.scratch, page, true, track, |target| {
                    xbzrle::decode(delta, target)
                        .map_err(|error| ApplyError::Xbzrle { page, error })
                })?
            }
            RecordBody::Dedup { source, hash } => {
                if !page_count.contains(*source) {
                    return Err(ApplyError::DedupSourceOutOfRange {
                        page,
                        from: *source,
                        page_count,
                    });
                }
                self.scratch.resize(page_size, 0);
                memory.read_page(*source, &mut self.scratch)?;
                // The hash kept of the source page is its content's: only this decoder wrote
                // the memory since.
                let actual = self
                    .written_hash(*source)
                    .unwrap_or_else(|| ContentHash::of(&self.scratch));
                if actual != *hash {
                    return Err(ApplyError::DedupHashMismatch {
                        page,
                        from: *source,
                        expected: *hash,
                        actual,
                    });
                }
                memory.write_page(page, &self.scratch)?;
                Some(actual)
            }
            RecordBody::Lz4(block) => {
                modify_page(memory, &mut self.scratch, page, false, track, |target| {
                    lz4::decompress(block, target)
                        .map_err(|error| ApplyError::Decompress { page, error })
                })?
            }
            RecordBody::Zstd(frame) => {
                let zstd = &mut self.zstd;
                modify_page(memory, &mut self.scratch, page, false, track, |target| {
                    zstd.decompress(frame, target)
                        .map_err(|error| ApplyError::Decompress { page, error })
                })?
            }
            RecordBody::XbzrleLz4 {
                delta_len,
                compressed,
            } => {
                let len = *delta_len as usize;
                if len == 0 || len > page_size {
                    return Err(ApplyError::DeltaLength {
                        page,
                        delta_len: *delta_len,
                        page_size,
                    });
                }
                self.delta.resize(len, 0);
                let delta = &mut self.delta[..len];
                lz4::decompress(compressed, delta)
                    .map_err(|error| ApplyError::Decompress { page, error })?;
                let delta = &*delta;
                modify_page(memory, &mut self.scratch, page, true, track, |target| {
                    xbzrle::decode(delta, target)
                        .map_err(|error| ApplyError::Xbzrle { page, error })
                })?
            }
        };
        if let (Some(kept), Some(hash)) = (&mut self.written, written) {
            kept.set(page, hash);
        }
        Ok(())
    }

    fn apply_zero_run<M: DestinationMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        first: PageNumber,
        count: u64,
    ) -> Result<(), ApplyError> {
        let page_count = memory.page_count();
        if count == 0 {
            return Err(ApplyError::EmptyZeroRun { page: first });
        }
        match first.checked_add(count) {
            Some(end) if end.0 <= page_count.0 => {}
            _ => {
                return Err(ApplyError::ZeroRunOutOfRange {
                    first,
                    count,
                    page_count,
                });
            }
        }
        self.zeros.resize(memory.page_size().bytes(), 0);
        let zero_hash = self.written.is_some().then(|| ContentHash::of(&self.zeros));
        for page in first.0..first.0 + count {
            let page = PageNumber(page);
            match memory.page_mut(page)? {
                Some(target) => target.fill(0),
                None => memory.write_page(page, &self.zeros)?,
            }
            if let (Some(kept), Some(hash)) = (&mut self.written, zero_hash) {
                kept.set(page, hash);
            }
        }
        Ok(())
    }
}

/// Runs `change` on `page`'s bytes: in place if the memory lends the page, otherwise on a copy
/// in `scratch` (read first if `needs_old`) that is written back if `change` succeeds. With
/// `hash`, returns the hash of the page's new content, taken while it is in the cache.
fn modify_page<M: DestinationMemory + ?Sized>(
    memory: &mut M,
    scratch: &mut Vec<u8>,
    page: PageNumber,
    needs_old: bool,
    hash: bool,
    change: impl FnOnce(&mut [u8]) -> Result<(), ApplyError>,
) -> Result<Option<ContentHash>, ApplyError> {
    if let Some(target) = memory.page_mut(page)? {
        change(target)?;
        return Ok(hash.then(|| ContentHash::of(target)));
    }
    scratch.resize(memory.page_size().bytes(), 0);
    if needs_old {
        memory.read_page(page, scratch)?;
    }
    change(scratch)?;
    memory.write_page(page, scratch)?;
    Ok(hash.then(|| ContentHash::of(scratch)))
}
