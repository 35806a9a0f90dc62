//! Smoke test of `pagewire bench` on a tiny generated trace: the table, CSV, JSON and both SVG
//! plots are written and parse, and the plots hold one series per strategy.

use std::path::PathBuf;
use std::process::Command;

fn pagewire(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_pagewire"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pagewire {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A fresh directory for `test`, holding a tiny uniform trace (2 MiB, 2 s, 4 MiB/s).
fn tiny_trace(test: &str) -> (PathBuf, PathBuf) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("pagewire-bench-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("tiny.trace");
    pagewire(&[
        "trace",
        "gen",
        "uniform",
        "--out",
        trace.to_str().unwrap(),
        "--memory",
        "2MiB",
        "--duration",
        "2s",
        "--dirty-rate",
        "4MiB",
        "--quiet",
    ]);
    (dir, trace)
}

#[test]
fn bench_writes_table_csv_json_and_plots() {
    let (dir, trace) = tiny_trace("all");
    let out = dir.join("out");
    let output = pagewire(&[
        "bench",
        trace.to_str().unwrap(),
        "--strategies",
        "stop-and-copy,precopy,postcopy,mirror",
        "--link",
        "100mbit,1gbit",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("100mbit") && stdout.contains("precopy"),
        "{stdout}"
    );
    let table = std::fs::read_to_string(out.join("bench.txt")).unwrap();
    assert!(table.lines().count() >= 4, "{table}");

    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4 * 2);
    let columns = lines[0].split(',').count();
    assert!(lines.iter().all(|line| line.split(',').count() == columns));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8);
    for run in runs {
        assert!(run["total_seconds"].as_f64().unwrap() > 0.0);
        assert!(run["data_bytes"].as_u64().unwrap() > 0);
    }
    // A slower link never makes stop-and-copy faster.
    let time = |link: &str| {
        runs.iter()
            .find(|r| r["strategy"] == "stop-and-copy" && r["link"] == link)
            .unwrap()["total_seconds"]
            .as_f64()
            .unwrap()
    };
    assert!(time("100mbit") > time("1gbit"));

    // The plots: one series per strategy, in the strategy's color (the first four colors of
    // the palette in report/plot.rs), named in each panel's legend.
    let strategies = ["stop-and-copy", "precopy", "postcopy", "mirror"];
    let colors = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728"];
    let svg = |name: &str| {
        let svg = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        svg
    };
    let legend = |svg: &str, strategy: &str| {
        svg.split("<text")
            .skip(1)
            .filter_map(|text| text.split_once('>')?.1.split("</text>").next())
            .filter(|text| text.trim() == strategy)
            .count()
    };
    // bench.svg: three panels (total time, downtime, bytes), each with a bar per strategy and
    // link, plus the legend box.
    let bench = svg("bench.svg");
    for (strategy, color) in strategies.iter().zip(colors) {
        assert_eq!(legend(&bench, strategy), 3, "{strategy}");
        let boxes = bench
            .split("<rect")
            .filter(|rect| rect.contains(&format!("fill=\"{color}\"")))
            .count();
        assert_eq!(boxes, 3 * (2 + 1), "{strategy}");
    }
    // rounds.svg: a panel per link; a line per strategy, with a point per live round (none for
    // stop-and-copy and post-copy, which have no live rounds).
    let rounds = svg("rounds.svg");
    let points = |color: &str| {
        rounds
            .split("<circle")
            .filter(|circle| circle.contains(&format!("fill=\"{color}\"")))
            .count()
    };
    for (strategy, color) in strategies.iter().zip(colors) {
        assert_eq!(legend(&rounds, strategy), 2, "{strategy}");
        let live_rounds: usize = runs
            .iter()
            .filter(|run| run["strategy"] == *strategy)
            .map(|run| run["rounds"].as_array().unwrap().len())
            .sum();
        assert_eq!(points(color), live_rounds, "{strategy}");
    }
    assert!(
        points(colors[1]) >= 2,
        "precopy runs live rounds on both links"
    );
}

/// Commas outside double quotes: the field separators of a CSV line.
fn csv_fields(line: &str) -> usize {
    let mut quoted = false;
    1 + line
        .chars()
        .filter(|&c| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ',' && !quoted
        })
        .count()
}

#[test]
fn one_strategy_under_two_parameter_sets_gets_two_columns() {
    let (dir, trace) = tiny_trace("params");
    let out = dir.join("out");
    let specs = [
        "throttle:cpu-cap=20,min-pages=0",
        "throttle:cpu-cap=80,min-pages=0",
    ];
    pagewire(&[
        "bench",
        trace.to_str().unwrap(),
        "--strategies",
        &specs.join(","),
        "--link",
        "100mbit",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let table = std::fs::read_to_string(out.join("bench.txt")).unwrap();
    let header = table.lines().nth(1).unwrap();
    for spec in specs {
        assert!(header.contains(spec), "{table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let lost = |spec: &str| {
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["strategy"] == spec)
            .unwrap_or_else(|| panic!("no run labelled {spec}"))["throttle_cpu_lost_seconds"]
            .as_f64()
            .unwrap()
    };
    // Keeping 20% of the CPU loses more guest time than keeping 80%.
    assert!(lost(specs[0]) > lost(specs[1]));
    // The specs' commas are quoted in the CSV: every line has the header's field count.
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with(&format!("\"{}\",", specs[0])), "{csv}");
    let columns = csv_fields(lines[0]);
    assert!(
        lines.iter().all(|line| csv_fields(line) == columns),
        "{csv}"
    );
}
