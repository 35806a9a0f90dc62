//! Mutual TLS over real QUIC on loopback: a peer without a certificate from the CA, with the
//! wrong name, or with an expired certificate is refused during the handshake (or, for the
//! client's name, right after it and before any stream is accepted); a proper pair connects.

mod common;

use std::sync::Arc;

use common::{Pki, bounded, connect, connected, dialer, listener, loopback, refusal};
use pagewire_transport::certs::{CertificateAuthority, Validity};
use pagewire_transport::{ALPN, ConnectError, Refusal, RefusedBy, TlsIdentity, Tuning};
use rustls::AlertDescription;

fn tls(alert: AlertDescription, by: RefusedBy) -> Refusal {
    Refusal::Tls { alert, by }
}

/// Which side refuses the handshake.
#[derive(Clone, Copy)]
enum Refuser {
    Server,
    Client,
}

/// Both sides saw the TLS refusal `alert`, each from its own point of view.
fn assert_refused<T: std::fmt::Debug, U: std::fmt::Debug>(
    server_saw: Result<T, ConnectError>,
    client_saw: Result<U, ConnectError>,
    alert: AlertDescription,
    refuser: Refuser,
) {
    let (server_by, client_by) = match refuser {
        Refuser::Server => (RefusedBy::Us, RefusedBy::Peer),
        Refuser::Client => (RefusedBy::Peer, RefusedBy::Us),
    };
    assert_eq!(refusal(server_saw), tls(alert, server_by));
    assert_eq!(refusal(client_saw), tls(alert, client_by));
}

/// A handshake between a listener with `server` and a dialer with `client`: what the server's
/// accept gave, and the client's refusal (its connect's error, or the close that followed a
/// connect the server then refused).
async fn handshake(
    server: &TlsIdentity,
    client: &TlsIdentity,
) -> (
    Result<quinn::Connection, ConnectError>,
    Result<(), ConnectError>,
) {
    let server = listener(server);
    let client = dialer(client);
    let address = server.local_addr().unwrap();
    bounded(async {
        tokio::join!(server.accept(), async {
            let connection = connect(&client, address).await?;
            Err(bounded(connection.closed()).await.into())
        })
    })
    .await
}

#[tokio::test]
async fn peers_with_certificates_from_the_ca_connect_and_exchange_bytes() {
    let peers = connected(&Tuning::default()).await;
    let (server_side, client_side) = (&peers.destination, &peers.source);
    assert_eq!(
        client_side
            .handshake_data()
            .unwrap()
            .downcast::<quinn::crypto::rustls::HandshakeData>()
            .unwrap()
            .protocol
            .as_deref(),
        Some(ALPN)
    );
    let (mut send, _recv) = client_side.open_bi().await.unwrap();
    send.write_all(b"hello").await.unwrap();
    send.finish().unwrap();
    let (_send, mut recv) = bounded(server_side.accept_bi()).await.unwrap();
    assert_eq!(recv.read_to_end(16).await.unwrap(), b"hello");
}

/// A client whose TLS configuration has no certificate at all (a hand-made rustls config: the
/// library cannot make one), trusting the right CA and offering `alpn`.
fn client_without_certificate(pki: &Pki, alpn: &[u8]) -> quinn::Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.certificate_der()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    endpoint
}

/// A handshake between a listener with the destination's identity and a client without a
/// certificate offering `alpn`: what the server's accept gave, and what the client saw (a
/// refused handshake, or a connection the server closed at once).
async fn handshake_without_certificate(
    pki: &Pki,
    alpn: &[u8],
) -> (
    Result<quinn::Connection, ConnectError>,
    Result<(), ConnectError>,
) {
    let server = listener(&pki.destination_identity());
    let client = client_without_certificate(pki, alpn);
    let address = server.local_addr().unwrap();
    bounded(async {
        tokio::join!(server.accept(), async {
            let connection = client.connect(address, "destination").unwrap().await?;
            Err(bounded(connection.closed()).await.into())
        })
    })
    .await
}

#[tokio::test]
async fn client_without_certificate_is_refused_with_certificate_required() {
    let (accepted, client_saw) = handshake_without_certificate(&Pki::new(), ALPN).await;
    assert_refused(
        accepted,
        client_saw,
        AlertDescription::CertificateRequired,
        Refuser::Server,
    );
}

