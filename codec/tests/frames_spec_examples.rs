//! The worked hex examples of `spec/wire.md` §12 are the bytes this implementation writes and
//! reads: each block is parsed out of the spec, compared with the encoding of the frame its
//! name stands for, and decoded back to that frame.

use bytes::Bytes;
use pagewire_codec::frame::{
    Abort, AbortReason, BitmapFrame, BitmapKind, Features, Frame, Hello, Iteration, Limits,
    MigrationId, PageBatch, Role, StreamHeader,
};
use pagewire_codec::{
    ContentHash, EncodingSet, PageBitmap, PageCount, PageNumber, PageRecord, PageSize, RecordBody,
};

const SPEC: &str = include_str!("../../spec/wire.md");

fn limits() -> Limits {
    Limits::default().with_memory(PageSize::KIB_4, PageCount(64), EncodingSet::all_known())
}

/// Every `<!-- example: NAME -->` followed by a ```hex block.
fn examples() -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut rest = SPEC;
    while let Some(start) = rest.find("<!-- example: ") {
        rest = &rest[start + "<!-- example: ".len()..];
        let name = rest[..rest.find(" -->").expect("example marker closes")].to_string();
        let block = &rest[rest.find("```hex\n").expect("hex block follows") + 7..];
        let block = &block[..block.find("```").expect("hex block closes")];
        found.push((name, parse_hex(block)));
    }
    found
}

fn parse_hex(block: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in block.lines() {
        let line = line.split('#').next().unwrap_or("");
        for token in line.split_whitespace() {
            let (byte, count) = match token.split_once('*') {
                Some((byte, count)) => (byte, count.parse::<usize>().expect("repeat count")),
                None => (token, 1),
            };
            let byte =
                u8::from_str_radix(byte, 16).unwrap_or_else(|_| panic!("bad hex token {token:?}"));
            bytes.extend(std::iter::repeat_n(byte, count));
        }
    }
    bytes
}

fn expected_frame(name: &str) -> Frame {
    match name {
        "hello" => {
            let mut hello = Hello::new(
                Role::Source,
                MigrationId([0x11; 16]),
                PageSize::KIB_4,
                PageCount(64),
            );
            hello.features = Features::all_known();
            hello.vm_name = "vm-1".into();
            Frame::Hello(hello)
        }
        "page-batch" => {
            let page = vec![0x5a; 4096];
            Frame::PageBatch(PageBatch {
                iteration: Iteration(2),
                records: vec![
                    PageRecord {
                        page: PageNumber(0),
                        body: RecordBody::ZeroRun { count: 16 },
                    },
                    PageRecord {
                        page: PageNumber(16),
                        body: RecordBody::Raw(Bytes::from(page.clone())),
                    },
                    PageRecord {
                        page: PageNumber(20),
                        body: RecordBody::Xbzrle(Bytes::from_static(&[0x00, 0x01, 0xaa])),
                    },
                    PageRecord {
                        page: PageNumber(21),
                        body: RecordBody::Dedup {
                            source: PageNumber(16),
                            hash: ContentHash::of(&page),
                        },
                    },
                ],
            })
        }
        "bitmap-runs" => {
            let mut pages = PageBitmap::new(PageCount(64));
            pages.insert_range(PageNumber(8), 4);
            pages.insert_range(PageNumber(40), 24);
            Frame::Bitmap(BitmapFrame {
                kind: BitmapKind::Dirty,
                pages,
            })
        }
        "bitmap-raw" => {
            let mut pages = PageBitmap::new(PageCount(64));
            (0..64).step_by(3).for_each(|p| {
                pages.insert(PageNumber(p));
            });
            Frame::Bitmap(BitmapFrame {
                kind: BitmapKind::Deferred,
                pages,
            })
        }
        "abort" => Frame::Abort(Abort {
            reason: AbortReason::DigestMismatch,
            message: "ranges 3 and 7 differ".into(),
        }),
        other => panic!("spec example {other:?} has no expected frame in this test"),
    }
}

#[test]
fn spec_examples_match_the_encoder_and_decoder() {
    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stream-header",
            "hello",
            "page-batch",
            "bitmap-runs",
            "bitmap-raw",
            "abort"
        ]
    );
    for (name, bytes) in examples {
        if name == "stream-header" {
            let mut expected = Vec::new();
            StreamHeader::current().encode(&mut expected);
            assert_eq!(bytes, expected, "{name}");
            assert_eq!(
                StreamHeader::decode(&mut Bytes::from(bytes)),
                Ok(StreamHeader::current())
            );
            continue;
        }
        let frame = expected_frame(&name);
        let mut encoded = Vec::new();
        frame.encode(&mut encoded, &limits()).unwrap();
        assert_eq!(
            hex(&bytes),
            hex(&encoded),
            "spec example {name} differs from the encoder"
        );
        let mut input = Bytes::from(bytes);
        assert_eq!(
            Frame::decode(&mut input, &limits()),
            Ok(Some(frame)),
            "{name}"
        );
        assert!(input.is_empty());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
