//! Page contents that look like real memory: machine code, text, heap objects full of
//! pointers, counters, zero pages, media buffers and incompressible data, and rewrites that
//! are small edits of the previous version (so delta encoders see realistic deltas).
//!
//! Contents are a pure function of (seed, page, version): version 0 is the initial image, and
//! version `v` is the page's base content with the edits of `v` applied. Consecutive
//! versions therefore differ in the bytes of two edit sets, which is how a program's write
//! to a few fields of an object looks. Generators keep only a version number per page.

use super::rng::{Rng, hash_of};

/// What kind of data a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentClass {
    /// All zero bytes until first written; then a freshly allocated object (a few hundred
    /// bytes of pointers and integers, the rest zero).
    Zero,
    /// x86-64-like machine code.
    Code,
    /// ASCII text (words, numbers, newlines).
    Text,
    /// Heap objects: aligned pointers into a few regions, small integers, zero padding.
    Pointers,
    /// Statistics pages: arrays of 64-bit counters, mostly small.
    Counters,
    /// Media buffers (decoded frames): smooth gradients with noise; every write replaces the
    /// whole page.
    Media,
    /// Compressed or encrypted data: random bytes; every write replaces the whole page.
    Random,
}

impl ContentClass {
    /// Every class, in the order of [`ContentMix`]'s weights.
    pub const ALL: [ContentClass; 7] = [
        ContentClass::Zero,
        ContentClass::Code,
        ContentClass::Text,
        ContentClass::Pointers,
        ContentClass::Counters,
        ContentClass::Media,
        ContentClass::Random,
    ];
}

/// Relative weights of the content classes over a memory's pages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContentMix {
    /// Weight of each class, in the order of [`ContentClass::ALL`].
    pub weights: [f64; 7],
}

impl Default for ContentMix {
    /// A process-like mix: 25% zero, 10% code, 15% text, 35% pointers, 5% counters, 5% media,
    /// 5% random.
    fn default() -> Self {
        ContentMix {
            weights: [25.0, 10.0, 15.0, 35.0, 5.0, 5.0, 5.0],
        }
    }
}

impl ContentMix {
    /// Parses `zero=25,code=10,...` (classes not named get weight 0; at least one positive).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights = [0.0; 7];
        for item in text.split(',').filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected CLASS=WEIGHT, got {item:?}"))?;
            let index = [
                "zero", "code", "text", "pointers", "counters", "media", "random",
            ]
            .iter()
            .position(|n| *n == name.trim())
            .ok_or_else(|| format!("unknown content class {name:?}"))?;
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("bad weight {value:?}"))?;
            if !(value >= 0.0 && value.is_finite()) {
                return Err(format!("bad weight {value}"));
            }
            weights[index] = value;
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err("the mix needs a positive weight".into());
        }
        Ok(ContentMix { weights })
    }

    /// The class whose share of the cumulative weights contains `unit` (in `[0, 1)`).
    fn pick(&self, unit: f64) -> ContentClass {
        let total: f64 = self.weights.iter().sum();
        let mut acc = 0.0;
        for (class, weight) in ContentClass::ALL.iter().zip(self.weights) {
            acc += weight / total;
            if unit < acc {
                return *class;
            }
        }
        ContentClass::ALL[self.weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)]
    }
}

/// Generates page contents for one memory.
///
/// ```
/// use pagewire_bench::trace::content::{ContentClass, ContentModel};
/// let model = ContentModel::new(1, Default::default(), 64);
/// let (mut v1, mut v2) = (vec![0u8; 4096], vec![0u8; 4096]);
/// model.fill(7, ContentClass::Text, 1, &mut v1);
/// model.fill(7, ContentClass::Text, 2, &mut v2);
/// let changed = v1.iter().zip(&v2).filter(|(a, b)| a != b).count();
/// assert!(changed > 0 && changed < 1024, "{changed} bytes changed");
/// ```
#[derive(Clone, Debug)]
pub struct ContentModel {
    seed: u64,
    mix: ContentMix,
    edit_bytes: u32,
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "page",
    "memory",
    "request",
    "value",
    "key",
    "user",
    "session",
    "error",
    "return",
    "static",
    "const",
    "struct",
    "index",
    "table",
    "select",
    "from",
    "where",
    "insert",
    "update",
    "into",
    "migration",
    "server",
    "client",
    "buffer",
    "cache",
    "GET",
    "SET",
    "HTTP/1.1",
    "200",
    "OK",
    "Content-Length:",
    "id",
    "name",
    "time",
    "null",
];

