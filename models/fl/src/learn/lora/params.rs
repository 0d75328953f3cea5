//! Parameters of `fl-lora` (the FedMomentum study).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::aggregate::LoraMethod;
use crate::devices::DeviceMix;
use crate::learn::common::{Sgd, check_hidden};
use crate::learn::task::TaskShape;
use crate::network::NetworkConfig;

/// Where the tasks come from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum LoraData {
    /// Gaussian-prototype source task; the target task moves the class centres.
    #[serde(rename = "synthetic")]
    Synthetic(SyntheticData),
    /// Real ShareGPT turns embedded by the frozen all-MiniLM-L6-v2 ([`super::text`]): the head is
    /// pretrained on the opening-word task, the clients fine-tune it on the topic task.
    #[serde(rename = "sharegpt")]
    ShareGpt(TextData),
}

impl LoraData {
    /// `(input width, classes)` of the model: the synthetic task's shape, or the MiniLM embedding
    /// width and the text tasks' classes.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Self::Synthetic(s) => (s.task.dim, s.task.classes),
            Self::ShareGpt(_) => (super::text::EMBED_DIM, super::text::CLASSES),
        }
    }
}

impl Validate for LoraData {
    fn validate(&self, c: &mut Checks) {
        match self {
            Self::Synthetic(s) => c.part("synthetic", s),
            Self::ShareGpt(t) => c.part("sharegpt", t),
        }
    }
}

/// The synthetic tasks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyntheticData {
    /// Source task shape (the target task has the same shape).
    pub task: TaskShape,
    /// How far the target task's class centres move from the source's (× separation).
    pub target_shift: f64,
    /// Training examples per client.
    pub samples_per_client: usize,
    /// Target-task test examples.
    pub test_samples: usize,
    /// Source-task examples for pretraining the base model.
    pub pretrain_samples: usize,
}

impl Validate for SyntheticData {
    fn validate(&self, c: &mut Checks) {
        c.part("task", &self.task);
        c.non_negative("target_shift", self.target_shift);
        c.at_least("samples_per_client", self.samples_per_client, 1);
        c.at_least("test_samples", self.test_samples, 1);
        c.at_least("pretrain_samples", self.pretrain_samples, 1);
    }
}

/// The real text task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextData {
    /// Encoder window in tokens (`[CLS]` + pieces + `[SEP]`); shorter turns are left out.
    pub tokens: usize,
    /// Which held-out conversations every accuracy is measured on (default `test`).
    #[serde(default)]
    pub evaluate_on: Holdout,
}

/// A held-out split of the text task ([`super::text`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Holdout {
    /// The test conversations (every 5th): the reported results.
    #[default]
    Test,
    /// The validation conversations (every 10th other one): for choosing hyperparameters, such
    /// as the shared local learning rate, without looking at the test set.
    Validation,
}

/// Window bounds: room for one word piece; all-MiniLM-L6-v2's sentence-transformers
/// `max_seq_length` is 256 (its `sentence_bert_config.json`).
const TOKENS_MAX: usize = 256;

impl Validate for TextData {
    fn validate(&self, c: &mut Checks) {
        c.between("tokens", self.tokens, 3, TOKENS_MAX);
    }
}

/// The clients' local optimizer on the adapters. Its state (Adam's moments) is created afresh at
/// the start of every local round, as in FLoRA's released code (`ATP-1010/FederatedLLM`,
/// `fed_utils/client.py`: a new `transformers.Trainer` per client and round).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocalOptimizer {
    /// Plain SGD, `v ← v − lr·g`.
    #[default]
    Sgd,
    /// Adam (Kingma & Ba 2015) with PyTorch's defaults β₁ 0.9, β₂ 0.999, ε 1e-8 and no weight
    /// decay: FLoRA's code trains with `optim="adamw_torch"` and the Trainer's default weight
    /// decay 0, i.e. Adam. The learning rate is constant within a round (our choice; the Trainer's
    /// default schedule decays it linearly to 0 over each local run).
    Adam,
}

