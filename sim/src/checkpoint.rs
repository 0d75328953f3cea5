//! Checkpoints of long runs: a run's nexosim state (every model, RNGs included, and the scheduler
//! queue, through `Simulation::save` / `SimInit::restore`) plus the family's own collected results,
//! written atomically every `every` of simulated time so a killed run continues where it stopped.
//!
//! Layout of a checkpoint folder: `checkpoint.json` (the plan fingerprint and the interval, so a
//! folder is never resumed by another scenario) and one `run-<index>.ckpt` per unfinished run, removed
//! when the run completes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nexosim::simulation::{SimInit, Simulation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::T0;
use crate::experiment::RunError;

/// First bytes of a run checkpoint file (format version 1).
const MAGIC: &[u8; 8] = b"SYSIMCK1";

/// Where and how often runs save their state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointPolicy {
    /// Folder holding `checkpoint.json` and the per-run files.
    pub dir: PathBuf,
    /// Simulated time between two checkpoints of a run.
    pub every: Duration,
}

/// `checkpoint.json`: what a checkpoint folder belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FolderInfo {
    /// Fingerprint of the resolved plan (`resume::plan_key`).
    plan_key: String,
    /// Checkpoint interval in simulated seconds.
    every_s: f64,
}

impl CheckpointPolicy {
    /// Prepares `dir` for the plan with fingerprint `plan_key`: creates it and records the interval.
    /// An existing folder of another plan is refused, so stale state is never restored.
    pub fn create(dir: &Path, every: Duration, plan_key: &str) -> Result<Self, String> {
        if let Some(info) = read_info(dir)?
            && info.plan_key != plan_key
        {
            return Err(format!(
                "{}: holds checkpoints of another scenario (plan {}, this one is {plan_key}); use another folder",
                dir.display(),
                info.plan_key
            ));
        }
        fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        let info = FolderInfo {
            plan_key: plan_key.to_owned(),
            every_s: every.as_secs_f64(),
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| e.to_string())?;
        write_atomic(&dir.join("checkpoint.json"), &json)?;
        Ok(CheckpointPolicy {
            dir: dir.to_owned(),
            every,
        })
    }

    /// Reopens a checkpoint folder written for the plan `plan_key`, with the interval it recorded.
    pub fn reopen(dir: &Path, plan_key: &str) -> Result<Self, String> {
        let info = read_info(dir)?.ok_or_else(|| {
            format!(
                "{}: not a checkpoint folder (no checkpoint.json); start the run with --checkpoint {}",
                dir.display(),
                dir.display()
            )
        })?;
        if info.plan_key != plan_key {
            return Err(format!(
                "{}: holds checkpoints of another scenario (plan {}, this one is {plan_key})",
                dir.display(),
                info.plan_key
            ));
        }
        Ok(CheckpointPolicy {
            dir: dir.to_owned(),
            every: Duration::from_secs_f64(info.every_s),
        })
    }

    /// The checkpointer of run `run`.
    pub fn for_run(&self, run: u64) -> Checkpointer {
        Checkpointer {
            path: self.dir.join(format!("run-{run}.ckpt")),
            every: self.every,
        }
    }
}

fn read_info(dir: &Path) -> Result<Option<FolderInfo>, String> {
    let path = dir.join("checkpoint.json");
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: not a sysim checkpoint record: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Saves and restores one run. A family that supports checkpoints starts its bench with
/// [`Checkpointer::start`] and advances it with [`Checkpointer::drive`] instead of `init` + `run`.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    path: PathBuf,
    every: Duration,
}

impl Checkpointer {
    /// Whether this run has a saved state to continue from.
    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// Builds the simulation from `bench`: restored from this run's checkpoint if one exists (with the
    /// family state saved beside it), else initialised at [`T0`] with no state.
    pub fn start<S: DeserializeOwned>(
        &self,
        bench: SimInit,
    ) -> Result<(Simulation, Option<S>), RunError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((bench.init(T0)?, None));
            }
            Err(e) => return Err(self.corrupt(e)),
        };
        let (engine, state) = split(&bytes).ok_or_else(|| self.corrupt("truncated file"))?;
        let state: S = serde_json::from_slice(state).map_err(|e| self.corrupt(e))?;
        Ok((bench.restore(engine)?, Some(state)))
    }

    /// Runs `sim` to completion in steps of the checkpoint interval. After each step `collect` moves
    /// what the family's sinks produced into `state` and says whether the run is complete; if not, the
    /// engine and `state` are saved. The checkpoint file is removed once the run is complete.
    pub fn drive<S: Serialize>(
        &self,
        sim: &mut Simulation,
        state: &mut S,
        mut collect: impl FnMut(&mut S) -> bool,
    ) -> Result<(), RunError> {
        loop {
            let deadline = sim.time() + self.every;
            sim.step_until(deadline)?;
            if collect(state) {
                break;
            }
            self.save(sim, state)?;
        }
        sim.run()?;
        collect(state);
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.corrupt(e)),
        }
    }

    fn save<S: Serialize>(&self, sim: &mut Simulation, state: &S) -> Result<(), RunError> {
        let mut engine = Vec::new();
        sim.save(&mut engine)?;
        let family = serde_json::to_vec(state).map_err(|e| self.corrupt(e))?;
        let mut bytes = Vec::with_capacity(16 + engine.len() + family.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(engine.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&engine);
        bytes.extend_from_slice(&family);
        write_atomic(&self.path, &bytes).map_err(RunError::Model)
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> RunError {
        RunError::Model(format!("checkpoint {}: {e}", self.path.display()))
    }
}

/// Splits a checkpoint file into (engine state, family state JSON).
fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a kill never leaves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("{}: cannot write checkpoint: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_another_plan_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let every = Duration::from_secs(10);
        CheckpointPolicy::create(tmp.path(), every, "aaa").unwrap();
        let again = CheckpointPolicy::reopen(tmp.path(), "aaa").unwrap();
        assert_eq!(again.every, every);
        let err = CheckpointPolicy::reopen(tmp.path(), "bbb").unwrap_err();
        assert!(err.contains("another scenario"), "{err}");
        let err = CheckpointPolicy::create(tmp.path(), every, "bbb").unwrap_err();
        assert!(err.contains("another scenario"), "{err}");
    }

    #[test]
    fn split_rejects_truncated_files() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        assert!(split(&bytes).is_none());
        bytes.extend_from_slice(b"de{}");
        assert_eq!(split(&bytes), Some((&b"abcde"[..], &b"{}"[..])));
        assert!(split(b"garbage").is_none());
    }
}
