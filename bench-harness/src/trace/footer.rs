//! The footer: totals a reader (and `pagewire trace info`) learns without decoding any epoch,
//! followed by the trailer that locates it.

use std::time::Duration;

use pagewire_codec::{PageCount, PageSize};
use xxhash_rust::xxh3::xxh3_64;

use super::bytes::Cursor;
use super::error::{ChecksummedPart, Corruption, TraceReadError};
use super::format::{END_MAGIC, FOOTER_FIELDS, FOOTER_LEN, FOOTER_MAGIC, MAX_PAGE_COUNT};

/// Totals of a whole trace, stored in its footer.
///
/// Counts of written pages add up: `pages_written = pages_full + pages_delta + pages_zero +
/// pages_unchanged + pages_dirty`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// The final page count of the memory (what a replay allocates).
    pub page_count: PageCount,
    /// Number of epochs.
    pub epochs: u64,
    /// Time offset of the last epoch: the span the trace covers.
    pub duration: Duration,
    /// Pages of the initial image stored (non-zero pages; the others are zero).
    pub initial_pages: u64,
    /// Page writes over all epochs.
    pub pages_written: u64,
    /// Writes stored as whole pages.
    pub pages_full: u64,
    /// Writes stored as XOR deltas against the page's previous version.
    pub pages_delta: u64,
    /// Writes whose content is identical to the page's previous version.
    pub pages_unchanged: u64,
    /// Writes that left the page all zero.
    pub pages_zero: u64,
    /// Content-less writes (dirty-only traces).
    pub pages_dirty: u64,
    /// Total bytes of stored deltas.
    pub delta_bytes: u64,
    /// The most pages written in one epoch.
    pub max_epoch_pages: u64,
    /// Distinct pages written at least once over all epochs (the written working set).
    pub distinct_pages_written: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Sum of the blocks' uncompressed payload lengths.
    pub uncompressed_bytes: u64,
    /// Sum of the blocks' compressed payload lengths.
    pub compressed_bytes: u64,
}

impl TraceSummary {
    /// Page writes per second of trace time (0 for a trace of zero duration).
    pub fn dirty_pages_per_second(&self) -> f64 {
        per_second(self.pages_written as f64, self.duration)
    }

    /// Bytes of written pages per second of trace time.
    pub fn dirty_bytes_per_second(&self, page_size: PageSize) -> f64 {
        per_second(
            self.pages_written as f64 * page_size.bytes() as f64,
            self.duration,
        )
    }

    /// Share of written pages whose content did not change (0 when nothing was written or
    /// the trace is content-less).
    pub fn unchanged_share(&self) -> f64 {
        let with_content = self.pages_written - self.pages_dirty;
        if with_content == 0 {
            0.0
        } else {
            self.pages_unchanged as f64 / with_content as f64
        }
    }

    /// Bytes of memory content the trace represents: the initial image plus every written
    /// page (for dirty-only traces, the bytes the dirty pages stand for).
    pub fn logical_bytes(&self, page_size: PageSize) -> u64 {
        (self.page_count.0.saturating_add(self.pages_written))
            .saturating_mul(page_size.bytes() as u64)
    }

    fn fields(&self) -> [u64; FOOTER_FIELDS] {
        [
            self.page_count.0,
            self.epochs,
            u64::try_from(self.duration.as_nanos()).unwrap_or(u64::MAX),
            self.initial_pages,
            self.pages_written,
            self.pages_full,
            self.pages_delta,
            self.pages_unchanged,
            self.pages_zero,
            self.pages_dirty,
            self.delta_bytes,
            self.max_epoch_pages,
            self.distinct_pages_written,
            self.blocks,
            self.uncompressed_bytes,
            self.compressed_bytes,
        ]
    }

    fn from_fields(f: [u64; FOOTER_FIELDS]) -> Self {
        TraceSummary {
            page_count: PageCount(f[0]),
            epochs: f[1],
            duration: Duration::from_nanos(f[2]),
            initial_pages: f[3],
            pages_written: f[4],
            pages_full: f[5],
            pages_delta: f[6],
            pages_unchanged: f[7],
            pages_zero: f[8],
            pages_dirty: f[9],
            delta_bytes: f[10],
            max_epoch_pages: f[11],
            distinct_pages_written: f[12],
            blocks: f[13],
            uncompressed_bytes: f[14],
            compressed_bytes: f[15],
        }
    }

    /// The footer and trailer bytes for a footer at `offset`.
    pub(crate) fn encode(&self, offset: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN + 16);
        out.extend_from_slice(&FOOTER_MAGIC);
        for field in self.fields() {
            out.extend_from_slice(&field.to_le_bytes());
        }
        let checksum = xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&END_MAGIC);
        out
    }

    /// Parses the footer bytes (exactly [`FOOTER_LEN`]) found at `offset`.
    pub(crate) fn decode(bytes: &[u8], offset: u64) -> Result<Self, TraceReadError> {
        let corrupt = |problem| TraceReadError::Corrupt { offset, problem };
        let (body, checksum) = bytes.split_at(FOOTER_LEN - 8);
        if xxh3_64(body).to_le_bytes() != checksum {
            return Err(TraceReadError::ChecksumMismatch {
                part: ChecksummedPart::Footer,
                offset,
            });
        }
        if body[..8] != FOOTER_MAGIC {
            return Err(corrupt(Corruption::BadFooterMagic));
        }
        let mut cursor = Cursor::new(&body[8..]);
        let mut fields = [0u64; FOOTER_FIELDS];
        for field in &mut fields {
            *field = cursor
                .u64()
                .map_err(|_| corrupt(Corruption::BadFooterMagic))?;
        }
        let summary = Self::from_fields(fields);
        if summary.page_count.0 > MAX_PAGE_COUNT {
            return Err(corrupt(Corruption::PageCountTooLarge(summary.page_count.0)));
        }
        Ok(summary)
    }
}

fn per_second(amount: f64, duration: Duration) -> f64 {
    let seconds = duration.as_secs_f64();
    if seconds > 0.0 { amount / seconds } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_rates_follow_from_counts() {
        let summary = TraceSummary {
            page_count: PageCount(100),
            epochs: 10,
            duration: Duration::from_secs(2),
            pages_written: 50,
            pages_unchanged: 20,
            pages_full: 30,
            ..TraceSummary::default()
        };
        let bytes = summary.encode(7);
        assert_eq!(
            TraceSummary::decode(&bytes[..FOOTER_LEN], 7).unwrap(),
            summary
        );
        assert_eq!(summary.dirty_pages_per_second(), 25.0);
        assert_eq!(
            summary.dirty_bytes_per_second(PageSize::KIB_4),
            25.0 * 4096.0
        );
        assert_eq!(summary.unchanged_share(), 0.4);
    }
}
