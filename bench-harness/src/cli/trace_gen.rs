//! `pagewire trace gen KIND --out FILE [--seed N] [...]`: writes a synthetic trace.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use pagewire_bench::trace::content::{ContentMix, ContentModel};
use pagewire_bench::trace::generators::{
    GenConfig, HistoryMajority, HotCold, HotColdShape, Idle, MirrorFiles, Sweep, Uniform, Video,
    WritePattern, generate, two_fold,
};
use pagewire_bench::trace::{ContentMode, TraceHeader, TraceWriter, WriterOptions};
use pagewire_codec::{PageCount, PageNumber, PageSize};

use super::CliResult;
use super::units::{format_bytes, parse_duration, parse_size};

/// Arguments of `pagewire trace gen`.
#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    #[command(subcommand)]
    kind: GenKind,
}

#[derive(Debug, Subcommand)]
enum GenKind {
    /// Uniform random writes over the whole memory.
    Uniform(Common),
    /// A hot/cold working set (Zipf, or a hot set taking a share of the writes).
    HotCold {
        #[command(flatten)]
        common: Common,
        /// Shape of the working set.
        #[arg(long, value_enum, default_value_t = Shape::Zipf)]
        shape: Shape,
        /// Zipf exponent (shape zipf).
        #[arg(long, default_value_t = 1.0)]
        zipf_exponent: f64,
        /// Fraction of pages in the hot set (shape two-set).
        #[arg(long, default_value_t = 0.1)]
        hot_fraction: f64,
        /// Fraction of writes going to the hot set (shape two-set).
        #[arg(long, default_value_t = 0.9)]
        hot_share: f64,
    },
    /// A sequential sweep (streaming writer) over a region, wrapping around.
    Sweep {
        #[command(flatten)]
        common: Common,
        /// Size of the swept region (default: the whole memory).
        #[arg(long, value_parser = parse_size)]
        region: Option<u64>,
    },
    /// A read-mostly idle VM: a few counter pages every epoch and a trickle of writes.
    Idle {
        #[command(flatten)]
        common: Common,
        /// Counter pages written every epoch.
        #[arg(long, default_value_t = 16)]
        hot_pages: u64,
    },
    /// Mirror paper: a VM writing a number of files sequentially.
    Mirror {
        #[command(flatten)]
        common: Common,
        /// Number of files.
        #[arg(long, default_value_t = 4)]
        files: u64,
        /// Size of each file.
        #[arg(long, value_parser = parse_size, default_value = "4MiB")]
        file_size: u64,
    },
    /// Two-fold paper: a 128/256/512/1024 MiB VM with a Zipf(0.9) working set.
    TwoFold(Common),
    /// History-majority paper: a 10/15/20-page VM, each epoch a random dirty pattern.
    HistoryMajority {
        #[command(flatten)]
        common: Common,
        /// Pages of the VM (overrides --memory).
        #[arg(long, default_value_t = 10)]
        pages: u64,
        /// Number of dirty patterns (epochs; overrides --duration).
        #[arg(long, default_value_t = 20)]
        patterns: u64,
        /// Probability that a page is dirty in a pattern.
        #[arg(long, default_value_t = 0.5)]
        dirty_probability: f64,
    },
    /// vCPU-limit paper: a memory-intensive streaming-video decoder.
    Video {
        #[command(flatten)]
        common: Common,
        /// Decoded frames per second.
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// Bytes of one decoded frame (1080p YUV420: 3 MiB).
        #[arg(long, value_parser = parse_size, default_value = "3MiB")]
        frame_size: u64,
        /// Frames in the ring buffer.
        #[arg(long, default_value_t = 8)]
        ring_frames: u64,
        /// Incoming bitstream per second.
        #[arg(long, value_parser = parse_size, default_value = "1MiB")]
        bitstream_rate: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Shape {
    Zipf,
    TwoSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Content {
    /// Initial image and page contents.
    Full,
    /// Page numbers only.
    DirtyOnly,
}

/// Options every generator takes.
#[derive(Debug, Args)]
struct Common {
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Seed of every random choice (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Memory size.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    memory: u64,
    /// Page size.
    #[arg(long, value_parser = parse_size, default_value = "4096")]
    page_size: u64,
    /// Time between epochs.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    interval: Duration,
    /// Time covered by the trace.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Bytes written per second (per generator default if not given).
    #[arg(long, value_parser = parse_size)]
    dirty_rate: Option<u64>,
    /// Store contents, or page numbers only.
    #[arg(long, value_enum, default_value_t = Content::Full)]
    content: Content,
    /// Content mix, e.g. zero=25,code=10,text=15,pointers=35,counters=5,media=5,random=5.
    #[arg(long, value_parser = ContentMix::parse)]
    mix: Option<ContentMix>,
    /// Mean bytes changed by a rewrite of an edited page.
    #[arg(long, default_value_t = 64)]
    edit_bytes: u32,
    /// Share of writes that leave the content identical.
    #[arg(long, default_value_t = 0.4)]
    identical_share: f64,
    /// zstd level of the trace blocks.
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Common {
    fn config(&self, memory: u64) -> Result<GenConfig, Box<dyn std::error::Error>> {
        let page_size =
            PageSize::new(u32::try_from(self.page_size).map_err(|_| "page size too large")?)?;
        if self.interval.is_zero() {
            return Err("--interval must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.identical_share) {
            return Err("--identical-share must be between 0 and 1".into());
        }
        let page_count = memory.div_ceil(page_size.bytes() as u64).max(1);
        let epochs = (self.duration.as_nanos() / self.interval.as_nanos()).max(1) as u64;
        Ok(GenConfig {
            page_size,
            page_count: PageCount(page_count),
            interval: self.interval,
            epochs,
            content: match self.content {
                Content::Full => ContentMode::Full,
                Content::DirtyOnly => ContentMode::DirtyOnly,
            },
            model: ContentModel::new(self.seed, self.mix.unwrap_or_default(), self.edit_bytes),
            identical_share: self.identical_share,
            seed: self.seed,
        })
    }

    /// Dirty rate in bytes per second, or `default_fraction` of memory per second.
    fn rate(&self, config: &GenConfig, default_fraction: f64) -> f64 {
        self.dirty_rate.map(|r| r as f64).unwrap_or_else(|| {
            config.page_count.0 as f64 * config.page_size.bytes() as f64 * default_fraction
        })
    }
}

/// Runs `pagewire trace gen`.
pub(crate) fn run(args: GenArgs) -> CliResult {
    let (common, mut config, mut pattern, params): (
        &Common,
        GenConfig,
        Box<dyn WritePattern>,
        String,
    ) = match &args.kind {
        GenKind::Uniform(common) => {
            let config = common.config(common.memory)?;
            let pages = config.pages_per_epoch(common.rate(&config, 0.05));
            let pattern = Uniform {
                page_count: config.page_count,
                pages_per_epoch: pages,
            };
            (
                common,
                config,
                Box::new(pattern),
                format!("pages_per_epoch={pages}"),
            )
        }
        GenKind::HotCold {
            common,
            shape,
            zipf_exponent,
            hot_fraction,
            hot_share,
        } => {
            let config = common.config(common.memory)?;
            let writes = config.pages_per_epoch(common.rate(&config, 0.05));
            let shape = match shape {
                Shape::Zipf => HotColdShape::Zipf {
                    exponent: *zipf_exponent,
                },
                Shape::TwoSet => HotColdShape::TwoSet {
                    hot_fraction: *hot_fraction,
                    hot_share: *hot_share,
                },
            };
            let pattern = HotCold::new(config.page_count, writes, shape);
            (
                common,
                config,
                Box::new(pattern),
                format!("writes_per_epoch={writes} shape={shape:?}"),
            )
        }
        GenKind::Sweep { common, region } => {
            let config = common.config(common.memory)?;
            let pages = config.pages_per_epoch(common.rate(&config, 0.25));
            let region_pages = region
                .map(|r| r.div_ceil(config.page_size.bytes() as u64))
                .unwrap_or(config.page_count.0)
                .clamp(1, config.page_count.0);
            let pattern = Sweep::new(PageNumber(0), region_pages, pages);
            (
                common,
                config,
                Box::new(pattern),
                format!("pages_per_epoch={pages} region_pages={region_pages}"),
            )
        }
        GenKind::Idle { common, hot_pages } => {
            let config = common.config(common.memory)?;
            let background = common.rate(&config, 0.0005) * config.interval.as_secs_f64()
                / config.page_size.bytes() as f64;
            let pattern = Idle::new(config.page_count, *hot_pages, background, common.seed);
            (
                common,
                config,
                Box::new(pattern),
                format!("hot_pages={hot_pages} background_per_epoch={background:.3}"),
            )
        }
        GenKind::Mirror {
            common,
            files,
            file_size,
        } => {
            let config = common.config(common.memory)?;
            let pages = config.pages_per_epoch(common.rate(&config, 0.1));
            let file_pages = file_size.div_ceil(config.page_size.bytes() as u64);
            let pattern =
                MirrorFiles::new(config.page_count, *files, file_pages, pages, common.seed);
            (
                common,
                config,
                Box::new(pattern),
                format!("files={files} file_pages={file_pages} pages_per_epoch={pages}"),
            )
        }
        GenKind::TwoFold(common) => {
            let config = common.config(common.memory)?;
            let writes = config.pages_per_epoch(common.rate(&config, 0.1));
            let pattern = two_fold(config.page_count, writes);
            (
                common,
                config,
                Box::new(pattern),
                format!("writes_per_epoch={writes}"),
            )
        }
        GenKind::HistoryMajority {
            common,
            pages,
            patterns,
            dirty_probability,
        } => {
            let mut config = common.config(pages * common.page_size)?;
            config.epochs = *patterns;
            let pattern = HistoryMajority {
                page_count: config.page_count,
                dirty_probability: *dirty_probability,
            };
            (
                common,
                config,
                Box::new(pattern),
                format!("pages={pages} patterns={patterns} p={dirty_probability}"),
            )
        }
        GenKind::Video {
            common,
            fps,
            frame_size,
            ring_frames,
            bitstream_rate,
        } => {
            let config = common.config(common.memory)?;
            let pattern = Video::new(
                config.page_count,
                config.page_size.bytes() as u64,
                config.interval,
                *frame_size,
                *fps,
                *ring_frames,
                *bitstream_rate as f64,
            );
            (
                common,
                config,
                Box::new(pattern),
                format!("fps={fps} frame_size={frame_size} ring_frames={ring_frames}"),
            )
        }
    };
    if config.identical_share > 0.0 && config.content == ContentMode::DirtyOnly {
        config.identical_share = 0.0;
    }
    let header = TraceHeader::new(config.page_size, config.content, config.page_count)
        .with_metadata("generator", pattern.name())
        .with_metadata("seed", common.seed.to_string())
        .with_metadata("interval_ns", config.interval.as_nanos().to_string())
        .with_metadata("parameters", params)
        .with_metadata("identical_share", config.identical_share.to_string())
        .with_metadata("edit_bytes", common.edit_bytes.to_string());
    let options = WriterOptions {
        zstd_level: common.zstd_level,
        ..WriterOptions::default()
    };
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&common.out)?);
    let mut writer = TraceWriter::with_options(file, header, options)?;
    let bar = if common.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.epochs)
    };
    bar.set_style(ProgressStyle::with_template(
        "{msg} {bar:40} {pos}/{len} epochs ({eta})",
    )?);
    bar.set_message(format!("generating {}", pattern.name()));
    generate(&config, pattern.as_mut(), &mut writer, &mut |done| {
        bar.set_position(done)
    })?;
    bar.finish_and_clear();
    let (_, summary) = writer.finish()?;
    let file_len = std::fs::metadata(&common.out)?.len();
    eprintln!(
        "wrote {}: {} epochs, {} page writes ({} unchanged), {}",
        common.out.display(),
        summary.epochs,
        summary.pages_written,
        summary.pages_unchanged,
        format_bytes(file_len as f64)
    );
    Ok(())
}
