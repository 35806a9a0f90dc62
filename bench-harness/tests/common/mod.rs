//! What the harness's integration tests share.

use std::path::Path;
use std::time::Duration;

use pagewire_bench::trace::content::{ContentMix, ContentModel};
use pagewire_bench::trace::generators::{GenConfig, HotCold, HotColdShape, generate};
use pagewire_bench::trace::{ContentMode, TraceHeader, TraceWriter};
use pagewire_codec::{PageCount, PageSize};

/// A generated trace with page contents: a Zipf(1.0) hot/cold writer over 4 KiB pages.
pub struct HotColdTrace {
    /// Pages of memory.
    pub pages: u64,
    /// Time between epochs.
    pub interval: Duration,
    /// Epochs written.
    pub epochs: u64,
    /// Bytes written per second of trace time.
    pub bytes_per_second: f64,
    /// Share of written pages that come back with identical content.
    pub identical_share: f64,
    /// Seed of the writes and of the content model.
    pub seed: u64,
}

impl HotColdTrace {
    /// Writes the trace to `path`.
    pub fn write(&self, path: &Path) {
        let config = GenConfig {
            page_size: PageSize::KIB_4,
            page_count: PageCount(self.pages),
            interval: self.interval,
            epochs: self.epochs,
            content: ContentMode::Full,
            model: ContentModel::new(self.seed, ContentMix::default(), 64),
            identical_share: self.identical_share,
            seed: self.seed,
        };
        let mut pattern = HotCold::new(
            config.page_count,
            config.pages_per_epoch(self.bytes_per_second),
            HotColdShape::Zipf { exponent: 1.0 },
        );
        let header = TraceHeader::new(config.page_size, config.content, config.page_count);
        let mut writer = TraceWriter::create(path, header).unwrap();
        generate(&config, &mut pattern, &mut writer, &mut |_| {}).unwrap();
        writer.finish().unwrap();
    }
}
