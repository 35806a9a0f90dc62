//! The SVG plot, written directly (three panels, no plotting dependency): total time per
//! strategy per link (grouped bars, log scale), bytes on the wire per strategy per link
//! (grouped bars), and pages dirtied per live round for every strategy on the slowest link
//! (lines).

use std::fmt::Write;

use super::BenchReport;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 320.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 40.0;
const PLOT_W: f64 = WIDTH - LEFT - 160.0;
const PLOT_H: f64 = PANEL - TOP - 70.0;
const COLORS: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22", "#393b79", "#637939",
];

/// Renders the report's plot as an SVG document.
pub fn to_svg(report: &BenchReport) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        PANEL * 3.0
    );
    let time = |s: &str, l: &str| report.run(s, l).map(|r| r.total_seconds);
    let bytes = |s: &str, l: &str| report.run(s, l).map(|r| r.total_bytes() as f64 / 1048576.0);
    bars(
        &mut out,
        report,
        0.0,
        "total migration time (s, log scale)",
        true,
        &time,
    );
    bars(
        &mut out,
        report,
        PANEL,
        "bytes on the wire (MiB)",
        false,
        &bytes,
    );
    dirty_lines(&mut out, report, 2.0 * PANEL);
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn frame(out: &mut String, y0: f64, title: &str, y_max_label: &str, y_min_label: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"14\">{}</text>\n\
         <rect x=\"{LEFT}\" y=\"{}\" width=\"{PLOT_W}\" height=\"{PLOT_H}\" fill=\"none\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        y0 + 24.0,
        escape(title),
        y0 + TOP,
        LEFT - 4.0,
        y0 + TOP + 10.0,
        escape(y_max_label),
        LEFT - 4.0,
        y0 + TOP + PLOT_H,
        escape(y_min_label),
    );
}

fn legend(out: &mut String, y0: f64, names: &[String]) {
    for (index, name) in names.iter().enumerate() {
        let y = y0 + TOP + 14.0 * index as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LEFT + PLOT_W + 12.0,
            y,
            COLORS[index % COLORS.len()],
            LEFT + PLOT_W + 26.0,
            y + 9.0,
            escape(name)
        );
    }
}

type Metric<'a> = dyn Fn(&str, &str) -> Option<f64> + 'a;

fn bars(out: &mut String, report: &BenchReport, y0: f64, title: &str, log: bool, value: &Metric) {
    let values: Vec<f64> = report
        .strategies
        .iter()
        .flat_map(|s| report.links.iter().filter_map(move |l| value(s, l)))
        .filter(|v| *v > 0.0)
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let min = values.iter().copied().fold(max, f64::min);
    let (lo, hi) = if log {
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    } else {
        (0.0, max)
    };
    let scale = |v: f64| {
        let v = if log { v.max(1e-12).log10() } else { v };
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * PLOT_H
    };
    let label = |v: f64| {
        if log {
            format!("{}", 10f64.powf(v))
        } else {
            format!("{v:.1}")
        }
    };
    frame(out, y0, title, &label(hi), &label(lo));
    let groups = report.strategies.len().max(1) as f64;
    let group_w = PLOT_W / groups;
    let bar_w = group_w * 0.8 / report.links.len().max(1) as f64;
    for (g, strategy) in report.strategies.iter().enumerate() {
        let gx = LEFT + group_w * g as f64 + group_w * 0.1;
        for (b, link) in report.links.iter().enumerate() {
            if let Some(v) = value(strategy, link) {
                let h = scale(v);
                let _ = writeln!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{} {}: {v}</title></rect>",
                    gx + bar_w * b as f64,
                    y0 + TOP + PLOT_H - h,
                    bar_w,
                    h,
                    COLORS[b % COLORS.len()],
                    escape(strategy),
                    escape(link)
                );
            }
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" transform=\"rotate(-35 {:.1} {:.1})\">{}</text>",
            gx + group_w * 0.4,
            y0 + TOP + PLOT_H + 14.0,
            gx + group_w * 0.4,
            y0 + TOP + PLOT_H + 14.0,
            escape(strategy)
        );
    }
    legend(out, y0, &report.links);
}

fn dirty_lines(out: &mut String, report: &BenchReport, y0: f64) {
    let Some(link) = report.links.first() else {
        return;
    };
    let runs: Vec<_> = report
        .strategies
        .iter()
        .filter_map(|s| report.run(s, link))
        .collect();
    let rounds = runs
        .iter()
        .map(|r| r.rounds.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let max = runs
        .iter()
        .flat_map(|r| r.rounds.iter().map(|round| round.dirtied))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    frame(
        out,
        y0,
        &format!(
            "pages dirtied per live round, {link} (x: round 0..{})",
            rounds - 1
        ),
        &format!("{max}"),
        "0",
    );
    for (index, run) in runs.iter().enumerate() {
        let points: Vec<String> = run
            .rounds
            .iter()
            .enumerate()
            .map(|(i, round)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + PLOT_W * i as f64 / (rounds - 1) as f64,
                    y0 + TOP + PLOT_H - PLOT_H * round.dirtied as f64 / max
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            COLORS[index % COLORS.len()],
            points.join(" "),
            escape(&run.strategy)
        );
    }
    let names: Vec<String> = runs.iter().map(|r| r.strategy.clone()).collect();
    legend(out, y0, &names);
}
