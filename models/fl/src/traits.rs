//! The plug-in points of the FL network: a parameter container, a client update, and the three
//! traits another family module implements to reuse the network ([`super::network`]): the
//! [`LocalTrainer`] (what a participant computes locally), the [`Aggregator`] (how the coordinator
//! combines updates) and the [`Adversary`] (which participants misbehave and how).
//!
//! All numbers are `f32` weights; losses and accuracies are `f64`. Random draws come from the
//! caller's seeded [`Rng`] stream, never from a global generator. A plug-in that cannot go on
//! returns a [`PluginError`], which ends the run with that error.

use serde::{Deserialize, Serialize};
use sim::experiment::RunError;
use sim::rng::Rng;

use crate::learn::svd::SvdFailed;

/// One named tensor of a model: row-major `f32` values and their shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Layer name (e.g. `"w"`, `"b"`, `"lora_a.3"`), unique within a [`ModelParams`].
    pub name: String,
    /// Shape of the tensor (product = `values.len()`).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl Layer {
    /// A zero tensor of `shape`.
    pub fn zeros(name: &str, shape: &[usize]) -> Self {
        Self {
            name: name.to_owned(),
            shape: shape.to_vec(),
            values: vec![0.0; shape.iter().product()],
        }
    }
}

/// A model's parameters: an ordered list of named layers (the unit of upload, aggregation and
/// personalization). Arithmetic helpers require two containers of the same layout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelParams {
    /// Layers in a fixed order.
    pub layers: Vec<Layer>,
}

impl ModelParams {
    /// A container of the given layers.
    pub fn new(layers: Vec<Layer>) -> Self {
        Self { layers }
    }

    /// The same layout filled with zeros.
    pub fn zeros_like(&self) -> Self {
        Self::new(
            self.layers
                .iter()
                .map(|l| Layer::zeros(&l.name, &l.shape))
                .collect(),
        )
    }

    /// Total number of scalar parameters.
    pub fn len(&self) -> usize {
        self.layers.iter().map(|l| l.values.len()).sum()
    }

    /// True when the container holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size on the wire as dense `f32`, bytes.
    pub fn bytes(&self) -> u64 {
        4 * self.len() as u64
    }

    /// The layer called `name`, if any.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// The layer called `name`, mutably, if any.
    pub fn layer_mut(&mut self, name: &str) -> Option<&mut Layer> {
        self.layers.iter_mut().find(|l| l.name == name)
    }

    /// Iterates over all values in layer order.
    pub fn values(&self) -> impl Iterator<Item = &f32> {
        self.layers.iter().flat_map(|l| l.values.iter())
    }

    /// `self += a · other` (same layout).
    pub fn axpy(&mut self, a: f32, other: &ModelParams) {
        for (l, o) in self.layers.iter_mut().zip(&other.layers) {
            debug_assert_eq!(l.values.len(), o.values.len(), "layer {}", l.name);
            for (x, y) in l.values.iter_mut().zip(&o.values) {
                *x += a * y;
            }
        }
    }

    /// `self − other` (same layout).
    pub fn sub(&self, other: &ModelParams) -> ModelParams {
        let mut d = self.clone();
        d.axpy(-1.0, other);
        d
    }

    /// `self *= a`.
    pub fn scale(&mut self, a: f32) {
        for l in &mut self.layers {
            for x in &mut l.values {
                *x *= a;
            }
        }
    }

    /// Inner product with `other` (same layout), accumulated in `f64`.
    pub fn dot(&self, other: &ModelParams) -> f64 {
        self.values()
            .zip(other.values())
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum()
    }

    /// Euclidean norm.
    pub fn norm(&self) -> f64 {
        self.dot(self).sqrt()
    }

    /// Cosine similarity with `other` (0 when either is zero).
    pub fn cosine(&self, other: &ModelParams) -> f64 {
        self.cosine_given(other, other.norm())
    }

    /// [`Self::cosine`] with `other`'s norm already known (one step compared with many updates).
    pub fn cosine_given(&self, other: &ModelParams, other_norm: f64) -> f64 {
        let d = self.norm() * other_norm;
        if d > 0.0 { self.dot(other) / d } else { 0.0 }
    }
}

/// What one participant sends back after local training in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientUpdate {
    /// Participant index (0-based, stable over the run).
    pub client: usize,
    /// Local model minus the global model it started from (same layout as the global model).
    pub delta: ModelParams,
    /// Training samples the update was computed on (FedAvg weight).
    pub samples: usize,
    /// Mean training loss over the local steps.
    pub train_loss: f64,
}

/// Compute and communication volume of one participant's local round (turned into simulated time
/// by the participant's device profile).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainCost {
    /// Floating-point operations of the local training, FLOPs.
    pub flops: f64,
    /// Bytes the participant downloads (the global model), bytes.
    pub download_bytes: u64,
    /// Bytes it uploads (its update), bytes.
    pub upload_bytes: u64,
}

