//! The content hash of every page as a [`Decoder`](super::Decoder) last wrote it.
//!
//! A destination's memory changes only through its decoder until the VM runs there. The hash
//! of each page the decoder wrote is then the `h(p)` of the commit digest (spec/wire.md §7.1),
//! so the digest reads from memory only the pages the decoder never wrote: the whole-memory
//! read leaves the downtime, and each page is hashed while its bytes are still in the CPU
//! cache. A page the decoder wrote in part (a payload that failed midway) is not known.
//!
//! Memory: 16 bytes per page of the guest (1/256 of it at 4 KiB pages), reserved up front.
//! Post-copy keeps its hashes of the pages as received in the same form, taking over the
//! decoder's when the guest starts to run at the destination.

use std::collections::TryReserveError;

use crate::{ContentHash, PageCount, PageNumber};

/// Per-page hashes of written content; a slot of 0 is "not known".
///
/// Zero marks an unknown page rather than a separate bitmap: a page whose content really
/// hashes to 0 is then read from memory and hashed again, which is slower, never wrong.
#[derive(Debug)]
pub(crate) struct WrittenHashes {
    hashes: Vec<u128>,
}

impl WrittenHashes {
    /// Room for `page_count` pages, none known.
    pub(crate) fn new(page_count: PageCount) -> Result<WrittenHashes, TryReserveError> {
        let pages = usize::try_from(page_count.0).unwrap_or(usize::MAX);
        let mut hashes = Vec::new();
        hashes.try_reserve_exact(pages)?;
        hashes.resize(pages, 0);
        Ok(WrittenHashes { hashes })
    }

    /// How many pages there is room for.
    pub(crate) fn page_count(&self) -> PageCount {
        PageCount(self.hashes.len() as u64)
    }

    /// The hash `page`'s content had when it was last written, if known.
    pub(crate) fn get(&self, page: PageNumber) -> Option<ContentHash> {
        let hash = *self.hashes.get(page.index())?;
        (hash != 0).then_some(ContentHash(hash))
    }

    /// `page` now holds content of `hash`.
    pub(crate) fn set(&mut self, page: PageNumber, hash: ContentHash) {
        if let Some(slot) = self.hashes.get_mut(page.index()) {
            *slot = hash.0;
        }
    }

