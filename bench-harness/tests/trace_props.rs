//! Property tests: random small traces round-trip exactly, and arbitrary damage to a trace
//! never panics the reader.

use std::io::Cursor;
use std::time::Duration;

use pagewire_bench::trace::{
    ContentMode, Epoch, ReaderOptions, TraceHeader, TraceReader, TraceWriter, WriteKind,
};
use pagewire_codec::{PageCount, PageNumber, PageSize};
use proptest::prelude::*;

const PAGE: usize = 4096;

/// How a write derives its content from the page's previous content.
#[derive(Clone, Debug)]
enum Change {
    Same,
    Zero,
    Edit(Vec<(u16, u8)>),
    Fill(u8),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Same),
        Just(Change::Zero),
        proptest::collection::vec((0u16..PAGE as u16, any::<u8>()), 1..12).prop_map(Change::Edit),
        any::<u8>().prop_map(Change::Fill),
    ]
}

fn apply(change: &Change, page: &mut [u8]) {
    match change {
        Change::Same => {}
        Change::Zero => page.fill(0),
        Change::Edit(edits) => edits.iter().for_each(|&(at, v)| page[at as usize] = v),
        Change::Fill(v) => page
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = v.wrapping_add(i as u8)),
    }
}

type Epochs = Vec<(u64, Vec<(u64, Change)>)>;

fn trace_input() -> impl Strategy<Value = (u64, Vec<(u64, u8)>, Epochs)> {
    (1u64..12).prop_flat_map(|pages| {
        (
            Just(pages),
            proptest::collection::vec((0..pages, any::<u8>()), 0..4),
            proptest::collection::vec(
                (
                    0u64..1_000_000,
                    proptest::collection::vec((0..pages, change()), 0..8),
                ),
                0..6,
            ),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_traces_round_trip((pages, initial, epochs) in trace_input(), cache_pages in 0u64..3) {
        let header = TraceHeader::new(PageSize::KIB_4, ContentMode::Full, PageCount(pages));
        let options = pagewire_bench::trace::WriterOptions {
            delta_cache_bytes: cache_pages * PAGE as u64,
            ..Default::default()
        };
        let mut writer = TraceWriter::with_options(Vec::new(), header, options).unwrap();
        let mut image = vec![vec![0u8; PAGE]; pages as usize];
        let mut given = std::collections::HashSet::new();
        for (page, fill) in &initial {
            if given.insert(*page) {
                image[*page as usize].fill(*fill);
                writer.write_initial_page(PageNumber(*page), &image[*page as usize]).unwrap();
            }
        }
        let initial_image = image.clone();
        let mut expected = Vec::new();
        let mut time = 0;
        for (step, writes) in &epochs {
            time += step;
            writer.begin_epoch(Duration::from_micros(time)).unwrap();
            let mut seen = std::collections::HashSet::new();
            let mut kinds = Vec::new();
            for (page, change) in writes {
                if !seen.insert(*page) {
                    continue;
                }
                let mut new = image[*page as usize].clone();
                apply(change, &mut new);
                let kind = if new == image[*page as usize] { WriteKind::Unchanged } else { WriteKind::Changed };
                writer.write_page(PageNumber(*page), &new).unwrap();
                image[*page as usize] = new;
                kinds.push((PageNumber(*page), kind, image[*page as usize].clone()));
            }
            writer.end_epoch().unwrap();
            expected.push((Duration::from_micros(time), kinds));
        }
        let (bytes, _) = writer.finish().unwrap();

        let mut reader = TraceReader::from_reader(Cursor::new(bytes), ReaderOptions::default()).unwrap();
        reader.load_initial_image().unwrap();
        for (n, page) in initial_image.iter().enumerate() {
            prop_assert_eq!(reader.page(PageNumber(n as u64)).unwrap(), &page[..]);
        }
        let mut epoch = Epoch::default();
        for (time, kinds) in &expected {
            prop_assert!(reader.next_epoch(&mut epoch).unwrap());
            prop_assert_eq!(epoch.time, *time);
            prop_assert_eq!(epoch.writes.len(), kinds.len());
            for (write, (page, kind, content)) in epoch.writes.iter().zip(kinds) {
                prop_assert_eq!(write.page, *page);
                prop_assert_eq!(write.kind, *kind);
                prop_assert_eq!(reader.page(*page).unwrap(), &content[..]);
            }
        }
        prop_assert!(!reader.next_epoch(&mut epoch).unwrap());
    }

    #[test]
    fn damaged_traces_are_rejected_without_panic(at in any::<prop::sample::Index>(), value in 1u8..,
                                                 cut in any::<prop::sample::Index>()) {
        let header = TraceHeader::new(PageSize::KIB_4, ContentMode::Full, PageCount(4));
        let mut writer = TraceWriter::new(Vec::new(), header).unwrap();
        writer.write_initial_page(PageNumber(1), &[3u8; PAGE]).unwrap();
        writer.begin_epoch(Duration::from_millis(1)).unwrap();
        writer.write_page(PageNumber(1), &[4u8; PAGE]).unwrap();
        writer.write_page(PageNumber(2), &[0u8; PAGE]).unwrap();
        writer.end_epoch().unwrap();
        let (mut bytes, _) = writer.finish().unwrap();
        let at = at.index(bytes.len());
        bytes[at] ^= value;
        let keep = bytes.len() - cut.index(bytes.len() / 4);
        bytes.truncate(keep);
        let result = TraceReader::from_reader(Cursor::new(bytes), ReaderOptions::default()).and_then(|mut reader| {
            let mut epoch = Epoch::default();
            while reader.next_epoch(&mut epoch)? {}
            Ok(())
        });
        prop_assert!(result.is_err());
    }
}