/// Quality of a global model on the held-out evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Eval {
    /// Mean loss (cross-entropy for classifiers).
    pub loss: f64,
    /// Fraction of correct predictions, in [0, 1].
    pub accuracy: f64,
}

/// Why a plug-in could not go on: the network run stops and fails with it
/// ([`run_network`](super::network::run_network) returns it as a [`RunError`]).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A tensor operation of the training backend (candle) failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A singular value decomposition did not converge.
    #[error(transparent)]
    Svd(#[from] SvdFailed),
    /// Any other failure, described in one sentence.
    #[error("{0}")]
    Other(String),
}

impl From<PluginError> for RunError {
    fn from(e: PluginError) -> Self {
        RunError::Model(e.to_string())
    }
}

/// A participant's local learning procedure. The trainer owns the participants' data (and any
/// per-participant state, e.g. personalized layers), so the network only passes indices.
pub trait LocalTrainer {
    /// Number of participants the trainer holds data for.
    fn num_clients(&self) -> usize;
    /// The initial global model.
    fn init(&mut self, rng: &mut Rng) -> ModelParams;
    /// Runs participant `client`'s local training from `global` and returns its update.
    fn train(
        &mut self,
        client: usize,
        global: &ModelParams,
        rng: &mut Rng,
    ) -> Result<ClientUpdate, PluginError>;
    /// Work and traffic of `client`'s local round from `global` (must not train).
    fn cost(&self, client: usize, global: &ModelParams) -> TrainCost;
    /// Evaluates `global` on the held-out set.
    fn evaluate(&self, global: &ModelParams) -> Result<Eval, PluginError>;
}

/// The coordinator's rule for combining the round's on-time updates into the next global model.
pub trait Aggregator {
    /// Short name for metrics and logs (e.g. `"fedavg"`).
    fn name(&self) -> &str;
    /// Returns the next global model from `global` and the on-time `updates` (never empty).
    fn aggregate(
        &mut self,
        global: &ModelParams,
        updates: &[ClientUpdate],
        rng: &mut Rng,
    ) -> Result<ModelParams, PluginError>;
    /// Bytes each participant downloads to obtain the current global model, when the rule
    /// publishes it in a form of its own (e.g. a LoRA rule's stacked or factored adapters);
    /// `None` (the default): the trainer's [`TrainCost::download_bytes`].
    fn download_bytes(&self) -> Option<u64> {
        None
    }
}

/// Misbehaving participants (poisoning, backdoors, free riders).
pub trait Adversary {
    /// True when participant `client` is controlled by the adversary.
    fn is_adversary(&self, client: usize) -> bool;
    /// Rewrites an adversarial participant's honest `update` in round `round` before upload.
    fn corrupt(
        &mut self,
        round: u32,
        update: &mut ClientUpdate,
        global: &ModelParams,
        rng: &mut Rng,
    ) -> Result<(), PluginError>;
}

/// FedAvg (McMahan et al., AISTATS 2017): the global model moves by the sample-weighted mean of
/// the updates.
#[derive(Debug, Clone, Copy, Default)]
pub struct FedAvg;

impl Aggregator for FedAvg {
    fn name(&self) -> &str {
        "fedavg"
    }

    fn aggregate(
        &mut self,
        global: &ModelParams,
        updates: &[ClientUpdate],
        _rng: &mut Rng,
    ) -> Result<ModelParams, PluginError> {
        let total: usize = updates.iter().map(|u| u.samples).sum();
        let mut next = global.clone();
        for u in updates {
            let w = if total > 0 {
                u.samples as f32 / total as f32
            } else {
                1.0 / updates.len() as f32
            };
            next.axpy(w, &u.delta);
        }
        Ok(next)
    }
}

/// No participant misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAdversary;

impl Adversary for NoAdversary {
    fn is_adversary(&self, _client: usize) -> bool {
        false
    }
    fn corrupt(
        &mut self,
        _: u32,
        _: &mut ClientUpdate,
        _: &ModelParams,
        _: &mut Rng,
    ) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Per-participant contribution scores of one round: the cosine similarity between each update
/// and the aggregate step `next − global`, clipped at 0 (an update pointing away from the consensus
/// earns nothing). Returned in the order of `updates`.
pub fn cosine_contributions(
    global: &ModelParams,
    next: &ModelParams,
    updates: &[ClientUpdate],
) -> Vec<f64> {
    let step = next.sub(global);
    let step_norm = step.norm();
    updates
        .iter()
        .map(|u| u.delta.cosine_given(&step, step_norm).max(0.0))
        .collect()
}
