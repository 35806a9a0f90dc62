//! Trace generators: deterministic from a seed, streaming into a [`TraceSink`] epoch by
//! epoch (they keep a version number per page, never the trace).
//!
//! A generator is a [`WritePattern`] (which pages each epoch writes) driven by [`generate`],
//! which adds contents from a [`ContentModel`]: each write either repeats the page's
//! current version (an identical rewrite, with probability
//! [`GenConfig::identical_share`]) or moves it to its next version.

mod history_majority;
mod hot_cold;
mod idle;
mod mirror_files;
mod sweep;
mod two_fold;
mod uniform;
mod video;

use std::time::Duration;

use pagewire_codec::{PageCount, PageNumber, PageSize};

use super::content::{ContentClass, ContentModel};
use super::error::TraceWriteError;
use super::header::ContentMode;
use super::rng::{Rng, hash_of};
use super::sink::TraceSink;

pub use history_majority::HistoryMajority;
pub use hot_cold::{HotCold, HotColdShape};
pub use idle::Idle;
pub use mirror_files::MirrorFiles;
pub use sweep::Sweep;
pub use two_fold::two_fold;
pub use uniform::Uniform;
pub use video::Video;

/// Which pages a workload writes in each epoch.
pub trait WritePattern {
    /// A short name, recorded in the trace's metadata.
    fn name(&self) -> &'static str;

    /// Appends the pages written in epoch `epoch` to `out` (duplicates are removed by the
    /// driver, and every page must be below the memory's page count).
    fn epoch_pages(&mut self, epoch: u64, rng: &mut Rng, out: &mut Vec<PageNumber>);

    /// The content class of `page` when the workload decides it (e.g. a video frame buffer),
    /// or `None` to use the content model's mix.
    fn class_of(&self, _page: PageNumber) -> Option<ContentClass> {
        None
    }
}

/// What every generator shares: the memory, the clock, and the contents.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Size of each page.
    pub page_size: PageSize,
    /// Pages of memory.
    pub page_count: PageCount,
    /// Time between epochs.
    pub interval: Duration,
    /// Number of epochs.
    pub epochs: u64,
    /// Whether contents are generated.
    pub content: ContentMode,
    /// The contents (content traces only).
    pub model: ContentModel,
    /// Share of writes that rewrite a page with identical content (0..=1).
    pub identical_share: f64,
    /// The seed of every random choice.
    pub seed: u64,
}

impl GenConfig {
    /// Pages per epoch for a dirty rate of `bytes_per_second` (at least 1).
    pub fn pages_per_epoch(&self, bytes_per_second: f64) -> u64 {
        let pages = bytes_per_second * self.interval.as_secs_f64() / self.page_size.bytes() as f64;
        (pages.round() as u64).max(1)
    }
}

/// Runs `pattern` for `config.epochs` epochs into `sink`, calling `progress` with the number
/// of epochs done after each one.
pub fn generate(
    config: &GenConfig,
    pattern: &mut dyn WritePattern,
    sink: &mut dyn TraceSink,
    progress: &mut dyn FnMut(u64),
) -> Result<(), TraceWriteError> {
    let with_content = config.content == ContentMode::Full;
    let page_count = usize::try_from(config.page_count.0).expect("page count fits memory");
    let mut versions: Vec<u32> = if with_content {
        vec![0; page_count]
    } else {
        Vec::new()
    };
    let mut page = vec![
        0u8;
        if with_content {
            config.page_size.bytes()
        } else {
            0
        }
    ];
    if with_content {
        for n in 0..config.page_count.0 {
            let p = PageNumber(n);
            config
                .model
                .fill(n, pattern_class(&*pattern, &config.model, p), 0, &mut page);
            sink.write_initial_page(p, &page)?;
        }
    }
    let mut rng = Rng::new(hash_of(&[config.seed, 0x9e7]));
    let mut pages = Vec::new();
    for epoch in 0..config.epochs {
        pages.clear();
        pattern.epoch_pages(epoch, &mut rng, &mut pages);
        pages.sort_unstable();
        pages.dedup();
        sink.begin_epoch(config.interval * u32::try_from(epoch + 1).unwrap_or(u32::MAX))?;
        for &p in &pages {
            if !with_content {
                sink.write_dirty(p)?;
                continue;
            }
            let version = &mut versions[p.index()];
            if !rng.chance(config.identical_share) {
                *version += 1;
            }
            let class = pattern_class(&*pattern, &config.model, p);
            config
                .model
                .fill(p.0, class, u64::from(*version), &mut page);
            sink.write_page(p, &page)?;
        }
        sink.end_epoch()?;
        progress(epoch + 1);
    }
    Ok(())
}

fn pattern_class(
    pattern: &dyn WritePattern,
    model: &ContentModel,
    page: PageNumber,
) -> ContentClass {
    pattern
        .class_of(page)
        .unwrap_or_else(|| model.class_of(page.0))
}

/// `count` distinct pages drawn uniformly from `start..start + span` (all of them if
/// `count >= span`), appended to `out` in ascending order.
pub(crate) fn uniform_pages(
    rng: &mut Rng,
    start: u64,
    span: u64,
    count: u64,
    out: &mut Vec<PageNumber>,
) {
    if count >= span {
        out.extend((start..start + span).map(PageNumber));
    } else if count.saturating_mul(4) >= span {
        // Selection sampling: each page is taken with probability needed / remaining.
        let mut needed = count;
        for (i, page) in (start..start + span).enumerate() {
            if rng.below(span - i as u64) < needed {
                out.push(PageNumber(page));
                needed -= 1;
            }
        }
    } else {
        let mut chosen = std::collections::HashSet::with_capacity(count as usize);
        while (chosen.len() as u64) < count {
            chosen.insert(start + rng.below(span));
        }
        let mut chosen: Vec<u64> = chosen.into_iter().collect();
        chosen.sort_unstable();
        out.extend(chosen.into_iter().map(PageNumber));
    }
}
