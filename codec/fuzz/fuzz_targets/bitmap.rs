//! Decodes arbitrary bytes as a BITMAP payload over a memory whose page count is taken from
//! the first two bytes; a bitmap that decodes must re-encode to a bitmap equal to it.
#![no_main]

use bytes::{BufMut, Bytes};
use libfuzzer_sys::fuzz_target;
use pagewire_codec::frame::{Frame, FrameType, Limits};
use pagewire_codec::{EncodingSet, PageCount, PageSize};

fuzz_target!(|data: &[u8]| {
    let Some((count, payload)) = data.split_first_chunk::<2>() else { return };
    let page_count = u64::from(u16::from_le_bytes(*count));
    let limits = Limits::default().with_memory(PageSize::KIB_4, PageCount(page_count), EncodingSet::all_known());
    // Give the payload the negotiated page count so the body is reached most of the time.
    let mut frame = Vec::with_capacity(payload.len() + 17);
    frame.put_u16_le(FrameType::BITMAP.0);
    frame.put_u16_le(0);
    let body = payload.get(1..).unwrap_or_default();
    frame.put_u32_le((body.len() + 9) as u32);
    frame.put_u8(payload.first().copied().unwrap_or(0) % 4);
    frame.put_u64_le(page_count);
    frame.extend_from_slice(body);
    if let Ok(Some(decoded)) = Frame::decode(&mut Bytes::from(frame), &limits) {
        let mut out = Vec::new();
        decoded.encode(&mut out, &limits).expect("a decoded bitmap re-encodes");
        let again = Frame::decode(&mut Bytes::from(out), &limits).expect("re-encoded bitmap decodes");
        assert_eq!(again, Some(decoded));
    }
});
