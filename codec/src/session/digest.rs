//! Commit digests over a guest memory read page by page.

use std::num::NonZeroU32;

use crate::frame::{CommitDigest, Limits};
use crate::memory::MemoryError;
use crate::{ContentHash, PageCount, PageNumber, PageSize};

/// The digest of a memory of `page_count` pages of `page_size`, `pages_per_range` pages per
/// range, `hash` giving each page's content hash (with a scratch page to read it into).
pub(crate) fn digest_of(
    pages_per_range: NonZeroU32,
    page_size: PageSize,
    page_count: PageCount,
    mut hash: impl FnMut(PageNumber, &mut [u8]) -> Result<ContentHash, MemoryError>,
) -> Result<CommitDigest, MemoryError> {
    let mut scratch = vec![0u8; page_size.bytes()];
    let mut failure = None;
    let digest = CommitDigest::compute(pages_per_range.get(), page_count, |page| {
        if failure.is_some() {
            return ContentHash(0);
        }
        hash(page, &mut scratch).unwrap_or_else(|error| {
            failure = Some(error);
            ContentHash(0)
        })
    });
    match failure {
        Some(error) => Err(error),
        None => Ok(digest),
    }
}

/// The range size a source uses: at least `wanted`, and large enough that the digest of
/// `page_count` pages fits the receiver's frame and range limits.
pub(crate) fn range_size(wanted: NonZeroU32, page_count: PageCount, limits: &Limits) -> NonZeroU32 {
    let by_frame = (limits.max_frame_payload.min(Limits::HARD_MAX_FRAME_PAYLOAD) as u64)
        .saturating_sub(8)
        / 16;
    let max_ranges = by_frame.min(u64::from(limits.max_digest_ranges)).max(1);
    let needed = page_count.0.div_ceil(max_ranges);
    let size = u64::from(wanted.get()).max(needed).min(u64::from(u32::MAX));
    NonZeroU32::new(size as u32).unwrap_or(wanted)
}
