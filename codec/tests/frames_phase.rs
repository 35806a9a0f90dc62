//! The phase order: illegal frames are refused with a typed error, abort is legal everywhere,
//! and nothing reaches activation without an agreeing commit answer.

use bytes::Bytes;
use pagewire_codec::error::PeerMisbehaved;
use pagewire_codec::frame::{
    Abort, AbortReason, BitmapFrame, BitmapKind, CommitAnswer, CommitDigest, DeviceState, Features,
    Frame, FrameType, Hello, Iteration, IterationEnd, MigrationId, PageBatch, PageRequest,
    RefusalReason, ReservationAnswer, Resume, Role,
};
use pagewire_codec::phase::{Direction, Phase, PhaseTracker};
use pagewire_codec::{
    ContentHash, PageBitmap, PageCount, PageNumber, PageRecord, PageSize, RecordBody,
};

use Direction::{DestinationToSource as D, SourceToDestination as S};

const PAGES: PageCount = PageCount(64);

fn hello(role: Role, features: Features, resume: bool) -> Frame {
    let mut hello = Hello::new(role, MigrationId([9; 16]), PageSize::KIB_4, PAGES);
    hello.features = features;
    hello.resume = resume;
    Frame::Hello(hello)
}

fn batch(iteration: u64, pages: &[(u64, u64)]) -> Frame {
    Frame::PageBatch(PageBatch {
        iteration: Iteration(iteration),
        records: pages
            .iter()
            .map(|&(page, count)| PageRecord {
                page: PageNumber(page),
                body: RecordBody::ZeroRun { count },
            })
            .collect(),
    })
}

fn end(iteration: u64, batches: u64, pages: u64) -> Frame {
    Frame::IterationEnd(IterationEnd {
        iteration: Iteration(iteration),
        batches,
        pages,
    })
}

fn device_state(total: u64, offset: u64, len: usize) -> Frame {
    Frame::DeviceState(DeviceState {
        total,
        offset,
        data: Bytes::from(vec![0; len]),
    })
}

fn digest() -> Frame {
    Frame::CommitDigest(CommitDigest::compute(16, PAGES, |_| ContentHash(0)))
}

fn abort() -> Frame {
    Frame::Abort(Abort {
        reason: AbortReason::Cancelled,
        message: String::new(),
    })
}

/// Feeds `steps` in order; each must be accepted.
fn run(tracker: &mut PhaseTracker, steps: &[(Direction, Frame)]) {
    for (direction, frame) in steps {
        if let Err(error) = tracker.on_frame(*direction, frame) {
            panic!(
                "{frame:?} {direction} refused in {:?}: {error}",
                tracker.phase()
            );
        }
    }
}

/// Steps that lead from the start to `phase`, with every feature negotiated.
fn steps_to(phase: Phase) -> Vec<(Direction, Frame)> {
    let mut steps = vec![];
    let order = [
        (
            Phase::DestinationHello,
            vec![(S, hello(Role::Source, Features::all_known(), false))],
        ),
        (
            Phase::Reservation,
            vec![(D, hello(Role::Destination, Features::all_known(), false))],
        ),
        (
            Phase::IterativeCopy,
            vec![(D, Frame::Reservation(ReservationAnswer::Accepted))],
        ),
        (
            Phase::StopAndCopy,
            vec![
                (S, Frame::IterationStart(Iteration(0))),
                (S, batch(0, &[(0, 64)])),
                (S, end(0, 1, 64)),
                (S, Frame::Suspend),
            ],
        ),
        (
            Phase::PostCopy,
            vec![(S, device_state(3, 0, 3)), (S, Frame::PostcopyBegin)],
        ),
        (Phase::Commit, vec![(S, digest())]),
        (
            Phase::Committed,
            vec![(D, Frame::CommitAnswer(CommitAnswer::Agree))],
        ),
        (Phase::Activation, vec![(S, Frame::Activate)]),
        (Phase::Done, vec![(D, Frame::Activated)]),
    ];
    if phase == Phase::Hello {
        return steps;
    }
    for (reached, more) in order {
        steps.extend(more);
        if reached == phase {
            return steps;
        }
    }
    match phase {
        Phase::Refused => {
            let mut steps = steps_to(Phase::Reservation);
            steps.push((
                D,
                Frame::Reservation(ReservationAnswer::Refused(RefusalReason::Busy)),
            ));
            steps
        }
        Phase::Aborted => {
            let mut steps = steps_to(Phase::IterativeCopy);
            steps.push((S, abort()));
            steps
        }
        _ => unreachable!(),
    }
}

