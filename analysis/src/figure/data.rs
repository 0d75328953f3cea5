//! From a runs frame to plain observations: one `(series, x, y)` triple per usable row.

use std::collections::HashMap;

use polars::prelude::*;

use super::ticks::format_number;
use crate::error::{AnalysisError, Result};
use crate::summary::require_column;

/// How x values are placed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum XScale {
    /// x is a number.
    Numeric,
    /// x is the index of one of these category labels.
    Categories(Vec<String>),
}

/// One usable row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Obs {
    /// Index into [`Observations::series`].
    pub series: usize,
    /// Numeric x, or category index.
    pub x: f64,
    /// The y value, finite.
    pub y: f64,
}

/// The usable rows of a frame for one figure.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observations {
    /// How [`Obs::x`] is to be read.
    pub scale: XScale,
    /// Series labels in first-appearance order (one empty label when there is no series column).
    pub series: Vec<String>,
    /// The rows, in frame order.
    pub rows: Vec<Obs>,
}

/// What to read from the frame.
pub(super) struct Columns<'a> {
    /// The x column; `None` places every row at x = 0 (CDFs use y only).
    pub x: Option<&'a str>,
    /// The y column, numeric.
    pub y: &'a str,
    /// The column whose values name the series.
    pub series: Option<&'a str>,
    /// Whether a numeric x column is still drawn as categories (bar charts), in ascending order.
    pub numeric_x_as_categories: bool,
}

/// Reads the usable rows of `df`: rows without `error`, with an x value (finite if numeric) and a
/// finite y value. A string (or boolean) x column becomes categories in first-appearance order.
pub(super) fn observe(df: &DataFrame, columns: &Columns) -> Result<Observations> {
    for name in columns
        .x
        .iter()
        .chain([&columns.y])
        .chain(columns.series.iter())
    {
        require_column(df, name)?;
    }
    let y_dtype = df.column(columns.y)?.dtype();
    if !y_dtype.is_primitive_numeric() {
        return Err(AnalysisError::NotNumeric {
            column: columns.y.to_string(),
            dtype: y_dtype.to_string(),
        });
    }
    let df = match df.column("error") {
        Ok(error) => df.filter(&error.is_null())?,
        Err(_) => df.clone(),
    };

    let y: Vec<Option<f64>> = floats(&df, columns.y)?;
    let x_numeric = match columns.x {
        Some(name) => df.column(name)?.dtype().is_primitive_numeric(),
        None => true,
    };
    let x_raw: Vec<Option<String>> = match columns.x {
        Some(name) if !x_numeric => strings(&df, name)?,
        _ => vec![None; df.height()],
    };
    let x_num: Vec<Option<f64>> = match columns.x {
        Some(name) if x_numeric => floats(&df, name)?,
        Some(_) => vec![None; df.height()],
        None => vec![Some(0.0); df.height()],
    };
    let series_raw: Vec<Option<String>> = match columns.series {
        Some(name) => strings(&df, name)?,
        None => vec![Some(String::new()); df.height()],
    };

    let usable: Vec<usize> = (0..df.height())
        .filter(|&i| {
            let x_present = x_num[i].is_some_and(f64::is_finite) || x_raw[i].is_some();
            x_present && y[i].is_some_and(f64::is_finite)
        })
        .collect();
    if usable.is_empty() {
        return Err(AnalysisError::Empty(format!(
            "nothing to plot: no row without error has a value of `{}`{}",
            columns.y,
            columns
                .x
                .map(|x| format!(" and of `{x}`"))
                .unwrap_or_default()
        )));
    }

    let (series, series_idx) = first_appearance(
        usable
            .iter()
            .map(|&i| series_raw[i].clone().unwrap_or_else(|| "null".to_string())),
    );
    let (scale, x): (XScale, Vec<f64>) = if !x_numeric {
        let (labels, idx) =
            first_appearance(usable.iter().map(|&i| x_raw[i].clone().unwrap_or_default()));
        (
            XScale::Categories(labels),
            idx.into_iter().map(|i| i as f64).collect(),
        )
    } else if columns.numeric_x_as_categories {
        let values: Vec<f64> = usable.iter().filter_map(|&i| x_num[i]).collect();
        let mut distinct = values.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let position = |v: f64| distinct.partition_point(|&d| d < v) as f64;
        let labels = distinct.iter().map(|&v| format_number(v)).collect();
        (
            XScale::Categories(labels),
            values.into_iter().map(position).collect(),
        )
    } else {
        (
            XScale::Numeric,
            usable.iter().filter_map(|&i| x_num[i]).collect(),
        )
    };

    let rows = usable
        .iter()
        .zip(series_idx)
        .zip(x)
        .filter_map(|((&i, series), x)| {
            Some(Obs {
                series,
                x,
                y: y[i]?,
            })
        })
        .collect();
    Ok(Observations {
        scale,
        series,
        rows,
    })
}

