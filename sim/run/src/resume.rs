//! Resuming a sweep: the runs that already succeeded in a results folder are read back as records,
//! so that only the missing or failed runs are executed again and the folder is rewritten whole.

use std::path::Path;

use polars::prelude::*;

use sim::experiment::{RunOutput, SeriesPoint};

use crate::error::ResumeError;
use crate::manifest::{self, MANIFEST};
use crate::runner::RunRecord;
use crate::scenario::Plan;
use crate::table::{KEY_COLUMNS, RUNS_KEY_TYPES, SERIES_KEY_TYPES, read_frame};

/// A fingerprint of a plan: the resolved scenario and every run's resolved params (FNV-1a, hex).
pub fn plan_key(plan: &Plan) -> String {
    let mut text = serde_json::to_string(&plan.scenario).unwrap_or_default();
    for run in &plan.runs {
        text.push_str(&run.params.to_string());
    }
    format!("{:016x}", sim::rng::fnv1a(text.as_bytes()))
}

/// The successful runs recorded in `dir` for `plan` (none when `dir` holds no results yet).
/// The folder is verified against its manifest first; fails when it does not match, when it holds
/// results of a different plan, or when a row's seed or replication is not the plan's.
pub fn completed(dir: &Path, plan: &Plan) -> Result<Vec<RunRecord>, ResumeError> {
    let fresh = !dir.join(MANIFEST).exists()
        && manifest::table_files(dir).is_ok_and(|files| files.is_empty());
    if fresh {
        return Ok(Vec::new());
    }
    let manifest = manifest::verify(dir)?;
    let ours = plan_key(plan);
    if manifest.plan_key != ours {
        return Err(ResumeError::OtherPlan {
            dir: dir.to_owned(),
            theirs: manifest.plan_key,
            ours,
        });
    }
    let fail = |source: PolarsError| ResumeError::Table {
        dir: dir.to_owned(),
        source,
    };
    let Some(runs_entry) = manifest.table("runs") else {
        return Ok(Vec::new());
    };
    let df = read_frame(&dir.join(&runs_entry.name), &RUNS_KEY_TYPES).map_err(fail)?;
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
    let column = |name: &str| {
        df.column(name)
            .map(|c| c.as_materialized_series().clone())
            .map_err(fail)
    };
    let (runs, seeds, replications) = (column("run")?, column("seed")?, column("replication")?);
    let (runs, seeds, replications) = (
        runs.u64().map_err(fail)?,
        seeds.u64().map_err(fail)?,
        replications.u32().map_err(fail)?,
    );
    let errors = column("error")?;
    let metrics: Vec<(String, Series)> = metric_names
        .into_iter()
        .filter_map(|n| {
            let s = df.column(&n).ok()?.cast(&DataType::Float64).ok()?;
            Some((n, s.as_materialized_series().clone()))
        })
        .collect();
    let mut records = Vec::new();
    for row in 0..df.height() {
        let run = runs.get(row);
        let spec = run.and_then(|r| plan.runs.get(usize::try_from(r).ok()?));
        let Some(spec) = spec.filter(|s| {
            seeds.get(row) == Some(s.ctx.seed) && replications.get(row) == Some(s.ctx.replication)
        }) else {
            return Err(ResumeError::ForeignRow {
                dir: dir.to_owned(),
                row,
            });
        };
        if !matches!(errors.get(row), Ok(AnyValue::Null)) {
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
    if let Some(series) = manifest.table("series") {
        let df = read_frame(&dir.join(&series.name), &SERIES_KEY_TYPES).map_err(fail)?;
        attach_series(&df, &mut records).map_err(fail)?;
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
