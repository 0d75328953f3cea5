//! Parameters of the `fl` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::chain::ChainConfig;
use super::devices::DeviceMix;
use super::network::NetworkConfig;
use super::settle::SettleConfig;

/// How the participants' data is generated and split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Partition {
    /// FedProx Synthetic(α, β): each participant has its own labeller and feature mean.
    Synthetic,
    /// Synthetic-IID pool split over participants with per-class Dirichlet(`dirichlet_alpha`).
    Dirichlet,
    /// Synthetic-IID: every participant draws from the same distribution.
    Iid,
}

/// The federated data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataParams {
    /// Partition scheme.
    pub partition: Partition,
    /// Synthetic α (model heterogeneity).
    #[serde(default = "one")]
    pub alpha: f64,
    /// Synthetic β (feature heterogeneity).
    #[serde(default = "one")]
    pub beta: f64,
    /// Dirichlet concentration of the label split.
    #[serde(default = "half")]
    pub dirichlet_alpha: f64,
    /// Feature dimension (FedProx: 60).
    #[serde(default = "dim")]
    pub dim: u32,
    /// Classes (FedProx: 10).
    #[serde(default = "classes")]
    pub classes: u32,
    /// Median training samples per participant.
    #[serde(default = "samples")]
    pub samples_median: f64,
    /// Lognormal σ of samples per participant.
    #[serde(default = "sigma")]
    pub samples_sigma: f64,
    /// Test examples held out per participant.
    #[serde(default = "test")]
    pub test_per_client: u32,
}

/// Local SGD of the logistic-regression participants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// Learning rate.
    pub lr: f64,
    /// Local epochs per round.
    pub epochs: u32,
    /// Mini-batch size.
    pub batch: u32,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            lr: 0.05,
            epochs: 1,
            batch: 10,
        }
    }
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn dim() -> u32 {
    60
}
fn classes() -> u32 {
    10
}
fn samples() -> f64 {
    50.0
}
fn sigma() -> f64 {
    0.6
}
fn test() -> u32 {
    3
}
fn gas_price() -> f64 {
    20.0
}
fn eth_usd() -> f64 {
    3000.0
}

/// A federated-learning job settled on chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlParams {
    /// Participants N.
    pub participants: u32,
    /// Data set and partition.
    pub data: DataParams,
    /// Local training.
    #[serde(default)]
    pub train: TrainParams,
    /// Rounds, deadline and coordinator network.
    pub network: NetworkConfig,
    /// Participants' devices.
    #[serde(default)]
    pub devices: DeviceMix,
    /// Reward settlement.
    pub settlement: SettleConfig,
    /// The chain.
    #[serde(default)]
    pub chain: ChainConfig,
    /// Gas price for the fixed-price cost figure, gwei.
    #[serde(default = "gas_price")]
    pub gas_price_gwei: f64,
    /// ETH price, USD.
    #[serde(default = "eth_usd")]
    pub eth_usd: f64,
    /// SettleFL's circuits synthesized (constraint counts) and redeem payouts measured in revm;
    /// absent: skipped.
    #[serde(default)]
    pub circuits: Option<CircuitParams>,
}

/// Sizes at which SettleFL's circuits are built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitParams {
    /// Participants P of the synthesized circuits (the paper sizes them at 10).
    pub participants: u32,
    /// Rounds T of the synthesized circuits (the paper: 10).
    pub rounds: u32,
    /// Participants of the job whose redeem proofs are generated and verified in revm.
    #[serde(default = "two")]
    pub redeem_participants: u32,
    /// Rounds of that job.
    #[serde(default = "two")]
    pub redeem_rounds: u32,
    /// Participants P of the Commit circuits (at T = 2) whose Groth16 proving is timed on this
    /// machine to fit the prover time per constraint (`prover_*` metrics). Wall-clock: these
    /// metrics, unlike every other, differ between runs; empty (the default) times nothing.
    #[serde(default)]
    pub prover_sizes: Vec<u32>,
}

fn two() -> u32 {
    2
}

impl Validate for CircuitParams {
    fn validate(&self, c: &mut Checks) {
        c.between("participants", self.participants, 1, 64);
        c.between("rounds", self.rounds, 1, 64);
        c.between("redeem_participants", self.redeem_participants, 1, 16);
        c.between("redeem_rounds", self.redeem_rounds, 1, 16);
        for (i, &p) in self.prover_sizes.iter().enumerate() {
            c.between(&format!("prover_sizes[{i}]"), p, 1, 8);
        }
    }
}

impl Validate for FlParams {
    fn validate(&self, c: &mut Checks) {
        c.between("participants", self.participants, 1, 100_000);
        c.part("data", &self.data);
        c.part("train", &self.train);
        c.positive("gas_price_gwei", self.gas_price_gwei);
        c.positive("eth_usd", self.eth_usd);
        c.part("network", &self.network);
        c.part("devices", &self.devices);
        c.part("settlement", &self.settlement);
        c.part("chain", &self.chain);
        if let Some(circuits) = &self.circuits {
            c.part("circuits", circuits);
        }
    }
}

impl Validate for DataParams {
    fn validate(&self, c: &mut Checks) {
        c.non_negative("alpha", self.alpha);
        c.non_negative("beta", self.beta);
        c.non_negative("samples_sigma", self.samples_sigma);
        c.positive("dirichlet_alpha", self.dirichlet_alpha);
        c.positive("samples_median", self.samples_median);
        c.at_least("dim", self.dim, 1);
        c.at_least("test_per_client", self.test_per_client, 1);
        c.at_least("classes", self.classes, 2);
    }
}

impl Validate for TrainParams {
    fn validate(&self, c: &mut Checks) {
        c.positive("lr", self.lr);
        c.at_least("epochs", self.epochs, 1);
        c.at_least("batch", self.batch, 1);
    }
}
