//! Parameters of `fl-personal` (the pFedNavi study).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use crate::devices::DeviceMix;
use crate::learn::common::{Sgd, check_hidden};
use crate::learn::task::TaskShape;
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
    fn validate(&self, c: &mut Checks) {
        c.at_least("clients", self.clients, 1);
        c.part("network", &self.network);
        c.part("devices", &self.devices);
        c.part("task", &self.task);
        check_hidden(c, &self.hidden);
        c.non_negative("input_shift", self.input_shift);
        c.positive("dirichlet_alpha", self.dirichlet_alpha);
        c.at_least("samples_per_client", self.samples_per_client, 1);
        c.at_least("test_per_client", self.test_per_client, 1);
        c.part("local", &self.local);
        c.at_least("finetune_epochs", self.finetune_epochs, 1);
        let layers = self.hidden.len() + 1;
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
        c.fraction("target_accuracy", self.target_accuracy);
    }
}
