//! Page compression: LZ4 and zstd pages, and LZ4-compressed XBZRLE deltas.
