//! Decoding speed of traces: how many written pages per second a replay can read, against
//! copying the same bytes with memcpy in the same run (the yardstick).
//!
//! Run: `cargo bench -p pagewire-bench --bench trace_read`.
//! Throughput is counted in bytes of page writes (pages written × page size) and reported
//! per trace as pages/s too.

use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pagewire_bench::trace::content::{ContentMix, ContentModel};
use pagewire_bench::trace::generators::{
    GenConfig, HotCold, HotColdShape, Sweep, WritePattern, generate,
};
use pagewire_bench::trace::{
    ContentMode, Epoch, ReaderOptions, TraceHeader, TraceReader, TraceWriter,
};
use pagewire_codec::{PageCount, PageNumber, PageSize};

const PAGES: u64 = 4096; // 16 MiB of 4 KiB pages

fn trace(content: ContentMode, pattern: &mut dyn WritePattern) -> (Vec<u8>, u64) {
    let config = GenConfig {
        page_size: PageSize::KIB_4,
        page_count: PageCount(PAGES),
        interval: Duration::from_millis(100),
        epochs: 40,
        content,
        model: ContentModel::new(1, ContentMix::default(), 64),
        identical_share: if content == ContentMode::Full {
            0.4
        } else {
            0.0
        },
        seed: 1,
    };
    let header = TraceHeader::new(config.page_size, content, config.page_count);
    let mut writer = TraceWriter::new(Vec::new(), header).unwrap();
    generate(&config, pattern, &mut writer, &mut |_| {}).unwrap();
    let (bytes, summary) = writer.finish().unwrap();
    (bytes, summary.pages_written)
}

fn decode_all(bytes: &[u8]) -> usize {
    let mut reader =
        TraceReader::from_reader(Cursor::new(bytes), ReaderOptions::default()).unwrap();
    let mut epoch = Epoch::default();
    let mut writes = 0;
    while reader.next_epoch(&mut epoch).unwrap() {
        writes += epoch.writes.len();
    }
    writes
}

fn bench(c: &mut Criterion) {
    let cases: Vec<(&str, ContentMode, Box<dyn WritePattern>)> = vec![
        (
            "hot-cold-full",
            ContentMode::Full,
            Box::new(HotCold::new(
                PageCount(PAGES),
                1500,
                HotColdShape::Zipf { exponent: 0.8 },
            )),
        ),
        (
            "sweep-full",
            ContentMode::Full,
            Box::new(Sweep::new(PageNumber(0), PAGES, 1000)),
        ),
        (
            "hot-cold-dirty-only",
            ContentMode::DirtyOnly,
            Box::new(HotCold::new(
                PageCount(PAGES),
                1500,
                HotColdShape::Zipf { exponent: 0.8 },
            )),
        ),
    ];
    let mut group = c.benchmark_group("trace_read");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, content, mut pattern) in cases {
        let (bytes, pages_written) = trace(content, pattern.as_mut());
        let page_bytes = pages_written * 4096;
        eprintln!(
            "{name}: {pages_written} page writes ({} MiB) in a {} KiB file",
            page_bytes >> 20,
            bytes.len() >> 10
        );
        group.throughput(Throughput::Bytes(page_bytes));
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| black_box(decode_all(black_box(&bytes))))
        });
        if content == ContentMode::Full {
            let source = vec![7u8; page_bytes as usize];
            let mut target = vec![0u8; page_bytes as usize];
            group.bench_function(format!("memcpy/{name}"), |b| {
                b.iter(|| target.copy_from_slice(black_box(&source)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