/// Federated LoRA fine-tuning of a pretrained MLP on a shifted, label-skewed target task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraParams {
    /// Aggregation rule under study.
    pub method: LoraMethod,
    /// Rules also run on identical data and seeds for the comparison metrics (may be empty).
    #[serde(default)]
    pub baselines: Vec<LoraMethod>,
    /// Number of clients (the network's participants).
    pub clients: usize,
    /// Rounds, participation, deadline and coordinator ingress of the FL network.
    pub network: NetworkConfig,
    /// The clients' devices (default: [`DeviceMix::reliable`], everyone online, no dropouts).
    #[serde(default = "DeviceMix::reliable")]
    pub devices: DeviceMix,
    /// LoRA rank r.
    pub rank: usize,
    /// The source and target tasks (synthetic, or real text through the frozen MiniLM).
    pub data: LoraData,
    /// Hidden layer widths of the MLP (on real text: the classifier head over the embeddings).
    pub hidden: Vec<usize>,
    /// Dirichlet α of the clients' label skew (small = strongly non-IID).
    pub dirichlet_alpha: f64,
    /// Pretraining SGD.
    pub pretrain: Sgd,
    /// Clients' local training on the adapters: epochs, minibatch and learning rate.
    pub local: Sgd,
    /// The clients' local optimizer (default `sgd`); its state starts afresh every round.
    #[serde(default)]
    pub optimizer: LocalOptimizer,
    /// Test accuracy that counts as converged (for `rounds_to_target`).
    pub target_accuracy: f64,
}

impl Validate for LoraParams {
    fn validate(&self, c: &mut Checks) {
        c.at_least("clients", self.clients, 1);
        c.part("network", &self.network);
        c.part("devices", &self.devices);
        c.at_least("rank", self.rank, 1);
        c.part("data", &self.data);
        check_hidden(c, &self.hidden);
        c.positive("dirichlet_alpha", self.dirichlet_alpha);
        c.part("pretrain", &self.pretrain);
        c.part("local", &self.local);
        c.fraction("target_accuracy", self.target_accuracy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_device_errors_name_their_dotted_keys() {
        let yaml = "method: fedmomentum\nclients: 2\nnetwork: { rounds: 0, deadline_s: -1, server_ingress_mbps: 10 }\ndevices: { dropout: 2 }\nrank: 1\ndata: { synthetic: { task: { dim: 4, classes: 2, modes: 1, separation: 1, noise: 1 }, target_shift: 1, samples_per_client: 5, test_samples: 5, pretrain_samples: 5 } }\nhidden: [4]\ndirichlet_alpha: 1\npretrain: { epochs: 1, batch: 5, lr: 0.1 }\nlocal: { epochs: 1, batch: 5, lr: 0.1 }\ntarget_accuracy: 0.5\n";
        // As the scenario loader reads params: YAML → JSON value → typed (enums as maps).
        let parse = |y: &str| -> LoraParams {
            serde_json::from_value(serde_norway::from_str::<serde_json::Value>(y).unwrap()).unwrap()
        };
        let p = parse(yaml);
        let keys: Vec<String> = Checks::of(&p).into_iter().map(|e| e.path).collect();
        assert_eq!(
            keys,
            ["network.rounds", "network.deadline_s", "devices.dropout"]
        );
        let ok = parse(&yaml.replace("devices: { dropout: 2 }\n", ""));
        assert_eq!(ok.devices, crate::devices::DeviceMix::reliable());
        let text = parse(&yaml.replace(
            "data: { synthetic: { task: { dim: 4, classes: 2, modes: 1, separation: 1, noise: 1 }, target_shift: 1, samples_per_client: 5, test_samples: 5, pretrain_samples: 5 } }",
            "data: { sharegpt: { tokens: 2 } }",
        ));
        let keys: Vec<String> = Checks::of(&text).into_iter().map(|e| e.path).collect();
        assert!(
            keys.contains(&"data.sharegpt.tokens".to_string()),
            "{keys:?}"
        );
    }
}
