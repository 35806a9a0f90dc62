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
//!   contents (or a stated size model for content-less traces), framing and control-signal
//!   overhead, bytes charged to the link.
//! - [`metrics`]: what a run measured ([`RunResult`]).
//! - [`run`]: [`simulate`], the driver: it calls the strategy through
//!   [`pagewire_codec::select::Strategy`] exactly as that trait documents.
//!
//! Time line of a run: one round trip (hello, reservation); live rounds as the strategy plans
//! them; then either stop-and-copy (suspend, send the remaining pages and the pages written
//! since the last harvest, then the device state, then a round trip for the activation: that
//! is the downtime) or post-copy (suspend, send the device state, a round trip, resume at the
//! destination, then push the missing pages; a guest write to a missing page is a fault).

pub mod guest;
pub mod link;
pub mod metrics;
pub mod run;
pub mod sender;
pub mod timeline;

pub use guest::Guest;
pub use link::{LinkClock, LinkSpec};
pub use metrics::{EncoderSummary, RoundStat, RunResult};
pub use run::{SimConfig, SimError, simulate};
pub use timeline::Timeline;
