//! The XBZRLE encoder: the changed runs written as `(zrun, nzrun, bytes)` pairs.

use super::changes::for_each_changed_run;
use super::uleb::{self, MAX_RUN};
use super::{XbzrleGaveUp, XbzrleMode};

/// Encodes the difference from `old` to `new` into `out`; see the [module docs](super).
///
/// Returns the delta's length (`Ok(0)` when the pages are identical), or [`XbzrleGaveUp`] when
/// the delta would not fit in `out`, a changed run is longer than [`MAX_RUN`] bytes, or the
/// pages differ in length. Bytes of `out` past the returned length (and all of `out` when it
/// gives up) may have been overwritten.
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
    let (written, changed, trailing_unchanged) = match mode {
        XbzrleMode::Qemu => encode_runs::<false>(old, new, out)?,
        XbzrleMode::Compact => encode_runs::<true>(old, new, out)?,
    };
    if !changed {
        // QEMU checks for two bytes of room before it notices that nothing changed.
        let qemu_refuses = mode == XbzrleMode::Qemu && !new.is_empty() && out.len() < 2;
        return if qemu_refuses {
            Err(XbzrleGaveUp)
        } else {
            Ok(0)
        };
    }
    // QEMU gives up unless two bytes of room are left when only unchanged bytes follow.
    if mode == XbzrleMode::Qemu && trailing_unchanged && written + 2 > out.len() {
        return Err(XbzrleGaveUp);
    }
    Ok(written)
}

/// Writes the pairs of every changed run into `out`, absorbing short gaps when `ABSORB`
/// (Compact), and returns the bytes written, whether anything changed, and whether unchanged
/// bytes follow the last changed run. One copy of the loop per mode, so the per-run work has
/// no mode test.
#[inline(always)]
fn encode_runs<const ABSORB: bool>(
    old: &[u8],
    new: &[u8],
    out: &mut [u8],
) -> Result<(usize, bool, bool), XbzrleGaveUp> {
    let mut writer = Writer {
        out,
        written: 0,
        new,
    };
    // The pair not yet written (Compact): it may still absorb the next changed run.
    let mut group: Option<Group> = None;
    // End of the last changed byte described so far.
    let mut done = 0;
    for_each_changed_run(old, new, |start, end| {
        let mut gap = start - done;
        while gap > MAX_RUN {
            // Split a long unchanged run: rewrite one unchanged byte as a changed run of 1,
            // leaving at least one unchanged byte before the next changed run.
            let skip = MAX_RUN.min(gap - 2);
            if ABSORB {
                // The split byte's pair may still absorb the next changed run.
                let split = Group {
                    zrun: skip,
                    start: done + skip,
                    len: 1,
                };
                if let Some(g) = group.replace(split) {
                    writer.pair(g.zrun, g.start, g.len)?;
                }
            } else {
                writer.pair(skip, done + skip, 1)?;
            }
            done += skip + 1;
            gap = start - done;
        }
        let len = end - start;
        if len > MAX_RUN {
            return Err(XbzrleGaveUp);
        }
        done = end;
        if !ABSORB {
            return writer.pair(gap, start, len);
        }
        if let Some(g) = &mut group {
            if worth_absorbing(g.len, gap, len) {
                g.len += gap + len;
                // The group only grows: give up as soon as its bytes alone cannot fit.
                if writer.written + g.len > writer.out.len() {
                    return Err(XbzrleGaveUp);
                }
                return Ok(());
            }
            writer.pair(g.zrun, g.start, g.len)?;
        }
        group = Some(Group {
            zrun: gap,
            start,
            len,
        });
        Ok(())
    })?;
    if let Some(g) = group {
        writer.pair(g.zrun, g.start, g.len)?;
    }
    // Nothing changed exactly when `done` never moved: every changed run ends past 0.
    Ok((writer.written, done > 0, done < new.len()))
}

/// A `(zrun, nzrun)` pair not yet written: it may still absorb the next changed run.
struct Group {
    zrun: usize,
    start: usize,
    len: usize,
}

/// Writes pairs into the output.
struct Writer<'a> {
    out: &'a mut [u8],
    written: usize,
    new: &'a [u8],
}

impl Writer<'_> {
    /// Writes the pair `zrun`, then the changed run `new[start..start + len]`; gives up when
    /// it does not fit.
    #[inline(always)]
    fn pair(&mut self, zrun: usize, start: usize, len: usize) -> Result<(), XbzrleGaveUp> {
        /// Room for two two-byte lengths and a short run.
        const ROOM: usize = 4 + SHORT_RUN;
        if len <= SHORT_RUN
            && self.written + ROOM <= self.out.len()
            && start + SHORT_RUN <= self.new.len()
        {
            // The common case of scattered changes, with room to spare: one fixed-size copy
            // (the bytes past `len` are overwritten by the next pair or lie past the delta).
            let out = &mut self.out[self.written..self.written + ROOM];
            let mut at = uleb::write(out, zrun);
            at += uleb::write(&mut out[at..], len);
            out[at..at + SHORT_RUN].copy_from_slice(&self.new[start..start + SHORT_RUN]);
            self.written += at + len;
            return Ok(());
        }
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
}

/// Changed runs up to this length are copied with one fixed-size move.
const SHORT_RUN: usize = 16;

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
    if merged < 0x80 {
        // Every length is one byte: the gap's bytes against one length saved.
        return gap == 1;
    }
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
