//! Resume after a dropped link (spec/wire.md §5.3): a source that reconnects, and a
//! destination that waits for it.
//!
//! Both run only when the sessions agreed on the resume feature (`resume` in the codec's
//! `SourceConfig` and `DestinationConfig`); otherwise a lost connection ends the migration as
//! before.
//!
//! - [`drive_source`]: drives a source over a connection; when the connection is lost (quinn
//!   reports it timed out or reset; not a close by the peer, nor an ABORT frame, which end
//!   the migration)
//!   and the session kept the migration, it reconnects at most [`ResumePolicy::attempts`]
//!   times, waiting [`ResumePolicy::first_backoff`] (doubling up to
//!   [`ResumePolicy::max_backoff`]) before each attempt, and continues with a resume HELLO.
//!   A successful resume gives the next loss the full number of attempts again.
//! - [`serve_destination`]: drives a destination over the connection the listener accepted;
//!   when the connection is lost and the session kept the migration, it accepts new
//!   connections on the same listener until the session's grace period ends. Each is
//!   authenticated by the listener as any other (mutual TLS against the CA, the expected client
//!   name); on top, only a client presenting **the same certificate** (byte for byte) as the
//!   one that started the migration may resume it: another one is closed with
//!   [`CloseCode::OTHER_PEER`] before any stream is read, and the wait goes on. The private
//!   key behind that certificate is what proves the peer is the same.
//!
//! Memory stays bounded: one connection at a time, the sessions' own bounds, and the
//! streams' queues of the connection being driven.

use std::future::Future;
use std::time::{Duration, Instant};

use pagewire_codec::frame::AbortReason;
use pagewire_codec::memory::{DestinationMemory, SourceMemory};
use pagewire_codec::session::{
    AbortInfo, DestinationSession, Event, Session, SessionError, Side, SourceSession,
};
use rustls::pki_types::CertificateDer;

use crate::Listener;
use crate::driver::{DriveError, DriverConfig, drive_abortable};
use crate::refusal::{CloseCode, ConnectError};
use crate::streams::{self, Inbox, Outbox, StreamConfig, StreamError};

/// A source session the reconnecting driver can resume: the codec's [`SourceSession`], or a
/// wrapper around one (a live guest, say) that forwards these calls.
pub trait ResumableSource: Session {
    /// See `SourceSession::is_interrupted`.
    fn is_interrupted(&self) -> bool;
    /// How many times the migration resumed so far.
    fn resumes(&self) -> u32;
    /// See `SourceSession::resume`.
    fn resume(&mut self, now: Duration) -> Result<(), SessionError>;
}

impl<M: SourceMemory> ResumableSource for SourceSession<M> {
    fn is_interrupted(&self) -> bool {
        SourceSession::is_interrupted(self)
    }
    fn resumes(&self) -> u32 {
        self.stats().resumes
    }
    fn resume(&mut self, now: Duration) -> Result<(), SessionError> {
        SourceSession::resume(self, now)
    }
}

/// How a source reconnects after a dropped link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumePolicy {
    /// Connection attempts after each loss before the migration is given up (0: never
    /// reconnect).
    pub attempts: u32,
    /// The wait before the first attempt.
    pub first_backoff: Duration,
    /// The longest wait between attempts (the wait doubles after each failed attempt).
    pub max_backoff: Duration,
    /// How long one attempt may take (a peer that does not answer costs the QUIC idle
    /// timeout otherwise).
    pub connect_timeout: Duration,
}

