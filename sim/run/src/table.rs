//! Result tables: run records → polars frames → Parquet or CSV files written atomically.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::manifest::{Digesting, FileEntry};

/// Columns of the runs table that are neither parameters nor metrics.
pub const KEY_COLUMNS: [&str; 4] = ["run", "replication", "seed", "error"];

/// File format of result tables (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Apache Parquet (`runs.parquet`, `series.parquet`).
    #[default]
    Parquet,
    /// Comma-separated values (`runs.csv`, `series.csv`).
    Csv,
}

impl Format {
    /// File extension without the dot.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }

    /// `dir/<stem>.<ext>`.
    pub fn path(self, dir: &Path, stem: &str) -> PathBuf {
        dir.join(format!("{stem}.{}", self.ext()))
    }
}

/// Writes `bytes` to `path` atomically: a temporary sibling file, flushed and synced, then renamed.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes)).map(|_| ())
}

/// Writes a frame to `path` in `format` atomically (temporary sibling file, then rename); returns
/// the file's size and SHA-256 for the manifest.
pub fn write_frame_atomic(
    df: &mut DataFrame,
    path: &Path,
    format: Format,
) -> io::Result<FileEntry> {
    write_atomic(path, |w| {
        let result = match format {
            Format::Parquet => ParquetWriter::new(w).finish(df).map(|_| ()),
            Format::Csv => CsvWriter::new(w).include_header(true).finish(df),
        };
        result.map_err(io::Error::other)
    })
}

fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut Digesting<BufWriter<fs::File>>) -> io::Result<()>,
) -> io::Result<FileEntry> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = Digesting::new(BufWriter::new(fs::File::create(&tmp)?));
        fill(&mut w)?;
        w.flush()?;
        let (w, entry) = w.finish(path);
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(entry)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Columns of the runs table with a fixed type, whatever the file format would infer (a `seed`
/// above `i64::MAX` does not survive CSV type inference).
pub const RUNS_KEY_TYPES: [(&str, DataType); 4] = [
    ("run", DataType::UInt64),
    ("replication", DataType::UInt32),
    ("seed", DataType::UInt64),
    ("error", DataType::String),
];

/// Columns of the series table with a fixed type.
pub const SERIES_KEY_TYPES: [(&str, DataType); 5] = [
    ("run", DataType::UInt64),
    ("t_s", DataType::Float64),
    ("component", DataType::String),
    ("metric", DataType::String),
    ("value", DataType::Float64),
];

/// Reads a Parquet or CSV table (by extension) and gives the `keys` columns it has their fixed types.
pub fn read_frame(path: &Path, keys: &[(&str, DataType)]) -> PolarsResult<DataFrame> {
    let mut df = if path.extension().is_some_and(|ext| ext == "csv") {
        read_csv(path, keys)?
    } else {
        ParquetReader::new(fs::File::open(path)?).finish()?
    };
    for (name, dtype) in keys {
        if let Ok(column) = df.column(name)
            && column.dtype() != dtype
        {
            let cast = column.strict_cast(dtype)?;
            df.with_column(cast)?;
        }
    }
    Ok(df)
}

/// Reads a CSV table, parsing the key columns it has with their fixed types.
fn read_csv(path: &Path, keys: &[(&str, DataType)]) -> PolarsResult<DataFrame> {
    // Column names only: every column read as text, so no value is parsed with a guessed type.
    let header = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_n_rows(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()?;
    let overwrite: Schema = keys
        .iter()
        .filter(|(name, _)| header.column(name).is_ok())
        .map(|(name, dtype)| Field::new((*name).into(), dtype.clone()))
        .collect();
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema_overwrite(Some(std::sync::Arc::new(overwrite)))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()
}

/// Storage type of a param column, inferred over every run of the whole plan (not one shard), so
/// that shards of the same scenario always share one schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamType {
    Bool,
    Int,
    Float,
    Text,
}

fn param_type(values: &[&serde_json::Value]) -> ParamType {
    use serde_json::Value;
    if values.iter().all(|v| v.is_boolean()) {
        ParamType::Bool
    } else if values.iter().all(|v| v.is_i64()) {
        ParamType::Int
    } else if values.iter().all(|v| matches!(v, Value::Number(_))) {
        ParamType::Float
    } else {
        ParamType::Text
    }
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Param column names in first-appearance order over `specs`, each with its inferred type.
fn param_columns(specs: &[crate::scenario::RunSpec]) -> Vec<(String, ParamType)> {
    let mut names: Vec<String> = Vec::new();
    for spec in specs {
        for (name, _) in &spec.columns {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let values: Vec<&serde_json::Value> = specs
                .iter()
                .filter_map(|s| s.columns.iter().find(|(n, _)| *n == name).map(|(_, v)| v))
                .collect();
            let ty = param_type(&values);
            (name, ty)
        })
        .collect()
}

/// The `runs` table: `run`, `replication`, `seed`, one column per param, one per metric, `error`.
/// Param column types come from `plan_specs` (all runs of the plan), rows from `records`.
pub fn runs_frame(
    plan_specs: &[crate::scenario::RunSpec],
    records: &[crate::runner::RunRecord],
) -> PolarsResult<DataFrame> {
    let mut cols: Vec<Column> = vec![
        Column::new(
            "run".into(),
            records.iter().map(|r| r.spec.ctx.run).collect::<Vec<u64>>(),
        ),
        Column::new(
            "replication".into(),
            records
                .iter()
                .map(|r| r.spec.ctx.replication)
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "seed".into(),
            records
                .iter()
                .map(|r| r.spec.ctx.seed)
                .collect::<Vec<u64>>(),
        ),
    ];
    for (name, ty) in param_columns(plan_specs) {
        let cell = |r: &crate::runner::RunRecord| {
            r.spec
                .columns
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let column = match ty {
            ParamType::Bool => Column::new(
                name.as_str().into(),
                records
                    .iter()
                    .map(|r| cell(r).and_then(|v| v.as_bool()))
                    .collect::<Vec<_>>(),
            ),
            ParamType::Int => Column::new(
                name.as_str().into(),
                records
                    .iter()
                    .map(|r| cell(r).and_then(|v| v.as_i64()))
                    .collect::<Vec<_>>(),
            ),
            ParamType::Float => Column::new(
                name.as_str().into(),
                records
                    .iter()
                    .map(|r| cell(r).and_then(|v| v.as_f64()))
                    .collect::<Vec<_>>(),
            ),
            ParamType::Text => Column::new(
                name.as_str().into(),
                records
                    .iter()
                    .map(|r| cell(r).map(|v| text(&v)))
                    .collect::<Vec<_>>(),
            ),
        };
        cols.push(column);
    }
    let mut metric_names: Vec<&str> = Vec::new();
    for r in records {
        if let Ok(out) = &r.outcome {
            for (name, _) in &out.metrics {
                if !metric_names.contains(&name.as_str()) {
                    metric_names.push(name);
                }
            }
        }
    }
    for name in metric_names {
        let values: Vec<Option<f64>> = records
            .iter()
            .map(|r| r.outcome.as_ref().ok().and_then(|o| o.get(name)))
            .collect();
        cols.push(Column::new(name.into(), values));
    }
    cols.push(Column::new(
        "error".into(),
        records
            .iter()
            .map(|r| r.outcome.as_ref().err().map(ToString::to_string))
            .collect::<Vec<Option<String>>>(),
    ));
    DataFrame::new(cols)
}

/// The `series` table (`run`, `t_s`, `component`, `metric`, `value`), or `None` when no run recorded one.
pub fn series_frame(records: &[crate::runner::RunRecord]) -> PolarsResult<Option<DataFrame>> {
    let points = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok().map(|o| (r.spec.ctx.run, &o.series)))
        .flat_map(|(run, series)| series.iter().map(move |p| (run, p)));
    let (mut run, mut t_s, mut component, mut metric, mut value) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (r, p) in points {
        run.push(r);
        t_s.push(p.t_s);
        component.push(p.component.as_str());
        metric.push(p.metric.as_str());
        value.push(p.value);
    }
    if run.is_empty() {
        return Ok(None);
    }
    DataFrame::new(vec![
        Column::new("run".into(), run),
        Column::new("t_s".into(), t_s),
        Column::new("component".into(), component),
        Column::new("metric".into(), metric),
        Column::new("value".into(), value),
    ])
    .map(Some)
}
