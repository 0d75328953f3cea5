//! FedMomentum study (`fl-lora`): federated LoRA fine-tuning with six aggregation rules.

pub mod adapter;
pub mod aggregate;
pub mod experiment;
pub mod params;
pub mod plugins;

pub use experiment::LoraExperiment;
