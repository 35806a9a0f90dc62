//! QUIC endpoints: a [`Listener`] that accepts mutually authenticated peers and a [`Dialer`]
//! that connects to one. Which side listens is the operator's choice; `pagewire recv` (the
//! destination) listens by default.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use crate::refusal::{CloseCode, ConnectError, Refusal, RefusedBy};
use crate::tls::{PeerName, TlsConfigError, TlsIdentity, client_config, server_config};
use crate::tuning::Tuning;

/// Why an endpoint could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The UDP socket could not be bound or configured.
    #[error("cannot {action} the UDP socket on {address}")]
    Socket {
        /// What failed: "bind", "configure".
        action: &'static str,
        /// The local address.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// The kernel buffer sizes a socket actually got (Linux reports twice the size asked for,
/// capped by `net.core.rmem_max`/`wmem_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketBuffers {
    /// Send buffer, in bytes.
    pub send: usize,
    /// Receive buffer, in bytes.
    pub receive: usize,
}

/// Binds a UDP socket with the tuned buffer sizes and makes a quinn endpoint on it.
fn endpoint(
    address: SocketAddr,
    tuning: &Tuning,
    server: Option<quinn::ServerConfig>,
) -> Result<(quinn::Endpoint, SocketBuffers), EndpointError> {
    let error = |action| {
        move |source| EndpointError::Socket {
            action,
            address,
            source,
        }
    };
    let socket = UdpSocket::bind(address).map_err(error("bind"))?;
    let state = quinn::udp::UdpSocketState::new((&socket).into()).map_err(error("configure"))?;
    state
        .set_send_buffer_size((&socket).into(), tuning.socket_buffer)
        .map_err(error("configure"))?;
    state
        .set_recv_buffer_size((&socket).into(), tuning.socket_buffer)
        .map_err(error("configure"))?;
    let buffers = SocketBuffers {
        send: state
            .send_buffer_size((&socket).into())
            .map_err(error("configure"))?,
        receive: state
            .recv_buffer_size((&socket).into())
            .map_err(error("configure"))?,
    };
    let endpoint = quinn::Endpoint::new(
        tuning.endpoint_config(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(error("configure"))?;
    Ok((endpoint, buffers))
}

/// A listening endpoint: accepts connections from peers whose certificate chains to the CA,
/// and, if configured, names the expected client.
#[derive(Debug)]
pub struct Listener {
    endpoint: quinn::Endpoint,
    buffers: SocketBuffers,
    client_name: Option<PeerName>,
}

impl Listener {
    /// Listens on `address` (port 0 picks a free port) as `identity`.
    ///
    /// With `client_name`, a client must also carry that name in its certificate's subject
    /// alternative names: TLS verifies the chain, and [`Listener::accept`] checks the name
    /// right after the handshake, before any stream is accepted, closing the connection with
    /// [`CloseCode::PEER_NAME_MISMATCH`] if it does not match.
    ///
    /// Must be called inside a tokio runtime.
    pub fn bind(
        address: SocketAddr,
        identity: &TlsIdentity,
        client_name: Option<PeerName>,
        tuning: &Tuning,
    ) -> Result<Listener, EndpointError> {
        let mut server = server_config(identity)?;
        server.transport_config(tuning.transport_config());
        let (endpoint, buffers) = endpoint(address, tuning, Some(server))?;
        Ok(Listener {
            endpoint,
            buffers,
            client_name,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The socket buffers the kernel granted.
    pub fn socket_buffers(&self) -> SocketBuffers {
        self.buffers
    }

    /// Waits for the next peer and completes its handshake. A refused peer is an error
    /// ([`ConnectError::Refused`]); the listener keeps listening, so call again for the next.
    pub async fn accept(&self) -> Result<quinn::Connection, ConnectError> {
        let incoming = self
            .endpoint
            .accept()
            .await
            .ok_or(ConnectError::EndpointClosed)?;
        let connection = incoming.await?;
        if let Some(expected) = &self.client_name
            && !names_peer(&connection, expected)
        {
            connection.close(CloseCode::PEER_NAME_MISMATCH.var_int(), b"peer name");
            return Err(ConnectError::Refused(Refusal::PeerName {
                by: RefusedBy::Us,
            }));
        }
        Ok(connection)
    }

    /// Stops accepting, closes every connection, and waits until the peers were told.
    pub async fn shut_down(&self) {
        self.endpoint
            .close(CloseCode::FINISHED.var_int(), b"shut down");
        self.endpoint.wait_idle().await;
    }
}

/// Whether the peer's end-entity certificate (verified by TLS already) names `expected`.
fn names_peer(connection: &quinn::Connection, expected: &PeerName) -> bool {
    connection
        .peer_identity()
        .and_then(|identity| {
            identity
                .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|chain| chain.first().map(|leaf| expected.is_named_in(leaf)))
        .unwrap_or(false)
}

/// A connecting endpoint.
#[derive(Debug)]
pub struct Dialer {
    endpoint: quinn::Endpoint,
    buffers: SocketBuffers,
}

impl Dialer {
    /// A dialer bound to `address` (usually `0.0.0.0:0` or `[::]:0`) presenting `identity`.
    ///
    /// Must be called inside a tokio runtime.
    pub fn bind(
        address: SocketAddr,
        identity: &TlsIdentity,
        tuning: &Tuning,
    ) -> Result<Dialer, EndpointError> {
        let mut client = client_config(identity)?;
        client.transport_config(tuning.transport_config());
        let (mut endpoint, buffers) = endpoint(address, tuning, None)?;
        endpoint.set_default_client_config(client);
        Ok(Dialer { endpoint, buffers })
    }

    /// The socket buffers the kernel granted.
    pub fn socket_buffers(&self) -> SocketBuffers {
        self.buffers
    }

    /// Connects to `address`, whose certificate must name `server_name`.
    ///
    /// The TLS handshake is complete from the client's side when this returns; a server that
    /// refuses the client's certificate may still close the connection just afterwards, and
    /// that shows on the first stream operation (as a [`Refusal`] with
    /// [`RefusedBy::Peer`]), before any frame is read.
    pub async fn connect(
        &self,
        address: SocketAddr,
        server_name: &PeerName,
    ) -> Result<quinn::Connection, ConnectError> {
        let connecting = self.endpoint.connect(address, &server_name.to_string())?;
        Ok(connecting.await?)
    }

    /// Closes every connection and waits until the peers were told.
    pub async fn shut_down(&self) {
        self.endpoint
            .close(CloseCode::FINISHED.var_int(), b"shut down");
        self.endpoint.wait_idle().await;
    }
}
