//! Page-codec throughput over the shared pair sets (`conformance/vectors/xbzrle/*.pairs`):
//! XBZRLE encode (both modes) and decode, zero detection, xxh3-128, lz4, zstd-1, and memcpy of
//! the same pages as the yardstick, in cache (the 64 pairs of a set, 512 KiB) and out of cache
//! (the pairs replicated into a 64 MiB working set). Throughput counts new-page bytes.
//!
//! Run: `cargo bench -p pagewire-codec --bench pages` (add a filter such as `-- mixed`).
//! Before the measurements it prints, per pair set, the delta sizes and give-ups of both
//! encoder modes.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use pagewire_codec::ContentHash;
use pagewire_codec::xbzrle::{self, XbzrleMode};
use pagewire_codec::zero::is_zero;

use common::{PAGE, load_pairs, vectors_dir};

const SETS: [&str; 10] = [
    "sparse_words",
    "counters",
    "pct10",
    "pct50",
    "zero",
    "text_edit",
    "text_shift",
    "block_1k",
    "random",
    "mixed",
];
/// Bytes of old and new pages together in the out-of-cache working set.
const OUT_OF_CACHE_BYTES: usize = 64 << 20;

/// Pages of one pair set, `old` and `new` each a run of whole pages.
struct PairSet {
    old: Vec<u8>,
    new: Vec<u8>,
}

impl PairSet {
    fn load(name: &str) -> PairSet {
        let (old, new) = load_pairs(&vectors_dir().join(format!("{name}.pairs")));
        PairSet { old, new }
    }

    /// The same pairs copied until old and new pages together fill `bytes`.
    fn replicated(&self, bytes: usize) -> PairSet {
        let copies = bytes / (2 * self.new.len());
        PairSet {
            old: self.old.repeat(copies),
            new: self.new.repeat(copies),
        }
    }

    fn pages(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.old.chunks_exact(PAGE).zip(self.new.chunks_exact(PAGE))
    }

    /// The Compact deltas of every pair (empty when it gave up), one `PAGE` slot each.
    fn deltas(&self) -> (Vec<u8>, Vec<usize>) {
        let mut out = vec![0u8; self.new.len()];
        let lens = self
            .pages()
            .zip(out.chunks_exact_mut(PAGE))
            .map(|((o, n), slot)| xbzrle::encode(o, n, slot, XbzrleMode::Compact).unwrap_or(0))
            .collect();
        (out, lens)
    }
}

fn encode_all(set: &PairSet, out: &mut [u8], mode: XbzrleMode) -> usize {
    set.pages()
        .map(|(o, n)| xbzrle::encode(o, n, out, mode).unwrap_or(0))
        .sum()
}

fn bench_xbzrle(g: &mut BenchmarkGroup<'_, WallTime>, set: &PairSet) {
    g.throughput(Throughput::Bytes(set.new.len() as u64));
    let mut out = vec![0u8; PAGE];
    for (name, mode) in [
        ("encode_qemu", XbzrleMode::Qemu),
        ("encode_compact", XbzrleMode::Compact),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| encode_all(black_box(set), &mut out, mode))
        });
    }
    let (deltas, lens) = set.deltas();
    let mut pages = set.old.clone();
    g.bench_function("decode", |b| {
        b.iter(|| {
            for ((page, slot), &len) in pages
                .chunks_exact_mut(PAGE)
                .zip(deltas.chunks_exact(PAGE))
                .zip(&lens)
            {
                xbzrle::decode(black_box(&slot[..len]), page).unwrap();
            }
        })
    });
}

fn bench_peers(g: &mut BenchmarkGroup<'_, WallTime>, set: &PairSet) {
    g.throughput(Throughput::Bytes(set.new.len() as u64));
    let mut copy = vec![0u8; set.new.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| copy.copy_from_slice(black_box(&set.new)))
    });
    g.bench_function("xxh3_128", |b| {
        b.iter(|| {
            set.new
                .chunks_exact(PAGE)
                .map(|p| ContentHash::of(p).0)
                .fold(0, |a, h| a ^ h)
        })
    });
    let mut lz4_out = vec![0u8; lz4_flex::block::get_maximum_output_size(PAGE)];
    g.bench_function("lz4_flex", |b| {
        b.iter(|| {
            set.new
                .chunks_exact(PAGE)
                .map(|p| lz4_flex::block::compress_into(p, &mut lz4_out).unwrap())
                .sum::<usize>()
        })
    });
    let mut zstd = zstd::bulk::Compressor::new(1).unwrap();
    let mut zstd_out = vec![0u8; zstd::zstd_safe::compress_bound(PAGE)];
    g.bench_function("zstd_1", |b| {
        b.iter(|| {
            set.new
                .chunks_exact(PAGE)
                .map(|p| zstd.compress_to_buffer(p, &mut zstd_out).unwrap())
                .sum::<usize>()
        })
    });
}

