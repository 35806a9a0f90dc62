//! The source-side encoder: turns (page number, current bytes) into the [`PageRecord`] to send,
//! choosing per page the cheapest encoding the peers negotiated under a [`CostPolicy`].
//!
//! The encoder owns the source's state: the [`PageCache`] of last-sent versions (bases of
//! XBZRLE deltas) and the [`DedupIndex`] of what the destination holds. Both stay exact
//! because every page the encoder returns a record for updates both: the cache entry for the
//! page is replaced (or dropped), and the index learns the page's new content (or forgets
//! the page). The destination must apply the records in the order the encoder produced them
//! for each page (and, for dedup references, in the order produced across pages; it checks
//! the content hash of every reference and rejects a stale one).
//!
//! Candidates are tried cheapest first, and one that cannot beat the best so far (by a lower
//! bound on its size, plus its CPU time under [`CostPolicy::LinkTime`]) is skipped:
//! 1. the zero check (memory speed): a zero page is a [`RecordBody::ZeroRun`] and nothing else
//!    is tried;
//! 2. the content hash (xxh3-128, memory speed), if dedup is negotiated: if the destination
//!    already holds this content at this page, there is nothing to send; if it holds it at
//!    another page, a dedup reference is a candidate;
//! 3. on a cache hit, the XBZRLE delta against the last version sent (identical: nothing to
//!    send), then LZ4 of that delta;
//! 4. LZ4 of the page, then zstd of the page (skipped when LZ4 could not shrink the page at
//!    all: such pages are random bytes, and zstd would spend more time to fail too);
//! 5. raw, which always fits: no record is ever larger than raw.
//!
//! ```
//! use pagewire_codec::encoder::{Encoder, EncoderConfig};
//! use pagewire_codec::{Encoding, EncodingSet, PageNumber, PageSize, RecordBody};
//!
//! let config = EncoderConfig::new(PageSize::KIB_4, EncodingSet::all_known());
//! let mut encoder = Encoder::new(config).unwrap();
//! let mut page = vec![0u8; 4096];
//! let record = encoder.encode_page(PageNumber(0), &page).unwrap().unwrap();
//! assert_eq!(record.body, RecordBody::ZeroRun { count: 1 });
//! page[100..108].copy_from_slice(b"pagewire");
//! encoder.encode_page(PageNumber(0), &page).unwrap(); // sent once (lz4: the cache learns it)
//! page[200] = 1;
//! let delta = encoder.encode_page(PageNumber(0), &page).unwrap().unwrap();
//! assert_eq!(delta.body.encoding(), Encoding::Xbzrle);
//! // Sent already: nothing to send.
//! assert_eq!(encoder.encode_page(PageNumber(0), &page).unwrap(), None);
//! ```

mod admission;
mod policy;
mod stats;

pub use admission::CacheAdmission;
pub use policy::{CostPolicy, CpuRates, InvalidRate, LinkTime};
pub use stats::{EncoderStats, EncodingStats};

use bytes::{Bytes, BytesMut};

use crate::cache::PageCache;
use crate::compress::zstd::{DEFAULT_LEVEL, InvalidZstdLevel};
use crate::compress::{Lz4Compressor, ZstdCompressor};
use crate::dedup::{DEFAULT_MAX_ENTRIES, DedupIndex};
use crate::varint::encoded_len as varint_len;
use crate::xbzrle::{self, XbzrleMode};
use crate::{
    ContentHash, Encoding, EncodingSet, PageNumber, PageRecord, PageSize, RecordBody, zero,
};
use admission::SentBefore;

/// The default size of the cache of last-sent versions: 64 MiB (QEMU's default XBZRLE cache).
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// How an [`Encoder`] is set up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncoderConfig {
    /// The size of every page.
    pub page_size: PageSize,
    /// The encodings both peers support (from the hello exchange). [`Encoding::Raw`] is used
    /// whatever this says: it is the fallback every peer must accept.
    pub encodings: EncodingSet,
    /// Bytes of page content the cache of last-sent versions may hold (XBZRLE bases).
    pub cache_bytes: u64,
    /// Which sends enter that cache.
    pub cache_admission: CacheAdmission,
    /// How many pages the dedup index may track at a time.
    pub dedup_entries: usize,
    /// The zstd level.
    pub zstd_level: i32,
    /// How XBZRLE deltas are written.
    pub xbzrle_mode: XbzrleMode,
    /// How candidates are ranked.
    pub policy: CostPolicy,
}

