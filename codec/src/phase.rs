//! Migration phases and which frames each phase allows, per direction.
//!
//! A sans-IO checker: [`Phase::allows`] answers whether a frame type may travel in a direction
//! in a phase; [`PhaseTracker`] follows a whole migration frame by frame (both directions, in
//! the order one side sees them) and also checks what depends on frame contents: hello roles,
//! negotiated features, iteration numbering and counts, device-state chunks, and that only an
//! agreeing commit answer opens the way to activation. The source and destination sessions
//! feed it every frame they send and receive.
//!
//! ```text
//!  Hello --S:HELLO--> DestinationHello --D:HELLO--> Reservation
//!  Reservation --D:RESERVATION(accepted)--> IterativeCopy      (D:RESERVATION(refused) --> Refused)
//!  Reservation --D:RESUME (resume hello, RESUME feature)--> IterativeCopy, or PostCopy
//!    when the destination's HELLO said its guest runs (POSTCOPY_RUNNING)
//!  IterativeCopy --S:SUSPEND--> StopAndCopy
//!  StopAndCopy --S:POSTCOPY_BEGIN (POSTCOPY feature)--> PostCopy
//!  StopAndCopy | PostCopy --S:COMMIT_DIGEST--> Commit
//!  Commit --D:COMMIT_ANSWER(mismatch)--> Commit (source re-sends, then a new COMMIT_DIGEST)
//!  Commit --D:COMMIT_ANSWER(agree)--> Committed --S:ACTIVATE--> Activation --D:ACTIVATED--> Done
//!  any phase --ABORT (either side)--> Aborted   (Done stays Done)
//! ```
//!
//! A lost connection is not a frame: the sessions decide whether a migration survives it
//! (spec/wire.md §5.3) and then track the new connection with a new tracker, from `Hello`.
//!
//! With several page streams, a session feeds ITERATION_END only once the batches it counts
//! have all been fed, and holds a batch until its ITERATION_START has been fed.
//!
//! ```
//! use pagewire_codec::frame::{Frame, Hello, MigrationId, ReservationAnswer, Role};
//! use pagewire_codec::phase::{Direction, Phase, PhaseTracker};
//! use pagewire_codec::{PageCount, PageSize};
//! let source = Hello::new(Role::Source, MigrationId([1; 16]), PageSize::KIB_4, PageCount(16));
//! let destination = Hello { role: Role::Destination, ..source.clone() };
//! let mut tracker = PhaseTracker::new();
//! tracker.on_frame(Direction::SourceToDestination, &Frame::Hello(source)).unwrap();
//! tracker.on_frame(Direction::DestinationToSource, &Frame::Hello(destination)).unwrap();
//! let phase = tracker.on_frame(Direction::DestinationToSource, &Frame::Reservation(ReservationAnswer::Accepted));
//! assert_eq!(phase, Ok(Phase::IterativeCopy));
//! // Activation before the commit answer agreed is refused.
//! assert!(tracker.on_frame(Direction::SourceToDestination, &Frame::Activate).is_err());
//! ```

use std::fmt;

use crate::error::PeerMisbehaved;
use crate::frame::{
    BitmapFrame, BitmapKind, CommitAnswer, DeviceState, Features, Frame, FrameType, Hello,
    Iteration, ReservationAnswer, Role,
};

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the source to the destination.
    SourceToDestination,
    /// From the destination to the source.
    DestinationToSource,
}

impl Direction {
    /// The role of the side that sends in this direction.
    pub fn sender(self) -> Role {
        match self {
            Direction::SourceToDestination => Role::Source,
            Direction::DestinationToSource => Role::Destination,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::SourceToDestination => "source to destination",
            Direction::DestinationToSource => "destination to source",
        })
    }
}

/// The phases of a migration, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing yet: the source's HELLO comes first.
    Hello,
    /// The source's HELLO is in; the destination's HELLO comes next.
    DestinationHello,
    /// Both HELLOs are in; the destination answers with RESERVATION (or RESUME).
    Reservation,
    /// Pre-copy iterations of page batches while the VM runs at the source.
    IterativeCopy,
    /// The VM is suspended at the source: the last pages and the device state.
    StopAndCopy,
    /// The destination runs the VM; the source pushes the rest and answers page requests.
    PostCopy,
    /// The source sent (or is about to re-send) its memory digest.
    Commit,
    /// The digests agree; the source may activate the destination.
    Committed,
    /// The source sent ACTIVATE; the destination confirms with ACTIVATED.
    Activation,
    /// The destination runs the VM and the source may free it.
    Done,
    /// The destination refused the reservation.
    Refused,
    /// A side aborted.
    Aborted,
}

