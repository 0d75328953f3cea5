//! Parameters of DASH as an inference option (`dash:` in a mobile scenario).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use minilm::sentences::EVAL_SENTENCES;
use minilm::tokenizer::MAX_SEQ_LEN;

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
#[serde(default, deny_unknown_fields)]
pub struct DashParams {
    /// Whether layers may be skipped (false: the plain engine, bit for bit).
    pub enabled: bool,
    /// Quality weight λ of the reward (saved compute − λ·quality loss); larger skips less.
    pub lambda: f64,
    /// Asynchronous policy evaluation (next layer's decision overlaps the current layer, from a
    /// one-layer-stale state) rather than synchronous (exposed, from the current state).
    pub asynchronous: bool,
    /// Compensation of a skipped layer's output.
    pub compensation: Compensation,
    /// Training passes over the training sentences.
    pub epochs: usize,
    /// Step size of the clipped policy-gradient update.
    pub learning_rate: f64,
    /// Skip probability of the untrained scorer, in (0, 1).
    pub initial_skip: f64,
    /// Sentences the policy is trained on.
    pub train_sentences: usize,
    /// Held-out sentences the greedy policy is evaluated on (their patterns drive the phone).
    pub eval_sentences: usize,
    /// Tokens per sentence (longer sentences are truncated).
    pub max_tokens: usize,
    /// Encoder weights.
    pub weights: Weights,
    /// Seed of the policy's training (its own, so a sweep's runs share one trained policy).
    pub seed: u64,
    /// Host CPU cycles per policy evaluation besides the FLOPs (synchronising with the layer's
    /// output; estimate: ≈8 µs at 2.5 GHz, a thread wake-up plus a cache-cold read of the state).
    pub policy_fixed_cycles: f64,
}

impl Default for DashParams {
    fn default() -> Self {
        Self {
            enabled: false,
            lambda: 2.0,
            asynchronous: true,
            compensation: Compensation::Delta,
            epochs: 4,
            learning_rate: 0.5,
            initial_skip: 0.2,
            train_sentences: 12,
            eval_sentences: 12,
            max_tokens: 24,
            weights: Weights::Auto,
            seed: 1,
            policy_fixed_cycles: 20_000.0,
        }
    }
}

impl Validate for DashParams {
    fn validate(&self, c: &mut Checks) {
        c.non_negative("lambda", self.lambda);
        c.positive("learning_rate", self.learning_rate);
        if !(self.initial_skip > 0.0 && self.initial_skip < 1.0) {
            c.fail(
                "initial_skip",
                format!("must be in (0, 1), got {}", self.initial_skip),
            );
        }
        c.non_negative("policy_fixed_cycles", self.policy_fixed_cycles);
        c.at_least("train_sentences", self.train_sentences, 1);
        c.between("eval_sentences", self.eval_sentences, 1, EVAL_SENTENCES);
        c.between("max_tokens", self.max_tokens, 3, MAX_SEQ_LEN);
    }
}
