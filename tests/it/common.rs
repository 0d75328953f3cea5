//! Helpers shared by the end-to-end tests: run the `sysim` binary and read its tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Root of the repository (where `scenarios/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `sysim` with `args` from the repository root.
pub fn sysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sysim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the sysim binary runs")
}

/// Standard error of a finished command, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that a command succeeded, printing its stderr otherwise.
pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "sysim failed: {}", stderr(out));
}

/// Reads `runs.parquet` of a results folder.
pub fn runs(dir: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let file = std::fs::File::open(dir.join("runs.parquet")).expect("runs.parquet exists");
    ParquetReader::new(file)
        .finish()
        .expect("runs.parquet reads")
}
