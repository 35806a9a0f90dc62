//! Content hashes of pages: xxh3-128, used for dedup references and commit digests.

use std::fmt;

/// The xxh3-128 hash of a page's bytes.
///
/// It names content, not a page: two pages with equal bytes have equal hashes. On the wire it
/// is 16 bytes, little-endian.
///
/// ```
/// use pagewire_codec::ContentHash;
/// let a = ContentHash::of(&[0u8; 4096]);
/// assert_eq!(a, ContentHash::of(&[0u8; 4096]));
/// assert_ne!(a, ContentHash::of(&[1u8; 4096]));
/// assert_eq!(ContentHash::from_le_bytes(a.to_le_bytes()), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub u128);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(xxhash_rust::xxh3::xxh3_128(bytes))
    }

    /// The 16 bytes the wire carries.
    pub fn to_le_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The hash the wire's 16 bytes carry.
    pub fn from_le_bytes(bytes: [u8; 16]) -> ContentHash {
        ContentHash(u128::from_le_bytes(bytes))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({:032x})", self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}
