//! Change masks with explicit SIMD on x86-64, chosen at run time: AVX-512BW (one 64-byte
//! compare straight into a mask register per 64 bytes) or AVX2 (two 32-byte compares and
//! `movemask`); other CPUs and architectures use the portable builder.
//!
//! This is the crate's only `unsafe` code: unaligned vector loads from slices whose length is
//! checked by `chunks_exact`, and calls of `#[target_feature]` functions after the CPU
//! feature was detected. Tests check each path against the portable builder.

use super::changes::fill_masks_portable;

/// Sets `masks` (at most 64 words) to the change bits of `old` against `new` (equal lengths,
/// at most 64 bytes per mask word), with bits past their end 0, and returns which words are
/// non-zero (bit `w` for word `w`); the fastest builder the CPU supports.
#[inline]
pub(crate) fn fill_masks(old: &[u8], new: &[u8], masks: &mut [u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports AVX-512F and BW (BW implies F), detected just above.
            return unsafe { x86::fill_masks_avx512(old, new, masks) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, detected just above.
            return unsafe { x86::fill_masks_avx2(old, new, masks) };
        }
    }
    fill_masks_portable(old, new, masks)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm512_cmpneq_epi8_mask,
        _mm512_loadu_si512,
    };

    use super::fill_masks_portable;

    /// Bytes compared per step of the AVX-512 loop: eight blocks, one byte of the result.
    const GROUP: usize = 8 * 64;

    /// [`super::fill_masks`] with one AVX-512BW compare per 64-byte block.
    #[target_feature(enable = "avx512bw")]
    pub(super) unsafe fn fill_masks_avx512(old: &[u8], new: &[u8], masks: &mut [u64]) -> u64 {
        let groups = (old.len().min(new.len()) / GROUP).min(masks.len() / 8);
        let mut changed = 0;
        for (g, ((o, n), masks)) in old
            .chunks_exact(GROUP)
            .zip(new.chunks_exact(GROUP))
            .zip(masks.chunks_exact_mut(8))
            .take(groups)
            .enumerate()
        {
            let mut bits = 0;
            for (j, mask) in masks.iter_mut().enumerate() {
                // SAFETY: `o` and `n` are GROUP = 8 × 64 bytes long and j < 8: one
                // unaligned 512-bit load each from inside them; the compare needs AVX-512BW,
                // which this function's callers have detected.
                *mask = unsafe {
                    _mm512_cmpneq_epi8_mask(
                        _mm512_loadu_si512(o.as_ptr().add(64 * j).cast()),
                        _mm512_loadu_si512(n.as_ptr().add(64 * j).cast()),
                    )
                };
                bits |= u64::from(*mask != 0) << j;
            }
            changed |= bits << (8 * g);
        }
        changed | tail(old, new, masks, 8 * groups)
    }

    /// [`super::fill_masks`] with two AVX2 compares per 64-byte block.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill_masks_avx2(old: &[u8], new: &[u8], masks: &mut [u64]) -> u64 {
        let blocks = (old.len().min(new.len()) / 64).min(masks.len());
        let mut changed = 0;
        for (w, ((o, n), mask)) in old
            .chunks_exact(64)
            .zip(new.chunks_exact(64))
            .zip(&mut *masks)
            .enumerate()
        {
            // SAFETY: `o` and `n` are 64 bytes long: two unaligned 256-bit loads each; the
            // compares need AVX2, which this function's callers have detected.
            let (low, high) = unsafe {
                let a0 = _mm256_loadu_si256(o.as_ptr().cast());
                let a1 = _mm256_loadu_si256(o.as_ptr().add(32).cast());
                let b0 = _mm256_loadu_si256(n.as_ptr().cast());
                let b1 = _mm256_loadu_si256(n.as_ptr().add(32).cast());
                (
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0)) as u32,
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1)) as u32,
                )
            };
            *mask = !(u64::from(low) | u64::from(high) << 32);
            changed |= u64::from(*mask != 0) << w;
        }
        changed | tail(old, new, masks, blocks)
    }

    /// The masks after the first `blocks` whole blocks (a partial block, and zero words),
    /// with their non-zero words shifted into place.
    fn tail(old: &[u8], new: &[u8], masks: &mut [u64], blocks: usize) -> u64 {
        let rest = fill_masks_portable(
            &old[64 * blocks..],
            &new[64 * blocks..],
            &mut masks[blocks..],
        );
        rest.checked_shl(blocks as u32).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::xbzrle::changes::WORDS;
    use crate::xbzrle::changes::tests::changed_words;

    fn portable(old: &[u8], new: &[u8]) -> ([u64; WORDS], u64) {
        let mut m = [u64::MAX; WORDS];
        let changed = fill_masks_portable(old, new, &mut m);
        (m, changed)
    }

    proptest! {
        #[test]
        fn simd_masks_match_the_portable_builder(
            old in proptest::collection::vec(any::<u8>(), 0..=4096),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..200),
            start in 0usize..8,
        ) {
            let mut new = old.clone();
            for (at, x) in flips {
                if !new.is_empty() {
                    let i = at.index(new.len());
                    new[i] ^= x;
                }
            }
            // Unaligned slices too.
            let (old, new) = (&old[start.min(old.len())..], &new[start.min(new.len())..]);
            let expect = portable(old, new);
            prop_assert_eq!(expect.1, changed_words(&expect.0));
            let mut got = [u64::MAX; WORDS];
            let changed = fill_masks(old, new, &mut got);
            prop_assert_eq!((got, changed), expect);
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut got = [u64::MAX; WORDS];
                    // SAFETY: AVX2 detected just above.
                    let changed = unsafe { x86::fill_masks_avx2(old, new, &mut got) };
                    prop_assert_eq!((got, changed), expect);
                }
                if std::arch::is_x86_feature_detected!("avx512bw") {
                    let mut got = [u64::MAX; WORDS];
                    // SAFETY: AVX-512BW detected just above.
                    let changed = unsafe { x86::fill_masks_avx512(old, new, &mut got) };
                    prop_assert_eq!((got, changed), expect);
                }
            }
        }
    }
}
