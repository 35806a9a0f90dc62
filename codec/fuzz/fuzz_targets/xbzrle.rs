//! Two checks on arbitrary bytes. The first byte picks the page size (4 KiB or 16 KiB) and a
//! fill byte for the old page.
//! - Decode: the rest is a delta applied onto the old page; decoding must never panic or
//!   change the page's length.
//! - Round trip: the rest also overwrites the start of a copy of the old page; both encoder
//!   modes (which run the AVX2 change scan where the CPU has it) must either give up or produce
//!   a delta that decodes back to exactly the new page, Compact never larger than QEMU's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagewire_codec::xbzrle::{self, XbzrleMode};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let size = if selector & 1 == 0 { 4096 } else { 16384 };
    let old = vec![selector; size];

    let mut page = old.clone();
    let _ = xbzrle::decode(rest, &mut page);
    assert_eq!(page.len(), size);

    let mut new = old.clone();
    let len = rest.len().min(size);
    new[..len].copy_from_slice(&rest[..len]);
    let mut out = vec![0u8; size];
    let mut sizes = [None; 2];
    for (slot, mode) in sizes.iter_mut().zip([XbzrleMode::Qemu, XbzrleMode::Compact]) {
        if let Ok(n) = xbzrle::encode(&old, &new, &mut out, mode) {
            let mut page = old.clone();
            xbzrle::decode(&out[..n], &mut page).expect("an encoded delta decodes");
            assert!(page == new, "{mode:?} delta does not reproduce the new page");
            *slot = Some(n);
        }
    }
    if let [Some(qemu), compact] = sizes {
        assert!(compact.is_some_and(|c| c <= qemu), "compact gave up or grew past qemu");
    }
});
