//! Why a connection was refused, and the application close codes this crate uses.

use rustls::AlertDescription;

/// The QUIC application error codes pagewire closes connections with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u32);

impl CloseCode {
    /// The migration ended (done, refused or aborted by a frame); nothing more to say.
    pub const FINISHED: CloseCode = CloseCode(0);
    /// The client's certificate, although signed by the CA, does not name the peer the
    /// server expects (see [`crate::Listener`]). No frame was read.
    pub const PEER_NAME_MISMATCH: CloseCode = CloseCode(1);
    /// The migration failed in this process (for example a guest memory error) and could not
    /// be ended with an ABORT frame.
    pub const FAILED: CloseCode = CloseCode(2);
    /// A connection came to resume a migration (see [`crate::resume`]) with another
    /// certificate than the peer that started it. No frame was read.
    pub const OTHER_PEER: CloseCode = CloseCode(3);

    /// The code as quinn takes it.
    pub fn var_int(self) -> quinn::VarInt {
        quinn::VarInt::from_u32(self.0)
    }
}

/// Which side refused the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusedBy {
    /// This endpoint refused the peer.
    Us,
    /// The peer refused this endpoint.
    Peer,
}

/// Why a connection was refused during (or, for the client name, right after) the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The TLS handshake failed with this alert: for example `CertificateRequired` (no client
    /// certificate), `UnknownCA` (certificate from another CA), `BadCertificate` (a server
    /// certificate that does not name the server dialled), `CertificateExpired`, or
    /// `NoApplicationProtocol` (another ALPN).
    Tls {
        /// The alert.
        alert: AlertDescription,
        /// Who sent it.
        by: RefusedBy,
    },
    /// The client's certificate does not name the peer the server expects.
    PeerName {
        /// Who refused.
        by: RefusedBy,
    },
    /// The destination waits for a migration to resume, and the client's certificate is not
    /// the one of the peer that started it.
    OtherPeer {
        /// Who refused.
        by: RefusedBy,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = |by: &RefusedBy| match by {
            RefusedBy::Us => "we refused the peer",
            RefusedBy::Peer => "the peer refused us",
        };
        match self {
            Refusal::Tls { alert, by: who } => {
                write!(f, "{}: TLS alert {alert:?}", by(who))?;
                match alert_meaning(*alert) {
                    Some(meaning) => write!(f, " ({meaning})"),
                    None => Ok(()),
                }
            }
            Refusal::PeerName { by: who } => {
                write!(
                    f,
                    "{}: the client certificate does not name the expected peer",
                    by(who)
                )
            }
            Refusal::OtherPeer { by: who } => write!(
                f,
                "{}: the certificate is not the one of the peer whose migration waits to resume",
                by(who)
            ),
        }
    }
}

/// What the alerts a mutual-TLS refusal usually carries mean, for the operator.
fn alert_meaning(alert: AlertDescription) -> Option<&'static str> {
    Some(match alert {
        AlertDescription::UnknownCA => "the certificate is not issued by the configured CA",
        AlertDescription::DecryptError => {
            "the certificate's signature does not verify with the configured CA: another CA \
             of the same name?"
        }
        AlertDescription::CertificateRequired => "no client certificate was presented",
        AlertDescription::CertificateExpired => "the certificate has expired or is not yet valid",
        AlertDescription::BadCertificate => {
            "the certificate is not valid for the name dialled, or is malformed"
        }
        AlertDescription::NoApplicationProtocol => "the peer does not speak pagewire/1",
        _ => return None,
    })
}

/// QUIC carries a TLS alert as transport error code `0x100 + alert`.
const CRYPTO_ERROR_BASE: u64 = 0x100;

impl Refusal {
    /// The refusal a connection error stands for, if it is one: a TLS alert (sent or
    /// received) or a peer-name close. Other errors (timeouts, resets, ...) are `None`.
    pub fn from_connection_error(error: &quinn::ConnectionError) -> Option<Refusal> {
        let tls = |code: u64, by| {
            let alert = code.checked_sub(CRYPTO_ERROR_BASE)?;
            let alert = u8::try_from(alert).ok()?;
            Some(Refusal::Tls {
                alert: AlertDescription::from(alert),
                by,
            })
        };
        match error {
            quinn::ConnectionError::TransportError(error) => {
                tls(u64::from(error.code), RefusedBy::Us)
            }
            quinn::ConnectionError::ConnectionClosed(close) => {
                tls(u64::from(close.error_code), RefusedBy::Peer)
            }
            quinn::ConnectionError::ApplicationClosed(close)
                if close.error_code == CloseCode::PEER_NAME_MISMATCH.var_int() =>
            {
                Some(Refusal::PeerName {
                    by: RefusedBy::Peer,
                })
            }
            quinn::ConnectionError::ApplicationClosed(close)
                if close.error_code == CloseCode::OTHER_PEER.var_int() =>
            {
                Some(Refusal::OtherPeer {
                    by: RefusedBy::Peer,
                })
            }
            _ => None,
        }
    }
}

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The handshake refused the peer, or the peer refused us.
    #[error("connection refused: {0}")]
    Refused(Refusal),
    /// quinn could not start the connection (bad address, endpoint closed, ...).
    #[error("cannot start the connection")]
    Start(#[from] quinn::ConnectError),
    /// The connection failed for another reason than a refusal (timeout, reset, ...).
    #[error("connection failed")]
    Connection(#[source] quinn::ConnectionError),
    /// The listening endpoint was closed before a peer arrived.
    #[error("the endpoint was closed")]
    EndpointClosed,
}

impl From<quinn::ConnectionError> for ConnectError {
    fn from(error: quinn::ConnectionError) -> ConnectError {
        match Refusal::from_connection_error(&error) {
            Some(refusal) => ConnectError::Refused(refusal),
            None => ConnectError::Connection(error),
        }
    }
}
