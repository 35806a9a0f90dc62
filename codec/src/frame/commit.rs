//! COMMIT_DIGEST and COMMIT_ANSWER: the source's digest of the whole memory and the
//! destination's verdict.
//!
//! The memory is cut into ranges of `pages_per_range` consecutive pages (the last range may be
//! shorter): range `i` covers pages `i * pages_per_range .. min((i + 1) * pages_per_range,
//! page_count)`. A range's digest is the xxh3-128 (seed 0) of the concatenation, in ascending
//! page order, of the 16-byte little-endian xxh3-128 (seed 0) of each page's content.
//!
//! COMMIT_DIGEST payload: `pages_per_range u32 (>= 1) | range_count u32 | digest[range_count]`
//! (16 bytes each, little-endian), with `range_count = ceil(page_count / pages_per_range)`.
//!
//! COMMIT_ANSWER payload: `verdict u8`: 0 = the digests agree (nothing follows); 1 = some
//! ranges differ, followed by `count varint (>= 1) | range_delta varint * count`, the ranges
//! strictly ascending, delta-coded as in PAGE_REQUEST.

use std::ops::Range;

use bytes::BufMut;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, InvalidMessage, PeerMisbehaved};
use crate::frame::control::{ascending_len, check_ascending, decode_ascending, encode_ascending};
use crate::frame::reader::check_limit;
use crate::frame::{Limits, Reader};
use crate::{ContentHash, PageCount, PageNumber};

/// A digest of the whole memory, range by range.
///
/// ```
/// use pagewire_codec::frame::{CommitAnswer, CommitDigest};
/// use pagewire_codec::{ContentHash, PageCount, PageNumber};
/// let page = |p: PageNumber| ContentHash::of(&[p.0 as u8; 4096]);
/// let source = CommitDigest::compute(4, PageCount(10), page);
/// assert_eq!(source.ranges.len(), 3);
/// assert_eq!(source.range_pages(2, PageCount(10)), PageNumber(8)..PageNumber(10));
/// let destination = CommitDigest::compute(4, PageCount(10), |p| if p.0 == 5 { ContentHash(0) } else { page(p) });
/// assert_eq!(source.compare(&destination), CommitAnswer::Mismatch(vec![1]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitDigest {
    /// How many pages each range covers (the last may cover fewer).
    pub pages_per_range: u32,
    /// One digest per range.
    pub ranges: Vec<ContentHash>,
}

/// The destination's verdict on a commit digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitAnswer {
    /// Every range agrees: the destination may be activated.
    Agree,
    /// These ranges (indices, strictly ascending) differ; the source re-sends their pages
    /// and a new digest.
    Mismatch(Vec<u64>),
}

impl CommitDigest {
    /// The digest of a memory of `page_count` pages whose page `p` hashes to `page_hash(p)`
    /// (the xxh3-128 of its content, [`ContentHash::of`]).
    ///
    /// # Panics
    /// If `pages_per_range` is 0.
    pub fn compute(
        pages_per_range: u32,
        page_count: PageCount,
        mut page_hash: impl FnMut(PageNumber) -> ContentHash,
    ) -> CommitDigest {
        assert!(
            pages_per_range > 0,
            "a digest range covers at least one page"
        );
        let range_count = page_count.0.div_ceil(pages_per_range.into());
        let ranges = (0..range_count)
            .map(|index| {
                let mut hasher = Xxh3::new();
                let pages = Self::pages_of(pages_per_range, index, page_count);
                for page in pages.start.0..pages.end.0 {
                    hasher.update(&page_hash(PageNumber(page)).to_le_bytes());
                }
                ContentHash(hasher.digest128())
            })
            .collect();
        CommitDigest {
            pages_per_range,
            ranges,
        }
    }

    /// The pages range `index` covers in a memory of `page_count` pages.
    pub fn range_pages(&self, index: u64, page_count: PageCount) -> Range<PageNumber> {
        Self::pages_of(self.pages_per_range, index, page_count)
    }

    fn pages_of(pages_per_range: u32, index: u64, page_count: PageCount) -> Range<PageNumber> {
        let start = index
            .saturating_mul(pages_per_range.into())
            .min(page_count.0);
        let end = start
            .saturating_add(pages_per_range.into())
            .min(page_count.0);
        PageNumber(start)..PageNumber(end)
    }