#[tokio::test]
async fn client_offering_another_protocol_version_is_refused() {
    let (accepted, client_saw) = handshake_without_certificate(&Pki::new(), b"pagewire/0").await;
    assert_refused(
        accepted,
        client_saw,
        AlertDescription::NoApplicationProtocol,
        Refuser::Server,
    );
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused_with_unknown_ca() {
    let pki = Pki::new();
    let other_ca = CertificateAuthority::new("another CA").unwrap();
    let impostor = other_ca.issue(&["source"], Validity::days(1)).unwrap();
    // The impostor trusts the right CA (so it accepts the server) but its own certificate
    // comes from another CA.
    let impostor_identity = TlsIdentity::from_der(
        vec![pki.ca.certificate_der()],
        vec![impostor.certificate_der()],
        impostor.key_der(),
    )
    .unwrap();
    let (accepted, connected) = handshake(&pki.destination_identity(), &impostor_identity).await;
    assert_refused(
        accepted,
        connected,
        AlertDescription::UnknownCA,
        Refuser::Server,
    );
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_refused_by_the_client() {
    let pki = Pki::new();
    let other = Pki::with_ca_name("another CA");
    let (accepted, connected) =
        handshake(&other.destination_identity(), &pki.source_identity()).await;
    assert_refused(
        accepted,
        connected,
        AlertDescription::UnknownCA,
        Refuser::Client,
    );
}

#[tokio::test]
async fn server_certificate_from_another_ca_with_the_same_name_fails_its_signature_check() {
    let pki = Pki::new();
    // An impostor CA named like the real one: the chain is built, its signature fails.
    let other = Pki::new();
    let (accepted, connected) =
        handshake(&other.destination_identity(), &pki.source_identity()).await;
    assert_refused(
        accepted,
        connected,
        AlertDescription::DecryptError,
        Refuser::Client,
    );
}

#[tokio::test]
async fn server_with_the_wrong_name_is_refused_by_the_client() {
    let pki = Pki::new();
    let elsewhere = pki.ca.issue(&["elsewhere"], Validity::days(1)).unwrap();
    let (accepted, connected) = handshake(
        &elsewhere.identity(&pki.ca).unwrap(),
        &pki.source_identity(),
    )
    .await;
    assert_refused(
        accepted,
        connected,
        AlertDescription::BadCertificate,
        Refuser::Client,
    );
}

#[tokio::test]
async fn client_with_the_wrong_name_is_closed_before_any_stream_is_accepted() {
    let pki = Pki::new();
    let intruder = pki.ca.issue(&["intruder"], Validity::days(1)).unwrap();
    let server = listener(&pki.destination_identity());
    let client = dialer(&intruder.identity(&pki.ca).unwrap());
    let address = server.local_addr().unwrap();
    let (accepted, client_saw) = bounded(async {
        tokio::join!(server.accept(), async {
            // The client's handshake succeeds (its certificate is from the CA); the frame it
            // sends is never read, and its read fails with the server's close.
            let connection = connect(&client, address).await.unwrap();
            let (mut send, mut recv) = connection.open_bi().await.unwrap();
            let _ = send.write_all(b"PAGEWIRE").await;
            let read = recv.read_to_end(16).await;
            (read.is_err(), bounded(connection.closed()).await)
        })
    })
    .await;
    assert_eq!(refusal(accepted), Refusal::PeerName { by: RefusedBy::Us });
    let (read_failed, closed) = client_saw;
    assert!(read_failed);
    assert_eq!(
        refusal::<()>(Err(ConnectError::from(closed))),
        Refusal::PeerName {
            by: RefusedBy::Peer
        }
    );
}

#[tokio::test]
async fn expired_client_certificate_is_refused_with_certificate_expired() {
    let pki = Pki::new();
    let expired = pki.ca.issue(&["source"], Validity::expired()).unwrap();
    let (accepted, connected) = handshake(
        &pki.destination_identity(),
        &expired.identity(&pki.ca).unwrap(),
    )
    .await;
    assert_refused(
        accepted,
        connected,
        AlertDescription::CertificateExpired,
        Refuser::Server,
    );
}

#[tokio::test]
async fn expired_server_certificate_is_refused_by_the_client() {
    let pki = Pki::new();
    let expired = pki.ca.issue(&["destination"], Validity::expired()).unwrap();
    let (accepted, connected) =
        handshake(&expired.identity(&pki.ca).unwrap(), &pki.source_identity()).await;
    assert_refused(
        accepted,
        connected,
        AlertDescription::CertificateExpired,
        Refuser::Client,
    );
}
