//! Encoder and decoder throughput on a realistic mix of page changes: every pair of the
//! XBZRLE conformance vectors (`conformance/vectors/xbzrle/*.pairs`: sparse word writes,
//! counters, 10% and 50% scattered changes, text edits and shifts, 1 KiB blocks, zero and
//! random pages), sent alternately as the old and the new version of each page, so every
//! page after the first pass is a cache hit with a real delta. A memcpy of the same pages in
//! the same run is the yardstick.
//!
//! `cargo bench -p pagewire-codec --bench encoder` runs criterion, then prints pages/s, GB/s
//! and the ratio to memcpy per policy and per vector class, and last the cost of first sends
//! (an empty cache: no deltas, every compressor the policy allows tried) per policy.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use pagewire_codec::encoder::{CostPolicy, LinkTime};
use pagewire_codec::{
    Decoder, Encoder, EncoderConfig, Encoding, EncodingSet, InMemory, PageNumber, PageRecord,
    PageSize,
};

use common::{PAGE, load_pairs, vectors_dir};

/// One vector class: its name, and its old and new pages (page `i` of each is a pair).
struct Class {
    name: String,
    old: Vec<u8>,
    new: Vec<u8>,
}

fn classes() -> Vec<Class> {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("vector directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pairs"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let (old, new) = load_pairs(&path);
            Class {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                old,
                new,
            }
        })
        .collect()
}

/// Every class's pages, concatenated: the mix.
fn mix(classes: &[Class]) -> Class {
    Class {
        name: "mix".into(),
        old: classes.iter().flat_map(|c| c.old.iter().copied()).collect(),
        new: classes.iter().flat_map(|c| c.new.iter().copied()).collect(),
    }
}

struct Setup {
    name: &'static str,
    encodings: EncodingSet,
    policy: CostPolicy,
}

fn setups() -> [Setup; 4] {
    [
        Setup {
            name: "smallest-bytes",
            encodings: EncodingSet::all_known(),
            policy: CostPolicy::SmallestBytes,
        },
        Setup {
            name: "link-time-1GBps",
            encodings: EncodingSet::all_known(),
            policy: CostPolicy::LinkTime(LinkTime::new(1e9)),
        },
        // What `pagewire send` uses without `--rate` (`pagewire_transport::cost`): the speed
        // one core pushes bytes through QUIC.
        Setup {
            name: "link-time-2.5GBps",
            encodings: EncodingSet::all_known(),
            policy: CostPolicy::LinkTime(LinkTime::new(2.5e9)),
        },
        Setup {
            name: "xbzrle-only",
            encodings: EncodingSet::empty()
                .with(Encoding::ZeroRun)
                .with(Encoding::Xbzrle),
            policy: CostPolicy::SmallestBytes,
        },
    ]
}

/// An encoder whose cache holds every page of `class` in its old version.
fn primed_encoder(setup: &Setup, class: &Class) -> Encoder {
    let mut config = EncoderConfig::new(PageSize::KIB_4, setup.encodings);
    config.cache_bytes = 2 * class.old.len() as u64;
    config.policy = setup.policy;
    let mut encoder = Encoder::new(config).unwrap();
    encode_all(&mut encoder, &class.old, &mut Vec::new());
    encoder
}

/// Encodes every page of `memory`, records into `out` (cleared first).
fn encode_all(encoder: &mut Encoder, memory: &[u8], out: &mut Vec<PageRecord>) {
    out.clear();
    for (i, page) in memory.chunks_exact(PAGE).enumerate() {
        if let Some(record) = encoder.encode_page(PageNumber(i as u64), page).unwrap() {
            out.push(record);
        }
    }
}

/// One round: the new versions, then the old ones again (so the state repeats).
fn encode_round(encoder: &mut Encoder, class: &Class, out: &mut Vec<PageRecord>) -> usize {
    encode_all(encoder, &class.new, out);
    let records = out.len();
    encode_all(encoder, &class.old, out);
    black_box(records + out.len())
}

fn memcpy_round(class: &Class, destination: &mut [u8]) {
    for (src, dst) in class
        .new
        .chunks_exact(PAGE)
        .zip(destination.chunks_exact_mut(PAGE))
    {
        dst.copy_from_slice(black_box(src));
    }
    for (src, dst) in class
        .old
        .chunks_exact(PAGE)
        .zip(destination.chunks_exact_mut(PAGE))
    {
        dst.copy_from_slice(black_box(src));
    }
    black_box(destination);
}

