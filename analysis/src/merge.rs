//! `sysim merge`: the shards of a split sweep combined into one results folder.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sim_run::manifest::Manifest;
use sim_run::output::write_folder;
use sim_run::runner::Shard;
use sim_run::table::Format;

use crate::error::{AnalysisError, Result};
use crate::load::{self, Folder};

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
/// (folders or `*` patterns, as in [`load::load_runs`]) into `out` in `format`, written as one
/// unit with a manifest (see [`sim_run::output::write_folder`]) under the folder's lock. Each
/// shard is verified against its manifest; refused are shards of different families, seeds,
/// scenarios (plan fingerprints) or shard counts, `run` indices present in two shards, a set of
/// shards missing some run of the plan, and an `out` that is one of the shards.
pub fn merge(dirs: &[PathBuf], out: &Path, format: Format) -> Result<MergeSummary> {
    let shards = load::folders(dirs)?;
    refuse_output_among_inputs(&shards, out)?;
    refuse_foreign_shards(&shards)?;

    let mut runs = Vec::with_capacity(shards.len());
    let mut series = Vec::new();
    for shard in &shards {
        runs.push(load::read_runs(shard)?);
        series.extend(load::read_series(shard)?);
    }
    refuse_duplicate_runs(&shards, &runs)?;
    let first = &shards[0].manifest;
    refuse_missing_runs(first.runs_total, &runs)?;
    let runs = load::concat_sorted(runs)?;
    let series = if series.is_empty() {
        None
    } else {
        Some(load::concat_sorted(series)?)
    };

    fs::create_dir_all(out).map_err(|e| AnalysisError::io(out, e))?;
    let _lock = sim_run::lock::lock(out)?;
    let summary_rows = (runs.height(), series.as_ref().map_or(0, DataFrame::height));
    let mut tables = vec![("runs", runs)];
    tables.extend(series.map(|s| ("series", s)));
    let written = write_folder(out, tables, format, |files| Manifest {
        shard: None,
        runs_written: summary_rows.0,
        runs_failed: shards.iter().map(|s| s.manifest.runs_failed).sum(),
        wall_time_s: shards.iter().map(|s| s.manifest.wall_time_s).sum(),
        files,
        ..first.clone()
    })
    .map_err(|e| AnalysisError::io(out, e))?;
    Ok(MergeSummary {
        shards: shards.len(),
        runs: summary_rows.0,
        series_rows: summary_rows.1,
        written,
    })
}

/// The shard count `N` of a manifest's `K/N` (1 for a folder holding a whole plan).
fn shard_count(manifest: &Manifest) -> Option<u64> {
    match &manifest.shard {
        None => Some(1),
        Some(text) => text.parse::<Shard>().ok().map(|s| s.count),
    }
}

/// Errors when a shard is not part of the same run as the first: another family, seed, plan
/// fingerprint (scenario and params) or shard count.
fn refuse_foreign_shards(shards: &[Folder]) -> Result<()> {
    let first = &shards[0];
    for other in &shards[1..] {
        let (a, b) = (&first.manifest, &other.manifest);
        let what = if a.scenario.family != b.scenario.family {
            format!("family `{}` vs `{}`", a.scenario.family, b.scenario.family)
        } else if a.scenario.seed != b.scenario.seed {
            format!("seed {} vs {}", a.scenario.seed, b.scenario.seed)
        } else if a.plan_key != b.plan_key {
            format!(
                "scenario fingerprint {} vs {} (another scenario, or other params)",
                a.plan_key, b.plan_key
            )
        } else if shard_count(a) != shard_count(b) {
            format!(
                "shard {} vs {} (split into different numbers of parts)",
                a.shard.as_deref().unwrap_or("none"),
                b.shard.as_deref().unwrap_or("none")
            )
        } else {
            continue;
        };
        return Err(AnalysisError::ShardMismatch {
            first: first.dir.clone(),
            second: other.dir.clone(),
            what,
        });
    }
    Ok(())
}

