//! `sysim merge`: the shards of a split sweep combined into one results folder.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sim_run::table::{Format, write_frame_atomic};

use crate::error::{AnalysisError, Result};
use crate::load;

/// What [`merge`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSummary {
    /// Number of shard folders read.
    pub shards: usize,
    /// Rows of the merged runs table.
    pub runs: usize,
    /// Rows of the merged series table (0 when no shard has one).
    pub series_rows: usize,
    /// Files written, runs table first.
    pub written: Vec<PathBuf>,
}

/// Merges the runs tables (and series tables, if any shard has one) of the shard folders `dirs`
/// (folders or `*` patterns, as in [`load::load_runs`]) into `out` in `format`, each file written
/// atomically. Refuses `run` indices present in two shards, an `out` that is one of the shards, and
/// an `out` holding a runs or series table this merge would not overwrite. Nothing else (manifests,
/// figures) is copied.
pub fn merge(dirs: &[PathBuf], out: &Path, format: Format) -> Result<MergeSummary> {
    let shards = load::folders(dirs)?;
    refuse_output_among_inputs(&shards, out)?;

    let mut runs = Vec::with_capacity(shards.len());
    let mut series = Vec::new();
    for shard in &shards {
        runs.push(load::read_runs(shard)?);
        series.extend(load::read_series(shard)?);
    }
    refuse_duplicate_runs(&shards, &runs)?;
    let mut runs = load::concat_sorted(runs)?;
    let mut series = if series.is_empty() {
        None
    } else {
        Some(load::concat_sorted(series)?)
    };

    fs::create_dir_all(out).map_err(|e| AnalysisError::io(out, e))?;
    refuse_stale_tables(out, format, series.is_some())?;

    let runs_path = format.path(out, "runs");
    write_frame_atomic(&mut runs, &runs_path, format)
        .map_err(|e| AnalysisError::io(&runs_path, e))?;
    let mut summary = MergeSummary {
        shards: shards.len(),
        runs: runs.height(),
        series_rows: 0,
        written: vec![runs_path],
    };
    if let Some(series) = series.as_mut() {
        let path = format.path(out, "series");
        write_frame_atomic(series, &path, format).map_err(|e| AnalysisError::io(&path, e))?;
        summary.series_rows = series.height();
        summary.written.push(path);
    }
    Ok(summary)
}

fn refuse_output_among_inputs(shards: &[PathBuf], out: &Path) -> Result<()> {
    let Ok(out_canonical) = out.canonicalize() else {
        return Ok(()); // does not exist yet, so it is no shard
    };
    if shards
        .iter()
        .any(|shard| shard.canonicalize().is_ok_and(|s| s == out_canonical))
    {
        return Err(AnalysisError::OutputIsInput {
            path: out.to_path_buf(),
        });
    }
    Ok(())
}

/// Errors naming every `run` index seen in more than one shard (or twice in one).
fn refuse_duplicate_runs(shards: &[PathBuf], frames: &[DataFrame]) -> Result<()> {
    let mut owner: HashMap<u64, usize> = HashMap::new();
    let mut duplicates: Vec<(u64, usize, usize)> = Vec::new();
    for (shard, df) in frames.iter().enumerate() {
        for run in df.column("run")?.u64()?.into_iter().flatten() {
            if let Some(&first) = owner.get(&run) {
                duplicates.push((run, first, shard));
            } else {
                owner.insert(run, shard);
            }
        }
    }
    let Some(&(_, first, second)) = duplicates.iter().min() else {
        return Ok(());
    };
    let mut runs: Vec<u64> = duplicates.iter().map(|d| d.0).collect();
    runs.sort_unstable();
    runs.dedup();
    Err(AnalysisError::DuplicateRuns {
        runs,
        first: shards[first].clone(),
        second: shards[second].clone(),
    })
}

