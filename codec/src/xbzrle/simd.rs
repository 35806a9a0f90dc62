//! Change masks with explicit SIMD on x86-64, chosen at run time: AVX-512BW (one 64-byte
//! compare straight into a mask register per 64 bytes) or AVX2 (two 32-byte compares and
//! `movemask`); other CPUs and architectures use the portable builder.
//!
//! This is the crate's only `unsafe` code: unaligned vector loads from slices whose length is
//! checked by `chunks_exact`, and calls of `#[target_feature]` functions after the CPU
//! feature was detected. Tests check each path against the portable builder.

use super::changes::fill_masks_portable;

/// Sets `masks` to the change bits of `old` against `new` (equal lengths, at most 64 bytes
/// per mask word), with bits past their end 0; the fastest builder the CPU supports.
#[inline]
pub(crate) fn fill_masks(old: &[u8], new: &[u8], masks: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports AVX-512F and BW (BW implies F), detected just above.
            unsafe { x86::fill_masks_avx512(old, new, masks) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, detected just above.
            unsafe { x86::fill_masks_avx2(old, new, masks) };
            return;
        }
    }
    fill_masks_portable(old, new, masks);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm512_cmpneq_epi8_mask,
        _mm512_loadu_si512,
    };

    use super::fill_masks_portable;

    /// [`super::fill_masks`] with one AVX-512BW compare per 64-byte block.
    #[target_feature(enable = "avx512bw")]
    pub(super) unsafe fn fill_masks_avx512(old: &[u8], new: &[u8], masks: &mut [u64]) {
        let blocks = (old.len().min(new.len()) / 64).min(masks.len());
        for ((o, n), mask) in old
            .chunks_exact(64)
            .zip(new.chunks_exact(64))
            .zip(&mut *masks)
        {
            // SAFETY: `o` and `n` are 64 bytes long: one unaligned 512-bit load each; the
            // compare needs AVX-512BW, which this function's callers have detected.
            *mask = unsafe {
                _mm512_cmpneq_epi8_mask(
                    _mm512_loadu_si512(o.as_ptr().cast()),
                    _mm512_loadu_si512(n.as_ptr().cast()),
                )
            };
        }
        fill_masks_portable(
            &old[64 * blocks..],
            &new[64 * blocks..],
            &mut masks[blocks..],
        );
    }

    /// [`super::fill_masks`] with two AVX2 compares per 64-byte block.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill_masks_avx2(old: &[u8], new: &[u8], masks: &mut [u64]) {
        let blocks = (old.len().min(new.len()) / 64).min(masks.len());
        for ((o, n), mask) in old
            .chunks_exact(64)
            .zip(new.chunks_exact(64))
            .zip(&mut *masks)
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
        }
        fill_masks_portable(
            &old[64 * blocks..],
            &new[64 * blocks..],
            &mut masks[blocks..],
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::xbzrle::changes::WORDS;

    fn portable(old: &[u8], new: &[u8]) -> [u64; WORDS] {
        let mut m = [u64::MAX; WORDS];
        fill_masks_portable(old, new, &mut m);
        m
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
            let mut got = [u64::MAX; WORDS];
            fill_masks(old, new, &mut got);
            prop_assert_eq!(got, expect);
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut got = [u64::MAX; WORDS];
                    // SAFETY: AVX2 detected just above.
                    unsafe { x86::fill_masks_avx2(old, new, &mut got) };
                    prop_assert_eq!(got, expect);
                }
                if std::arch::is_x86_feature_detected!("avx512bw") {
                    let mut got = [u64::MAX; WORDS];
                    // SAFETY: AVX-512BW detected just above.
                    unsafe { x86::fill_masks_avx512(old, new, &mut got) };
                    prop_assert_eq!(got, expect);
                }
            }
        }
    }
}
