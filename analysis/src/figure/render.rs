//! Drawing a [`Scene`] with plotters on the bitmap (PNG) and SVG backends, with an embedded font so
//! text renders on machines without system fonts.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::ops::Range;

use plotters::chart::SeriesAnno;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use super::scene::{Axis, Corner, Marks, Scene};
use crate::error::{AnalysisError, Result};

/// Figure size in pixels: a single paper column at screen resolution.
const SIZE: (u32, u32) = (800, 500);
/// The embedded font's family name, as plotters looks it up.
const FONT: &str = "sans-serif";
/// Font sizes in pixels.
const TITLE_PX: f64 = 22.0;
const AXIS_TITLE_PX: f64 = 20.0;
const TICK_PX: f64 = 17.0;
const LEGEND_PX: f64 = 17.0;
/// Marker radius and line width in pixels.
const MARKER_PX: i32 = 5;
const LINE_PX: u32 = 3;

/// Okabe–Ito colours, ordered for contrast on white; yellow last, as it is faint.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xF0, 0xE4, 0x42), // yellow
];
/// Grid lines and error bars.
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);

/// Marker shapes, cycled with the palette so series stay apart in greyscale.
#[derive(Clone, Copy)]
enum Shape {
    Circle,
    Triangle,
    Square,
    Cross,
}
const SHAPES: [Shape; 4] = [Shape::Circle, Shape::Triangle, Shape::Square, Shape::Cross];

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;
type DrawResult<T, DB> =
    std::result::Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Writes `<stem>.png` and `<stem>.svg`, each through a temporary sibling renamed into place.
pub(super) fn write(scene: &Scene, stem: &Path) -> Result<Vec<PathBuf>> {
    register_embedded_font().map_err(|message| AnalysisError::Draw {
        path: stem.to_path_buf(),
        message,
    })?;
    if let Some(parent) = stem.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| AnalysisError::io(parent, e))?;
    }
    let png = sibling(stem, "png");
    let svg = sibling(stem, "svg");
    write_png(scene, &png)?;
    write_svg(scene, &svg)?;
    Ok(vec![png, svg])
}

/// `stem` with `.ext` appended (not replacing a dot already in the name).
fn sibling(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    stem.with_file_name(name)
}

fn write_png(scene: &Scene, path: &Path) -> Result<()> {
    // The encoder picks the format from the extension, so the temporary file ends in `.png` too.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp{}.png", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let drawn = {
        let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
        draw(&root, scene).and_then(|()| root.present())
    };
    let result = drawn
        .map_err(|e| AnalysisError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| AnalysisError::io(path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_svg(scene: &Scene, path: &Path) -> Result<()> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&root, scene)
            .and_then(|()| root.present())
            .map_err(|e| AnalysisError::Draw {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    }
    sim_run::table::write_bytes_atomic(path, text.as_bytes())
        .map_err(|e| AnalysisError::io(path, e))
}

/// Registers the embedded DejaVu Sans as plotters' sans-serif font, once per process.
fn register_embedded_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
            register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())
        })
        .clone()
}

fn text(px: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, px).into_font()).color(&INK)
}