fn bench_zero(g: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    let zero = vec![0u8; bytes];
    let mut last_set = zero.clone();
    for page in last_set.chunks_exact_mut(PAGE) {
        page[PAGE - 1] = 1;
    }
    g.throughput(Throughput::Bytes(bytes as u64));
    for (name, pages) in [
        ("is_zero_zero_pages", &zero),
        ("is_zero_last_byte_set", &last_set),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(pages)
                    .chunks_exact(PAGE)
                    .filter(|p| is_zero(p))
                    .count()
            })
        });
    }
    let mut copy = vec![0u8; bytes];
    g.bench_function("memcpy", |b| {
        b.iter(|| copy.copy_from_slice(black_box(&last_set)))
    });
    g.bench_function("read_sum", |b| {
        b.iter(|| {
            black_box(&last_set)
                .chunks_exact(64)
                .fold([0u64; 8], |mut acc, c| {
                    for (a, w) in acc.iter_mut().zip(c.chunks_exact(8)) {
                        *a = a.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap()));
                    }
                    acc
                })
        })
    });
}

/// Delta sizes and give-ups of both modes per pair set, printed before the measurements.
fn print_sizes() {
    println!(
        "set            qemu_bytes compact_bytes saved  qemu_gave_up compact_gave_up compact_bytes_where_qemu_gave_up"
    );
    let mut out = vec![0u8; PAGE];
    for name in SETS {
        let set = PairSet::load(name);
        let (mut qemu_bytes, mut compact_bytes, mut qemu_gave_up, mut compact_gave_up, mut extra) =
            (0, 0, 0, 0, 0);
        for (o, n) in set.pages() {
            let qemu = xbzrle::encode(o, n, &mut out, XbzrleMode::Qemu);
            let compact = xbzrle::encode(o, n, &mut out, XbzrleMode::Compact);
            match (qemu, compact) {
                (Ok(q), Ok(c)) => {
                    qemu_bytes += q;
                    compact_bytes += c;
                }
                (Err(_), Ok(c)) => {
                    qemu_gave_up += 1;
                    extra += c;
                }
                (Err(_), Err(_)) => {
                    qemu_gave_up += 1;
                    compact_gave_up += 1;
                }
                (Ok(_), Err(_)) => panic!("{name}: compact gave up where qemu did not"),
            }
        }
        let saved = if qemu_bytes == 0 {
            0.0
        } else {
            100.0 * (qemu_bytes - compact_bytes) as f64 / qemu_bytes as f64
        };
        println!(
            "{name:<14} {qemu_bytes:>10} {compact_bytes:>13} {saved:>4.1}% {qemu_gave_up:>12} {compact_gave_up:>15} {extra:>10}"
        );
    }
}

fn pages(c: &mut Criterion) {
    print_sizes();
    for name in SETS {
        let set = PairSet::load(name);
        let mut g = c.benchmark_group(format!("in_cache/{name}"));
        bench_xbzrle(&mut g, &set);
        bench_peers(&mut g, &set);
        g.finish();
        let big = set.replicated(OUT_OF_CACHE_BYTES);
        let mut g = c.benchmark_group(format!("out_of_cache/{name}"));
        g.sample_size(10);
        bench_xbzrle(&mut g, &big);
        g.finish();
    }
    let mut g = c.benchmark_group("in_cache/is_zero");
    bench_zero(&mut g, 64 * PAGE);
    g.finish();
    let mut g = c.benchmark_group("out_of_cache/is_zero");
    g.sample_size(10);
    bench_zero(&mut g, OUT_OF_CACHE_BYTES / 2);
    g.finish();
    let mixed = PairSet::load("mixed").replicated(OUT_OF_CACHE_BYTES);
    let mut g = c.benchmark_group("out_of_cache/mixed_peers");
    g.sample_size(10);
    bench_peers(&mut g, &mixed);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(20)
        .nresamples(10_000);
    targets = pages
}
criterion_main!(benches);
