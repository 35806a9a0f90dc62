//! Property tests: round trips over structured page changes in both modes and several page
//! sizes, a bytewise model of QEMU's encoder and decoder, and hostile deltas.

use proptest::prelude::*;

use super::{MAX_RUN, XbzrleGaveUp, XbzrleMode, decode, encode};

/// A change applied to a copy of the old page.
#[derive(Debug, Clone)]
enum Edit {
    /// One aligned 8-byte word rewritten.
    Word { at: prop::sample::Index, seed: u64 },
    /// A run of bytes rewritten.
    Run {
        at: prop::sample::Index,
        len: usize,
        seed: u64,
    },
    /// Single bytes changed at random places.
    Scatter { count: usize, seed: u64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u64>()).prop_map(|(at, seed)| Edit::Word { at, seed }),
        (any::<prop::sample::Index>(), 1usize..600, any::<u64>())
            .prop_map(|(at, len, seed)| Edit::Run { at, len, seed }),
        (1usize..400, any::<u64>()).prop_map(|(count, seed)| Edit::Scatter { count, seed }),
    ]
}

/// xorshift64*: cheap deterministic bytes, so failing cases shrink to seeds, not to pages.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len).map(|_| next(&mut s) as u8).collect()
}

fn apply(page: &mut [u8], edits: &[Edit]) {
    let len = page.len();
    for e in edits {
        match e {
            Edit::Word { at, seed } => {
                let start = at.index(len / 8) * 8;
                page[start..start + 8].copy_from_slice(&seed.to_le_bytes());
            }
            Edit::Run { at, len: run, seed } => {
                let start = at.index(len);
                let end = (start + run).min(len);
                page[start..end].copy_from_slice(&bytes(end - start, *seed));
            }
            Edit::Scatter { count, seed } => {
                let mut s = *seed | 1;
                for _ in 0..*count {
                    let i = next(&mut s) as usize % len;
                    page[i] = page[i].wrapping_add(1 + (next(&mut s) % 255) as u8);
                }
            }
        }
    }
}

fn page_pair(size: usize, zero_old: bool, seed: u64, edits: &[Edit]) -> (Vec<u8>, Vec<u8>) {
    let old = if zero_old {
        vec![0; size]
    } else {
        bytes(size, seed)
    };
    let mut new = old.clone();
    apply(&mut new, edits);
    (old, new)
}

fn uleb(out: &mut Vec<u8>, n: usize) {
    assert!(n <= MAX_RUN);
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.extend([(n as u8 & 0x7f) | 0x80, (n >> 7) as u8]);
    }
}

/// QEMU's encoder as the format notes describe it, one byte at a time (pages up to 16 KiB).
fn model_encode(old: &[u8], new: &[u8], limit: usize) -> Option<Vec<u8>> {
    let (len, mut out, mut i) = (new.len(), Vec::new(), 0);
    while i < len {
        if out.len() + 2 > limit {
            return None;
        }
        let zstart = i;
        while i < len && old[i] == new[i] {
            i += 1;
        }
        if i - zstart == len {
            return Some(out);
        }
        if i == len {
            return Some(out);
        }
        uleb(&mut out, i - zstart);
        if out.len() + 2 > limit {
            return None;
        }
        let start = i;
        while i < len && old[i] != new[i] {
            i += 1;
        }
        uleb(&mut out, i - start);
        if out.len() + (i - start) > limit {
            return None;
        }
        out.extend_from_slice(&new[start..i]);
    }
    Some(out)
}

/// QEMU's decoder as the format notes describe it: the new page, or `None` if it rejects.
fn model_decode(delta: &[u8], page: &[u8]) -> Option<Vec<u8>> {
    let mut page = page.to_vec();
    let (mut i, mut d) = (0usize, 0usize);
    let read = |at: usize| -> Option<(usize, usize)> {
        let b0 = usize::from(delta[at]);
        if b0 & 0x80 == 0 {
            return Some((b0, 1));
        }
        let b1 = usize::from(delta[at + 1]);
        (b1 & 0x80 == 0).then_some(((b0 & 0x7f) | b1 << 7, 2))
    };
    while i < delta.len() {
        if delta.len() - i < 2 {
            return None;
        }
        let (zrun, k) = read(i)?;
        if i != 0 && zrun == 0 {
            return None;
        }
        i += k;
        d += zrun;
        if d > page.len() || delta.len() - i < 2 {
            return None;
        }
        let (nzrun, k) = read(i)?;
        if nzrun == 0 {
            return None;
        }
        i += k;
        if d + nzrun > page.len() || i + nzrun > delta.len() {
            return None;
        }
        page[d..d + nzrun].copy_from_slice(&delta[i..i + nzrun]);
        d += nzrun;
        i += nzrun;
    }
    Some(page)
}

