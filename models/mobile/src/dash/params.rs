//! Parameters of DASH as an inference option (`dash:` in a mobile scenario).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::ParamError;

use crate::minilm::sentences::EVAL_SENTENCES;
use crate::minilm::tokenizer::MAX_SEQ_LEN;

use super::compensate::Compensation;

/// Which encoder the policy is trained and measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// The real all-MiniLM-L6-v2 weights when found (`scripts/fetch-minilm.sh`), else the stand-in.
    #[default]
    Auto,
    /// The real weights; an error when they are absent.
    Real,
    /// The random-weight stand-in of the same architecture.
    Random,
}

/// DASH adaptive layer skipping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DashParams {
    /// Whether layers may be skipped (false: the plain engine, bit for bit).
    #[serde(default)]
    pub enabled: bool,
    /// Quality weight λ of the reward (saved compute − λ·quality loss); larger skips less.
    #[serde(default = "d_lambda")]
    pub lambda: f64,
    /// Asynchronous policy evaluation (next layer's decision overlaps the current layer, from a
    /// one-layer-stale state) rather than synchronous (exposed, from the current state).
    #[serde(default = "yes")]
    pub asynchronous: bool,
    /// Compensation of a skipped layer's output.
    #[serde(default = "d_comp")]
    pub compensation: Compensation,
    /// Training passes over the training sentences.
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Step size of the clipped policy-gradient update.
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    /// Skip probability of the untrained scorer, in (0, 1).
    #[serde(default = "d_p0")]
    pub initial_skip: f64,
    /// Sentences the policy is trained on.
    #[serde(default = "d_train")]
    pub train_sentences: usize,
    /// Held-out sentences the greedy policy is evaluated on (their patterns drive the phone).
    #[serde(default = "d_eval")]
    pub eval_sentences: usize,
    /// Tokens per sentence (longer sentences are truncated).
    #[serde(default = "d_tokens")]
    pub max_tokens: usize,
    /// Encoder weights.
    #[serde(default)]
    pub weights: Weights,
    /// Seed of the policy's training (its own, so a sweep's runs share one trained policy).
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Host CPU cycles per policy evaluation besides the FLOPs (synchronising with the layer's
    /// output; estimate: ≈8 µs at 2.5 GHz, a thread wake-up plus a cache-cold read of the state).
    #[serde(default = "d_fixed")]
    pub policy_fixed_cycles: f64,
}

fn d_lambda() -> f64 {
    2.0
}
fn yes() -> bool {
    true
}
fn d_comp() -> Compensation {
    Compensation::Delta
}
fn d_epochs() -> usize {
    4
}
fn d_lr() -> f64 {
    0.5
}
fn d_p0() -> f64 {
    0.2
}
fn d_train() -> usize {
    12
}
fn d_eval() -> usize {
    12
}
fn d_tokens() -> usize {
    24
}
fn d_seed() -> u64 {
    1
}
fn d_fixed() -> f64 {
    20_000.0
}

impl Default for DashParams {
    fn default() -> Self {
        Self {
            enabled: false,
            lambda: d_lambda(),
            asynchronous: true,
            compensation: d_comp(),
            epochs: d_epochs(),
            learning_rate: d_lr(),
            initial_skip: d_p0(),
            train_sentences: d_train(),
            eval_sentences: d_eval(),
            max_tokens: d_tokens(),
            weights: Weights::Auto,
            seed: d_seed(),
            policy_fixed_cycles: d_fixed(),
        }
    }
}

impl DashParams {
    /// Range checks; `path` is the key in params.
    pub fn validate(&self, path: &str) -> Vec<ParamError> {
        let mut e = Vec::new();
        let mut bad = |k: &str, msg: String| e.push(ParamError::new(format!("{path}.{k}"), msg));
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            bad(
                "lambda",
                format!("must be finite and ≥ 0, got {}", self.lambda),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            bad(
                "learning_rate",
                format!("must be finite and > 0, got {}", self.learning_rate),
            );
        }
        if !(self.initial_skip > 0.0 && self.initial_skip < 1.0) {
            bad(
                "initial_skip",
                format!("must be in (0, 1), got {}", self.initial_skip),
            );
        }
        if !(self.policy_fixed_cycles.is_finite() && self.policy_fixed_cycles >= 0.0) {
            bad(
                "policy_fixed_cycles",
                format!("must be finite and ≥ 0, got {}", self.policy_fixed_cycles),
            );
        }
        for (k, v, lo, hi) in [
            ("train_sentences", self.train_sentences, 1, usize::MAX),
            ("eval_sentences", self.eval_sentences, 1, EVAL_SENTENCES),
            ("max_tokens", self.max_tokens, 3, MAX_SEQ_LEN),
        ] {
            if v < lo || v > hi {
                let range = if hi == usize::MAX {
                    format!("≥ {lo}")
                } else {
                    format!("in {lo}..={hi}")
                };
                bad(k, format!("must be {range}, got {v}"));
            }
        }
        e
    }
}
