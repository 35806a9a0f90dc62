//! The recorder against a small program of ours that writes a known pattern.
//!
//! The program is this test binary re-executed in "pattern writer" mode
//! (`pattern_writer_child`). It keeps a region of pages filled with a known pattern and obeys
//! one-line commands on stdin, answering on stdout once a command is done. The test scans only
//! after the answer, while the writer waits for its next command, so each epoch holds exactly
//! the writes of the commands before it: no sleeps, no timing.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use pagewire_bench::recorder::maps::VirtualPage;
use pagewire_bench::recorder::trace_file::TraceFileSink;
use pagewire_bench::recorder::uffd::{self, PreloadLibrary};
use pagewire_bench::recorder::{
    EpochPages, EpochSink, MemorySink, ProcessId, RecordOptions, Recorder, RecorderError, Step,
    StopReason, TargetExit, TrackerChoice,
};
use pagewire_bench::trace::{ContentMode, Epoch, TraceHeader, TraceReader, TraceWriter, WriteKind};
use pagewire_codec::{PageCount, PageNumber, PageSize};

const CHILD_ENV: &str = "PAGEWIRE_RECORDER_PATTERN_WRITER";
const PAGE: usize = 4096;

/// Content of a page filled with `seed`: byte j is `seed + 7j` (never a constant page).
fn pattern(seed: u8) -> Vec<u8> {
    (0..PAGE)
        .map(|j| seed.wrapping_add((j as u8).wrapping_mul(7)))
        .collect()
}

/// A page-aligned region of `pages` pages inside a heap allocation.
struct Region {
    storage: Vec<u8>,
    offset: usize,
    pages: usize,
}

impl Region {
    fn new(pages: usize, seed: u8) -> Self {
        let storage = vec![0u8; (pages + 1) * PAGE];
        let offset = (PAGE - storage.as_ptr() as usize % PAGE) % PAGE;
        let mut region = Self {
            storage,
            offset,
            pages,
        };
        for page in 0..pages {
            region.fill(page, seed.wrapping_add(page as u8));
        }
        region
    }

    fn fill(&mut self, page: usize, seed: u8) {
        let start = self.offset + page * PAGE;
        self.storage[start..start + PAGE].copy_from_slice(&pattern(seed));
    }

    fn first_page(&self) -> u64 {
        (self.storage.as_ptr() as usize + self.offset) as u64 / PAGE as u64
    }
}

/// The pattern writer. Commands: `write P SEED` (fill page P of region A), `same P` (rewrite
/// page P with its current content), `map N` (new region B of N pages, seed 100), `unmap`
/// (drop region B), `exit`.
#[test]
#[ignore = "the pattern writer, run only as a child process of the other tests"]
fn pattern_writer_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut region = Region::new(32, 1);
    let mut _extra: Option<Region> = None;
    println!("ready {} {}", region.first_page(), region.pages);
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["write", page, seed] => region.fill(page.parse().unwrap(), seed.parse().unwrap()),
            ["same", page] => {
                let start = region.offset + page.parse::<usize>().unwrap() * PAGE;
                let copy = region.storage[start..start + PAGE].to_vec();
                region.storage[start..start + PAGE].copy_from_slice(std::hint::black_box(&copy));
            }
            ["map", pages] => {
                let new = Region::new(pages.parse().unwrap(), 100);
                println!("mapped {}", new.first_page());
                _extra = Some(new);
                continue;
            }
            ["unmap"] => _extra = None,
            ["exit"] => std::process::exit(0),
            _ => panic!("unknown command {line:?}"),
        }
        println!("ok");
    }
}

/// The parent's handle on a pattern writer.
struct Writer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    first_page: u64,
    pages: u64,
}

impl Writer {
    fn start() -> Self {
        Self::start_with_env(&[])
    }