fn bench(c: &mut Criterion, classes: &[Class]) {
    let mix = mix(classes);
    let round_bytes = 2 * mix.new.len() as u64;
    let mut group = c.benchmark_group("encoder-mix");
    group.throughput(Throughput::Bytes(round_bytes));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_millis(500));
    group.sample_size(20);

    let mut destination = vec![0u8; mix.new.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| memcpy_round(&mix, &mut destination))
    });
    for setup in setups() {
        let mut encoder = primed_encoder(&setup, &mix);
        let mut out = Vec::new();
        group.bench_function(setup.name, |b| {
            b.iter(|| encode_round(&mut encoder, &mix, &mut out))
        });
    }

    // The decoder applying the smallest-bytes records of one round.
    let setup = &setups()[0];
    let mut encoder = primed_encoder(setup, &mix);
    let (mut to_new, mut to_old) = (Vec::new(), Vec::new());
    encode_all(&mut encoder, &mix.new, &mut to_new);
    encode_all(&mut encoder, &mix.old, &mut to_old);
    let mut memory = InMemory::from_bytes(PageSize::KIB_4, mix.old.clone()).unwrap();
    let mut decoder = Decoder::new(setup.encodings);
    group.bench_function("decoder", |b| {
        b.iter(|| {
            decoder.apply_all(&mut memory, &to_new).unwrap();
            decoder.apply_all(&mut memory, &to_old).unwrap();
        })
    });
    group.finish();
    assert_eq!(memory.as_bytes(), &mix.old[..]);
}

/// The fastest of `runs` timed calls of `round`.
fn fastest(runs: usize, mut round: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            round();
            start.elapsed()
        })
        .min()
        .unwrap()
}

/// Per class and on the mix: pages/s, GB/s, and the ratio to memcpy of the same pages,
/// measured back to back in this run; plus the bytes each policy sends.
fn report(classes: &[Class]) {
    let mix = mix(classes);
    let everything: Vec<&Class> = classes.iter().chain(std::iter::once(&mix)).collect();
    println!();
    println!(
        "{:<14} {:<16} {:>10} {:>8} {:>10} {:>12}",
        "class", "setup", "Mpages/s", "GB/s", "memcpy/x", "wire/bytes"
    );
    for class in everything {
        let bytes = 2 * class.new.len();
        let pages = bytes / PAGE;
        let mut destination = vec![0u8; class.new.len()];
        let memcpy = fastest(30, || memcpy_round(class, &mut destination));
        let gbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e9;
        println!(
            "{:<14} {:<16} {:>10.2} {:>8.2} {:>10} {:>12}",
            class.name,
            "memcpy",
            pages as f64 / memcpy.as_secs_f64() / 1e6,
            gbps(memcpy),
            "1.00",
            "1.000"
        );
        for setup in setups() {
            let mut encoder = primed_encoder(&setup, class);
            let mut out = Vec::new();
            let before = encoder.stats().total_bytes();
            encode_round(&mut encoder, class, &mut out);
            let wire = encoder.stats().total_bytes() - before;
            let time = fastest(10, || {
                encode_round(&mut encoder, class, &mut out);
            });
            println!(
                "{:<14} {:<16} {:>10.2} {:>8.2} {:>10.2} {:>12.3}",
                class.name,
                setup.name,
                pages as f64 / time.as_secs_f64() / 1e6,
                gbps(time),
                time.as_secs_f64() / memcpy.as_secs_f64(),
                wire as f64 / bytes as f64
            );
        }
    }
}

/// First sends: every page of the mix (old and new versions, each as a page of its own) to an
/// encoder that has seen none of them, so no page has a cache entry to delta against and every
/// compressor is tried where the policy allows it. Pages/s and the wire bytes per setup, next
/// to memcpy of the same pages in this run.
fn first_send_report(classes: &[Class]) {
    let mix = mix(classes);
    let pages: Vec<u8> = [mix.new.as_slice(), mix.old.as_slice()].concat();
    let count = pages.len() / PAGE;
    let mut destination = vec![0u8; pages.len()];
    let memcpy = fastest(30, || {
        destination.copy_from_slice(black_box(&pages));
        black_box(&destination);
    });
    println!();
    println!("first sends (empty cache), {count} pages of the mix");
    println!(
        "{:<18} {:>10} {:>10} {:>12}",
        "setup", "us/page", "memcpy/x", "wire/bytes"
    );
    let per_page = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
    println!(
        "{:<18} {:>10.3} {:>10} {:>12}",
        "memcpy",
        per_page(memcpy),
        "1.00",
        "1.000"
    );
    for setup in setups() {
        let fresh = || {
            let mut config = EncoderConfig::new(PageSize::KIB_4, setup.encodings);
            config.policy = setup.policy;
            Encoder::new(config).unwrap()
        };
        let mut out = Vec::new();
        let mut encoder = fresh();
        encode_all(&mut encoder, &pages, &mut out);
        let wire = encoder.stats().total_bytes();
        let time = fastest(10, || {
            let mut encoder = fresh();
            encode_all(&mut encoder, &pages, &mut out);
        });
        println!(
            "{:<18} {:>10.3} {:>10.2} {:>12.3}",
            setup.name,
            per_page(time),
            time.as_secs_f64() / memcpy.as_secs_f64(),
            wire as f64 / pages.len() as f64
        );
    }
}

fn main() {
    let classes = classes();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &classes);
    criterion.final_summary();
    report(&classes);
    first_send_report(&classes);
}
