//! QEMU's XBZRLE vectors (`conformance/vectors/xbzrle/`) in both directions, and the known
//! cases from QEMU's unit test and documentation.

use std::path::PathBuf;

use pagewire_codec::xbzrle::{self, XbzrleDecodeError, XbzrleGaveUp, XbzrleMode};

const PAGE: usize = 4096;
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

struct Pair {
    old: Vec<u8>,
    new: Vec<u8>,
    /// QEMU's output, `None` when it gave up.
    qemu: Option<Vec<u8>>,
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/xbzrle")
}

fn load(set: &str) -> Vec<Pair> {
    let pairs = std::fs::read(vectors_dir().join(format!("{set}.pairs"))).unwrap();
    let qemu = std::fs::read(vectors_dir().join(format!("{set}.qemu"))).unwrap();
    assert_eq!(pairs.len(), 64 * 2 * PAGE, "{set}.pairs");
    let mut outputs = qemu.as_slice();
    let loaded: Vec<Pair> = pairs
        .chunks_exact(2 * PAGE)
        .map(|pair| {
            let (len, rest) = outputs.split_at(4);
            let len = i32::from_le_bytes(len.try_into().unwrap());
            let qemu = match len {
                -1 => {
                    outputs = rest;
                    None
                }
                n => {
                    let (bytes, rest) = rest.split_at(usize::try_from(n).unwrap());
                    outputs = rest;
                    Some(bytes.to_vec())
                }
            };
            Pair {
                old: pair[..PAGE].to_vec(),
                new: pair[PAGE..].to_vec(),
                qemu,
            }
        })
        .collect();
    assert!(outputs.is_empty(), "{set}.qemu has trailing bytes");
    loaded
}

