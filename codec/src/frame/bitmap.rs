//! The wire form of a [`PageBitmap`], and the BITMAP frame.
//!
//! Bitmap body: `page_count u64 | form u8 | data`. Form 0 (raw): `ceil(page_count / 8)`
//! bytes, page `n` is bit `n % 8` of byte `n / 8`, bits past the page count are zero. Form 1
//! (runs): varints giving alternating run lengths, first a run of pages *not* in the set
//! (which may be 0 long), then a run of pages in the set, and so on; every run after the
//! first is at least 1 long, and the runs add up to exactly the page count. An encoder writes
//! runs when they are strictly shorter than the raw bits, raw otherwise.
//!
//! BITMAP payload: `kind u8 | bitmap body`.

use bytes::BufMut;

use crate::error::{Error, InvalidMessage, PeerMisbehaved};
use crate::frame::Limits;
use crate::frame::Reader;
use crate::varint;
use crate::{PageBitmap, PageCount, PageNumber};

/// What set of pages a BITMAP frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitmapKind {
    /// Pages the source will send (again) in the open iteration.
    Dirty,
    /// Pages the destination holds (also the body of RESUME).
    Received,
    /// Pages the source defers to post-copy: the destination must fetch them before use.
    Deferred,
}

impl BitmapKind {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            BitmapKind::Dirty => 0,
            BitmapKind::Received => 1,
            BitmapKind::Deferred => 2,
        }
    }

    fn from_code(code: u8) -> Result<BitmapKind, InvalidMessage> {
        match code {
            0 => Ok(BitmapKind::Dirty),
            1 => Ok(BitmapKind::Received),
            2 => Ok(BitmapKind::Deferred),
            other => Err(InvalidMessage::InvalidValue {
                field: "bitmap kind",
                value: other.into(),
            }),
        }
    }
}

/// A BITMAP frame: a set of pages and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitmapFrame {
    /// What the set means.
    pub kind: BitmapKind,
    /// The pages.
    pub pages: PageBitmap,
}

impl BitmapFrame {
    pub(crate) fn payload_len(&self) -> usize {
        1 + body_len(&self.pages)
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, out: &mut B) {
        out.put_u8(self.kind.code());
        encode_body(&self.pages, out);
    }

    pub(crate) fn decode_payload(
        reader: &mut Reader,
        limits: &Limits,
    ) -> Result<BitmapFrame, Error> {
        let kind = BitmapKind::from_code(reader.u8("bitmap kind")?)?;
        let pages = decode_body(reader, limits)?;
        Ok(BitmapFrame { kind, pages })
    }
}

/// The form of a bitmap body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitmapForm {
    /// One bit per page.
    Raw,
    /// Alternating run lengths.
    Runs,
}

const FORM_RAW: u8 = 0;
const FORM_RUNS: u8 = 1;

/// The form an encoder writes for `pages`: runs if strictly shorter than raw bits.
///
/// ```
/// use pagewire_codec::frame::{bitmap_form, BitmapForm};
/// use pagewire_codec::{PageBitmap, PageCount, PageNumber};
/// let mut sparse = PageBitmap::new(PageCount(1 << 20));
/// sparse.insert_range(PageNumber(1000), 5000);
/// assert_eq!(bitmap_form(&sparse), BitmapForm::Runs);
/// let mut checkerboard = PageBitmap::new(PageCount(64));
/// for p in (0..64).step_by(2) { checkerboard.insert(PageNumber(p)); }
/// assert_eq!(bitmap_form(&checkerboard), BitmapForm::Raw);
/// ```
pub fn bitmap_form(pages: &PageBitmap) -> BitmapForm {
    let raw = raw_len(pages.page_count());
    // Stop counting as soon as the runs are no shorter than the raw bits.
    let mut runs = 0usize;
    for run in Runs::new(pages) {
        runs += varint::encoded_len(run);
        if runs >= raw {
            return BitmapForm::Raw;
        }
    }
    if runs < raw {
        BitmapForm::Runs
    } else {
        BitmapForm::Raw
    }
}

/// The length of the bitmap body [`encode_body`] writes.
pub(crate) fn body_len(pages: &PageBitmap) -> usize {
    9 + match bitmap_form(pages) {
        BitmapForm::Raw => raw_len(pages.page_count()),
        BitmapForm::Runs => Runs::new(pages).map(varint::encoded_len).sum(),
    }
}

