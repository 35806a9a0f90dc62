//! Where two versions of a page differ: a bit per byte, built a chunk at a time, and a search
//! for the next changed or unchanged byte with `trailing_zeros`.
//!
//! A chunk of [`CHUNK`] bytes becomes [`WORDS`] mask words; bit `i` of word `w` says whether
//! byte `64 * w + i` of the chunk differs. Building the masks is the hot loop (two loads and a
//! compare per byte); finding run boundaries then costs one `trailing_zeros` per boundary, and
//! an unchanged 64-byte block costs one test of a zero word.

/// Bytes of the page covered by one chunk of masks.
pub(crate) const CHUNK: usize = 4096;
/// Mask words per chunk (one bit per byte).
pub(crate) const WORDS: usize = CHUNK / 64;

/// The change masks of one chunk of a page pair, and a cursor over them.
pub(crate) struct ChangeMap<'a> {
    old: &'a [u8],
    new: &'a [u8],
    /// Offset in the page of the byte that bit 0 of `masks[0]` describes.
    chunk_start: usize,
    /// Whether `masks` describes the chunk at `chunk_start` (false before the first load).
    loaded: bool,
    masks: [u64; WORDS],
}

impl<'a> ChangeMap<'a> {
    /// A map of where `old` and `new` differ; they have the same length.
    pub(crate) fn new(old: &'a [u8], new: &'a [u8]) -> Self {
        debug_assert_eq!(old.len(), new.len());
        ChangeMap {
            old,
            new,
            chunk_start: 0,
            loaded: false,
            masks: [0; WORDS],
        }
    }

    /// The first offset at or after `from` whose byte is changed (`want_changed`) or unchanged
    /// (`!want_changed`), or the page length if there is none. Calls must not go backwards by
    /// more than the current chunk.
    #[inline]
    pub(crate) fn next(&mut self, from: usize, want_changed: bool) -> usize {
        let len = self.new.len();
        let flip = if want_changed { 0 } else { u64::MAX };
        let mut pos = from;
        while pos < len {
            if !self.loaded || pos >= self.chunk_start + CHUNK {
                self.load(pos - pos % CHUNK);
            }
            let rel = pos - self.chunk_start;
            let mut word = rel / 64;
            let mut bits = (self.masks[word] ^ flip) & (u64::MAX << (rel % 64));
            loop {
                if bits != 0 {
                    let found = self.chunk_start + word * 64 + bits.trailing_zeros() as usize;
                    return found.min(len);
                }
                word += 1;
                if word == WORDS {
                    break;
                }
                bits = self.masks[word] ^ flip;
            }
            pos = self.chunk_start + CHUNK;
        }
        len
    }

    /// Builds the masks of the chunk that starts at `start`. Bytes past the page end read as
    /// unchanged.
    fn load(&mut self, start: usize) {
        let end = (start + CHUNK).min(self.new.len());
        fill_masks(
            &self.old[start..end],
            &self.new[start..end],
            &mut self.masks,
        );
        self.chunk_start = start;
        self.loaded = true;
    }
}

/// Sets `masks` to the change bits of `old` against `new` (equal lengths, at most [`CHUNK`]
/// bytes); bits past their end are 0.
#[inline]
pub(crate) fn fill_masks(old: &[u8], new: &[u8], masks: &mut [u64; WORDS]) {
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
        fn next_finds_the_next_boundary(
            changed in proptest::collection::vec(any::<bool>(), 1..3 * CHUNK),
            from in any::<prop::sample::Index>(),
        ) {
            let old = vec![0u8; changed.len()];
            let new: Vec<u8> = changed.iter().map(|&c| u8::from(c)).collect();
            let from = from.index(changed.len());
            for want in [false, true] {
                let mut map = ChangeMap::new(&old, &new);
                let expect = (from..changed.len()).find(|&i| changed[i] == want).unwrap_or(changed.len());
                prop_assert_eq!(map.next(from, want), expect);
            }
        }
    }
}
