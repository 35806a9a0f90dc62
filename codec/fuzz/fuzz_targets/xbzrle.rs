//! Decodes arbitrary bytes as an XBZRLE delta onto a page: the first byte picks the page size
//! (4 KiB or 16 KiB) and the old page's fill byte, the rest is the delta. Decoding must never
//! panic or write past the page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagewire_codec::xbzrle;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, delta)) = data.split_first() else { return };
    let size = if selector & 1 == 0 { 4096 } else { 16384 };
    let mut page = vec![selector; size];
    let _ = xbzrle::decode(delta, &mut page);
    assert_eq!(page.len(), size);
});
