//! XBZRLE: QEMU's delta encoding of a page against its previous version, both directions.
//!
//! # The format
//! The byte-wise XOR of the old and new page is described as pairs `(zrun, nzrun)`: `zrun`
//! unchanged bytes, then `nzrun` changed bytes followed by those `nzrun` bytes of the **new**
//! page. Lengths are ULEB128 of one or two bytes, so no run can be longer than
//! [`MAX_RUN`] (`0x3fff`) bytes. The first `zrun` is always written (it may be 0), every later
//! one is at least 1, every `nzrun` is at least 1, and a trailing unchanged run is not
//! written. Identical pages encode to nothing. The destination applies the pairs in place to
//! its copy of the old page.
//!
//! # Encoder modes
//! - [`XbzrleMode::Qemu`] writes exactly the bytes QEMU's `xbzrle_encode_buffer` writes, and
//!   gives up exactly when it does, quirks included: it gives up when fewer than two bytes of
//!   room are left after the last changed run even if only unchanged bytes follow, and (for an
//!   output limit below 2) even for identical pages.
//! - [`XbzrleMode::Compact`] (the default) absorbs every 1-byte unchanged gap between two
//!   changed bytes into one changed run: the gap's byte replaces a `zrun` length byte, and the
//!   `nzrun` lengths of the joined runs (at least two bytes) become one length of at most two.
//!   (The last byte of each 4 KiB chunk of a larger page is left as it is.) Its output is never
//!   larger than QEMU's, QEMU's decoder reads it, and it gives up only when its delta does not
//!   fit: never when QEMU's would fit.
//!
//! # Pages larger than 4 KiB
//! QEMU only writes 4 KiB pages, where no run passes `0x3fff`. For larger pages, in both modes:
//! an unchanged run longer than [`MAX_RUN`] is split by rewriting one unchanged byte as a
//! changed run of length 1 (`zrun` of up to `0x3fff`, `nzrun` 1, then the rest of the
//! unchanged run, at least one byte); a changed run longer than [`MAX_RUN`] cannot be
//! written, so the encoder gives up. (Compact cuts a joined run longer than [`MAX_RUN`] at one
//! of the gaps it absorbed, and gives up only when a changed run itself is that long.)
//!
//! # Decoding
//! [`decode`] accepts exactly what QEMU's `xbzrle_decode_buffer` accepts, and names the
//! offset of the first problem in the delta otherwise: input ending inside a length or a run's
//! bytes, a second length byte with bit `0x80` set, a zero-length changed run, a zero-length
//! unchanged run anywhere but at the start, or a run passing the page end.

mod changes;
mod decode;
mod encode;
#[cfg(test)]
mod proptests;
#[allow(unsafe_code)]
mod simd;
mod uleb;

pub use decode::decode;
pub use encode::encode;
pub use uleb::MAX_RUN;

/// Which XBZRLE encoder to run; both write QEMU's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum XbzrleMode {
    /// The bytes QEMU's encoder writes, byte for byte, and its give-up rules.
    Qemu,
    /// Never larger than [`XbzrleMode::Qemu`] and usually smaller; still read by QEMU.
    #[default]
    Compact,
}

/// The delta would not fit in the output limit (or cannot be written; see [`encode`]), so the
/// page must be sent another way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the XBZRLE delta does not fit in the output limit")]
pub struct XbzrleGaveUp;

/// Why a delta was rejected; `offset` is the position in the delta where the problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum XbzrleDecodeError {
    /// The delta ends inside a run length.
    #[error("XBZRLE delta ends inside a run length at offset {offset}")]
    TruncatedLength {
        /// Where the length starts.
        offset: usize,
    },
    /// The second byte of a run length has bit `0x80` set (longer than two bytes).
    #[error("XBZRLE run length at offset {offset} is longer than two bytes")]
    LengthTooLong {
        /// Where the length starts.
        offset: usize,
    },
    /// A changed run (`nzrun`) of length zero.
    #[error("XBZRLE changed run of length zero at offset {offset}")]
    EmptyChangedRun {
        /// Where the length is.
        offset: usize,
    },
    /// An unchanged run (`zrun`) of length zero other than the first.
    #[error("XBZRLE unchanged run of length zero at offset {offset} (only the first may be)")]
    EmptyUnchangedRun {
        /// Where the length is.
        offset: usize,
    },
    /// A run reaches past the end of the page.
    #[error("XBZRLE run at offset {offset} passes the end of the page")]
    PastPageEnd {
        /// Where the run's length is.
        offset: usize,
    },
    /// The delta ends inside a changed run's bytes.
    #[error(
        "XBZRLE changed run at offset {offset} needs {needed} bytes, the delta has {available}"
    )]
    TruncatedData {
        /// Where the run's bytes start.
        offset: usize,
        /// The run's length.
        needed: usize,
        /// The bytes left in the delta.
        available: usize,
    },
}
