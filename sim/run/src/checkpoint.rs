//! Checkpoint folders: `checkpoint.json` (the plan fingerprint, the interval and the build, so a
//! folder is never resumed by another scenario or another build) and one `run-<index>.ckpt` per unfinished run, written by
//! [`sim::checkpoint::Checkpointer`] and removed when the run completes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sim::checkpoint::Checkpointer;

use crate::table::write_bytes_atomic;

/// Where and how often runs save their state.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// Folder holding `checkpoint.json` and the per-run files.
    pub dir: PathBuf,
    /// Simulated time between two checkpoints of a run.
    pub every: Duration,
    /// Identity of the build that writes (and alone may restore) the checkpoints.
    pub build: String,
    /// Test hook: checkpoints left (over all runs) before the process exits as if killed.
    pub exit_after: Option<Arc<AtomicU64>>,
}

/// `checkpoint.json`: what a checkpoint folder belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FolderInfo {
    /// Fingerprint of the resolved plan (`resume::plan_key`).
    plan_key: String,
    /// Checkpoint interval in simulated seconds.
    every_s: f64,
    /// The build that wrote the folder's checkpoints.
    build: String,
}

/// Why a checkpoint folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The folder holds checkpoints of another plan.
    #[error("{}: holds checkpoints of another scenario (plan {theirs}, this one is {ours}); use another folder", dir.display())]
    OtherPlan {
        /// The checkpoint folder.
        dir: PathBuf,
        /// Fingerprint recorded in the folder.
        theirs: String,
        /// Fingerprint of this plan.
        ours: String,
    },
    /// The folder's checkpoints were written by another build, whose engine state this one cannot
    /// restore.
    #[error("{}: checkpoints written by build `{theirs}`, this is build `{ours}`; resume with that build, or start over with another --checkpoint folder", dir.display())]
    OtherBuild {
        /// The checkpoint folder.
        dir: PathBuf,
        /// Build recorded in the folder.
        theirs: String,
        /// This build.
        ours: String,
    },
    /// `--resume DIR` names a folder without `checkpoint.json`.
    #[error("{}: not a checkpoint folder (no checkpoint.json); start the run with --checkpoint {}", dir.display(), dir.display())]
    NotAFolder {
        /// The folder named.
        dir: PathBuf,
    },
    /// `checkpoint.json` is not a sysim checkpoint record.
    #[error("{}: not a sysim checkpoint record: {reason}", path.display())]
    Corrupt {
        /// The record file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Reading or writing the folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl CheckpointPolicy {
    /// Prepares `dir` for the plan with fingerprint `plan_key`, written by `build`: creates it and
    /// records the interval. An existing folder of another plan or build is refused, so stale state
    /// is never restored.
    pub fn create(
        dir: &Path,
        every: Duration,
        plan_key: &str,
        build: &str,
    ) -> Result<Self, CheckpointError> {
        if let Some(info) = read_info(dir)? {
            info.check(dir, plan_key, build)?;
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CheckpointError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let info = FolderInfo {
            plan_key: plan_key.to_owned(),
            every_s: every.as_secs_f64(),
            build: build.to_owned(),
        };
        let json =
            serde_json::to_vec_pretty(&info).expect("a record of two plain fields serializes");
        let path = dir.join("checkpoint.json");
        write_bytes_atomic(&path, &json).map_err(io(&path))?;
        Ok(CheckpointPolicy {
            dir: dir.to_owned(),
            every,
            build: build.to_owned(),
            exit_after: None,
        })
    }

    /// Reopens a checkpoint folder written for the plan `plan_key` by `build`, with the interval it
    /// recorded.
    pub fn reopen(dir: &Path, plan_key: &str, build: &str) -> Result<Self, CheckpointError> {
        let info = read_info(dir)?.ok_or_else(|| CheckpointError::NotAFolder {
            dir: dir.to_owned(),
        })?;
        info.check(dir, plan_key, build)?;
        Ok(CheckpointPolicy {
            dir: dir.to_owned(),
            every: Duration::from_secs_f64(info.every_s),
            build: build.to_owned(),
            exit_after: None,
        })
    }

    /// The checkpointer of run `run` (its stages write `run-<run>.<stage>.ckpt` beside it).
    pub fn for_run(&self, run: u64) -> Checkpointer {
        let ckpt = Checkpointer::new(
            self.dir.join(format!("run-{run}.ckpt")),
            self.every,
            self.build.clone(),
        );
        match &self.exit_after {
            Some(left) => ckpt.exiting_after(Arc::clone(left)),
            None => ckpt,
        }
    }

    /// Test hook: the process exits with status 137, as if killed, right after the `n`-th
    /// checkpoint written by any run (`n` ≥ 1).
    pub fn exit_after(mut self, n: u64) -> Self {
        self.exit_after = Some(Arc::new(AtomicU64::new(n)));
        self
    }

    /// Whether run `run` saved a state (of any stage) to continue from.
    pub fn has_saved(&self, run: u64) -> bool {
        let (whole, stage) = (format!("run-{run}.ckpt"), format!("run-{run}."));
        fs::read_dir(&self.dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name == whole || (name.starts_with(&stage) && name.ends_with(".ckpt"))
            })
        })
    }
}

impl FolderInfo {
    /// Refuses a folder of another plan or another build.
    fn check(&self, dir: &Path, plan_key: &str, build: &str) -> Result<(), CheckpointError> {
        if self.plan_key != plan_key {
            return Err(CheckpointError::OtherPlan {
                dir: dir.to_owned(),
                theirs: self.plan_key.clone(),
                ours: plan_key.to_owned(),
            });
        }
        if self.build != build {
            return Err(CheckpointError::OtherBuild {
                dir: dir.to_owned(),
                theirs: self.build.clone(),
                ours: build.to_owned(),
            });
        }
        Ok(())
    }
}

fn read_info(dir: &Path) -> Result<Option<FolderInfo>, CheckpointError> {
    let path = dir.join("checkpoint.json");
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CheckpointError::Corrupt {
                    path,
                    reason: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_another_plan_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let every = Duration::from_secs(10);
        CheckpointPolicy::create(tmp.path(), every, "aaa", "b1").unwrap();
        let again = CheckpointPolicy::reopen(tmp.path(), "aaa", "b1").unwrap();
        assert_eq!(again.every, every);
        let err = CheckpointPolicy::reopen(tmp.path(), "bbb", "b1").unwrap_err();
        assert!(err.to_string().contains("another scenario"), "{err}");
        let err = CheckpointPolicy::create(tmp.path(), every, "bbb", "b1").unwrap_err();
        assert!(err.to_string().contains("another scenario"), "{err}");
        let err = CheckpointPolicy::reopen(tmp.path(), "aaa", "b2").unwrap_err();
        assert!(
            err.to_string()
                .contains("written by build `b1`, this is build `b2`"),
            "{err}"
        );
    }
}