const ALL_PHASES: [Phase; 12] = [
    Phase::Hello,
    Phase::DestinationHello,
    Phase::Reservation,
    Phase::IterativeCopy,
    Phase::StopAndCopy,
    Phase::PostCopy,
    Phase::Commit,
    Phase::Committed,
    Phase::Activation,
    Phase::Done,
    Phase::Refused,
    Phase::Aborted,
];

fn at(phase: Phase) -> PhaseTracker {
    let mut tracker = PhaseTracker::new();
    run(&mut tracker, &steps_to(phase));
    assert_eq!(tracker.phase(), phase);
    tracker
}

/// One frame of each type, with contents that pass the content checks where possible.
fn one_of_each() -> Vec<Frame> {
    vec![
        hello(Role::Source, Features::all_known(), false),
        Frame::Reservation(ReservationAnswer::Accepted),
        Frame::Resume(Resume {
            next_iteration: Iteration(0),
            received: PageBitmap::new(PAGES),
        }),
        Frame::IterationStart(Iteration(1)),
        batch(1, &[(0, 1)]),
        end(1, 1, 1),
        Frame::Bitmap(BitmapFrame {
            kind: BitmapKind::Dirty,
            pages: PageBitmap::new(PAGES),
        }),
        Frame::Suspend,
        device_state(1, 0, 1),
        Frame::PostcopyBegin,
        Frame::PageRequest(PageRequest {
            pages: vec![PageNumber(1)],
        }),
        digest(),
        Frame::CommitAnswer(CommitAnswer::Agree),
        Frame::Activate,
        Frame::Activated,
        abort(),
    ]
}

#[test]
fn a_precopy_migration_passes_every_phase_in_order() {
    let mut tracker = PhaseTracker::new();
    run(
        &mut tracker,
        &[
            (S, hello(Role::Source, Features::empty(), false)),
            (D, hello(Role::Destination, Features::all_known(), false)),
            (D, Frame::Reservation(ReservationAnswer::Accepted)),
            (S, Frame::IterationStart(Iteration(0))),
            (S, batch(0, &[(0, 10), (20, 44)])),
            (S, batch(0, &[(12, 1)])),
            (S, end(0, 2, 55)),
            (S, Frame::IterationStart(Iteration(1))),
            (
                S,
                Frame::Bitmap(BitmapFrame {
                    kind: BitmapKind::Dirty,
                    pages: PageBitmap::new(PAGES),
                }),
            ),
            (S, end(1, 0, 0)),
            (S, Frame::Suspend),
            (S, Frame::IterationStart(Iteration(2))),
            (S, batch(2, &[(5, 1)])),
            (S, end(2, 1, 1)),
            (S, device_state(10, 0, 4)),
            (S, device_state(10, 4, 6)),
            (S, digest()),
            (D, Frame::CommitAnswer(CommitAnswer::Mismatch(vec![0, 3]))),
            (S, Frame::IterationStart(Iteration(3))),
            (S, batch(3, &[(0, 16)])),
            (S, end(3, 1, 16)),
            (S, digest()),
            (D, Frame::CommitAnswer(CommitAnswer::Agree)),
            (S, Frame::Activate),
            (D, Frame::Activated),
        ],
    );
    assert_eq!(tracker.phase(), Phase::Done);
    assert_eq!(tracker.features(), Features::empty());
}

