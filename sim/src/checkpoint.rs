//! Checkpoints of one long run: its nexosim state (every model, RNGs included, and the scheduler
//! queue, through `Simulation::save` / `SimInit::restore`) plus the family's own collected results,
//! written atomically every `every` of simulated time so a killed run continues where it stopped.
//!
//! File format 2: [`MAGIC`], the writing build's identity (u32 LE length + UTF-8), the engine state
//! (u64 LE length + nexosim's bytes), then the family state in bincode (standard configuration). A
//! file of another format or another build is refused with a message naming both, never restored.
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

/// First bytes of a run checkpoint file (format version 2).
const MAGIC: &[u8; 8] = b"SYSIMCK2";

/// First bytes of the JSON checkpoints of format version 1.
const MAGIC_V1: &[u8; 8] = b"SYSIMCK1";

/// Saves and restores one run. A family that supports checkpoints starts its bench with
/// [`Checkpointer::start`] and advances it with [`Checkpointer::drive`] instead of `init` + `run`.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    path: PathBuf,
    every: Duration,
    build: String,
}

impl Checkpointer {
    /// The checkpointer of a run whose state lives in file `path`, saved every `every` of
    /// simulated time by the build identified by `build` (only that build may restore it).
    pub fn new(path: PathBuf, every: Duration, build: impl Into<String>) -> Self {
        Self {
            path,
            every,
            build: build.into(),
        }
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
        if bytes.starts_with(MAGIC_V1) {
            return Err(self.corrupt(
                "a checkpoint of format 1 (JSON, an older sysim); this build reads format 2: run again without resuming",
            ));
        }
        let (build, engine, state) =
            split(&bytes).ok_or_else(|| self.corrupt("not a sysim checkpoint, or truncated"))?;
        if build != self.build.as_bytes() {
            return Err(self.corrupt(format!(
                "written by build `{}`, this is build `{}`; engine state is only restored by the build that saved it: resume with that build, or run again without resuming",
                String::from_utf8_lossy(build),
                self.build
            )));
        }
        let (state, _): (S, usize) =
            bincode::serde::decode_from_slice(state, bincode::config::standard())
                .map_err(|e| self.corrupt(e))?;
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
        let family = bincode::serde::encode_to_vec(state, bincode::config::standard())
            .map_err(|e| self.corrupt(e))?;
        let build = self.build.as_bytes();
        let mut bytes = Vec::with_capacity(20 + build.len() + engine.len() + family.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(build.len() as u32).to_le_bytes());
        bytes.extend_from_slice(build);
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

/// Splits a checkpoint file into (build identity, engine state, family state).
fn split(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    let (build, rest) = (rest.len() >= len).then(|| rest.split_at(len))?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (engine, state) = (rest.len() >= len).then(|| rest.split_at(len))?;
    Some((build, engine, state))
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
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(b"v1");
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        assert!(split(&bytes).is_none());
        bytes.extend_from_slice(b"de{}");
        assert_eq!(split(&bytes), Some((&b"v1"[..], &b"abcde"[..], &b"{}"[..])));
        assert!(split(b"garbage").is_none());
        assert!(split(&bytes[..10]).is_none());
    }

    #[test]
    fn another_build_or_format_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run-0.ckpt");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(b"old1");
        bytes.extend_from_slice(&0u64.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let ckpt = Checkpointer::new(path.clone(), Duration::from_secs(1), "new2");
        let Err(err) = ckpt.start::<u32>(crate::engine::bench()) else {
            panic!("restored");
        };
        assert!(
            err.to_string()
                .contains("written by build `old1`, this is build `new2`"),
            "{err}"
        );
        fs::write(&path, b"SYSIMCK1\0\0\0\0\0\0\0\0{}").unwrap();
        let Err(err) = ckpt.start::<u32>(crate::engine::bench()) else {
            panic!("restored");
        };
        assert!(err.to_string().contains("format 1"), "{err}");
    }
}
