//! Every generator, through the writer and back through the reader: same initial image, same
//! epochs, same pages, same contents, and unchanged writes reported as unchanged.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Duration;

use pagewire_bench::trace::content::{ContentMix, ContentModel};
use pagewire_bench::trace::generators::{
    GenConfig, HistoryMajority, HotCold, HotColdShape, Idle, MirrorFiles, Sweep, Uniform, Video,
    WritePattern, generate, two_fold,
};
use pagewire_bench::trace::{
    ContentMode, Epoch, ReaderOptions, TraceHeader, TraceReader, TraceSink, TraceWriteError,
    TraceWriter, WriteKind,
};
use pagewire_codec::{PageCount, PageNumber, PageSize};

/// The writes of one epoch: each page with its content (`None` in dirty-only traces).
type EpochWrites = Vec<(PageNumber, Option<Vec<u8>>)>;

/// Remembers everything a generator wrote.
#[derive(Default)]
struct Expected {
    initial: HashMap<PageNumber, Vec<u8>>,
    epochs: Vec<(Duration, EpochWrites)>,
}

impl TraceSink for Expected {
    fn write_initial_page(
        &mut self,
        page: PageNumber,
        content: &[u8],
    ) -> Result<(), TraceWriteError> {
        self.initial.insert(page, content.to_vec());
        Ok(())
    }
    fn begin_epoch(&mut self, time: Duration) -> Result<(), TraceWriteError> {
        self.epochs.push((time, Vec::new()));
        Ok(())
    }
    fn write_page(&mut self, page: PageNumber, content: &[u8]) -> Result<(), TraceWriteError> {
        self.epochs
            .last_mut()
            .unwrap()
            .1
            .push((page, Some(content.to_vec())));
        Ok(())
    }
    fn write_dirty(&mut self, page: PageNumber) -> Result<(), TraceWriteError> {
        self.epochs.last_mut().unwrap().1.push((page, None));
        Ok(())
    }
    fn end_epoch(&mut self) -> Result<(), TraceWriteError> {
        Ok(())
    }
    fn grow(&mut self, _page_count: PageCount) -> Result<(), TraceWriteError> {
        Ok(())
    }
}

/// Passes every call to two sinks.
struct Tee<'a>(&'a mut dyn TraceSink, &'a mut dyn TraceSink);

impl TraceSink for Tee<'_> {
    fn write_initial_page(
        &mut self,
        page: PageNumber,
        content: &[u8],
    ) -> Result<(), TraceWriteError> {
        self.0.write_initial_page(page, content)?;
        self.1.write_initial_page(page, content)
    }
    fn begin_epoch(&mut self, time: Duration) -> Result<(), TraceWriteError> {
        self.0.begin_epoch(time)?;
        self.1.begin_epoch(time)
    }
    fn write_page(&mut self, page: PageNumber, content: &[u8]) -> Result<(), TraceWriteError> {
        self.0.write_page(page, content)?;
        self.1.write_page(page, content)
    }
    fn write_dirty(&mut self, page: PageNumber) -> Result<(), TraceWriteError> {
        self.0.write_dirty(page)?;
        self.1.write_dirty(page)
    }
    fn end_epoch(&mut self) -> Result<(), TraceWriteError> {
        self.0.end_epoch()?;
        self.1.end_epoch()
    }
    fn grow(&mut self, page_count: PageCount) -> Result<(), TraceWriteError> {
        self.0.grow(page_count)?;
        self.1.grow(page_count)
    }
}

const PAGES: u64 = 96;

fn config(content: ContentMode, seed: u64) -> GenConfig {
    GenConfig {
        page_size: PageSize::KIB_4,
        page_count: PageCount(PAGES),
        interval: Duration::from_millis(100),
        epochs: 12,
        content,
        model: ContentModel::new(seed, ContentMix::default(), 64),
        identical_share: if content == ContentMode::Full {
            0.4
        } else {
            0.0
        },
        seed,
    }
}

fn every_generator(seed: u64) -> Vec<Box<dyn WritePattern>> {
    let count = PageCount(PAGES);
    vec![
        Box::new(Uniform {
            page_count: count,
            pages_per_epoch: 10,
        }),
        Box::new(HotCold::new(
            count,
            30,
            HotColdShape::Zipf { exponent: 1.0 },
        )),
        Box::new(HotCold::new(
            count,
            30,
            HotColdShape::TwoSet {
                hot_fraction: 0.1,
                hot_share: 0.9,
            },
        )),
        Box::new(Sweep::new(PageNumber(8), 40, 16)),
        Box::new(Idle::new(count, 4, 0.5, seed)),
        Box::new(MirrorFiles::new(count, 3, 10, 7, seed)),
        Box::new(two_fold(count, 25)),
        Box::new(HistoryMajority {
            page_count: count,
            dirty_probability: 0.5,
        }),
        Box::new(Video::new(
            count,
            4096,
            Duration::from_millis(100),
            5 * 4096,
            30.0,
            4,
            20_000.0,
        )),
    ]
}

