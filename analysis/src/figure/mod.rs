//! Paper-style figures drawn with plotters, each written as PNG and SVG.
//!
//! [`plot`] reads a runs frame through [`data`] (usable rows), lays the figure out in data
//! coordinates in [`scene`] (means and CIs, bars, CDF steps, legend corner) and draws it with
//! [`render`] on both backends.

mod data;
mod render;
mod scene;
mod ticks;

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use crate::error::Result;

/// The kind of figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Mean of y over replications against x, one line per series, with a shaded 95% CI band.
    Line,
    /// Mean of y per x category, bars grouped by series, with 95% CI error bars.
    Bar,
    /// Empirical CDF of y, one curve per series (x is not used).
    Cdf,
    /// Every row as a point, coloured by series.
    Scatter,
}

/// What to draw: kind, columns, and optional text.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSpec {
    /// The kind of figure.
    pub kind: Kind,
    /// Column on the horizontal axis: numeric, or string/boolean for categories (in order of
    /// first appearance). Bar charts treat numbers as categories too, ascending.
    pub x: String,
    /// Numeric column on the vertical axis (the variable whose distribution a CDF shows).
    pub y: String,
    /// Column whose values split the rows into series (colour, marker and legend entry each).
    pub series: Option<String>,
    /// Caption above the plot; none by default, as in a paper.
    pub title: Option<String>,
    /// Horizontal axis title; defaults to the column name (`y` for a CDF), which carries the unit.
    pub x_label: Option<String>,
    /// Vertical axis title; defaults to the column name (`CDF` for a CDF).
    pub y_label: Option<String>,
}

impl PlotSpec {
    /// A figure of `y` against `x` with no series, title or custom labels.
    pub fn new(kind: Kind, x: impl Into<String>, y: impl Into<String>) -> Self {
        PlotSpec {
            kind,
            x: x.into(),
            y: y.into(),
            series: None,
            title: None,
            x_label: None,
            y_label: None,
        }
    }
}

/// Draws `spec` over the rows of `df` (rows with a non-null `error` are skipped) and writes
/// `<out_stem>.png` and `<out_stem>.svg`, each atomically, creating the parent folder if needed.
/// Returns the two paths. Unknown columns, a non-numeric y, or no usable row are errors.
pub fn plot(df: &DataFrame, spec: &PlotSpec, out_stem: &Path) -> Result<Vec<PathBuf>> {
    let scene = scene::build(df, spec)?;
    render::write(&scene, out_stem)
}
