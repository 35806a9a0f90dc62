//! What the encoder did: records and bytes per encoding, pages in, cache counters.

use crate::Encoding;
use crate::cache::CacheStats;

/// Records, pages and bytes sent in one encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodingStats {
    /// Records produced (a zero run of many pages is one record).
    pub records: u64,
    /// Pages those records cover.
    pub pages: u64,
    /// Bytes those records take in a page batch: tag and body, without the page-number delta
    /// (which depends on the batch).
    pub bytes: u64,
}

/// Counters of an [`Encoder`](super::Encoder), as a plain struct.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Pages handed to the encoder.
    pub pages_in: u64,
    /// Pages not sent because the destination already held exactly their content.
    pub unchanged: u64,
    /// Zero runs.
    pub zero: EncodingStats,
    /// Raw pages.
    pub raw: EncodingStats,
    /// XBZRLE deltas.
    pub xbzrle: EncodingStats,
    /// Dedup references.
    pub dedup: EncodingStats,
    /// LZ4 pages.
    pub lz4: EncodingStats,
    /// zstd pages.
    pub zstd: EncodingStats,
    /// LZ4-compressed XBZRLE deltas.
    pub xbzrle_lz4: EncodingStats,
    /// The cache of last-sent versions.
    pub cache: CacheStats,
}

impl EncoderStats {
    /// The counters of one encoding (all zero for an unknown one).
    pub fn of(&self, encoding: Encoding) -> EncodingStats {
        match encoding {
            Encoding::ZeroRun => self.zero,
            Encoding::Raw => self.raw,
            Encoding::Xbzrle => self.xbzrle,
            Encoding::Dedup => self.dedup,
            Encoding::Lz4 => self.lz4,
            Encoding::Zstd => self.zstd,
            Encoding::XbzrleLz4 => self.xbzrle_lz4,
            Encoding::Unknown(_) => EncodingStats::default(),
        }
    }

    /// Bytes of every record produced, over all encodings.
    pub fn total_bytes(&self) -> u64 {
        Encoding::KNOWN.iter().map(|e| self.of(*e).bytes).sum()
    }

    /// Records produced, over all encodings.
    pub fn total_records(&self) -> u64 {
        Encoding::KNOWN.iter().map(|e| self.of(*e).records).sum()
    }

    pub(crate) fn of_mut(&mut self, encoding: Encoding) -> Option<&mut EncodingStats> {
        Some(match encoding {
            Encoding::ZeroRun => &mut self.zero,
            Encoding::Raw => &mut self.raw,
            Encoding::Xbzrle => &mut self.xbzrle,
            Encoding::Dedup => &mut self.dedup,
            Encoding::Lz4 => &mut self.lz4,
            Encoding::Zstd => &mut self.zstd,
            Encoding::XbzrleLz4 => &mut self.xbzrle_lz4,
            Encoding::Unknown(_) => return None,
        })
    }
}