impl EncoderConfig {
    /// Defaults for everything but the page size and the negotiated encodings: a 64 MiB cache
    /// that every send enters ([`CacheAdmission::EverySend`]: the memory's size is not known
    /// here), [`DEFAULT_MAX_ENTRIES`] dedup entries, zstd level 1, compact XBZRLE, smallest
    /// bytes.
    pub fn new(page_size: PageSize, encodings: EncodingSet) -> EncoderConfig {
        EncoderConfig {
            page_size,
            encodings,
            cache_bytes: DEFAULT_CACHE_BYTES,
            cache_admission: CacheAdmission::EverySend,
            dedup_entries: DEFAULT_MAX_ENTRIES,
            zstd_level: DEFAULT_LEVEL,
            xbzrle_mode: XbzrleMode::default(),
            policy: CostPolicy::SmallestBytes,
        }
    }
}

/// An [`EncoderConfig`] the encoder cannot work with.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The zstd level is out of range.
    #[error(transparent)]
    ZstdLevel(#[from] InvalidZstdLevel),
    /// A rate of the cost policy is not positive.
    #[error(transparent)]
    Rate(#[from] InvalidRate),
}

/// A page handed to the encoder is not one page long (a caller bug).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{page}: {actual} bytes handed to the encoder, pages are {expected} bytes")]
pub struct WrongPageLength {
    /// The page.
    pub page: PageNumber,
    /// The page size.
    pub expected: usize,
    /// The length given.
    pub actual: usize,
}

/// The source's page encoder. See the [module docs](self).
pub struct Encoder {
    config: EncoderConfig,
    cache: PageCache,
    /// Which pages were sent before, for the cache's admission.
    sent_before: SentBefore,
    dedup: DedupIndex,
    lz4: Lz4Compressor,
    zstd: ZstdCompressor,
    /// Where XBZRLE writes its delta; one page long (the longest delta the wire allows).
    delta: Vec<u8>,
    /// The LZ4 block of the delta while it is the best candidate (the LZ4 compressor's buffer
    /// is reused for the page next).
    delta_block: Vec<u8>,
    /// Payloads of returned records are split off this buffer, so they share few allocations.
    arena: BytesMut,
    stats: EncoderStats,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A candidate the encoder has computed but not yet materialized.
#[derive(Clone, Copy, Debug)]
enum Candidate {
    Raw,
    Dedup {
        source: PageNumber,
        hash: ContentHash,
    },
    /// The delta is in `Encoder::delta[..len]`.
    Xbzrle {
        len: usize,
    },
    /// The compressed delta is in `Encoder::delta_block`.
    XbzrleLz4 {
        delta_len: usize,
    },
    /// The block is the LZ4 compressor's last output.
    Lz4,
    /// The frame is the zstd compressor's last output.
    Zstd,
}

/// The best candidate so far, with its wire size and cost under the policy.
#[derive(Clone, Copy, Debug)]
struct Best {
    candidate: Candidate,
    cost: f64,
}

impl Encoder {
    /// An encoder with empty state (the destination holds nothing the encoder knows of).
    pub fn new(config: EncoderConfig) -> Result<Encoder, ConfigError> {
        config.policy.validate()?;
        let zstd = ZstdCompressor::new(config.zstd_level)?;
        let uses_cache = config.encodings.contains(Encoding::Xbzrle)
            || config.encodings.contains(Encoding::XbzrleLz4);
        let cache_bytes = if uses_cache { config.cache_bytes } else { 0 };
        Ok(Encoder {
            cache: PageCache::new(cache_bytes, config.page_size),
            sent_before: SentBefore::new(config.cache_admission),
            dedup: DedupIndex::new(config.dedup_entries),
            lz4: Lz4Compressor::new(),
            zstd,
            delta: vec![0; config.page_size.bytes()],
            delta_block: Vec::new(),
            arena: BytesMut::new(),
            stats: EncoderStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Ranks the candidates of the pages encoded from now on by `policy` (for example at a
    /// link speed measured since the encoder was made). What the encoder knows of the
    /// destination stays; an invalid policy is refused and the old one kept.
    pub fn set_policy(&mut self, policy: CostPolicy) -> Result<(), InvalidRate> {
        policy.validate()?;
        self.config.policy = policy;
        Ok(())
    }

    /// The counters so far, the cache's included.
    pub fn stats(&self) -> EncoderStats {
        EncoderStats {
            cache: self.cache.stats(),
            ..self.stats
        }
    }

    /// The record to send for `page`, whose current content is `bytes`, or `None` when the
    /// destination already holds exactly this content for `page` (nothing to send).
    ///
    /// The encoder assumes the record is delivered and applied: it updates its cache and dedup
    /// index as if the destination now holds `bytes` for `page`. If a record is lost, call
    /// [`Encoder::forget_page`] before sending the page again.
    pub fn encode_page(
        &mut self,
        page: PageNumber,
        bytes: &[u8],
    ) -> Result<Option<PageRecord>, WrongPageLength> {
        let page_size = self.config.page_size.bytes();
        if bytes.len() != page_size {
            return Err(WrongPageLength {
                page,
                expected: page_size,
                actual: bytes.len(),
            });
        }
        self.stats.pages_in += 1;
        let body = self.choose(page, bytes);
        if let Some(body) = &body {
            let bytes = body_wire_len(body, self.config.page_size) as u64;
            if let Some(stats) = self.stats.of_mut(body.encoding()) {
                stats.records += 1;
                stats.pages += 1;
                stats.bytes += bytes;
            }
        } else {
            self.stats.unchanged += 1;
        }
        Ok(body.map(|body| PageRecord { page, body }))
    }

    /// Encodes the consecutive pages starting at `first` whose contents are `pages` (a whole
    /// number of pages), appending their records to `out` with consecutive zero pages
    /// coalesced into one [`RecordBody::ZeroRun`] (also with a zero run already at the end of
    /// `out`). An idle memory's first pass costs a few bytes per run, not per page.
    ///
    /// ```
    /// use pagewire_codec::encoder::{Encoder, EncoderConfig};
    /// use pagewire_codec::{EncodingSet, PageNumber, PageSize, RecordBody};
    ///
    /// let mut encoder =
    ///     Encoder::new(EncoderConfig::new(PageSize::KIB_4, EncodingSet::all_known())).unwrap();
    /// let memory = vec![0u8; 1000 * 4096];
    /// let mut records = Vec::new();
    /// encoder.encode_range(PageNumber(0), &memory, &mut records).unwrap();
    /// assert_eq!(records.len(), 1);
    /// assert_eq!(records[0].body, RecordBody::ZeroRun { count: 1000 });
    /// ```
    pub fn encode_range(
        &mut self,
        first: PageNumber,
        pages: &[u8],
        out: &mut Vec<PageRecord>,
    ) -> Result<(), WrongPageLength> {
        let page_size = self.config.page_size.bytes();
        if !pages.len().is_multiple_of(page_size) {
            return Err(WrongPageLength {
                page: first,
                expected: page_size,
                actual: pages.len() % page_size,
            });
        }
        let mut page = first;
        for bytes in pages.chunks_exact(page_size) {
            if let Some(record) = self.encode_page(page, bytes)? {
                self.push_coalesced(out, record);
            }
            page = page.next();
        }
        Ok(())
    }

    /// Appends `record` to `out`, merging it into the zero run at the end of `out` if both are
    /// zero runs and `record` starts where that run ends. Records must come from this encoder
    /// (its statistics count merged runs as one record).
    pub fn push_coalesced(&mut self, out: &mut Vec<PageRecord>, record: PageRecord) {
        if let (
            Some(PageRecord {
                page: last_page,
                body: RecordBody::ZeroRun { count: last_count },
            }),
            RecordBody::ZeroRun { count },
        ) = (out.last_mut(), &record.body)
            && last_page.checked_add(*last_count) == Some(record.page)
            && let Some(merged) = last_count.checked_add(*count)
        {
            let before = varint_len(*last_count) + varint_len(*count);
            let after = varint_len(merged);
            *last_count = merged;
            self.stats.zero.records -= 1;
            self.stats.zero.bytes = self.stats.zero.bytes + after as u64 - before as u64 - 1;
            return;
        }
        out.push(record);
    }

    /// Forgets what the encoder knows of `page` at the destination (its cached version and its
    /// dedup entry): call it when a record for the page may not have been applied (lost,
    /// rejected, or the destination's copy changed some other way). The next record for the
    /// page is then self-contained.
    pub fn forget_page(&mut self, page: PageNumber) {
        self.cache.remove(page);
        self.dedup.forget(page);
    }

    /// Forgets everything the encoder knows of the destination (every cached version and
    /// every dedup entry; the counters stay): after a resume (spec/wire.md §5.3) the next
    /// record for any page is self-contained.
    pub fn forget_all(&mut self) {
        self.cache.clear();
        self.dedup.clear();
    }

    /// Stops making dedup references (for good): the destination's copy of every page may
    /// change without the encoder knowing (post-copy: the guest runs there). XBZRLE deltas stay:
    /// they apply to pages the destination has not touched.
    pub fn stop_dedup(&mut self) {
        self.config.encodings = self.config.encodings.without(Encoding::Dedup);
    }

    /// Picks the body for `page` and updates the cache and dedup index as if it were applied.
    fn choose(&mut self, page: PageNumber, bytes: &[u8]) -> Option<RecordBody> {
        let may_evict = self.sent_before.note_send(page);
        let encodings = self.config.encodings;
        if encodings.contains(Encoding::ZeroRun) && zero::is_zero(bytes) {
            self.forget_page(page);
            return Some(RecordBody::ZeroRun { count: 1 });
        }

        let page_size = bytes.len();
        let policy = self.config.policy;
        let mut best = Best {
            candidate: Candidate::Raw,
            cost: policy.cost(1 + page_size, 0.0),
        };
        // Worth trying: a candidate that could be as small as `min_bytes` after `cpu` seconds.
        let worth =
            |best: &Best, min_bytes: usize, cpu: f64| policy.cost(min_bytes, cpu) < best.cost;

        let hash = encodings
            .contains(Encoding::Dedup)
            .then(|| ContentHash::of(bytes));
        if let Some(hash) = hash {
            if self.dedup.content_of(page) == Some(hash) {
                return None;
            }
            if let Some(source) = self.dedup.holder(hash) {
                let len = 1 + varint_len(source.0) + 16;
                best = Best {
                    candidate: Candidate::Dedup { source, hash },
                    cost: policy.cost(len, 0.0),
                };
            }
        }

        let xbzrle_cpu = policy.cpu_seconds(Encoding::Xbzrle, page_size);
        let wants_xbzrle = encodings.contains(Encoding::Xbzrle);
        let wants_xbzrle_lz4 = encodings.contains(Encoding::XbzrleLz4);
        if (wants_xbzrle || wants_xbzrle_lz4)
            && worth(&best, 1 + 1 + 1, xbzrle_cpu)
            && let Some(old) = self.cache.lookup(page)
        {
            match xbzrle::encode(old, bytes, &mut self.delta, self.config.xbzrle_mode) {
                Ok(0) => {
                    // Identical to the version the destination holds.
                    if let Some(hash) = hash {
                        self.dedup.page_sent(page, hash);
                    }
                    return None;
                }
                Ok(delta_len) => {
                    if wants_xbzrle {
                        best.consider(
                            &policy,
                            Candidate::Xbzrle { len: delta_len },
                            1 + varint_len(delta_len as u64) + delta_len,
                            xbzrle_cpu,
                        );
                    }
                    let lz4_cpu = xbzrle_cpu + policy.cpu_seconds(Encoding::XbzrleLz4, delta_len);
                    let header = 1 + varint_len(delta_len as u64);
                    if wants_xbzrle_lz4
                        && worth(&best, header + 1 + lz4_min_len(delta_len), lz4_cpu)
                        && let Some(block) = self.lz4.compress(&self.delta[..delta_len], delta_len)
                    {
                        let len = block.len();
                        if best.consider(
                            &policy,
                            Candidate::XbzrleLz4 { delta_len },
                            header + varint_len(len as u64) + len,
                            lz4_cpu,
                        ) {
                            self.delta_block.clear();
                            self.delta_block.extend_from_slice(block);
                        }
                    }
                }
                Err(_) => self.cache.note_give_up(),
            }
        }

        let lz4_cpu = policy.cpu_seconds(Encoding::Lz4, page_size);
        let mut lz4_gave_up = false;
        if encodings.contains(Encoding::Lz4)
            && worth(&best, 1 + 1 + lz4_min_len(page_size), lz4_cpu)
        {
            let limit = page_size - 1;
            match self.lz4.compress(bytes, limit) {
                Some(block) => {
                    let len = block.len();
                    best.consider(
                        &policy,
                        Candidate::Lz4,
                        1 + varint_len(len as u64) + len,
                        lz4_cpu,
                    );
                }
                None => lz4_gave_up = true,
            }
        }

        // A page LZ4 cannot shrink at all is nearly always random bytes (encrypted, already
        // compressed): zstd would spend several times LZ4's time to fail too.
        let zstd_cpu = policy.cpu_seconds(Encoding::Zstd, page_size);
        if encodings.contains(Encoding::Zstd)
            && !lz4_gave_up
            && worth(&best, 1 + 1 + ZSTD_MIN_FRAME, zstd_cpu)
            && let Some(frame) = self.zstd.compress(bytes, page_size - 1)
        {
            let len = frame.len();
            best.consider(
                &policy,
                Candidate::Zstd,
                1 + varint_len(len as u64) + len,
                zstd_cpu,
            );
        }

        let body = self.materialize(best.candidate, bytes);
        if may_evict || !self.cache.is_full() {
            self.cache.insert(page, bytes);
        } else {
            // Not admitted: a first send, which the cache cannot hold an older version of (it
            // learns pages only from sends), so it holds nothing for the page, as it must.
            debug_assert!(!self.cache.contains(page));
        }
        if let Some(hash) = hash {
            self.dedup.page_sent(page, hash);
        }
        Some(body)
    }

    /// The record body of a chosen candidate, its payload copied into the arena.
    fn materialize(&mut self, candidate: Candidate, page: &[u8]) -> RecordBody {
        let arena = &mut self.arena;
        match candidate {
            Candidate::Raw => RecordBody::Raw(split_payload(arena, page)),
            Candidate::Dedup { source, hash } => RecordBody::Dedup { source, hash },
            Candidate::Xbzrle { len } => {
                RecordBody::Xbzrle(split_payload(arena, &self.delta[..len]))
            }
            Candidate::XbzrleLz4 { delta_len } => RecordBody::XbzrleLz4 {
                // delta_len <= page size <= 2 MiB.
                delta_len: delta_len as u32,
                compressed: split_payload(arena, &self.delta_block),
            },
            Candidate::Lz4 => RecordBody::Lz4(split_payload(arena, self.lz4.last_output())),
            Candidate::Zstd => RecordBody::Zstd(split_payload(arena, self.zstd.last_output())),
        }
    }
}

impl Best {
    /// Makes `candidate` the best if it costs less; says whether it did.
    fn consider(
        &mut self,
        policy: &CostPolicy,
        candidate: Candidate,
        wire_len: usize,
        cpu: f64,
    ) -> bool {
        let cost = policy.cost(wire_len, cpu);
        let better = cost < self.cost;
        if better {
            *self = Best { candidate, cost };
        }
        better
    }
}

/// Copies `bytes` to the end of `arena` and splits them off as their own [`Bytes`].
fn split_payload(arena: &mut BytesMut, bytes: &[u8]) -> Bytes {
    const ARENA_CHUNK: usize = 256 << 10;
    if arena.capacity() < bytes.len() {
        arena.reserve(bytes.len().max(ARENA_CHUNK));
    }
    arena.extend_from_slice(bytes);
    arena.split().freeze()
}

/// The smallest zstd frame: magic (4), frame header descriptor (1), one block header (3).
const ZSTD_MIN_FRAME: usize = 8;

/// A lower bound on the LZ4 block of `input` bytes: every sequence's match adds at most 255
/// bytes of input per byte of output, and literals cost a byte each.
fn lz4_min_len(input: usize) -> usize {
    (input / 255).max(1)
}

/// The bytes `body` takes in a page batch after its page-number delta: the tag and the body
/// as `spec/wire.md` lays it out.
///
/// ```
/// use pagewire_codec::encoder::body_wire_len;
/// use pagewire_codec::{PageSize, RecordBody};
/// assert_eq!(body_wire_len(&RecordBody::ZeroRun { count: 1 }, PageSize::KIB_4), 2);
/// assert_eq!(body_wire_len(&RecordBody::Raw(vec![0; 4096].into()), PageSize::KIB_4), 4097);
/// ```
pub fn body_wire_len(body: &RecordBody, page_size: PageSize) -> usize {
    let with_len = |n: usize| varint_len(n as u64) + n;
    1 + match body {
        RecordBody::ZeroRun { count } => varint_len(*count),
        RecordBody::Raw(_) => page_size.bytes(),
        RecordBody::Xbzrle(delta) => with_len(delta.len()),
        RecordBody::Dedup { source, .. } => varint_len(source.0) + 16,
        RecordBody::Lz4(block) => with_len(block.len()),
        RecordBody::Zstd(frame) => with_len(frame.len()),
        RecordBody::XbzrleLz4 {
            delta_len,
            compressed,
        } => varint_len(u64::from(*delta_len)) + with_len(compressed.len()),
    }
}
