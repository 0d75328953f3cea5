//! `--trace DIR`: one Chrome/Perfetto trace-event file per run, written as the run finishes.

use std::path::{Path, PathBuf};

use sim::experiment::RunOutput;

use crate::scenario::RunSpec;
use crate::table::write_bytes_atomic;

/// The trace file of run `run` in `dir` (`run-00007.json`).
pub fn path(dir: &Path, run: u64) -> PathBuf {
    dir.join(format!("run-{run:05}.json"))
}

/// Writes `out`'s timeline (and its series as counter tracks) for `spec` into `dir`, then drops it
/// from `out` so that the records do not keep it. Returns its notes (the cap note when events were
/// dropped, and the family's own).
pub fn write(
    dir: &Path,
    family: &str,
    spec: &RunSpec,
    out: &mut RunOutput,
) -> Result<Option<String>, String> {
    let trace = std::mem::take(&mut out.trace);
    let title = format!(
        "{family} run {} (point {}, replication {}, seed {})",
        spec.ctx.run, spec.ctx.point, spec.ctx.replication, spec.ctx.seed
    );
    let doc = trace.to_chrome_json(&title, &out.series);
    let file = path(dir, spec.ctx.run);
    let bytes = serde_json::to_vec(&doc).map_err(|e| format!("trace {}: {e}", file.display()))?;
    write_bytes_atomic(&file, &bytes).map_err(|e| format!("trace {}: {e}", file.display()))?;
    Ok(trace.notes().map(|n| format!("{}: {n}", file.display())))
}

/// The note file a resumed run leaves in a trace folder that lacks some runs' timelines.
pub const RESUME_NOTE: &str = "RESUMED.txt";

/// After `--resume` with `--trace DIR`: the runs in `kept` finished before this invocation and are
/// not run again, so only those whose timeline the first invocation wrote into `dir` have one.
/// Writes [`RESUME_NOTE`] naming the others and returns the same message for stderr (`None` when
/// every kept run has its timeline). Runs continued from a checkpoint are run to their end here,
/// and their timelines are whole.
pub fn note_kept_runs(dir: &Path, kept: &[u64]) -> Result<Option<String>, String> {
    let missing: Vec<String> = kept
        .iter()
        .filter(|&&run| !path(dir, run).is_file())
        .map(u64::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let note = format!(
        "{}: no timeline for {} of the runs this resume kept as finished (runs {}): they finished before this resume without writing a timeline here; run them again without --resume to trace them",
        dir.display(),
        missing.len(),
        missing.join(", ")
    );
    let file = dir.join(RESUME_NOTE);
    write_bytes_atomic(&file, format!("{note}\n").as_bytes())
        .map_err(|e| format!("trace {}: {e}", file.display()))?;
    Ok(Some(note))
}
