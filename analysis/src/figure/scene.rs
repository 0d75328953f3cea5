//! The geometry of a figure in data coordinates — axes, one layer of marks per series, where the
//! legend goes — computed from observations, independent of any drawing backend.

use polars::prelude::*;

use super::crossing::{self, Crossing};
use super::data::{Columns, Observations, XScale, observe};
use super::labels::{axis_title, fraction_bounds};
use super::render::plot_area_px;
use super::ticks::{format_number, nice_ticks};
use super::{Kind, PlotSpec};
use crate::error::{AnalysisError, Result};
use crate::summary::summarise;

/// Share of a category's width taken by its group of bars.
const GROUP_WIDTH: f64 = 0.8;

/// One axis: its range, ticks with labels, and title.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    /// Lower end of the visible range.
    pub lo: f64,
    /// Upper end of the visible range.
    pub hi: f64,
    /// Tick positions and their labels.
    pub ticks: Vec<(f64, String)>,
    /// The axis title.
    pub label: String,
    /// Whether ticks are categories (no grid lines across them).
    pub categorical: bool,
}

/// A whole figure.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scene {
    /// Caption above the plot, if any.
    pub title: Option<String>,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// One layer per series, in series order (the palette follows it).
    pub layers: Vec<Layer>,
    /// Where the legend goes; `None` when there is no series column.
    pub legend: Option<Corner>,
    /// Where the series the spec's marks name cross, one entry per mark.
    pub crossings: Vec<Crossing>,
}

/// The marks of one series.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layer {
    /// Series label for the legend.
    pub label: String,
    /// What to draw.
    pub marks: Marks,
}

/// Marks of one series, by figure kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Marks {
    /// Means joined by a line, with a 95% CI band `(x, lo, hi)`.
    Line {
        /// `(x, mean)` in ascending x.
        points: Vec<(f64, f64)>,
        /// `(x, ci95_lo, ci95_hi)` in ascending x.
        band: Vec<(f64, f64, f64)>,
    },
    /// Bars with 95% CI error bars.
    Bars(Vec<Bar>),
    /// A step curve (empirical CDF), as its corner points.
    Step(Vec<(f64, f64)>),
    /// Individual points.
    Points(Vec<(f64, f64)>),
}

/// One bar: horizontal extent, mean height and CI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bar {
    /// Left edge.
    pub x0: f64,
    /// Right edge.
    pub x1: f64,
    /// Height (mean).
    pub mean: f64,
    /// Lower end of the 95% CI.
    pub lo: f64,
    /// Upper end of the 95% CI.
    pub hi: f64,
}

/// A corner of the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Corner {
    /// Top right.
    UpperRight,
    /// Top left.
    UpperLeft,
    /// Bottom right.
    LowerRight,
    /// Bottom left.
    LowerLeft,
}

/// Lays out the figure `spec` describes over the rows of `df`.
pub(super) fn build(df: &DataFrame, spec: &PlotSpec) -> Result<Scene> {
    let columns = Columns {
        x: (spec.kind != Kind::Cdf).then_some(spec.x.as_str()),
        y: &spec.y,
        series: spec.series.as_deref(),
        numeric_x_as_categories: spec.kind == Kind::Bar,
    };
    let mut obs = observe(df, &columns)?;
    let y_floor = to_log_domain(&mut obs, spec)?;
    let bounds = fraction_bounds(&spec.y, obs.rows.iter().map(|o| o.y));
    let (marks, x_extent, y_extent) = match spec.kind {
        Kind::Line => line_marks(&obs, bounds)?,
        Kind::Bar => bar_marks(&obs, bounds)?,
        Kind::Cdf => cdf_marks(&obs),
        Kind::Scatter => scatter_marks(&obs),
    };
    let (marks, y_extent) = match y_floor {
        Some(floor) => log_y_marks(marks, floor),
        None => (marks, y_extent),
    };
    let (x_label, y_label) = match spec.kind {
        Kind::Cdf => (axis_title(&spec.y), "CDF".to_owned()),
        _ => (axis_title(&spec.x), axis_title(&spec.y)),
    };
    let x = match &obs.scale {
        XScale::Categories(labels) => Axis {
            lo: -0.5,
            hi: labels.len() as f64 - 0.5,
            ticks: labels
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, l)| (i as f64, l))
                .collect(),
            label: spec.x_label.clone().unwrap_or_else(|| x_label.clone()),
            categorical: true,
        },
        XScale::Numeric if spec.x_log => log_axis(x_extent, 0.04, spec.x_label.as_ref(), &x_label),
        XScale::Numeric => numeric_axis(x_extent, 0.04, false, spec.x_label.as_ref(), &x_label),
    };
    let keep_zero = spec.kind == Kind::Bar;
    let y = if spec.y_log {
        log_axis(y_extent, 0.05, spec.y_label.as_ref(), &y_label)
    } else {
        numeric_axis(y_extent, 0.05, keep_zero, spec.y_label.as_ref(), &y_label)
    };
    let marks = match spec.kind {
        Kind::Cdf => marks
            .into_iter()
            .map(|m| with_tails(m, x.lo, x.hi))
            .collect(),
        _ => marks,
    };
    let layers: Vec<Layer> = obs
        .series
        .iter()
        .cloned()
        .zip(marks)
        .map(|(label, marks)| Layer { label, marks })
        .collect();
    let (legend, y) = match &spec.series {
        Some(_) => {
            let (corner, y) = place_legend(&layers, &x, y, !spec.y_log, spec.title.is_some());
            (Some(corner), y)
        }
        None => (None, y),
    };
    // Headroom for the legend above a fraction's bound gets no ticks: a rate is not read as 1.5.
    let y = match bounds {
        Some((_, max)) => Axis {
            ticks: y.ticks.into_iter().filter(|t| t.0 <= max + 1e-9).collect(),
            ..y
        },
        None => y,
    };
    let crossings = crossings(&layers, spec)?;
    Ok(Scene {
        title: spec.title.clone(),
        x,
        y,
        layers,
        legend,
        crossings,
    })
}

