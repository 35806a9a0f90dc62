//! [`StreamId`]: the streams of a session, and [`PageAffinity`]: which page stream a page
//! always travels on.

use std::fmt;
use std::num::NonZeroU16;

use crate::PageNumber;

/// One byte stream of a migration connection.
///
/// The control stream is bidirectional: control frames from the source to the destination
/// and the destination's answers back. Page streams are unidirectional, from the source to
/// the destination, and carry only PAGE_BATCH frames. Each direction of each stream starts
/// with its own stream header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// The control stream (both directions).
    Control,
    /// Page stream number `n` (source to destination), `0 <= n < page_streams`.
    Page(u16),
}

impl StreamId {
    /// Whether this is the control stream.
    pub fn is_control(self) -> bool {
        self == StreamId::Control
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamId::Control => f.write_str("the control stream"),
            StreamId::Page(n) => write!(f, "page stream {n}"),
        }
    }
}

/// Maps every page to the one page stream it always travels on, so the versions of a page
/// arrive in the order they were sent.
///
/// Pages go in blocks of [`PageAffinity::BLOCK_PAGES`] consecutive pages, block `b` on stream
/// `b mod n`: consecutive zero pages still coalesce into one zero run, and every stream gets a
/// share of every region of memory.
///
/// ```
/// use std::num::NonZeroU16;
/// use pagewire_codec::PageNumber;
/// use pagewire_codec::session::{PageAffinity, StreamId};
/// let affinity = PageAffinity::new(NonZeroU16::new(3).unwrap());
/// assert_eq!(affinity.stream_of(PageNumber(0)), StreamId::Page(0));
/// assert_eq!(affinity.stream_of(PageNumber(63)), StreamId::Page(0));
/// assert_eq!(affinity.stream_of(PageNumber(64)), StreamId::Page(1));
/// assert_eq!(affinity.stream_of(PageNumber(3 * 64)), StreamId::Page(0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageAffinity {
    streams: NonZeroU16,
}

impl PageAffinity {
    /// How many consecutive pages share a stream.
    pub const BLOCK_PAGES: u64 = 64;

    /// Affinity over `streams` page streams.
    pub fn new(streams: NonZeroU16) -> PageAffinity {
        PageAffinity { streams }
    }

    /// How many page streams there are.
    pub fn streams(self) -> u16 {
        self.streams.get()
    }

    /// The index of the stream `page` travels on.
    pub fn index_of(self, page: PageNumber) -> usize {
        ((page.0 / Self::BLOCK_PAGES) % u64::from(self.streams.get())) as usize
    }

    /// The stream `page` travels on.
    pub fn stream_of(self, page: PageNumber) -> StreamId {
        StreamId::Page(self.index_of(page) as u16)
    }
}
