//! Smoke tests of `pagewire trace gen` and `pagewire trace info` on tiny traces.

use std::path::PathBuf;
use std::process::Command;

fn pagewire(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pagewire"))
        .args(args)
        .output()
        .expect("pagewire runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pagewire-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn gen_then_info_reports_the_trace() {
    let dir = scratch("gen-info");
    let trace = dir.join("hot.pwt");
    let trace_arg = trace.to_str().unwrap();
    let out = pagewire(&[
        "trace",
        "gen",
        "hot-cold",
        "--out",
        trace_arg,
        "--memory",
        "256KiB",
        "--duration",
        "1s",
        "--interval",
        "100ms",
        "--dirty-rate",
        "400KiB",
        "--seed",
        "3",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = pagewire(&["trace", "info", trace_arg, "--json", "--verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["page_count"], 64);
    assert_eq!(info["page_size"], 4096);
    assert_eq!(info["epochs"], 10);
    assert_eq!(info["duration"], 1.0);
    assert_eq!(info["meta.generator"], "hot-cold");
    assert!(info["pages_written"].as_u64().unwrap() > 0);
    assert!(info["unchanged_share"].as_f64().unwrap() > 0.1);
    assert_eq!(info["file_size"], std::fs::metadata(&trace).unwrap().len());

    let out = pagewire(&["trace", "info", trace_arg]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("dirty_rate") && text.contains("MB/s"),
        "{text}"
    );
    assert!(text.contains("compression_ratio"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_generator_kind_runs_from_the_command_line() {
    let dir = scratch("kinds");
    for kind in [
        "uniform",
        "hot-cold",
        "sweep",
        "idle",
        "mirror",
        "two-fold",
        "history-majority",
        "video",
    ] {
        let trace = dir.join(format!("{kind}.pwt"));
        let out = pagewire(
            &[
                "trace",
                "gen",
                kind,
                "--out",
                trace.to_str().unwrap(),
                "--memory",
                "512KiB",
                "--duration",
                "500ms",
                "--quiet",
                "--file-size",
                "64KiB",
                "--frame-size",
                "32KiB",
            ]
            .into_iter()
            .filter(|a| {
                // Kind-specific options only where they exist.
                !(matches!(*a, "--file-size" | "64KiB") && kind != "mirror")
                    && !(matches!(*a, "--frame-size" | "32KiB") && kind != "video")
            })
            .collect::<Vec<_>>(),
        );
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = pagewire(&["trace", "info", trace.to_str().unwrap(), "--verify"]);
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn info_rejects_a_damaged_trace_with_a_clear_message() {
    let dir = scratch("damaged");
    let trace = dir.join("t.pwt");
    let out = pagewire(&[
        "trace",
        "gen",
        "uniform",
        "--out",
        trace.to_str().unwrap(),
        "--memory",
        "128KiB",
        "--duration",
        "300ms",
        "--content",
        "dirty-only",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bytes = std::fs::read(&trace).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&trace, bytes).unwrap();
    let out = pagewire(&["trace", "info", trace.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    std::fs::remove_dir_all(dir).unwrap();
}
