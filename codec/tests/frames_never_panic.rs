//! Decoding never panics: on arbitrary bytes, and on valid frames with bits flipped, bytes cut
//! off, or length fields changed. What decodes is always something the encoder accepts.

mod frames_support;

use bytes::Bytes;
use frames_support::{encode, frame, limits};
use pagewire_codec::frame::{Frame, FrameDecoder, StreamHeader};
use proptest::prelude::*;

/// Decodes `wire` as a frame stream (header, then frames) both ways (whole and incremental),
/// checking that every decoded frame re-encodes.
fn decode_stream(wire: &[u8]) {
    let limits = limits();
    let mut input = Bytes::copy_from_slice(wire);
    if StreamHeader::decode(&mut input).is_ok() {
        while !input.is_empty() {
            match Frame::decode(&mut input, &limits) {
                Ok(Some(frame)) => {
                    let mut out = Vec::new();
                    frame
                        .encode(&mut out, &limits)
                        .expect("a decoded frame is encodable");
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
    let mut decoder = FrameDecoder::new(limits);
    for piece in wire.chunks(7) {
        decoder.push(piece);
        while let Ok(Some(_)) = decoder.poll() {}
    }
}

/// Decodes `wire` as one frame.
fn decode_frame(wire: &[u8]) {
    let limits = limits();
    if let Ok(Some(frame)) = Frame::decode(&mut Bytes::copy_from_slice(wire), &limits) {
        let mut out = Vec::new();
        frame
            .encode(&mut out, &limits)
            .expect("a decoded frame is encodable");
    }
}

fn with_stream_header(frame: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    StreamHeader::current().encode(&mut wire);
    wire.extend_from_slice(frame);
    wire
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_frame(&bytes);
        decode_stream(&bytes);
        decode_stream(&with_stream_header(&bytes));
    }

    #[test]
    fn decoding_a_frame_with_flipped_bits_never_panics(
        frame in frame(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut wire = encode(&frame);
        for (at, bit) in flips {
            let at = at.index(wire.len());
            wire[at] ^= 1 << bit;
        }
        decode_frame(&wire);
        decode_stream(&with_stream_header(&wire));
    }

    #[test]
    fn decoding_a_truncated_frame_fails_cleanly(frame in frame(), cut in any::<prop::sample::Index>()) {
        let wire = encode(&frame);
        let cut = cut.index(wire.len());
        prop_assert!(Frame::decode(&mut Bytes::copy_from_slice(&wire[..cut]), &limits()).is_err());
        let mut decoder = FrameDecoder::new(limits());
        decoder.push(&with_stream_header(&wire[..cut]));
        prop_assert_eq!(decoder.poll(), Ok(None));
    }

    #[test]
    fn decoding_a_frame_with_a_changed_length_never_panics(frame in frame(), length in any::<u32>(), small in -40i64..40) {
        let wire = encode(&frame);
        for new_length in [length, (wire.len() as i64 - 8 + small).max(0) as u32] {
            let mut changed = wire.clone();
            changed[4..8].copy_from_slice(&new_length.to_le_bytes());
            decode_frame(&changed);
            // Keep the bytes as long as the new length says, where that is small.
            let mut padded = changed.clone();
            padded.resize((8 + new_length as usize).min(wire.len() + 64), 0);
            decode_frame(&padded);
        }
    }

    #[test]
    fn decoding_a_frame_with_a_changed_type_never_panics(frame in frame(), frame_type in any::<u16>()) {
        let mut wire = encode(&frame);
        wire[..2].copy_from_slice(&frame_type.to_le_bytes());
        decode_frame(&wire);
    }
}
