//! Reading results folders: their runs and series tables, concatenated across shards.
//!
//! A results folder holds `manifest.json` listing its `runs.parquet` or `runs.csv` and optionally
//! `series.parquet` or `series.csv`, each with its SHA-256; a folder that does not match its manifest
//! is refused (see [`sim_run::manifest::verify`]). Shards are concatenated diagonally — columns are aligned by name,
//! a column missing from a shard is null there, and a column whose type differs between shards is
//! widened (integers → `i64`, mixed numbers → `f64`, anything else → string) — then sorted by `run`.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{AnalysisError, Result};
use crate::glob;
use sim_run::manifest::Manifest;
use sim_run::table::{RUNS_KEY_TYPES as RUNS_KEYS, SERIES_KEY_TYPES as SERIES_KEYS};

/// File stem of the runs table.
const RUNS: &str = "runs";
/// File stem of the series table.
const SERIES: &str = "series";

/// Loads the runs tables of `paths` — results folders, or patterns with `*`/`?` in their last
/// component naming several — into one frame sorted by `run`. Each folder is checked against its
/// manifest first.
pub fn load_runs(paths: &[PathBuf]) -> Result<DataFrame> {
    let frames = folders(paths)?
        .iter()
        .map(read_runs)
        .collect::<Result<Vec<_>>>()?;
    concat_sorted(frames)
}

/// Loads the series tables of `paths` (as in [`load_runs`]) into one frame sorted by `run`, each
/// run's rows in file order. Folders without a series table contribute nothing; it is an error
/// when none has one.
pub fn load_series(paths: &[PathBuf]) -> Result<DataFrame> {
    let folders = folders(paths)?;
    let mut frames = Vec::new();
    for folder in &folders {
        frames.extend(read_series(folder)?);
    }
    if frames.is_empty() {
        return Err(AnalysisError::NoSeries {
            folders: folders.into_iter().map(|f| f.dir).collect(),
        });
    }
    concat_sorted(frames)
}

/// A results folder whose files matched its manifest.
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    /// The folder.
    pub dir: PathBuf,
    /// Its verified manifest.
    pub manifest: Manifest,
}

/// Expands `paths` into results folders, checking each against its manifest (see
/// [`sim_run::manifest::verify`]) and that it lists a runs table.
pub(crate) fn folders(paths: &[PathBuf]) -> Result<Vec<Folder>> {
    if paths.is_empty() {
        return Err(AnalysisError::Empty("no results folder given".into()));
    }
    let mut out = Vec::new();
    for path in paths {
        for dir in glob::expand(path)? {
            let manifest = sim_run::manifest::verify(&dir)?;
            if manifest.table(RUNS).is_none() {
                return Err(AnalysisError::NotResults { path: dir });
            }
            out.push(Folder { dir, manifest });
        }
    }
    Ok(out)
}

/// Reads the runs table of one verified results folder.
pub(crate) fn read_runs(folder: &Folder) -> Result<DataFrame> {
    let entry = folder
        .manifest
        .table(RUNS)
        .ok_or_else(|| AnalysisError::NotResults {
            path: folder.dir.clone(),
        })?;
    read_table(&folder.dir.join(&entry.name), &RUNS_KEYS)
}

/// Reads the series table of one verified results folder, if its manifest lists one.
pub(crate) fn read_series(folder: &Folder) -> Result<Option<DataFrame>> {
    folder
        .manifest
        .table(SERIES)
        .map(|entry| read_table(&folder.dir.join(&entry.name), &SERIES_KEYS))
        .transpose()
}

/// Reads a Parquet or CSV table, giving its key columns their fixed types; it must have `run`.
fn read_table(path: &Path, keys: &[(&str, DataType)]) -> Result<DataFrame> {
    let err = |e| AnalysisError::table(path, e);
    let df = sim_run::table::read_frame(path, keys).map_err(err)?;
    if df.column("run").is_err() {
        return Err(err(PolarsError::ColumnNotFound("no `run` column".into())));
    }
    Ok(df)
}

/// Concatenates frames diagonally and sorts the result by `run`, keeping the order within a run.
pub(crate) fn concat_sorted(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let df = concat_diagonal(frames)?;
    Ok(df.sort(
        ["run"],
        SortMultipleOptions::default().with_maintain_order(true),
    )?)
}

