//! The migration simulator: a deterministic discrete-event replay of a dirty-page trace under
//! one page-selection strategy over one link.
//!
//! - [`link`]: the link (bandwidth, round-trip time) and the clock it drives: simulated time
//!   advances by bytes / bandwidth, and by a round trip where the protocol waits for one.
//! - [`timeline`]: a first pass over the trace (epoch times, pages written).
//! - [`guest`]: the source VM: its clock follows simulated time (slower when throttled, stopped
//!   when suspended); epochs land at their timestamps, so pages get dirty *during* a round;
//!   the trace is replayed from its start when the migration outlasts it.
//! - [`sender`]: the send path: the real [`pagewire_codec::Encoder`] on the pages' current
//!   contents (or a stated size model for content-less traces), records in real PAGE_BATCH
//!   frames, bytes charged to the link.
//! - [`wire`]: the sizes of every other frame of the protocol, from the real frames.
//! - [`metrics`]: what a run measured ([`RunResult`]).
//! - [`run`]: [`simulate`], the driver: it calls the strategy through
//!   [`pagewire_codec::select::Strategy`] exactly as that trait documents.
//!
//! Time line of a run: the source's HELLO and a round trip (the destination's HELLO and
//! RESERVATION); live rounds as the strategy plans them, each an ITERATION_START, page batches
//! and an ITERATION_END; then either stop-and-copy (SUSPEND, an iteration with the remaining
//! pages and those written since the last harvest, the DEVICE_STATE, the COMMIT_DIGEST, a
//! round trip for the COMMIT_ANSWER, ACTIVATE: that is the downtime) or post-copy (SUSPEND,
//! DEVICE_STATE, the deferred-pages BITMAP, POSTCOPY_BEGIN, a round trip, the guest resumes at
//! the destination; then an iteration pushing the missing pages, where a guest write to a
//! missing page is a fault; then the commit).

pub mod guest;
pub mod link;
pub mod metrics;
pub mod run;
pub mod sender;
pub mod timeline;
pub mod wire;

pub use guest::Guest;
pub use link::{LinkClock, LinkSpec};
pub use metrics::{EncoderSummary, RoundStat, RunResult};
pub use run::{SimConfig, SimError, geometry_of, simulate, simulate_with};
pub use timeline::Timeline;
pub use wire::WireFrames;