/// Generates `pattern` into a trace and into `Expected`; returns both.
fn generate_both(config: &GenConfig, pattern: &mut dyn WritePattern) -> (Vec<u8>, Expected) {
    let header = TraceHeader::new(config.page_size, config.content, config.page_count)
        .with_metadata("generator", pattern.name());
    let mut writer = TraceWriter::new(Vec::new(), header).unwrap();
    let mut expected = Expected::default();
    generate(
        config,
        pattern,
        &mut Tee(&mut writer, &mut expected),
        &mut |_| {},
    )
    .unwrap();
    let (bytes, summary) = writer.finish().unwrap();
    assert_eq!(summary.epochs, config.epochs);
    (bytes, expected)
}

fn check_round_trip(content: ContentMode) {
    let config = config(content, 42);
    for mut pattern in every_generator(42) {
        let name = pattern.name();
        let (bytes, expected) = generate_both(&config, pattern.as_mut());
        let mut reader =
            TraceReader::from_reader(Cursor::new(bytes), ReaderOptions::default()).unwrap();
        assert_eq!(reader.page_count(), config.page_count, "{name}");
        assert_eq!(reader.header().metadata["generator"], name);
        let written: u64 = expected.epochs.iter().map(|e| e.1.len() as u64).sum();
        assert_eq!(reader.summary().pages_written, written, "{name}");
        assert!(written > 0, "{name} wrote nothing");

        let mut image: Vec<Vec<u8>> = vec![vec![0u8; 4096]; PAGES as usize];
        reader.load_initial_image().unwrap();
        if content == ContentMode::Full {
            for (page, bytes) in &expected.initial {
                image[page.index()] = bytes.clone();
            }
            for n in 0..PAGES {
                assert_eq!(
                    reader.page(PageNumber(n)).unwrap(),
                    &image[n as usize][..],
                    "{name} initial {n}"
                );
            }
        }
        let mut epoch = Epoch::default();
        let mut unchanged_seen = 0;
        for (index, (time, writes)) in expected.epochs.iter().enumerate() {
            assert!(
                reader.next_epoch(&mut epoch).unwrap(),
                "{name}: epoch {index} missing"
            );
            assert_eq!((epoch.index, epoch.time), (index as u64, *time), "{name}");
            let pages: Vec<PageNumber> = epoch.writes.iter().map(|w| w.page).collect();
            let expected_pages: Vec<PageNumber> = writes.iter().map(|w| w.0).collect();
            assert_eq!(pages, expected_pages, "{name}: epoch {index}");
            for (write, (page, new)) in epoch.writes.iter().zip(writes) {
                match new {
                    None => assert_eq!(write.kind, WriteKind::Dirty),
                    Some(new) => {
                        let same = image[page.index()] == *new;
                        let kind = if same {
                            WriteKind::Unchanged
                        } else {
                            WriteKind::Changed
                        };
                        assert_eq!(write.kind, kind, "{name}: {page} in epoch {index}");
                        unchanged_seen += u64::from(same);
                        image[page.index()] = new.clone();
                        assert_eq!(
                            reader.page(*page).unwrap(),
                            &new[..],
                            "{name}: {page} in epoch {index}"
                        );
                    }
                }
            }
        }
        assert!(
            !reader.next_epoch(&mut epoch).unwrap(),
            "{name}: extra epoch"
        );
        assert_eq!(reader.summary().pages_unchanged, unchanged_seen, "{name}");
        if content == ContentMode::Full {
            for n in 0..PAGES {
                assert_eq!(
                    reader.page(PageNumber(n)).unwrap(),
                    &image[n as usize][..],
                    "{name} final {n}"
                );
            }
        }
    }
}

#[test]
fn every_generator_round_trips_with_contents() {
    check_round_trip(ContentMode::Full);
}

#[test]
fn every_generator_round_trips_without_contents() {
    check_round_trip(ContentMode::DirtyOnly);
}

