//! Zero-page detection at memory speed (an OR-fold over 64-bit words, which vectorises).

/// Whether every byte of `page` is zero.
pub(crate) fn is_zero(page: &[u8]) -> bool {
    let mut words = page.chunks_exact(64);
    let all_words_zero = words.by_ref().all(|chunk| {
        chunk.chunks_exact(8).fold(0u64, |acc, w| {
            acc | u64::from_le_bytes(w.try_into().expect("8 bytes"))
        }) == 0
    });
    all_words_zero && words.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_zero_sees_a_single_set_byte_anywhere() {
        let mut page = vec![0u8; 4096 + 3];
        assert!(super::is_zero(&page));
        for at in [0, 63, 64, 4095, 4098] {
            page[at] = 1;
            assert!(!super::is_zero(&page));
            page[at] = 0;
        }
    }
}