/// The crossings `spec.marks` ask for, on the plotted means of a line figure.
fn crossings(layers: &[Layer], spec: &PlotSpec) -> Result<Vec<Crossing>> {
    if spec.marks.is_empty() {
        return Ok(Vec::new());
    }
    if spec.kind != Kind::Line || spec.series.is_none() {
        return Err(AnalysisError::Unsupported(format!(
            "crossing marks need a line figure with a series column, got a {:?} figure{}",
            spec.kind,
            if spec.series.is_none() {
                " without series"
            } else {
                ""
            }
        )));
    }
    let line = |name: &str| {
        layers
            .iter()
            .find_map(|l| match &l.marks {
                Marks::Line { points, .. } if l.label == name => Some(points.as_slice()),
                _ => None,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = layers.iter().map(|l| l.label.as_str()).collect();
                AnalysisError::Unsupported(format!(
                    "crossing mark names series `{name}`, which the figure does not have; series: {}",
                    names.join(", ")
                ))
            })
    };
    let unlog = |log: bool, v: f64| if log { 10f64.powf(v) } else { v };
    spec.marks
        .iter()
        .map(|m| {
            let (a, b) = (line(&m.crossing[0])?, line(&m.crossing[1])?);
            Ok(crossing::find(m, a, b, |(x, y)| {
                (unlog(spec.x_log, x), unlog(spec.y_log, y))
            }))
        })
        .collect()
}

/// Prepares `obs` for the log axes `spec` asks for: rows outside the log domain are left out, a log x
/// (the variable of a CDF) moves to log10 units. Returns the floor for a log y — a tenth of the smallest
/// positive y — or `None` for a linear y. Means stay in the data's units: y is logged after averaging.
fn to_log_domain(obs: &mut Observations, spec: &PlotSpec) -> Result<Option<f64>> {
    let unsupported = |what: &str| {
        Err(AnalysisError::Unsupported(format!(
            "a log {what} axis cannot be drawn for a {:?} figure",
            spec.kind
        )))
    };
    if spec.x_log && (spec.kind == Kind::Bar || matches!(obs.scale, XScale::Categories(_))) {
        return unsupported("x");
    }
    if spec.y_log && matches!(spec.kind, Kind::Bar | Kind::Cdf) {
        return unsupported("y");
    }
    if spec.x_log {
        let cdf = spec.kind == Kind::Cdf;
        obs.rows.retain(|o| if cdf { o.y > 0.0 } else { o.x > 0.0 });
        for o in &mut obs.rows {
            if cdf {
                o.y = o.y.log10();
            } else {
                o.x = o.x.log10();
            }
        }
    }
    if spec.y_log {
        obs.rows.retain(|o| o.y > 0.0);
    }
    if (spec.x_log || spec.y_log) && obs.rows.is_empty() {
        return Err(AnalysisError::Empty(
            "no row has a positive value to draw on the log axis".into(),
        ));
    }
    Ok(spec
        .y_log
        .then(|| obs.rows.iter().map(|o| o.y).fold(f64::INFINITY, f64::min) / 10.0))
}