/// Errors when some run `0..total` of the plan is in no shard.
fn refuse_missing_runs(total: usize, frames: &[DataFrame]) -> Result<()> {
    let mut seen = vec![false; total];
    for df in frames {
        for run in df.column("run")?.u64()?.into_iter().flatten() {
            if let Some(slot) = usize::try_from(run).ok().and_then(|r| seen.get_mut(r)) {
                *slot = true;
            }
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    match seen.iter().position(|s| !*s) {
        None => Ok(()),
        Some(first) => Err(AnalysisError::IncompleteShards {
            missing,
            total,
            first: first as u64,
        }),
    }
}

fn refuse_output_among_inputs(shards: &[Folder], out: &Path) -> Result<()> {
    let Ok(out_canonical) = out.canonicalize() else {
        return Ok(()); // does not exist yet, so it is no shard
    };
    if shards
        .iter()
        .any(|shard| shard.dir.canonicalize().is_ok_and(|s| s == out_canonical))
    {
        return Err(AnalysisError::OutputIsInput {
            path: out.to_path_buf(),
        });
    }
    Ok(())
}

/// Errors naming every `run` index seen in more than one shard (or twice in one).
fn refuse_duplicate_runs(shards: &[Folder], frames: &[DataFrame]) -> Result<()> {
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
        first: shards[first].dir.clone(),
        second: shards[second].dir.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testing::{manifest, seal};
    use sim_run::table::write_frame_atomic;

    /// A shard folder holding `runs` of a 5-run plan (seed `seed`, fingerprint `key`) as part `part`.
    fn shard_of(
        dir: &Path,
        runs: &[u64],
        series: bool,
        format: Format,
        seed: u64,
        key: &str,
        part: Option<&str>,
    ) {
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
        seal(dir, manifest("t", seed, key, part, 5));
    }

    fn shard(dir: &Path, runs: &[u64], series: bool, format: Format, part: &str) {
        shard_of(dir, runs, series, format, 1, "k", Some(part));
    }

    #[test]
    fn merges_shards_into_one_sorted_table_with_a_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        shard(
            &tmp.path().join("part-1"),
            &[1, 3],
            true,
            Format::Csv,
            "1/2",
        );
        shard(
            &tmp.path().join("part-0"),
            &[0, 2, 4],
            false,
            Format::Parquet,
            "0/2",
        );
        let out = tmp.path().join("merged");

        let summary = merge(&[tmp.path().join("part-*")], &out, Format::Parquet).unwrap();
        assert_eq!(summary.shards, 2);
        assert_eq!(summary.runs, 5);
        assert_eq!(summary.series_rows, 2);
        assert_eq!(
            summary.written,
            [
                out.join("runs.parquet"),
                out.join("series.parquet"),
                out.join("manifest.json")
            ]
        );
        let m = sim_run::manifest::verify(&out).unwrap();
        assert_eq!(
            (m.shard, m.runs_written, m.plan_key.as_str()),
            (None, 5, "k")
        );

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

        // Re-merging in another format replaces the folder as a unit: no stale Parquet tables.
        merge(&[tmp.path().join("part-*")], &out, Format::Csv).unwrap();
        assert!(!out.join("runs.parquet").exists());
        assert_eq!(
            sim_run::manifest::verify(&out).unwrap().files[0].name,
            "runs.csv"
        );
    }

    #[test]
    fn refuses_duplicate_runs_and_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        shard(
            &tmp.path().join("a"),
            &[0, 1, 2],
            false,
            Format::Parquet,
            "0/2",
        );
        shard(&tmp.path().join("b"), &[2, 3, 1], false, Format::Csv, "1/2");
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
    fn refuses_shards_of_other_runs_and_incomplete_sets() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |n: &str| tmp.path().join(n);
        shard_of(&p("a"), &[0, 2, 4], false, Format::Csv, 1, "k", Some("0/2"));
        shard_of(&p("seed"), &[1, 3], false, Format::Csv, 2, "k", Some("1/2"));
        shard_of(
            &p("plan"),
            &[1, 3],
            false,
            Format::Csv,
            1,
            "other",
            Some("1/2"),
        );
        shard_of(
            &p("count"),
            &[1, 4],
            false,
            Format::Csv,
            1,
            "k",
            Some("1/3"),
        );
        let out = p("merged");
        for (other, expected) in [
            ("seed", "seed 1 vs 2"),
            ("plan", "scenario fingerprint k vs other"),
            ("count", "shard 0/2 vs 1/3"),
        ] {
            let err = merge(&[p("a"), p(other)], &out, Format::Csv).unwrap_err();
            assert!(matches!(err, AnalysisError::ShardMismatch { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
        let err = merge(&[p("a")], &out, Format::Csv).unwrap_err();
        assert_eq!(
            err.to_string(),
            "incomplete set of shards: 2 of 5 runs are in none of them (first missing: run 1); add the missing shard folders"
        );
        assert!(!out.exists(), "nothing written on error");
    }

    #[test]
    fn refuses_a_shard_that_does_not_match_its_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        shard(&tmp.path().join("a"), &[0, 2, 4], false, Format::Csv, "0/2");
        shard(&tmp.path().join("b"), &[1, 3], false, Format::Csv, "1/2");
        fs::write(tmp.path().join("b/runs.csv"), "run,seed\n1,5\n3,6\n").unwrap();
        let err = merge(&[tmp.path().join("*")], &tmp.path().join("m"), Format::Csv).unwrap_err();
        assert!(err.to_string().contains("runs.csv has"), "{err}");
    }

    #[test]
    fn refuses_writing_into_a_shard() {
        let tmp = tempfile::tempdir().unwrap();
        shard(
            &tmp.path().join("a"),
            &[0, 2, 4],
            false,
            Format::Parquet,
            "0/2",
        );
        shard(
            &tmp.path().join("b"),
            &[1, 3],
            false,
            Format::Parquet,
            "1/2",
        );
        let err = merge(
            &[tmp.path().join("*")],
            &tmp.path().join("a"),
            Format::Parquet,
        )
        .unwrap_err();
        assert!(matches!(err, AnalysisError::OutputIsInput { .. }), "{err}");
    }
}
