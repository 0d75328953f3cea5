//! Family `fl`: federated-learning networks of tens to thousands of participants and SettleFL
//! reward settlement on a simulated Ethereum chain with gas measured by executing the contracts in
//! revm. See README.md. [`learn`] holds the learning studies (FedMomentum LoRA aggregation,
//! pFedNavi personalization, POLAR backdoor attacks against robust aggregation).
//!
//! Reusable by other FL modules: [`traits`] (parameter container, client update, the
//! [`traits::LocalTrainer`] / [`traits::Aggregator`] / [`traits::Adversary`] plug-ins), [`data`]
//! (Synthetic(α, β), Dirichlet shards), [`devices`] (device profiles), [`network`]
//! ([`network::run_network`], the round driver) and [`logreg`] (a logistic-regression trainer).

pub mod abi;
pub mod chain;
pub mod clients;
pub mod contracts;
pub mod coordinator;
pub mod cosim;
pub mod data;
pub mod device_trace;
pub mod devices;
pub mod evm;
mod experiment;
pub mod learn;
pub mod logreg;
pub mod merkle;
pub mod network;
mod params;
pub mod proofs;
pub mod redeem;
pub mod reward_delay;
pub mod rewards;
pub mod settle;
pub mod timeline;
pub mod traits;
pub mod zk;

pub use experiment::{CALLS, FlExperiment, build_data, train, train_and_settle};
pub use params::{DataParams, FlParams, Partition, TrainParams};

#[cfg(test)]
mod tests;