/// The marks with every y in log10 units (values below `floor`, e.g. a CI reaching 0, cut at it),
/// and the y extent they cover.
fn log_y_marks(marks: Vec<Marks>, floor: f64) -> (Vec<Marks>, (f64, f64)) {
    let log = |y: f64| y.max(floor).log10();
    let marks: Vec<Marks> = marks
        .into_iter()
        .map(|m| match m {
            Marks::Line { points, band } => Marks::Line {
                points: points.into_iter().map(|(x, y)| (x, log(y))).collect(),
                band: band
                    .into_iter()
                    .map(|(x, lo, hi)| (x, log(lo), log(hi)))
                    .collect(),
            },
            Marks::Points(points) => {
                Marks::Points(points.into_iter().map(|(x, y)| (x, log(y))).collect())
            }
            other => other,
        })
        .collect();
    let ys = marks.iter().flat_map(|m| match m {
        Marks::Line { band, .. } => band.iter().flat_map(|b| [b.1, b.2]).collect::<Vec<_>>(),
        Marks::Points(p) => p.iter().map(|p| p.1).collect(),
        _ => Vec::new(),
    });
    let y_extent = extent(ys);
    (marks, y_extent)
}

/// A log axis over `(lo, hi)` in log10 units, widened by `pad` of its span, with ticks at the
/// decades (and at 2× and 5× when the range spans less than two decades) labelled in data units.
fn log_axis((lo, hi): (f64, f64), pad: f64, label: Option<&String>, default_label: &str) -> Axis {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let margin = (hi - lo) * pad;
    let (lo, hi) = (lo - margin, hi + margin);
    let mantissas: &[f64] = if hi - lo < 2.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks = Vec::new();
    for k in lo.floor() as i32..=hi.ceil() as i32 {
        for &m in mantissas {
            let v = m * 10f64.powi(k);
            let at = v.log10();
            if (lo..=hi).contains(&at) {
                let text = if (1e-3..1e6).contains(&v) {
                    format_number(v)
                } else {
                    format!("{}e{k}", format_number(m))
                };
                ticks.push((at, text));
            }
        }
    }
    Axis {
        lo,
        hi,
        ticks,
        label: label.cloned().unwrap_or_else(|| default_label.to_string()),
        categorical: false,
    }
}

/// Marks per series with the extents of x and y they cover.
type Laid = (Vec<Marks>, (f64, f64), (f64, f64));

/// Mean of y over the replications at one x, with its 95% CI.
#[derive(Debug, Clone, Copy)]
struct Mean {
    x: f64,
    mean: f64,
    lo: f64,
    hi: f64,
}

