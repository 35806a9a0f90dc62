//! The name a peer's certificate must carry.

use std::fmt;

use rustls::pki_types::{CertificateDer, ServerName};

/// A DNS name or IP address a peer's certificate must name in its subject alternative names.
///
/// ```
/// use pagewire_transport::PeerName;
/// let name: PeerName = "destination.example".parse().unwrap();
/// assert_eq!(name.to_string(), "destination.example");
/// assert!("not a name!".parse::<PeerName>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerName(ServerName<'static>);

/// A string that is neither a DNS name nor an IP address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither a DNS name nor an IP address")]
pub struct InvalidPeerName(pub String);

impl std::str::FromStr for PeerName {
    type Err = InvalidPeerName;

    fn from_str(name: &str) -> Result<PeerName, InvalidPeerName> {
        ServerName::try_from(name.to_owned())
            .map(PeerName)
            .map_err(|_| InvalidPeerName(name.to_owned()))
    }
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ServerName::DnsName(name) => f.write_str(name.as_ref()),
            ServerName::IpAddress(address) => {
                write!(f, "{}", std::net::IpAddr::from(*address))
            }
            other => write!(f, "{other:?}"),
        }
    }
}

impl PeerName {
    /// Whether `certificate` (a peer's end-entity certificate, already verified against the
    /// CA) names this peer in its subject alternative names. A certificate that does not
    /// parse names nothing.
    pub fn is_named_in(&self, certificate: &CertificateDer<'_>) -> bool {
        rustls::server::ParsedCertificate::try_from(certificate)
            .and_then(|parsed| rustls::client::verify_server_name(&parsed, &self.0))
            .is_ok()
    }
}