fn raw_len(page_count: PageCount) -> usize {
    page_count.0.div_ceil(8) as usize
}

/// Appends the bitmap body in its smaller form.
pub(crate) fn encode_body<B: BufMut>(pages: &PageBitmap, out: &mut B) {
    out.put_u64_le(pages.page_count().0);
    match bitmap_form(pages) {
        BitmapForm::Raw => {
            out.put_u8(FORM_RAW);
            let mut left = raw_len(pages.page_count());
            for word in pages.words() {
                let bytes = word.to_le_bytes();
                let take = left.min(8);
                out.put_slice(&bytes[..take]);
                left -= take;
            }
        }
        BitmapForm::Runs => {
            out.put_u8(FORM_RUNS);
            for run in Runs::new(pages) {
                varint::encode(run, out);
            }
        }
    }
}

/// Reads a bitmap body; its page count must be the negotiated one.
pub(crate) fn decode_body(reader: &mut Reader, limits: &Limits) -> Result<PageBitmap, Error> {
    let page_count = PageCount(reader.u64("bitmap page count")?);
    if page_count != limits.page_count {
        return Err(PeerMisbehaved::PageCountMismatch {
            field: "bitmap page count",
            expected: limits.page_count,
            got: page_count,
        }
        .into());
    }
    match reader.u8("bitmap form")? {
        FORM_RAW => {
            let bytes = reader.take("raw bitmap", raw_len(page_count))?;
            let words = bytes
                .chunks(8)
                .map(|chunk| {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    u64::from_le_bytes(word)
                })
                .collect();
            PageBitmap::from_words(page_count, words).ok_or(
                InvalidMessage::BitmapBitsPastEnd {
                    page_count: page_count.0,
                }
                .into(),
            )
        }
        FORM_RUNS => decode_runs(reader, page_count),
        other => Err(InvalidMessage::InvalidValue {
            field: "bitmap form",
            value: other.into(),
        }
        .into()),
    }
}

fn decode_runs(reader: &mut Reader, page_count: PageCount) -> Result<PageBitmap, Error> {
    let mut pages = PageBitmap::new(page_count);
    let mut covered = 0u64;
    let mut index = 0u64;
    while covered < page_count.0 {
        let run = reader.varint("bitmap run")?;
        if run == 0 && index > 0 {
            return Err(InvalidMessage::ZeroLengthRun { index }.into());
        }
        let end = covered
            .checked_add(run)
            .filter(|end| *end <= page_count.0)
            .ok_or(InvalidMessage::BitmapRunsMismatch {
                covered: covered.saturating_add(run),
                page_count: page_count.0,
            })?;
        if index % 2 == 1 {
            pages.insert_range(PageNumber(covered), run);
        }
        covered = end;
        index += 1;
    }
    Ok(pages)
}

/// The run lengths of a bitmap: pages not in the set, then in the set, alternating, starting
/// with a (possibly empty) run of pages not in the set.
struct Runs<'a> {
    pages: &'a PageBitmap,
    at: u64,
    in_set: bool,
}

impl<'a> Runs<'a> {
    fn new(pages: &'a PageBitmap) -> Runs<'a> {
        Runs {
            pages,
            at: 0,
            in_set: false,
        }
    }

    /// The first page at or after `self.at` whose membership differs from `self.in_set`, or
    /// the page count.
    fn next_change(&self) -> u64 {
        let page_count = self.pages.page_count().0;
        let words = self.pages.words();
        let flip = if self.in_set { u64::MAX } else { 0 };
        let mut index = (self.at / 64) as usize;
        // Bits below `at` in its word are treated as matching.
        let mut word = (words[index] ^ flip) & (u64::MAX << (self.at % 64));
        loop {
            if word != 0 {
                let change = index as u64 * 64 + u64::from(word.trailing_zeros());
                return change.min(page_count);
            }
            index += 1;
            if index == words.len() {
                return page_count;
            }
            word = words[index] ^ flip;
        }
    }
}

impl Iterator for Runs<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let page_count = self.pages.page_count().0;
        if self.at >= page_count {
            return None;
        }
        let end = self.next_change();
        let run = end - self.at;
        self.at = end;
        self.in_set = !self.in_set;
        Some(run)
    }
}
