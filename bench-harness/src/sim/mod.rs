//! The migration simulator: a deterministic discrete-event replay of a dirty-page trace under
//! one page-selection strategy over one link.
//!
//! - [`link`]: the link (bandwidth, round-trip time) and the clock it drives: simulated time
//!   advances by bytes / bandwidth, and by a round trip where the protocol waits for one.
//! - [`timeline`]: a first pass over the trace (epoch times, pages written).
//! - [`guest`]: the source VM: its clock follows simulated time (slower when throttled, stopped
//!   when suspended); epochs land at their timestamps, so pages get dirty *during* a round;
//!   the trace's epochs are replayed from the first when the migration outlasts it, on the
//!   memory as it is then (no return to the initial image: [`guest`] says why).
//! - [`sender`]: the send path: the real [`pagewire_codec::Encoder`] on the pages' current
//!   contents (or a stated size model for content-less traces), records in real PAGE_BATCH
//!   frames, bytes charged to the link.
//! - [`wire`]: the sizes of every other frame of the protocol, from the real frames.
//! - [`metrics`]: what a run measured ([`RunResult`]).
//! - [`run`]: [`simulate`], the driver: it calls the strategy through
//!   [`pagewire_codec::select::Strategy`] exactly as that trait documents.
//! - [`mod@lockstep`]: the seed papers' round-synchronous model (one trace epoch per round, no
//!   clock), for set-ups the time-driven driver cannot reproduce.
//!
//! Time line of a run: the source's HELLO and a round trip (the destination's HELLO and
//! RESERVATION); live rounds as the strategy plans them, each an ITERATION_START, page batches
//! and an ITERATION_END; then either stop-and-copy (SUSPEND, an iteration with the remaining
//! pages and those written since the last harvest, the DEVICE_STATE, the COMMIT_DIGEST, a
//! round trip for the COMMIT_ANSWER, ACTIVATE: that is the downtime) or post-copy (SUSPEND,
//! DEVICE_STATE, the deferred-pages BITMAP, POSTCOPY_BEGIN, a round trip, the guest resumes at
//! the destination; then an iteration pushing the missing pages, where a guest write to a
//! missing page is a fault; then the commit).
//!
//! # Strategies yes, sessions not yet
//! The driver runs the same strategy code as the live transport, and every frame it charges
//! is sized by the codec's own frame encoder; it does not run the session state machines
//! (`pagewire_codec::session`). Their public API would allow it for strategies that end in
//! stop-and-copy: poll each stream a batch at a time, charge the bytes to the [`LinkClock`],
//! hand the destination's frames back a round trip later, land the trace's epochs between
//! polls (`memory_mut` and `mark_dirty`), answer `SuspendRequested` with `suspended`, and
//! compare both memories at the end. What stands in the way of switching:
//! - content-less traces (the size model: `sim_scale`, `pagewire scenarios`) have no bytes
//!   for a session to read; the sessions would send them as zero runs;
//! - memory: a session owns its guest memory and reads it through `&self`, while the trace
//!   image ([`crate::trace::TraceReader::page`]) needs `&mut` (it decodes lazily), so the
//!   guest needs a second full copy or an adapter with interior mutability, and the
//!   destination a third: two to three times the memory per run, times rayon's parallel runs;
//! - post-copy (and hybrid, which ends in it): the sessions run it, but the destination's
//!   guest would have to be driven too (its writes after POSTCOPY_BEGIN, a fault through
//!   `DestinationSession::fault` for each write to a missing page, the stall until
//!   `Event::PageArrived`), where this driver charges a fault a round trip and the page
//!   (no longer an obstacle in itself, only more to drive);
//! - metrics: the sessions count bytes per stream, not page data against control, nor the
//!   per-page resend costs and per-round figures [`RunResult`] reports; that needs either
//!   decoding the session's frames again or new counters in `SourceStats` (a public API
//!   change);
//! - the session plans the next round when the round's last batch is encoded, not when it
//!   has crossed the link: with a poll budget of one batch the two differ by one batch.

pub mod guest;
pub mod link;
pub mod lockstep;
pub mod metrics;
pub mod run;
pub mod sender;
pub mod timeline;
pub mod wire;

pub use guest::Guest;
pub use link::{LinkClock, LinkSpec};
pub use lockstep::{LockstepError, LockstepResult, lockstep};
pub use metrics::{EncoderSummary, RoundStat, RunResult};
pub use run::{SimConfig, SimError, geometry_of, simulate, simulate_with};
pub use timeline::Timeline;
pub use wire::WireFrames;