/// Per series, the mean of y at each x (through [`summarise`]), ascending in x. With `bounds`
/// (a fraction, see [`fraction_bounds`]) the Student-t interval is intersected with them: the true
/// mean lies within the bounds, so the intersection keeps the interval's coverage, and no band or
/// error bar claims a rate below 0 or above 1. (Percentile bootstrap intervals would also respect
/// the bounds but undercover at the 1–3 replications most scenarios run.)
fn means(obs: &Observations, bounds: Option<(f64, f64)>) -> Result<Vec<Vec<Mean>>> {
    let frame = df! {
        "series" => obs.rows.iter().map(|o| o.series as u32).collect::<Vec<_>>(),
        "x" => obs.rows.iter().map(|o| o.x).collect::<Vec<_>>(),
        "y" => obs.rows.iter().map(|o| o.y).collect::<Vec<_>>(),
    }?;
    let s = summarise(&frame, &["series", "x"], "y")?;
    let mut out = vec![Vec::new(); obs.series.len()];
    let columns = ["series", "x", "mean", "ci95_lo", "ci95_hi"].map(|c| s.column(c));
    let [series, x, mean, lo, hi] = columns;
    let series = series?.u32()?;
    let (x, mean, lo, hi) = (x?.f64()?, mean?.f64()?, lo?.f64()?, hi?.f64()?);
    for i in 0..s.height() {
        if let (Some(k), Some(x), Some(mean), Some(lo), Some(hi)) =
            (series.get(i), x.get(i), mean.get(i), lo.get(i), hi.get(i))
        {
            let (lo, hi) = match bounds {
                Some((min, max)) => (lo.max(min), hi.min(max)),
                None => (lo, hi),
            };
            out[k as usize].push(Mean { x, mean, lo, hi });
        }
    }
    for points in &mut out {
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    Ok(out)
}

fn line_marks(obs: &Observations, bounds: Option<(f64, f64)>) -> Result<Laid> {
    let means = means(obs, bounds)?;
    let all = means.iter().flatten();
    let x_extent = extent(all.clone().map(|m| m.x));
    let y_extent = extent(all.flat_map(|m| [m.mean, m.lo, m.hi]));
    let marks = means
        .into_iter()
        .map(|points| Marks::Line {
            band: points.iter().map(|m| (m.x, m.lo, m.hi)).collect(),
            points: points.iter().map(|m| (m.x, m.mean)).collect(),
        })
        .collect();
    Ok((marks, x_extent, y_extent))
}

fn bar_marks(obs: &Observations, bounds: Option<(f64, f64)>) -> Result<Laid> {
    let means = means(obs, bounds)?;
    let width = GROUP_WIDTH / obs.series.len() as f64;
    let y_extent = extent(
        means
            .iter()
            .flatten()
            .flat_map(|m| [m.mean, m.lo, m.hi, 0.0]),
    );
    let marks = means
        .into_iter()
        .enumerate()
        .map(|(j, points)| {
            let bars = points
                .into_iter()
                .map(|m| {
                    let left = m.x - GROUP_WIDTH / 2.0 + j as f64 * width;
                    Bar {
                        x0: left + 0.05 * width,
                        x1: left + 0.95 * width,
                        mean: m.mean,
                        lo: m.lo,
                        hi: m.hi,
                    }
                })
                .collect();
            Marks::Bars(bars)
        })
        .collect();
    Ok((marks, (0.0, 0.0), y_extent))
}

/// Empirical CDFs of y; the curves get their flat tails once the x range is known
/// ([`with_tails`]).
fn cdf_marks(obs: &Observations) -> Laid {
    let marks = (0..obs.series.len())
        .map(|k| {
            let mut values: Vec<f64> = obs
                .rows
                .iter()
                .filter(|o| o.series == k)
                .map(|o| o.y)
                .collect();
            values.sort_by(f64::total_cmp);
            let n = values.len() as f64;
            let steps = values
                .iter()
                .enumerate()
                .flat_map(|(i, &v)| [(v, i as f64 / n), (v, (i + 1) as f64 / n)])
                .collect();
            Marks::Step(steps)
        })
        .collect();
    (marks, extent(obs.rows.iter().map(|o| o.y)), (0.0, 1.0))
}

/// A CDF step curve extended flat to the edges of the x range: 0 on the left, 1 on the right.
fn with_tails(marks: Marks, lo: f64, hi: f64) -> Marks {
    match marks {
        Marks::Step(steps) => {
            let mut curve = Vec::with_capacity(steps.len() + 2);
            curve.push((lo, 0.0));
            curve.extend(steps);
            curve.push((hi, 1.0));
            Marks::Step(curve)
        }
        other => other,
    }
}

/// Raw points; with categorical x, series are dodged sideways so they do not hide each other.
fn scatter_marks(obs: &Observations) -> Laid {
    let s = obs.series.len() as f64;
    let dodge = match obs.scale {
        XScale::Categories(_) if s > 1.0 => 0.5 / s,
        _ => 0.0,
    };
    let marks = (0..obs.series.len())
        .map(|k| {
            let offset = (k as f64 - (s - 1.0) / 2.0) * dodge;
            let points = obs
                .rows
                .iter()
                .filter(|o| o.series == k)
                .map(|o| (o.x + offset, o.y))
                .collect();
            Marks::Points(points)
        })
        .collect();
    let x_extent = extent(obs.rows.iter().map(|o| o.x));
    (marks, x_extent, extent(obs.rows.iter().map(|o| o.y)))
}

/// Smallest and largest value (`(0, 0)` for none).
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 0.0))
}

/// A numeric axis over `(lo, hi)` widened by `pad` of its span on each side — except at a zero
/// baseline when `keep_zero` (bars grow from 0) — with nice ticks.
fn numeric_axis(
    (lo, hi): (f64, f64),
    pad: f64,
    keep_zero: bool,
    label: Option<&String>,
    default_label: &str,
) -> Axis {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let half = (lo.abs() * 0.1).max(1.0);
        (lo - half, hi + half)
    };
    let margin = (hi - lo) * pad;
    let lo = if keep_zero && lo == 0.0 {
        0.0
    } else {
        lo - margin
    };
    let hi = if keep_zero && hi == 0.0 {
        0.0
    } else {
        hi + margin
    };
    Axis {
        lo,
        hi,
        ticks: nice_ticks(lo, hi),
        label: label.cloned().unwrap_or_else(|| default_label.to_string()),
        categorical: false,
    }
}

