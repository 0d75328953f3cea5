//! FedMomentum study (`fl-lora`): federated LoRA fine-tuning with six aggregation rules, on a
//! synthetic task or on real ShareGPT text embedded by the frozen, real MiniLM ([`text`]).

pub mod adapter;
pub mod aggregate;
pub mod batched;
pub mod encode;
pub mod experiment;
pub mod feature_cache;
pub mod params;
pub mod plugins;
pub mod text;

pub use experiment::LoraExperiment;