    fn start_with_env(env: &[(&str, std::ffi::OsString)]) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "pattern_writer_child",
                "--include-ignored",
                "--nocapture",
            ])
            .env(CHILD_ENV, "1")
            // A fixed threshold keeps glibc from moving large allocations to the heap after
            // the first one is freed, so `map` is always a fresh mmap.
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut writer = Self {
            child,
            stdin,
            stdout,
            first_page: 0,
            pages: 0,
        };
        let ready = writer.answer("ready");
        let mut fields = ready.split_whitespace().skip(1);
        writer.first_page = fields.next().unwrap().parse().unwrap();
        writer.pages = fields.next().unwrap().parse().unwrap();
        writer
    }

    fn pid(&self) -> ProcessId {
        ProcessId(self.child.id())
    }

    /// Reads lines until one starts with `prefix` (the test harness prints its own lines).
    fn answer(&mut self, prefix: &str) -> String {
        loop {
            let mut line = String::new();
            assert_ne!(self.stdout.read_line(&mut line).unwrap(), 0, "writer died");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    fn command(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        let prefix = if command.starts_with("map") {
            "mapped"
        } else {
            "ok"
        };
        self.answer(prefix)
    }

    fn page(&self, index: u64) -> VirtualPage {
        VirtualPage(self.first_page + index)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pages of one epoch that belong to `numbers`, with contents, in page-number order.
fn epoch_pages(
    sink: &MemorySink,
    epoch: usize,
    numbers: &[PageNumber],
) -> Vec<(PageNumber, Vec<u8>)> {
    let mut pages: Vec<_> = sink.epochs[epoch]
        .pages
        .iter()
        .filter(|(page, _)| numbers.contains(page))
        .map(|(page, content)| (page, content.to_vec()))
        .collect();
    pages.sort_by_key(|(page, _)| *page);
    pages
}

fn record_epoch(recorder: &mut Recorder, sink: &mut dyn EpochSink) {
    assert!(matches!(
        recorder.record_epoch(sink).unwrap(),
        Step::Recorded(_)
    ));
}

#[test]
fn trace_shows_exactly_the_known_writes_in_their_epochs() {
    let mut writer = Writer::start();
    let mut recorder = Recorder::attach(writer.pid(), RecordOptions::default()).unwrap();
    let mut sink = MemorySink::default();
    assert!(matches!(
        recorder.scan_initial(&mut sink).unwrap(),
        Step::Recorded(_)
    ));

    // Initial image: every page of the region, with its fill pattern.
    let numbers: Vec<PageNumber> = (0..writer.pages)
        .map(|i| {
            recorder
                .layout()
                .number_of(writer.page(i))
                .expect("region page numbered")
        })
        .collect();
    for (i, number) in numbers.iter().enumerate() {
        let content = &sink
            .initial
            .iter()
            .find(|(page, _)| page == number)
            .unwrap()
            .1;
        assert_eq!(content, &pattern(1 + i as u8), "initial page {i}");
    }

    // Epoch 1: two pages written.
    writer.command("write 3 50");
    writer.command("write 7 60");
    record_epoch(&mut recorder, &mut sink);
    assert_eq!(
        epoch_pages(&sink, 0, &numbers),
        [(numbers[3], pattern(50)), (numbers[7], pattern(60))]
    );

    // Epoch 2: page 3 rewritten with its own content (invisible to content diffing), page 7
    // written twice (only the last content is seen).
    writer.command("same 3");
    writer.command("write 7 70");
    writer.command("write 7 80");
    record_epoch(&mut recorder, &mut sink);
    assert_eq!(epoch_pages(&sink, 1, &numbers), [(numbers[7], pattern(80))]);

    // Epoch 3: no writes to the region.
    record_epoch(&mut recorder, &mut sink);
    assert_eq!(epoch_pages(&sink, 2, &numbers), []);

    // Epoch 4: a new mapping appears; its pages get new numbers and are recorded as written.
    let count_before = recorder.layout().page_count();
    let mapped = writer.command("map 64");
    let extra_first: u64 = mapped.split_whitespace().nth(1).unwrap().parse().unwrap();
    record_epoch(&mut recorder, &mut sink);
    let extra: Vec<PageNumber> = (0..64)
        .map(|i| {
            recorder
                .layout()
                .number_of(VirtualPage(extra_first + i))
                .expect("new region numbered")
        })
        .collect();
    assert!(extra.iter().all(|page| page.0 >= count_before));
    let recorded = epoch_pages(&sink, 3, &extra);
    assert_eq!(recorded.len(), 64);
    for (i, (page, content)) in recorded.iter().enumerate() {
        assert_eq!((*page, content), (extra[i], &pattern(100 + i as u8)));
    }

    // Epoch 5: the mapping disappears; its numbers are retired, nothing is written for them.
    writer.command("unmap");
    writer.command("write 0 90");
    record_epoch(&mut recorder, &mut sink);
    assert_eq!(epoch_pages(&sink, 4, &extra), []);
    assert_eq!(epoch_pages(&sink, 4, &numbers), [(numbers[0], pattern(90))]);
    assert!((0..64).all(|i| {
        recorder
            .layout()
            .number_of(VirtualPage(extra_first + i))
            .is_none()
    }));

    // Epoch 6: mapped again (often at the same address): a new region with new numbers.
    let mapped = writer.command("map 64");
    let again_first: u64 = mapped.split_whitespace().nth(1).unwrap().parse().unwrap();
    record_epoch(&mut recorder, &mut sink);
    let max_old = *extra.iter().max().unwrap();
    for i in 0..64 {
        let number = recorder
            .layout()
            .number_of(VirtualPage(again_first + i))
            .unwrap();
        assert!(
            number > max_old,
            "page {i} of the new region has the old number {number:?}"
        );
    }

    // The writer exits: the next epoch reports it and records nothing.
    writeln!(writer.stdin, "exit").unwrap();
    writer.child.wait().unwrap();
    let step = recorder.record_epoch(&mut sink).unwrap();
    assert!(
        matches!(step, Step::Stopped(StopReason::TargetExited(_))),
        "{step:?}"
    );
    assert_eq!(sink.epochs.len(), 6);
    assert_eq!(recorder.overhead().epochs, 6);
}

#[test]
fn frozen_scans_resume_the_target() {
    let mut writer = Writer::start();
    let options = RecordOptions {
        freeze: true,
        ..RecordOptions::default()
    };
    let mut recorder = Recorder::attach(writer.pid(), options).unwrap();
    let mut sink = MemorySink::default();
    recorder.scan_initial(&mut sink).unwrap();
    let number = recorder.layout().number_of(writer.page(5)).unwrap();
    // The writer answers after each frozen scan, so it was resumed.
    writer.command("write 5 33");
    record_epoch(&mut recorder, &mut sink);
    writer.command("write 5 44");
    record_epoch(&mut recorder, &mut sink);
    assert_eq!(epoch_pages(&sink, 0, &[number]), [(number, pattern(33))]);
    assert_eq!(epoch_pages(&sink, 1, &[number]), [(number, pattern(44))]);
    assert!(recorder.overhead().total_frozen_time > std::time::Duration::ZERO);
}

#[test]
fn the_memory_cap_stops_recording_with_its_reason() {
    let writer = Writer::start();
    let options = RecordOptions {
        max_memory: 8 * PAGE as u64,
        ..RecordOptions::default()
    };
    let mut recorder = Recorder::attach(writer.pid(), options).unwrap();
    let step = recorder.scan_initial(&mut MemorySink::default()).unwrap();
    assert_eq!(
        step,
        Step::Stopped(StopReason::MemoryCap {
            limit_bytes: 8 * PAGE as u64
        })
    );
}

#[test]
fn a_missing_pid_is_a_typed_error() {
    let pid = ProcessId(0x7fff_fff0);
    let error = Recorder::attach(pid, RecordOptions::default()).unwrap_err();
    assert!(
        matches!(error, RecorderError::NoSuchProcess { pid: p } if p == pid),
        "{error}"
    );
}

#[test]
fn a_missing_program_is_a_typed_error() {
    let command = ["/nonexistent/pagewire-no-such-program".into()];
    let error = Recorder::spawn(&command, RecordOptions::default()).unwrap_err();
    assert!(matches!(error, RecorderError::Spawn { .. }), "{error}");
}

#[test]
fn run_ends_cleanly_when_the_spawned_program_exits() {
    // The program waits for a file the test creates after the initial scan, then exits with a
    // known status.
    let go = std::env::temp_dir().join(format!("pagewire-recorder-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let script = r#"while [ ! -e "$1" ]; do sleep 0.005; done; exit 3"#;
    let command: Vec<std::ffi::OsString> = vec![
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        go.clone().into(),
    ];
    let options = RecordOptions {
        interval: std::time::Duration::from_millis(5),
        freeze: true,
        ..RecordOptions::default()
    };
    let mut recorder = Recorder::spawn(&command, options).unwrap();
    let mut sink = MemorySink::default();
    assert!(matches!(
        recorder.scan_initial(&mut sink).unwrap(),
        Step::Recorded(_)
    ));
    std::fs::write(&go, b"").unwrap();
    let reason = recorder
        .run(&mut sink, pagewire_bench::recorder::Limits::default())
        .unwrap();
    std::fs::remove_file(&go).unwrap();
    let StopReason::TargetExited(TargetExit::Child(status)) = reason else {
        panic!("unexpected stop: {reason}");
    };
    assert_eq!(status.code(), Some(3));
    assert_eq!(recorder.overhead().epochs as usize, sink.epochs.len());
}

#[test]
fn run_stops_at_the_epoch_limit() {
    let writer = Writer::start();
    let options = RecordOptions {
        interval: std::time::Duration::from_millis(1),
        ..RecordOptions::default()
    };
    let mut recorder = Recorder::attach(writer.pid(), options).unwrap();
    let mut sink = MemorySink::default();
    let limits = pagewire_bench::recorder::Limits {
        max_epochs: Some(3),
        duration: None,
    };
    assert_eq!(
        recorder.run(&mut sink, limits).unwrap(),
        StopReason::EpochLimit
    );
    assert_eq!(sink.epochs.len(), 3);
    assert!(sink.epochs.windows(2).all(|w| w[0].offset < w[1].offset));
}

/// Gives every recorded page both to memory (exact contents) and to a trace file (how the
/// trace writer classifies each write).
struct Tee<'a> {
    memory: &'a mut MemorySink,
    file: &'a mut TraceFileSink<std::io::BufWriter<std::fs::File>>,
}

impl EpochSink for Tee<'_> {
    fn initial_page(&mut self, page: PageNumber, content: &[u8]) -> std::io::Result<()> {
        self.memory.initial_page(page, content)?;
        self.file.initial_page(page, content)
    }

    fn epoch(&mut self, offset: std::time::Duration, pages: &EpochPages) -> std::io::Result<()> {
        self.memory.epoch(offset, pages)?;
        self.file.epoch(offset, pages)
    }
}

#[test]
fn exact_write_tracking_shows_exactly_the_writes_including_unchanged_rewrites() {
    if let Err(error) = uffd::probe() {
        println!("SKIPPED exact write tracking test: {error}");
        eprintln!("SKIPPED exact write tracking test: {error}");
        return;
    }
    let library = PreloadLibrary::install().unwrap();
    let mut writer = Writer::start_with_env(&[("LD_PRELOAD", library.ld_preload())]);
    let options = RecordOptions {
        tracker: TrackerChoice::Uffd,
        ..RecordOptions::default()
    };
    let mut recorder = Recorder::attach(writer.pid(), options).unwrap();
    assert!(recorder.tracks_writes());
    let path = std::env::temp_dir().join(format!(
        "pagewire-uffd-pattern-{}.trace",
        std::process::id()
    ));
    let header = TraceHeader::new(
        PageSize::new(PAGE as u32).unwrap(),
        ContentMode::Full,
        PageCount(0),
    );
    let mut file = TraceFileSink::new(TraceWriter::create(&path, header).unwrap());
    let mut memory = MemorySink::default();
    let mut sink = Tee {
        memory: &mut memory,
        file: &mut file,
    };
    assert!(matches!(
        recorder.scan_initial(&mut sink).unwrap(),
        Step::Recorded(_)
    ));
    let numbers: Vec<PageNumber> = (0..writer.pages)
        .map(|i| recorder.layout().number_of(writer.page(i)).unwrap())
        .collect();

    // Epoch 1: two pages written.
    writer.command("write 3 50");
    writer.command("write 7 60");
    record_epoch(&mut recorder, &mut sink);
    // Epoch 2: page 3 rewritten with its own content (seen by write tracking), page 7
    // written twice (one write in the epoch, with the last content).
    writer.command("same 3");
    writer.command("write 7 70");
    writer.command("write 7 80");
    record_epoch(&mut recorder, &mut sink);
    // Epoch 3: no writes to the region.
    record_epoch(&mut recorder, &mut sink);
    // Epoch 4: a new mapping; its pages are new and written.
    let mapped = writer.command("map 64");
    let extra_first: u64 = mapped.split_whitespace().nth(1).unwrap().parse().unwrap();
    record_epoch(&mut recorder, &mut sink);
    let extra: Vec<PageNumber> = (0..64)
        .map(|i| {
            recorder
                .layout()
                .number_of(VirtualPage(extra_first + i))
                .unwrap()
        })
        .collect();
    // Epoch 5: the mapping disappears, page 0 is written.
    writer.command("unmap");
    writer.command("write 0 90");
    record_epoch(&mut recorder, &mut sink);

    assert_eq!(
        epoch_pages(sink.memory, 0, &numbers),
        [(numbers[3], pattern(50)), (numbers[7], pattern(60))]
    );
    assert_eq!(
        epoch_pages(sink.memory, 1, &numbers),
        [(numbers[3], pattern(50)), (numbers[7], pattern(80))]
    );
    assert_eq!(epoch_pages(sink.memory, 2, &numbers), []);
    assert_eq!(epoch_pages(sink.memory, 3, &numbers), []);
    let recorded = epoch_pages(sink.memory, 3, &extra);
    let expected: Vec<_> = (0..64)
        .map(|i| (extra[i], pattern(100 + i as u8)))
        .collect();
    assert_eq!(recorded, expected);
    assert_eq!(
        epoch_pages(sink.memory, 4, &numbers),
        [(numbers[0], pattern(90))]
    );
    assert_eq!(epoch_pages(sink.memory, 4, &extra), []);

    writeln!(writer.stdin, "exit").unwrap();
    writer.child.wait().unwrap();
    let page_count = recorder.layout().page_count();
    file.finish(page_count).unwrap();

    // In the trace, the rewrite of page 3 is a write with unchanged content, page 7 changed.
    let mut reader = TraceReader::open(&path).unwrap();
    let mut epoch = Epoch::default();
    let mut kinds = Vec::new();
    while reader.next_epoch(&mut epoch).unwrap() {
        kinds.push(
            epoch
                .writes
                .iter()
                .filter(|write| numbers.contains(&write.page))
                .map(|write| (write.page, write.kind))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        kinds[0],
        [
            (numbers[3], WriteKind::Changed),
            (numbers[7], WriteKind::Changed)
        ]
    );
    assert_eq!(
        kinds[1],
        [
            (numbers[3], WriteKind::Unchanged),
            (numbers[7], WriteKind::Changed)
        ]
    );
    std::fs::remove_file(&path).unwrap();
}
