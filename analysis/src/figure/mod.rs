//! Paper-style figures drawn with plotters, each written as PNG and SVG.
//!
//! [`plot`] reads a runs frame through `data` (usable rows), lays the figure out in data
//! coordinates in `scene` (means and CIs, bars, CDF steps, legend corner) and draws it with
//! `render` on both backends.

mod crossing;
mod data;
mod labels;
mod render;
mod scene;
mod ticks;

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use crate::error::Result;
pub use crossing::{
    CSV_HEADER as CROSSINGS_CSV_HEADER, CrossPoint, Crossing, MarkSpec, significant,
};

/// The kind of figure (`kind:` in report files, `--kind` of `sysim plot`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
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
    /// Horizontal axis title; defaults to the column's name in words with its unit (`y` for a
    /// CDF): `per_token_latency_ms` → "Per-token latency (ms)".
    pub x_label: Option<String>,
    /// Vertical axis title; defaults to the column's name in words with its unit (`CDF` for a CDF).
    pub y_label: Option<String>,
    /// Logarithmic horizontal axis (line, scatter, and the variable of a CDF); rows with x ≤ 0 are
    /// left out.
    pub x_log: bool,
    /// Logarithmic vertical axis (line and scatter); rows with y ≤ 0 are left out and CI bands are
    /// cut at a tenth of the smallest positive value.
    pub y_log: bool,
    /// Crossings of two series to mark (line figures with a series column): a vertical line, a
    /// point and the label where they cross.
    pub marks: Vec<MarkSpec>,
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
            x_log: false,
            y_log: false,
            marks: Vec::new(),
        }
    }
}

/// Draws `spec` over the rows of `df` (rows with a non-null `error` are skipped) and writes
/// `<out_stem>.png` and `<out_stem>.svg`, each atomically, creating the parent folder if needed.
/// Returns the two paths. Unknown columns, a non-numeric y, or no usable row are errors.
pub fn plot(df: &DataFrame, spec: &PlotSpec, out_stem: &Path) -> Result<Vec<PathBuf>> {
    plot_marked(df, spec, out_stem).map(|(paths, _)| paths)
}

