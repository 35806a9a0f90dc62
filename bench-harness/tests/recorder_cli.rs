//! `pagewire trace record` end to end: a recorded program becomes a readable trace whose
//! metadata says how it was recorded and what the recording cost.

use std::process::Command;

use pagewire_bench::trace::{Epoch, TraceReader};

#[test]
fn record_writes_a_readable_trace_with_overhead_metadata() {
    let dir = std::env::temp_dir().join(format!("pagewire-recorder-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("sh.pwtrace");
    let output = Command::new(env!("CARGO_BIN_EXE_pagewire"))
        .args([
            "trace",
            "record",
            "--interval",
            "10ms",
            "--freeze",
            "--max-epochs",
            "3",
        ])
        .arg("--output")
        .arg(&trace)
        .args(["--", "sh", "-c", "while :; do :; done"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("the epoch limit was reached"), "{stderr}");

    let mut reader = TraceReader::open(&trace).unwrap();
    let metadata = reader.header().metadata.clone();
    assert_eq!(reader.summary().epochs, 3);
    assert_eq!(metadata["recorder.epochs"], "3");
    assert_eq!(metadata["source"], "pagewire trace record");
    assert!(metadata["snapshot"].starts_with("exact"));
    assert!(metadata["command"].contains("while"));
    assert!(metadata.contains_key("recorder.mean_scan_ms"));
    // The parts of the scans and the encoder thread's cost are reported.
    for key in [
        "recorder.kernel_scan_ms_per_epoch",
        "recorder.page_reads_us_per_page",
        "recorder.digest_us_per_page",
        "recorder.cpu_percent_of_scan",
        "recorder.mean_sink_ms",
        "recorder.encoder_cpu_us_per_page",
    ] {
        let value: f64 = metadata[key].parse().unwrap();
        assert!(value >= 0.0, "{key} = {value}");
    }
    // The initial image and the epochs went through the encoder thread.
    assert!(metadata["recorder.encoder_cpu_ms"].parse::<f64>().unwrap() > 0.0);
    let mut epoch = Epoch::default();
    let mut epochs = 0;
    while reader.next_epoch(&mut epoch).unwrap() {
        epochs += 1;
    }
    assert_eq!(epochs, 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn record_reports_a_missing_pid_clearly() {
    let output = Command::new(env!("CARGO_BIN_EXE_pagewire"))
        .args(["trace", "record", "--pid", "2147483632", "--output"])
        .arg(std::env::temp_dir().join("pagewire-never-written.pwtrace"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no process with pid 2147483632"),
        "{stderr}"
    );
}
