//! The results folder of one run of a scenario: `runs`, optional `series`, and `manifest.json`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::InputError;
use crate::runner::{RunRecord, Shard};
use crate::scenario::{Plan, ScenarioFile, io_reason};
use crate::table::{self, Format};

/// Provenance of a results folder, written as `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// sysim version that produced the tables.
    pub sysim_version: String,
    /// Git commit of the sysim build, when known.
    pub git_commit: Option<String>,
    /// Scenario file path as given.
    pub scenario_file: String,
    /// The scenario as resolved (with `--set` overrides and `--seed` applied).
    pub scenario: ScenarioFile,
    /// The `--set KEY=VALUE` overrides applied to the file, as written.
    pub overrides: Vec<String>,
    /// Fingerprint of the resolved plan (see [`crate::resume::plan_key`]); `--resume` checks it.
    pub plan_key: String,
    /// Runs in the whole plan.
    pub runs_total: usize,
    /// Runs in this folder (fewer than `runs_total` for a shard).
    pub runs_written: usize,
    /// Runs that failed (their rows carry the error).
    pub runs_failed: usize,
    /// The shard this folder holds, `K/N`, if any.
    pub shard: Option<String>,
    /// Wall time of the runs, seconds.
    pub wall_time_s: f64,
    /// Table files written.
    pub files: Vec<String>,
}

/// Creates `dir` and checks it is writable, before any run starts (bad `--out` is bad input).
pub fn prepare_dir(dir: &Path) -> Result<(), InputError> {
    let fail = |e: std::io::Error| {
        InputError::file(
            dir,
            format!("output folder is not writable: {}", io_reason(&e)),
        )
    };
    fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".sysim-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)
}

/// Identity of the sysim build, for manifests.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    /// Crate version.
    pub version: &'static str,
    /// Git commit, when the build knew it.
    pub commit: Option<&'static str>,
}

/// Writes the tables and the manifest of `records` into `dir` (each file atomically).
pub fn write_results(
    dir: &Path,
    plan: &Plan,
    records: &[RunRecord],
    format: Format,
    shard: Option<Shard>,
    wall_time_s: f64,
    build: Build,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut runs = table::runs_frame(&plan.runs, records).map_err(std::io::Error::other)?;
    let runs_path = format.path(dir, "runs");
    table::write_frame_atomic(&mut runs, &runs_path, format)?;
    written.push(runs_path);
    if let Some(mut series) = table::series_frame(records).map_err(std::io::Error::other)? {
        let series_path = format.path(dir, "series");
        table::write_frame_atomic(&mut series, &series_path, format)?;
        written.push(series_path);
    }
    let manifest = Manifest {
        sysim_version: build.version.to_owned(),
        git_commit: build.commit.map(str::to_owned),
        scenario_file: plan.path.display().to_string(),
        scenario: plan.scenario.clone(),
        overrides: plan.overrides.clone(),
        plan_key: crate::resume::plan_key(plan),
        runs_total: plan.runs.len(),
        runs_written: records.len(),
        runs_failed: records.iter().filter(|r| r.outcome.is_err()).count(),
        shard: shard.map(|s| s.to_string()),
        wall_time_s,
        files: written
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let manifest_path = dir.join("manifest.json");
    table::write_bytes_atomic(&manifest_path, &json)?;
    written.push(manifest_path);
    Ok(written)
}
