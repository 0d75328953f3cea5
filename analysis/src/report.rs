//! Paper reports: the figures and headline claims a `reports/<paper>.yaml` declares, evaluated over
//! result tables, and rendered as `claims.json` and a Markdown page.
//!
//! A claim compares the paper's figure (and the band we accept around it) with an expression over our
//! results: the mean of `metric` over the rows matching `where` (`stat: value`), or that mean against the
//! rows matching `where` overridden by `baseline` (`stat: ratio` = a/b, `stat: change_pct` = (a/b − 1)·100,
//! `stat: difference` = a − b, `stat: points` = (a − b)·100 for fractions), optionally computed per value
//! of column `over` and reduced (`reduce: max|min|mean`).
//!
//! A figure reads the runs table (one row per run) or, with `table: series`, the series table: the
//! points of series metric `y` (e.g. accuracy per round), each joined with its run's parameters, so a
//! line figure draws the mean and 95% CI over seeds at each time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AnalysisError, Result};
use crate::figure::Kind;

/// A paper's report: what to draw and which headline numbers to check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Short id of the paper (the file stem, e.g. `fuse`).
    pub paper: String,
    /// Full title and venue.
    pub title: String,
    /// Where the paper's numbers come from (arXiv id, table).
    #[serde(default)]
    pub source: String,
    /// Figures to draw.
    #[serde(default)]
    pub figures: Vec<FigureSpec>,
    /// Headline claims to check.
    #[serde(default)]
    pub claims: Vec<ClaimSpec>,
    /// What differs from the paper and why (printed under the claims table).
    #[serde(default)]
    pub notes: String,
}

/// One figure: a scenario's runs (or series) table drawn as `kind` of `y` against `x`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    /// File stem of the figure.
    pub id: String,
    /// Scenario file, relative to the repository root.
    pub scenario: PathBuf,
    /// `line`, `bar`, `cdf` or `scatter`.
    pub kind: Kind,
    /// Which table to read: `runs` (default) or `series` (see [`series_rows`]).
    #[serde(default)]
    pub table: TableName,
    /// Column on the x axis (`t_s` for a series figure's time axis).
    pub x: String,
    /// Column on the y axis; for a series figure, the series metric.
    pub y: String,
    /// Horizontal axis title (default: the column name).
    #[serde(default)]
    pub x_label: Option<String>,
    /// Vertical axis title (default: the column name).
    #[serde(default)]
    pub y_label: Option<String>,
    /// Width of the bins numeric x values are grouped into (each value moves to its bin's centre), so
    /// runs whose samples fall at different times still average together; none by default.
    #[serde(default)]
    pub x_bin: Option<f64>,
    /// Logarithmic x axis.
    #[serde(default)]
    pub x_log: bool,
    /// Logarithmic y axis.
    #[serde(default)]
    pub y_log: bool,
    /// Column splitting the rows into series.
    #[serde(default)]
    pub series: Option<String>,
    /// Caption under the figure.
    #[serde(default)]
    pub caption: String,
    /// Keep only rows whose columns equal these values.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Value>,
}

/// The result table a figure reads (`table:` in report files, `--table` of `sysim plot`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TableName {
    /// One row per run: parameters and metrics.
    #[default]
    Runs,
    /// One row per sample of a series metric, with its run's parameters.
    Series,
}

/// How a claim's simulated figure is computed from the selected rows.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Mean of the metric over the `where` rows.
    #[default]
    Value,
    /// Mean over `where` rows divided by the mean over `baseline` rows.
    Ratio,
    /// (ratio − 1) × 100.
    ChangePct,
    /// Mean over `where` rows minus the mean over `baseline` rows, in the metric's unit.
    Difference,
    /// [`Stat::Difference`] × 100: percentage points between two fractions.
    Points,
}

/// How per-group values are combined when `over` is set.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Reduce {
    /// Arithmetic mean over groups.
    #[default]
    Mean,
    /// Largest group value ("up to …").
    Max,
    /// Smallest group value.
    Min,
}