    /// `page`'s content is not known.
    pub(crate) fn forget(&mut self, page: PageNumber) {
        if let Some(slot) = self.hashes.get_mut(page.index()) {
            *slot = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::Decoder;
    use crate::encoder::{Encoder, EncoderConfig};
    use crate::memory::{DestinationMemory, MemoryError};
    use crate::{Encoding, EncodingSet, InMemory, PageRecord, PageSize, RecordBody};

    const PAGE: usize = 4096;

    /// A memory that cannot lend pages: the decoder's copy-in, copy-out path.
    struct CopyOnly(InMemory);

    impl DestinationMemory for CopyOnly {
        fn page_size(&self) -> PageSize {
            self.0.page_size()
        }
        fn page_count(&self) -> PageCount {
            self.0.page_count()
        }
        fn read_page(&self, page: PageNumber, out: &mut [u8]) -> Result<(), MemoryError> {
            self.0.read_page(page, out)
        }
        fn write_page(&mut self, page: PageNumber, bytes: &[u8]) -> Result<(), MemoryError> {
            self.0.write_page(page, bytes)
        }
    }

    /// The versions a page goes through: random, edited, text, edited text and zero (the
    /// caller copies another page's versions onto the last page, for dedup); each encoding
    /// gets its turn.
    fn versions(seed: u8) -> Vec<Vec<u8>> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed);
        let random: Vec<u8> = (0..PAGE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut edited = random.clone();
        for i in (0..PAGE).step_by(997) {
            edited[i] ^= 0x5a;
        }
        let text: Vec<u8> = (0..PAGE)
            .map(|i| b"pagewire moves pages "[(i + usize::from(seed)) % 21])
            .collect();
        let mut text_edited = text.clone();
        for i in (0..PAGE).step_by(64) {
            text_edited[i..i + 8].copy_from_slice(b"CHANGED!");
        }
        vec![random, edited, text, text_edited, vec![0; PAGE]]
    }

    /// Every version of every page through an encoder with `encodings`, applied to
    /// `destination`; after each record, every page the decoder knows holds what it says.
    fn check_kept_hashes<M: DestinationMemory>(
        mut destination: M,
        encodings: EncodingSet,
        seen: &mut EncodingSet,
    ) {
        let pages = destination.page_count();
        let mut encoder = Encoder::new(EncoderConfig::new(PageSize::KIB_4, encodings)).unwrap();
        let mut decoder = Decoder::new(encodings);
        assert!(decoder.keep_written_hashes(pages));
        let mut check = |record: &PageRecord, destination: &mut M, decoder: &mut Decoder| {
            *seen = seen.with(record.body.encoding());
            decoder.apply(destination, record).unwrap();
            let mut bytes = vec![0; PAGE];
            for page in (0..pages.0).map(PageNumber) {
                destination.read_page(page, &mut bytes).unwrap();
                if let Some(kept) = decoder.written_hash(page) {
                    assert_eq!(kept, ContentHash::of(&bytes), "{page} after {record:?}");
                }
            }
            let end = record.page.0 + record.body.pages_covered();
            for page in (record.page.0..end).map(PageNumber) {
                destination.read_page(page, &mut bytes).unwrap();
                assert_eq!(decoder.written_hash(page), Some(ContentHash::of(&bytes)));
            }
        };
        for round in 0..5 {
            for page in 0..pages.0 - 1 {
                let content = &versions(page as u8)[(round + page as usize) % 5];
                if let Some(record) = encoder.encode_page(PageNumber(page), content).unwrap() {
                    check(&record, &mut destination, &mut decoder);
                }
            }
            // The last page copies the first: a dedup reference where dedup is negotiated.
            let copy = &versions(0)[round % 5];
            let last = PageNumber(pages.0 - 1);
            if let Some(record) = encoder.encode_page(last, copy).unwrap() {
                check(&record, &mut destination, &mut decoder);
            }
        }
        // A record that fails: the pages it may have touched are not known, nor any other.
        let broken = PageRecord {
            page: PageNumber(1),
            body: RecordBody::Lz4(vec![0xff; 40].into()),
        };
        assert!(decoder.apply(&mut destination, &broken).is_err());
        assert!((0..pages.0).all(|page| decoder.written_hash(PageNumber(page)).is_none()));
    }

    #[test]
    fn the_hash_kept_of_each_written_page_is_that_of_its_content_in_every_encoding() {
        let mut seen = EncodingSet::empty();
        let mut sets = vec![EncodingSet::all_known(), EncodingSet::empty()];
        sets.extend(
            [
                Encoding::ZeroRun,
                Encoding::Xbzrle,
                Encoding::XbzrleLz4,
                Encoding::Dedup,
                Encoding::Lz4,
                Encoding::Zstd,
            ]
            .map(|encoding| EncodingSet::empty().with(encoding)),
        );
        for encodings in sets {
            let lending = InMemory::new(PageSize::KIB_4, PageCount(4)).unwrap();
            check_kept_hashes(lending, encodings, &mut seen);
            let copying = CopyOnly(InMemory::new(PageSize::KIB_4, PageCount(4)).unwrap());
            check_kept_hashes(copying, encodings, &mut seen);
        }
        assert_eq!(seen, EncodingSet::all_known().with(Encoding::Raw));
    }

    #[test]
    fn a_page_is_known_once_set_and_until_forgotten() {
        let mut hashes = WrittenHashes::new(PageCount(4)).unwrap();
        let page = PageNumber(2);
        assert_eq!(hashes.get(page), None);
        let hash = ContentHash::of(&[7u8; 4096]);
        hashes.set(page, hash);
        assert_eq!(hashes.get(page), Some(hash));
        assert_eq!(hashes.get(PageNumber(1)), None);
        hashes.forget(page);
        assert_eq!(hashes.get(page), None);
        // Outside the memory: nothing is kept, nothing is known.
        hashes.set(PageNumber(4), hash);
        assert_eq!(hashes.get(PageNumber(4)), None);
        // A content hash of 0 reads as not known (the page is hashed from memory instead).
        hashes.set(page, ContentHash(0));
        assert_eq!(hashes.get(page), None);
    }
}
