//! Reads arbitrary bytes as a trace file: header, footer, initial image, every epoch and the
//! pages they write. No input may panic or allocate beyond the reader's limits.
//!
//! Inputs whose first byte is odd are "resealed" first: the header, block and footer
//! checksums and the trailer's footer offset are recomputed (as `spec/trace.md` defines
//! them), so that mutations reach the block and entry decoders instead of stopping at a
//! checksum.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use pagewire_bench::trace::{Epoch, ImageBacking, ReaderOptions, TraceReader};
use pagewire_codec::PageCount;
use xxhash_rust::xxh3::xxh3_64;

const FOOTER_LEN: usize = 144;
const TRAILER_LEN: usize = 16;
const BLOCK_HEAD: usize = 24;

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let field = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes(field.try_into().ok()?) as usize)
}

/// Recomputes the checksums and the footer offset wherever the layout allows.
fn reseal(file: &mut [u8]) {
    let len = file.len();
    let Some(body_len) = u32_at(file, 12) else {
        return;
    };
    let header_end = 16 + body_len;
    if header_end + 8 > len {
        return;
    }
    let sum = xxh3_64(&file[..header_end]);
    file[header_end..header_end + 8].copy_from_slice(&sum.to_le_bytes());
    if len < header_end + 8 + FOOTER_LEN + TRAILER_LEN {
        return;
    }
    let footer = len - FOOTER_LEN - TRAILER_LEN;
    let mut block = header_end + 8;
    while block + BLOCK_HEAD <= footer {
        let Some(compressed) = u32_at(file, block + 8) else {
            break;
        };
        let end = block + BLOCK_HEAD + compressed;
        if end > footer {
            break;
        }
        let mut covered = file[block..block + 16].to_vec();
        covered.extend_from_slice(&file[block + BLOCK_HEAD..end]);
        let sum = xxh3_64(&covered);
        file[block + 16..block + 24].copy_from_slice(&sum.to_le_bytes());
        block = end;
    }
    let sum = xxh3_64(&file[footer..footer + FOOTER_LEN - 8]);
    file[footer + FOOTER_LEN - 8..footer + FOOTER_LEN].copy_from_slice(&sum.to_le_bytes());
    file[len - TRAILER_LEN..len - 8].copy_from_slice(&(footer as u64).to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    if mode & 1 == 1 {
        reseal(&mut file);
    }
    let options = ReaderOptions {
        image: ImageBacking::Memory,
        max_memory_image: 64 << 20,
        max_page_count: PageCount(1 << 20),
    };
    let Ok(mut reader) = TraceReader::from_reader(Cursor::new(file), options) else {
        return;
    };
    if reader.load_initial_image().is_err() {
        return;
    }
    let mut epoch = Epoch::default();
    while let Ok(true) = reader.next_epoch(&mut epoch) {
        for write in &epoch.writes {
            if let Ok(content) = reader.page(write.page) {
                assert_eq!(content.len(), reader.page_size().bytes());
            }
        }
    }
});
