//! A hot/cold working set: most writes go to a few pages. Either Zipf-distributed over all
//! pages, or two sets (a hot set taking a given share of the writes, the rest uniform over
//! the cold pages). Page ranks are scattered over the memory by a fixed permutation, so hot
//! pages are not all adjacent.

use pagewire_codec::{PageCount, PageNumber};

use super::WritePattern;
use crate::trace::rng::{Rng, Zipf};

/// The distribution of writes over pages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HotColdShape {
    /// Page of rank `k` written with probability proportional to `1 / k^exponent`.
    Zipf {
        /// The Zipf exponent (1.0 is classic Zipf; larger is more skewed).
        exponent: f64,
    },
    /// A hot set of `hot_fraction` of the pages takes `hot_share` of the writes.
    TwoSet {
        /// Fraction of pages in the hot set (0..=1).
        hot_fraction: f64,
        /// Fraction of writes that go to the hot set (0..=1).
        hot_share: f64,
    },
}

/// Draws `writes_per_epoch` writes from a skewed distribution each epoch; repeated draws of
/// a page in one epoch are one page write, so the distinct pages per epoch are fewer than the
/// draws, the more so the hotter the set (as with real hot pages).
#[derive(Clone, Debug)]
pub struct HotCold {
    page_count: u64,
    writes_per_epoch: u64,
    shape: HotColdShape,
    zipf: Option<Zipf>,
    stride: u64,
    name: &'static str,
}

impl HotCold {
    /// A hot/cold pattern over `page_count` pages.
    pub fn new(page_count: PageCount, writes_per_epoch: u64, shape: HotColdShape) -> Self {
        let n = page_count.0.max(1);
        let zipf = match shape {
            HotColdShape::Zipf { exponent } => Some(Zipf::new(n, exponent)),
            HotColdShape::TwoSet { .. } => None,
        };
        HotCold {
            page_count: n,
            writes_per_epoch,
            shape,
            zipf,
            stride: coprime_stride(n),
            name: "hot-cold",
        }
    }

    /// The same pattern recorded under another generator name.
    pub(crate) fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The page holding rank `rank` (0-based): a fixed permutation of the memory.
    fn page_of_rank(&self, rank: u64) -> PageNumber {
        PageNumber(
            ((u128::from(rank) * u128::from(self.stride)) % u128::from(self.page_count)) as u64,
        )
    }
}

/// A stride near the golden ratio of `n` that is coprime with `n` (so rank * stride mod n
/// is a permutation).
fn coprime_stride(n: u64) -> u64 {
    let mut stride = ((n as f64 * 0.618_033_988_7) as u64).max(1) | 1;
    while gcd(stride, n) != 1 {
        stride += 1;
    }
    stride
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl WritePattern for HotCold {
    fn name(&self) -> &'static str {
        self.name
    }

    fn epoch_pages(&mut self, _epoch: u64, rng: &mut Rng, out: &mut Vec<PageNumber>) {
        for _ in 0..self.writes_per_epoch {
            let rank = match (self.shape, &self.zipf) {
                (_, Some(zipf)) => zipf.sample(rng) - 1,
                (
                    HotColdShape::TwoSet {
                        hot_fraction,
                        hot_share,
                    },
                    None,
                ) => {
                    let hot = ((self.page_count as f64 * hot_fraction).round() as u64)
                        .clamp(1, self.page_count);
                    if hot == self.page_count || rng.chance(hot_share) {
                        rng.below(hot)
                    } else {
                        hot + rng.below(self.page_count - hot)
                    }
                }
                (HotColdShape::Zipf { .. }, None) => unreachable!("Zipf shapes have a sampler"),
            };
            out.push(self.page_of_rank(rank));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_mapping_is_a_permutation() {
        for n in [1u64, 2, 10, 64, 1000, 4096] {
            let pattern = HotCold::new(PageCount(n), 1, HotColdShape::Zipf { exponent: 1.0 });
            let mut pages: Vec<u64> = (0..n).map(|r| pattern.page_of_rank(r).0).collect();
            pages.sort_unstable();
            assert_eq!(pages, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn two_set_sends_its_share_to_the_hot_set() {
        let shape = HotColdShape::TwoSet {
            hot_fraction: 0.1,
            hot_share: 0.9,
        };
        let mut pattern = HotCold::new(PageCount(1000), 10_000, shape);
        let hot: Vec<PageNumber> = (0..100).map(|r| pattern.page_of_rank(r)).collect();
        let mut out = Vec::new();
        pattern.epoch_pages(0, &mut Rng::new(1), &mut out);
        let in_hot = out.iter().filter(|p| hot.contains(p)).count();
        assert!((8_700..9_300).contains(&in_hot), "{in_hot}");
    }
}
