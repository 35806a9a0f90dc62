//! The XBZRLE decoder: checks a whole delta, then applies it in place.

use super::XbzrleDecodeError;
use super::uleb::{self, ReadError};

/// Applies `delta` to `page`, the destination's copy of the old page; see the
/// [module docs](super).
///
/// The delta is checked completely before the first byte of `page` is written, so on error
/// `page` is unchanged. Accepts exactly the deltas QEMU's decoder accepts (including an empty
/// delta, which changes nothing).
///
/// ```
/// use pagewire_codec::xbzrle::{self, XbzrleDecodeError};
///
/// let mut page = vec![0u8; 4096];
/// xbzrle::decode(&[0x00, 0x01, 0xaa], &mut page).unwrap(); // byte 0 becomes 0xaa
/// assert_eq!(page[0], 0xaa);
///
/// // A changed run of length zero is invalid.
/// assert_eq!(
///     xbzrle::decode(&[0x00, 0x00], &mut page),
///     Err(XbzrleDecodeError::EmptyChangedRun { offset: 1 }),
/// );
/// ```
pub fn decode(delta: &[u8], page: &mut [u8]) -> Result<(), XbzrleDecodeError> {
    for run in Runs::new(delta, page.len()) {
        run?;
    }
    for run in Runs::new(delta, page.len()) {
        let (at, bytes) = run?;
        page[at..at + bytes.len()].copy_from_slice(bytes);
    }
    Ok(())
}

/// The changed runs of a delta, in order, as (page offset, new bytes), each checked.
struct Runs<'a> {
    delta: &'a [u8],
    page_len: usize,
    /// Offset in `delta` of the next pair.
    at: usize,
    /// Offset in the page where the previous changed run ended.
    page_at: usize,
    failed: bool,
}

impl<'a> Runs<'a> {
    fn new(delta: &'a [u8], page_len: usize) -> Self {
        Runs {
            delta,
            page_len,
            at: 0,
            page_at: 0,
            failed: false,
        }
    }

    fn length(&self, offset: usize) -> Result<(usize, usize), XbzrleDecodeError> {
        uleb::read(&self.delta[offset..]).map_err(|e| match e {
            ReadError::Truncated => XbzrleDecodeError::TruncatedLength { offset },
            ReadError::TooLong => XbzrleDecodeError::LengthTooLong { offset },
        })
    }

    fn pair(&mut self) -> Result<(usize, &'a [u8]), XbzrleDecodeError> {
        let zrun_at = self.at;
        let (zrun, taken) = self.length(zrun_at)?;
        if zrun == 0 && zrun_at != 0 {
            return Err(XbzrleDecodeError::EmptyUnchangedRun { offset: zrun_at });
        }
        let start = self.page_at + zrun;
        if start > self.page_len {
            return Err(XbzrleDecodeError::PastPageEnd { offset: zrun_at });
        }
        let nzrun_at = zrun_at + taken;
        let (nzrun, taken) = self.length(nzrun_at)?;
        if nzrun == 0 {
            return Err(XbzrleDecodeError::EmptyChangedRun { offset: nzrun_at });
        }
        if start + nzrun > self.page_len {
            return Err(XbzrleDecodeError::PastPageEnd { offset: nzrun_at });
        }
        let data_at = nzrun_at + taken;
        let available = self.delta.len() - data_at;
        if nzrun > available {
            return Err(XbzrleDecodeError::TruncatedData {
                offset: data_at,
                needed: nzrun,
                available,
            });
        }
        self.at = data_at + nzrun;
        self.page_at = start + nzrun;
        Ok((start, &self.delta[data_at..self.at]))
    }
}

impl<'a> Iterator for Runs<'a> {
    type Item = Result<(usize, &'a [u8]), XbzrleDecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at == self.delta.len() {
            return None;
        }
        let pair = self.pair();
        self.failed = pair.is_err();
        Some(pair)
    }
}
