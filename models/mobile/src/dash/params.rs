//! Parameters of DASH as an inference option (`dash:` in a mobile scenario).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::compensate::Compensation;

/// Which decoder the policy is trained and measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// The real SmolLM2-135M-Instruct GGUF when found (`scripts/fetch-data.sh`), else the stand-in.
    #[default]
    Auto,
    /// The real GGUF; an error when it is absent.
    Real,
    /// A random-weight stand-in of SmolLM2's architecture (30 layers, small widths) and a byte
    /// vocabulary, for tests without the download.
    Random,
}

/// Which skip decisions drive the decoder and the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// DASH's scorer, trained by REINFORCE.
    #[default]
    Learned,
    /// No learning: the oracle study's greedy static set (the largest number of least harmful
    /// layers, skipped by every token, whose held-out perplexity ratio stays ≤ `max_ppl_ratio`);
    /// a reference for what static skipping buys at matched quality. Needs `oracle_tokens` > 0.
    GreedyOracle,
    /// DASH at matched quality: one scorer trained per λ of `lambdas`; the one that skips most on
    /// the validation windows (training text, held out from training) while keeping their
    /// perplexity ratio ≤ `max_ppl_ratio` is chosen, and runs on the evaluation windows. When no λ
    /// qualifies on validation, or the chosen one's held-out ratio exceeds `max_ppl_ratio`, the
    /// run is the unskipped model (metric `dash_matched` 0).
    Matched,
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
    /// Training passes over the training windows.
    pub epochs: usize,
    /// Adam step size of the policy-gradient update (logit units per update, per weight).
    pub learning_rate: f64,
    /// Skip probability of the untrained scorer, in (0, 1).
    pub initial_skip: f64,
    /// ShareGPT token windows the policy is trained on (the first windows of the text).
    pub train_windows: usize,
    /// Tokens per training window.
    pub train_window_tokens: usize,
    /// Held-out tokens the greedy policy is evaluated on (windows after the training ones).
    pub eval_tokens: usize,
    /// Tokens per evaluation window (each window is a fresh sequence from position 0).
    pub eval_window_tokens: usize,
    /// Decoder weights.
    pub weights: Weights,
    /// Seed of the policy's training (its own, so a sweep's runs share one trained policy).
    pub seed: u64,
    /// Which decisions drive the run.
    pub policy: PolicyKind,
    /// Held-out tokens of the oracle redundancy study (`super::oracle`; 0: not run), in windows
    /// after the evaluation windows. It skips each layer for every token, so it costs ≈ 70
    /// forward passes over these tokens.
    pub oracle_tokens: usize,
    /// Largest greedy set (the k least harmful layers skipped together) the oracle measures.
    pub oracle_greedy_max: usize,
    /// Per-token oracle threshold: a layer is cheap for a position when its skip costs less KL
    /// (nats) there.
    pub oracle_epsilon_kl: f64,
    /// Perplexity ratio (skipped / unskipped) that counts as matched quality: the greedy oracle
    /// set and the `matched` policy must stay within it.
    pub max_ppl_ratio: f64,
    /// λ grid of `policy: matched`.
    pub lambdas: Vec<f64>,
    /// Validation tokens of `policy: matched` (windows of `train_window_tokens` from the training
    /// text after the training windows).
    pub validation_tokens: usize,
    /// Training windows per policy update (run through the decoder together).
    pub batch_windows: usize,
    /// Train with seed `seed + replication index`, so each replication of a scenario trains its
    /// own policy (its interval then covers the training's randomness); false: every run uses
    /// `seed`.
    pub seed_per_replication: bool,
    /// Host CPU cycles per policy evaluation besides the FLOPs (synchronising with the layer's
    /// output; estimate: ≈8 µs at 2.5 GHz, a thread wake-up plus a cache-cold read of the state).
    pub policy_fixed_cycles: f64,
}

impl Default for DashParams {
    fn default() -> Self {
        Self {
            enabled: false,
            lambda: 1.0,
            asynchronous: true,
            compensation: Compensation::Delta,
            epochs: 2,
            learning_rate: 0.1,
            initial_skip: 0.2,
            train_windows: 200,
            train_window_tokens: 32,
            eval_tokens: 20_000,
            eval_window_tokens: 64,
            weights: Weights::Auto,
            seed: 1,
            policy_fixed_cycles: 20_000.0,
            policy: PolicyKind::Learned,
            oracle_tokens: 0,
            oracle_greedy_max: 8,
            oracle_epsilon_kl: 0.01,
            max_ppl_ratio: 1.10,
            lambdas: vec![0.1, 0.3, 1.0],
            validation_tokens: 2048,
            batch_windows: 16,
            seed_per_replication: false,
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
        c.at_least("train_windows", self.train_windows, 1);
        c.between("train_window_tokens", self.train_window_tokens, 8, 2048);
        c.at_least("eval_tokens", self.eval_tokens, 8);
        c.between("eval_window_tokens", self.eval_window_tokens, 8, 2048);
        c.positive("oracle_epsilon_kl", self.oracle_epsilon_kl);
        if self.max_ppl_ratio < 1.0 {
            c.fail(
                "max_ppl_ratio",
                format!(
                    "must be ≥ 1 (a perplexity ratio), got {}",
                    self.max_ppl_ratio
                ),
            );
        }
        c.at_least("batch_windows", self.batch_windows, 1);
        if self.policy == PolicyKind::Matched {
            c.at_least("validation_tokens", self.validation_tokens, 8);
            if self.lambdas.is_empty() || self.lambdas.iter().any(|l| l.is_nan() || *l < 0.0) {
                c.fail(
                    "lambdas",
                    format!("needs at least one λ ≥ 0, got {:?}", self.lambdas),
                );
            }
        }
        if self.policy == PolicyKind::GreedyOracle {
            c.at_least("oracle_tokens", self.oracle_tokens, 8);
            c.at_least("oracle_greedy_max", self.oracle_greedy_max, 1);
        }
    }
}
