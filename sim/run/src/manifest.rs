//! A results folder is one unit: `manifest.json`, written last, lists every table file with its
//! size and SHA-256, and every reader ([`verify`]) refuses a folder whose files do not match it —
//! a table missing, changed, from another run, or not listed (a stale table of another format).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::scenario::ScenarioFile;

/// File name of the manifest inside a results folder.
pub const MANIFEST: &str = "manifest.json";

/// Stems of the table files a results folder may hold (`runs.parquet`, `series.csv`, …).
pub const TABLE_STEMS: [&str; 2] = ["runs", "series"];

/// Largest manifest read back, bytes (a manifest is a few kilobytes; anything bigger is not one).
const MANIFEST_MAX_BYTES: u64 = 16 << 20;

/// One table file of a results folder as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File name inside the folder (`runs.parquet`).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

/// Provenance of a results folder, written as `manifest.json` after every table it lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// sysim version that produced the tables.
    pub sysim_version: String,
    /// Git commit of the sysim build, when known.
    pub git_commit: Option<String>,
    /// Scenario file path as given.
    pub scenario_file: String,
    /// The scenario as resolved (with `--set` overrides and `--seed` applied).
    pub scenario: ScenarioFile,
    /// The `--set KEY=VALUE` overrides applied to the file, as written.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Fingerprint of the resolved plan (see [`crate::resume::plan_key`]).
    pub plan_key: String,
    /// Runs in the whole plan.
    pub runs_total: usize,
    /// Runs in this folder (fewer than `runs_total` for a shard).
    pub runs_written: usize,
    /// Runs that failed (their rows carry the error).
    pub runs_failed: usize,
    /// The shard this folder holds, `K/N`, if any.
    pub shard: Option<String>,
    /// Wall time of the runs, seconds.
    pub wall_time_s: f64,
    /// Every table file of the folder with its size and content hash.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The listed file of table `stem` (`runs`, `series`), if any.
    pub fn table(&self, stem: &str) -> Option<&FileEntry> {
        self.files
            .iter()
            .find(|f| table_stem(&f.name) == Some(stem))
    }
}

/// Why a results folder cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// The folder has no manifest (never finished, or a write was interrupted).
    #[error("{}: not a finished results folder (no manifest.json): its tables may be incomplete or from different runs; run the scenario again", dir.display())]
    NoManifest {
        /// The folder.
        dir: PathBuf,
    },
    /// The manifest does not parse as this sysim's manifest.
    #[error("{}: not a manifest of this sysim ({reason}); run the scenario again", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A file does not match the manifest (missing, other size, other contents, not listed).
    #[error("{}: {file} {what}; the folder mixes tables of different runs — run the scenario again", dir.display())]
    Mismatch {
        /// The folder.
        dir: PathBuf,
        /// The file at fault.
        file: String,
        /// How it differs.
        what: String,
    },
    /// Reading the folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The stem of a table file name (`runs` for `runs.csv`), if it is one.
fn table_stem(name: &str) -> Option<&'static str> {
    let (stem, ext) = name.rsplit_once('.')?;
    let stem = TABLE_STEMS.into_iter().find(|s| *s == stem)?;
    matches!(ext, "parquet" | "csv").then_some(stem)
}

/// Reads `dir/manifest.json` and checks every table file of `dir` against it: each listed file
/// exists with its size and SHA-256, and no other table file is present.
pub fn verify(dir: &Path) -> Result<Manifest, IntegrityError> {
    let path = dir.join(MANIFEST);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IntegrityError::Io { path, source }
    };
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(IntegrityError::NoManifest {
                dir: dir.to_owned(),
            });
        }
        Err(e) => return Err(io(&path)(e)),
    };
    if !meta.is_file() || meta.len() > MANIFEST_MAX_BYTES {
        return Err(IntegrityError::BadManifest {
            path,
            reason: "not a regular file of at most 16 MiB".into(),
        });
    }
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| IntegrityError::BadManifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let mismatch = |file: &str, what: String| IntegrityError::Mismatch {
        dir: dir.to_owned(),
        file: file.to_owned(),
        what,
    };
    for entry in &manifest.files {
        if table_stem(&entry.name).is_none() {
            return Err(mismatch(
                &entry.name,
                "is listed but is no table file".into(),
            ));
        }
        let file = dir.join(&entry.name);
        let found = match digest_file(&file) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(mismatch(
                    &entry.name,
                    "is listed in the manifest but missing".into(),
                ));
            }
            Err(e) => return Err(io(&file)(e)),
        };
        if found.bytes != entry.bytes {
            return Err(mismatch(
                &entry.name,
                format!(
                    "has {} bytes, the manifest says {}",
                    found.bytes, entry.bytes
                ),
            ));
        }
        if found.sha256 != entry.sha256 {
            return Err(mismatch(
                &entry.name,
                "has other contents than the manifest records (SHA-256 differs)".into(),
            ));
        }
    }
    for name in table_files(dir).map_err(io(dir))? {
        if !manifest.files.iter().any(|f| f.name == name) {
            return Err(mismatch(
                &name,
                "is not listed in the manifest (a table of another run or format)".into(),
            ));
        }
    }
    Ok(manifest)
}

/// Names of the table files present in `dir` (any stem of [`TABLE_STEMS`], Parquet or CSV).
pub fn table_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if table_stem(&name).is_some() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Size and SHA-256 of the file at `path`.
pub fn digest_file(path: &Path) -> io::Result<FileEntry> {
    let mut file = fs::File::open(path)?;
    let mut writer = Digesting::new(io::sink());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        writer.write_all(&buf[..n])?;
    }
    Ok(writer.finish(path).1)
}

/// A writer that passes bytes through to `inner` while counting and hashing them.
pub struct Digesting<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Digesting<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer and the entry of the bytes written, named after `path`'s file name.
    pub fn finish(self, path: &Path) -> (W, FileEntry) {
        let hash = self.hasher.finalize();
        let sha256 = hash.iter().map(|b| format!("{b:02x}")).collect();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (
            self.inner,
            FileEntry {
                name,
                bytes: self.bytes,
                sha256,
            },
        )
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_a_known_sha256() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        fs::write(&path, b"abc").unwrap();
        let entry = digest_file(&path).unwrap();
        assert_eq!(entry.bytes, 3);
        assert_eq!(
            entry.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(entry.name, "runs.csv");
    }

    #[test]
    fn only_runs_and_series_files_are_tables() {
        assert_eq!(table_stem("runs.parquet"), Some("runs"));
        assert_eq!(table_stem("series.csv"), Some("series"));
        assert_eq!(table_stem("runs.json"), None);
        assert_eq!(table_stem("manifest.json"), None);
        assert_eq!(table_stem("energy_vs_rate.png"), None);
    }

    #[test]
    fn a_folder_without_manifest_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("runs.csv"), b"run\n0\n").unwrap();
        let err = verify(tmp.path()).unwrap_err();
        assert!(matches!(err, IntegrityError::NoManifest { .. }), "{err}");
    }
}
