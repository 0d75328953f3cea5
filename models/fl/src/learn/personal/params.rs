//! Parameters of `fl-personal` (the pFedNavi study).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use crate::devices::DeviceMix;
use crate::learn::cnn::{Cnn, CnnShape};
use crate::learn::common::{Sgd, check_hidden};
use crate::learn::digits::CLASSES;
use crate::learn::nn::Arch;
use crate::learn::personal::oracle::OracleParams;
use crate::learn::personal::sensor::SensorShift;
use crate::learn::personal::shift::{FeatureShift, SIDE};
use crate::network::NetworkConfig;

/// A personalization method.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum PersonalMethod {
    /// FedAvg: one global model for every client.
    #[serde(rename = "fedavg")]
    FedAvg,
    /// FedAvg, then every client fine-tunes the global model on its data before use.
    #[serde(rename = "fedavg-ft")]
    FedAvgFt,
    /// FedPer: the last `fedper_layers` layers stay local, the others are averaged.
    #[serde(rename = "fedper")]
    FedPer,
    /// Ditto: a personal model trained with a proximal pull `ditto_mu` towards the global model.
    #[serde(rename = "ditto")]
    Ditto,
    /// Layer-wise learned mixing on every layer, no selection (pFedNavi's first stage alone: the
    /// ablation of selection and fine-grained fusion).
    #[serde(rename = "layer-mix")]
    LayerMix,
    /// pFedNavi: layer-wise mixing coefficients select the client-specific layers, which are then
    /// fused with the global ones per output unit; the other layers are global.
    #[serde(rename = "pfednavi")]
    PFedNavi,
}

impl PersonalMethod {
    /// The scenario spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::FedAvg => "fedavg",
            Self::FedAvgFt => "fedavg-ft",
            Self::FedPer => "fedper",
            Self::Ditto => "ditto",
            Self::LayerMix => "layer-mix",
            Self::PFedNavi => "pfednavi",
        }
    }
}

/// Personalized FL on the real 8×8 digits where every client sees its own image transform (feature
/// shift) and its own Dirichlet class proportions (label skew); no client relabels.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalParams {
    /// Method under study.
    pub method: PersonalMethod,
    /// Methods also run on identical data and seeds for the comparison metrics (may be empty).
    #[serde(default)]
    pub baselines: Vec<PersonalMethod>,
    /// Number of clients (the network's participants).
    pub clients: usize,
    /// Rounds, participation, deadline and coordinator ingress of the FL network.
    pub network: NetworkConfig,
    /// The clients' devices (default: [`DeviceMix::reliable`], everyone online, no dropouts).
    #[serde(default = "DeviceMix::reliable")]
    pub devices: DeviceMix,
    /// Limits of the clients' image transforms (default: none).
    #[serde(default)]
    pub shift: FeatureShift,
    /// Limits of the clients' sensors, applied after the transform (absent: none).
    #[serde(default)]
    pub sensor: Option<SensorShift>,
    /// Hidden layer widths of the MLP (64 pixels in, 10 classes out); empty when `cnn` is given.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// The residual CNN of [`crate::learn::cnn`] over the 8×8 images instead of the MLP
    /// (`4·blocks + 3` weight layers).
    #[serde(default)]
    pub cnn: Option<CnnShape>,
    /// Dirichlet α of the clients' label skew.
    pub dirichlet_alpha: f64,
    /// Training examples per client (every method trains on all of them).
    pub samples_per_client: usize,
    /// pFedNavi and layer-mix: of `samples_per_client`, the examples held out of the local-weight
    /// training on which the mixing coefficients are learned.
    pub holdout_per_client: usize,
    /// Test examples per client (same transform and class proportions as its training data).
    pub test_per_client: usize,
    /// Local SGD per round.
    pub local: Sgd,
    /// Centralised pretraining of the initial model on untransformed images of the training pool
    /// with uniform classes (as VLN agents start from pretrained visual and language encoders);
    /// absent: the clients start from the random initialisation.
    #[serde(default)]
    pub pretrain: Option<Pretrain>,
    /// FedAvg+FT: local fine-tuning epochs before evaluation.
    #[serde(default = "one")]
    pub finetune_epochs: usize,
    /// FedPer: number of final layers kept local.
    #[serde(default = "one")]
    pub fedper_layers: usize,
    /// pFedNavi and layer-mix: learning rate of the mixing logits.
    pub mix_lr: f64,
    /// pFedNavi: rounds a client trains layer-wise mixing before it selects its layers.
    pub select_after: u32,
    /// pFedNavi: a layer whose λ reached this becomes client-specific.
    pub select_threshold: f64,
    /// pFedNavi: at most this many layers per client become client-specific, those with the
    /// largest λ among the layers at or above `select_threshold` (absent: no cap). The paper
    /// personalises a few named components (the encoder–decoder projection and the
    /// environment-sensitive decoder layers), not every layer local data favours.
    #[serde(default)]
    pub select_max_layers: Option<usize>,
    /// Ditto: weight μ of the proximal term.
    #[serde(default = "ditto_mu")]
    pub ditto_mu: f64,
    /// FedAvg runs only: after the last round, the oracle of [`OracleParams`] fine-tunes the final
    /// global model on each client's data, one layer set at a time (absent: not run).
    #[serde(default)]
    pub oracle: Option<OracleParams>,
    /// Convergence target as a fraction of FedAvg's final mean per-client accuracy on the same data
    /// and seed (FedAvg is run for it when it is not the method or a baseline), so every method is
    /// timed against a level FedAvg reaches.
    pub target_fraction: f64,
}

