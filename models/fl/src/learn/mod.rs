//! Learning studies of the `fl` family: real training on small MLPs and a deep residual CNN
//! ([`cnn`]) — graph-free steps ([`step`]) bit-identical to candle's autograd, LoRA in a stacked
//! candle graph — real SVDs with faer, on synthetic tasks and the real 8×8 digits ([`digits`]).
//!
//! - [`lora`] (`fl-lora`): FedMomentum vs FedIT, FFA-LoRA, FLoRA, FlexLoRA.
//! - [`personal`] (`fl-personal`): pFedNavi's learned layer-wise mixing vs FedAvg, FedAvg+FT, FedPer.
//! - [`backdoor`] (`fl-backdoor`): POLAR's RL layer selection vs full-model and LP-style attacks under
//!   robust aggregation defenses.

pub mod backdoor;
pub mod cnn;
pub mod common;
pub mod convert;
pub mod digits;
pub mod lora;
pub mod net;
pub mod nn;
pub mod personal;
pub mod step;
pub mod svd;
pub mod task;
