//! What the codec benches share: the conformance pair sets.

use std::path::{Path, PathBuf};

/// Bytes in a page of the pair sets.
pub const PAGE: usize = 4096;

/// The directory of the pair sets (`conformance/vectors/xbzrle`, files `NAME.pairs`).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/xbzrle")
}

/// The pages of a pair-set file: the old pages and the new pages, each a run of whole pages
/// in pair order.
pub fn load_pairs(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let pairs = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for pair in pairs.chunks_exact(2 * PAGE) {
        old.extend_from_slice(&pair[..PAGE]);
        new.extend_from_slice(&pair[PAGE..]);
    }
    (old, new)
}
