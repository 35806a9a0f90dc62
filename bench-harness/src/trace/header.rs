//! The trace header: page size, content mode, initial page count and free-form metadata.

use std::collections::BTreeMap;
use std::io::Read;

use pagewire_codec::{PageCount, PageSize};
use xxhash_rust::xxh3::xxh3_64;

use super::bytes::Cursor;
use super::error::{ChecksummedPart, Corruption, TraceReadError, TraceWriteError};
use super::format::{HEADER_PREFIX_LEN, MAGIC, MAX_HEADER_BODY, MAX_PAGE_COUNT, VERSION};

/// Whether a trace stores page contents or only which pages were written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentMode {
    /// The initial image and the new content of every written page.
    #[default]
    Full,
    /// Only the numbers of the pages written in each epoch (for huge synthetic traces).
    DirtyOnly,
}

impl ContentMode {
    fn to_byte(self) -> u8 {
        match self {
            ContentMode::Full => 0,
            ContentMode::DirtyOnly => 1,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, Corruption> {
        match byte {
            0 => Ok(ContentMode::Full),
            1 => Ok(ContentMode::DirtyOnly),
            other => Err(Corruption::UnknownContentMode(other)),
        }
    }
}

/// What a trace declares before its first block.
///
/// ```
/// use pagewire_bench::trace::{ContentMode, TraceHeader};
/// use pagewire_codec::{PageCount, PageSize};
/// let header = TraceHeader::new(PageSize::KIB_4, ContentMode::Full, PageCount(256))
///     .with_metadata("command", "redis-server --port 7000")
///     .with_metadata("interval_ms", "100");
/// assert_eq!(header.metadata["interval_ms"], "100");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    /// Size of every page.
    pub page_size: PageSize,
    /// Whether contents are stored.
    pub content: ContentMode,
    /// The page count when recording started. The memory may grow while recording; the
    /// footer holds the final count, which is what a replay uses.
    pub page_count: PageCount,
    /// Free-form key/value metadata (the command recorded, the interval, the generator and
    /// its parameters, ...).
    pub metadata: BTreeMap<String, String>,
}

impl TraceHeader {
    /// A header with no metadata.
    pub fn new(page_size: PageSize, content: ContentMode, page_count: PageCount) -> Self {
        TraceHeader {
            page_size,
            content,
            page_count,
            metadata: BTreeMap::new(),
        }
    }

    /// The same header with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The header's bytes: prefix, body, checksum.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, TraceWriteError> {
        let metadata = serde_json::to_vec(&self.metadata).expect("a string map serializes");
        let body_len = 4 + 1 + 3 + 8 + 4 + metadata.len();
        if body_len > MAX_HEADER_BODY as usize {
            return Err(TraceWriteError::MetadataTooLarge(metadata.len()));
        }
        if self.page_count.0 > MAX_PAGE_COUNT {
            return Err(TraceWriteError::BadPageCount(self.page_count));
        }
        let mut out = Vec::with_capacity(HEADER_PREFIX_LEN + body_len + 8);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.extend_from_slice(&self.page_size.get().to_le_bytes());
        out.push(self.content.to_byte());
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&self.page_count.0.to_le_bytes());
        out.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
        out.extend_from_slice(&metadata);
        let checksum = xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        Ok(out)
    }

    /// Reads and checks a header at the start of `input` (of `file_len` bytes); returns it
    /// with its length in bytes.
    pub(crate) fn decode(
        input: &mut impl Read,
        file_len: u64,
    ) -> Result<(TraceHeader, u64), TraceReadError> {
        let truncated = |what| TraceReadError::Truncated { file_len, what };
        let corrupt = |problem| TraceReadError::Corrupt { offset: 0, problem };
        if file_len < 8 {
            return Err(truncated("the header is incomplete"));
        }
        let mut prefix = [0u8; HEADER_PREFIX_LEN];
        input.read_exact(&mut prefix[..8])?;
        if prefix[..8] != MAGIC {
            return Err(TraceReadError::NotATrace);
        }
        if file_len < HEADER_PREFIX_LEN as u64 {
            return Err(truncated("the header is incomplete"));
        }
        input.read_exact(&mut prefix[8..])?;
        let version = u16::from_le_bytes([prefix[8], prefix[9]]);
        if version != VERSION {
            return Err(TraceReadError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let body_len = u32::from_le_bytes([prefix[12], prefix[13], prefix[14], prefix[15]]);
        if body_len > MAX_HEADER_BODY {
            return Err(corrupt(Corruption::HeaderTooLarge(body_len)));
        }
        let total = HEADER_PREFIX_LEN as u64 + u64::from(body_len) + 8;
        if file_len < total {
            return Err(truncated("the header is incomplete"));
        }
        let mut rest = vec![0u8; body_len as usize + 8];
        input.read_exact(&mut rest)?;
        let (body, checksum) = rest.split_at(body_len as usize);
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&prefix);
        hasher.update(body);
        if hasher.digest().to_le_bytes() != checksum {
            return Err(TraceReadError::ChecksumMismatch {
                part: ChecksummedPart::Header,
                offset: 0,
            });
        }
        if prefix[10..12] != [0, 0] {
            return Err(corrupt(Corruption::ReservedNotZero));
        }
        let header = Self::decode_body(body).map_err(corrupt)?;
        Ok((header, total))
    }

    fn decode_body(body: &[u8]) -> Result<TraceHeader, Corruption> {
        let mut cursor = Cursor::new(body);
        let malformed = |_| Corruption::MalformedHeader;
        let page_size = PageSize::new(cursor.u32().map_err(malformed)?)?;
        let content = ContentMode::from_byte(cursor.u8().map_err(malformed)?)?;
        if cursor.take(3).map_err(malformed)? != [0, 0, 0] {
            return Err(Corruption::ReservedNotZero);
        }
        let page_count = cursor.u64().map_err(malformed)?;
        if page_count > MAX_PAGE_COUNT {
            return Err(Corruption::PageCountTooLarge(page_count));
        }
        let metadata_len = cursor.u32().map_err(malformed)?;
        let metadata = cursor.take(metadata_len as usize).map_err(malformed)?;
        if !cursor.is_empty() {
            return Err(Corruption::MalformedHeader);
        }
        let metadata = serde_json::from_slice(metadata).map_err(|_| Corruption::BadMetadata)?;
        Ok(TraceHeader {
            page_size,
            content,
            page_count: PageCount(page_count),
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_with_metadata() {
        let header = TraceHeader::new(PageSize::KIB_16, ContentMode::DirtyOnly, PageCount(9))
            .with_metadata("command", "sqlite3 \"x\"");
        let bytes = header.encode().unwrap();
        let (back, len) = TraceHeader::decode(&mut &bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(back, header);
        assert_eq!(len, bytes.len() as u64);
    }

    #[test]
    fn header_rejects_bad_magic_and_version() {
        let mut bytes = TraceHeader::new(PageSize::KIB_4, ContentMode::Full, PageCount(1))
            .encode()
            .unwrap();
        let len = bytes.len() as u64;
        bytes[8] = 2;
        assert!(matches!(
            TraceHeader::decode(&mut &bytes[..], len),
            Err(TraceReadError::UnsupportedVersion { found: 2, .. })
        ));
        bytes[0] = b'x';
        assert!(matches!(
            TraceHeader::decode(&mut &bytes[..], len),
            Err(TraceReadError::NotATrace)
        ));
    }
}
