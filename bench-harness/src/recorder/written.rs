//! One scan with exact write tracking: register new ranges, then per range read the pages the
//! kernel reports written, and record discarded pages as zeroed. Ranges the kernel will not
//! track are content-diffed instead, and so is everything in the initial scan (which also
//! write-protects every tracked range, so the first epoch holds exactly what was written
//! after it).

use std::io;
use std::time::Instant;

use pagewire_codec::PageNumber;

use super::layout::Layout;
use super::maps::WritableRange;
use super::snapshot::{ScanCounts, ScanError, Scanner, is_vanished_range};
use super::uffd::{PageRun, RangeTracking, WriteTracker};

/// Reusable buffers of page runs: written, and absent from RAM.
#[derive(Debug, Default)]
pub(crate) struct RunBuffers {
    written: Vec<PageRun>,
    absent: Vec<PageRun>,
}

/// Scans `ranges` with `tracker`.
pub(crate) fn scan_written(
    tracker: &mut WriteTracker,
    scanner: &mut Scanner,
    ranges: &[WritableRange],
    layout: &mut Layout,
    runs: &mut RunBuffers,
    initial: bool,
    emit: &mut dyn FnMut(PageNumber, &[u8]) -> io::Result<()>,
) -> Result<ScanCounts, ScanError> {
    tracker.register(ranges);
    let mut counts = ScanCounts::default();
    let (mut tracked, mut vanished) = (0, 0);
    for range in ranges {
        let tracking = if tracker.is_tracked(range) {
            tracked += 1;
            let started = Instant::now();
            let taken = tracker.take_written(range, &mut runs.written);
            scanner.add_kernel_scan(started.elapsed());
            match taken {
                Ok(tracking) => tracking,
                Err(error) if is_vanished_range(&error) => {
                    vanished += 1;
                    continue;
                }
                Err(source) => return Err(pagemap_scan_error(source)),
            }
        } else {
            RangeTracking::Untracked
        };
        if initial || tracking == RangeTracking::Untracked {
            counts.add(scanner.scan(std::slice::from_ref(range), layout, emit)?);
            continue;
        }
        counts.ranges += 1;
        counts.mapped_pages += range.pages();
        counts.add(scanner.record_written(range, &runs.written, layout, emit)?);
        let started = Instant::now();
        let taken = tracker.take_absent(range, &mut runs.absent);
        scanner.add_kernel_scan(started.elapsed());
        match taken {
            Ok(()) => counts.add(scanner.record_discarded(
                range,
                &runs.absent,
                &runs.written,
                layout,
                emit,
            )?),
            Err(error) if is_vanished_range(&error) => {}
            Err(source) => return Err(pagemap_scan_error(source)),
        }
    }
    if tracked > 0 && vanished == tracked {
        // Either the target exited (the caller checks) or it executed another program.
        return Err(ScanError::TrackingLost);
    }
    Ok(counts)
}

fn pagemap_scan_error(source: io::Error) -> ScanError {
    ScanError::Read {
        file: "pagemap (PAGEMAP_SCAN ioctl)",
        source,
    }
}