impl Phase {
    /// Whether a frame of `frame_type` may travel in `direction` in this phase (the checks
    /// that depend on the frame's contents are [`PhaseTracker`]'s).
    ///
    /// ```
    /// use pagewire_codec::frame::FrameType;
    /// use pagewire_codec::phase::{Direction::*, Phase};
    /// assert!(Phase::IterativeCopy.allows(SourceToDestination, FrameType::PAGE_BATCH));
    /// assert!(!Phase::IterativeCopy.allows(DestinationToSource, FrameType::PAGE_BATCH));
    /// assert!(Phase::Hello.allows(DestinationToSource, FrameType::ABORT));
    /// ```
    pub fn allows(self, direction: Direction, frame_type: FrameType) -> bool {
        use Direction::{DestinationToSource as D, SourceToDestination as S};
        use FrameType as T;
        if frame_type == T::ABORT {
            return true;
        }
        let iteration_frames = [T::ITERATION_START, T::PAGE_BATCH, T::ITERATION_END];
        match (self, direction) {
            (Phase::Hello, S) => frame_type == T::HELLO,
            (Phase::DestinationHello, D) => frame_type == T::HELLO,
            (Phase::Reservation, D) => [T::RESERVATION, T::RESUME].contains(&frame_type),
            (Phase::IterativeCopy, S) => {
                iteration_frames.contains(&frame_type)
                    || [T::BITMAP, T::SUSPEND].contains(&frame_type)
            }
            (Phase::StopAndCopy, S) => {
                iteration_frames.contains(&frame_type)
                    || [
                        T::BITMAP,
                        T::DEVICE_STATE,
                        T::POSTCOPY_BEGIN,
                        T::COMMIT_DIGEST,
                    ]
                    .contains(&frame_type)
            }
            (Phase::PostCopy, S) => {
                iteration_frames.contains(&frame_type)
                    || [T::BITMAP, T::COMMIT_DIGEST].contains(&frame_type)
            }
            (Phase::PostCopy, D) => frame_type == T::PAGE_REQUEST,
            (Phase::Commit, S) => {
                iteration_frames.contains(&frame_type) || frame_type == T::COMMIT_DIGEST
            }
            (Phase::Commit, D) => [T::COMMIT_ANSWER, T::PAGE_REQUEST].contains(&frame_type),
            (Phase::Committed, S) => frame_type == T::ACTIVATE,
            (Phase::Activation, D) => frame_type == T::ACTIVATED,
            _ => false,
        }
    }

    /// Whether the migration is over (done, refused or aborted).
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Done | Phase::Refused | Phase::Aborted)
    }
}

/// The progress of the open iteration.
#[derive(Clone, Copy, Debug)]
struct OpenIteration {
    iteration: Iteration,
    batches: u64,
    pages: u64,
}

/// Follows one migration frame by frame and refuses frames that break the phase order.
///
/// On error the tracker is unchanged: the caller aborts (and feeds its own ABORT).
#[derive(Clone, Debug)]
pub struct PhaseTracker {
    phase: Phase,
    source_hello: Option<(Features, bool)>,
    features: Features,
    next_iteration: Iteration,
    open: Option<OpenIteration>,
    device_state: Option<(u64, u64)>,
    outstanding_digest: Option<u64>,
    was_postcopy: bool,
    /// The destination's HELLO answering a resume HELLO said its guest runs (post-copy).
    resumes_postcopy: bool,
}

impl Default for PhaseTracker {
    fn default() -> PhaseTracker {
        PhaseTracker::new()
    }
}

