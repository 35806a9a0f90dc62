//! Deterministic pseudo-random numbers for generators: xoshiro256** seeded through
//! SplitMix64, a Zipf sampler, and a stateless hash for per-page decisions.
//!
//! Our own few lines rather than a dependency: generators must give the same bytes for the
//! same seed forever, whatever a random-number crate changes between versions.

/// SplitMix64's output function: a well-mixed 64-bit hash of `x`.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A hash of several values, for decisions that must not depend on call order
/// (e.g. "what kind of content does page 17 hold").
pub fn hash_of(values: &[u64]) -> u64 {
    values
        .iter()
        .fold(0x51_7cc1_b727_220a, |acc, &v| mix64(acc ^ v))
}

/// xoshiro256**: a fast generator with 256 bits of state.
///
/// ```
/// use pagewire_bench::trace::rng::Rng;
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix64(x)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform number in `0..bound` (`bound > 0`), by multiply-shift (bias below 2^-32 for
    /// any bound this crate uses).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for chunk in chunks.by_ref() {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = chunks.into_remainder();
        let bytes = self.next_u64().to_le_bytes();
        tail.copy_from_slice(&bytes[..tail.len()]);
    }
}

/// Samples ranks `1..=n` with probability proportional to `1 / rank^s` (Zipf), in constant
/// time per sample by rejection-inversion (Hörmann and Derflinger, 1996).
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    /// A sampler over `1..=n` (`n >= 1`) with exponent `s > 0`.
    pub fn new(n: u64, s: f64) -> Self {
        let n = n.max(1) as f64;
        let s = if s > 0.0 { s } else { 1e-9 };
        let mut zipf = Zipf {
            n,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        zipf.h_x1 = zipf.big_h(1.5) - 1.0;
        zipf.h_n = zipf.big_h(n + 0.5);
        zipf.cut = 2.0 - zipf.big_h_inv(zipf.big_h(2.5) - zipf.h(2.0));
        zipf
    }

    /// The next rank, in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.big_h_inv(u);
            let k = x.round().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.big_h(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// The density `x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// An antiderivative of the density: `(x^(1-s) - 1) / (1 - s)`, or `ln x` at `s = 1`.
    fn big_h(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper_expm1_over((1.0 - self.s) * log_x) * log_x
    }

    /// The inverse of [`Zipf::big_h`].
    fn big_h_inv(&self, y: f64) -> f64 {
        let t = (y * (1.0 - self.s)).max(-1.0);
        (helper_log1p_over(t) * y).exp()
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn helper_expm1_over(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x / 2.0
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn helper_log1p_over(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[rng.below(10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn zipf_favours_low_ranks_as_its_exponent_says() {
        let zipf = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(3);
        let mut counts = vec![0u32; 1001];
        for _ in 0..200_000 {
            let k = zipf.sample(&mut rng);
            assert!((1..=1000).contains(&k));
            counts[k as usize] += 1;
        }
        // P(1)/P(2) = 2 and P(1)/P(10) = 10 for s = 1.
        let ratio2 = f64::from(counts[1]) / f64::from(counts[2]);
        let ratio10 = f64::from(counts[1]) / f64::from(counts[10]);
        assert!((1.8..2.2).contains(&ratio2), "{ratio2}");
        assert!((8.5..11.5).contains(&ratio10), "{ratio10}");
    }
}
