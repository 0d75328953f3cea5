//! Paper reports: the figures and headline claims a `reports/<paper>.yaml` declares, evaluated over
//! result tables, and rendered as `claims.json` and a Markdown page. Claims (kinds, paired intervals,
//! censoring, equal resources) are in [`crate::claims`], re-exported here.
//!
//! A figure reads the runs table (one row per run) or, with `table: series`, the series table: the
//! points of series metric `y` (e.g. accuracy per round), each joined with its run's parameters, so a
//! line figure draws the mean and 95% CI over seeds at each time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::claims::{
    Bound, ClaimKind, ClaimResult, ClaimSpec, Counts, Reduce, Stat, Verdict, check, claims_table,
    evaluate,
};
use crate::error::{AnalysisError, Result};
use crate::figure::{Crossing, Kind, MarkSpec};

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

impl ReportSpec {
    /// Rules that need no data, for every claim (see [`ClaimSpec::validate`]), and unique claim ids.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for c in &self.claims {
            if !ids.insert(c.id.as_str()) {
                return Err(format!("claim `{}` is listed twice", c.id));
            }
            c.validate()?;
        }
        Ok(())
    }

    /// Rejects a claim over `scenario` whose metric is one of `inputs` (the scenario's param columns
    /// and the key columns): a claim never compares an input with itself.
    pub fn validate_inputs(
        &self,
        scenario: &std::path::Path,
        inputs: &std::collections::BTreeSet<String>,
    ) -> std::result::Result<(), String> {
        self.claims
            .iter()
            .try_for_each(|c| c.validate_inputs(scenario, inputs))
    }
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
    /// Column splitting the rows into series, or several columns whose values (nulls left out)
    /// are joined with " + " (see [`series_column`]).
    #[serde(default)]
    pub series: Option<SeriesColumns>,
    /// Series values renamed for the legend and marks (after joining); a value renamed to "" has
    /// its rows left out.
    #[serde(default)]
    pub series_labels: BTreeMap<String, String>,
    /// Further scenarios whose runs tables are stacked under the first's (columns aligned by name,
    /// nulls where one lacks a column), so one figure can compare sweeps run separately.
    #[serde(default)]
    pub also: Vec<PathBuf>,
    /// Caption under the figure.
    #[serde(default)]
    pub caption: String,
    /// Keep only rows whose columns equal these values.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Value>,
    /// Crossings of two series to mark (break-even points), drawn on the figure and written under
    /// it and to `crossings.csv`.
    #[serde(default)]
    pub marks: Vec<MarkSpec>,
}

/// The column(s) naming a figure's series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeriesColumns {
    /// One column.
    One(String),
    /// Several columns, their values joined.
    Joined(Vec<String>),
}

impl SeriesColumns {
    /// The name of the series column the figure draws: the column, or the columns joined with " + ".
    pub fn name(&self) -> String {
        match self {
            SeriesColumns::One(c) => c.clone(),
            SeriesColumns::Joined(cs) => cs.join(" + "),
        }
    }
}

/// `df` with the series column a figure draws, and its name: for several columns a new column
/// holding each row's non-null values joined with " + "; then values renamed by `labels`, rows whose
/// value is renamed to "" left out.
pub fn series_column(
    df: &DataFrame,
    series: &SeriesColumns,
    labels: &BTreeMap<String, String>,
) -> Result<(DataFrame, String)> {
    let name = series.name();
    let columns = match series {
        SeriesColumns::One(_) if labels.is_empty() => return Ok((df.clone(), name)),
        SeriesColumns::One(c) => vec![c.clone()],
        SeriesColumns::Joined(cs) => cs.clone(),
    };
    let mut values: Vec<Vec<String>> = vec![Vec::new(); df.height()];
    for c in &columns {
        crate::summary::require_column(df, c)?;
        let text = df.column(c)?.cast(&DataType::String)?;
        for (row, v) in values.iter_mut().zip(text.str()?.iter()) {
            row.extend(v.map(str::to_owned));
        }
    }
    let joined: Vec<String> = values
        .into_iter()
        .map(|v| {
            let v = v.join(" + ");
            labels.get(&v).cloned().unwrap_or(v)
        })
        .collect();
    let keep: BooleanChunked = joined.iter().map(|v| Some(!v.is_empty())).collect();
    let mut out = df.clone();
    out.with_column(Column::new(name.as_str().into(), joined))?;
    Ok((out.filter(&keep)?, name))
}

