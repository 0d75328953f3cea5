//! The results folder of one run of a scenario: `runs`, optional `series`, and `manifest.json`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use crate::error::InputError;
use crate::manifest::{self, FileEntry, MANIFEST, Manifest};
use crate::runner::{RunRecord, Shard};
use crate::scenario::{Plan, io_reason};
use crate::table::{self, Format};

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

/// Writes the tables and the manifest of `records` into `dir` as one unit (see [`write_folder`]).
pub fn write_results(
    dir: &Path,
    plan: &Plan,
    records: &[RunRecord],
    format: Format,
    shard: Option<Shard>,
    wall_time_s: f64,
    build: Build,
) -> io::Result<Vec<PathBuf>> {
    let runs = table::runs_frame(&plan.runs, records).map_err(io::Error::other)?;
    let series = table::series_frame(records).map_err(io::Error::other)?;
    let mut tables = vec![("runs", runs)];
    tables.extend(series.map(|s| ("series", s)));
    write_folder(dir, tables, format, |files| Manifest {
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
        files,
    })
}

/// Writes a results folder as one unit: the old manifest is removed first (a folder interrupted
/// from here on has none, and every reader refuses it), each table is written atomically, table
/// files this write did not produce (another format, a series table of an earlier run) are
/// removed, and the manifest listing each table's size and SHA-256 is written last. The caller
/// holds the folder's [`crate::lock`]. Returns the paths written, manifest last.
pub fn write_folder(
    dir: &Path,
    tables: Vec<(&str, DataFrame)>,
    format: Format,
    manifest: impl FnOnce(Vec<FileEntry>) -> Manifest,
) -> io::Result<Vec<PathBuf>> {
    let manifest_path = dir.join(MANIFEST);
    match fs::remove_file(&manifest_path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut written = Vec::new();
    let mut entries = Vec::new();
    for (stem, mut df) in tables {
        let path = format.path(dir, stem);
        entries.push(table::write_frame_atomic(&mut df, &path, format)?);
        written.push(path);
    }
    for name in manifest::table_files(dir)? {
        if !entries.iter().any(|e| e.name == name) {
            fs::remove_file(dir.join(name))?;
        }
    }
    let json = serde_json::to_vec_pretty(&manifest(entries)).map_err(io::Error::other)?;
    table::write_bytes_atomic(&manifest_path, &json)?;
    written.push(manifest_path);
    Ok(written)
}
