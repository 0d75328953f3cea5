//! Checkpoints of one long run: its nexosim state (every model, RNGs included, and the scheduler
//! queue, through `Simulation::save` / `SimInit::restore`) plus the family's own collected results,
//! written atomically every `every` of simulated time so a killed run continues where it stopped.
//!
//! File format 2: [`MAGIC`], the writing build's identity (u32 LE length + UTF-8), the engine state
//! (u64 LE length + nexosim's bytes), then the family state in bincode (standard configuration). A
//! file of another format or another build is refused with a message naming both, never restored.
//! The folder that holds them (and what it belongs to) is the run machinery's business
//! (`sim_run::checkpoint`).
//!
//! Three ways a family saves a run:
//! * a nexosim bench run to its end: [`Checkpointer::start`] + [`Checkpointer::drive`];
//! * a driver loop around a nexosim bench (rounds, requests): [`Checkpointer::start`], then
//!   [`Checkpointer::save`] at the loop's own boundaries when [`Checkpointer::due`] says so, and
//!   [`Checkpointer::finish`];
//! * a driver loop without an engine: [`Checkpointer::load`], [`Checkpointer::save_state`],
//!   [`Checkpointer::finish`] (the file then carries an empty engine state).
//!
//! A run that simulates several benches one after the other gives each its own file with
//! [`Checkpointer::stage`]; a stage that finished has no file, so a resumed run recomputes it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nexosim::simulation::{SimInit, Simulation};
use nexosim::time::MonotonicTime;
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
    exit_after: Option<Arc<AtomicU64>>,
}

impl Checkpointer {
    /// The checkpointer of a run whose state lives in file `path`, saved every `every` of
    /// simulated time by the build identified by `build` (only that build may restore it).
    pub fn new(path: PathBuf, every: Duration, build: impl Into<String>) -> Self {
        Self {
            path,
            every,
            build: build.into(),
            exit_after: None,
        }
    }

    /// The same checkpointer, whose process exits at once with status 137 (as if killed by
    /// SIGKILL) right after the `left`-th checkpoint written by any run sharing the counter. A test
    /// hook: it interrupts a run at a checkpoint deterministically.
    pub fn exiting_after(mut self, left: Arc<AtomicU64>) -> Self {
        self.exit_after = Some(left);
        self
    }