/// Distinct values in order of first appearance, and each item's index among them.
fn first_appearance(items: impl Iterator<Item = String>) -> (Vec<String>, Vec<usize>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut distinct = Vec::new();
    let indices = items
        .map(|item| {
            *seen.entry(item.clone()).or_insert_with(|| {
                distinct.push(item);
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, indices)
}

fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let column = df.column(name)?.cast(&DataType::Float64)?;
    Ok(column.f64()?.into_iter().collect())
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let column = df.column(name)?.cast(&DataType::String)?;
    Ok(column
        .str()?
        .into_iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols<'a>(x: Option<&'a str>, series: Option<&'a str>, cat: bool) -> Columns<'a> {
        Columns {
            x,
            y: "energy_j",
            series,
            numeric_x_as_categories: cat,
        }
    }

    #[test]
    fn categories_series_and_skipped_rows() {
        let df = df! {
            "governor" => ["fuse", "stock", "fuse", "perf", "stock"],
            "soc" => [Some("g3"), Some("g3"), Some("sd8"), Some("sd8"), None],
            "energy_j" => [Some(1.0), Some(f64::INFINITY), None, Some(4.0), Some(5.0)],
            "error" => [None, None, None, Some("boom"), None],
        }
        .unwrap();
        let obs = observe(&df, &cols(Some("governor"), Some("soc"), false)).unwrap();
        assert_eq!(
            obs.scale,
            XScale::Categories(vec!["fuse".into(), "stock".into()])
        );
        assert_eq!(obs.series, ["g3", "null"]);
        assert_eq!(
            obs.rows,
            [
                Obs {
                    series: 0,
                    x: 0.0,
                    y: 1.0
                },
                Obs {
                    series: 1,
                    x: 1.0,
                    y: 5.0
                }
            ]
        );
    }

    #[test]
    fn numeric_x_as_sorted_categories_or_numbers() {
        let df = df! { "batch" => [8i64, 2, 8, 4], "energy_j" => [1.0, 2.0, 3.0, 4.0] }.unwrap();
        let obs = observe(&df, &cols(Some("batch"), None, true)).unwrap();
        assert_eq!(
            obs.scale,
            XScale::Categories(vec!["2".into(), "4".into(), "8".into()])
        );
        let xs: Vec<f64> = obs.rows.iter().map(|o| o.x).collect();
        assert_eq!(xs, [2.0, 0.0, 2.0, 1.0]);
        assert_eq!(obs.series, [""]);

        let obs = observe(&df, &cols(Some("batch"), None, false)).unwrap();
        assert_eq!(obs.scale, XScale::Numeric);
        let xs: Vec<f64> = obs.rows.iter().map(|o| o.x).collect();
        assert_eq!(xs, [8.0, 2.0, 8.0, 4.0]);
    }

    #[test]
    fn errors_are_values() {
        let df = df! { "soc" => ["a"], "energy_j" => [1.0] }.unwrap();
        let err = observe(&df, &cols(Some("nope"), None, false)).unwrap_err();
        assert!(matches!(err, AnalysisError::UnknownColumn { .. }), "{err}");
        let text = Columns {
            y: "soc",
            ..cols(None, None, false)
        };
        let err = observe(&df, &text).unwrap_err();
        assert!(matches!(err, AnalysisError::NotNumeric { .. }), "{err}");
        let err = observe(&df.head(Some(0)), &cols(None, None, false)).unwrap_err();
        assert!(matches!(err, AnalysisError::Empty(_)), "{err}");
    }
}
