//! The SVG plots, drawn with plotters (SVG backend only):
//! - [`to_svg`] (`bench.svg`): total migration time, downtime (both log scale) and bytes on the
//!   wire, grouped by link speed, one bar series per strategy;
//! - [`rounds_svg`] (`rounds.svg`): pages dirtied during each live round, one panel per link
//!   speed, one line series per strategy.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::BenchReport;
use crate::sim::RunResult;

const WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 340;
/// One color per strategy, in column order (cycled past twelve).
const COLORS: [RGBColor; 12] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x39, 0x3b, 0x79),
    RGBColor(0x63, 0x79, 0x39),
];

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the plot failed: {0}")]
pub struct PlotError(String);

fn drawing<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError(error.to_string())
}

fn color(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

/// One metric of a run, for a bar panel.
struct Metric {
    title: &'static str,
    log: bool,
    value: fn(&RunResult) -> f64,
}

const METRICS: [Metric; 3] = [
    Metric {
        title: "total migration time (s, log scale)",
        log: true,
        value: |run| run.total_seconds,
    },
    Metric {
        title: "downtime (s, log scale)",
        log: true,
        value: |run| run.downtime_seconds,
    },
    Metric {
        title: "bytes on the wire (MiB)",
        log: false,
        value: |run| run.total_bytes() as f64 / (1024.0 * 1024.0),
    },
];

/// Renders `bench.svg`: one panel per metric (total time, downtime, bytes on the wire); in
/// each, a group of bars per link speed and one bar series per strategy.
pub fn to_svg(report: &BenchReport) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, PANEL_HEIGHT * 3)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        for (metric, area) in METRICS.iter().zip(root.split_evenly((3, 1))) {
            bar_panel(&area, report, metric)?;
        }
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn bar_panel(area: &Area<'_>, report: &BenchReport, metric: &Metric) -> Result<(), PlotError> {
    let values: Vec<f64> = report
        .runs
        .iter()
        .map(metric.value)
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let min = values.iter().copied().fold(max, f64::min);
    let links = report.links.len().max(1);
    let x = 0.0..links as f64;
    let y_range = if metric.log {
        // Whole decades around the data, so every bar has a visible height.
        let low = 10f64.powf(min.log10().floor());
        let high = 10f64.powf(max.log10().ceil().max(min.log10().floor() + 1.0));
        low..high
    } else {
        0.0..max * 1.1
    };
    if metric.log {
        let y = y_range.clone().log_scale();
        draw_bars(area, report, metric, x, y, y_range.start)
    } else {
        draw_bars(area, report, metric, x, y_range.clone(), 0.0)
    }
}

fn draw_bars<X, Y>(
    area: &Area<'_>,
    report: &BenchReport,
    metric: &Metric,
    x: X,
    y: Y,
    base: f64,
) -> Result<(), PlotError>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let area = with_legend(area, report, Marker::Box)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(metric.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(drawing)?;
    let links = &report.links;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // Ticks every half unit: group centers (x.5) carry the link's name, the rest nothing.
        .x_labels(2 * links.len() + 1)
        .x_label_formatter(&|x| match links.get(x.floor().max(0.0) as usize) {
            Some(link) if (x.fract() - 0.5).abs() < 1e-6 => link.clone(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(drawing)?;
    let strategies = report.strategies.len().max(1) as f64;
    let width = 0.8 / strategies;
    for (index, strategy) in report.strategies.iter().enumerate() {
        let fill = color(index).filled();
        let bars = links.iter().enumerate().filter_map(|(l, link)| {
            let value = (metric.value)(report.run(strategy, link)?);
            let left = l as f64 + 0.1 + width * index as f64;
            Some(Rectangle::new([(left, base), (left + width, value)], fill))
        });
        chart.draw_series(bars).map_err(drawing)?;
    }
    Ok(())
}

/// Width of the legend column right of each chart.
const LEGEND_WIDTH: u32 = 160;

/// Splits a panel into the chart and a legend column naming every strategy in its color.
fn with_legend<'a>(
    area: &Area<'a>,
    report: &BenchReport,
    marker: Marker,
) -> Result<Area<'a>, PlotError> {
    let (chart, legend) = area.split_horizontally(WIDTH - LEGEND_WIDTH);
    for (index, strategy) in report.strategies.iter().enumerate() {
        let y = 40 + 16 * i32::try_from(index).unwrap_or(i32::MAX / 16);
        let style = color(index);
        match marker {
            Marker::Box => legend.draw(&Rectangle::new([(4, y - 5), (16, y + 5)], style.filled())),
            Marker::Line => {
                legend.draw(&PathElement::new([(2, y), (18, y)], style.stroke_width(2)))
            }
        }
        .map_err(drawing)?;
        legend
            .draw(&Text::new(
                strategy.clone(),
                (24, y - 6),
                ("sans-serif", 12).into_font(),
            ))
            .map_err(drawing)?;
    }
    Ok(chart)
}

/// How the legend marks a series.
#[derive(Clone, Copy)]
enum Marker {
    Box,
    Line,
}

/// Renders `rounds.svg`: for each link speed, the pages the guest dirtied during each live
/// round (the harvest at the round's end), one line per strategy (strategies without live
/// rounds have no points).
pub fn rounds_svg(report: &BenchReport) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let panels = report.links.len().max(1);
        let height = PANEL_HEIGHT * u32::try_from(panels).unwrap_or(u32::MAX / PANEL_HEIGHT);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        for (link, area) in report.links.iter().zip(root.split_evenly((panels, 1))) {
            rounds_panel(&area, report, link)?;
        }
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn rounds_panel(area: &Area<'_>, report: &BenchReport, link: &str) -> Result<(), PlotError> {
    let runs: Vec<Option<&RunResult>> = report
        .strategies
        .iter()
        .map(|strategy| report.run(strategy, link))
        .collect();
    let rounds = runs
        .iter()
        .flatten()
        .map(|run| run.rounds.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let max = runs
        .iter()
        .flatten()
        .flat_map(|run| run.rounds.iter().map(|round| round.dirtied))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let area = with_legend(area, report, Marker::Line)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(
            format!("pages dirtied per live round, {link}"),
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..(rounds - 1) as f64, 0.0..max * 1.1)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc("live round")
        .x_labels(rounds)
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .draw()
        .map_err(drawing)?;
    for (index, run) in runs.iter().enumerate() {
        let style = color(index).stroke_width(2);
        let points: Vec<(f64, f64)> = run
            .map(|run| &run.rounds[..])
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, round)| (i as f64, round.dirtied as f64))
            .collect();
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, style.filled())))
            .map_err(drawing)?;
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(drawing)?;
    }
    Ok(())
}

/// An axis label for whole numbers only (none between them).
fn whole(value: &f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}
