//! LZ4 block compression of pages and deltas (lz4_flex block format, no size prefix).

use lz4_flex::block::{self, CompressTable};

use super::{Compression, DecompressError};

/// A reusable LZ4 compressor: its hash table and output buffer live as long as it does.
///
/// ```
/// use pagewire_codec::compress::{lz4, Lz4Compressor};
///
/// let page = [b"pagewire ".as_slice(); 512].concat()[..4096].to_vec();
/// let mut lz4c = Lz4Compressor::new();
/// let block = lz4c.compress(&page, 4095).expect("text compresses").to_vec();
/// let mut back = vec![0u8; 4096];
/// lz4::decompress(&block, &mut back).unwrap();
/// assert_eq!(back, page);
/// ```
#[derive(Default)]
pub struct Lz4Compressor {
    table: CompressTable,
    out: Vec<u8>,
    /// Length of the last successful output in `out` (0 after a failure).
    last_len: usize,
}

impl std::fmt::Debug for Lz4Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lz4Compressor").finish_non_exhaustive()
    }
}

impl Lz4Compressor {
    /// A compressor with an empty table; buffers grow on first use to the largest input seen.
    pub fn new() -> Lz4Compressor {
        Lz4Compressor::default()
    }

    /// Compresses `input` into one LZ4 block and returns it if it is at most `limit` bytes
    /// long; `None` if the block would be longer (the input does not compress well enough).
    pub fn compress(&mut self, input: &[u8], limit: usize) -> Option<&[u8]> {
        let needed = block::get_maximum_output_size(input.len());
        if self.out.len() < needed {
            self.out.resize(needed, 0);
        }
        self.last_len = 0;
        let len = block::compress_into_with_table(input, &mut self.out, &mut self.table).ok()?;
        if len > limit {
            return None;
        }
        self.last_len = len;
        Some(&self.out[..len])
    }

    /// The block the last call to [`compress`](Self::compress) returned (empty if it
    /// returned `None`).
    pub fn last_output(&self) -> &[u8] {
        &self.out[..self.last_len]
    }
}

/// Decompresses the LZ4 block `input` into `out`, which it must fill exactly.
///
/// Never writes past `out` and never allocates: a block that decompresses to more or fewer
/// bytes than `out.len()`, or that is not a valid block, is an error.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<(), DecompressError> {
    let expected = out.len();
    match block::decompress_into(input, out) {
        Ok(actual) if actual == expected => Ok(()),
        Ok(actual) => Err(DecompressError::TooShort {
            codec: Compression::Lz4,
            expected,
            actual,
        }),
        Err(block::DecompressError::OutputTooSmall { .. }) => Err(DecompressError::TooLong {
            codec: Compression::Lz4,
            expected,
        }),
        Err(other) => Err(DecompressError::Corrupt {
            codec: Compression::Lz4,
            reason: lz4_reason(&other),
        }),
    }
}

fn lz4_reason(error: &block::DecompressError) -> &'static str {
    match error {
        block::DecompressError::LiteralOutOfBounds => "literal runs past the input",
        block::DecompressError::ExpectedAnotherByte => "input ends inside a sequence",
        block::DecompressError::OffsetZero => "match offset is zero",
        block::DecompressError::OffsetOutOfBounds => "match offset points before the output",
        _ => "invalid block",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_gives_up_past_the_limit() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let mut c = Lz4Compressor::new();
        assert!(c.compress(&random, 4095).is_none());
        assert!(c.compress(&[0u8; 4096], 4095).unwrap().len() < 64);
    }

    #[test]
    fn decompress_rejects_wrong_sizes_and_garbage() {
        let mut c = Lz4Compressor::new();
        let block = c.compress(&[5u8; 4096], 4096).unwrap().to_vec();
        let mut small = vec![0u8; 4095];
        assert_eq!(
            decompress(&block, &mut small),
            Err(DecompressError::TooLong {
                codec: Compression::Lz4,
                expected: 4095
            })
        );
        let mut big = vec![0u8; 4097];
        assert!(matches!(
            decompress(&block, &mut big),
            Err(DecompressError::TooShort { actual: 4096, .. })
        ));
        let mut page = vec![0u8; 4096];
        assert!(decompress(&[0xff, 0xff, 0xff], &mut page).is_err());
        assert!(decompress(&[], &mut page).is_err());
    }
}
