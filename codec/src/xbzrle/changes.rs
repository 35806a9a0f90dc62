//! Where two versions of a page differ: a bit per byte, built a chunk at a time, and the
//! changed runs read off those bits.
//!
//! A chunk of [`CHUNK`] bytes becomes [`WORDS`] mask words; bit `i` of word `w` says whether
//! byte `64 * w + i` of the chunk differs. Building the masks is the hot loop for sparse
//! changes (two loads and a compare per byte, vectorised). The runs come from the bits where
//! the changed state flips (`mask ^ (mask << 1)`, carrying the top bit from word to word): each
//! flip costs one `trailing_zeros` and one clear-lowest-bit, so finely scattered changes cost a
//! few instructions per run boundary and an unchanged 64-byte block costs one test of a zero
//! word, with no branch that depends on where in a word the runs fall.

/// Bytes of the page covered by one chunk of masks.
pub(crate) const CHUNK: usize = 4096;
/// Mask words per chunk (one bit per byte).
pub(crate) const WORDS: usize = CHUNK / 64;

/// What [`for_each_changed_run`] hands the runs to.
pub(crate) trait RunVisitor {
    /// Why the visitor stopped.
    type Error;

    /// Takes the next changed run `start..end`. It is called from two places (inside the
    /// loop, and for a run that reaches the end of the data): mark it `#[inline(always)]` so
    /// both copies are inlined and the per-run work stays in registers.
    fn run(&mut self, start: usize, end: usize) -> Result<(), Self::Error>;
}

/// Calls `visitor.run(start, end)` for each maximal run `start..end` of bytes that differ
/// between `old` and `new` (equal lengths), in order, and stops at the first error it returns.
///
/// With `join_single_gaps`, an unchanged byte between two changed bytes counts as changed
/// (except the last byte of each [`CHUNK`]), so the runs it separated come as one.
///
/// Only the mask words that can hold a run boundary are visited: those with a changed byte and
/// the word after each. So the work after the masks are built is proportional to the changes,
/// not to the page; on a page with a few changes, the next page's loads start while this
/// page's runs are still being written.
#[inline(always)]
pub(crate) fn for_each_changed_run<V: RunVisitor>(
    old: &[u8],
    new: &[u8],
    join_single_gaps: bool,
    visitor: &mut V,
) -> Result<(), V::Error> {
    debug_assert_eq!(old.len(), new.len());
    let len = old.len().min(new.len());
    // Word 0 stands for the word before the chunk: its top bit says whether the byte before
    // the chunk changed. Words 1..=WORDS hold the chunk's masks; the last word stays 0.
    let mut masks = [0u64; WORDS + 2];
    let mut in_run = false;
    let mut run_start = 0;
    let mut chunk_start = 0;
    while chunk_start < len {
        let chunk_end = (chunk_start + CHUNK).min(len);
        let changed = fill_masks(
            &old[chunk_start..chunk_end],
            &new[chunk_start..chunk_end],
            &mut masks[1..=WORDS],
        );
        if join_single_gaps {
            join_single_gaps_in(&mut masks, changed);
        }
        // A word holds a flip only if it or the word before it has a changed byte.
        let mut words = changed | changed << 1 | masks[0] >> 63;
        while words != 0 {
            let w = words.trailing_zeros() as usize;
            words &= words - 1;
            let mask = masks[w + 1];
            // Bit i set where byte i's changed state differs from the byte before it. Bits
            // past the data are 0, so a run ending inside the last word ends there.
            let mut flips = mask ^ (mask << 1 | masks[w] >> 63);
            let base = chunk_start + 64 * w;
            // The flips alternate start, end, start, ...; a run open from an earlier word
            // makes the first one an end. One turn per run.
            while flips != 0 {
                let mut at = base + flips.trailing_zeros() as usize;
                flips &= flips - 1;
                if !in_run {
                    run_start = at;
                    if flips == 0 {
                        in_run = true;
                        break;
                    }
                    at = base + flips.trailing_zeros() as usize;
                    flips &= flips - 1;
                }
                in_run = false;
                visitor.run(run_start, at)?;
            }
        }
        masks[0] = masks[WORDS];
        chunk_start = chunk_end;
    }
    // A run that reaches the end of the data on a word boundary has no flip to end it.
    if in_run {
        visitor.run(run_start, len)?;
    }
    Ok(())
}

/// Sets each unchanged bit between two changed bits of `masks` (a chunk's words at 1..=WORDS
/// after the previous chunk's last word; the word after them 0), in the `changed` words: the
/// only ones where such a bit can lie.
#[inline(always)]
fn join_single_gaps_in(masks: &mut [u64; WORDS + 2], changed: u64) {
    let mut words = changed;
    while words != 0 {
        let w = words.trailing_zeros() as usize + 1;
        words &= words - 1;
        let mask = masks[w];
        // Whether the byte before / after each byte changed. The word before may already be
        // joined: that only sets its top bit when this word's first byte changed, where
        // nothing is joined anyway.
        let before = mask << 1 | masks[w - 1] >> 63;
        let after = mask >> 1 | masks[w + 1] << 63;
        masks[w] = mask | (before & after);
    }
}

/// Sets `masks` ([`WORDS`] words) to the change bits of `old` against `new` (equal lengths, at
/// most [`CHUNK`] bytes), with bits past their end 0, and returns which words are non-zero
/// (bit `w` for word `w`).
#[inline]
pub(crate) fn fill_masks(old: &[u8], new: &[u8], masks: &mut [u64]) -> u64 {
    super::simd::fill_masks(old, new, masks)
}