    /// The destination's answer when this (received) digest is compared with `ours`, computed
    /// with the same range size over the destination's memory.
    pub fn compare(&self, ours: &CommitDigest) -> CommitAnswer {
        let differ: Vec<u64> = (0..self.ranges.len().max(ours.ranges.len()))
            .filter(|&i| {
                self.ranges.get(i) != ours.ranges.get(i)
                    || self.pages_per_range != ours.pages_per_range
            })
            .map(|i| i as u64)
            .collect();
        if differ.is_empty() {
            CommitAnswer::Agree
        } else {
            CommitAnswer::Mismatch(differ)
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        8 + 16 * self.ranges.len()
    }

    pub(crate) fn check(&self, limits: &Limits) -> Result<(), Error> {
        if self.pages_per_range == 0 {
            return Err(InvalidMessage::InvalidValue {
                field: "digest pages per range",
                value: 0,
            }
            .into());
        }
        let got = self.ranges.len() as u64;
        check_limit("digest range count", got, limits.max_digest_ranges.into())?;
        let expected = limits.page_count.0.div_ceil(self.pages_per_range.into());
        if got != expected {
            return Err(PeerMisbehaved::DigestRangeCount { expected, got }.into());
        }
        Ok(())
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u32_le(self.pages_per_range);
        out.put_u32_le(self.ranges.len() as u32);
        for digest in &self.ranges {
            out.put_slice(&digest.to_le_bytes());
        }
    }

    pub(crate) fn decode_payload(
        reader: &mut Reader,
        limits: &Limits,
    ) -> Result<CommitDigest, Error> {
        let pages_per_range = reader.u32("digest pages per range")?;
        let range_count = reader.u32("digest range count")?;
        // Check the count before allocating for it.
        check_limit(
            "digest range count",
            range_count.into(),
            limits.max_digest_ranges.into(),
        )?;
        let bytes = reader.take("digests", range_count as usize * 16)?;
        let ranges = bytes
            .chunks_exact(16)
            .map(|chunk| {
                ContentHash(u128::from_le_bytes(
                    chunk.try_into().expect("16-byte chunk"),
                ))
            })
            .collect();
        let digest = CommitDigest {
            pages_per_range,
            ranges,
        };
        digest.check(limits)?;
        Ok(digest)
    }
}

const VERDICT_AGREE: u8 = 0;
const VERDICT_MISMATCH: u8 = 1;

impl CommitAnswer {
    /// Whether the digests agree.
    pub fn agrees(&self) -> bool {
        matches!(self, CommitAnswer::Agree)
    }

    pub(crate) fn payload_len(&self) -> usize {
        match self {
            CommitAnswer::Agree => 1,
            CommitAnswer::Mismatch(ranges) => 1 + ascending_len(ranges.iter().copied()),
        }
    }

    pub(crate) fn check(&self, limits: &Limits) -> Result<(), InvalidMessage> {
        match self {
            CommitAnswer::Agree => Ok(()),
            CommitAnswer::Mismatch(ranges) => {
                if ranges.is_empty() {
                    return Err(InvalidMessage::InvalidValue {
                        field: "mismatching range count",
                        value: 0,
                    });
                }
                check_limit(
                    "mismatching range count",
                    ranges.len() as u64,
                    limits.max_digest_ranges.into(),
                )?;
                check_ascending("mismatching ranges", ranges.iter().copied())
            }
        }
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        match self {
            CommitAnswer::Agree => out.put_u8(VERDICT_AGREE),
            CommitAnswer::Mismatch(ranges) => {
                out.put_u8(VERDICT_MISMATCH);
                encode_ascending(ranges.iter().copied(), out);
            }
        }
    }

    pub(crate) fn decode_payload(
        reader: &mut Reader,
        limits: &Limits,
    ) -> Result<CommitAnswer, InvalidMessage> {
        match reader.u8("commit verdict")? {
            VERDICT_AGREE => Ok(CommitAnswer::Agree),
            VERDICT_MISMATCH => Ok(CommitAnswer::Mismatch(decode_ascending(
                reader,
                "mismatching ranges",
                limits.max_digest_ranges.into(),
            )?)),
            other => Err(InvalidMessage::InvalidValue {
                field: "commit verdict",
                value: other.into(),
            }),
        }
    }
}
