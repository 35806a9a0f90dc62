//! The trace format's page delta: the XOR of a page's previous and new versions, stored
//! sparsely as runs of (`skip: varint`, `len: varint`, `len` XOR bytes).
//!
//! `skip` counts unchanged bytes since the end of the previous run (or the page start), `len`
//! is at least 1, and unchanged bytes after the last run are not written. Gaps of up to
//! [`MERGE_GAP`] unchanged bytes inside a change are absorbed into the run (their XOR bytes
//! are zero), because a new run header would cost at least as much.

use super::bytes::{Cursor, put_varint};

/// Longest gap of unchanged bytes merged into the surrounding run.
pub const MERGE_GAP: usize = 2;

/// Appends the delta from `old` to `new` (equal lengths) to `out`, unless it would exceed
/// `limit` bytes; returns whether it was written (on `false`, `out` is unchanged).
/// Identical pages give an empty delta.
pub(crate) fn encode(old: &[u8], new: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
    debug_assert_eq!(old.len(), new.len());
    let len = old.len().min(new.len());
    let start_len = out.len();
    let mut run_end = 0;
    let mut i = next_difference(old, new, 0);
    while i < len {
        let mut j = i + 1;
        loop {
            while j < len && old[j] != new[j] {
                j += 1;
            }
            let next = next_difference(old, new, j);
            if next < len && next - j <= MERGE_GAP {
                j = next;
            } else {
                break;
            }
        }
        put_varint(out, (i - run_end) as u64);
        put_varint(out, (j - i) as u64);
        out.extend(old[i..j].iter().zip(&new[i..j]).map(|(a, b)| a ^ b));
        if out.len() - start_len > limit {
            out.truncate(start_len);
            return false;
        }
        run_end = j;
        i = next_difference(old, new, j);
    }
    true
}

/// The first index at or after `from` where `old` and `new` differ, or their length.
fn next_difference(old: &[u8], new: &[u8], from: usize) -> usize {
    let len = old.len().min(new.len());
    let mut i = from;
    while i + 32 <= len && old[i..i + 32] == new[i..i + 32] {
        i += 32;
    }
    while i < len && old[i] == new[i] {
        i += 1;
    }
    i
}

/// A delta that does not describe a change of its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadDelta;

/// Applies `delta` to `page` in place (XOR of each run). Rejects empty deltas, empty runs,
/// runs past the page end and malformed varints; `page` may be partly changed on error.
pub(crate) fn apply(delta: &[u8], page: &mut [u8]) -> Result<(), BadDelta> {
    if delta.is_empty() {
        return Err(BadDelta);
    }
    let mut cursor = Cursor::new(delta);
    let mut pos = 0usize;
    while !cursor.is_empty() {
        let skip = cursor.varint().map_err(|_| BadDelta)?;
        let run = cursor.varint().map_err(|_| BadDelta)?;
        if run == 0 {
            return Err(BadDelta);
        }
        let start = usize::try_from(skip)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .ok_or(BadDelta)?;
        let end = usize::try_from(run)
            .ok()
            .and_then(|r| start.checked_add(r))
            .filter(|&e| e <= page.len())
            .ok_or(BadDelta)?;
        let bytes = cursor.take(end - start).map_err(|_| BadDelta)?;
        for (target, x) in page[start..end].iter_mut().zip(bytes) {
            *target ^= x;
        }
        pos = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn delta_of_a_few_changed_bytes_is_small_and_applies() {
        let old = vec![7u8; 4096];
        let mut new = old.clone();
        new[10] = 1;
        new[12] = 2; // merged with the run at 10 (gap of 1)
        new[4000] = 3;
        let mut delta = Vec::new();
        assert!(encode(&old, &new, &mut delta, 4096));
        assert!(delta.len() < 16, "{} bytes", delta.len());
        let mut page = old.clone();
        apply(&delta, &mut page).unwrap();
        assert_eq!(page, new);
    }

    #[test]
    fn delta_gives_up_past_its_limit_and_leaves_output_alone() {
        let old = vec![0u8; 4096];
        let new = vec![0xffu8; 4096];
        let mut out = vec![9];
        assert!(!encode(&old, &new, &mut out, 4095));
        assert_eq!(out, [9]);
    }

    #[test]
    fn apply_rejects_malformed_deltas() {
        let mut page = vec![0u8; 64];
        assert_eq!(apply(&[], &mut page), Err(BadDelta));
        assert_eq!(apply(&[0, 0], &mut page), Err(BadDelta), "empty run");
        assert_eq!(
            apply(&[60, 5, 1, 2, 3, 4, 5], &mut page),
            Err(BadDelta),
            "past end"
        );
        assert_eq!(apply(&[0, 3, 1], &mut page), Err(BadDelta), "short payload");
    }

    proptest! {
        #[test]
        fn delta_round_trips(old in proptest::collection::vec(any::<u8>(), 64),
                             edits in proptest::collection::vec((0usize..64, any::<u8>()), 0..20)) {
            let mut new = old.clone();
            for (at, value) in edits {
                new[at] = value;
            }
            let mut delta = Vec::new();
            prop_assert!(encode(&old, &new, &mut delta, usize::MAX));
            let mut page = old.clone();
            if old == new {
                prop_assert!(delta.is_empty());
            } else {
                apply(&delta, &mut page).unwrap();
                prop_assert_eq!(page, new);
            }
        }

        #[test]
        fn apply_never_panics(delta in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut page = vec![0u8; 32];
            let _ = apply(&delta, &mut page);
        }
    }
}
