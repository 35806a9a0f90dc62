//! The two-fold pre-copy paper's set-up: VMs of 128, 256, 512 and 1024 MiB running a
//! memory workload with a skewed working set. The paper gives the VM sizes, not the access
//! law; we model the workload as a Zipf(0.9) hot/cold writer (many pages written rarely, a
//! few often), which is what its first pass (skip pages dirtied in the log window) and its
//! count threshold act on.

use pagewire_codec::PageCount;

use super::hot_cold::{HotCold, HotColdShape};

/// The two-fold set-up for a VM of `page_count` pages writing `writes_per_epoch` times per
/// epoch.
pub fn two_fold(page_count: PageCount, writes_per_epoch: u64) -> HotCold {
    HotCold::new(
        page_count,
        writes_per_epoch,
        HotColdShape::Zipf { exponent: 0.9 },
    )
    .named("two-fold")
}
