//! Decodes arbitrary bytes as a PAGE_BATCH payload and applies its records to a small
//! destination memory with every encoding negotiated. Neither step may panic; a record that
//! fails must leave the decoder usable for the next batch.
#![no_main]

use bytes::{BufMut, Bytes};
use libfuzzer_sys::fuzz_target;
use pagewire_codec::decoder::Decoder;
use pagewire_codec::frame::{Frame, FrameType, Limits};
use pagewire_codec::memory::InMemory;
use pagewire_codec::{EncodingSet, PageCount, PageSize};

const PAGES: u64 = 64;

fuzz_target!(|data: &[u8]| {
    let encodings = EncodingSet::all_known();
    let limits = Limits::default().with_memory(PageSize::KIB_4, PageCount(PAGES), encodings);
    let mut frame = Vec::with_capacity(data.len() + 8);
    frame.put_u16_le(FrameType::PAGE_BATCH.0);
    frame.put_u16_le(0);
    frame.put_u32_le(data.len() as u32);
    frame.extend_from_slice(data);
    let Ok(Some(Frame::PageBatch(batch))) = Frame::decode(&mut Bytes::from(frame), &limits) else {
        return;
    };
    let mut memory = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).expect("small memory");
    let mut decoder = Decoder::new(encodings);
    for record in &batch.records {
        let _ = decoder.apply(&mut memory, record);
    }
    assert_eq!(memory.as_bytes().len(), 4096 * PAGES as usize);
});