impl ContentModel {
    /// A model drawing page classes from `mix`, with rewrites changing about `edit_bytes`
    /// bytes (of the classes that are edited in place).
    pub fn new(seed: u64, mix: ContentMix, edit_bytes: u32) -> Self {
        ContentModel {
            seed,
            mix,
            edit_bytes: edit_bytes.max(1),
        }
    }

    /// The class of `page`, fixed for the life of the memory.
    pub fn class_of(&self, page: u64) -> ContentClass {
        let unit = (hash_of(&[self.seed, page, 0xc1a5]) >> 11) as f64 / (1u64 << 53) as f64;
        self.mix.pick(unit)
    }

    /// Writes version `version` of `page` (holding `class`) into `out`.
    pub fn fill(&self, page: u64, class: ContentClass, version: u64, out: &mut [u8]) {
        let base_seed = hash_of(&[self.seed, page, 0xba5e]);
        match class {
            ContentClass::Zero if version == 0 => out.fill(0),
            ContentClass::Zero => {
                out.fill(0);
                let used = (out.len() / 8).max(64);
                fill_pointers(&mut Rng::new(base_seed), &mut out[..used]);
                self.edit(page, class, version, out);
            }
            ContentClass::Media => fill_media(&mut Rng::new(hash_of(&[base_seed, version])), out),
            ContentClass::Random => Rng::new(hash_of(&[base_seed, version])).fill(out),
            _ => {
                let mut rng = Rng::new(base_seed);
                match class {
                    ContentClass::Code => fill_code(&mut rng, out),
                    ContentClass::Text => fill_text(&mut rng, out),
                    ContentClass::Counters => fill_counters(&mut rng, out),
                    _ => fill_pointers(&mut rng, out),
                }
                if version > 0 {
                    self.edit(page, class, version, out);
                }
            }
        }
    }

    /// Applies the edits of `version` to a page holding its base content.
    fn edit(&self, page: u64, class: ContentClass, version: u64, out: &mut [u8]) {
        let mut rng = Rng::new(hash_of(&[self.seed, page, version, 0xed17]));
        let len = out.len();
        let mut budget =
            i64::from(self.edit_bytes) / 2 + rng.below(u64::from(self.edit_bytes)) as i64;
        while budget > 0 {
            let spent = match class {
                ContentClass::Text => {
                    let word = WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes();
                    let at = rng.below((len - word.len()) as u64) as usize;
                    out[at..at + word.len()].copy_from_slice(word);
                    word.len()
                }
                ContentClass::Code => {
                    let at = rng.below((len - 4) as u64) as usize;
                    out[at..at + 4]
                        .copy_from_slice(&(rng.next_u64() as u32 & 0xffff).to_le_bytes());
                    4
                }
                ContentClass::Counters => {
                    // Counters at fixed slots of the page advance with the version.
                    let slot = rng.below(64.min(len as u64 / 8)) as usize * 8;
                    let old = u64::from_le_bytes(out[slot..slot + 8].try_into().expect("8 bytes"));
                    out[slot..slot + 8]
                        .copy_from_slice(&old.wrapping_add(version * 3 + 1).to_le_bytes());
                    8
                }
                _ => {
                    let slot = rng.below(len as u64 / 8) as usize * 8;
                    out[slot..slot + 8].copy_from_slice(&pointer(&mut rng).to_le_bytes());
                    8
                }
            };
            budget -= spent as i64;
        }
    }
}

/// A user-space heap pointer: one of a few regions, 16-byte aligned.
fn pointer(rng: &mut Rng) -> u64 {
    let region = [0x5555_5555_0000u64, 0x7f3a_2c00_0000, 0x7ffd_e000_0000][rng.below(3) as usize];
    region + (rng.below(1 << 24) << 4)
}

fn fill_pointers(rng: &mut Rng, out: &mut [u8]) {
    for word in out.chunks_exact_mut(8) {
        let value = match rng.below(10) {
            0..=5 => pointer(rng),
            6 | 7 => rng.below(1000),
            _ => 0,
        };
        word.copy_from_slice(&value.to_le_bytes());
    }
}

fn fill_counters(rng: &mut Rng, out: &mut [u8]) {
    out.fill(0);
    let used = out.len() / 4;
    for word in out[..used].chunks_exact_mut(8) {
        word.copy_from_slice(&rng.below(1 << 16).to_le_bytes());
    }
}