/// [`plot`], also returning where the series `spec.marks` name cross (one entry per mark), so a
/// report can print and test the break-even points it draws.
pub fn plot_marked(
    df: &DataFrame,
    spec: &PlotSpec,
    out_stem: &Path,
) -> Result<(Vec<PathBuf>, Vec<Crossing>)> {
    let scene = scene::build(df, spec)?;
    let paths = render::write(&scene, out_stem)?;
    Ok((paths, scene.crossings))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use polars::prelude::*;

    use super::*;
    use crate::error::AnalysisError;

    /// A small sweep: 3 governors × 3 batch sizes × 3 replications, one failed run.
    fn sweep() -> DataFrame {
        let (mut governor, mut batch, mut energy, mut latency, mut error) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (g, base) in [("stock", 30.0), ("performance", 40.0), ("fuse", 20.0)] {
            for b in [1i64, 4, 16] {
                for rep in 0..3 {
                    governor.push(g);
                    batch.push(b);
                    let noise = [-1.5, 0.5, 1.0][rep];
                    energy.push(base + 2.0 * (b as f64).log2() + noise);
                    latency.push(10.0 + b as f64 * base / 20.0 + noise * 3.0);
                    error.push(None::<&str>);
                }
            }
        }
        error[4] = Some("out of memory");
        energy[4] = 1e6; // would wreck the axes if the failed run were drawn
        df! {
            "governor" => governor,
            "batch" => batch,
            "energy_j" => energy,
            "ttft_ms_p50" => latency,
            "error" => error,
        }
        .unwrap()
    }

    fn check_files(paths: &[PathBuf], labels: &[&str]) {
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].extension().unwrap(), "png");
        assert_eq!(paths[1].extension().unwrap(), "svg");
        let png = fs::read(&paths[0]).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        assert!(png.len() > 10_000, "PNG of {} bytes", png.len());
        let svg = fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.len() > 2_000, "SVG of {} bytes", svg.len());
        for label in labels {
            assert!(svg.contains(label), "SVG lacks {label:?}");
        }
        let dir = paths[0].parent().unwrap();
        let leftovers: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    fn spec(kind: Kind, x: &str, y: &str, series: Option<&str>) -> PlotSpec {
        PlotSpec {
            series: series.map(str::to_string),
            ..PlotSpec::new(kind, x, y)
        }
    }

    #[test]
    fn line_with_bands_and_legend() {
        let tmp = tempfile::tempdir().unwrap();
        let stem = tmp.path().join("figs").join("line");
        let spec = PlotSpec {
            title: Some("Energy per governor".into()),
            ..spec(Kind::Line, "batch", "energy_j", Some("governor"))
        };
        let paths = plot(&sweep(), &spec, &stem).unwrap();
        assert_eq!(
            paths,
            [
                tmp.path().join("figs/line.png"),
                tmp.path().join("figs/line.svg")
            ]
        );
        check_files(
            &paths,
            &[
                "Batch",
                "Energy (J)",
                "fuse",
                "performance",
                "Energy per governor",
            ],
        );
    }

    #[test]
    fn crossing_marks_are_drawn_and_returned() {
        let tmp = tempfile::tempdir().unwrap();
        // stock rises through a flat series.
        let df = df! {
            "batch" => [1i64, 4, 16, 1, 4, 16],
            "governor" => ["stock", "stock", "stock", "flat", "flat", "flat"],
            "energy_j" => [10.0, 20.0, 40.0, 25.0, 25.0, 25.0],
        }
        .unwrap();
        let spec = PlotSpec {
            marks: vec![MarkSpec {
                crossing: ["stock".into(), "flat".into()],
                label: Some("break-even".into()),
            }],
            ..spec(Kind::Line, "batch", "energy_j", Some("governor"))
        };
        let (paths, crossings) = plot_marked(&df, &spec, &tmp.path().join("marked")).unwrap();
        // 20 → 40 between batch 4 and 16 reaches 25 a quarter of the way: batch 7.
        assert_eq!(crossings.len(), 1);
        assert!((crossings[0].points[0].x - 7.0).abs() < 1e-12);
        check_files(&paths, &["break-even ≈ 7"]);
    }

    #[test]
    fn grouped_bars_with_error_bars() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = PlotSpec {
            x_label: Some("batch size".into()),
            y_label: Some("time to first token (ms)".into()),
            ..spec(Kind::Bar, "batch", "ttft_ms_p50", Some("governor"))
        };
        let paths = plot(&sweep(), &spec, &tmp.path().join("bar")).unwrap();
        check_files(&paths, &["batch size", "time to first token (ms)", "stock"]);
    }

    #[test]
    fn cdf_per_series() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = spec(Kind::Cdf, "batch", "ttft_ms_p50", Some("governor"));
        let paths = plot(&sweep(), &spec, &tmp.path().join("cdf")).unwrap();
        check_files(&paths, &["Median time to first token (ms)", "CDF", "stock"]);
    }

    #[test]
    fn scatter_numeric_and_categorical_without_series() {
        let tmp = tempfile::tempdir().unwrap();
        let numeric = spec(Kind::Scatter, "energy_j", "ttft_ms_p50", Some("governor"));
        let paths = plot(&sweep(), &numeric, &tmp.path().join("scatter")).unwrap();
        check_files(&paths, &["Energy (J)", "Median time to first token (ms)"]);
        let categorical = spec(Kind::Scatter, "governor", "energy_j", None);
        let paths = plot(&sweep(), &categorical, &tmp.path().join("scatter-cat")).unwrap();
        check_files(&paths, &["Governor", "Energy (J)", "performance"]);
        let line = spec(Kind::Line, "governor", "energy_j", None);
        let paths = plot(&sweep(), &line, &tmp.path().join("line-cat")).unwrap();
        check_files(&paths, &["Governor", "Energy (J)"]);
    }

    #[test]
    fn bad_specs_are_errors_and_write_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let stem = tmp.path().join("bad");
        let df = sweep();
        let err = plot(&df, &spec(Kind::Line, "batch", "nope_j", None), &stem).unwrap_err();
        assert!(matches!(err, AnalysisError::UnknownColumn { .. }), "{err}");
        let err = plot(&df, &spec(Kind::Bar, "batch", "governor", None), &stem).unwrap_err();
        assert!(matches!(err, AnalysisError::NotNumeric { .. }), "{err}");
        let err = plot(
            &df,
            &spec(Kind::Scatter, "batch", "energy_j", Some("soc")),
            &stem,
        )
        .unwrap_err();
        assert!(err.to_string().contains("soc"), "{err}");
        let err = plot(
            &df.head(Some(0)),
            &spec(Kind::Cdf, "batch", "energy_j", None),
            &stem,
        )
        .unwrap_err();
        assert!(matches!(err, AnalysisError::Empty(_)), "{err}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn single_point_and_constant_values() {
        let tmp = tempfile::tempdir().unwrap();
        let df = df! { "x" => [2.0], "y_s" => [5.0] }.unwrap();
        for kind in [Kind::Line, Kind::Bar, Kind::Cdf, Kind::Scatter] {
            let stem = tmp.path().join(format!("{kind:?}"));
            let paths = plot(&df, &spec(kind, "x", "y_s", None), &stem).unwrap();
            assert!(paths.iter().all(|p| p.is_file()));
        }
    }
}
