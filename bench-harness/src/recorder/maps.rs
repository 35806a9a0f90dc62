//! Parsing `/proc/PID/maps` into the writable private ranges the recorder scans.

use std::fmt;

/// A virtual page of the target, numbered by address / page size (the index `/proc/PID/pagemap`
/// uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtualPage(pub u64);

/// What backs a mapping, so a region that is unmapped and mapped again with other backing is
/// recognised as a new region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backing {
    /// Anonymous memory (heap, stack, `mmap(MAP_ANONYMOUS)`): a page that is not present reads
    /// as zeros.
    Anonymous,
    /// A private writable file mapping (`.data`/`.bss` of a binary or library, a
    /// `MAP_PRIVATE` file). `page_delta` is the file page that the mapping's virtual page 0
    /// would hold (file offset / page size − start page), so the pieces of one mapping split by
    /// `mprotect` share a backing.
    File {
        /// Device number as printed by the kernel (`major:minor`, hex).
        device: u64,
        /// Inode number.
        inode: u64,
        /// File page minus virtual page, constant over one mapping.
        page_delta: i64,
    },
}

/// One writable private mapping of the target, in whole pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableRange {
    /// First page of the range.
    pub start: VirtualPage,
    /// One past the last page.
    pub end: VirtualPage,
    /// What backs the range.
    pub backing: Backing,
    /// The pathname column (`[heap]`, `[stack]`, a file path, or empty).
    pub name: String,
}

impl WritableRange {
    /// Number of pages in the range.
    pub fn pages(&self) -> u64 {
        self.end.0 - self.start.0
    }
}

/// A line of `/proc/PID/maps` that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparsable line {line_number} of the maps file: {reason}: {line:?}")]
pub struct MapsParseError {
    /// 1-based line number.
    pub line_number: usize,
    /// What was wrong.
    pub reason: MapsParseReason,
    /// The line itself.
    pub line: String,
}

/// Why a maps line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapsParseReason {
    /// Fewer than five columns.
    MissingField,
    /// The address range is not `start-end` in hex with start < end.
    BadAddressRange,
    /// The permission column is not four characters.
    BadPermissions,
    /// The offset, device or inode column is not a number.
    BadNumber,
    /// An address is not aligned to the page size.
    Unaligned,
}

impl fmt::Display for MapsParseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingField => "missing field",
            Self::BadAddressRange => "bad address range",
            Self::BadPermissions => "bad permissions",
            Self::BadNumber => "bad number",
            Self::Unaligned => "address not page-aligned",
        })
    }
}

/// Kernel-provided mappings that are never process memory worth recording.
const SPECIAL_MAPPINGS: [&str; 4] = ["[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]"];

