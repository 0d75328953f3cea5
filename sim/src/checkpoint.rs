//! Checkpoints of one long run: its nexosim state (every model, RNGs included, and the scheduler
//! queue, through `Simulation::save` / `SimInit::restore`) plus the family's own collected results,
//! written atomically every `every` of simulated time so a killed run continues where it stopped.
//! The folder that holds them (and what it belongs to) is the run machinery's business
//! (`sim_run::checkpoint`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nexosim::simulation::{SimInit, Simulation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::T0;
use crate::experiment::RunError;

/// First bytes of a run checkpoint file (format version 1).
const MAGIC: &[u8; 8] = b"SYSIMCK1";

/// Saves and restores one run. A family that supports checkpoints starts its bench with
/// [`Checkpointer::start`] and advances it with [`Checkpointer::drive`] instead of `init` + `run`.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    path: PathBuf,
    every: Duration,
}

impl Checkpointer {
    /// The checkpointer of a run whose state lives in file `path`, saved every `every` of
    /// simulated time.
    pub fn new(path: PathBuf, every: Duration) -> Self {
        Self { path, every }
    }

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
        write_atomic(&self.path, &bytes).map_err(|e| self.corrupt(format!("cannot write: {e}")))
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> RunError {
        RunError::Checkpoint {
            path: self.path.clone(),
            reason: e.to_string(),
        }
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
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