/// Stacks frames whose columns may differ: the union of the columns in first-appearance order, each
/// with the common type of its non-null occurrences, nulls where a frame lacks it.
pub(crate) fn concat_diagonal(frames: Vec<DataFrame>) -> Result<DataFrame> {
    // (name, type so far, whether some frame had a non-null value)
    let mut schema: Vec<(PlSmallStr, DataType, bool)> = Vec::new();
    for df in &frames {
        for column in df.get_columns() {
            let informative = column.null_count() < column.len();
            match schema.iter_mut().find(|(name, ..)| name == column.name()) {
                None => schema.push((column.name().clone(), column.dtype().clone(), informative)),
                Some((_, dtype, known)) if informative => {
                    *dtype = if *known {
                        widen(dtype, column.dtype())
                    } else {
                        column.dtype().clone()
                    };
                    *known = true;
                }
                Some(_) => {}
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for df in &frames {
        let columns = schema
            .iter()
            .map(|(name, dtype, _)| match df.column(name) {
                Ok(column) if column.dtype() == dtype => Ok(column.clone()),
                Ok(column) => column.strict_cast(dtype),
                Err(_) => Ok(Column::full_null(name.clone(), df.height(), dtype)),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let aligned = DataFrame::new(columns)?;
        match out.as_mut() {
            None => out = Some(aligned),
            Some(acc) => {
                acc.vstack_mut(&aligned)?;
            }
        }
    }
    let mut df = out.ok_or_else(|| AnalysisError::Empty("no tables to concatenate".into()))?;
    df.as_single_chunk_par();
    Ok(df)
}

/// The type both `a` and `b` convert to without loss of meaning.
fn widen(a: &DataType, b: &DataType) -> DataType {
    if a == b {
        a.clone()
    } else if a.is_integer() && b.is_integer() {
        DataType::Int64
    } else if a.is_primitive_numeric() && b.is_primitive_numeric() {
        DataType::Float64
    } else {
        DataType::String
    }
}

/// Test helpers: results folders with a manifest, written by hand.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use sim_run::manifest::{self, Manifest};
    use sim_run::scenario::ScenarioFile;

    /// A manifest of scenario `name` (seed `seed`, fingerprint `key`) listing no files yet.
    pub(crate) fn manifest(
        name: &str,
        seed: u64,
        key: &str,
        shard: Option<&str>,
        total: usize,
    ) -> Manifest {
        Manifest {
            sysim_version: "test".into(),
            git_commit: None,
            scenario_file: format!("{name}.yaml"),
            scenario: serde_json::from_value::<ScenarioFile>(
                serde_json::json!({ "name": name, "family": "queue", "seed": seed }),
            )
            .unwrap(),
            overrides: Vec::new(),
            plan_key: key.into(),
            runs_total: total,
            runs_written: total,
            runs_failed: 0,
            shard: shard.map(str::to_owned),
            wall_time_s: 0.0,
            files: Vec::new(),
        }
    }

    /// Writes `dir/manifest.json` from `manifest`, listing every table file now in `dir`.
    pub(crate) fn seal(dir: &Path, mut manifest: Manifest) {
        manifest.files = manifest::table_files(dir)
            .unwrap()
            .iter()
            .map(|name| manifest::digest_file(&dir.join(name)).unwrap())
            .collect();
        std::fs::write(
            dir.join(manifest::MANIFEST),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_run::table::{Format, write_frame_atomic};

    fn write(dir: &Path, stem: &str, mut df: DataFrame, format: Format) {
        std::fs::create_dir_all(dir).unwrap();
        write_frame_atomic(&mut df, &format.path(dir, stem), format).unwrap();
        testing::seal(dir, testing::manifest("t", 1, "k", None, df.height()));
    }

    #[test]
    fn concatenates_shards_diagonally_sorted_by_run() {
        let tmp = tempfile::tempdir().unwrap();
        let a = df! {
            "run" => [2u64, 0],
            "replication" => [0u32, 0],
            "seed" => [u64::MAX, 5],
            "governor" => ["fuse", "stock"],
            "energy_j" => [1.5, 2.5],
            "error" => [None::<&str>, None],
        }
        .unwrap();
        let b = df! {
            "run" => [1u64, 3],
            "replication" => [1u32, 1],
            "seed" => [6u64, 7],
            "governor" => ["stock", "fuse"],
            "workload.requests" => [10i64, 20],
            "energy_j" => [3.5, 4.5],
            "error" => [Some("oom"), None],
        }
        .unwrap();
        write(&tmp.path().join("shard-0"), RUNS, a, Format::Parquet);
        write(&tmp.path().join("shard-1"), RUNS, b, Format::Csv);

        let df = load_runs(&[tmp.path().join("shard-*")]).unwrap();
        let runs: Vec<_> = df
            .column("run")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(runs, [0, 1, 2, 3]);
        let seeds = df.column("seed").unwrap().u64().unwrap();
        assert_eq!(seeds.get(2), Some(u64::MAX));
        let requests = df.column("workload.requests").unwrap().i64().unwrap();
        assert_eq!(
            requests.into_iter().collect::<Vec<_>>(),
            [None, Some(10), None, Some(20)]
        );
        let errors = df.column("error").unwrap().str().unwrap();
        assert_eq!(
            errors.into_iter().collect::<Vec<_>>(),
            [None, Some("oom"), None, None]
        );
        assert_eq!(df.column("replication").unwrap().dtype(), &DataType::UInt32);
    }

    #[test]
    fn widens_conflicting_types() {
        let a = df! { "run" => [0u64], "x" => [1i64], "y" => [1i64], "z" => ["a"] }.unwrap();
        let b = df! { "run" => [1u64], "x" => [2i32], "y" => [2.5], "z" => [3.0] }.unwrap();
        let df = concat_sorted(vec![a, b]).unwrap();
        assert_eq!(df.column("x").unwrap().dtype(), &DataType::Int64);
        assert_eq!(df.column("y").unwrap().dtype(), &DataType::Float64);
        assert_eq!(df.column("z").unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn loads_series_from_folders_that_have_them() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = |r: u64| df! { "run" => [r], "energy_j" => [1.0] }.unwrap();
        let series = |r: u64| {
            df! {
                "run" => [r, r],
                "t_s" => [0.0, 1.0],
                "component" => ["cpu", "cpu"],
                "metric" => ["power_w", "power_w"],
                "value" => [1.0, 2.0],
            }
            .unwrap()
        };
        for (name, r, with_series) in [("s1", 1, true), ("s0", 0, true), ("s2", 2, false)] {
            let dir = tmp.path().join(name);
            write(&dir, RUNS, runs(r), Format::Csv);
            if with_series {
                write(&dir, SERIES, series(r), Format::Csv);
            }
        }
        let df = load_series(&[tmp.path().join("s*")]).unwrap();
        let runs: Vec<_> = df
            .column("run")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(runs, [0, 0, 1, 1]);
        let t: Vec<_> = df
            .column("t_s")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(t, [0.0, 1.0, 0.0, 1.0]);

        let err = load_series(&[tmp.path().join("s2")]).unwrap_err();
        assert!(matches!(err, AnalysisError::NoSeries { .. }), "{err}");
    }

    #[test]
    fn errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("no-such-run");
        let err = load_runs(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );

        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        let err = load_runs(&[tmp.path().join("empty")]).unwrap_err();
        assert!(matches!(err, AnalysisError::Integrity(_)), "{err}");
        assert!(err.to_string().contains("empty"), "{err}");
        assert!(err.to_string().contains("no manifest.json"), "{err}");

        let dir = tmp.path().join("bad");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("runs.csv"), "x,y\n1,2\n").unwrap();
        testing::seal(&dir, testing::manifest("t", 1, "k", None, 1));
        let err = load_runs(&[dir.join("runs.csv")]).unwrap_err();
        assert!(
            err.to_string().contains("not a finished results folder"),
            "a file is no folder: {err}"
        );
        let err = load_runs(&[dir]).unwrap_err();
        assert!(err.to_string().contains("runs.csv"), "{err}");
        assert!(err.to_string().contains("`run`"), "{err}");
    }
}