/// Parses the text of `/proc/PID/maps` and keeps the writable private mappings (`rw-p`,
/// `rwxp`), in address order. Shared mappings are skipped: their pages belong to a file or to
/// other processes as well.
///
/// ```
/// use pagewire_bench::recorder::maps::{parse_writable_ranges, Backing, VirtualPage};
/// let text = "\
/// 55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
/// 7f0000000000-7f0000001000 r--p 00000000 fd:01 1234                       /usr/lib/libc.so.6
/// 7f0000001000-7f0000003000 rw-p 00002000 fd:01 1234                       /usr/lib/libc.so.6
/// ";
/// let ranges = parse_writable_ranges(text, 4096).unwrap();
/// assert_eq!(ranges.len(), 2);
/// assert_eq!(ranges[0].backing, Backing::Anonymous);
/// assert_eq!(ranges[1].start, VirtualPage(0x7f0000001));
/// ```
pub fn parse_writable_ranges(
    text: &str,
    page_size: u64,
) -> Result<Vec<WritableRange>, MapsParseError> {
    let mut ranges = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fail = |reason| MapsParseError {
            line_number: index + 1,
            reason,
            line: line.to_owned(),
        };
        let mut fields = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(offset), Some(device), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(fail(MapsParseReason::MissingField));
        };
        let name = fields.collect::<Vec<_>>().join(" ");
        let perms = perms.as_bytes();
        if perms.len() != 4 {
            return Err(fail(MapsParseReason::BadPermissions));
        }
        if perms[1] != b'w' || perms[3] != b'p' || SPECIAL_MAPPINGS.contains(&name.as_str()) {
            continue;
        }
        let (start, end) = range
            .split_once('-')
            .and_then(|(s, e)| Some((hex(s)?, hex(e)?)))
            .filter(|(s, e)| s < e)
            .ok_or_else(|| fail(MapsParseReason::BadAddressRange))?;
        if start % page_size != 0 || end % page_size != 0 {
            return Err(fail(MapsParseReason::Unaligned));
        }
        let offset = hex(offset).ok_or_else(|| fail(MapsParseReason::BadNumber))?;
        let device = device
            .split_once(':')
            .and_then(|(major, minor)| Some((hex(major)? << 32) | hex(minor)?))
            .ok_or_else(|| fail(MapsParseReason::BadNumber))?;
        let inode: u64 = inode
            .parse()
            .map_err(|_| fail(MapsParseReason::BadNumber))?;
        let start = VirtualPage(start / page_size);
        let backing = if inode == 0 {
            Backing::Anonymous
        } else {
            Backing::File {
                device,
                inode,
                page_delta: (offset / page_size) as i64 - start.0 as i64,
            }
        };
        ranges.push(WritableRange {
            start,
            end: VirtualPage(end / page_size),
            backing,
            name,
        });
    }
    Ok(ranges)
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_writable_private_mappings() {
        let text = "\
00400000-00401000 r-xp 00000000 08:01 42 /bin/x
00600000-00601000 rw-p 00000000 08:01 42 /bin/x
00601000-00602000 rw-s 00000000 00:05 7 /dev/shm/y
00700000-00800000 rw-p 00000000 00:00 0 [heap]
7ffd00000000-7ffd00002000 rw-p 00000000 00:00 0 [stack]
7ffd00010000-7ffd00012000 r--p 00000000 00:00 0 [vvar]
";
        let ranges = parse_writable_ranges(text, 4096).unwrap();
        let names: Vec<_> = ranges.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["/bin/x", "[heap]", "[stack]"]);
        assert_eq!(ranges[1].pages(), 256);
        assert_eq!(
            ranges[0].backing,
            Backing::File {
                device: 8 << 32 | 1,
                inode: 42,
                page_delta: -0x600
            }
        );
    }

    #[test]
    fn pieces_of_one_file_mapping_share_a_backing() {
        let text = "\
00600000-00601000 rw-p 00010000 08:01 42 /lib/z
00601000-00603000 rw-p 00011000 08:01 42 /lib/z
";
        let ranges = parse_writable_ranges(text, 4096).unwrap();
        assert_eq!(ranges[0].backing, ranges[1].backing);
    }

    #[test]
    fn names_with_spaces_are_kept_whole() {
        let text = "00600000-00601000 rw-p 00000000 08:01 42 /tmp/a b (deleted)\n";
        let ranges = parse_writable_ranges(text, 4096).unwrap();
        assert_eq!(ranges[0].name, "/tmp/a b (deleted)");
    }

    #[test]
    fn rejects_malformed_lines_with_the_reason() {
        for (line, reason) in [
            ("00600000-00601000 rw-p", MapsParseReason::MissingField),
            (
                "00601000-00600000 rw-p 0 08:01 1",
                MapsParseReason::BadAddressRange,
            ),
            (
                "zz-00600000 rw-p 0 08:01 1",
                MapsParseReason::BadAddressRange,
            ),
            (
                "00600000-00601000 rw 0 08:01 1",
                MapsParseReason::BadPermissions,
            ),
            (
                "00600000-00601000 rw-p 0 0801 1",
                MapsParseReason::BadNumber,
            ),
            (
                "00600000-00601000 rw-p 0 08:01 x",
                MapsParseReason::BadNumber,
            ),
            (
                "00600010-00601000 rw-p 0 08:01 1",
                MapsParseReason::Unaligned,
            ),
        ] {
            let error = parse_writable_ranges(line, 4096).unwrap_err();
            assert_eq!(error.reason, reason, "{line}");
            assert_eq!(error.line_number, 1);
        }
    }
}
