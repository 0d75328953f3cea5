//! An exclusive lock on a results folder (`.sysim.lock`, an OS file lock), held by a run or a merge
//! from before it reads the folder until its manifest is written, so that two processes never
//! write into one folder. The OS releases the lock when the process ends, even when it is killed.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a results folder.
pub const LOCK_FILE: &str = ".sysim.lock";

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the folder.
    #[error("{}: another sysim process is writing this folder; wait for it or choose another --out", dir.display())]
    Busy {
        /// The folder.
        dir: PathBuf,
    },
    /// The lock file could not be created or locked.
    #[error("{}: cannot lock the folder: {source}", dir.display())]
    Io {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A held lock on a folder; released on drop.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

/// Locks folder `dir` (which must exist) for this process, failing at once when another holds it.
pub fn lock(dir: &Path) -> Result<FolderLock, LockError> {
    let io = |source| LockError::Io {
        dir: dir.to_owned(),
        source,
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(FolderLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy {
            dir: dir.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_held_folder_fails_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock(tmp.path()).unwrap();
        let err = lock(tmp.path()).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        drop(first);
        lock(tmp.path()).unwrap();
    }
}