    /// The checkpointer of stage `name` of this run: a bench simulated after (or before) the run's
    /// main one, saved in its own file (`run-3.ckpt` → `run-3.<name>.ckpt`).
    pub fn stage(&self, name: &str) -> Self {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            path: self.path.with_file_name(format!("{stem}.{name}.ckpt")),
            ..self.clone()
        }
    }

    /// Whether this run (this stage) has a saved state to continue from.
    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// Simulated time between two checkpoints.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Whether a driver loop whose last checkpoint (or start) was at `last` should save at `now`.
    pub fn due(&self, last: MonotonicTime, now: MonotonicTime) -> bool {
        now >= last + self.every
    }

    /// Builds the simulation from `bench`: restored from this run's checkpoint if one exists (with the
    /// family state saved beside it), else initialised at [`T0`] with no state.
    pub fn start<S: DeserializeOwned>(
        &self,
        bench: SimInit,
    ) -> Result<(Simulation, Option<S>), RunError> {
        match self.read()? {
            None => Ok((bench.init(T0)?, None)),
            Some(bytes) => {
                let (engine, state) = self.decode(&bytes)?;
                if engine.is_empty() {
                    return Err(self.corrupt("holds no engine state; it belongs to another stage"));
                }
                Ok((bench.restore(engine)?, Some(state)))
            }
        }
    }

    /// The family state saved by [`Checkpointer::save_state`] (a driver loop without an engine),
    /// or `None` when the run starts afresh.
    pub fn load<S: DeserializeOwned>(&self) -> Result<Option<S>, RunError> {
        match self.read()? {
            None => Ok(None),
            Some(bytes) => {
                let (engine, state) = self.decode(&bytes)?;
                if !engine.is_empty() {
                    return Err(self.corrupt("holds an engine state; it belongs to another stage"));
                }
                Ok(Some(state))
            }
        }
    }

    /// The file's bytes, or `None` when there is none.
    fn read(&self) -> Result<Option<Vec<u8>>, RunError> {
        match fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.corrupt(e)),
        }
    }

    /// Checks a file's format and build, and splits it into engine bytes and family state.
    fn decode<'b, S: DeserializeOwned>(&self, bytes: &'b [u8]) -> Result<(&'b [u8], S), RunError> {
        if bytes.starts_with(MAGIC_V1) {
            return Err(self.corrupt(
                "a checkpoint of format 1 (JSON, an older sysim); this build reads format 2: run again without resuming",
            ));
        }
        let (build, engine, state) =
            split(bytes).ok_or_else(|| self.corrupt("not a sysim checkpoint, or truncated"))?;
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
        Ok((engine, state))
    }

    /// Runs `sim` until no event is left. Each time the clock has passed a checkpoint interval
    /// since the last save, `collect` moves what the family's sinks produced into `state` and the
    /// engine and `state` are saved. The clock stops at the last event, as with `Simulation::run`
    /// (queries that read the time see the same end). The checkpoint file is removed at the end.
    pub fn drive<S: Serialize>(
        &self,
        sim: &mut Simulation,
        state: &mut S,
        mut collect: impl FnMut(&mut S),
    ) -> Result<(), RunError> {
        let mut next = sim.time() + self.every;
        loop {
            let before = sim.time();
            sim.step()?;
            // A step does every event of one instant; a second one that leaves the clock where it
            // was (the first may have done events due at the current instant) means none is left.
            if sim.time() == before {
                sim.step()?;
                if sim.time() == before {
                    break;
                }
            }
            if sim.time() >= next {
                collect(state);
                self.save(sim, state)?;
                next = sim.time() + self.every;
            }
        }
        collect(state);
        self.finish()
    }

    /// Ends this run's (stage's) checkpoints: its file is removed, as the run is complete.
    pub fn finish(&self) -> Result<(), RunError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.corrupt(e)),
        }
    }

    /// Saves the engine `sim` and the family's `state` (a driver loop calls it at its boundaries).
    pub fn save<S: Serialize>(&self, sim: &mut Simulation, state: &S) -> Result<(), RunError> {
        let mut engine = Vec::new();
        sim.save(&mut engine)?;
        self.write(&engine, state)
    }

    /// Saves the `state` of a driver loop that runs no engine.
    pub fn save_state<S: Serialize>(&self, state: &S) -> Result<(), RunError> {
        self.write(&[], state)
    }

    /// Writes one checkpoint file, then honours [`Checkpointer::exiting_after`].
    fn write<S: Serialize>(&self, engine: &[u8], state: &S) -> Result<(), RunError> {
        let family = bincode::serde::encode_to_vec(state, bincode::config::standard())
            .map_err(|e| self.corrupt(e))?;
        let build = self.build.as_bytes();
        let mut bytes = Vec::with_capacity(20 + build.len() + engine.len() + family.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(build.len() as u32).to_le_bytes());
        bytes.extend_from_slice(build);
        bytes.extend_from_slice(&(engine.len() as u64).to_le_bytes());
        bytes.extend_from_slice(engine);
        bytes.extend_from_slice(&family);
        write_atomic(&self.path, &bytes).map_err(|e| self.corrupt(format!("cannot write: {e}")))?;
        if let Some(left) = &self.exit_after
            && left.fetch_sub(1, Ordering::SeqCst) == 1
        {
            std::process::exit(137);
        }
        Ok(())
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

    #[test]
    fn a_driver_loop_state_round_trips_and_stages_have_their_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ckpt = Checkpointer::new(tmp.path().join("run-4.ckpt"), Duration::from_secs(1), "b");
        let serve = ckpt.stage("serve");
        assert_eq!(serve.path, tmp.path().join("run-4.serve.ckpt"));
        assert_eq!(serve.load::<Vec<u64>>().unwrap(), None);
        serve.save_state(&vec![3u64, 5, 8]).unwrap();
        assert!(serve.exists() && !ckpt.exists());
        assert_eq!(serve.load::<Vec<u64>>().unwrap(), Some(vec![3, 5, 8]));
        // a state without engine is not restored into a bench, and the reverse
        let Err(err) = serve.start::<Vec<u64>>(crate::engine::bench()) else {
            panic!("restored");
        };
        assert!(err.to_string().contains("no engine state"), "{err}");
        serve.finish().unwrap();
        assert!(!serve.exists());
        serve.finish().unwrap();
        let t0 = crate::engine::T0;
        assert!(!ckpt.due(t0, t0 + Duration::from_millis(999)));
        assert!(ckpt.due(t0, t0 + Duration::from_secs(1)));
    }
}
