//! The XBZRLE encoder: the runs of [`ChangeMap`] written as `(zrun, nzrun, bytes)` pairs.

use super::changes::ChangeMap;
use super::uleb::{self, MAX_RUN};
use super::{XbzrleGaveUp, XbzrleMode};

/// Encodes the difference from `old` to `new` into `out`; see the [module docs](super).
///
/// Returns the delta's length (`Ok(0)` when the pages are identical), or [`XbzrleGaveUp`] when
/// the delta would not fit in `out`, a changed run is longer than [`MAX_RUN`] bytes, or the
/// pages differ in length.
///
/// ```
/// use pagewire_codec::xbzrle::{self, XbzrleMode};
///
/// let old = vec![0u8; 4096];
/// let mut new = old.clone();
/// new[4095] = 1;
/// let mut out = [0u8; 4096];
/// let n = xbzrle::encode(&old, &new, &mut out, XbzrleMode::Qemu).unwrap();
/// assert_eq!(&out[..n], &[0xff, 0x1f, 0x01, 0x01]); // skip 4095 bytes, then 1 byte: 0x01
///
/// // Identical pages need no delta; a fully rewritten page does not fit.
/// assert_eq!(xbzrle::encode(&old, &old, &mut out, XbzrleMode::Compact), Ok(0));
/// let random: Vec<u8> = (0..4096u32).map(|i| (i % 251 + 1) as u8).collect();
/// assert!(xbzrle::encode(&old, &random, &mut out, XbzrleMode::Compact).is_err());
/// ```
pub fn encode(
    old: &[u8],
    new: &[u8],
    out: &mut [u8],
    mode: XbzrleMode,
) -> Result<usize, XbzrleGaveUp> {
    if old.len() != new.len() {
        return Err(XbzrleGaveUp);
    }
    let len = new.len();
    let mut map = ChangeMap::new(old, new);
    let mut start = map.next(0, true);
    if start == len {
        // QEMU checks for two bytes of room before it notices that nothing changed.
        let qemu_refuses = mode == XbzrleMode::Qemu && len > 0 && out.len() < 2;
        return if qemu_refuses {
            Err(XbzrleGaveUp)
        } else {
            Ok(0)
        };
    }
    let mut writer = Writer {
        out,
        written: 0,
        new,
        absorb_gaps: mode == XbzrleMode::Compact,
        group: None,
    };
    // End of the last changed byte described so far.
    let mut done = 0;
    loop {
        let end = map.next(start, false);
        let mut gap = start - done;
        while gap > MAX_RUN {
            // Split a long unchanged run: rewrite one unchanged byte as a changed run of 1,
            // leaving at least one unchanged byte before the next changed run.
            let skip = MAX_RUN.min(gap - 2);
            writer.run(skip, done + skip, 1)?;
            done += skip + 1;
            gap = start - done;
        }
        writer.run(gap, start, end - start)?;
        done = end;
        if end == len {
            break;
        }
        start = map.next(end, true);
        if start == len {
            break;
        }
    }
    let trailing_unchanged = done < len;
    writer.finish(mode == XbzrleMode::Qemu && trailing_unchanged)
}

/// A `(zrun, nzrun)` pair not yet written: it may still absorb the next changed run.
struct Group {
    zrun: usize,
    start: usize,
    len: usize,
}

/// Writes pairs into the output, absorbing short gaps when that is allowed and saves bytes.
struct Writer<'a> {
    out: &'a mut [u8],
    written: usize,
    new: &'a [u8],
    absorb_gaps: bool,
    group: Option<Group>,
}

impl Writer<'_> {
    /// Adds the changed run `new[start..start + len]`, `gap` unchanged bytes after the previous
    /// one (or after the page start).
    #[inline]
    fn run(&mut self, gap: usize, start: usize, len: usize) -> Result<(), XbzrleGaveUp> {
        if len > MAX_RUN {
            return Err(XbzrleGaveUp);
        }
        if let Some(group) = &mut self.group {
            if self.absorb_gaps && worth_absorbing(group.len, gap, len) {
                group.len += gap + len;
                // The group only grows: give up as soon as its bytes alone cannot fit.
                if self.written + group.len > self.out.len() {
                    return Err(XbzrleGaveUp);
                }
                return Ok(());
            }
            self.flush()?;
        }
        self.group = Some(Group {
            zrun: gap,
            start,
            len,
        });
        Ok(())
    }

    /// Writes the pending group, if any.
    #[inline]
    fn flush(&mut self) -> Result<(), XbzrleGaveUp> {
        let Some(Group { zrun, start, len }) = self.group.take() else {
            return Ok(());
        };
        let need = uleb::len(zrun) + uleb::len(len) + len;
        if self.written + need > self.out.len() {
            return Err(XbzrleGaveUp);
        }
        let out = &mut self.out[self.written..];
        let mut at = uleb::write(out, zrun);
        at += uleb::write(&mut out[at..], len);
        out[at..at + len].copy_from_slice(&self.new[start..start + len]);
        self.written += need;
        Ok(())
    }

    /// Writes the last group and returns the delta's length. With `two_spare_bytes`, gives up
    /// unless two bytes of room are left (QEMU's check before it finds the unchanged tail).
    fn finish(mut self, two_spare_bytes: bool) -> Result<usize, XbzrleGaveUp> {
        self.flush()?;
        if two_spare_bytes && self.written + 2 > self.out.len() {
            return Err(XbzrleGaveUp);
        }
        Ok(self.written)
    }
}

/// Whether writing `gap` unchanged bytes as part of one changed run (from runs of `before` and
/// `after` changed bytes) is worth it against the separate `nzrun, zrun, nzrun` lengths.
///
/// Absorbing is chosen when it is smaller, and on a tie when the merged run is the first to
/// need a two-byte length: from there on every 1-byte gap absorbed saves a byte, where
/// splitting would pay a new pair's lengths again. Each step is no larger than QEMU's choice
/// (never absorb), so the whole delta is never larger than QEMU's.
#[inline]
fn worth_absorbing(before: usize, gap: usize, after: usize) -> bool {
    let merged = before + gap + after;
    if merged > MAX_RUN {
        return false;
    }
    let absorbed = gap + uleb::len(merged);
    let separate = uleb::len(before) + uleb::len(gap) + uleb::len(after);
    absorbed < separate || (absorbed == separate && uleb::len(before) < uleb::len(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbs_only_gaps_that_save_bytes() {
        assert!(worth_absorbing(1, 1, 1)); // 1 + 1 < 3
        assert!(!worth_absorbing(1, 2, 1)); // a tie: 2 + 1 == 3
        assert!(worth_absorbing(127, 1, 1)); // a tie, and the merged run needs 2 length bytes
        assert!(worth_absorbing(200, 2, 200)); // 2 + 2 < 5
        assert!(!worth_absorbing(200, 3, 200)); // a tie: 3 + 2 == 5
        assert!(!worth_absorbing(MAX_RUN - 1, 1, 1)); // would pass the longest run
    }
}
