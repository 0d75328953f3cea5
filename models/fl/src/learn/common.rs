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

/// What one learn run trains, for its resource estimate.
pub struct MlpRun<'a> {
    /// Clients, each with its own data and model.
    pub clients: usize,
    /// Input and class counts.
    pub task: &'a crate::learn::task::TaskShape,
    /// Hidden widths.
    pub hidden: &'a [usize],
    /// Training samples per client.
    pub samples_per_client: usize,
    /// Samples held outside the clients (test, root, pretraining sets).
    pub other_samples: usize,
    /// Rounds and participation.
    pub network: &'a crate::network::NetworkConfig,
    /// Local training.
    pub local: &'a Sgd,
    /// Methods trained per run (the method and its baselines).
    pub methods: usize,
}

/// Memory and work of a learn run: f32 samples of `task.dim` features; per client an f64 model and
/// an update of `P = Σ width·next width` weights; `≈ 6 P` operations per sample and epoch
/// (forward and backward, two per multiply-add), for every participating client, round and method.
pub fn mlp_estimate(r: &MlpRun<'_>) -> sim::estimate::ResourceEstimate {
    let mut widths = vec![r.task.dim];
    widths.extend_from_slice(r.hidden);
    widths.push(r.task.classes);
    let weights: f64 = widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum();
    let (clients, samples) = (r.clients as f64, r.samples_per_client as f64);
    let dim = r.task.dim as f64;
    sim::estimate::ResourceEstimate::default()
        .memory_product(
            dim * 4.0,
            &[("clients", clients), ("samples_per_client", samples)],
        )
        .memory("task.dim", r.other_samples as f64 * dim * 4.0)
        .memory_product(16.0, &[("clients", clients), ("hidden", weights)])
        .work_product(
            6.0 * r.network.participation * r.methods as f64,
            &[
                ("network.rounds", f64::from(r.network.rounds)),
                ("clients", clients),
                ("local.epochs", r.local.epochs as f64),
                ("samples_per_client", samples),
                ("hidden", weights),
            ],
        )
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