/// Errors when `out` holds a table file the merge will not replace: the other format's runs or
/// series table, or a series table when the merge has none.
fn refuse_stale_tables(out: &Path, format: Format, has_series: bool) -> Result<()> {
    for stem in ["runs", "series"] {
        let keep = (stem == "runs" || has_series).then(|| format.path(out, stem));
        if let Some(stale) = load::table_files(out, stem)
            .into_iter()
            .find(|path| Some(path) != keep.as_ref())
        {
            return Err(AnalysisError::StaleOutput { path: stale });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(dir: &Path, runs: &[u64], series: bool, format: Format) {
        fs::create_dir_all(dir).unwrap();
        let mut df = df! {
            "run" => runs,
            "replication" => runs.iter().map(|r| (r % 2) as u32).collect::<Vec<_>>(),
            "seed" => runs.iter().map(|r| r * 11).collect::<Vec<_>>(),
            "energy_j" => runs.iter().map(|&r| r as f64 / 2.0).collect::<Vec<_>>(),
            "error" => runs.iter().map(|_| None::<&str>).collect::<Vec<_>>(),
        }
        .unwrap();
        write_frame_atomic(&mut df, &format.path(dir, "runs"), format).unwrap();
        if series {
            let mut s = df! {
                "run" => runs,
                "t_s" => runs.iter().map(|_| 0.5).collect::<Vec<_>>(),
                "component" => runs.iter().map(|_| "cpu").collect::<Vec<_>>(),
                "metric" => runs.iter().map(|_| "power_w").collect::<Vec<_>>(),
                "value" => runs.iter().map(|&r| r as f64).collect::<Vec<_>>(),
            }
            .unwrap();
            write_frame_atomic(&mut s, &format.path(dir, "series"), format).unwrap();
        }
        fs::write(dir.join("manifest.json"), "{}").unwrap();
    }

    #[test]
    fn merges_shards_into_one_sorted_table() {
        let tmp = tempfile::tempdir().unwrap();
        shard(&tmp.path().join("part-1"), &[1, 3], true, Format::Csv);
        shard(
            &tmp.path().join("part-0"),
            &[0, 2, 4],
            false,
            Format::Parquet,
        );
        let out = tmp.path().join("merged");

        let summary = merge(&[tmp.path().join("part-*")], &out, Format::Parquet).unwrap();
        assert_eq!(summary.shards, 2);
        assert_eq!(summary.runs, 5);
        assert_eq!(summary.series_rows, 2);
        assert_eq!(
            summary.written,
            [out.join("runs.parquet"), out.join("series.parquet")]
        );
        assert!(!out.join("manifest.json").exists());

        let df = load::load_runs(std::slice::from_ref(&out)).unwrap();
        let runs: Vec<_> = df
            .column("run")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(runs, [0, 1, 2, 3, 4]);
        let series = load::load_series(std::slice::from_ref(&out)).unwrap();
        assert_eq!(series.height(), 2);

        // Re-merging into the same folder and format overwrites; another format would leave the
        // Parquet tables stale next to the CSV ones.
        merge(&[tmp.path().join("part-*")], &out, Format::Parquet).unwrap();
        let err = merge(&[tmp.path().join("part-*")], &out, Format::Csv).unwrap_err();
        assert!(matches!(err, AnalysisError::StaleOutput { .. }), "{err}");
    }

    #[test]
    fn refuses_duplicate_runs_and_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        shard(&tmp.path().join("a"), &[0, 1, 2], false, Format::Parquet);
        shard(&tmp.path().join("b"), &[2, 3, 1], false, Format::Csv);
        let out = tmp.path().join("merged");
        let err = merge(
            &[tmp.path().join("a"), tmp.path().join("b")],
            &out,
            Format::Csv,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("1, 2"), "{msg}");
        assert!(
            msg.contains(&tmp.path().join("a").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains(&tmp.path().join("b").display().to_string()),
            "{msg}"
        );
        assert!(!out.exists(), "nothing written on error");
    }

    #[test]
    fn refuses_writing_into_a_shard() {
        let tmp = tempfile::tempdir().unwrap();
        shard(&tmp.path().join("a"), &[0], false, Format::Parquet);
        shard(&tmp.path().join("b"), &[1], false, Format::Parquet);
        let err = merge(
            &[tmp.path().join("*")],
            &tmp.path().join("a"),
            Format::Parquet,
        )
        .unwrap_err();
        assert!(matches!(err, AnalysisError::OutputIsInput { .. }), "{err}");
    }
}
