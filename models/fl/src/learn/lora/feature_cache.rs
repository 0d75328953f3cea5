//! Frozen-encoder features cached on disk (`<repo>/.cache/fl-lora/`, git-ignored), keyed by the
//! SHA-256 of everything they depend on (a format tag, the window, the turns file, the weights), so
//! the MiniLM forward over the corpus (≈ 1 TFLOP at a 16-token window) runs once per machine
//! rather than once per process. A missing, short or unreadable entry is recomputed; a failed
//! write only costs the next process a recomputation.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A folder of cached `f32` vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    /// `<repo>/.cache/fl-lora/`.
    pub fn repo() -> Self {
        Self::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/fl-lora"))
    }

    /// A cache in `dir` (created on the first write).
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The entry for `key` (its parts hashed in order, each prefixed by its length) if it holds
    /// exactly `len` values, else `compute()`'s result, which is then stored.
    pub fn get_or_compute(
        &self,
        key: &[&[u8]],
        len: usize,
        compute: impl FnOnce() -> Result<Vec<f32>, String>,
    ) -> Result<Vec<f32>, String> {
        let mut h = Sha256::new();
        for part in key {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let name: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = self.dir.join(format!("{name}.f32"));
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() == 4 * len
        {
            return Ok(bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect());
        }
        let values = compute()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let tmp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            eprintln!("fl-lora: feature cache {} not written: {e}", path.display());
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_reused_by_key_and_recomputed_when_short() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::at(dir.path().join("c"));
        let v = vec![1.5f32, -2.0, 3.25];
        let mut calls = 0;
        let mut get = |key: &[&[u8]], len| {
            cache.get_or_compute(key, len, || {
                calls += 1;
                Ok(v.clone())
            })
        };
        assert_eq!(get(&[b"a".as_slice(), b"b".as_slice()], 3).unwrap(), v);
        assert_eq!(get(&[b"a".as_slice(), b"b".as_slice()], 3).unwrap(), v);
        // Same bytes, other split: another key.
        assert_eq!(get(&[b"ab".as_slice()], 3).unwrap(), v);
        // A stored entry of the wrong length is recomputed.
        assert_eq!(get(&[b"a".as_slice(), b"b".as_slice()], 4).unwrap(), v);
        assert_eq!(calls, 3);
    }
}