/// A paper's headline claim and the expression over our results that corresponds to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// Short id.
    pub id: String,
    /// The claim in words.
    pub text: String,
    /// The paper's figure as the paper states it (e.g. `−7.0 to −16.9 %`).
    pub paper: String,
    /// Band `[low, high]` in which our figure counts as reproducing the claim.
    pub band: [f64; 2],
    /// Unit of the simulated figure.
    #[serde(default)]
    pub unit: String,
    /// Scenario file, relative to the repository root (absent while the claim is `pending`).
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// Why the claim is not simulated yet (e.g. the family is not built); it is then listed, not evaluated.
    #[serde(default)]
    pub pending: Option<String>,
    /// Metric column.
    #[serde(default)]
    pub metric: String,
    /// Rows to use (column → value).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Value>,
    /// Overrides of `where` selecting the baseline rows (for `ratio` and `change_pct`).
    #[serde(default)]
    pub baseline: Option<BTreeMap<String, Value>>,
    /// What to compute.
    #[serde(default)]
    pub stat: Stat,
    /// Compute per value of this column, then reduce.
    #[serde(default)]
    pub over: Option<String>,
    /// How to reduce per-group values.
    #[serde(default)]
    pub reduce: Reduce,
}

/// A claim checked against our results (a row of `claims.json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClaimResult {
    /// Paper id.
    pub paper: String,
    /// Claim id.
    pub id: String,
    /// The claim in words.
    pub text: String,
    /// The paper's figure.
    pub paper_value: String,
    /// Accepted band.
    pub band: [f64; 2],
    /// Our figure, when it could be computed.
    pub simulated: Option<f64>,
    /// Unit of `simulated`.
    pub unit: String,
    /// Whether `simulated` falls inside `band`.
    pub in_band: bool,
    /// Why the figure could not be computed, if so.
    pub problem: Option<String>,
}

/// The points of series metric `metric` in `series` (columns `run`, `t_s`, `component`, `metric`,
/// `value`) as a frame with columns `run`, `t_s`, `component` and `<metric>`, each joined with its
/// run's row of `runs` (parameters, `replication`, `error`). Columns of `runs` named like one of the
/// series columns are left out. No point of `metric` is an error naming the metrics there are.
pub fn series_rows(runs: &DataFrame, series: &DataFrame, metric: &str) -> Result<DataFrame> {
    for c in ["run", "t_s", "component", "metric", "value"] {
        crate::summary::require_column(series, c)?;
    }
    let names = series.column("metric")?.str()?.clone();
    let mask: BooleanChunked = names.iter().map(|m| m == Some(metric)).collect();
    let points = series.filter(&mask)?;
    if points.height() == 0 {
        let mut known: Vec<String> = names.iter().flatten().map(str::to_owned).collect();
        known.sort();
        known.dedup();
        return Err(AnalysisError::Empty(format!(
            "no series points of `{metric}`; series metrics: {}",
            known.join(", ")
        )));
    }
    let mut points = points.select(["run", "t_s", "component", "value"])?;
    points.rename("value", metric.into())?;
    let keep: Vec<PlSmallStr> = runs
        .get_column_names()
        .into_iter()
        .filter(|c| c.as_str() == "run" || !points.get_column_names().contains(c))
        .cloned()
        .collect();
    let runs = runs.select(keep)?;
    let row_of: BTreeMap<u64, IdxSize> = runs
        .column("run")?
        .cast(&DataType::UInt64)?
        .u64()?
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (r, i as IdxSize)))
        .collect();
    let mut rows = Vec::with_capacity(points.height());
    for r in points.column("run")?.cast(&DataType::UInt64)?.u64()? {
        let r = r.unwrap_or(u64::MAX);
        rows.push(*row_of.get(&r).ok_or_else(|| {
            AnalysisError::Empty(format!(
                "series points of run {r} have no row in the runs table"
            ))
        })?);
    }
    let params = runs
        .drop("run")?
        .take(&IdxCa::from_vec("rows".into(), rows))?;
    Ok(points.hstack(params.get_columns())?)
}