fn draw<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, Shift>,
    scene: &'a Scene,
) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let vertical_x = vertical_x_labels(&scene.x);
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(12)
        .margin_right(28)
        .x_label_area_size(x_label_area_px(&scene.x))
        .y_label_area_size(y_label_area_px(&scene.y));
    if let Some(title) = &scene.title {
        builder.caption(title, text(TITLE_PX));
    }
    let mut chart = builder.build_cartesian_2d(coord(&scene.x), coord(&scene.y))?;

    // Crowded categories are drawn vertically below the axis by `vertical_tick_labels`.
    let x_label = |v: &f64| {
        if vertical_x {
            String::new()
        } else {
            tick_label(&scene.x, *v)
        }
    };
    let y_label = |v: &f64| tick_label(&scene.y, *v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID.stroke_width(1))
        .axis_style(INK.stroke_width(1))
        .label_style(text(TICK_PX))
        .axis_desc_style(text(AXIS_TITLE_PX))
        .x_desc(scene.x.label.as_str())
        .y_desc(scene.y.label.as_str())
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label);
    if scene.x.categorical {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    if vertical_x {
        vertical_tick_labels(root, &chart, &scene.x, scene.y.lo)?;
    }

    let with_legend = scene.legend.is_some();
    for (i, layer) in scene.layers.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let shape = SHAPES[i % SHAPES.len()];
        match &layer.marks {
            Marks::Line { points, band } => {
                draw_band(&mut chart, band, color)?;
                let anno = chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(LINE_PX)))?;
                if with_legend {
                    legend_entry(anno.label(layer.label.as_str()), shape, color, true);
                }
                draw_markers(&mut chart, points, shape, color)?;
            }
            Marks::Bars(bars) => {
                let anno =
                    chart
                        .draw_series(bars.iter().map(|b| {
                            Rectangle::new([(b.x0, 0.0), (b.x1, b.mean)], color.filled())
                        }))?;
                if with_legend {
                    anno.label(layer.label.as_str()).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 7), (x + 20, y + 7)], color.filled())
                    });
                }
                chart.draw_series(bars.iter().flat_map(|b| {
                    let xc = (b.x0 + b.x1) / 2.0;
                    error_bar(xc, b.lo, b.hi, (b.x1 - b.x0) * 0.2)
                }))?;
            }
            Marks::Step(points) => {
                let anno = chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(LINE_PX)))?;
                if with_legend {
                    anno.label(layer.label.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x - 4, y), (x + 24, y)], color.stroke_width(LINE_PX))
                    });
                }
            }
            Marks::Points(points) => {
                let anno = draw_markers(&mut chart, points, shape, color)?;
                if with_legend {
                    legend_entry(anno.label(layer.label.as_str()), shape, color, false);
                }
            }
        }
    }

    if let Some(corner) = scene.legend {
        chart
            .configure_series_labels()
            .position(match corner {
                Corner::UpperRight => SeriesLabelPosition::UpperRight,
                Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
                Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
            })
            .margin(12)
            .legend_area_size(34)
            .label_font(text(LEGEND_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .draw()?;
    }
    // Over the legend: a crossing's label must stay readable wherever the legend went.
    draw_crossings(&mut chart, scene)
}

/// Each crossing of a mark: a thin vertical line across the plot, a ring where the lines meet, and
/// the mark's label with the crossing's x at the top of the line, or below a legend in a top corner
/// (successive labels one line lower, so crossings close in x stay readable).
fn draw_crossings<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    scene: &Scene,
) -> DrawResult<(), DB> {
    let style = INK.stroke_width(1);
    let label_style = text(LEGEND_PX - 2.0);
    // Labels start at the top of the plot, or below the legend when it sits in a top corner.
    let first_top = match scene.legend {
        Some(Corner::UpperLeft | Corner::UpperRight) => {
            super::scene::legend_reach_px(&scene.layers) as i32 + 6
        }
        _ => 4,
    };
    let points = scene
        .crossings
        .iter()
        .flat_map(|c| c.points.iter().map(move |p| (c, p)));
    for (k, (c, p)) in points.enumerate() {
        let (x, y) = p.plotted;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, scene.y.lo), (x, scene.y.hi)],
            style,
        )))?;
        chart.draw_series(std::iter::once(Circle::new((x, y), MARKER_PX + 3, style)))?;
        let label = format!("{} ≈ {}", c.label, super::crossing::significant(p.x));
        let top = first_top + 20 * k as i32;
        let width = (label.chars().count() as f64 * (LEGEND_PX - 2.0) * 0.6) as i32;
        // Right of the line, or left of it in the right part of the plot.
        let left_of_line = (x - scene.x.lo) / (scene.x.hi - scene.x.lo) > 0.6;
        let (x0, text_x, anchor) = if left_of_line {
            (-10 - width, -4, HPos::Right)
        } else {
            (2, 4, HPos::Left)
        };
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, scene.y.hi))
                + Rectangle::new(
                    [(x0, top - 2), (x0 + width + 8, top + 18)],
                    WHITE.mix(0.9).filled(),
                )
                + Text::new(
                    label,
                    (text_x, top),
                    label_style.pos(Pos::new(anchor, VPos::Top)),
                ),
        ))?;
    }
    Ok(())
}