/// Frames stacked: the union of their columns aligned by name, nulls where a frame lacks one.
pub fn stack(frames: Vec<DataFrame>) -> Result<DataFrame> {
    crate::load::concat_diagonal(frames)
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

/// `crossings.csv` of a report: every figure's crossings, one row each (see
/// [`Crossing::csv_rows`]).
pub fn crossings_csv(crossings: &BTreeMap<String, Vec<Crossing>>) -> String {
    let mut csv = format!("{}\n", crate::figure::CROSSINGS_CSV_HEADER);
    for (figure, list) in crossings {
        for row in list.iter().flat_map(|c| c.csv_rows(figure)) {
            csv.push_str(&row);
            csv.push('\n');
        }
    }
    csv
}

/// The Markdown page of one paper's report: figures (with the crossings each marks, by figure
/// id), then the claims table and notes.
pub fn page(
    spec: &ReportSpec,
    results: &[ClaimResult],
    crossings: &BTreeMap<String, Vec<Crossing>>,
    wall_s: f64,
) -> String {
    let mut md = format!("# {}\n\n", spec.title);
    if !spec.source.is_empty() {
        md.push_str(&format!("Source: {}\n\n", spec.source));
    }
    for f in &spec.figures {
        md.push_str(&format!("## {}\n\n![{}]({}.png)\n\n", f.id, f.id, f.id));
        if !f.caption.is_empty() {
            md.push_str(&format!("{}\n\n", f.caption));
        }
        for c in crossings.get(&f.id).into_iter().flatten() {
            md.push_str(&format!("- {}\n", c.describe(&f.x)));
        }
        if crossings.get(&f.id).is_some_and(|c| !c.is_empty()) {
            md.push('\n');
        }
        md.push_str(&format!("Scenario: `{}`", f.scenario.display()));
        for also in &f.also {
            md.push_str(&format!(", `{}`", also.display()));
        }
        md.push_str("\n\n");
    }
    md.push_str(&format!(
        "## Claims ({})\n\nOnly evidence is counted; calibration figures were fitted, checks test \
         theory or a constraint the algorithm enforces. A direction claim is in band only when its \
         whole paired 95 % interval is.\n\n",
        Counts::of(results)
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

    #[test]
    fn joined_and_renamed_series() {
        let a = df!("protocol" => ["onchain", "commit-proof"], "gas" => [1.0, 2.0]).unwrap();
        let b = df!(
            "protocol" => ["commit-proof", "commit-proof"],
            "payout" => ["merkle", "redeem"],
            "gas" => [3.0, 4.0],
        )
        .unwrap();
        let df = stack(vec![a, b]).unwrap();
        assert_eq!(df.height(), 4);
        let series = SeriesColumns::Joined(vec!["protocol".into(), "payout".into()]);
        let labels = BTreeMap::from([
            ("onchain".to_string(), "on-chain".to_string()),
            ("commit-proof + merkle".to_string(), String::new()),
        ]);
        let (out, name) = series_column(&df, &series, &labels).unwrap();
        assert_eq!(name, "protocol + payout");
        let values: Vec<_> = out.column(&name).unwrap().str().unwrap().iter().collect();
        assert_eq!(
            values,
            [
                Some("on-chain"),
                Some("commit-proof"),
                Some("commit-proof + redeem")
            ]
        );
        let gas: Vec<_> = out.column("gas").unwrap().f64().unwrap().iter().collect();
        assert_eq!(gas, [Some(1.0), Some(2.0), Some(4.0)]);
        let one = SeriesColumns::One("protocol".into());
        let (same, name) = series_column(&df, &one, &BTreeMap::new()).unwrap();
        assert_eq!((same.height(), name.as_str()), (4, "protocol"));
        let yaml: SeriesColumns = serde_norway::from_str("[a, b]").unwrap();
        assert_eq!(yaml, SeriesColumns::Joined(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn crossings_are_written_under_their_figure_and_to_csv() {
        let spec: ReportSpec = serde_norway::from_str(
            "paper: p\ntitle: T\nfigures:\n  - id: gas\n    scenario: s.yaml\n    kind: line\n    \
             x: n\n    y: gas\n    series: protocol\n    \
             marks: [{ crossing: [a, b], label: even }]\n",
        )
        .unwrap();
        let df = df!(
            "n" => [1.0, 3.0, 1.0, 3.0],
            "protocol" => ["a", "a", "b", "b"],
            "gas" => [0.0, 4.0, 2.0, 2.0],
        )
        .unwrap();
        let fig = &spec.figures[0];
        let plot = crate::figure::PlotSpec {
            series: Some("protocol".into()),
            marks: fig.marks.clone(),
            ..crate::figure::PlotSpec::new(fig.kind, &fig.x, &fig.y)
        };
        let tmp = tempfile::tempdir().unwrap();
        let (_, found) = crate::figure::plot_marked(&df, &plot, &tmp.path().join("gas")).unwrap();
        let crossings = BTreeMap::from([("gas".to_string(), found)]);
        let md = page(&spec, &[], &crossings, 1.0);
        assert!(
            md.contains("- even: n ≈ 2 (y ≈ 2, `b` lower beyond)"),
            "{md}"
        );
        assert_eq!(
            crossings_csv(&crossings),
            format!(
                "{}\ngas,even,a,b,2,2,b,\n",
                crate::figure::CROSSINGS_CSV_HEADER
            )
        );
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
}
