//! Decodes arbitrary bytes as a frame stream (stream header, then frames), whole and in
//! pieces. Every frame that decodes must re-encode under the same limits.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pagewire_codec::frame::{Frame, FrameDecoder, Limits, StreamHeader};
use pagewire_codec::{EncodingSet, PageCount, PageSize};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default().with_memory(PageSize::KIB_4, PageCount(4096), EncodingSet::all_known());
    let mut input = Bytes::copy_from_slice(data);
    if StreamHeader::decode(&mut input).is_ok() {
        while !input.is_empty() {
            match Frame::decode(&mut input, &limits) {
                Ok(Some(frame)) => {
                    let mut out = Vec::new();
                    frame.encode(&mut out, &limits).expect("a decoded frame re-encodes");
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
    // The same bytes through the incremental decoder, in 13-byte pieces.
    let mut decoder = FrameDecoder::new(limits);
    for piece in data.chunks(13) {
        decoder.push(piece);
        while let Ok(Some(_)) = decoder.poll() {}
    }
});
