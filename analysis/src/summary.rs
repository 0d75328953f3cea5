//! Summaries over replications: mean, standard deviation and Student-t 95% confidence interval of a
//! metric per group of parameters.

use polars::prelude::*;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{AnalysisError, Result};

/// Summarises `metric` per group of the `by` columns: columns `by…`, `n` (u32, values used),
/// `mean`, `sd` (sample standard deviation, 0 when n = 1), `ci95_lo` and `ci95_hi` (two-sided 95%
/// Student-t interval of the mean; equal to the mean when n = 1). Rows with a non-null `error`, and
/// null or NaN values of `metric`, are skipped; groups left with no value are omitted. Groups come in
/// order of first appearance. With `by` empty the result is one row over the whole frame (none if
/// no value is left).
pub fn summarise(df: &DataFrame, by: &[&str], metric: &str) -> Result<DataFrame> {
    for name in by.iter().chain([&metric]) {
        require_column(df, name)?;
    }
    let dtype = df.column(metric)?.dtype();
    if !dtype.is_primitive_numeric() {
        return Err(AnalysisError::NotNumeric {
            column: metric.to_string(),
            dtype: dtype.to_string(),
        });
    }

    let value = col(metric).cast(DataType::Float64);
    let mut lf = df.clone().lazy();
    if df.column("error").is_ok() {
        lf = lf.filter(col("error").is_null());
    }
    lf = lf.filter(value.clone().is_not_null().and(value.clone().is_not_nan()));
    let aggs = [
        value.clone().count().cast(DataType::UInt32).alias("n"),
        value.clone().mean().alias("mean"),
        value.std(1).fill_null(lit(0.0)).alias("sd"),
    ];
    let lf = if by.is_empty() {
        lf.select(aggs)
    } else {
        lf.group_by_stable(by.iter().map(|name| col(*name)).collect::<Vec<_>>())
            .agg(aggs)
    };
    let grouped = lf.collect()?;
    let grouped = grouped.filter(&grouped.column("n")?.u32()?.gt(0))?;

    let n = grouped.column("n")?.u32()?;
    let mean = grouped.column("mean")?.f64()?;
    let sd = grouped.column("sd")?.f64()?;
    let (lo, hi): (Vec<f64>, Vec<f64>) = n
        .into_no_null_iter()
        .zip(mean.into_no_null_iter())
        .zip(sd.into_no_null_iter())
        .map(|((n, mean), sd)| {
            let half = ci95_half_width(n, sd);
            (mean - half, mean + half)
        })
        .unzip();
    let mut out = grouped.clone();
    out.with_column(Column::new("ci95_lo".into(), lo))?;
    out.with_column(Column::new("ci95_hi".into(), hi))?;
    Ok(out)
}

/// An [`AnalysisError::UnknownColumn`] unless `df` has a column `name`.
pub(crate) fn require_column(df: &DataFrame, name: &str) -> Result<()> {
    if df.column(name).is_ok() {
        return Ok(());
    }
    Err(AnalysisError::UnknownColumn {
        column: name.to_string(),
        available: df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect(),
    })
}

/// Half-width of the two-sided 95% Student-t confidence interval of a mean of `n` values with sample
/// standard deviation `sd`; 0 when `n` ≤ 1.
pub(crate) fn ci95_half_width(n: u32, sd: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let dof = f64::from(n - 1);
    // A t distribution with positive degrees of freedom and unit scale always exists.
    let t = StudentsT::new(0.0, 1.0, dof)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(f64::NAN);
    t * sd / f64::from(n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-4, "{a} != {b}");
    }

    fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
        df.column(name)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    }

    #[test]
    fn t_quantiles_match_tables() {
        // t(0.975; 1) = 12.7062, t(0.975; 4) = 2.7764, t(0.975; 29) = 2.0452.
        close(ci95_half_width(2, 2f64.sqrt()), 12.706205);
        close(ci95_half_width(5, 5f64.sqrt()), 2.776445);
        close(ci95_half_width(30, 30f64.sqrt()), 2.045230);
        assert_eq!(ci95_half_width(1, 3.0), 0.0);
    }

    #[test]
    fn hand_checked_groups_in_first_appearance_order() {
        let df = df! {
            "governor" => ["b", "a", "a", "b", "a", "a", "c", "a", "a"],
            "energy_j" => [Some(10.0), Some(1.0), Some(2.0), Some(14.0), Some(3.0), Some(100.0),
                           Some(7.0), None, Some(4.0)],
            "error" => [None, None, None, None, None, Some("oom"), None, None, None],
        }
        .unwrap();
        let s = summarise(&df, &["governor"], "energy_j").unwrap();
        let names: Vec<_> = s
            .column("governor")
            .unwrap()
            .str()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(names, ["b", "a", "c"]);
        let n: Vec<_> = s
            .column("n")
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(n, [2, 4, 1]);
        // b: {10, 14}: mean 12, sd √8, half-width 12.7062·√8/√2 = 25.41241.
        // a: {1, 2, 3, 4}: mean 2.5, sd √(5/3) = 1.290994, half-width 3.182446·1.290994/2 = 2.054290.
        // c: {7}: sd 0, CI = mean.
        let (mean, sd) = (f64s(&s, "mean"), f64s(&s, "sd"));
        let (lo, hi) = (f64s(&s, "ci95_lo"), f64s(&s, "ci95_hi"));
        for (got, want) in mean.iter().zip([12.0, 2.5, 7.0]) {
            close(*got, want);
        }
        for (got, want) in sd.iter().zip([8f64.sqrt(), 1.290994, 0.0]) {
            close(*got, want);
        }
        for (got, want) in lo.iter().zip([-13.41241, 0.445710, 7.0]) {
            close(*got, want);
        }
        for (got, want) in hi.iter().zip([37.41241, 4.554290, 7.0]) {
            close(*got, want);
        }
        let names: Vec<_> = s.get_column_names().iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["governor", "n", "mean", "sd", "ci95_lo", "ci95_hi"]);
    }

    #[test]
    fn several_keys_integer_metric_and_no_keys() {
        let df = df! {
            "soc" => ["x", "x", "y", "x"],
            "batch" => [1i64, 2, 1, 1],
            "tokens" => [3i64, 5, 7, 9],
        }
        .unwrap();
        let s = summarise(&df, &["soc", "batch"], "tokens").unwrap();
        assert_eq!(s.height(), 3);
        close(f64s(&s, "mean")[0], 6.0);
        let all = summarise(&df, &[], "tokens").unwrap();
        assert_eq!(all.height(), 1);
        close(f64s(&all, "mean")[0], 6.0);
        let none = summarise(&df.head(Some(0)), &[], "tokens").unwrap();
        assert_eq!(none.height(), 0);
    }

    #[test]
    fn clear_errors() {
        let df = df! { "soc" => ["x"], "energy_j" => [1.0] }.unwrap();
        let err = summarise(&df, &["governor"], "energy_j").unwrap_err();
        assert!(err.to_string().contains("governor"), "{err}");
        assert!(err.to_string().contains("energy_j"), "{err}");
        let err = summarise(&df, &[], "soc").unwrap_err();
        assert!(matches!(err, AnalysisError::NotNumeric { .. }), "{err}");
    }
}
