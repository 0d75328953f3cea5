//! Parameter pieces and round bookkeeping shared by the three learning studies.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, RunError};

/// Local SGD settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sgd {
    /// Passes over the local data per round.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
}

impl Sgd {
    /// Range errors, keys prefixed by `path`.
    pub fn validate(&self, path: &str, out: &mut Vec<ParamError>) {
        at_least(&format!("{path}.epochs"), self.epochs, 1, out);
        at_least(&format!("{path}.batch"), self.batch, 1, out);
        positive(&format!("{path}.lr"), self.lr, out);
    }

    /// `(epochs, batch, lr)`.
    pub fn tuple(&self) -> (usize, usize, f64) {
        (self.epochs, self.batch, self.lr)
    }
}

/// Pushes an error unless `v ≥ min`.
pub fn at_least(path: &str, v: usize, min: usize, out: &mut Vec<ParamError>) {
    if v < min {
        out.push(ParamError::new(path, format!("must be ≥ {min}, got {v}")));
    }
}

/// Pushes an error unless `v` is finite and > 0.
pub fn positive(path: &str, v: f64, out: &mut Vec<ParamError>) {
    if !(v.is_finite() && v > 0.0) {
        out.push(ParamError::new(
            path,
            format!("must be a finite number > 0, got {v}"),
        ));
    }
}

/// Pushes an error unless `lo ≤ v ≤ hi`.
pub fn within(path: &str, v: f64, lo: f64, hi: f64, out: &mut Vec<ParamError>) {
    if !(v.is_finite() && v >= lo && v <= hi) {
        out.push(ParamError::new(
            path,
            format!("must be within [{lo}, {hi}], got {v}"),
        ));
    }
}

/// First round (1-based) whose value reaches `target`; `curve.len() + 1` when none does (censored).
pub fn rounds_to(curve: &[f64], target: f64) -> f64 {
    curve
        .iter()
        .position(|a| *a >= target)
        .map_or(curve.len() + 1, |i| i + 1) as f64
}

/// A candle error as a run failure.
pub fn model_err(e: impl std::fmt::Display) -> RunError {
    RunError::Model(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_target_is_one_based_and_censored() {
        assert_eq!(rounds_to(&[0.1, 0.5, 0.9], 0.5), 2.0);
        assert_eq!(rounds_to(&[0.1, 0.2], 0.5), 3.0);
    }
}
