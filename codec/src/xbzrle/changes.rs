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

/// Calls `visit(start, end)` for each maximal run `start..end` of bytes that differ between
/// `old` and `new` (equal lengths), in order, and stops at the first error `visit` returns.
///
/// `visit` has a single call site, so it is inlined into the loop: the encoder's whole
/// per-run work stays in registers.
#[inline(always)]
pub(crate) fn for_each_changed_run<E>(
    old: &[u8],
    new: &[u8],
    mut visit: impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    debug_assert_eq!(old.len(), new.len());
    let len = old.len().min(new.len());
    // One word more than a chunk needs, never written: an unchanged word past the data.
    let mut masks = [0u64; WORDS + 1];
    // Bit 0 set when the byte before the current mask word was changed.
    let mut carry = 0u64;
    let mut in_run = false;
    let mut run_start = 0;
    let mut chunk_start = 0;
    while chunk_start < len {
        let chunk_end = (chunk_start + CHUNK).min(len);
        fill_masks(
            &old[chunk_start..chunk_end],
            &new[chunk_start..chunk_end],
            &mut masks[..WORDS],
        );
        let words = (chunk_end - chunk_start).div_ceil(64);
        // After the last chunk, the always-zero extra word closes a run that reaches the end
        // of the data on a word boundary.
        let words = words + usize::from(chunk_end == len);
        for (w, &mask) in masks[..words].iter().enumerate() {
            // Bit i set where byte i's changed state differs from the byte before it. Bits
            // past the data are 0, so the only flip there is the end of a run at `len`.
            let mut flips = mask ^ (mask << 1 | carry);
            carry = mask >> 63;
            let base = chunk_start + 64 * w;
            while flips != 0 {
                let at = base + flips.trailing_zeros() as usize;
                flips &= flips - 1;
                if in_run {
                    visit(run_start, at)?;
                } else {
                    run_start = at;
                }
                in_run = !in_run;
            }
        }
        chunk_start = chunk_end;
    }
    Ok(())
}

/// Sets `masks` ([`WORDS`] words) to the change bits of `old` against `new` (equal lengths, at
/// most [`CHUNK`] bytes); bits past their end are 0.
#[inline]
pub(crate) fn fill_masks(old: &[u8], new: &[u8], masks: &mut [u64]) {
    super::simd::fill_masks(old, new, masks);
}

/// The safe, portable mask builder: eight bytes at a time with a SWAR "byte is non-zero" test.
/// `masks` needs a word per 64 bytes (rounded up); words past the data are set to 0.
pub(crate) fn fill_masks_portable(old: &[u8], new: &[u8], masks: &mut [u64]) {
    let mut old_blocks = old.chunks_exact(64);
    let mut new_blocks = new.chunks_exact(64);
    let mut words = masks.iter_mut();
    for ((o, n), mask) in (&mut old_blocks).zip(&mut new_blocks).zip(&mut words) {
        *mask = block_mask(o, n);
    }
    let (o, n) = (old_blocks.remainder(), new_blocks.remainder());
    if o.is_empty() {
        words.for_each(|mask| *mask = 0);
        return;
    }
    if let Some(mask) = words.next() {
        *mask = o
            .iter()
            .zip(n)
            .enumerate()
            .fold(0, |m, (i, (a, b))| m | (u64::from(a != b) << i));
    }
    words.for_each(|mask| *mask = 0);
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_masks(old: &[u8], new: &[u8]) -> [u64; WORDS] {
        let mut m = [0u64; WORDS];
        for (i, (a, b)) in old.iter().zip(new).enumerate() {
            m[i / 64] |= u64::from(a != b) << (i % 64);
        }
        m
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
            let mut masks = [u64::MAX; WORDS];
            fill_masks_portable(&old, &new, &mut masks);
            prop_assert_eq!(masks, naive_masks(&old, &new));
            fill_masks(&old, &new, &mut masks);
            prop_assert_eq!(masks, naive_masks(&old, &new));
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
            let mut got = Vec::new();
            for_each_changed_run(&old, &new, |start, end| {
                got.push((start, end));
                Ok::<(), ()>(())
            })
            .unwrap();
            prop_assert_eq!(got, expect);
        }
    }
}
