//! Resuming a sweep: the runs that already succeeded in a results folder are read back as records,
//! so that only the missing or failed runs are executed again and the folder is rewritten whole.

use std::fs;
use std::path::Path;

use polars::prelude::*;

use sim::experiment::{RunOutput, SeriesPoint};

use crate::error::ResumeError;
use crate::runner::RunRecord;
use crate::scenario::Plan;
use crate::table::{Format, KEY_COLUMNS};

/// A fingerprint of a plan: the resolved scenario and every run's resolved params (FNV-1a, hex).
pub fn plan_key(plan: &Plan) -> String {
    let mut text = serde_json::to_string(&plan.scenario).unwrap_or_default();
    for run in &plan.runs {
        text.push_str(&run.params.to_string());
    }
    format!("{:016x}", sim::rng::fnv1a(text.as_bytes()))
}

fn read(path: &Path, format: Format) -> PolarsResult<DataFrame> {
    let file = fs::File::open(path)?;
    match format {
        Format::Parquet => ParquetReader::new(file).finish(),
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .into_reader_with_file_handle(file)
            .finish(),
    }
}

fn table(dir: &Path, stem: &str) -> Option<(std::path::PathBuf, Format)> {
    [Format::Parquet, Format::Csv]
        .into_iter()
        .map(|f| (f.path(dir, stem), f))
        .find(|(p, _)| p.is_file())
}

/// The successful runs recorded in `dir` for `plan` (none when `dir` holds no results yet).
/// Fails when `dir` holds results of a different scenario.
pub fn completed(dir: &Path, plan: &Plan) -> Result<Vec<RunRecord>, ResumeError> {
    let Some((runs_path, format)) = table(dir, "runs") else {
        return Ok(Vec::new());
    };
    let manifest: serde_json::Value = fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if manifest["plan_key"].as_str() != Some(plan_key(plan).as_str()) {
        return Err(ResumeError::OtherPlan {
            dir: dir.to_owned(),
        });
    }
    let fail = |source: PolarsError| ResumeError::Table {
        dir: dir.to_owned(),
        source,
    };
    let df = read(&runs_path, format).map_err(fail)?;
    let params: Vec<&str> = plan
        .runs
        .first()
        .map(|r| r.columns.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let metric_names: Vec<String> = df
        .get_column_names()
        .into_iter()
        .map(|n| n.to_string())
        .filter(|n| !KEY_COLUMNS.contains(&n.as_str()) && !params.contains(&n.as_str()))
        .collect();
    let run_col = df
        .column("run")
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(fail)?;
    let runs = run_col.u64().map_err(fail)?;
    let errors = df
        .column("error")
        .map_err(fail)?
        .as_materialized_series()
        .clone();
    let metrics: Vec<(String, Series)> = metric_names
        .into_iter()
        .filter_map(|n| {
            let s = df.column(&n).ok()?.cast(&DataType::Float64).ok()?;
            Some((n, s.as_materialized_series().clone()))
        })
        .collect();
    let mut records = Vec::new();
    for (row, run) in runs.into_iter().enumerate() {
        let Some(run) = run else { continue };
        let failed = !matches!(errors.get(row), Ok(AnyValue::Null));
        let Some(spec) = plan.runs.get(run as usize) else {
            continue;
        };
        if failed {
            continue;
        }
        let mut out = RunOutput::default();
        for (name, s) in &metrics {
            if let Ok(AnyValue::Float64(v)) = s.get(row) {
                out.metrics.push((name.clone(), v));
            }
        }
        records.push(RunRecord {
            spec: spec.clone(),
            outcome: Ok(out),
        });
    }
    if let Some((series_path, format)) = table(dir, "series") {
        attach_series(&read(&series_path, format).map_err(fail)?, &mut records).map_err(fail)?;
    }
    Ok(records)
}

fn attach_series(df: &DataFrame, records: &mut [RunRecord]) -> PolarsResult<()> {
    let run = df.column("run")?.cast(&DataType::UInt64)?;
    let t = df.column("t_s")?.cast(&DataType::Float64)?;
    let component = df.column("component")?.cast(&DataType::String)?;
    let metric = df.column("metric")?.cast(&DataType::String)?;
    let value = df.column("value")?.cast(&DataType::Float64)?;
    let rows = run
        .u64()?
        .into_iter()
        .zip(t.f64()?)
        .zip(component.str()?)
        .zip(metric.str()?)
        .zip(value.f64()?);
    for ((((run, t_s), component), metric), value) in rows {
        let (Some(run), Some(t_s), Some(component), Some(metric), Some(value)) =
            (run, t_s, component, metric, value)
        else {
            continue;
        };
        if let Ok(i) = records.binary_search_by_key(&run, |r| r.spec.ctx.run)
            && let Ok(out) = records[i].outcome.as_mut()
        {
            out.series.push(SeriesPoint {
                t_s,
                component: component.to_owned(),
                metric: metric.to_owned(),
                value,
            });
        }
    }
    Ok(())
}
