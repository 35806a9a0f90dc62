//! Blocks: the checksummed, zstd-compressed units that carry entries.
//!
//! Layout (24-byte header, then the payload):
//! `kind: u8`, 3 reserved zero bytes, `uncompressed_len: u32`, `compressed_len: u32`,
//! 4 reserved zero bytes, `checksum: u64` (xxh3-64 of header bytes 0..16 followed by the
//! compressed payload), then `compressed_len` bytes holding one zstd frame.

use std::io::{self, Read, Write};

use xxhash_rust::xxh3::Xxh3;

use super::error::{ChecksummedPart, Corruption, TraceReadError};
use super::format::{
    BLOCK_HEADER_LEN, BLOCK_KIND_ENTRIES, MAX_BLOCK_COMPRESSED, MAX_BLOCK_UNCOMPRESSED,
};

/// Compresses entry payloads into blocks, reusing its zstd context and buffer.
pub(crate) struct BlockEncoder {
    compressor: zstd::bulk::Compressor<'static>,
    compressed: Vec<u8>,
}

/// Sizes of one written block.
pub(crate) struct WrittenBlock {
    /// Bytes of compressed payload.
    pub(crate) compressed: u64,
    /// Bytes written in total (header and payload).
    pub(crate) total: u64,
}

impl BlockEncoder {
    /// An encoder at zstd `level`.
    pub(crate) fn new(level: i32) -> io::Result<Self> {
        Ok(BlockEncoder {
            compressor: zstd::bulk::Compressor::new(level)?,
            compressed: Vec::new(),
        })
    }

    /// Writes `payload` (1..=[`MAX_BLOCK_UNCOMPRESSED`] bytes) as one block.
    pub(crate) fn write(
        &mut self,
        out: &mut impl Write,
        payload: &[u8],
    ) -> io::Result<WrittenBlock> {
        assert!(!payload.is_empty() && payload.len() <= MAX_BLOCK_UNCOMPRESSED as usize);
        self.compressed.clear();
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(payload.len()));
        self.compressor
            .compress_to_buffer(payload, &mut self.compressed)?;
        let mut header = [0u8; BLOCK_HEADER_LEN];
        header[0] = BLOCK_KIND_ENTRIES;
        header[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[8..12].copy_from_slice(&(self.compressed.len() as u32).to_le_bytes());
        let mut hasher = Xxh3::new();
        hasher.update(&header[..16]);
        hasher.update(&self.compressed);
        header[16..].copy_from_slice(&hasher.digest().to_le_bytes());
        out.write_all(&header)?;
        out.write_all(&self.compressed)?;
        Ok(WrittenBlock {
            compressed: self.compressed.len() as u64,
            total: (BLOCK_HEADER_LEN + self.compressed.len()) as u64,
        })
    }
}

/// Reads and checks blocks, reusing its zstd context and buffers.
pub(crate) struct BlockDecoder {
    decompressor: zstd::bulk::Decompressor<'static>,
    compressed: Vec<u8>,
}

/// Lengths of one block read.
pub(crate) struct ReadBlock {
    /// Bytes of compressed payload.
    pub(crate) compressed: u64,
    /// Bytes the block took in the file.
    pub(crate) total: u64,
}

impl BlockDecoder {
    /// A decoder.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(BlockDecoder {
            decompressor: zstd::bulk::Decompressor::new()?,
            compressed: Vec::new(),
        })
    }

    /// Reads the block at `offset` (which must end by `end`) and decompresses its payload
    /// into `payload` (replacing its contents).
    pub(crate) fn read(
        &mut self,
        input: &mut impl Read,
        offset: u64,
        end: u64,
        payload: &mut Vec<u8>,
    ) -> Result<ReadBlock, TraceReadError> {
        let corrupt = |problem| TraceReadError::Corrupt { offset, problem };
        if end - offset < BLOCK_HEADER_LEN as u64 {
            return Err(corrupt(Corruption::BlockOverrunsFooter));
        }
        let mut header = [0u8; BLOCK_HEADER_LEN];
        input.read_exact(&mut header)?;
        let field = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let (uncompressed, compressed) = (field(4), field(8));
        if uncompressed == 0
            || uncompressed > MAX_BLOCK_UNCOMPRESSED
            || compressed == 0
            || compressed > MAX_BLOCK_COMPRESSED
        {
            return Err(corrupt(Corruption::BlockLength {
                uncompressed,
                compressed,
            }));
        }
        let total = BLOCK_HEADER_LEN as u64 + u64::from(compressed);
        if end - offset < total {
            return Err(corrupt(Corruption::BlockOverrunsFooter));
        }
        self.compressed.resize(compressed as usize, 0);
        input.read_exact(&mut self.compressed)?;
        let mut hasher = Xxh3::new();
        hasher.update(&header[..16]);
        hasher.update(&self.compressed);
        if hasher.digest().to_le_bytes() != header[16..] {
            return Err(TraceReadError::ChecksumMismatch {
                part: ChecksummedPart::Block,
                offset,
            });
        }
        if header[0] != BLOCK_KIND_ENTRIES {
            return Err(corrupt(Corruption::UnknownBlockKind(header[0])));
        }
        if header[1..4] != [0, 0, 0] || header[12..16] != [0, 0, 0, 0] {
            return Err(corrupt(Corruption::ReservedNotZero));
        }
        payload.clear();
        payload.reserve_exact(uncompressed as usize);
        match self
            .decompressor
            .decompress_to_buffer(&self.compressed, payload)
        {
            Ok(n) if n == uncompressed as usize => Ok(ReadBlock {
                compressed: u64::from(compressed),
                total,
            }),
            _ => Err(corrupt(Corruption::Decompression)),
        }
    }
}
