//! Parameters of the `fl` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, Validate};

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
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Learning rate.
    #[serde(default = "lr")]
    pub lr: f64,
    /// Local epochs per round.
    #[serde(default = "one_u")]
    pub epochs: u32,
    /// Mini-batch size.
    #[serde(default = "batch")]
    pub batch: u32,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            lr: lr(),
            epochs: 1,
            batch: batch(),
        }
    }
}

fn one() -> f64 {
    1.0
}
fn one_u() -> u32 {
    1
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
fn lr() -> f64 {
    0.05
}
fn batch() -> u32 {
    10
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
}

impl Validate for FlParams {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Vec::new();
        if !(1..=100_000).contains(&self.participants) {
            e.push(ParamError::new(
                "participants",
                format!("must be in [1, 100000], got {}", self.participants),
            ));
        }
        let d = &self.data;
        for (k, v) in [
            ("data.alpha", d.alpha),
            ("data.beta", d.beta),
            ("data.samples_sigma", d.samples_sigma),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                e.push(ParamError::new(k, format!("must be ≥ 0, got {v}")));
            }
        }
        for (k, v) in [
            ("data.dirichlet_alpha", d.dirichlet_alpha),
            ("data.samples_median", d.samples_median),
            ("train.lr", self.train.lr),
            ("gas_price_gwei", self.gas_price_gwei),
            ("eth_usd", self.eth_usd),
        ] {
            if !(v.is_finite() && v > 0.0) {
                e.push(ParamError::new(k, format!("must be > 0, got {v}")));
            }
        }
        for (k, v) in [
            ("data.dim", d.dim),
            ("data.test_per_client", d.test_per_client),
            ("train.epochs", self.train.epochs),
            ("train.batch", self.train.batch),
        ] {
            if v == 0 {
                e.push(ParamError::new(k, "must be ≥ 1, got 0"));
            }
        }
        if d.classes < 2 {
            e.push(ParamError::new(
                "data.classes",
                format!("must be ≥ 2, got {}", d.classes),
            ));
        }
        self.network.validate("network", &mut e);
        self.devices.validate("devices", &mut e);
        self.settlement.validate("settlement", &mut e);
        self.chain.validate("chain", &mut e);
        e
    }
}