#[test]
fn frames_a_phase_does_not_allow_are_refused_as_unexpected() {
    for phase in ALL_PHASES {
        for frame in one_of_each() {
            for direction in [S, D] {
                let frame_type = frame.frame_type();
                if phase.allows(direction, frame_type) {
                    continue;
                }
                let mut tracker = at(phase);
                assert_eq!(
                    tracker.on_frame(direction, &frame),
                    Err(PeerMisbehaved::UnexpectedFrame {
                        frame_type,
                        phase,
                        direction
                    }),
                    "{frame_type} {direction} in {phase:?}"
                );
                assert_eq!(tracker.phase(), phase, "a refused frame changes nothing");
            }
        }
    }
}

#[test]
fn abort_is_legal_in_every_phase_from_either_side() {
    for phase in ALL_PHASES {
        for direction in [S, D] {
            let mut tracker = at(phase);
            let after = tracker.on_frame(direction, &abort()).unwrap();
            let expected = if phase == Phase::Done {
                Phase::Done
            } else {
                Phase::Aborted
            };
            assert_eq!(after, expected, "abort {direction} in {phase:?}");
        }
    }
}

#[test]
fn nothing_reaches_activation_without_an_agreeing_commit_answer() {
    for phase in ALL_PHASES.into_iter().filter(|p| *p != Phase::Committed) {
        let mut tracker = at(phase);
        assert!(
            tracker.on_frame(S, &Frame::Activate).is_err(),
            "activate in {phase:?}"
        );
        if phase != Phase::Activation {
            assert!(
                tracker.on_frame(D, &Frame::Activated).is_err(),
                "activated in {phase:?}"
            );
        }
    }
    // A mismatch keeps the commit phase; activation stays refused.
    let mut tracker = at(Phase::StopAndCopy);
    run(
        &mut tracker,
        &[
            (S, device_state(0, 0, 0)),
            (S, digest()),
            (D, Frame::CommitAnswer(CommitAnswer::Mismatch(vec![1]))),
        ],
    );
    assert_eq!(tracker.phase(), Phase::Commit);
    assert!(tracker.on_frame(S, &Frame::Activate).is_err());
    // An answer without an outstanding digest is refused too.
    assert!(
        tracker
            .on_frame(D, &Frame::CommitAnswer(CommitAnswer::Agree))
            .is_err()
    );
}

#[test]
fn tracker_rejects_hello_with_the_wrong_role() {
    let mut tracker = PhaseTracker::new();
    assert_eq!(
        tracker.on_frame(S, &hello(Role::Destination, Features::empty(), false)),
        Err(PeerMisbehaved::WrongRole { direction: S })
    );
}

#[test]
fn tracker_rejects_iterations_out_of_order() {
    let mut tracker = at(Phase::IterativeCopy);
    assert_eq!(
        tracker.on_frame(S, &Frame::IterationStart(Iteration(1))),
        Err(PeerMisbehaved::IterationOutOfOrder {
            expected: 0,
            got: 1
        })
    );
    run(&mut tracker, &[(S, Frame::IterationStart(Iteration(0)))]);
    assert_eq!(
        tracker.on_frame(S, &Frame::IterationStart(Iteration(1))),
        Err(PeerMisbehaved::IterationStillOpen {
            frame_type: FrameType::ITERATION_START,
            open: 0
        })
    );
}

#[test]
fn tracker_rejects_batches_outside_their_iteration() {
    let mut tracker = at(Phase::IterativeCopy);
    assert_eq!(
        tracker.on_frame(S, &batch(0, &[(0, 1)])),
        Err(PeerMisbehaved::WrongIteration {
            frame_type: FrameType::PAGE_BATCH,
            got: 0,
            open: None
        })
    );
    run(&mut tracker, &[(S, Frame::IterationStart(Iteration(0)))]);
    assert_eq!(
        tracker.on_frame(S, &batch(5, &[(0, 1)])),
        Err(PeerMisbehaved::WrongIteration {
            frame_type: FrameType::PAGE_BATCH,
            got: 5,
            open: Some(0)
        })
    );
}

