//! The XBZRLE encoder: the changed runs written as `(zrun, nzrun, bytes)` pairs.

use super::changes::{RunVisitor, for_each_changed_run};
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

/// Writes the pairs of every changed run into `out`, Compact's 1-byte gaps absorbed when
/// `COMPACT`, and returns the bytes written, whether anything changed, and whether unchanged
/// bytes follow the last changed run. One copy of the loop per mode, so the per-run work has
/// no mode test.
#[inline(always)]
fn encode_runs<const COMPACT: bool>(
    old: &[u8],
    new: &[u8],
    out: &mut [u8],
) -> Result<(usize, bool, bool), XbzrleGaveUp> {
    let mut runs = RunEncoder::<COMPACT> {
        writer: Writer {
            out,
            written: 0,
            new,
        },
        old,
        done: 0,
    };
    for_each_changed_run(old, new, COMPACT, &mut runs)?;
    // Nothing changed exactly when `done` never moved: every changed run ends past 0.
    Ok((runs.writer.written, runs.done > 0, runs.done < new.len()))
}

/// The encoder's state while it is given the changed runs in order.
struct RunEncoder<'a, const COMPACT: bool> {
    writer: Writer<'a>,
    old: &'a [u8],
    /// End of the last changed byte described so far.
    done: usize,
}

impl<const COMPACT: bool> RunVisitor for RunEncoder<'_, COMPACT> {
    type Error = XbzrleGaveUp;

    /// Writes the pair of the changed run `start..end`.
    #[inline(always)]
    fn run(&mut self, start: usize, end: usize) -> Result<(), XbzrleGaveUp> {
        if start - self.done > MAX_RUN {
            self.split_gap(start)?;
        }
        let gap = start - self.done;
        let len = end - start;
        self.done = end;
        if len > MAX_RUN {
            return self.split_run(gap, start, end);
        }
        self.writer.pair(gap, start, len)
    }
}

impl<const COMPACT: bool> RunEncoder<'_, COMPACT> {
    /// Splits the unchanged run before `start`, longer than [`MAX_RUN`]: rewrites one
    /// unchanged byte as a changed run of 1 every [`MAX_RUN`] bytes, leaving at least one
    /// unchanged byte before the next changed run. Only pages larger than 16 KiB need it.
    #[cold]
    #[inline(never)]
    fn split_gap(&mut self, start: usize) -> Result<(), XbzrleGaveUp> {
        while start - self.done > MAX_RUN {
            let skip = MAX_RUN.min(start - self.done - 2);
            self.writer.pair(skip, self.done + skip, 1)?;
            self.done += skip + 1;
        }
        Ok(())
    }

    /// Writes a changed run `start..end` longer than [`MAX_RUN`], after `gap` unchanged bytes.
    /// QEMU cannot; Compact's run is then made of shorter ones joined by absorbed 1-byte gaps,
    /// and is cut at those gaps into pieces that fit, each no larger than the runs it joins.
    #[cold]
    #[inline(never)]
    fn split_run(
        &mut self,
        mut gap: usize,
        mut start: usize,
        end: usize,
    ) -> Result<(), XbzrleGaveUp> {
        if !COMPACT {
            return Err(XbzrleGaveUp);
        }
        while end - start > MAX_RUN {
            // The last unchanged byte the piece can stop at; none: a changed run too long.
            let cut = (start + 1..=start + MAX_RUN)
                .rev()
                .find(|&i| self.old[i] == self.writer.new[i])
                .ok_or(XbzrleGaveUp)?;
            self.writer.pair(gap, start, cut - start)?;
            (gap, start) = (1, cut + 1);
        }
        self.writer.pair(gap, start, end - start)
    }
}

/// Writes pairs into the output.
struct Writer<'a> {
    out: &'a mut [u8],
    written: usize,
    new: &'a [u8],
}

/// Room for two two-byte lengths and a short run.
const ROOM: usize = 4 + SHORT_RUN;

impl Writer<'_> {
    /// Writes the pair `zrun`, then the changed run `new[start..start + len]`; gives up when
    /// it does not fit.
    #[inline(always)]
    fn pair(&mut self, zrun: usize, start: usize, len: usize) -> Result<(), XbzrleGaveUp> {
        let (lengths, size) = uleb::pair(zrun, len);
        if len <= SHORT_RUN
            && self.written + ROOM <= self.out.len()
            && start + SHORT_RUN <= self.new.len()
        {
            // The common case of scattered changes, with room to spare: the lengths as one
            // 4-byte store and the bytes as one 16-byte copy (what lies past the pair is
            // overwritten by the next pair or lies past the delta).
            let out = &mut self.out[self.written..self.written + ROOM];
            out[..4].copy_from_slice(&lengths.to_le_bytes());
            out[size..size + SHORT_RUN].copy_from_slice(&self.new[start..start + SHORT_RUN]);
            self.written += size + len;
            return Ok(());
        }
        self.long_pair(lengths, size, start, len)
    }

    /// [`Writer::pair`] for a long run, or near the end of the page or the output.
    #[inline(never)]
    fn long_pair(
        &mut self,
        lengths: u32,
        size: usize,
        start: usize,
        len: usize,
    ) -> Result<(), XbzrleGaveUp> {
        let need = size + len;
        if self.written + need > self.out.len() {
            return Err(XbzrleGaveUp);
        }
        let out = &mut self.out[self.written..self.written + need];
        out[..size].copy_from_slice(&lengths.to_le_bytes()[..size]);
        out[size..].copy_from_slice(&self.new[start..start + len]);
        self.written += need;
        Ok(())
    }
}

/// Changed runs up to this length are copied with one fixed-size move.
const SHORT_RUN: usize = 16;