fn encoded(
    old: &[u8],
    new: &[u8],
    limit: usize,
    mode: XbzrleMode,
) -> Result<Vec<u8>, XbzrleGaveUp> {
    let mut out = vec![0u8; limit];
    let n = encode(old, new, &mut out, mode)?;
    out.truncate(n);
    Ok(out)
}

fn check_round_trip(old: &[u8], new: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let qemu = encoded(old, new, limit, XbzrleMode::Qemu);
    let compact = encoded(old, new, limit, XbzrleMode::Compact);
    for delta in [&qemu, &compact].into_iter().flatten() {
        let mut page = old.to_vec();
        prop_assert_eq!(decode(delta, &mut page), Ok(()));
        prop_assert!(page == new, "decoded page differs");
        prop_assert!(delta.len() <= limit);
    }
    if let Ok(q) = &qemu {
        let c = compact
            .as_ref()
            .map_err(|_| TestCaseError::fail("compact gave up"))?;
        prop_assert!(c.len() <= q.len(), "compact {} > qemu {}", c.len(), q.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trips_4k_pages_and_matches_the_qemu_model(
        zero_old in any::<bool>(),
        seed in any::<u64>(),
        edits in proptest::collection::vec(edit(), 0..12),
        limit in prop_oneof![Just(4096usize), 0usize..4200],
    ) {
        let (old, new) = page_pair(4096, zero_old, seed, &edits);
        check_round_trip(&old, &new, limit)?;
        let ours = encoded(&old, &new, limit, XbzrleMode::Qemu).ok();
        prop_assert_eq!(ours, model_encode(&old, &new, limit));
    }

    #[test]
    fn round_trips_16k_and_64k_pages(
        big in any::<bool>(),
        zero_old in any::<bool>(),
        seed in any::<u64>(),
        edits in proptest::collection::vec(edit(), 0..12),
    ) {
        let size = if big { 65536 } else { 16384 };
        let (old, new) = page_pair(size, zero_old, seed, &edits);
        check_round_trip(&old, &new, size)?;
        if !big {
            let ours = encoded(&old, &new, size, XbzrleMode::Qemu).ok();
            prop_assert_eq!(ours, model_encode(&old, &new, size));
        }
    }

    #[test]
    fn decoder_agrees_with_the_qemu_model_on_arbitrary_bytes(
        delta in proptest::collection::vec(any::<u8>(), 0..64),
        page_len in 0usize..300,
    ) {
        let page = bytes(page_len, 7);
        let mut ours = page.clone();
        let result = decode(&delta, &mut ours);
        match model_decode(&delta, &page) {
            Some(expect) => {
                prop_assert_eq!(result, Ok(()));
                prop_assert_eq!(ours, expect);
            }
            None => {
                prop_assert!(result.is_err());
                prop_assert_eq!(ours, page);
            }
        }
    }

    #[test]
    fn decoder_agrees_with_the_qemu_model_on_mutated_deltas(
        seed in any::<u64>(),
        edits in proptest::collection::vec(edit(), 1..6),
        mutations in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
    ) {
        let (old, new) = page_pair(4096, false, seed, &edits);
        let Ok(mut delta) = encoded(&old, &new, 4096, XbzrleMode::Compact) else {
            return Ok(());
        };
        for (at, kind, byte) in mutations {
            let i = at.index(delta.len() + 1);
            match kind {
                0 if i < delta.len() => delta[i] = byte,
                1 => delta.insert(i, byte),
                _ if i < delta.len() => { delta.remove(i); }
                _ => delta.push(byte),
            }
        }
        let mut ours = old.clone();
        let result = decode(&delta, &mut ours);
        match model_decode(&delta, &old) {
            Some(expect) => {
                prop_assert_eq!(result, Ok(()));
                prop_assert!(ours == expect);
            }
            None => {
                prop_assert!(result.is_err());
                prop_assert!(ours == old);
            }
        }
    }
}

#[test]
fn round_trips_a_2mib_page_with_long_unchanged_runs() {
    let size = 2 << 20;
    for zero_old in [true, false] {
        let (old, mut new) = page_pair(
            size,
            zero_old,
            9,
            &[Edit::Scatter {
                count: 300,
                seed: 3,
            }],
        );
        new[0..8].copy_from_slice(&1u64.to_le_bytes());
        new[size / 3..size / 3 + 500].copy_from_slice(&bytes(500, 2));
        new[size - 1] ^= 1;
        let qemu = encoded(&old, &new, size, XbzrleMode::Qemu).unwrap();
        let compact = encoded(&old, &new, size, XbzrleMode::Compact).unwrap();
        assert!(compact.len() <= qemu.len());
        for delta in [qemu, compact] {
            let mut page = old.clone();
            decode(&delta, &mut page).unwrap();
            assert!(page == new);
        }
    }
}

#[test]
fn splits_unchanged_runs_longer_than_the_longest_length() {
    let old = vec![0u8; 65536];
    let mut new = old.clone();
    new[40000] = 1;
    for mode in [XbzrleMode::Qemu, XbzrleMode::Compact] {
        let delta = encoded(&old, &new, 100, mode).unwrap();
        // 0x3fff unchanged, byte 0x3fff rewritten, 0x3fff unchanged, byte 0x7fff rewritten,
        // then 40000 - 0x8000 unchanged and the changed byte.
        let rest = 40000 - 0x8000;
        let mut expect = vec![0xff, 0x7f, 0x01, 0x00, 0xff, 0x7f, 0x01, 0x00];
        expect.extend([(rest as u8 & 0x7f) | 0x80, (rest >> 7) as u8, 0x01, 0x01]);
        assert_eq!(delta, expect, "{mode:?}");
    }
    // An unchanged run of exactly 0x4000 bytes leaves one unchanged byte after the rewrite.
    let mut new = old.clone();
    new[0x4000] = 1;
    let delta = encoded(&old, &new, 100, XbzrleMode::Qemu).unwrap();
    assert_eq!(delta, [0xfe, 0x7f, 0x01, 0x00, 0x01, 0x01, 0x01]);
}

#[test]
fn gives_up_on_a_changed_run_longer_than_the_longest_length() {
    let old = vec![0u8; 65536];
    let mut new = old.clone();
    new[100..100 + MAX_RUN].fill(1);
    assert!(encoded(&old, &new, 65536, XbzrleMode::Compact).is_ok());
    new[100 + MAX_RUN] = 1;
    for mode in [XbzrleMode::Qemu, XbzrleMode::Compact] {
        assert_eq!(encoded(&old, &new, 65536, mode), Err(XbzrleGaveUp));
    }
}

#[test]
fn cuts_joined_runs_longer_than_the_longest_length_at_their_gaps() {
    let old = vec![0u8; 65536];
    // 20000 changed bytes, each 1-byte gap absorbed by Compact: one run of 39999 bytes.
    let mut new = old.clone();
    for i in (100..40100).step_by(2) {
        new[i] = 1;
    }
    // A changed run of exactly MAX_RUN bytes one gap after a changed byte: the cut must fall
    // on that gap.
    let mut edge = old.clone();
    edge[100] = 1;
    edge[102..102 + MAX_RUN].fill(1);
    for new in [new, edge] {
        let qemu = encoded(&old, &new, 65536, XbzrleMode::Qemu).unwrap();
        let compact = encoded(&old, &new, 65536, XbzrleMode::Compact).unwrap();
        assert!(
            compact.len() <= qemu.len(),
            "{} > {}",
            compact.len(),
            qemu.len()
        );
        for delta in [qemu, compact] {
            let mut page = old.clone();
            decode(&delta, &mut page).unwrap();
            assert!(page == new);
        }
    }
}