#[test]
fn tracker_rejects_iteration_end_with_wrong_counts() {
    let mut tracker = at(Phase::IterativeCopy);
    run(
        &mut tracker,
        &[
            (S, Frame::IterationStart(Iteration(0))),
            (S, batch(0, &[(0, 3)])),
        ],
    );
    assert_eq!(
        tracker.on_frame(S, &end(0, 2, 3)),
        Err(PeerMisbehaved::IterationCountMismatch {
            iteration: 0,
            declared: (2, 3),
            received: (1, 3)
        })
    );
}

#[test]
fn tracker_rejects_suspend_or_digest_while_an_iteration_is_open() {
    let mut tracker = at(Phase::IterativeCopy);
    run(&mut tracker, &[(S, Frame::IterationStart(Iteration(0)))]);
    assert!(matches!(
        tracker.on_frame(S, &Frame::Suspend),
        Err(PeerMisbehaved::IterationStillOpen { .. })
    ));
}

#[test]
fn commit_needs_the_whole_device_state_in_order() {
    let mut tracker = at(Phase::StopAndCopy);
    assert_eq!(
        tracker.on_frame(S, &digest()),
        Err(PeerMisbehaved::DeviceStateIncomplete {
            received: 0,
            total: None
        })
    );
    run(&mut tracker, &[(S, device_state(10, 0, 4))]);
    assert!(matches!(
        tracker.on_frame(S, &device_state(10, 5, 5)),
        Err(PeerMisbehaved::DeviceStateOutOfOrder { .. })
    ));
    assert!(matches!(
        tracker.on_frame(S, &device_state(11, 4, 6)),
        Err(PeerMisbehaved::DeviceStateOutOfOrder { .. })
    ));
    assert_eq!(
        tracker.on_frame(S, &digest()),
        Err(PeerMisbehaved::DeviceStateIncomplete {
            received: 4,
            total: Some(10)
        })
    );
    run(&mut tracker, &[(S, device_state(10, 4, 6)), (S, digest())]);
}

#[test]
fn commit_answer_must_name_ranges_of_the_digest() {
    let mut tracker = at(Phase::Commit);
    assert_eq!(
        tracker.on_frame(D, &Frame::CommitAnswer(CommitAnswer::Mismatch(vec![4]))),
        Err(PeerMisbehaved::MismatchRangeOutOfRange {
            range: 4,
            range_count: 4
        })
    );
}

#[test]
fn postcopy_needs_the_negotiated_feature() {
    let mut tracker = PhaseTracker::new();
    run(
        &mut tracker,
        &[
            (S, hello(Role::Source, Features::all_known(), false)),
            (D, hello(Role::Destination, Features::RESUME, false)),
            (D, Frame::Reservation(ReservationAnswer::Accepted)),
            (S, Frame::Suspend),
            (S, device_state(0, 0, 0)),
        ],
    );
    assert_eq!(
        tracker.on_frame(S, &Frame::PostcopyBegin),
        Err(PeerMisbehaved::FeatureNotNegotiated {
            frame_type: FrameType::POSTCOPY_BEGIN
        })
    );
    let deferred = Frame::Bitmap(BitmapFrame {
        kind: BitmapKind::Deferred,
        pages: PageBitmap::new(PAGES),
    });
    assert!(tracker.on_frame(S, &deferred).is_err());
}

#[test]
fn postcopy_allows_page_requests_until_commit_ends() {
    let mut tracker = at(Phase::PostCopy);
    let request = Frame::PageRequest(PageRequest {
        pages: vec![PageNumber(3)],
    });
    run(
        &mut tracker,
        &[(D, request.clone()), (S, digest()), (D, request.clone())],
    );
    // Without post-copy, a page request in commit is refused.
    let mut tracker = at(Phase::StopAndCopy);
    run(&mut tracker, &[(S, device_state(0, 0, 0)), (S, digest())]);
    assert!(tracker.on_frame(D, &request).is_err());
}

