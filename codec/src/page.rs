//! Page identity and geometry: which page ([`PageNumber`]), how large a page is
//! ([`PageSize`]) and how many pages a guest memory holds ([`PageCount`]).

use std::fmt;

/// The number of a page in guest memory (a guest frame number, "pfn"): page `n` covers bytes
/// `n * page_size .. (n + 1) * page_size`.
///
/// ```
/// use pagewire_codec::PageNumber;
/// let p = PageNumber(7);
/// assert_eq!(p.next(), PageNumber(8));
/// assert_eq!(p.index(), 7);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageNumber(pub u64);

impl PageNumber {
    /// The page `count` pages after this one, or `None` past `u64::MAX`.
    pub fn checked_add(self, count: u64) -> Option<PageNumber> {
        self.0.checked_add(count).map(PageNumber)
    }

    /// The page after this one (saturating at `u64::MAX`).
    pub fn next(self) -> PageNumber {
        PageNumber(self.0.saturating_add(1))
    }

    /// The page number as an index (for bitmaps and arrays), saturating on 32-bit targets.
    pub fn index(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for PageNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {}", self.0)
    }
}

/// How many pages a guest memory (or a range of it) holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageCount(pub u64);

impl PageCount {
    /// Whether `page` lies inside a memory of this many pages.
    ///
    /// ```
    /// use pagewire_codec::{PageCount, PageNumber};
    /// assert!(PageCount(4).contains(PageNumber(3)));
    /// assert!(!PageCount(4).contains(PageNumber(4)));
    /// ```
    pub fn contains(self, page: PageNumber) -> bool {
        page.0 < self.0
    }
}

impl fmt::Display for PageCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pages", self.0)
    }
}

/// The size of one page in bytes: a power of two from 4 KiB to 2 MiB.
///
/// 4 KiB is the default (x86 and most guests); 16 KiB and 64 KiB pages (arm64, ppc64) and
/// 2 MiB huge pages are supported by every encoding.
///
/// ```
/// use pagewire_codec::PageSize;
/// assert_eq!(PageSize::default().bytes(), 4096);
/// assert_eq!(PageSize::new(2 << 20).unwrap().bytes(), 2 * 1024 * 1024);
/// assert!(PageSize::new(3000).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageSize(u32);

impl PageSize {
    /// The smallest supported page size, 4 KiB.
    pub const MIN: PageSize = PageSize(4096);
    /// The largest supported page size, 2 MiB.
    pub const MAX: PageSize = PageSize(2 << 20);
    /// 4 KiB pages.
    pub const KIB_4: PageSize = PageSize(4096);
    /// 16 KiB pages.
    pub const KIB_16: PageSize = PageSize(16 << 10);
    /// 64 KiB pages.
    pub const KIB_64: PageSize = PageSize(64 << 10);
    /// 2 MiB huge pages.
    pub const MIB_2: PageSize = PageSize(2 << 20);

    /// A page size of `bytes`, which must be a power of two between [`PageSize::MIN`] and
    /// [`PageSize::MAX`].
    pub fn new(bytes: u32) -> Result<PageSize, InvalidPageSize> {
        if bytes.is_power_of_two() && (Self::MIN.0..=Self::MAX.0).contains(&bytes) {
            Ok(PageSize(bytes))
        } else {
            Err(InvalidPageSize(bytes))
        }
    }

    /// The size in bytes.
    pub fn bytes(self) -> usize {
        self.0 as usize
    }

    /// The size in bytes, as the `u32` the wire carries.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The byte offset of `page` in a guest memory of pages of this size, or `None` if it
    /// does not fit in a `u64`.
    pub fn offset_of(self, page: PageNumber) -> Option<u64> {
        page.0.checked_mul(u64::from(self.0))
    }
}

impl Default for PageSize {
    fn default() -> Self {
        PageSize::KIB_4
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// A page size that is not a power of two between 4 KiB and 2 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("page size {0} is not a power of two between 4096 and 2097152 bytes")]
pub struct InvalidPageSize(pub u32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_accepts_every_supported_power_of_two() {
        for shift in 12..=21 {
            assert_eq!(PageSize::new(1 << shift).unwrap().bytes(), 1 << shift);
        }
    }

    #[test]
    fn page_size_rejects_out_of_range_and_odd_sizes() {
        for bytes in [0, 1, 2048, 4095, 4097, 6144, 4 << 20, u32::MAX] {
            assert_eq!(PageSize::new(bytes), Err(InvalidPageSize(bytes)));
        }
    }

    #[test]
    fn offset_of_detects_overflow() {
        assert_eq!(PageSize::KIB_4.offset_of(PageNumber(3)), Some(3 * 4096));
        assert_eq!(PageSize::KIB_4.offset_of(PageNumber(u64::MAX)), None);
    }
}
