//! The one error type of the crate: every failure names the path or column it is about.

use std::io;
use std::path::{Path, PathBuf};

use polars::prelude::PolarsError;

/// Everything that can go wrong while loading, merging, summarising or plotting results.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A results folder (or the parent folder of a glob pattern) does not exist.
    #[error("{}: no such folder", path.display())]
    Missing {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// A folder exists but its manifest lists no runs table.
    #[error("{}: not a results folder (no runs table listed in its manifest)", path.display())]
    NotResults {
        /// The folder without a runs table.
        path: PathBuf,
    },
    /// A glob pattern matched no folder.
    #[error("{}: no folder matches this pattern", pattern.display())]
    NoMatch {
        /// The pattern as given.
        pattern: PathBuf,
    },
    /// None of the results folders holds a series table.
    #[error("no series.parquet or series.csv in {}", list(folders))]
    NoSeries {
        /// The folders that were searched.
        folders: Vec<PathBuf>,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// A table file could not be parsed, or lacks a required column.
    #[error("{}: {source}", path.display())]
    Table {
        /// The table file.
        path: PathBuf,
        /// What polars reported.
        source: PolarsError,
    },
    /// The same `run` index occurs in more than one shard (or twice in one).
    #[error(
        "duplicate run indices across shards: {} (the first is in both {} and {})",
        runs.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        first.display(), second.display()
    )]
    DuplicateRuns {
        /// Every duplicated index, ascending.
        runs: Vec<u64>,
        /// A shard holding the first duplicated index.
        first: PathBuf,
        /// Another shard holding the same index.
        second: PathBuf,
    },
    /// A merge would write into one of its own input shards.
    #[error("{}: the merge output folder is one of the input shards", path.display())]
    OutputIsInput {
        /// The output folder.
        path: PathBuf,
    },
    /// A results folder does not match its manifest (or has none).
    #[error(transparent)]
    Integrity(#[from] sim_run::manifest::IntegrityError),
    /// The merge output folder is being written by another process.
    #[error(transparent)]
    Lock(#[from] sim_run::lock::LockError),
    /// Two shards are not parts of the same run of the same scenario.
    #[error("{} and {} are not shards of one run: {what}", first.display(), second.display())]
    ShardMismatch {
        /// The first shard.
        first: PathBuf,
        /// The shard that differs from it.
        second: PathBuf,
        /// What differs (family, scenario fingerprint, seed, shard count).
        what: String,
    },
    /// The shards do not hold every run of the plan.
    #[error(
        "incomplete set of shards: {missing} of {total} runs are in none of them (first missing: run {first}); add the missing shard folders"
    )]
    IncompleteShards {
        /// Runs of the plan found in no shard.
        missing: usize,
        /// Runs of the plan.
        total: usize,
        /// The smallest missing run index.
        first: u64,
    },
    /// A column named by the caller does not exist.
    #[error("no column `{column}` (columns: {})", available.join(", "))]
    UnknownColumn {
        /// The requested name.
        column: String,
        /// The frame's column names.
        available: Vec<String>,
    },
    /// A column that must hold numbers holds something else.
    #[error("column `{column}` holds {dtype}, not numbers")]
    NotNumeric {
        /// The column name.
        column: String,
        /// Its data type.
        dtype: String,
    },
    /// There is nothing to work on: no folders given, or no rows left to draw.
    #[error("{0}")]
    Empty(String),
    /// The figure asks for something its kind cannot draw (e.g. a log axis under bars).
    #[error("{0}")]
    Unsupported(String),
    /// plotters failed to draw or encode a figure.
    #[error("{}: cannot draw figure: {message}", path.display())]
    Draw {
        /// The figure file being written.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
    /// A polars computation failed.
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

impl AnalysisError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        AnalysisError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps a polars error with the table file it concerns.
    pub(crate) fn table(path: &Path, source: PolarsError) -> Self {
        AnalysisError::Table {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Result alias of this crate.
pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;