/// A linear axis whose grid lines and labels sit exactly at the scene's ticks.
struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (from, to): (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        from + (f64::from(to - from) * share).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Ticks only: no light grid lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Average glyph advance of the embedded font in ems for lower-case labels (DejaVu Sans, measured ≈ 0.46).
const CHAR_WIDTH_EM: f64 = 0.48;

/// Whether category labels would overlap side by side and are drawn vertically instead: the
/// widest label (plus a gap) does not fit in its share of the plot width.
fn vertical_x_labels(axis: &Axis) -> bool {
    if !axis.categorical || axis.ticks.is_empty() {
        return false;
    }
    let plot_px = f64::from(SIZE.0) - 140.0;
    let slot_px = plot_px / axis.ticks.len() as f64;
    let widest_px = axis
        .ticks
        .iter()
        .map(|t| t.1.chars().count() as f64 * TICK_PX * CHAR_WIDTH_EM)
        .fold(0.0, f64::max);
    widest_px + 8.0 > slot_px
}

/// Height of the area below the plot: its tick labels and axis title.
fn x_label_area_px(x: &Axis) -> u32 {
    if vertical_x_labels(x) {
        vertical_label_area_px(x)
    } else {
        62
    }
}

/// Width of the area left of the plot: its tick labels and axis title.
fn y_label_area_px(y: &Axis) -> u32 {
    let chars = y.ticks.iter().map(|t| t.1.chars().count()).max();
    44 + 10 * chars.unwrap_or(1) as u32
}

/// Size in pixels of the plotting area inside the figure, for axes `x` and `y` (with a title
/// line when `titled`): what the legend's box is measured against.
pub(super) fn plot_area_px(x: &Axis, y: &Axis, titled: bool) -> (f64, f64) {
    let caption = if titled { TITLE_PX * 1.6 } else { 0.0 };
    let w = f64::from(SIZE.0) - 12.0 - 28.0 - f64::from(y_label_area_px(y));
    let h = f64::from(SIZE.1) - 24.0 - f64::from(x_label_area_px(x)) - caption;
    (w.max(1.0), h.max(1.0))
}

/// Height of the area below the plot when category labels stand vertically: the gap below the
/// ticks, the longest label (at a generous glyph width, as capitals and digits are wider than the
/// average), a gap, and the axis title's line, so the title never runs into a label.
fn vertical_label_area_px(axis: &Axis) -> u32 {
    let longest = axis.ticks.iter().map(|t| t.1.chars().count()).max();
    let labels_px = TICK_PX * (CHAR_WIDTH_EM + 0.04) * longest.unwrap_or(1) as f64;
    (8.0 + labels_px + 6.0 + AXIS_TITLE_PX * 1.3).ceil() as u32
}

/// Draws category labels rotated a quarter turn, each ending just below its tick.
fn vertical_tick_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart<'_, DB>,
    x: &Axis,
    y_lo: f64,
) -> DrawResult<(), DB> {
    let style = text(TICK_PX)
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (value, label) in &x.ticks {
        let (px, py) = chart.backend_coord(&(*value, y_lo));
        root.draw_text(label, &style, (px, py + 8))?;
    }
    Ok(())
}

fn coord(axis: &Axis) -> Ticked {
    Ticked {
        range: axis.lo..axis.hi,
        ticks: axis.ticks.iter().map(|t| t.0).collect(),
    }
}

/// The label of the tick nearest to `v` (plotters asks for labels at the tick positions).
fn tick_label(axis: &Axis, v: f64) -> String {
    axis.ticks
        .iter()
        .min_by(|a, b| (a.0 - v).abs().total_cmp(&(b.0 - v).abs()))
        .map(|t| t.1.clone())
        .unwrap_or_default()
}

