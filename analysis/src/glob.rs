//! Expansion of `*` / `?` wildcards in the last component of a path into the matching folders.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{AnalysisError, Result};

/// The paths `path` names: itself when it has no wildcard (it must exist), or every folder in its
/// parent whose name matches the last component, sorted by name (there must be at least one).
pub(crate) fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    let Some(pattern) = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .filter(|n| n.contains(['*', '?']))
    else {
        if !path.exists() {
            return Err(AnalysisError::Missing {
                path: path.to_path_buf(),
            });
        }
        return Ok(vec![path.to_path_buf()]);
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(AnalysisError::Missing {
            path: parent.to_path_buf(),
        });
    }
    let entries = fs::read_dir(parent).map_err(|e| AnalysisError::io(parent, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AnalysisError::io(parent, e))?;
        let name = entry.file_name();
        if matches(&pattern, &name.to_string_lossy()) && entry.path().is_dir() {
            found.push(path.with_file_name(name));
        }
    }
    if found.is_empty() {
        return Err(AnalysisError::NoMatch {
            pattern: path.to_path_buf(),
        });
    }
    found.sort();
    Ok(found)
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?` for one.
fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Greedy match with backtracking to the last star: linear in practice.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        assert!(matches("shard-*", "shard-0"));
        assert!(matches("shard-*", "shard-"));
        assert!(matches("*-of-4", "shard-1-of-4"));
        assert!(matches("s?ard*4", "shard-1-of-4"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("shard-*", "other"));
        assert!(!matches("s?", "s"));
        assert!(!matches("*a*b", "xxaxxbxxc"));
    }

    #[test]
    fn expands_sorted_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["shard-2", "shard-0", "shard-1", "other"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        fs::write(dir.path().join("shard-file"), b"x").unwrap();
        let got = expand(&dir.path().join("shard-*")).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["shard-0", "shard-1", "shard-2"]);

        let err = expand(&dir.path().join("nothing-*")).unwrap_err();
        assert!(matches!(err, AnalysisError::NoMatch { .. }), "{err}");
        let err = expand(&dir.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
