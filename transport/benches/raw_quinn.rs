//! Raw quinn bulk transfer over loopback, to choose the transport's QUIC settings: client and
//! server run in one process with the transport's own endpoints (mutual TLS, [`Tuning`]), and
//! the client writes the same buffer over and over on unidirectional streams: no page
//! selection, no encoding, no guest memory. That buffer stays in the CPU cache, so these
//! figures are higher than a transfer that reads its bytes from memory once; the migration
//! pipeline's yardstick (`bench-harness/benches/pipeline.rs`, its `raw quinn` case) sends a
//! buffer of the whole volume for that reason.
//!
//! Prints GB/s (wall clock) and CPU seconds per GB (`getrusage`, both sides together, since
//! they share the process) for a few configurations, and each one's ratio to the first.
//!
//! `cargo bench -p pagewire-transport --bench raw_quinn`; `PAGEWIRE_BENCH_MIB` sets the bytes
//! moved per configuration (default 1024).

use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::resource::{UsageWho, getrusage};
use pagewire_transport::certs::{CertificateAuthority, Validity};
use pagewire_transport::{Dialer, Listener, PeerName, Tuning};

/// One configuration to measure.
struct Case {
    label: &'static str,
    streams: usize,
    tuning: Tuning,
}

/// What one run measured.
struct Measured {
    bytes: u64,
    wall: Duration,
    cpu: Duration,
}

fn cpu_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let time =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, (t.tv_usec() * 1000) as u32);
    time(usage.user_time()) + time(usage.system_time())
}

async fn run(case: &Case, total: u64) -> Measured {
    let ca = CertificateAuthority::new("bench CA").unwrap();
    let server_cert = ca.issue(&["destination"], Validity::days(1)).unwrap();
    let client_cert = ca.issue(&["source"], Validity::days(1)).unwrap();
    let loopback = "127.0.0.1:0".parse().unwrap();
    let listener = Listener::bind(
        loopback,
        &server_cert.identity(&ca).unwrap(),
        Some("source".parse().unwrap()),
        &case.tuning,
    )
    .unwrap();
    let dialer = Dialer::bind(loopback, &client_cert.identity(&ca).unwrap(), &case.tuning).unwrap();
    let address = listener.local_addr().unwrap();
    let name: PeerName = "destination".parse().unwrap();
    let (server, client) = tokio::join!(listener.accept(), dialer.connect(address, &name));
    let (server, client) = (server.unwrap(), client.unwrap());

    let chunk = Bytes::from(vec![0xa5u8; 64 << 10]);
    let per_stream = total / case.streams as u64;
    let started = Instant::now();
    let cpu_before = cpu_time();
    let streams = case.streams;
    let receiver = tokio::spawn(async move {
        let mut readers = Vec::new();
        for _ in 0..streams {
            let mut recv = server.accept_uni().await.unwrap();
            readers.push(tokio::spawn(async move {
                let mut bytes = 0u64;
                while let Some(chunk) = recv.read_chunk(usize::MAX, false).await.unwrap() {
                    bytes += chunk.bytes.len() as u64;
                }
                bytes
            }));
        }
        let mut bytes = 0;
        for reader in readers {
            bytes += reader.await.unwrap();
        }
        (bytes, server)
    });
    let mut writers = Vec::new();
    for _ in 0..case.streams {
        let mut send = client.open_uni().await.unwrap();
        let chunk = chunk.clone();
        writers.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < per_stream {
                let piece = chunk.slice(..(per_stream - sent).min(chunk.len() as u64) as usize);
                sent += piece.len() as u64;
                send.write_chunk(piece).await.unwrap();
            }
            send.finish().unwrap();
            send.stopped().await.ok();
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (bytes, server) = receiver.await.unwrap();
    let measured = Measured {
        bytes,
        wall: started.elapsed(),
        cpu: cpu_time() - cpu_before,
    };
    server.close(0u32.into(), b"done");
    dialer.shut_down().await;
    listener.shut_down().await;
    measured
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (few cases).
    let mib: u64 = std::env::var("PAGEWIRE_BENCH_MIB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let small_datagrams = Tuning {
        max_udp_payload: 1452,
        ..Tuning::default()
    };
    let cases = [
        Case {
            label: "tuned, 1 stream",
            streams: 1,
            tuning: Tuning::default(),
        },
        Case {
            label: "tuned, 4 streams",
            streams: 4,
            tuning: Tuning::default(),
        },
        Case {
            label: "1452-byte datagrams, 1 stream",
            streams: 1,
            tuning: small_datagrams,
        },
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("raw quinn over loopback, {mib} MiB per case, client and server in one process");
    println!(
        "{:<32} {:>9} {:>12} {:>10}",
        "case", "GB/s", "CPU s/GB", "vs first"
    );
    let mut first = None;
    for case in &cases {
        let measured = runtime.block_on(run(case, total));
        let gigabytes = measured.bytes as f64 / 1e9;
        let rate = gigabytes / measured.wall.as_secs_f64();
        let first_rate = *first.get_or_insert(rate);
        println!(
            "{:<32} {:>9.3} {:>12.3} {:>9.2}×",
            case.label,
            rate,
            measured.cpu.as_secs_f64() / gigabytes,
            rate / first_rate
        );
    }
}