/// The safe, portable mask builder: eight bytes at a time with a SWAR "byte is non-zero" test.
/// `masks` needs a word per 64 bytes (rounded up, at most 64 words); words past the data are
/// set to 0. Returns which words are non-zero (bit `w` for word `w`).
pub(crate) fn fill_masks_portable(old: &[u8], new: &[u8], masks: &mut [u64]) -> u64 {
    debug_assert!(masks.len() <= 64);
    let mut old_blocks = old.chunks_exact(64);
    let mut new_blocks = new.chunks_exact(64);
    let mut changed = 0;
    for (w, ((o, n), mask)) in (&mut old_blocks)
        .zip(&mut new_blocks)
        .zip(masks.iter_mut())
        .enumerate()
    {
        *mask = block_mask(o, n);
        changed |= u64::from(*mask != 0) << w;
    }
    let blocks = old.len() / 64;
    let mut words = masks.iter_mut().skip(blocks);
    let (o, n) = (old_blocks.remainder(), new_blocks.remainder());
    if !o.is_empty()
        && let Some(mask) = words.next()
    {
        *mask = o
            .iter()
            .zip(n)
            .enumerate()
            .fold(0, |m, (i, (a, b))| m | (u64::from(a != b) << i));
        changed |= u64::from(*mask != 0) << blocks;
    }
    words.for_each(|mask| *mask = 0);
    changed
}

/// The change bits of one 64-byte block.
#[inline]
fn block_mask(old: &[u8], new: &[u8]) -> u64 {
    let xor = |k: usize| word_at(old, k) ^ word_at(new, k);
    let x = [
        xor(0),
        xor(1),
        xor(2),
        xor(3),
        xor(4),
        xor(5),
        xor(6),
        xor(7),
    ];
    if x.iter().fold(0, |a, w| a | w) == 0 {
        return 0;
    }
    x.iter()
        .enumerate()
        .fold(0, |m, (k, &w)| m | (nonzero_bytes(w) << (8 * k)))
}

#[inline]
fn word_at(block: &[u8], k: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&block[8 * k..8 * k + 8]);
    u64::from_le_bytes(bytes)
}

/// Bit `i` of the result is set when byte `i` of `x` (little-endian) is non-zero.
#[inline]
fn nonzero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each byte: set when the byte is non-zero (no carry crosses bytes).
    let high = (((x & LOW7) + LOW7) | x) & !LOW7;
    // Gather bit 8i+7 into bit 56+i (the products never overlap, so no carries).
    (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_masks(old: &[u8], new: &[u8]) -> [u64; WORDS] {
        let mut m = [0u64; WORDS];
        for (i, (a, b)) in old.iter().zip(new).enumerate() {
            m[i / 64] |= u64::from(a != b) << (i % 64);
        }
        m
    }

    /// The runs, in the order they were visited.
    struct Collect(Vec<(usize, usize)>);

    impl RunVisitor for Collect {
        type Error = ();

        fn run(&mut self, start: usize, end: usize) -> Result<(), ()> {
            self.0.push((start, end));
            Ok(())
        }
    }

    /// Bit `w` set for each non-zero word of `masks`.
    pub(crate) fn changed_words(masks: &[u64]) -> u64 {
        masks
            .iter()
            .enumerate()
            .fold(0, |c, (w, &m)| c | u64::from(m != 0) << w)
    }

    #[test]
    fn nonzero_bytes_matches_bytewise_for_each_byte_value_and_place() {
        for place in 0..8 {
            for v in 0..=255u64 {
                let x = v << (8 * place);
                let expect = u64::from(v != 0) << place;
                assert_eq!(nonzero_bytes(x), expect, "value {v:#x} at byte {place}");
                assert_eq!(nonzero_bytes(x | 1), expect | 1);
            }
        }
    }

    proptest! {
        #[test]
        fn masks_match_the_bytewise_compare(
            old in proptest::collection::vec(any::<u8>(), 0..=CHUNK),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..64),
        ) {
            let mut new = old.clone();
            for (at, x) in flips {
                if !new.is_empty() {
                    let i = at.index(new.len());
                    new[i] ^= x;
                }
            }
            let expect = naive_masks(&old, &new);
            let mut masks = [u64::MAX; WORDS];
            let changed = fill_masks_portable(&old, &new, &mut masks);
            prop_assert_eq!(masks, expect);
            prop_assert_eq!(changed, changed_words(&expect));
            let changed = fill_masks(&old, &new, &mut masks);
            prop_assert_eq!(masks, expect);
            prop_assert_eq!(changed, changed_words(&expect));
        }

        #[test]
        fn runs_are_the_maximal_changed_runs(
            changed in proptest::collection::vec(any::<bool>(), 0..3 * CHUNK),
        ) {
            let old = vec![0u8; changed.len()];
            let new: Vec<u8> = changed.iter().map(|&c| u8::from(c)).collect();
            let mut expect = Vec::new();
            let mut at = 0;
            while let Some(start) = (at..changed.len()).find(|&i| changed[i]) {
                let end = (start..changed.len()).find(|&i| !changed[i]).unwrap_or(changed.len());
                expect.push((start, end));
                at = end;
            }
            let mut got = Collect(Vec::new());
            for_each_changed_run(&old, &new, false, &mut got).unwrap();
            prop_assert_eq!(got.0, expect);
        }
    }
}
