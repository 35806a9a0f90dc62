//! Damaged traces are rejected with the error that names the damage: truncation at many
//! lengths, and flipped bytes in the header, a block header, a block payload, the footer
//! and the trailer.

use std::io::Cursor;
use std::time::Duration;

use pagewire_bench::trace::content::{ContentMix, ContentModel};
use pagewire_bench::trace::format::{FOOTER_LEN, HEADER_PREFIX_LEN, TRAILER_LEN};
use pagewire_bench::trace::generators::{GenConfig, HotCold, HotColdShape, generate};
use pagewire_bench::trace::{
    ChecksummedPart, ContentMode, Corruption, Epoch, ReaderOptions, TraceHeader, TraceReadError,
    TraceReader, TraceWriter,
};
use pagewire_codec::{PageCount, PageSize};

fn small_trace() -> (Vec<u8>, u64) {
    let config = GenConfig {
        page_size: PageSize::KIB_4,
        page_count: PageCount(64),
        interval: Duration::from_millis(100),
        epochs: 10,
        content: ContentMode::Full,
        model: ContentModel::new(1, ContentMix::default(), 64),
        identical_share: 0.4,
        seed: 1,
    };
    let header = TraceHeader::new(config.page_size, config.content, config.page_count)
        .with_metadata("generator", "hot-cold");
    let header_len = header.clone();
    let mut writer = TraceWriter::new(Vec::new(), header).unwrap();
    let mut pattern = HotCold::new(config.page_count, 20, HotColdShape::Zipf { exponent: 1.0 });
    generate(&config, &mut pattern, &mut writer, &mut |_| {}).unwrap();
    let (bytes, _) = writer.finish().unwrap();
    let (probe, _) = TraceWriter::new(Vec::new(), header_len)
        .unwrap()
        .finish()
        .unwrap();
    // An empty trace is header + footer + trailer: the header is the rest.
    let header_bytes = (probe.len() - FOOTER_LEN - TRAILER_LEN) as u64;
    (bytes, header_bytes)
}

fn read_all(bytes: Vec<u8>) -> Result<u64, TraceReadError> {
    let mut reader = TraceReader::from_reader(Cursor::new(bytes), ReaderOptions::default())?;
    let mut epoch = Epoch::default();
    let mut epochs = 0;
    while reader.next_epoch(&mut epoch)? {
        epochs += 1;
    }
    Ok(epochs)
}

#[test]
fn intact_trace_reads_completely() {
    let (bytes, _) = small_trace();
    assert_eq!(read_all(bytes).unwrap(), 10);
}

#[test]
fn truncated_traces_are_reported_as_truncated() {
    let (bytes, header_len) = small_trace();
    let len = bytes.len();
    for cut in [
        0,
        3,
        8,
        HEADER_PREFIX_LEN - 1,
        HEADER_PREFIX_LEN + 2,
        header_len as usize - 1,
        header_len as usize,
        header_len as usize + 30,
        len / 2,
        len - FOOTER_LEN - TRAILER_LEN,
        len - TRAILER_LEN,
        len - 1,
    ] {
        match read_all(bytes[..cut].to_vec()) {
            Err(TraceReadError::Truncated { file_len, .. }) => assert_eq!(file_len, cut as u64),
            other => panic!("cut at {cut} of {len}: {other:?}"),
        }
    }
}

#[test]
fn flipped_bytes_are_caught_where_they_are() {
    let (bytes, header_len) = small_trace();
    let len = bytes.len();
    let block = header_len as usize;
    let footer = len - FOOTER_LEN - TRAILER_LEN;
    let flip = |at: usize| {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        read_all(damaged)
    };
    assert!(matches!(flip(0), Err(TraceReadError::NotATrace)));
    assert!(matches!(
        flip(8),
        Err(TraceReadError::UnsupportedVersion { found: 0x41, .. })
    ));
    for at in [
        12,
        HEADER_PREFIX_LEN,
        HEADER_PREFIX_LEN + 5,
        block - 9,
        block - 1,
    ] {
        assert!(
            matches!(
                flip(at),
                Err(TraceReadError::ChecksumMismatch {
                    part: ChecksummedPart::Header,
                    offset: 0
                })
            ),
            "header byte {at}: {:?}",
            flip(at)
        );
    }
    // Block header: kind and checksum bytes fail the checksum; lengths fail range checks or
    // the checksum, depending on the value they take.
    for at in [
        block,
        block + 2,
        block + 16,
        block + 23,
        block + 30,
        block + 200,
        footer - 1,
    ] {
        assert!(
            matches!(
                flip(at),
                Err(TraceReadError::ChecksumMismatch {
                    part: ChecksummedPart::Block,
                    ..
                })
            ),
            "block byte {at}: {:?}",
            flip(at)
        );
    }
    for at in [block + 4, block + 9] {
        assert!(
            matches!(
                flip(at),
                Err(TraceReadError::ChecksumMismatch {
                    part: ChecksummedPart::Block,
                    ..
                } | TraceReadError::Corrupt {
                    problem: Corruption::BlockLength { .. } | Corruption::BlockOverrunsFooter,
                    ..
                })
            ),
            "block length byte {at}: {:?}",
            flip(at)
        );
    }
    for at in [footer, footer + 8, footer + 50, footer + FOOTER_LEN - 1] {
        assert!(
            matches!(
                flip(at),
                Err(TraceReadError::ChecksumMismatch {
                    part: ChecksummedPart::Footer,
                    ..
                })
            ),
            "footer byte {at}: {:?}",
            flip(at)
        );
    }
    assert!(matches!(
        flip(len - TRAILER_LEN),
        Err(TraceReadError::Corrupt {
            problem: Corruption::BadFooterOffset(_),
            ..
        })
    ));
    assert!(matches!(
        flip(len - 1),
        Err(TraceReadError::Truncated { .. })
    ));
}

#[test]
fn appended_garbage_is_not_taken_for_a_trace_end() {
    let (mut bytes, _) = small_trace();
    bytes.extend_from_slice(&[0u8; 40]);
    assert!(matches!(
        read_all(bytes),
        Err(TraceReadError::Truncated { .. })
    ));
}

#[test]
fn other_files_are_not_traces() {
    assert!(matches!(
        read_all(b"#!/bin/sh\necho hello\n".to_vec()),
        Err(TraceReadError::NotATrace)
    ));
}
