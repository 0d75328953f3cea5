//! Parameter pieces and round bookkeeping shared by the three learning studies.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::RunError;
use sim::validate::{Checks, Validate};

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

impl Validate for Sgd {
    fn validate(&self, c: &mut Checks) {
        c.at_least("epochs", self.epochs, 1);
        c.at_least("batch", self.batch, 1);
        c.positive("lr", self.lr);
    }
}

impl Sgd {
    /// `(epochs, batch, lr)`.
    pub fn tuple(&self) -> (usize, usize, f64) {
        (self.epochs, self.batch, self.lr)
    }
}

/// Every hidden width `hidden[i]` must be ≥ 1 (key `hidden.{i}`).
pub fn check_hidden(c: &mut Checks, hidden: &[usize]) {
    for (i, h) in hidden.iter().enumerate() {
        c.at_least(&format!("hidden.{i}"), *h, 1);
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
