//! [`SourceConfig`] and [`DestinationConfig`]: how a session is set up.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use crate::EncodingSet;
use crate::encoder::{CostPolicy, DEFAULT_CACHE_BYTES};
use crate::frame::{Limits, MigrationId};
use crate::select::{LinkEstimate, Strategy};

/// The default number of resends after mismatching digests before a side gives up.
pub const DEFAULT_MAX_COMMIT_ROUNDS: u32 = 3;

/// How long a destination keeps a migration whose link dropped, by default, waiting for the
/// source to resume it (spec/wire.md §5.3): twice the transport's default idle timeout, so
/// a source that notices the loss as late as the destination still has time to reconnect.
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(60);

/// How a [`SourceSession`](crate::session::SourceSession) is set up. The memory's page size
/// and page count come from the [`SourceMemory`](crate::memory::SourceMemory) it reads.
pub struct SourceConfig {
    /// The migration's name; the destination accepts only the one it reserved for.
    pub migration_id: MigrationId,
    /// A name of the VM for people (at most 255 bytes; longer names are cut).
    pub vm_name: String,
    /// The encodings this side offers (zero runs and raw are always added).
    pub encodings: EncodingSet,
    /// How many page streams carry page batches, besides the control stream.
    pub page_streams: NonZeroU16,
    /// The page-selection strategy (see [`crate::select::registry`]).
    pub strategy: Box<dyn Strategy>,
    /// The most pages the session asks the strategy for, and puts in one batch.
    pub max_batch_pages: NonZeroU32,
    /// Bytes of XBZRLE cache, shared evenly by the page streams' encoders. Once an encoder's
    /// share is full, only resends enter it
    /// ([`CacheAdmission::ResendsOnceFull`](crate::encoder::CacheAdmission::ResendsOnceFull)).
    pub cache_bytes: u64,
    /// How the encoder ranks candidate encodings.
    pub policy: CostPolicy,
    /// Pages per commit digest range (raised if the memory needs more ranges than a frame
    /// holds).
    pub pages_per_range: NonZeroU32,
    /// Mismatching commit answers tolerated before the source aborts with DIGEST_MISMATCH.
    pub max_commit_rounds: u32,
    /// Abort after this long without a byte in or out (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// What this side accepts from the destination.
    pub limits: Limits,
    /// The link estimate handed to the strategy (update it with `set_link_estimate`).
    pub link: LinkEstimate,
    /// Whether to announce the resume feature: after a dropped link the session then keeps
    /// the migration ([`Event::ConnectionInterrupted`](crate::session::Event)) and can
    /// continue it on a new connection (`SourceSession::resume`). Costs 4 bytes per page.
    pub resume: bool,
}

impl SourceConfig {
    /// Defaults: every encoding, one page stream, 1024 pages per batch, a 64 MiB cache, the
    /// smallest-bytes policy, 4096 pages per digest range, 3 commit rounds, no idle timeout,
    /// default limits, unknown link, no resume.
    pub fn new(migration_id: MigrationId, strategy: Box<dyn Strategy>) -> SourceConfig {
        SourceConfig {
            migration_id,
            vm_name: String::new(),
            encodings: EncodingSet::all_known(),
            page_streams: NonZeroU16::MIN,
            strategy,
            max_batch_pages: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
            cache_bytes: DEFAULT_CACHE_BYTES,
            policy: CostPolicy::SmallestBytes,
            pages_per_range: NonZeroU32::new(4096).unwrap_or(NonZeroU32::MIN),
            max_commit_rounds: DEFAULT_MAX_COMMIT_ROUNDS,
            idle_timeout: None,
            limits: Limits::default(),
            link: LinkEstimate::UNKNOWN,
            resume: false,
        }
    }
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("migration_id", &self.migration_id)
            .field("strategy", &self.strategy.name())
            .field("page_streams", &self.page_streams)
            .finish_non_exhaustive()
    }
}

/// How a [`DestinationSession`](crate::session::DestinationSession) is set up. The memory it
/// writes *is* the reservation: its page size and page count are the only ones accepted.
#[derive(Clone, Debug)]
pub struct DestinationConfig {
    /// The migration this destination reserved for; a hello naming another is refused.
    pub migration_id: MigrationId,
    /// A name of the VM for people (at most 255 bytes; longer names are cut).
    pub vm_name: String,
    /// The encodings this side accepts (zero runs and raw are always added).
    pub encodings: EncodingSet,
    /// The most page streams the source may open.
    pub max_page_streams: u16,
    /// Mismatching commit digests tolerated before the destination aborts.
    pub max_commit_rounds: u32,
    /// Abort after this long without a byte in or out (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// What this side accepts from the source.
    pub limits: Limits,
    /// The most bytes a stream may buffer while an iteration barrier holds it back.
    pub max_held_bytes: usize,
    /// Whether to announce the post-copy feature: the source may then start the VM here
    /// before every page arrived ([`Event::PostCopyStarted`](crate::session::Event)), and a
    /// commit digest that then disagrees cannot be repaired.
    pub postcopy: bool,
    /// Post-copy: the most pages requested and not yet arrived at a time (a PAGE_REQUEST
    /// names at most the protocol's 4096 pages; more are split).
    pub max_outstanding_faults: usize,
    /// Whether to announce the resume feature: after a dropped link in iterative copy,
    /// stop-and-copy or commit (before an agreeing answer), the session then keeps the
    /// migration and answers the source's resume HELLO on a new connection with RESUME.
    /// Costs two bits per page.
    pub resume: bool,
    /// How long an interrupted migration waits for its source to resume it before it is
    /// aborted ([`SessionError::NotResumed`](crate::session::SessionError)).
    pub resume_grace: Duration,
}

impl DestinationConfig {
    /// Defaults: every encoding, up to 16 page streams, 3 commit rounds, no idle timeout,
    /// default limits, 8 MiB held per stream, post-copy announced, 4096 outstanding faults,
    /// no resume ([`DEFAULT_RESUME_GRACE`] when it is turned on).
    pub fn new(migration_id: MigrationId) -> DestinationConfig {
        DestinationConfig {
            migration_id,
            vm_name: String::new(),
            encodings: EncodingSet::all_known(),
            max_page_streams: 16,
            max_commit_rounds: DEFAULT_MAX_COMMIT_ROUNDS,
            idle_timeout: None,
            limits: Limits::default(),
            max_held_bytes: 8 << 20,
            postcopy: true,
            max_outstanding_faults: 4096,
            resume: false,
            resume_grace: DEFAULT_RESUME_GRACE,
        }
    }
}