impl PhaseTracker {
    /// A tracker at the start of a migration.
    pub fn new() -> PhaseTracker {
        PhaseTracker {
            phase: Phase::Hello,
            source_hello: None,
            features: Features::empty(),
            next_iteration: Iteration(0),
            open: None,
            device_state: None,
            outstanding_digest: None,
            was_postcopy: false,
            resumes_postcopy: false,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The features both hellos announced (empty before both are in).
    pub fn features(&self) -> Features {
        self.features
    }

    /// The iteration number the next ITERATION_START must carry.
    pub fn next_iteration(&self) -> Iteration {
        self.next_iteration
    }

    /// Checks `frame`, travelling in `direction`, against the phase order, and returns the
    /// phase after it.
    pub fn on_frame(
        &mut self,
        direction: Direction,
        frame: &Frame,
    ) -> Result<Phase, PeerMisbehaved> {
        let frame_type = frame.frame_type();
        if !self.phase.allows(direction, frame_type) {
            return Err(self.unexpected(direction, frame_type));
        }
        let mut next = self.clone();
        next.apply(direction, frame)?;
        *self = next;
        Ok(self.phase)
    }

    fn unexpected(&self, direction: Direction, frame_type: FrameType) -> PeerMisbehaved {
        PeerMisbehaved::UnexpectedFrame {
            frame_type,
            phase: self.phase,
            direction,
        }
    }

    fn apply(&mut self, direction: Direction, frame: &Frame) -> Result<(), PeerMisbehaved> {
        let frame_type = frame.frame_type();
        match frame {
            Frame::Abort(_) => {
                if self.phase != Phase::Done {
                    self.phase = Phase::Aborted;
                }
            }
            Frame::Hello(hello) => self.on_hello(direction, hello)?,
            Frame::Reservation(ReservationAnswer::Accepted) => {
                if self.source_hello.is_some_and(|(_, resume)| resume) {
                    return Err(self.unexpected(direction, frame_type));
                }
                self.phase = Phase::IterativeCopy;
            }
            Frame::Reservation(ReservationAnswer::Refused(_)) => self.phase = Phase::Refused,
            Frame::Resume(resume) => {
                if !self.source_hello.is_some_and(|(_, resume)| resume) {
                    return Err(self.unexpected(direction, frame_type));
                }
                self.require(Features::RESUME, frame_type)?;
                self.next_iteration = resume.next_iteration;
                self.phase = Phase::IterativeCopy;
                if self.resumes_postcopy {
                    // The guest runs at the destination: post-copy goes on. Its device
                    // state was delivered before POSTCOPY_BEGIN, on the lost connection.
                    self.require(Features::POSTCOPY, frame_type)?;
                    self.was_postcopy = true;
                    self.device_state = Some((0, 0));
                    self.phase = Phase::PostCopy;
                }
            }
            Frame::IterationStart(iteration) => {
                self.require_closed(frame_type)?;
                if *iteration != self.next_iteration {
                    return Err(PeerMisbehaved::IterationOutOfOrder {
                        expected: self.next_iteration.0,
                        got: iteration.0,
                    });
                }
                self.open = Some(OpenIteration {
                    iteration: *iteration,
                    batches: 0,
                    pages: 0,
                });
                // Past u64::MAX no iteration can start; the number stays and is refused.
                self.next_iteration = iteration.next().unwrap_or(*iteration);
            }
            Frame::PageBatch(batch) => {
                let open = self.require_open(frame_type, batch.iteration)?;
                open.batches += 1;
                let covered: u64 = batch.records.iter().map(|r| r.body.pages_covered()).sum();
                open.pages = open.pages.saturating_add(covered);
            }
            Frame::IterationEnd(end) => {
                let open = *self.require_open(frame_type, end.iteration)?;
                if (open.batches, open.pages) != (end.batches, end.pages) {
                    return Err(PeerMisbehaved::IterationCountMismatch {
                        iteration: end.iteration.0,
                        declared: (end.batches, end.pages),
                        received: (open.batches, open.pages),
                    });
                }
                self.open = None;
            }
            Frame::Bitmap(BitmapFrame { kind, .. }) => match kind {
                BitmapKind::Dirty => {
                    let iteration = self.open.map_or(self.next_iteration, |open| open.iteration);
                    self.require_open(frame_type, iteration)?;
                }
                BitmapKind::Deferred if self.phase == Phase::StopAndCopy => {
                    self.require(Features::POSTCOPY, frame_type)?;
                }
                _ => {
                    return Err(PeerMisbehaved::UnexpectedBitmap {
                        kind: *kind,
                        phase: self.phase,
                    });
                }
            },
            Frame::Suspend => {
                self.require_closed(frame_type)?;
                self.phase = Phase::StopAndCopy;
            }
            Frame::DeviceState(chunk) => self.on_device_state(chunk)?,
            Frame::PostcopyBegin => {
                self.require(Features::POSTCOPY, frame_type)?;
                self.require_closed(frame_type)?;
                self.require_device_state()?;
                self.was_postcopy = true;
                self.phase = Phase::PostCopy;
            }
            Frame::PageRequest(_) => {
                if !self.was_postcopy {
                    return Err(self.unexpected(direction, frame_type));
                }
            }
            Frame::CommitDigest(digest) => {
                self.require_closed(frame_type)?;
                self.require_device_state()?;
                if self.outstanding_digest.is_some() {
                    return Err(self.unexpected(direction, frame_type));
                }
                self.outstanding_digest = Some(digest.ranges.len() as u64);
                self.phase = Phase::Commit;
            }
            Frame::CommitAnswer(answer) => {
                let Some(range_count) = self.outstanding_digest.take() else {
                    return Err(self.unexpected(direction, frame_type));
                };
                match answer {
                    CommitAnswer::Agree => self.phase = Phase::Committed,
                    CommitAnswer::Mismatch(ranges) => {
                        if let Some(&range) = ranges.iter().find(|r| **r >= range_count) {
                            return Err(PeerMisbehaved::MismatchRangeOutOfRange {
                                range,
                                range_count,
                            });
                        }
                    }
                }
            }
            Frame::Activate => self.phase = Phase::Activation,
            Frame::Activated => self.phase = Phase::Done,
        }
        Ok(())
    }

    fn on_hello(&mut self, direction: Direction, hello: &Hello) -> Result<(), PeerMisbehaved> {
        if hello.role != direction.sender() {
            return Err(PeerMisbehaved::WrongRole { direction });
        }
        match self.source_hello {
            None => {
                self.source_hello = Some((hello.features, hello.resume));
                self.phase = Phase::DestinationHello;
            }
            Some((source_features, resume)) => {
                self.features = source_features.intersection(hello.features);
                self.resumes_postcopy =
                    resume && hello.features.contains(Features::POSTCOPY_RUNNING);
                self.phase = Phase::Reservation;
            }
        }
        Ok(())
    }

    fn on_device_state(&mut self, chunk: &DeviceState) -> Result<(), PeerMisbehaved> {
        let (total, received) = self.device_state.unwrap_or((chunk.total, 0));
        if chunk.total != total || chunk.offset != received {
            return Err(PeerMisbehaved::DeviceStateOutOfOrder {
                expected_offset: received,
                offset: chunk.offset,
                expected_total: total,
                total: chunk.total,
            });
        }
        self.device_state = Some((total, received + chunk.data.len() as u64));
        Ok(())
    }

    fn require_device_state(&self) -> Result<(), PeerMisbehaved> {
        match self.device_state {
            Some((total, received)) if total == received => Ok(()),
            state => {
                let (total, received) = state.unwrap_or((0, 0));
                Err(PeerMisbehaved::DeviceStateIncomplete {
                    received,
                    total: state.map(|_| total),
                })
            }
        }
    }

    fn require(&self, feature: Features, frame_type: FrameType) -> Result<(), PeerMisbehaved> {
        if self.features.contains(feature) {
            Ok(())
        } else {
            Err(PeerMisbehaved::FeatureNotNegotiated { frame_type })
        }
    }

    fn require_closed(&self, frame_type: FrameType) -> Result<(), PeerMisbehaved> {
        match self.open {
            None => Ok(()),
            Some(open) => Err(PeerMisbehaved::IterationStillOpen {
                frame_type,
                open: open.iteration.0,
            }),
        }
    }

    fn require_open(
        &mut self,
        frame_type: FrameType,
        iteration: Iteration,
    ) -> Result<&mut OpenIteration, PeerMisbehaved> {
        let open = self.open.map(|open| open.iteration.0);
        match &mut self.open {
            Some(progress) if progress.iteration == iteration => Ok(progress),
            _ => Err(PeerMisbehaved::WrongIteration {
                frame_type,
                got: iteration.0,
                open,
            }),
        }
    }
}
