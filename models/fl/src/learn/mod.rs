//! Learning studies of the `fl` family: real training with candle autograd on small MLPs,
//! real SVDs with faer.
//!
//! - [`lora`] (`fl-lora`): FedMomentum vs FedIT, FFA-LoRA, FLoRA, FlexLoRA.
//! - [`personal`] (`fl-personal`): pFedNavi's learned layer-wise mixing vs FedAvg, FedAvg+FT, FedPer.
//! - [`backdoor`] (`fl-backdoor`): POLAR's RL layer selection vs full-model and LP-style attacks under
//!   robust aggregation defenses.

pub mod backdoor;
pub mod common;
pub mod convert;
pub mod lora;
pub mod net;
pub mod nn;
pub mod personal;
pub mod svd;
pub mod task;
