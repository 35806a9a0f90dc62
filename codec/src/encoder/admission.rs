//! Which sends enter the encoder's cache of last-sent versions (the bases of XBZRLE deltas).

use crate::{PageBitmap, PageCount, PageNumber};

/// Which sends the encoder stores in its cache of last-sent versions.
///
/// A delta needs the version the destination holds, so only a page sent before can get one.
/// Caching a page's first send pays off only if the page is sent again while its entry is
/// still there; on a guest larger than the cache, the first pass copies every page into the
/// cache and evicts most of them again before any is resent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheAdmission {
    /// Every send enters the cache, evicting another page (CLOCK) when it is full. For an
    /// encoder that does not know the size of the memory it encodes.
    EverySend,
    /// The memory has `page_count` pages: a page's first send enters the cache only while it
    /// has a free slot; once it is full, only resends (pages sent before, written since)
    /// enter it, evicting another page. The encoder keeps one bit per page
    /// (`page_count / 8` bytes) to tell first sends from resends; a page at or past
    /// `page_count` is admitted as with [`CacheAdmission::EverySend`].
    ResendsOnceFull {
        /// The number of pages of the memory.
        page_count: PageCount,
    },
}

/// The pages an encoder has sent, as far as its [`CacheAdmission`] needs to know.
#[derive(Clone, Debug)]
pub(super) struct SentBefore {
    /// Pages sent at least once; over no pages for [`CacheAdmission::EverySend`].
    sent: PageBitmap,
}

impl SentBefore {
    pub(super) fn new(admission: CacheAdmission) -> SentBefore {
        let tracked = match admission {
            CacheAdmission::EverySend => PageCount(0),
            CacheAdmission::ResendsOnceFull { page_count } => page_count,
        };
        SentBefore {
            sent: PageBitmap::new(tracked),
        }
    }