fn encoded(old: &[u8], new: &[u8], mode: XbzrleMode) -> Result<Vec<u8>, XbzrleGaveUp> {
    let mut out = vec![0u8; PAGE];
    let n = xbzrle::encode(old, new, &mut out, mode)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn qemu_mode_writes_qemus_bytes_for_every_pair() {
    for set in SETS {
        for (i, pair) in load(set).iter().enumerate() {
            let ours = encoded(&pair.old, &pair.new, XbzrleMode::Qemu).ok();
            assert_eq!(ours, pair.qemu, "{set} pair {i}");
        }
    }
}

#[test]
fn decoding_qemus_output_gives_the_new_page() {
    for set in SETS {
        for (i, pair) in load(set).iter().enumerate() {
            if let Some(delta) = &pair.qemu {
                let mut page = pair.old.clone();
                xbzrle::decode(delta, &mut page).unwrap_or_else(|e| panic!("{set} {i}: {e}"));
                assert!(page == pair.new, "{set} pair {i}");
            }
        }
    }
}

#[test]
fn compact_mode_is_never_larger_gives_up_less_and_decodes() {
    for set in SETS {
        for (i, pair) in load(set).iter().enumerate() {
            let compact = encoded(&pair.old, &pair.new, XbzrleMode::Compact);
            match (&pair.qemu, &compact) {
                (Some(qemu), Ok(ours)) => assert!(ours.len() <= qemu.len(), "{set} pair {i}"),
                (Some(_), Err(_)) => panic!("{set} pair {i}: compact gave up where QEMU did not"),
                (None, _) => {}
            }
            if let Ok(delta) = compact {
                let mut page = pair.old.clone();
                xbzrle::decode(&delta, &mut page).unwrap_or_else(|e| panic!("{set} {i}: {e}"));
                assert!(page == pair.new, "{set} pair {i}");
            }
        }
    }
}

#[test]
fn the_vectors_cover_give_ups_identical_pages_and_savings() {
    let (mut gave_up, mut identical, mut saved) = (0, 0, 0);
    for set in SETS {
        for pair in load(set) {
            match &pair.qemu {
                None => gave_up += 1,
                Some(q) if q.is_empty() => identical += 1,
                Some(q) => {
                    let compact = encoded(&pair.old, &pair.new, XbzrleMode::Compact).unwrap();
                    saved += q.len() - compact.len();
                }
            }
        }
    }
    assert!(
        gave_up > 0 && identical > 0 && saved > 0,
        "{gave_up} {identical} {saved}"
    );
}

fn zero_page() -> Vec<u8> {
    vec![0u8; PAGE]
}

fn both_modes(old: &[u8], new: &[u8]) -> [Result<Vec<u8>, XbzrleGaveUp>; 2] {
    [
        encoded(old, new, XbzrleMode::Qemu),
        encoded(old, new, XbzrleMode::Compact),
    ]
}

#[test]
fn known_case_last_byte_changed() {
    let mut new = zero_page();
    new[4095] = 1;
    for r in both_modes(&zero_page(), &new) {
        assert_eq!(r.unwrap(), [0xff, 0x1f, 0x01, 0x01]);
    }
}

#[test]
fn known_case_every_even_byte_changed_gives_up() {
    let mut new = zero_page();
    for i in (0..=4092).step_by(2) {
        new[i] = 1;
    }
    assert_eq!(
        encoded(&zero_page(), &new, XbzrleMode::Qemu),
        Err(XbzrleGaveUp)
    );
    // Compact absorbs each 1-byte gap: 4093 changed bytes in one run, 4096 bytes in all.
    let compact = encoded(&zero_page(), &new, XbzrleMode::Compact).unwrap();
    assert_eq!(&compact[..3], &[0x00, 0xfd, 0x1f]);
    assert_eq!(compact.len(), PAGE);
    let mut page = zero_page();
    xbzrle::decode(&compact, &mut page).unwrap();
    assert_eq!(page, new);
}

#[test]
fn known_case_first_byte_changed() {
    let mut new = zero_page();
    new[0] = 0xaa;
    for r in both_modes(&zero_page(), &new) {
        assert_eq!(r.unwrap(), [0x00, 0x01, 0xaa]);
    }
}

#[test]
fn known_case_every_byte_differs_gives_up() {
    let new = vec![0x11u8; PAGE];
    for r in both_modes(&zero_page(), &new) {
        assert_eq!(r, Err(XbzrleGaveUp));
    }
}

#[test]
fn known_case_three_unchanged_then_4093_changed_fills_the_limit_exactly() {
    let mut new = vec![0x11u8; PAGE];
    new[..3].fill(0);
    for r in both_modes(&zero_page(), &new) {
        let delta = r.unwrap();
        assert_eq!(delta.len(), PAGE);
        assert_eq!(&delta[..3], &[0x03, 0xfd, 0x1f]);
    }
}

#[test]
fn known_case_documentation_example() {
    let mut old = zero_page();
    let mut new = zero_page();
    old[1001..1022].copy_from_slice(&[
        5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0x68, 0, 0, 0x6b, 0, 0x6d,
    ]);
    new[1001..1022].copy_from_slice(&[
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x68, 0, 0, 0x67, 0, 0x69,
    ]);
    let expect = [
        0xe9, 0x07, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x03, 0x01, 0x67,
        0x01, 0x01, 0x69,
    ];
    assert_eq!(encoded(&old, &new, XbzrleMode::Qemu).unwrap(), expect);
    // Compact absorbs the 1-byte gap between 0x67 and 0x69: one byte shorter.
    let compact = encoded(&old, &new, XbzrleMode::Compact).unwrap();
    assert_eq!(&compact[18..], &[0x03, 0x03, 0x67, 0x00, 0x69]);
    let mut page = old.clone();
    xbzrle::decode(&compact, &mut page).unwrap();
    assert_eq!(page, new);
}

fn uleb_len(n: usize) -> usize {
    if n < 0x80 { 1 } else { 2 }
}

#[test]
fn known_case_growing_run_before_two_single_changes() {
    for k in 0..3089usize {
        let mut old = zero_page();
        let mut new = zero_page();
        for i in 1..=k {
            new[1000 + i] = i as u8;
            old[1000 + i] = (i + 4) as u8;
        }
        new[1003 + k] = 103;
        old[1003 + k] = 107;
        new[1005 + k] = 105;
        old[1005 + k] = 109;
        // Bytes whose low 8 bits wrap to equal values stay unchanged: count them as QEMU does.
        let delta = encoded(&old, &new, XbzrleMode::Qemu).unwrap();
        if k == 0 {
            assert_eq!(delta, [0xeb, 0x07, 0x01, 0x67, 0x01, 0x01, 0x69]);
        } else {
            assert_eq!(delta.len(), k + uleb_len(k) + 8, "k = {k}");
        }
        if k == 1 {
            assert_eq!(
                delta,
                [0xe9, 0x07, 0x01, 0x01, 0x02, 0x01, 0x67, 0x01, 0x01, 0x69]
            );
        }
        let mut page = old.clone();
        xbzrle::decode(&delta, &mut page).unwrap();
        assert_eq!(page, new);
        let compact = encoded(&old, &new, XbzrleMode::Compact).unwrap();
        assert!(
            compact.len() < delta.len(),
            "k = {k}: {} vs {}",
            compact.len(),
            delta.len()
        );
    }
}

#[test]
fn known_case_uleb_lengths() {
    // A change right after an unchanged run of n bytes starts with n as ULEB128.
    for (n, bytes) in [
        (127usize, &[0x7f][..]),
        (128, &[0x80, 0x01]),
        (1001, &[0xe9, 0x07]),
        (4095, &[0xff, 0x1f]),
    ] {
        let mut new = zero_page();
        new[n] = 1;
        let delta = encoded(&zero_page(), &new, XbzrleMode::Qemu).unwrap();
        assert_eq!(&delta[..bytes.len()], bytes, "n = {n}");
    }
    // 4096 needs a larger page.
    let old = vec![0u8; 8192];
    let mut new = old.clone();
    new[4096] = 1;
    let mut out = [0u8; 16];
    let n = xbzrle::encode(&old, &new, &mut out, XbzrleMode::Qemu).unwrap();
    assert_eq!(&out[..n], &[0x80, 0x20, 0x01, 0x01]);
}

#[test]
fn decoder_rejects_the_readme_cases() {
    use XbzrleDecodeError::*;
    let cases: [(&[u8], XbzrleDecodeError); 6] = [
        (&[0x00, 0x00], EmptyChangedRun { offset: 1 }),
        (
            &[0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb],
            EmptyUnchangedRun { offset: 3 },
        ),
        (&[0x05], TruncatedLength { offset: 1 }),
        (&[0xff, 0x1f, 0x02, 0xaa, 0xbb], PastPageEnd { offset: 2 }),
        (&[0x80, 0x20, 0x01, 0xaa], PastPageEnd { offset: 2 }),
        (
            &[0x03, 0x01],
            TruncatedData {
                offset: 2,
                needed: 1,
                available: 0,
            },
        ),
    ];
    for (delta, expect) in cases {
        let mut page = vec![0x5au8; PAGE];
        assert_eq!(
            xbzrle::decode(delta, &mut page),
            Err(expect),
            "{delta:02x?}"
        );
        assert!(page.iter().all(|&b| b == 0x5a), "page changed on error");
    }
}

#[test]
fn decoder_rejects_a_second_length_byte_with_the_high_bit() {
    let mut page = zero_page();
    assert_eq!(
        xbzrle::decode(&[0x81, 0x80, 0x01, 0xaa], &mut page),
        Err(XbzrleDecodeError::LengthTooLong { offset: 0 })
    );
}

#[test]
fn qemu_mode_gives_up_with_only_an_unchanged_tail_left_and_compact_does_not() {
    let mut new = zero_page();
    new[0] = 1;
    // `00 01 01` is 3 bytes; with a limit of 4 QEMU wants 2 spare bytes for the tail.
    let mut out = [0u8; 4];
    assert_eq!(
        xbzrle::encode(&zero_page(), &new, &mut out, XbzrleMode::Qemu),
        Err(XbzrleGaveUp)
    );
    assert_eq!(
        xbzrle::encode(&zero_page(), &new, &mut out, XbzrleMode::Compact),
        Ok(3)
    );
    let mut out = [0u8; 5];
    assert_eq!(
        xbzrle::encode(&zero_page(), &new, &mut out, XbzrleMode::Qemu),
        Ok(3)
    );
}

#[test]
fn identical_pages_and_mismatched_lengths() {
    let page = zero_page();
    let mut out = [0u8; 1];
    assert_eq!(
        xbzrle::encode(&page, &page, &mut out, XbzrleMode::Compact),
        Ok(0)
    );
    assert_eq!(
        xbzrle::encode(&page, &page, &mut out, XbzrleMode::Qemu),
        Err(XbzrleGaveUp)
    );
    assert_eq!(
        xbzrle::encode(&page, &page[1..], &mut [0u8; 64], XbzrleMode::Compact),
        Err(XbzrleGaveUp)
    );
}
