//! zstd compression of pages: one zstd frame per page, with reused contexts.

use zstd::zstd_safe::{self, CCtx, CParameter, DCtx};

use super::{Compression, DecompressError};

/// The zstd level the encoder uses unless configured otherwise: level 1, the fastest of the
/// standard levels (about 0.3 GB/s on real pages on the reference machines, ratio 2 to 2.9).
pub const DEFAULT_LEVEL: i32 = 1;

/// A reusable zstd compressor: one compression context, created once.
pub struct ZstdCompressor {
    cctx: CCtx<'static>,
    level: i32,
    out: Vec<u8>,
    /// Length of the last successful output in `out` (0 after a failure).
    last_len: usize,
}

impl std::fmt::Debug for ZstdCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdCompressor")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// The zstd level is outside the range the linked zstd library accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("zstd level {level} is outside {min}..={max}")]
pub struct InvalidZstdLevel {
    /// The level asked for.
    pub level: i32,
    /// The lowest level accepted.
    pub min: i32,
    /// The highest level accepted.
    pub max: i32,
}

impl ZstdCompressor {
    /// A compressor at `level` (see [`DEFAULT_LEVEL`]); frames carry their content size and
    /// no checksum (the record is already covered by the transport and the commit digest).
    pub fn new(level: i32) -> Result<ZstdCompressor, InvalidZstdLevel> {
        let (min, max) = (zstd_safe::min_c_level(), zstd_safe::max_c_level());
        if !(min..=max).contains(&level) {
            return Err(InvalidZstdLevel { level, min, max });
        }
        let mut cctx = CCtx::create();
        let invalid = InvalidZstdLevel { level, min, max };
        cctx.set_parameter(CParameter::CompressionLevel(level))
            .map_err(|_| invalid)?;
        cctx.set_parameter(CParameter::ChecksumFlag(false))
            .map_err(|_| invalid)?;
        cctx.set_parameter(CParameter::ContentSizeFlag(true))
            .map_err(|_| invalid)?;
        Ok(ZstdCompressor {
            cctx,
            level,
            out: Vec::new(),
            last_len: 0,
        })
    }

    /// The compression level.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Compresses `input` into one zstd frame and returns it if it is at most `limit` bytes
    /// long; `None` if it would be longer.
    pub fn compress(&mut self, input: &[u8], limit: usize) -> Option<&[u8]> {
        if self.out.len() < limit {
            self.out.resize(limit, 0);
        }
        self.last_len = 0;
        let len = self.cctx.compress2(&mut self.out[..limit], input).ok()?;
        self.last_len = len;
        Some(&self.out[..len])
    }

    /// The frame the last call to [`compress`](Self::compress) returned (empty if it
    /// returned `None`).
    pub fn last_output(&self) -> &[u8] {
        &self.out[..self.last_len]
    }
}

/// A reusable zstd decompressor: one decompression context, created once.
pub struct ZstdDecompressor {
    dctx: DCtx<'static>,
}

impl std::fmt::Debug for ZstdDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdDecompressor").finish_non_exhaustive()
    }
}

impl Default for ZstdDecompressor {
    fn default() -> Self {
        ZstdDecompressor::new()
    }
}

impl ZstdDecompressor {
    /// A decompressor with a fresh context.
    pub fn new() -> ZstdDecompressor {
        ZstdDecompressor {
            dctx: DCtx::create(),
        }
    }

    /// Decompresses `input`, which must be exactly one zstd frame, into `out`, which it must
    /// fill exactly.
    ///
    /// The frame's declared content size is checked before decompression; decompression
    /// writes only into `out` and allocates nothing beyond the reused context.
    pub fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), DecompressError> {
        let expected = out.len();
        let frame_len = zstd_safe::find_frame_compressed_size(input).map_err(corrupt)?;
        if frame_len != input.len() {
            return Err(DecompressError::TrailingBytes {
                trailing: input.len().saturating_sub(frame_len),
            });
        }
        match zstd_safe::get_frame_content_size(input) {
            Ok(Some(declared)) if declared > expected as u64 => {
                return Err(DecompressError::TooLong {
                    codec: Compression::Zstd,
                    expected,
                });
            }
            Ok(Some(declared)) if declared < expected as u64 => {
                return Err(DecompressError::TooShort {
                    codec: Compression::Zstd,
                    expected,
                    actual: declared as usize,
                });
            }
            Ok(_) => {}
            Err(_) => {
                return Err(DecompressError::Corrupt {
                    codec: Compression::Zstd,
                    reason: "invalid frame header",
                });
            }
        }
        let actual = self.dctx.decompress(out, input).map_err(|code| {
            if zstd_safe::get_error_name(code) == zstd_safe::get_error_name(DST_TOO_SMALL) {
                DecompressError::TooLong {
                    codec: Compression::Zstd,
                    expected,
                }
            } else {
                corrupt(code)
            }
        })?;
        if actual == expected {
            Ok(())
        } else {
            Err(DecompressError::TooShort {
                codec: Compression::Zstd,
                expected,
                actual,
            })
        }
    }
}

/// zstd's error code for "destination buffer is too small" (`ZSTD_error_dstSize_tooSmall`),
/// as the negated code the library returns.
const DST_TOO_SMALL: usize =
    0usize.wrapping_sub(zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize);

fn corrupt(code: usize) -> DecompressError {
    DecompressError::Corrupt {
        codec: Compression::Zstd,
        reason: zstd_safe::get_error_name(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_page() -> Vec<u8> {
        [b"zstd pages ".as_slice(); 400].concat()[..4096].to_vec()
    }

    #[test]
    fn round_trip_reuses_one_context() {
        let mut c = ZstdCompressor::new(DEFAULT_LEVEL).unwrap();
        let mut d = ZstdDecompressor::new();
        for fill in 0..4u8 {
            let mut page = text_page();
            page[100] = fill;
            let frame = c.compress(&page, 4095).unwrap().to_vec();
            let mut back = vec![0u8; 4096];
            d.decompress(&frame, &mut back).unwrap();
            assert_eq!(back, page);
        }
    }

    #[test]
    fn rejects_levels_outside_the_library_range() {
        assert!(ZstdCompressor::new(1000).is_err());
    }

    #[test]
    fn decompress_rejects_wrong_sizes_two_frames_and_garbage() {
        let mut c = ZstdCompressor::new(DEFAULT_LEVEL).unwrap();
        let mut d = ZstdDecompressor::new();
        let frame = c.compress(&text_page(), 4096).unwrap().to_vec();
        let mut small = vec![0u8; 4095];
        assert!(matches!(
            d.decompress(&frame, &mut small),
            Err(DecompressError::TooLong { expected: 4095, .. })
        ));
        let mut big = vec![0u8; 8192];
        assert!(matches!(
            d.decompress(&frame, &mut big),
            Err(DecompressError::TooShort { actual: 4096, .. })
        ));
        let two = [frame.clone(), frame.clone()].concat();
        let mut page = vec![0u8; 4096];
        assert_eq!(
            d.decompress(&two, &mut page),
            Err(DecompressError::TrailingBytes {
                trailing: frame.len()
            })
        );
        assert!(matches!(
            d.decompress(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &mut page),
            Err(DecompressError::Corrupt { .. })
        ));
        assert!(d.decompress(&[], &mut page).is_err());
    }
}