fn fill_text(rng: &mut Rng, out: &mut [u8]) {
    let mut at = 0;
    while at < out.len() {
        let piece: &[u8] = match rng.below(12) {
            0 => b"\n",
            1 => b", ",
            _ => WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes(),
        };
        let n = piece.len().min(out.len() - at);
        out[at..at + n].copy_from_slice(&piece[..n]);
        at += n;
        if at < out.len() {
            out[at] = b' ';
            at += 1;
        }
    }
}

fn fill_code(rng: &mut Rng, out: &mut [u8]) {
    const PIECES: &[&[u8]] = &[
        &[0x55],                         // push rbp
        &[0x48, 0x89, 0xe5],             // mov rbp, rsp
        &[0x48, 0x83, 0xec, 0x20],       // sub rsp, 0x20
        &[0x48, 0x8b, 0x45, 0xf8],       // mov rax, [rbp-8]
        &[0x89, 0x7d, 0xfc],             // mov [rbp-4], edi
        &[0xc3],                         // ret
        &[0x0f, 0x1f, 0x44, 0x00, 0x00], // nop
        &[0x5d],                         // pop rbp
        &[0x31, 0xc0],                   // xor eax, eax
    ];
    let mut at = 0;
    while at < out.len() {
        let mut piece = [0u8; 5];
        let len = if rng.below(4) == 0 {
            // call rel32 with a nearby target.
            piece[0] = 0xe8;
            piece[1..5].copy_from_slice(&(rng.below(1 << 16) as u32).to_le_bytes());
            5
        } else {
            let p = PIECES[rng.below(PIECES.len() as u64) as usize];
            piece[..p.len()].copy_from_slice(p);
            p.len()
        };
        let n = len.min(out.len() - at);
        out[at..at + n].copy_from_slice(&piece[..n]);
        at += n;
    }
}

fn fill_media(rng: &mut Rng, out: &mut [u8]) {
    let start = rng.below(256) as u32;
    let slope = 1 + rng.below(3) as u32;
    for (i, byte) in out.iter_mut().enumerate() {
        let noise = (rng.next_u64() & 7) as u32;
        *byte = (start + (i as u32 / 16) * slope + noise) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressed_len(page: &[u8]) -> usize {
        zstd::bulk::compress(page, 3).unwrap().len()
    }

    #[test]
    fn classes_compress_like_the_data_they_imitate() {
        let model = ContentModel::new(5, ContentMix::default(), 64);
        let mut page = vec![0u8; 4096];
        let ratio = |class, page: &mut Vec<u8>| {
            model.fill(11, class, 0, page);
            4096.0 / compressed_len(page) as f64
        };
        assert!(ratio(ContentClass::Random, &mut page) < 1.05);
        assert!(ratio(ContentClass::Text, &mut page) > 2.0);
        assert!(ratio(ContentClass::Code, &mut page) > 1.5);
        assert!(ratio(ContentClass::Counters, &mut page) > 3.0);
        model.fill(11, ContentClass::Zero, 0, &mut page);
        assert!(page.iter().all(|&b| b == 0));
    }

    #[test]
    fn versions_differ_by_small_edits_except_for_whole_page_classes() {
        let model = ContentModel::new(9, ContentMix::default(), 64);
        let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
        for class in [
            ContentClass::Text,
            ContentClass::Pointers,
            ContentClass::Counters,
            ContentClass::Code,
        ] {
            model.fill(3, class, 4, &mut a);
            model.fill(3, class, 5, &mut b);
            let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            assert!((1..400).contains(&changed), "{class:?}: {changed}");
        }
        model.fill(3, ContentClass::Random, 4, &mut a);
        model.fill(3, ContentClass::Random, 5, &mut b);
        assert!(a.iter().zip(&b).filter(|(x, y)| x != y).count() > 3000);
    }

    #[test]
    fn mix_parses_and_picks_only_weighted_classes() {
        let mix = ContentMix::parse("text=1,random=1").unwrap();
        let model = ContentModel::new(1, mix, 8);
        for page in 0..200 {
            assert!(matches!(
                model.class_of(page),
                ContentClass::Text | ContentClass::Random
            ));
        }
        assert!(ContentMix::parse("bogus=1").is_err());
        assert!(ContentMix::parse("zero=0").is_err());
    }
}
