//! Every frame and bitmap survives encode then decode, and its encoding is canonical.

mod frames_support;

use bytes::Bytes;
use frames_support::{encode, frame, limits, page_bitmap};
use pagewire_codec::frame::{
    BitmapForm, BitmapFrame, BitmapKind, Frame, FrameDecoder, StreamHeader, bitmap_form,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_frame_round_trips_canonically(frame in frame()) {
        let wire = encode(&frame);
        let mut input = Bytes::from(wire.clone());
        let decoded = Frame::decode(&mut input, &limits()).unwrap().unwrap();
        prop_assert!(input.is_empty());
        prop_assert_eq!(&decoded, &frame);
        prop_assert_eq!(encode(&decoded), wire);
    }

    #[test]
    fn a_stream_of_frames_decodes_from_any_split(frames in proptest::collection::vec(frame(), 1..6), split in any::<prop::sample::Index>()) {
        let mut wire = Vec::new();
        StreamHeader::current().encode(&mut wire);
        for frame in &frames {
            wire.extend(encode(frame));
        }
        let at = split.index(wire.len());
        let mut decoder = FrameDecoder::new(limits());
        let mut decoded = Vec::new();
        for piece in [&wire[..at], &wire[at..]] {
            decoder.push(piece);
            while let Some(frame) = decoder.poll().unwrap() {
                decoded.push(frame);
            }
        }
        prop_assert_eq!(decoded, frames);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn bitmap_round_trips_in_its_smaller_form(pages in page_bitmap()) {
        let frame = Frame::Bitmap(BitmapFrame { kind: BitmapKind::Dirty, pages: pages.clone() });
        let wire = encode(&frame);
        // Header 8, kind 1, page count 8, form 1.
        let form = wire[8 + 1 + 8];
        let raw_len = pages.page_count().0.div_ceil(8) as usize;
        let data_len = wire.len() - 18;
        match bitmap_form(&pages) {
            BitmapForm::Raw => prop_assert!(form == 0 && data_len == raw_len),
            BitmapForm::Runs => prop_assert!(form == 1 && data_len < raw_len),
        }
        let decoded = Frame::decode(&mut Bytes::from(wire), &limits()).unwrap().unwrap();
        prop_assert_eq!(decoded, frame);
    }
}