#[test]
fn generators_are_deterministic_in_their_seed() {
    for content in [ContentMode::Full, ContentMode::DirtyOnly] {
        for ((mut a, mut b), mut c) in every_generator(7)
            .into_iter()
            .zip(every_generator(7))
            .zip(every_generator(8))
        {
            let name = a.name();
            let first = generate_both(&config(content, 7), a.as_mut()).0;
            let again = generate_both(&config(content, 7), b.as_mut()).0;
            assert_eq!(first, again, "{name}: same seed, different bytes");
            if content == ContentMode::Full || !matches!(name, "sweep" | "video" | "mirror") {
                let other = generate_both(&config(content, 8), c.as_mut()).0;
                assert_ne!(first, other, "{name}: the seed changed nothing");
            }
        }
    }
}

/// A reader of a small full-content trace: 9 uniformly chosen pages written per epoch.
fn uniform_reader() -> TraceReader<Cursor<Vec<u8>>> {
    let config = config(ContentMode::Full, 3);
    let (bytes, _) = generate_both(
        &config,
        &mut Uniform {
            page_count: PageCount(PAGES),
            pages_per_epoch: 9,
        },
    );
    TraceReader::from_reader(Cursor::new(bytes), ReaderOptions::default()).unwrap()
}

#[test]
fn rewind_replays_the_same_epochs_and_contents() {
    let mut reader = uniform_reader();
    let mut first = Vec::new();
    let mut epoch = Epoch::default();
    while reader.next_epoch(&mut epoch).unwrap() {
        first.push(epoch.clone());
    }
    let last_page = reader.page(PageNumber(5)).unwrap().to_vec();
    reader.rewind().unwrap();
    for expected in &first {
        assert!(reader.next_epoch(&mut epoch).unwrap());
        assert_eq!(&epoch, expected);
    }
    assert!(!reader.next_epoch(&mut epoch).unwrap());
    assert_eq!(reader.page(PageNumber(5)).unwrap(), &last_page[..]);
}

#[test]
fn file_backed_image_gives_the_same_contents() {
    let config = config(ContentMode::Full, 5);
    let (bytes, _) = generate_both(&config, &mut two_fold(PageCount(PAGES), 40));
    let dir = std::env::temp_dir().join(format!("pagewire-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let options = ReaderOptions {
        image: pagewire_bench::trace::ImageBacking::File(dir.join("image")),
        ..ReaderOptions::default()
    };
    let mut in_memory =
        TraceReader::from_reader(Cursor::new(bytes.clone()), ReaderOptions::default()).unwrap();
    let mut in_file = TraceReader::from_reader(Cursor::new(bytes), options).unwrap();
    let (mut a, mut b) = (Epoch::default(), Epoch::default());
    while in_memory.next_epoch(&mut a).unwrap() {
        assert!(in_file.next_epoch(&mut b).unwrap());
        assert_eq!(a, b);
        for write in &a.writes {
            let want = in_memory.page(write.page).unwrap().to_vec();
            assert_eq!(in_file.page(write.page).unwrap(), &want[..]);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rewind_epochs_applies_the_writes_again_to_the_current_image() {
    let mut reader = uniform_reader();
    let image = |reader: &mut TraceReader<Cursor<Vec<u8>>>| -> Vec<Vec<u8>> {
        (0..PAGES)
            .map(|page| reader.page(PageNumber(page)).unwrap().to_vec())
            .collect()
    };
    reader.load_initial_image().unwrap();
    let initial = image(&mut reader);
    let mut first = Epoch::default();
    assert!(reader.next_epoch(&mut first).unwrap());
    let after_first = image(&mut reader);
    let mut epoch = Epoch::default();
    while reader.next_epoch(&mut epoch).unwrap() {}
    let last = image(&mut reader);

    reader.rewind_epochs().unwrap();
    assert!(reader.next_epoch(&mut epoch).unwrap());
    assert_eq!(epoch, first);
    let again = image(&mut reader);
    let xor = |a: &[u8], b: &[u8]| -> Vec<u8> { a.iter().zip(b).map(|(x, y)| x ^ y).collect() };
    let mut changed_as_recorded = 0;
    for page in 0..PAGES as usize {
        if first.writes.iter().all(|write| write.page.index() != page) {
            // Not written by the first epoch: the last epoch's content, not the initial one.
            assert_eq!(again[page], last[page], "page {page}");
            continue;
        }
        // A full or zero write sets the recorded content; a delta or an unchanged write
        // changes the current content by what the recorded write changed.
        let recorded_change = xor(&initial[page], &after_first[page]);
        if again[page] != after_first[page] {
            assert_eq!(
                xor(&last[page], &again[page]),
                recorded_change,
                "page {page}"
            );
            changed_as_recorded += 1;
        }
    }
    assert!(changed_as_recorded > 0);
    assert!((0..PAGES as usize).any(|page| last[page] != initial[page]));
}