#[test]
fn resume_continues_the_named_iteration_only_after_a_resume_hello() {
    let resume = Frame::Resume(Resume {
        next_iteration: Iteration(7),
        received: PageBitmap::full(PAGES),
    });
    let mut tracker = PhaseTracker::new();
    run(
        &mut tracker,
        &[
            (S, hello(Role::Source, Features::all_known(), true)),
            (D, hello(Role::Destination, Features::all_known(), false)),
        ],
    );
    assert!(
        tracker
            .on_frame(D, &Frame::Reservation(ReservationAnswer::Accepted))
            .is_err()
    );
    run(&mut tracker, &[(D, resume.clone())]);
    assert_eq!(tracker.phase(), Phase::IterativeCopy);
    assert_eq!(tracker.next_iteration(), Iteration(7));

    // Without a resume hello (or without the feature), RESUME is refused.
    let mut fresh = at(Phase::Reservation);
    assert!(fresh.on_frame(D, &resume).is_err());
    let mut no_feature = PhaseTracker::new();
    run(
        &mut no_feature,
        &[
            (S, hello(Role::Source, Features::all_known(), true)),
            (D, hello(Role::Destination, Features::empty(), false)),
        ],
    );
    assert_eq!(
        no_feature.on_frame(D, &resume),
        Err(PeerMisbehaved::FeatureNotNegotiated {
            frame_type: FrameType::RESUME
        })
    );
}

#[test]
fn a_resume_answered_by_a_running_post_copy_continues_in_post_copy() {
    let resume = Frame::Resume(Resume {
        next_iteration: Iteration(3),
        received: PageBitmap::full(PAGES),
    });
    let running = Features::all_known().union(Features::POSTCOPY_RUNNING);
    let mut tracker = PhaseTracker::new();
    run(
        &mut tracker,
        &[
            (S, hello(Role::Source, Features::all_known(), true)),
            (D, hello(Role::Destination, running, false)),
            (D, resume.clone()),
        ],
    );
    assert_eq!(tracker.phase(), Phase::PostCopy);
    assert!(!tracker.features().contains(Features::POSTCOPY_RUNNING));
    // The device state came before POSTCOPY_BEGIN on the lost connection: the digest may
    // follow the rest of the push, and requests may come meanwhile.
    run(
        &mut tracker,
        &[
            (S, Frame::IterationStart(Iteration(3))),
            (
                D,
                Frame::PageRequest(PageRequest {
                    pages: vec![PageNumber(1)],
                }),
            ),
            (S, batch(3, &[(1, 1)])),
            (S, end(3, 1, 1)),
            (S, digest()),
        ],
    );
    assert_eq!(tracker.phase(), Phase::Commit);

    // The flag means nothing to a fresh migration, nor without post-copy negotiated.
    let mut fresh = PhaseTracker::new();
    run(
        &mut fresh,
        &[
            (S, hello(Role::Source, Features::all_known(), false)),
            (D, hello(Role::Destination, running, false)),
            (D, Frame::Reservation(ReservationAnswer::Accepted)),
        ],
    );
    assert_eq!(fresh.phase(), Phase::IterativeCopy);
    let mut no_postcopy = PhaseTracker::new();
    run(
        &mut no_postcopy,
        &[
            (S, hello(Role::Source, Features::RESUME, true)),
            (D, hello(Role::Destination, running, false)),
        ],
    );
    assert_eq!(
        no_postcopy.on_frame(D, &resume),
        Err(PeerMisbehaved::FeatureNotNegotiated {
            frame_type: FrameType::RESUME
        })
    );
}

#[test]
fn received_bitmaps_travel_only_inside_resume() {
    let mut tracker = at(Phase::IterativeCopy);
    run(&mut tracker, &[(S, Frame::IterationStart(Iteration(0)))]);
    let received = Frame::Bitmap(BitmapFrame {
        kind: BitmapKind::Received,
        pages: PageBitmap::new(PAGES),
    });
    assert_eq!(
        tracker.on_frame(S, &received),
        Err(PeerMisbehaved::UnexpectedBitmap {
            kind: BitmapKind::Received,
            phase: Phase::IterativeCopy
        })
    );
}
