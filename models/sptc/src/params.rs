//! Parameters of the `sptc` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use llm::LlmShape;

use super::efficiency::EfficiencyParams;
use super::gpu::GpuSpec;
use super::router::RouterParams;
use super::tiling::{Method, SparsityFormat};

/// A Samoyeds experiment: a GPU, the kernels to compare, and a kernel or model workload.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SptcParams {
    /// The GPU (a preset name from models/presets/gpu, an inline mapping, or a YAML path).
    pub gpu: GpuSpec,
    /// The MoE model (a preset from models/presets/llm); required by the `model` workload.
    #[serde(default)]
    pub llm: Option<LlmShape>,
    /// Kernels to compare; speedups are reported for Samoyeds over each other one.
    #[serde(default = "all_methods")]
    pub methods: Vec<Method>,
    /// Sparse format knobs (paper defaults).
    #[serde(default)]
    pub format: SparsityFormat,
    /// Fitted fractions of the units' peaks a tuned main loop sustains (defaults: the fits of
    /// the `cal-cublas` and `cal-sputnik` claims).
    #[serde(default)]
    pub efficiency: EfficiencyParams,
    /// What runs.
    pub workload: Workload,
}

fn all_methods() -> Vec<Method> {
    Method::ALL.to_vec()
}

/// The workload: one expert GEMM, or decoder layers of an MoE model.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// One expert GEMM: weight `m × k` times `n` routed tokens.
    Kernel(KernelWorkload),
    /// Decoder layers of `llm` on a batch.
    Model(ModelWorkload),
}

/// One expert GEMM.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelWorkload {
    /// Output rows (weight rows).
    pub m: usize,
    /// Routed tokens (activation columns).
    pub n: usize,
    /// Reduction width.
    pub k: usize,
}

/// Forward phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Whole prompts (batch × seq_len tokens).
    #[default]
    Prefill,
    /// One new token per sequence with `seq_len` context.
    Decode,
}

/// Decoder layers of an MoE model on a batch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelWorkload {
    /// Sequences in the batch.
    pub batch: usize,
    /// Tokens per sequence (prompt length in prefill, context in decode).
    pub seq_len: usize,
    /// Forward phase.
    #[serde(default)]
    pub phase: Phase,
    /// MoE decoder layers simulated (each with its own routing); model tokens/s extrapolates
    /// the mean layer time to all layers.
    #[serde(default = "one")]
    pub simulated_layers: u32,
    /// Decoder layers resident in memory for the batch-size search (0: all of the model's).
    #[serde(default)]
    pub deployed_layers: u32,
    /// Router on synthetic hidden states.
    #[serde(default)]
    pub router: RouterParams,
    /// Device memory not available to the model (CUDA context, allocator slack), bytes.
    #[serde(default = "gib")]
    pub reserved_bytes: u64,
    /// Upper bound of the maximum-batch search, sequences.
    #[serde(default = "limit")]
    pub max_batch_limit: usize,
}

fn one() -> u32 {
    1
}
fn gib() -> u64 {
    1 << 30
}
fn limit() -> usize {
    1 << 16
}

/// Most tokens one simulated step may hold (keeps runs to seconds).
pub const MAX_TOKENS: usize = 1 << 18;

impl Validate for SptcParams {
    fn validate(&self, c: &mut Checks) {
        c.part("gpu", &self.gpu);
        c.part("llm", &self.llm);
        if self.methods.is_empty() {
            c.fail("methods", "must list at least one method, got []");
        }
        let mut sorted = self.methods.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.methods.len() {
            c.fail("methods", "must not repeat a method");
        }
        c.part("format", &self.format);
        c.part("efficiency", &self.efficiency);
        match &self.workload {
            Workload::Kernel(k) => c.part("workload.kernel", k),
            Workload::Model(w) => {
                c.part("workload.model", w);
                model_fits_llm(c, w, self.llm.as_ref());
            }
        }
    }
}

impl Validate for KernelWorkload {
    fn validate(&self, c: &mut Checks) {
        c.between("m", self.m, 1, 65536);
        c.between("n", self.n, 1, 65536);
        c.between("k", self.k, 1, 65536);
    }
}

impl Validate for ModelWorkload {
    fn validate(&self, c: &mut Checks) {
        c.at_least("batch", self.batch, 1);
        c.at_least("seq_len", self.seq_len, 1);
        let tokens = self.batch.saturating_mul(if self.phase == Phase::Prefill {
            self.seq_len
        } else {
            1
        });
        if tokens > MAX_TOKENS {
            c.fail(
                "batch",
                format!("batch × tokens per sequence must be ≤ {MAX_TOKENS}, got {tokens}"),
            );
        }
        c.at_least("max_batch_limit", self.max_batch_limit, 1);
        c.part("router", &self.router);
    }
}

/// Checks of the model workload against the model it runs.
fn model_fits_llm(c: &mut Checks, w: &ModelWorkload, llm: Option<&LlmShape>) {
    let p = "workload.model";
    let Some(llm) = llm else {
        c.fail(
            "llm",
            "is required by the model workload (e.g. llm: mixtral-8x7b)",
        );
        return;
    };
    let Some(moe) = &llm.moe else {
        c.fail(
            "llm.moe",
            format!(
                "model `{}` has no experts; Samoyeds needs an MoE model",
                llm.name
            ),
        );
        return;
    };
    let moe_layers = llm.layers.saturating_sub(moe.dense_layers);
    if w.simulated_layers == 0 || w.simulated_layers > moe_layers {
        c.fail(
            &format!("{p}.simulated_layers"),
            format!("must be in [1, {moe_layers}], got {}", w.simulated_layers),
        );
    }
    if w.deployed_layers > llm.layers {
        c.fail(
            &format!("{p}.deployed_layers"),
            format!(
                "must be ≤ {} (0: all), got {}",
                llm.layers, w.deployed_layers
            ),
        );
    }
}