/// The legend's row height, character width, key width and distance from the plot's corner, in
/// pixels (as `render` draws it).
const LEGEND_ROW_PX: f64 = 22.0;
const LEGEND_CHAR_PX: f64 = 9.5;
const LEGEND_KEY_PX: f64 = 60.0;
const LEGEND_MARGIN_PX: f64 = 12.0;

/// How far the legend reaches from the plot's top or bottom edge, pixels: its margin and height.
pub(super) fn legend_reach_px(layers: &[Layer]) -> f64 {
    LEGEND_MARGIN_PX + LEGEND_ROW_PX * layers.len() as f64 + 16.0
}

/// The legend's box in a corner, in shares of a plotting area of `plot_px` pixels:
/// `(x0, x1, y0, y1)`.
fn legend_box(layers: &[Layer], corner: Corner, plot_px: (f64, f64)) -> (f64, f64, f64, f64) {
    let longest = layers
        .iter()
        .map(|l| l.label.chars().count())
        .max()
        .unwrap_or(0);
    let w = (LEGEND_KEY_PX + LEGEND_CHAR_PX * longest as f64) / plot_px.0;
    let h = (LEGEND_ROW_PX * layers.len() as f64 + 16.0) / plot_px.1;
    let (mx, my) = (LEGEND_MARGIN_PX / plot_px.0, LEGEND_MARGIN_PX / plot_px.1);
    let (x0, x1) = match corner {
        Corner::UpperRight | Corner::LowerRight => (1.0 - mx - w, 1.0 - mx),
        Corner::UpperLeft | Corner::LowerLeft => (mx, mx + w),
    };
    let (y0, y1) = match corner {
        Corner::UpperRight | Corner::UpperLeft => (1.0 - my - h, 1.0 - my),
        Corner::LowerRight | Corner::LowerLeft => (my, my + h),
    };
    (x0, x1, y0, y1)
}