    /// Notes that `page` is being sent; returns whether its version may enter a full cache
    /// (evicting another page): it is a resend, or a page whose sends are not tracked.
    pub(super) fn note_send(&mut self, page: PageNumber) -> bool {
        // `insert` says whether the page is newly in the set: false for a resend and for a
        // page past the tracked count.
        !self.sent.insert(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Encoding::{self, Xbzrle};
    use crate::encoder::{Encoder, EncoderConfig};
    use crate::{Decoder, EncodingSet, InMemory, PageSize};

    #[test]
    fn only_resends_of_tracked_pages_may_evict() {
        let mut sent = SentBefore::new(CacheAdmission::ResendsOnceFull {
            page_count: PageCount(4),
        });
        assert!(!sent.note_send(PageNumber(1)), "a first send");
        assert!(sent.note_send(PageNumber(1)), "a resend");
        assert!(!sent.note_send(PageNumber(3)), "another page's first send");
        assert!(
            sent.note_send(PageNumber(4)),
            "past the page count: untracked"
        );
    }

    #[test]
    fn every_send_may_evict_when_sends_are_not_tracked() {
        let mut sent = SentBefore::new(CacheAdmission::EverySend);
        assert!(sent.note_send(PageNumber(0)));
        assert!(sent.note_send(PageNumber(0)));
    }

    /// Pseudo-random page content (xorshift64).
    fn random_page(seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// An encoder of XBZRLE (and raw) with room for two pages, admitting by `admission`.
    fn encoder(admission: CacheAdmission) -> Encoder {
        let mut config = EncoderConfig::new(PageSize::KIB_4, EncodingSet::empty().with(Xbzrle));
        config.cache_bytes = 2 * 4096;
        config.cache_admission = admission;
        Encoder::new(config).unwrap()
    }

    /// Sends pages 0 and 1 (filling the cache), page 2, then page 2 edited twice; returns the
    /// encodings of the two edits.
    fn first_send_past_a_full_cache(encoder: &mut Encoder) -> [Encoding; 2] {
        for page in 0..3 {
            let bytes = random_page(page);
            encoder.encode_page(PageNumber(page), &bytes).unwrap();
        }
        let mut page = random_page(2);
        [1, 2].map(|edit| {
            page[edit * 100] ^= 0xff;
            let record = encoder.encode_page(PageNumber(2), &page).unwrap().unwrap();
            record.body.encoding()
        })
    }

    #[test]
    fn a_first_send_is_not_cached_when_the_cache_is_full_and_a_resend_is() {
        let mut encoder = encoder(CacheAdmission::ResendsOnceFull {
            page_count: PageCount(8),
        });
        let encodings = first_send_past_a_full_cache(&mut encoder);
        // The first edit finds no base (the first send was not cached) but enters the cache,
        // evicting a page; the second is a delta against it.
        assert_eq!(encodings, [Encoding::Raw, Xbzrle]);
        let cache = encoder.stats().cache;
        assert_eq!((cache.inserts, cache.evictions), (4, 1));
    }

    #[test]
    fn every_send_enters_a_full_cache_without_a_page_count() {
        let mut encoder = encoder(CacheAdmission::EverySend);
        assert_eq!(first_send_past_a_full_cache(&mut encoder), [Xbzrle, Xbzrle]);
        let cache = encoder.stats().cache;
        assert_eq!((cache.inserts, cache.evictions), (5, 1));
    }

    #[test]
    fn pages_past_the_page_count_enter_a_full_cache() {
        // Page 2 is past the count: admitted as with `EverySend`.
        let mut encoder = encoder(CacheAdmission::ResendsOnceFull {
            page_count: PageCount(2),
        });
        assert_eq!(first_send_past_a_full_cache(&mut encoder), [Xbzrle, Xbzrle]);
    }

    /// The cache holds exactly the last version sent of a page, or nothing: checked after
    /// every send of a long mix of first sends, resends, unchanged pages, zero pages and
    /// forgotten pages over a memory eight times the cache, with every record applied at a
    /// destination that must end up equal to the source.
    #[test]
    fn the_cache_holds_the_last_version_sent_or_nothing() {
        const PAGES: u64 = 16;
        let mut encoder = {
            let mut config = EncoderConfig::new(PageSize::KIB_4, EncodingSet::all_known());
            config.cache_bytes = 2 * 4096;
            config.cache_admission = CacheAdmission::ResendsOnceFull {
                page_count: PageCount(PAGES),
            };
            Encoder::new(config).unwrap()
        };
        let mut decoder = Decoder::new(EncodingSet::all_known());
        let mut source = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap();
        let mut destination = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap();
        let mut last_sent: Vec<Option<Vec<u8>>> = vec![None; PAGES as usize];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for step in 0..2000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // A few hot pages get most of the sends, as in a live guest.
            let page = if state.is_multiple_of(4) {
                state >> 8
            } else {
                (state >> 8) & 3
            } % PAGES;
            let page = PageNumber(page);
            let at = page.index() * 4096;
            let content = &mut source.as_bytes_mut()[at..at + 4096];
            match (state >> 32) % 8 {
                0 => content.fill(0),
                1 => content.copy_from_slice(&random_page(step)),
                2 => {}
                3 => encoder.forget_page(page),
                _ => content[(state >> 40) as usize % 4096] ^= 0x5a,
            }
            let bytes = source.page(page).unwrap().to_vec();
            if let Some(record) = encoder.encode_page(page, &bytes).unwrap() {
                decoder.apply(&mut destination, &record).unwrap();
            }
            last_sent[page.index()] = Some(bytes);
            assert_eq!(destination.page(page), source.page(page), "step {step}");
            for (index, last) in last_sent.iter().enumerate() {
                let cached = encoder.cache.peek(PageNumber(index as u64));
                assert!(
                    cached.is_none() || cached == last.as_deref(),
                    "step {step}: page {index} cached with another version than the last sent"
                );
            }
        }
        assert!(
            encoder.stats().cache.evictions > 0,
            "the cache was never full"
        );
    }
}
