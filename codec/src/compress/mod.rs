//! Page compression: whole pages as one LZ4 block ([`lz4`]) or one zstd frame ([`zstd`]), and
//! XBZRLE deltas as one LZ4 block (the `xbzrle+lz4` encoding).
//!
//! Compressors own their contexts and output buffers and are reused page after page, so the
//! hot path allocates nothing. Decompression is bounded: the caller says exactly how many bytes
//! the payload must decompress to (one page, or the delta's declared length), the output never
//! grows past that, and anything else is a [`DecompressError`].

pub mod lz4;
pub mod zstd;

pub use lz4::Lz4Compressor;
pub use zstd::{ZstdCompressor, ZstdDecompressor};

use std::fmt;

/// A compression format, for error messages and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// An LZ4 block (lz4_flex block format, no size prefix).
    Lz4,
    /// One zstd frame.
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// Why a compressed payload was rejected. All of these mean the bytes are malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The payload is not valid compressed data.
    #[error("{codec} payload is corrupt: {reason}")]
    Corrupt {
        /// The format.
        codec: Compression,
        /// What the decompressor found wrong.
        reason: &'static str,
    },
    /// The payload decompresses to more than the expected length.
    #[error("{codec} payload decompresses to more than the expected {expected} bytes")]
    TooLong {
        /// The format.
        codec: Compression,
        /// The exact length the payload had to decompress to.
        expected: usize,
    },
    /// The payload decompresses to fewer bytes than expected.
    #[error("{codec} payload decompresses to {actual} bytes, expected exactly {expected}")]
    TooShort {
        /// The format.
        codec: Compression,
        /// The exact length the payload had to decompress to.
        expected: usize,
        /// The length it decompressed to.
        actual: usize,
    },
    /// A zstd payload holds bytes after its one frame (a second frame, or garbage).
    #[error("zstd payload has {trailing} bytes after its frame")]
    TrailingBytes {
        /// How many bytes follow the frame.
        trailing: usize,
    },
}
