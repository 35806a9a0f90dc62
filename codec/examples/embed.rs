//! A hypervisor embedding pagewire's codec: the encoder on the send path, the decoder on the
//! receive path, a guest that keeps writing between iterations of pre-copy.
//!
//! Run with `cargo run -p pagewire-codec --example embed`.
//!
//! In a real VMM the records travel inside page-batch frames over the transport; here they
//! go straight from the encoder to the decoder, which is exactly what a destination sees once
//! frames are decoded.

use pagewire_codec::{
    Decoder, Encoder, EncoderConfig, EncodingSet, InMemory, PageBitmap, PageCount, PageNumber,
    PageRecord, PageSize,
};

const PAGES: u64 = 2048; // an 8 MiB guest of 4 KiB pages

/// A toy guest: mostly zero memory, a text-like heap, and counters that keep changing.
struct Guest {
    memory: InMemory,
    dirty: PageBitmap,
    tick: u64,
}

impl Guest {
    fn new() -> Guest {
        let mut guest = Guest {
            memory: InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap(),
            dirty: PageBitmap::new(PageCount(PAGES)),
            tick: 0,
        };
        for page in 0..256 {
            let text = format!("heap object {page}: the quick brown fox jumps over the dog. ");
            guest.write(
                page,
                0,
                &text.repeat(4096 / text.len() + 1).as_bytes()[..4096],
            );
        }
        guest
    }

    fn write(&mut self, page: u64, offset: usize, bytes: &[u8]) {
        let start = page as usize * 4096 + offset;
        self.memory.as_bytes_mut()[start..start + bytes.len()].copy_from_slice(bytes);
        self.dirty.insert(PageNumber(page));
    }

    /// One slice of guest execution: counters tick, a buffer is copied, a page is freed.
    fn run(&mut self) {
        self.tick += 1;
        for page in (0..64).map(|i| i * 3) {
            let offset = (self.tick as usize * 64) % 4096;
            self.write(page, offset, &self.tick.to_le_bytes());
        }
        let copy = self.memory.page(PageNumber(10)).unwrap().to_vec();
        self.write(1000 + self.tick, 0, &copy);
        self.write(200, 0, &[0u8; 4096]);
    }

    fn take_dirty(&mut self) -> Vec<PageNumber> {
        let pages = self.dirty.iter().collect();
        self.dirty.clear();
        pages
    }
}

fn main() {
    // Both sides negotiated every encoding in their hello frames.
    let encodings = EncodingSet::all_known();
    let mut config = EncoderConfig::new(PageSize::KIB_4, encodings);
    config.cache_bytes = 4 << 20; // XBZRLE cache: 4 MiB of last-sent pages

    // Source side.
    let mut guest = Guest::new();
    let mut encoder = Encoder::new(config).expect("valid configuration");
    // Destination side.
    let mut destination = InMemory::new(PageSize::KIB_4, PageCount(PAGES)).unwrap();
    let mut decoder = Decoder::new(encodings);

    // Iteration 0 sends all memory (zero pages coalesce into runs); later iterations send the
    // pages the guest dirtied meanwhile. The last one runs with the guest paused.
    let mut records: Vec<PageRecord> = Vec::new();
    encoder
        .encode_range(PageNumber(0), guest.memory.as_bytes(), &mut records)
        .unwrap();
    guest.take_dirty();
    report(0, &records);
    decoder
        .apply_all(&mut destination, &records)
        .expect("valid records");

    for iteration in 1..=4 {
        guest.run(); // the guest writes while the previous batch was in flight
        records.clear();
        for page in guest.take_dirty() {
            let bytes = guest.memory.page(page).unwrap();
            if let Some(record) = encoder.encode_page(page, bytes).unwrap() {
                encoder.push_coalesced(&mut records, record);
            }
        }
        report(iteration, &records);
        for record in &records {
            decoder
                .apply(&mut destination, record)
                .expect("valid record");
        }
    }

    assert_eq!(destination.page_count(), guest.memory.page_count());
    assert!(
        destination.as_bytes() == guest.memory.as_bytes(),
        "memories differ"
    );
    let stats = encoder.stats();
    println!(
        "memories identical; {} pages in, {} bytes of records for {} bytes of guest memory",
        stats.pages_in,
        stats.total_bytes(),
        PAGES * 4096
    );
    println!("per encoding: {stats:#?}");
}

fn report(iteration: usize, records: &[PageRecord]) {
    let bytes: usize = records
        .iter()
        .map(|r| pagewire_codec::encoder::body_wire_len(&r.body, PageSize::KIB_4))
        .sum();
    println!(
        "iteration {iteration}: {} records, {bytes} bytes",
        records.len()
    );
}
