//! Family `fpga`: QUARK (shared quantized nonlinear circuits on an FPGA Transformer accelerator,
//! arXiv 2511.06767) and SpecQuant (Fourier-truncated W4A4 quantization, arXiv 2511.11663).

pub mod cost;
mod experiment;
pub mod fixed;
pub mod hadamard;
pub mod lm;
pub mod lm_data;
pub mod ops;
pub mod params;
pub mod platform;
pub mod sequencer;
pub mod workload;

pub use experiment::FpgaExperiment;
pub use params::FpgaParams;
pub mod quality;
pub mod rtl;
pub mod specquant;

#[cfg(test)]
mod tests;