/// Pretraining of the initial model before the first round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pretrain {
    /// Images drawn (with replacement) from the training pool.
    pub samples: usize,
    /// SGD over them.
    pub sgd: Sgd,
}

impl Validate for Pretrain {
    fn validate(&self, c: &mut Checks) {
        c.at_least("samples", self.samples, 1);
        c.part("sgd", &self.sgd);
    }
}

impl PersonalParams {
    /// The network every client trains: the MLP of `hidden` or the CNN of `cnn`.
    pub fn arch(&self) -> Arch {
        match self.cnn {
            Some(shape) => Arch::Cnn(Cnn {
                shape,
                side: SIDE,
                classes: CLASSES,
            }),
            None => Arch::Mlp,
        }
    }

    /// Number of weight layers of the network.
    pub fn layers(&self) -> usize {
        match self.cnn {
            Some(shape) => 4 * shape.blocks + 3,
            None => self.hidden.len() + 1,
        }
    }
}

fn ditto_mu() -> f64 {
    // Ditto's paper tunes μ from {0.01, 0.1, 1, 2}; 0.1 is our choice within it.
    0.1
}

fn one() -> usize {
    1
}

impl Validate for PersonalParams {
    fn validate(&self, c: &mut Checks) {
        c.at_least("clients", self.clients, 1);
        c.part("network", &self.network);
        c.part("devices", &self.devices);
        c.part("shift", &self.shift);
        if let Some(s) = &self.sensor {
            c.part("sensor", s);
        }
        check_hidden(c, &self.hidden);
        if let Some(shape) = &self.cnn {
            c.part("cnn", shape);
            if !self.hidden.is_empty() {
                c.fail(
                    "hidden",
                    "give either `hidden` (the MLP) or `cnn`, not both",
                );
            }
        }
        c.positive("dirichlet_alpha", self.dirichlet_alpha);
        c.at_least("samples_per_client", self.samples_per_client, 2);
        if self.holdout_per_client == 0 || self.holdout_per_client >= self.samples_per_client {
            c.fail(
                "holdout_per_client",
                format!(
                    "must be within [1, samples_per_client − 1 = {}], got {}",
                    self.samples_per_client.saturating_sub(1),
                    self.holdout_per_client
                ),
            );
        }
        c.at_least("test_per_client", self.test_per_client, 1);
        c.part("local", &self.local);
        if let Some(pre) = &self.pretrain {
            c.part("pretrain", pre);
        }
        c.at_least("finetune_epochs", self.finetune_epochs, 1);
        let layers = self.layers();
        if self.fedper_layers == 0 || self.fedper_layers >= layers {
            c.fail(
                "fedper_layers",
                format!(
                    "must be within [1, {}] (the model has {layers} layers), got {}",
                    layers - 1,
                    self.fedper_layers
                ),
            );
        }
        c.positive("mix_lr", self.mix_lr);
        c.between(
            "select_after",
            self.select_after,
            1,
            self.network.rounds.max(1),
        );
        c.fraction("select_threshold", self.select_threshold);
        if let Some(k) = self.select_max_layers {
            c.between("select_max_layers", k, 1, layers);
        }
        c.non_negative("ditto_mu", self.ditto_mu);
        if let Some(o) = &self.oracle {
            c.part("oracle", o);
            o.check_layers(layers, c);
        }
        c.within("target_fraction", self.target_fraction, 0.01, 1.0);
    }
}