impl Default for ResumePolicy {
    /// 5 attempts of at most 5 s each, waiting 0.5 s, 1 s, 2 s, 4 s and 8 s before them: at
    /// most 40 s, inside a destination's default grace period (60 s).
    fn default() -> ResumePolicy {
        ResumePolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl ResumePolicy {
    /// The wait before attempt `attempt` (0-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Why a resume could not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The source could not reconnect in the attempts its policy allows; the migration is
    /// over and the guest is still at the source.
    #[error("the link dropped and {attempts} attempts to reconnect failed (last: {last})")]
    Reconnect {
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: ConnectError,
    },
    /// The connection that started the migration shows no peer certificate, so no later
    /// connection could be checked against it.
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// The listener closed while the migration waited for its source.
    #[error("the listener closed while the migration waited to resume")]
    ListenerClosed,
}

/// What both sides drive each connection with.
#[derive(Clone, Copy, Debug)]
pub struct DriveSetup<'a> {
    /// The streams of each connection.
    pub streams: &'a StreamConfig,
    /// The driver's settings.
    pub driver: DriverConfig,
    /// The instant the session's time counts from.
    pub epoch: Instant,
}

/// Whether `error` is a lost link: the connection timed out or was reset. A connection the
/// peer closed on purpose (a refusal, the end of the migration, a failure it reported) is
/// not resumed.
fn is_link_loss(error: &DriveError) -> bool {
    matches!(
        error,
        DriveError::Stream(StreamError::ConnectionLost(
            quinn::ConnectionError::TimedOut | quinn::ConnectionError::Reset
        ))
    )
}

/// How driving one connection ended.
enum Ending {
    /// The migration is over: activated (`Ok`), or failed for good.
    Over(Result<(), DriveError>),
    /// The link was lost and the session kept the migration: it resumes on a new connection.
    Interrupted,
}

/// Drives `session` over the streams of one connection (`streams`, as opened or accepted)
/// and tells a lost link the session survives apart from the migration's end.
async fn drive_connection<S: Session>(
    session: &mut S,
    streams: Result<(Outbox, Inbox), StreamError>,
    setup: DriveSetup<'_>,
    on_event: &mut impl FnMut(&mut S, Duration, Event) -> Result<(), SessionError>,
    abort: impl Future<Output = (AbortReason, String)>,
    interrupted: impl Fn(&S) -> bool,
) -> Ending {
    let epoch = setup.epoch;
    let result = match streams {
        Ok((outbox, inbox)) => {
            drive_abortable(
                session,
                outbox,
                inbox,
                epoch,
                setup.driver,
                &mut *on_event,
                abort,
            )
            .await
        }
        Err(error) => Err(error.into()),
    };
    let error = match result {
        Err(error) if is_link_loss(&error) => error,
        over => return Ending::Over(over),
    };
    if !interrupted(session) {
        // A writer saw the loss first: the session has not been told yet.
        let _ = session.handle_connection_lost(epoch.elapsed());
    }
    if let Err(failed) = hand_over_events(session, epoch, on_event) {
        return Ending::Over(Err(failed));
    }
    if interrupted(session) {
        Ending::Interrupted
    } else {
        Ending::Over(Err(error))
    }
}

/// Drives `session` over `connection`, and after each lost connection that the session
/// kept, reconnects with `connect` as `policy` allows and resumes (see the
/// [module docs](self)); `connection` is then the new one (keep it open until the peer is
/// done, as with [`drive`](crate::driver::drive)). `on_event` sees every event of every
/// connection. When `abort` completes first, the migration is aborted as with
/// [`drive_abortable`]. Returns once the migration is activated (`Ok`) or over.
pub async fn drive_source<S, C, F>(
    session: &mut S,
    connection: &mut quinn::Connection,
    mut connect: impl FnMut() -> C,
    setup: DriveSetup<'_>,
    policy: ResumePolicy,
    mut on_event: F,
    abort: impl Future<Output = (AbortReason, String)>,
) -> Result<(), DriveError>
where
    S: ResumableSource,
    C: Future<Output = Result<quinn::Connection, ConnectError>>,
    F: FnMut(&mut S, Duration, Event) -> Result<(), SessionError>,
{
    let epoch = setup.epoch;
    let mut abort = std::pin::pin!(abort);
    // Attempts since the last connection that carried a RESUME (or the first connection).
    let mut attempts = 0;
    loop {
        let resumes = session.resumes();
        let streams = streams::open(connection, setup.streams).await;
        let interrupted = |session: &S| session.is_interrupted();
        let ending = drive_connection(
            session,
            streams,
            setup,
            &mut on_event,
            abort.as_mut(),
            interrupted,
        );
        if let Ending::Over(result) = ending.await {
            return result;
        }
        if session.resumes() > resumes {
            attempts = 0;
        }
        let reconnected = reconnect(session, &mut connect, epoch, policy, &mut attempts);
        *connection = tokio::select! {
            reconnected = reconnected => reconnected?,
            (reason, message) = abort.as_mut() => {
                return Err(aborted(session, epoch, &mut on_event, reason, message));
            }
        };
    }
}

/// Tries to connect as `policy` allows, counting in `attempts` (attempts already made since
/// the last resume); on success, the session's resume HELLO is queued.
async fn reconnect<S: ResumableSource, C>(
    session: &mut S,
    connect: &mut impl FnMut() -> C,
    epoch: Instant,
    policy: ResumePolicy,
    attempts: &mut u32,
) -> Result<quinn::Connection, DriveError>
where
    C: Future<Output = Result<quinn::Connection, ConnectError>>,
{
    let mut last = None;
    while *attempts < policy.attempts {
        tokio::time::sleep(policy.backoff(*attempts)).await;
        *attempts += 1;
        let attempt = tokio::time::timeout(policy.connect_timeout, connect()).await;
        let attempt = attempt.unwrap_or(Err(ConnectError::Connection(
            quinn::ConnectionError::TimedOut,
        )));
        match attempt {
            Ok(connection) => {
                session.resume(epoch.elapsed())?;
                return Ok(connection);
            }
            // A refusal will not change with another attempt.
            Err(ConnectError::Refused(refusal)) => {
                last = Some(ConnectError::Refused(refusal));
                break;
            }
            Err(error) => last = Some(error),
        }
    }
    let error = ResumeError::Reconnect {
        attempts: *attempts,
        last: last.unwrap_or(ConnectError::EndpointClosed),
    };
    // No connection carries the ABORT; the migration is over here, the guest stays.
    session.abort(epoch.elapsed(), AbortReason::Timeout, error.to_string());
    Err(DriveError::Resume(error))
}

/// The operator aborted while no connection was up: the session aborts (no ABORT reaches
/// the peer), its events are handed over, and the abort is the result.
fn aborted<S: Session>(
    session: &mut S,
    epoch: Instant,
    on_event: &mut impl FnMut(&mut S, Duration, Event) -> Result<(), SessionError>,
    reason: AbortReason,
    message: String,
) -> DriveError {
    session.abort(epoch.elapsed(), reason, message.clone());
    if let Err(error) = hand_over_events(session, epoch, on_event) {
        return error;
    }
    DriveError::Aborted(AbortInfo {
        side: Side::Local,
        reason,
        message,
    })
}

/// Drives `session` over `connection` (accepted by `listener`), and after each lost
/// connection that the session kept, waits on `listener` for the same peer to resume, until
/// the session's grace period ends (see the [module docs](self)); `connection` is then the
/// new one (keep it open until the peer is done). `on_event` sees every event of every
/// connection. When `abort` completes first, the migration is aborted as with
/// [`drive_abortable`].
pub async fn serve_destination<M, F>(
    session: &mut DestinationSession<M>,
    listener: &Listener,
    connection: &mut quinn::Connection,
    setup: DriveSetup<'_>,
    mut on_event: F,
    abort: impl Future<Output = (AbortReason, String)>,
) -> Result<(), DriveError>
where
    M: DestinationMemory,
    F: FnMut(&mut DestinationSession<M>, Duration, Event) -> Result<(), SessionError>,
{
    let epoch = setup.epoch;
    let mut abort = std::pin::pin!(abort);
    let peer = peer_certificate(connection).ok_or(ResumeError::NoPeerCertificate)?;
    loop {
        // The operator may abort while the source has not opened its streams yet: a
        // connected peer that never opens them must not hold the destination until quinn's
        // idle timeout.
        let accepted = tokio::select! {
            accepted = streams::accept(connection, setup.streams) => accepted,
            (reason, message) = abort.as_mut() => {
                return Err(aborted(session, epoch, &mut on_event, reason, message));
            }
        };
        let interrupted = |session: &DestinationSession<M>| session.is_interrupted();
        let ending = drive_connection(
            session,
            accepted,
            setup,
            &mut on_event,
            abort.as_mut(),
            interrupted,
        );
        if let Ending::Over(result) = ending.await {
            return result;
        }
        connection.close(CloseCode::FAILED.var_int(), b"link lost");
        let waited = wait_for_peer(session, listener, &peer, epoch, &mut on_event);
        *connection = tokio::select! {
            waited = waited => waited?,
            (reason, message) = abort.as_mut() => {
                return Err(aborted(session, epoch, &mut on_event, reason, message));
            }
        };
    }
}

/// Accepts connections until one presents `peer`'s certificate, or the session's grace
/// period ends.
async fn wait_for_peer<M, F>(
    session: &mut DestinationSession<M>,
    listener: &Listener,
    peer: &CertificateDer<'static>,
    epoch: Instant,
    on_event: &mut F,
) -> Result<quinn::Connection, DriveError>
where
    M: DestinationMemory,
    F: FnMut(&mut DestinationSession<M>, Duration, Event) -> Result<(), SessionError>,
{
    loop {
        let deadline = session.poll_timeout().map(|at| epoch + at);
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) if peer_certificate(&connection).as_ref() == Some(peer) => {
                    return Ok(connection);
                }
                Ok(other) => other.close(CloseCode::OTHER_PEER.var_int(), b"other peer"),
                // Refused by the handshake: the listener goes on.
                Err(ConnectError::Refused(_) | ConnectError::Connection(_)) => {}
                Err(_) => {
                    session.abort(
                        epoch.elapsed(),
                        AbortReason::Cancelled,
                        "the listener closed while the migration waited to resume",
                    );
                    hand_over_events(session, epoch, on_event)?;
                    return Err(ResumeError::ListenerClosed.into());
                }
            },
            () = sleep_until(deadline) => {
                let result = session.handle_timeout(epoch.elapsed());
                hand_over_events(session, epoch, on_event)?;
                result?;
            }
        }
    }
}

/// Hands the events queued in `session` to `on_event`.
fn hand_over_events<S: Session>(
    session: &mut S,
    epoch: Instant,
    on_event: &mut impl FnMut(&mut S, Duration, Event) -> Result<(), SessionError>,
) -> Result<(), DriveError> {
    while let Some(event) = session.poll_event() {
        on_event(session, epoch.elapsed(), event)?;
    }
    Ok(())
}

/// The end-entity certificate the peer presented (verified by TLS already).
fn peer_certificate(connection: &quinn::Connection) -> Option<CertificateDer<'static>> {
    connection
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?
        .first()
        .cloned()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let policy = ResumePolicy::default();
        let waits: Vec<u64> = (0..7)
            .map(|attempt| policy.backoff(attempt).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(8));
    }
}
