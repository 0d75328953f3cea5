//! The run machinery's errors: bad input ([`InputError`], one paragraph naming the file,
//! line:column and key, with the valid choices), a failed run ([`RunFailure`]), and the typed
//! errors of the runner, of resuming a results folder and of shard specifications.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with the user's input (scenario, preset file, flags). The CLI exits with code 2.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file at fault (scenario, preset, or output folder).
    pub file: PathBuf,
    /// 1-based line and column in `file`, when known.
    pub position: Option<(usize, usize)>,
    /// Dotted key at fault (e.g. `params.arrival_rate`), when there is one.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error about `file` as a whole.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position: None,
            key: None,
            message: message.into(),
        }
    }

    /// An error about key `key` of `file`, at `position` when the key could be located.
    pub fn key(
        file: &Path,
        position: Option<(usize, usize)>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            position,
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Why one run produced no row of metrics (recorded in the runs table's `error` column).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunFailure {
    /// The family returned an error.
    #[error("{0}")]
    Family(String),
    /// The family panicked (a bug: input is checked before running).
    #[error("run panicked: {0}")]
    Panic(String),
    /// A metric is named like a key or parameter column, which would make the table ambiguous.
    #[error("metric `{0}` has the name of a key or parameter column; the family must rename it")]
    ClashingMetric(String),
    /// A metric is recorded twice.
    #[error("metric `{0}` is recorded twice")]
    DuplicateMetric(String),
}

/// Why the runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The worker thread pool could not be built.
    #[error("cannot start {jobs} worker threads: {source}")]
    ThreadPool {
        /// Threads asked for (0: one per core).
        jobs: usize,
        /// Rayon's error.
        source: rayon::ThreadPoolBuildError,
    },
    /// A finished run could not be journaled (disk full?); the sweep stopped starting runs.
    #[error("{}: cannot journal a finished run, stopped: {source}", path.display())]
    Journal {
        /// The journal file.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Why the finished runs of a results folder cannot be kept by `--resume`.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The folder holds results of another scenario (or other parameters).
    #[error("{} holds results of a different scenario or parameters (fingerprint {theirs}, this plan is {ours}); resume into another --out", dir.display())]
    OtherPlan {
        /// The results folder.
        dir: PathBuf,
        /// Plan fingerprint recorded in the folder's manifest.
        theirs: String,
        /// Fingerprint of this plan.
        ours: String,
    },
    /// The folder does not match its manifest (or has none).
    #[error(transparent)]
    Integrity(#[from] crate::manifest::IntegrityError),
    /// A row's run index, seed or replication is not this plan's.
    #[error("{}: row {row} of the runs table is not a run of this plan (run index, seed or replication differ); resume into another --out", dir.display())]
    ForeignRow {
        /// The results folder.
        dir: PathBuf,
        /// 0-based row of the runs table.
        row: usize,
    },
    /// A table of the folder cannot be read.
    #[error("{}: cannot read previous results: {source}", dir.display())]
    Table {
        /// The results folder.
        dir: PathBuf,
        /// What polars said.
        source: polars::error::PolarsError,
    },
}

/// A `--shard` value that is not `K/N` with 0 ≤ K < N.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected K/N with 0 ≤ K < N (e.g. 0/4), got `{0}`")]
pub struct ShardError(pub String);