/// Where the legend goes so that it covers no data: the first corner (top right, top left, bottom
/// right, bottom left) whose legend box holds no mark. When every corner holds some and `may_grow`
/// (a linear y axis), the top of the y axis is raised until the data stay below the legend in the
/// top corner that needs the least headroom — the usual fix for bars that fill the plot. Returns
/// the corner and the (possibly raised) y axis.
fn place_legend(
    layers: &[Layer],
    x: &Axis,
    y: Axis,
    may_grow: bool,
    titled: bool,
) -> (Corner, Axis) {
    let plot_px = plot_area_px(x, &y, titled);
    let marks = mark_points(layers);
    let norm = |(px, py): (f64, f64)| ((px - x.lo) / (x.hi - x.lo), (py - y.lo) / (y.hi - y.lo));
    let corners = [
        Corner::UpperRight,
        Corner::UpperLeft,
        Corner::LowerRight,
        Corner::LowerLeft,
    ];
    let inside = |corner: Corner, (nx, ny): (f64, f64)| {
        let (x0, x1, y0, y1) = legend_box(layers, corner, plot_px);
        (x0..=x1).contains(&nx) && (y0..=y1).contains(&ny)
    };
    if let Some(free) = corners
        .into_iter()
        .find(|&c| !marks.iter().any(|&p| inside(c, norm(p))))
    {
        return (free, y);
    }
    if !may_grow {
        let fewest = corners
            .into_iter()
            .min_by_key(|&c| marks.iter().filter(|&&p| inside(c, norm(p))).count());
        return (fewest.unwrap_or(Corner::UpperRight), y);
    }
    // The highest mark under each top corner's legend, and the axis top that puts it below the box.
    let needed = |corner: Corner| {
        let (x0, x1, y0, _) = legend_box(layers, corner, plot_px);
        let top = marks
            .iter()
            .map(|&p| norm(p))
            .filter(|&(nx, _)| (x0..=x1).contains(&nx))
            .map(|(_, ny)| ny)
            .fold(0.0, f64::max);
        let gap = 0.02;
        y.lo + (y.hi - y.lo) * top / (y0 - gap).max(0.1)
    };
    let (corner, hi) = [Corner::UpperRight, Corner::UpperLeft]
        .into_iter()
        .map(|c| (c, needed(c)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((Corner::UpperRight, y.hi));
    let hi = hi.max(y.hi);
    (
        corner,
        Axis {
            hi,
            ticks: nice_ticks(y.lo, hi),
            ..y
        },
    )
}

/// Points along every mark (vertices of lines and band edges, bar outlines and error bars).
fn mark_points(layers: &[Layer]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    for layer in layers {
        match &layer.marks {
            Marks::Line { points: p, band } => {
                sample_path(p, &mut points);
                sample_path(
                    &band.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(),
                    &mut points,
                );
                sample_path(
                    &band.iter().map(|b| (b.0, b.2)).collect::<Vec<_>>(),
                    &mut points,
                );
            }
            Marks::Bars(bars) => {
                for bar in bars {
                    let top = bar.mean.max(bar.hi);
                    for xs in [bar.x0, (bar.x0 + bar.x1) / 2.0, bar.x1] {
                        sample_path(&[(xs, 0.0), (xs, top)], &mut points);
                    }
                }
            }
            Marks::Step(p) => sample_path(p, &mut points),
            Marks::Points(p) => points.extend(p),
        }
    }
    points
}

/// Appends points along a polyline: its vertices and points a quarter of the way along each
/// segment, so long segments count where they pass.
fn sample_path(path: &[(f64, f64)], out: &mut Vec<(f64, f64)>) {
    out.extend(path.first());
    for pair in path.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        out.extend((1..=4).map(|i| {
            let t = f64::from(i) / 4.0;
            (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind, series: Option<&str>) -> PlotSpec {
        PlotSpec {
            series: series.map(str::to_string),
            ..PlotSpec::new(kind, "batch", "energy_j")
        }
    }

    fn frame() -> DataFrame {
        df! {
            "batch" => [1i64, 1, 2, 2, 1, 1, 2, 2],
            "governor" => ["stock", "stock", "stock", "stock", "fuse", "fuse", "fuse", "fuse"],
            "energy_j" => [10.0, 14.0, 20.0, 24.0, 5.0, 7.0, 9.0, 11.0],
        }
        .unwrap()
    }

    #[test]
    fn line_means_and_bands() {
        let scene = build(&frame(), &spec(Kind::Line, Some("governor"))).unwrap();
        assert_eq!(scene.layers.len(), 2);
        assert_eq!(scene.layers[0].label, "stock");
        let Marks::Line { points, band } = &scene.layers[0].marks else {
            panic!("not a line")
        };
        assert_eq!(points, &[(1.0, 12.0), (2.0, 22.0)]);
        // {10, 14}: half-width 12.706205 · √8 / √2 = 25.41241.
        assert!((band[0].1 - (12.0 - 25.41241)).abs() < 1e-4);
        assert!(scene.y.lo <= band[0].1 && scene.y.hi >= band[1].2);
        assert_eq!(scene.x.label, "Batch");
        assert_eq!(scene.y.label, "Energy (J)");
        assert!(scene.legend.is_some());
    }

    #[test]
    fn log_axes_average_in_data_units_and_tick_the_decades() {
        let df = df! {
            "n" => [10i64, 10, 100, 1000, 0],
            "gas" => [1.0e3, 3.0e3, 1.0e5, 1.0e6, 5.0],
        }
        .unwrap();
        let spec = PlotSpec {
            x_log: true,
            y_log: true,
            ..PlotSpec::new(Kind::Line, "n", "gas")
        };
        let scene = build(&df, &spec).unwrap();
        let Marks::Line { points, band } = &scene.layers[0].marks else {
            panic!("not a line")
        };
        // n = 0 is outside the log domain; the mean of {1e3, 3e3} is taken before the log.
        assert_eq!(points.len(), 3);
        assert!(
            (points[0].0 - 1.0).abs() < 1e-12 && (points[0].1 - 2.0e3f64.log10()).abs() < 1e-12
        );
        assert!((points[2].1 - 6.0).abs() < 1e-12);
        // A CI reaching below zero is cut at a tenth of the smallest value.
        assert!((band[0].1 - 2.0).abs() < 1e-12);
        let labels: Vec<&str> = scene.x.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["10", "100", "1000"]);
        assert!(scene.y.ticks.iter().any(|t| t.1 == "1e6"));
    }

    #[test]
    fn log_axes_are_refused_where_they_cannot_be_drawn() {
        let bar = PlotSpec {
            y_log: true,
            ..spec(Kind::Bar, None)
        };
        assert!(matches!(
            build(&frame(), &bar),
            Err(AnalysisError::Unsupported(_))
        ));
        let negative = df! { "batch" => [1i64], "energy_j" => [-1.0] }.unwrap();
        let line = PlotSpec {
            y_log: true,
            ..spec(Kind::Line, None)
        };
        assert!(matches!(
            build(&negative, &line),
            Err(AnalysisError::Empty(_))
        ));
    }

    #[test]
    fn grouped_bars_per_category() {
        let scene = build(&frame(), &spec(Kind::Bar, Some("governor"))).unwrap();
        assert!(scene.x.categorical);
        assert_eq!(
            scene.x.ticks,
            [(0.0, "1".to_string()), (1.0, "2".to_string())]
        );
        let Marks::Bars(stock) = &scene.layers[0].marks else {
            panic!("not bars")
        };
        let Marks::Bars(fuse) = &scene.layers[1].marks else {
            panic!("not bars")
        };
        assert!(stock[0].x1 <= fuse[0].x0 && fuse[0].x1 <= 0.4 && stock[0].x0 >= -0.4);
        assert_eq!(fuse[1].mean, 10.0);
        assert!(scene.y.lo < 0.0, "the CI of {{10, 14}} reaches below 0");
    }

    #[test]
    fn cdf_steps_from_zero_to_one() {
        let scene = build(&frame(), &spec(Kind::Cdf, None)).unwrap();
        assert_eq!(scene.layers.len(), 1);
        assert_eq!(scene.x.label, "Energy (J)");
        assert_eq!(scene.y.label, "CDF");
        assert!(scene.legend.is_none());
        let Marks::Step(steps) = &scene.layers[0].marks else {
            panic!("not steps")
        };
        assert_eq!(steps.first(), Some(&(scene.x.lo, 0.0)));
        assert_eq!(steps.last(), Some(&(scene.x.hi, 1.0)));
        assert_eq!(steps[1], (5.0, 0.0));
        assert_eq!(steps[2], (5.0, 1.0 / 8.0));
        // The top left of a CDF is empty.
        let legend = build(&frame(), &spec(Kind::Cdf, Some("governor")))
            .unwrap()
            .legend;
        assert!(
            matches!(legend, Some(Corner::UpperLeft | Corner::LowerRight)),
            "{legend:?}"
        );
    }

    /// Every mark point, in shares of the plotting area.
    fn normalised_marks(scene: &Scene) -> Vec<(f64, f64)> {
        let (x, y) = (&scene.x, &scene.y);
        mark_points(&scene.layers)
            .into_iter()
            .map(|(px, py)| ((px - x.lo) / (x.hi - x.lo), (py - y.lo) / (y.hi - y.lo)))
            .collect()
    }

    #[test]
    fn the_legend_covers_no_bar_even_when_bars_fill_every_corner() {
        // Four defenses × four attacks, every bar near 1 (a backdoor that succeeds everywhere).
        let (mut defense, mut attack, mut rate) = (vec![], vec![], vec![]);
        for d in ["none", "multi-krum", "flame", "flanders (trimmed-mean+)"] {
            for a in ["a3fl", "cerp", "iba", "dba"] {
                for r in [0.9, 0.95, 1.0] {
                    defense.push(d);
                    attack.push(a);
                    rate.push(r);
                }
            }
        }
        let df = df! { "defense" => defense, "attack" => attack, "backdoor_success_rate" => rate }
            .unwrap();
        let spec = PlotSpec {
            series: Some("attack".into()),
            ..PlotSpec::new(Kind::Bar, "defense", "backdoor_success_rate")
        };
        let scene = build(&df, &spec).unwrap();
        let corner = scene.legend.unwrap();
        let plot_px = plot_area_px(&scene.x, &scene.y, false);
        let (x0, x1, y0, y1) = legend_box(&scene.layers, corner, plot_px);
        let covered: Vec<_> = normalised_marks(&scene)
            .into_iter()
            .filter(|&(nx, ny)| (x0..=x1).contains(&nx) && (y0..=y1).contains(&ny))
            .collect();
        assert!(
            covered.is_empty(),
            "legend in {corner:?} covers {covered:?}"
        );
        assert!(scene.y.hi > 1.05, "the axis was raised: {}", scene.y.hi);
        assert!(
            scene.y.ticks.iter().all(|t| t.0 <= 1.0),
            "{:?}",
            scene.y.ticks
        );
        // A rate's interval stays within [0, 1]: {0.9, 0.95, 1} has t-interval up to ≈ 1.07.
        for layer in &scene.layers {
            let Marks::Bars(bars) = &layer.marks else {
                panic!("not bars")
            };
            assert!(bars.iter().all(|b| b.lo >= 0.0 && b.hi <= 1.0), "{bars:?}");
            assert!(bars.iter().any(|b| b.hi == 1.0));
        }
    }

    #[test]
    fn unbounded_quantities_keep_the_student_t_interval() {
        let df = df! { "g" => ["a", "a", "a"], "energy_j" => [0.9, 0.95, 1.0] }.unwrap();
        let scene = build(&df, &PlotSpec::new(Kind::Bar, "g", "energy_j")).unwrap();
        let Marks::Bars(bars) = &scene.layers[0].marks else {
            panic!("not bars")
        };
        assert!(bars[0].hi > 1.05, "{bars:?}");
    }

    #[test]
    fn crossings_on_the_plotted_means_in_data_units() {
        // Gas against participants, log–log: `flat` = 1000·n, `fixed` = 1e5 + 10·n per replication
        // pair (means as given): the lines meet between n = 100 and 1000, at 10^… in log units.
        let n = [10i64, 10, 100, 100, 1000, 1000];
        let mut participants = Vec::new();
        let mut protocol = Vec::new();
        let mut gas = Vec::new();
        for (p, f) in [
            ("onchain", (|n: f64| 1000.0 * n) as fn(f64) -> f64),
            ("commit", |n: f64| 1e5 + 10.0 * n),
        ] {
            for (k, &x) in n.iter().enumerate() {
                participants.push(x);
                protocol.push(p);
                gas.push(f(x as f64) * if k % 2 == 0 { 0.99 } else { 1.01 });
            }
        }
        let df =
            df! { "participants" => participants, "protocol" => protocol, "gas" => gas }.unwrap();
        let spec = PlotSpec {
            series: Some("protocol".into()),
            x_log: true,
            y_log: true,
            marks: vec![crossing::MarkSpec {
                crossing: ["onchain".into(), "commit".into()],
                label: None,
            }],
            ..PlotSpec::new(Kind::Line, "participants", "gas")
        };
        let scene = build(&df, &spec).unwrap();
        let c = &scene.crossings[0];
        assert_eq!(c.label, "onchain = commit");
        // Log–log segment from (2, 5) to (3, 6) for onchain, (2, log 1.01e5) to (3, log 1.1e5)
        // for commit: solved exactly on the drawn segments.
        let (ya0, ya1) = (5.0, 6.0);
        let (yb0, yb1) = (1.01e5f64.log10(), 1.1e5f64.log10());
        let t = (ya0 - yb0) / ((ya0 - yb0) - (ya1 - yb1));
        let expect = 10f64.powf(2.0 + t);
        assert_eq!(c.points.len(), 1);
        assert!((c.points[0].x - expect).abs() < 1e-6 * expect, "{c:?}");
        assert_eq!(c.points[0].lower_after.as_deref(), Some("commit"));
        assert_eq!(c.x_range, Some((10.0, 1000.0)));

        let unknown = PlotSpec {
            marks: vec![crossing::MarkSpec {
                crossing: ["onchain".into(), "nope".into()],
                label: None,
            }],
            ..spec.clone()
        };
        let err = build(&df, &unknown).unwrap_err().to_string();
        assert!(
            err.contains("`nope`") && err.contains("onchain, commit"),
            "{err}"
        );
        let bars = PlotSpec {
            kind: Kind::Bar,
            x_log: false,
            y_log: false,
            ..spec
        };
        assert!(matches!(
            build(&df, &bars),
            Err(AnalysisError::Unsupported(_))
        ));
    }

    #[test]
    fn scatter_dodges_categories() {
        let df = df! { "soc" => ["a", "a"], "g" => ["x", "y"], "energy_j" => [1.0, 2.0] }.unwrap();
        let spec = PlotSpec {
            series: Some("g".into()),
            ..PlotSpec::new(Kind::Scatter, "soc", "energy_j")
        };
        let scene = build(&df, &spec).unwrap();
        let Marks::Points(a) = &scene.layers[0].marks else {
            panic!("not points")
        };
        let Marks::Points(b) = &scene.layers[1].marks else {
            panic!("not points")
        };
        assert_eq!(a[0].0, -b[0].0);
        assert!(a[0].0 < 0.0);
    }
}
