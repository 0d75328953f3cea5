//! Parameters of `fl-personal` (the pFedNavi study).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, Validate};

use crate::fl::devices::DeviceMix;
use crate::fl::learn::common::{Sgd, at_least, positive, within};
use crate::fl::learn::task::TaskShape;
use crate::fl::network::NetworkConfig;

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
    /// pFedNavi-style: per client and layer, a learned coefficient λ mixes local and global weights.
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
            Self::PFedNavi => "pfednavi",
        }
    }
}

/// Personalized FL on a task where clients differ in input distribution and label mapping.
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
    /// Shared task shape.
    pub task: TaskShape,
    /// Hidden layer widths of the MLP.
    pub hidden: Vec<usize>,
    /// Standard deviation of each client's input offset (× nothing: absolute feature units).
    pub input_shift: f64,
    /// Random label transpositions per client (0 = shared label mapping).
    pub label_swaps: usize,
    /// Dirichlet α of the clients' label skew.
    pub dirichlet_alpha: f64,
    /// Training examples per client.
    pub samples_per_client: usize,
    /// Test examples per client (same view and label skew as its training data).
    pub test_per_client: usize,
    /// Local SGD per round.
    pub local: Sgd,
    /// FedAvg+FT: local fine-tuning epochs before evaluation.
    #[serde(default = "one")]
    pub finetune_epochs: usize,
    /// FedPer: number of final layers kept local.
    #[serde(default = "one")]
    pub fedper_layers: usize,
    /// pFedNavi: learning rate of the mixing logits.
    pub mix_lr: f64,
    /// Mean per-client accuracy that counts as converged (for `rounds_to_target`).
    pub target_accuracy: f64,
}

fn one() -> usize {
    1
}

impl Validate for PersonalParams {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Vec::new();
        at_least("clients", self.clients, 1, &mut e);
        self.network.validate("network", &mut e);
        self.devices.validate("devices", &mut e);
        self.task.validate("task", &mut e);
        for (i, h) in self.hidden.iter().enumerate() {
            at_least(&format!("hidden.{i}"), *h, 1, &mut e);
        }
        if !(self.input_shift.is_finite() && self.input_shift >= 0.0) {
            e.push(ParamError::new(
                "input_shift",
                format!("must be a finite number ≥ 0, got {}", self.input_shift),
            ));
        }
        positive("dirichlet_alpha", self.dirichlet_alpha, &mut e);
        at_least("samples_per_client", self.samples_per_client, 1, &mut e);
        at_least("test_per_client", self.test_per_client, 1, &mut e);
        self.local.validate("local", &mut e);
        at_least("finetune_epochs", self.finetune_epochs, 1, &mut e);
        let layers = self.hidden.len() + 1;
        if self.fedper_layers == 0 || self.fedper_layers >= layers {
            e.push(ParamError::new(
                "fedper_layers",
                format!(
                    "must be within [1, {}] (the model has {layers} layers), got {}",
                    layers - 1,
                    self.fedper_layers
                ),
            ));
        }
        positive("mix_lr", self.mix_lr, &mut e);
        within("target_accuracy", self.target_accuracy, 0.0, 1.0, &mut e);
        e
    }
}
