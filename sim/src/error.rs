//! Bad-input errors: one paragraph naming the file, line:column and key, with the valid choices.

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
