//! Entries cached on disk across processes (`<repo>/.cache/dash/`, git-ignored): what every DASH
//! run recomputes from the same weights and text — the unmodified model's final states over a
//! fixed set of windows and its quality there, each trained scorer, each evaluation of a policy
//! on a set of windows, and each oracle study. An entry is named by the
//! SHA-256 of its key (a format tag, the digest of the code that computes it, the weights' digest,
//! the settings, the token ids) and holds that key digest and a SHA-256 of its
//! payload: a missing, truncated, corrupted or foreign entry is detected, recomputed and rewritten
//! (atomically, through a temporary file); a failed write only costs the next process a
//! recomputation.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// First bytes of every entry (format version 1).
const MAGIC: &[u8; 8] = b"sysimDC1";

/// The SHA-256 of `parts`, each prefixed by its length (so the split between parts counts).
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// A folder of cached byte payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskCache {
    dir: PathBuf,
}

/// Whether a lookup found its entry or recomputed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A valid entry was read.
    Hit,
    /// No valid entry: the value was computed (and stored when the write succeeded).
    Computed,
}

impl DiskCache {
    /// `<repo>/.cache/dash/`.
    pub fn repo() -> Self {
        Self::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/dash"))
    }

    /// A cache in `dir` (created on the first write).
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The entry's file for a key digest.
    fn path(&self, key: &[u8; 32]) -> PathBuf {
        let name: String = key[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.bin"))
    }

    /// The payload stored under `key` when its entry is whole and is `key`'s.
    fn read(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let head = MAGIC.len() + 32 + 8;
        if bytes.len() < head + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return None;
        }
        if bytes[MAGIC.len()..MAGIC.len() + 32] != key[..] {
            return None;
        }
        let len = u64::from_le_bytes(bytes[head - 8..head].try_into().ok()?) as usize;
        if bytes.len() != head + len + 32 {
            return None;
        }
        let payload = &bytes[head..head + len];
        let sum: [u8; 32] = Sha256::digest(payload).into();
        (sum[..] == bytes[head + len..]).then(|| payload.to_vec())
    }

    /// Stores `payload` under `key` (a warning on stderr when it cannot).
    fn write(&self, key: &[u8; 32], payload: &[u8]) {
        let path = self.path(key);
        let mut bytes = Vec::with_capacity(payload.len() + 80);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&Sha256::digest(payload));
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("dash: cache entry {} not written: {e}", path.display());
        }
    }

    /// The payload stored under `key` when a valid entry exists and `decode` accepts it, else
    /// `compute()`'s value (stored with `encode`).
    pub fn get_or_compute<T>(
        &self,
        key: &[u8; 32],
        decode: impl Fn(&[u8]) -> Option<T>,
        encode: impl Fn(&T) -> Vec<u8>,
        compute: impl FnOnce() -> Result<T, String>,
    ) -> Result<(T, Lookup), String> {
        if let Some(v) = self.read(key).as_deref().and_then(decode) {
            return Ok((v, Lookup::Hit));
        }
        let v = compute()?;
        self.write(key, &encode(&v));
        Ok((v, Lookup::Computed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(b: &[u8]) -> Option<Vec<u8>> {
        Some(b.to_vec())
    }

    #[test]
    fn corrupt_truncated_and_foreign_entries_are_detected_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::at(dir.path().join("c"));
        let key = digest(&[b"tag", b"weights", b"ids"]);
        assert_ne!(key, digest(&[b"tagweights", b"ids"]), "the split counts");
        let value = vec![7u8; 1000];
        let encode = |v: &Vec<u8>| v.clone();
        let get = |calls: &mut usize| {
            cache
                .get_or_compute(&key, decode, encode, || {
                    *calls += 1;
                    Ok(value.clone())
                })
                .unwrap()
        };
        let mut calls = 0;
        assert_eq!(get(&mut calls), (value.clone(), Lookup::Computed));
        assert_eq!(get(&mut calls), (value.clone(), Lookup::Hit));
        assert_eq!(calls, 1);
        let path = cache.path(&key);
        let whole = std::fs::read(&path).unwrap();
        // one flipped payload bit
        let mut bad = whole.clone();
        bad[100] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(get(&mut calls), (value.clone(), Lookup::Computed));
        assert_eq!(std::fs::read(&path).unwrap(), whole, "rewritten");
        // truncated
        std::fs::write(&path, &whole[..whole.len() - 5]).unwrap();
        assert_eq!(get(&mut calls).1, Lookup::Computed);
        // another key's entry under this name (stale: e.g. other weights)
        let other = digest(&[b"tag", b"other weights", b"ids"]);
        cache.write(&other, &value);
        std::fs::copy(cache.path(&other), &path).unwrap();
        assert_eq!(get(&mut calls).1, Lookup::Computed);
        assert_eq!(get(&mut calls).1, Lookup::Hit);
        assert_eq!(calls, 4);
        // a payload the caller cannot decode is recomputed too
        let (v, how) = cache
            .get_or_compute(&key, |_| None::<Vec<u8>>, encode, || Ok(vec![1]))
            .unwrap();
        assert_eq!((v, how), (vec![1], Lookup::Computed));
    }
}