/// The shaded 95% CI band of a line; a lone point gets an error bar instead.
fn draw_band<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    band: &[(f64, f64, f64)],
    color: RGBColor,
) -> DrawResult<(), DB> {
    if let [(x, lo, hi)] = band {
        let width = (chart.x_range().end - chart.x_range().start) * 0.01;
        chart.draw_series(error_bar(*x, *lo, *hi, width))?;
    } else if band.len() > 1 {
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|&(x, _, hi)| (x, hi))
            .chain(band.iter().rev().map(|&(x, lo, _)| (x, lo)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            color.mix(0.2).filled(),
        )))?;
    }
    Ok(())
}

/// A vertical error bar from `lo` to `hi` at `x`, with caps `cap` wide on each side.
fn error_bar(x: f64, lo: f64, hi: f64, cap: f64) -> [PathElement<(f64, f64)>; 3] {
    let style = INK.stroke_width(2);
    [
        PathElement::new(vec![(x, lo), (x, hi)], style),
        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], style),
        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], style),
    ]
}

/// Draws a marker of `shape` at each point.
fn draw_markers<'c, 'a, DB: DrawingBackend>(
    chart: &'c mut Chart<'a, DB>,
    points: &[(f64, f64)],
    shape: Shape,
    color: RGBColor,
) -> DrawResult<&'c mut SeriesAnno<'a, DB>, DB> {
    let (r, fill) = (MARKER_PX, color.filled());
    let points = points.iter().copied();
    match shape {
        Shape::Circle => chart.draw_series(points.map(|p| Circle::new(p, r, fill))),
        Shape::Triangle => chart.draw_series(points.map(|p| TriangleMarker::new(p, r + 1, fill))),
        Shape::Square => {
            chart.draw_series(points.map(|p| {
                EmptyElement::at(p) + Rectangle::new([(1 - r, 1 - r), (r - 1, r - 1)], fill)
            }))
        }
        Shape::Cross => chart.draw_series(points.map(|p| Cross::new(p, r, color.stroke_width(3)))),
    }
}

/// The legend key of a series: its marker, on a short line when `line`.
fn legend_entry<'a, DB: DrawingBackend + 'a>(
    anno: &mut SeriesAnno<'a, DB>,
    shape: Shape,
    color: RGBColor,
    line: bool,
) {
    let (r, fill) = (MARKER_PX, color.filled());
    let stroke = if line {
        color.stroke_width(LINE_PX)
    } else {
        TRANSPARENT.into()
    };
    let key = move |(x, y): (i32, i32)| {
        EmptyElement::at((x + 10, y)) + PathElement::new(vec![(-14, 0), (14, 0)], stroke)
    };
    match shape {
        Shape::Circle => anno.legend(move |c| key(c) + Circle::new((0, 0), r, fill)),
        Shape::Triangle => anno.legend(move |c| key(c) + TriangleMarker::new((0, 0), r + 1, fill)),
        Shape::Square => {
            anno.legend(move |c| key(c) + Rectangle::new([(1 - r, 1 - r), (r - 1, r - 1)], fill))
        }
        Shape::Cross => anno.legend(move |c| key(c) + Cross::new((0, 0), r, color.stroke_width(3))),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn categories(labels: &[&str]) -> Axis {
        Axis {
            lo: -0.5,
            hi: labels.len() as f64 - 0.5,
            ticks: labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i as f64, (*l).to_owned()))
                .collect(),
            label: "governor".into(),
            categorical: true,
        }
    }

    #[test]
    fn long_crowded_categories_are_drawn_vertically() {
        assert!(!vertical_x_labels(&categories(&["a", "b", "c"])));
        let long = [
            "stock (schedutil+ondemand+bw_hwmon)",
            "fuse",
            "oracle",
            "performance",
        ];
        assert!(vertical_x_labels(&categories(&long)));
        let numeric = Axis {
            categorical: false,
            ..categories(&long)
        };
        assert!(!vertical_x_labels(&numeric));
    }

    #[test]
    fn vertical_labels_leave_a_line_for_the_axis_title() {
        let axis = categories(&["stock (schedutil+ondemand+bw_hwmon)", "fuse"]);
        let labels_px = 35.0 * TICK_PX * CHAR_WIDTH_EM;
        let area = f64::from(vertical_label_area_px(&axis));
        assert!(area >= labels_px + AXIS_TITLE_PX + 10.0, "{area} px");
    }
}
