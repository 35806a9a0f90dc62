//! Quinn settings for bulk page transfer, each with the reason it differs from quinn's default.

use std::sync::Arc;
use std::time::Duration;

/// The knobs of a pagewire QUIC endpoint. [`Tuning::default`] is what `pagewire send` and
/// `recv` use; every field says why it has its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Kernel send and receive buffer of the UDP socket, in bytes. Linux's default (~208 KiB)
    /// overflows during bursts of a multi-gigabit sender and loses thousands of packets per
    /// 2 GiB moved over loopback; 4 MiB absorbs them. The kernel caps it at
    /// `net.core.rmem_max`/`wmem_max`: the endpoint reports what it got
    /// ([`crate::Listener::socket_buffers`]).
    pub socket_buffer: usize,
    /// Receive window per stream, in bytes. quinn's default (1.25 MB) is sized for 100 Mb/s at
    /// 100 ms; one page stream must keep a 10 Gb/s link with a 5 ms RTT busy (6.25 MB), so
    /// 8 MiB.
    pub stream_receive_window: u32,
    /// Receive window of the whole connection, in bytes. quinn leaves it unlimited, which would
    /// let a fast source fill the destination's memory with every stream's window at once;
    /// bounded here, so the destination's buffered bytes are at most this (a slow destination
    /// slows the source through flow control).
    pub receive_window: u32,
    /// Bytes the sender buffers unacknowledged across all streams. Bounds the source's memory
    /// the same way; a write waits until acknowledgements free room.
    pub send_window: u64,
    /// The largest UDP payload probed by path-MTU discovery (and accepted from the peer,
    /// `EndpointConfig::max_udp_payload_size`). The send path costs per packet (kernel UDP,
    /// quinn, AES per packet), so bigger datagrams move more bytes per CPU second: on loopback
    /// 6500-byte datagrams more than double the throughput of 1452-byte ones. Discovery
    /// probes up to this bound and settles on the path's MTU, so a high bound is safe on a
    /// 1500-byte network (it costs a few lost probes).
    ///
    /// The bound is also capped by segmentation offload: quinn hands the kernel up to 10
    /// datagrams per `sendmsg` (GSO), and the kernel refuses a batch longer than one UDP
    /// datagram can be (65 507 bytes of payload over IPv4, with EMSGSIZE, which quinn drops
    /// silently as it does for MTU probes). With 8952-byte datagrams (a jumbo frame) every
    /// full batch of 8 or more was lost: quinn took the losses for a black hole and fell back
    /// to 1200-byte datagrams for the rest of the connection (measured: every connection of
    /// the pipeline bench). 10 × 6500 fits, over IPv4 and IPv6.
    pub max_udp_payload: u16,
    /// How many unidirectional (page) streams the peer may open. The destination's bound on
    /// parallel page streams.
    pub max_page_streams: u16,
    /// A connection that hears nothing for this long is dead.
    pub idle_timeout: Duration,
    /// Keep-alive interval, well under the idle timeout, so a migration waiting on the guest
    /// or the operator (for example between iterations) is not taken for dead.
    pub keep_alive: Duration,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            socket_buffer: 4 << 20,
            stream_receive_window: 8 << 20,
            receive_window: 32 << 20,
            send_window: 32 << 20,
            max_udp_payload: 6500,
            max_page_streams: 16,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
        }
    }
}

impl Tuning {
    /// The quinn transport configuration these settings stand for.
    pub fn transport_config(&self) -> Arc<quinn::TransportConfig> {
        let mut config = quinn::TransportConfig::default();
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(self.max_udp_payload);
        config
            .stream_receive_window(self.stream_receive_window.into())
            .receive_window(self.receive_window.into())
            .send_window(self.send_window)
            .mtu_discovery_config(Some(mtu))
            // One control stream; more bidirectional streams are a misbehaving peer.
            .max_concurrent_bidi_streams(1u32.into())
            .max_concurrent_uni_streams(u32::from(self.max_page_streams).into())
            // GSO hands the kernel many datagrams per system call: the send path is bound
            // by per-packet cost, so keep it on (quinn falls back when the kernel lacks it).
            .enable_segmentation_offload(true)
            .keep_alive_interval(Some(self.keep_alive))
            // quinn refuses idle timeouts beyond 2^62 ms; ours is seconds, so this never fails,
            // and a failure would only leave quinn's 30 s default.
            .max_idle_timeout(self.idle_timeout.try_into().ok());
        Arc::new(config)
    }

    /// The quinn endpoint configuration: accepts datagrams as large as we probe for.
    pub fn endpoint_config(&self) -> quinn::EndpointConfig {
        let mut config = quinn::EndpointConfig::default();
        // quinn accepts 1200..=65527 and fails only outside it, which the clamp excludes.
        let size = self.max_udp_payload.clamp(1200, 65_527);
        let _ = config.max_udp_payload_size(size);
        config
    }
}