/// `df` with numeric column `x` moved to the centres of bins of width `bin` (`⌊x / bin⌋·bin + bin/2`).
pub fn bin_column(df: &DataFrame, x: &str, bin: f64) -> Result<DataFrame> {
    if !(bin.is_finite() && bin > 0.0) {
        return Err(AnalysisError::Unsupported(format!(
            "x_bin must be a number > 0, got {bin}"
        )));
    }
    crate::summary::require_column(df, x)?;
    let binned: Float64Chunked = df
        .column(x)?
        .cast(&DataType::Float64)?
        .f64()?
        .apply_values(|v| (v / bin).floor() * bin + bin / 2.0);
    let mut out = df.clone();
    out.with_column(binned.into_series().with_name(x.into()))?;
    Ok(out)
}

/// Rows of `df` whose columns equal `filter`'s values and whose `error` is null.
pub fn select(df: &DataFrame, filter: &BTreeMap<String, Value>) -> Result<DataFrame> {
    let mut keep = vec![true; df.height()];
    if let Ok(err) = df.column("error") {
        for (k, e) in keep.iter_mut().zip(err.as_materialized_series().iter()) {
            *k &= matches!(e, AnyValue::Null);
        }
    }
    for (name, want) in filter {
        crate::summary::require_column(df, name)?;
        let column = df.column(name)?.as_materialized_series();
        for (k, cell) in keep.iter_mut().zip(column.iter()) {
            *k &= cell_equals(&cell, want);
        }
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    Ok(df.filter(&mask)?)
}

fn cell_equals(cell: &AnyValue, want: &Value) -> bool {
    match want {
        Value::Number(n) => {
            let w = n.as_f64().unwrap_or(f64::NAN);
            cell.extract::<f64>()
                .is_some_and(|v| (v - w).abs() <= 1e-9 * w.abs().max(1.0))
        }
        Value::Bool(b) => matches!(cell, AnyValue::Boolean(v) if v == b),
        Value::String(s) => {
            cell.get_str().is_some_and(|v| v == s) || cell.to_string().trim_matches('"') == s
        }
        _ => false,
    }
}

fn mean_of(df: &DataFrame, metric: &str) -> Result<f64> {
    crate::summary::require_column(df, metric)?;
    let values = df.column(metric)?.cast(&DataType::Float64)?;
    values
        .f64()?
        .mean()
        .ok_or_else(|| AnalysisError::Empty(format!("no rows with a value of `{metric}` match")))
}

fn evaluate_on(df: &DataFrame, claim: &ClaimSpec) -> Result<f64> {
    let a = mean_of(&select(df, &claim.filter)?, &claim.metric)?;
    if claim.stat == Stat::Value {
        return Ok(a);
    }
    let mut base = claim.filter.clone();
    base.extend(claim.baseline.clone().unwrap_or_default());
    let b = mean_of(&select(df, &base)?, &claim.metric)?;
    Ok(match claim.stat {
        Stat::Value => a,
        Stat::Ratio => a / b,
        Stat::ChangePct => (a / b - 1.0) * 100.0,
        Stat::Difference => a - b,
        Stat::Points => (a - b) * 100.0,
    })
}

/// Our figure for `claim` over the runs table `df`.
pub fn evaluate(df: &DataFrame, claim: &ClaimSpec) -> Result<f64> {
    let Some(over) = &claim.over else {
        return evaluate_on(df, claim);
    };
    crate::summary::require_column(df, over)?;
    let mut groups: Vec<AnyValue> = Vec::new();
    for v in df.column(over)?.as_materialized_series().iter() {
        if !groups.contains(&v) {
            groups.push(v.into_static());
        }
    }
    let mut values = Vec::new();
    for g in groups {
        let mask: BooleanChunked = df
            .column(over)?
            .as_materialized_series()
            .iter()
            .map(|v| v == g)
            .collect();
        values.push(evaluate_on(&df.filter(&mask)?, claim)?);
    }
    let n = values.len() as f64;
    match claim.reduce {
        Reduce::Mean => Ok(values.iter().sum::<f64>() / n),
        Reduce::Max => Ok(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        Reduce::Min => Ok(values.iter().copied().fold(f64::INFINITY, f64::min)),
    }
}

/// Checks `claim` over `df`, turning failures into a result with `problem` set.
pub fn check(paper: &str, df: Option<&DataFrame>, claim: &ClaimSpec) -> ClaimResult {
    let outcome = match (&claim.pending, df) {
        (Some(why), _) => Err(AnalysisError::Empty(format!("not simulated yet: {why}"))),
        (None, None) => Err(AnalysisError::Empty(
            "the scenario produced no table".into(),
        )),
        (None, Some(df)) => evaluate(df, claim),
    };
    let (simulated, problem) = match outcome {
        Ok(v) if v.is_finite() => (Some(v), None),
        Ok(v) => (None, Some(format!("not a finite number: {v}"))),
        Err(e) => (None, Some(e.to_string())),
    };
    ClaimResult {
        paper: paper.to_owned(),
        id: claim.id.clone(),
        text: claim.text.clone(),
        paper_value: claim.paper.clone(),
        band: claim.band,
        simulated,
        unit: claim.unit.clone(),
        in_band: simulated.is_some_and(|v| v >= claim.band[0] && v <= claim.band[1]),
        problem,
    }
}

/// Markdown table of claim results (used by each paper's page and by the repository README).
pub fn claims_table(results: &[ClaimResult]) -> String {
    let mut md = String::from(
        "| paper | claim | paper's figure | band | sysim | in band |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        let sim = r.simulated.map_or_else(
            || format!("— ({})", r.problem.as_deref().unwrap_or("n/a")),
            |v| format!("{v:.3} {}", r.unit),
        );
        md.push_str(&format!(
            "| {} | {} | {} | [{}, {}] | {} | {} |\n",
            r.paper,
            r.text,
            r.paper_value,
            r.band[0],
            r.band[1],
            sim.trim_end(),
            if r.in_band { "yes" } else { "no" }
        ));
    }
    md
}

/// The Markdown page of one paper's report: figures, then the claims table and notes.
pub fn page(spec: &ReportSpec, results: &[ClaimResult], wall_s: f64) -> String {
    let mut md = format!("# {}\n\n", spec.title);
    if !spec.source.is_empty() {
        md.push_str(&format!("Source: {}\n\n", spec.source));
    }
    for f in &spec.figures {
        md.push_str(&format!("## {}\n\n![{}]({}.png)\n\n", f.id, f.id, f.id));
        if !f.caption.is_empty() {
            md.push_str(&format!("{}\n\n", f.caption));
        }
        md.push_str(&format!("Scenario: `{}`\n\n", f.scenario.display()));
    }
    let inside = results.iter().filter(|r| r.in_band).count();
    md.push_str(&format!(
        "## Claims ({inside} of {} inside their band)\n\n",
        results.len()
    ));
    md.push_str(&claims_table(results));
    if !spec.notes.is_empty() {
        md.push_str(&format!("\n## Notes\n\n{}\n", spec.notes.trim()));
    }
    md.push_str(&format!(
        "\nGenerated by `sysim report {}` in {wall_s:.1} s.\n",
        spec.paper
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame() -> DataFrame {
        df!(
            "gov" => ["stock", "fuse", "stock", "fuse"],
            "llm" => ["a", "a", "b", "b"],
            "tpot_ms" => [100.0, 70.0, 200.0, 160.0],
        )
        .unwrap()
    }

    fn claim(stat: Stat, over: Option<&str>, reduce: Reduce) -> ClaimSpec {
        ClaimSpec {
            id: "c".into(),
            text: "t".into(),
            paper: "p".into(),
            band: [-35.0, -20.0],
            unit: "%".into(),
            scenario: Some("s.yaml".into()),
            pending: None,
            metric: "tpot_ms".into(),
            filter: BTreeMap::from([("gov".into(), json!("fuse"))]),
            baseline: Some(BTreeMap::from([("gov".into(), json!("stock"))])),
            stat,
            over: over.map(str::to_owned),
            reduce,
        }
    }

    #[test]
    fn change_pct_per_group_and_reduced() {
        let df = frame();
        // Pooled: fuse mean 115 vs stock 150 → −23.33 %.
        let pooled = evaluate(&df, &claim(Stat::ChangePct, None, Reduce::Mean)).unwrap();
        assert!((pooled - (115.0 / 150.0 - 1.0) * 100.0).abs() < 1e-9);
        // Per llm: a −30 %, b −20 %.
        let min = evaluate(&df, &claim(Stat::ChangePct, Some("llm"), Reduce::Min)).unwrap();
        let mean = evaluate(&df, &claim(Stat::ChangePct, Some("llm"), Reduce::Mean)).unwrap();
        assert!((min + 30.0).abs() < 1e-9 && (mean + 25.0).abs() < 1e-9);
        let r = check(
            "fuse",
            Some(&df),
            &claim(Stat::ChangePct, Some("llm"), Reduce::Mean),
        );
        assert!(r.in_band && r.problem.is_none());
    }

    #[test]
    fn unknown_columns_and_empty_selections_are_problems_not_panics() {
        let df = frame();
        let mut c = claim(Stat::Value, None, Reduce::Mean);
        c.metric = "nope".into();
        let r = check("x", Some(&df), &c);
        assert!(!r.in_band && r.problem.is_some());
        let mut c = claim(Stat::Value, None, Reduce::Mean);
        c.filter = BTreeMap::from([("gov".into(), json!("none"))]);
        assert!(check("x", Some(&df), &c).problem.is_some());
    }

    #[test]
    fn bins_move_values_to_their_centres() {
        let df = df!("t_s" => [0.5, 9.9, 10.0, 31.0], "v" => [1.0, 2.0, 3.0, 4.0]).unwrap();
        let out = bin_column(&df, "t_s", 10.0).unwrap();
        let t: Vec<_> = out
            .column("t_s")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(t, [5.0, 5.0, 15.0, 35.0]);
        assert!(bin_column(&df, "t_s", 0.0).is_err());
    }

    #[test]
    fn difference_and_points() {
        let df = frame();
        let d = evaluate(&df, &claim(Stat::Difference, None, Reduce::Mean)).unwrap();
        assert!((d - (115.0 - 150.0)).abs() < 1e-9);
        let p = evaluate(&df, &claim(Stat::Points, None, Reduce::Mean)).unwrap();
        assert!((p - (115.0 - 150.0) * 100.0).abs() < 1e-9);
    }

    #[test]
    fn series_points_carry_their_runs_parameters() {
        let runs = df!(
            "run" => [0u64, 1],
            "method" => ["a", "b"],
            "t_s" => [9.0, 9.0],
            "final" => [0.5, 0.7],
        )
        .unwrap();
        let series = df!(
            "run" => [1u64, 0, 1, 0],
            "t_s" => [1.0, 1.0, 2.0, 2.0],
            "component" => ["x", "x", "x", "y"],
            "metric" => ["acc", "acc", "acc", "loss"],
            "value" => [0.1, 0.2, 0.3, 9.0],
        )
        .unwrap();
        let rows = series_rows(&runs, &series, "acc").unwrap();
        assert_eq!(rows.height(), 3);
        let method: Vec<_> = rows
            .column("method")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(method, [Some("b"), Some("a"), Some("b")]);
        let acc: Vec<_> = rows.column("acc").unwrap().f64().unwrap().iter().collect();
        assert_eq!(acc, [Some(0.1), Some(0.2), Some(0.3)]);
        // The series' time wins over a runs column of the same name.
        let t: Vec<_> = rows.column("t_s").unwrap().f64().unwrap().iter().collect();
        assert_eq!(t, [Some(1.0), Some(1.0), Some(2.0)]);
        let err = series_rows(&runs, &series, "nope").unwrap_err().to_string();
        assert!(err.contains("acc, loss"), "{err}");
    }

    #[test]
    fn ratio_and_value() {
        let df = frame();
        let v = evaluate(&df, &claim(Stat::Value, None, Reduce::Mean)).unwrap();
        assert!((v - 115.0).abs() < 1e-9);
        let r = evaluate(&df, &claim(Stat::Ratio, None, Reduce::Mean)).unwrap();
        assert!((r - 115.0 / 150.0).abs() < 1e-9);
    }
}
