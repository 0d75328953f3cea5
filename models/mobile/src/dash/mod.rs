//! DASH (arXiv 2505.17420): adaptive per-token layer skipping as an inference option of the phone
//! engine. A light scorer over a token's hidden state decides, before each layer, whether to run
//! it or skip it with a compensated output; it is trained by policy gradient on the real decoder
//! (SmolLM2-135M-Instruct, `decoder`) with reward = compute saved − λ·quality loss, scored by
//! perplexity, KL and top-1 agreement on held-out ShareGPT text, and its per-token decisions on
//! that text drive which layers the phone's SmolLM2 runs. See ../README.md (DASH section).

pub mod adam;
pub mod compensate;
pub mod credit;
pub mod disk;
pub mod features;
pub mod measure;
pub mod oracle;
pub mod params;
pub mod phone;
pub mod plan;
pub mod policy;
pub mod rollout;
pub mod score;
pub mod stored;
pub mod train;

pub use params::DashParams;

#[cfg(test)]
mod tests;
