//! Parameters of the `sptc` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, Validate};

use crate::llm::LlmShape;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Whole prompts (batch × seq_len tokens).
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
    #[serde(default = "prefill")]
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

fn prefill() -> Phase {
    Phase::Prefill
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
    fn validate(&self) -> Vec<ParamError> {
        let mut e = self.gpu.validate("gpu");
        if let Some(l) = &self.llm {
            e.extend(l.validate("llm"));
        }
        if self.methods.is_empty() {
            e.push(ParamError::new(
                "methods",
                "must list at least one method, got []",
            ));
        }
        let mut sorted = self.methods.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.methods.len() {
            e.push(ParamError::new("methods", "must not repeat a method"));
        }
        let f = &self.format;
        if f.vector == 0 || !f.vector.is_multiple_of(128) {
            e.push(ParamError::new(
                "format.vector",
                format!(
                    "must be a positive multiple of 128 (the kernel's row tile), got {}",
                    f.vector
                ),
            ));
        }
        if !(1..=64).contains(&f.row_group) {
            e.push(ParamError::new(
                "format.row_group",
                format!("must be in 1..=64, got {}", f.row_group),
            ));
        }
        for (k, v) in [
            ("format.token_pad", f.token_pad),
            ("format.block_pad", f.block_pad),
        ] {
            if !(1..=4096).contains(&v) {
                e.push(ParamError::new(k, format!("must be in 1..=4096, got {v}")));
            }
        }
        match &self.workload {
            Workload::Kernel(k) => {
                for (key, v) in [("m", k.m), ("n", k.n), ("k", k.k)] {
                    if !(1..=65536).contains(&v) {
                        e.push(ParamError::new(
                            format!("workload.kernel.{key}"),
                            format!("must be in 1..=65536, got {v}"),
                        ));
                    }
                }
            }
            Workload::Model(w) => e.extend(validate_model(w, self.llm.as_ref())),
        }
        e
    }
}

fn validate_model(w: &ModelWorkload, llm: Option<&LlmShape>) -> Vec<ParamError> {
    let mut e = Vec::new();
    let p = "workload.model";
    if w.batch == 0 {
        e.push(ParamError::new(format!("{p}.batch"), "must be ≥ 1, got 0"));
    }
    if w.seq_len == 0 {
        e.push(ParamError::new(
            format!("{p}.seq_len"),
            "must be ≥ 1, got 0",
        ));
    }
    let tokens = w.batch.saturating_mul(if w.phase == Phase::Prefill {
        w.seq_len
    } else {
        1
    });
    if tokens > MAX_TOKENS {
        e.push(ParamError::new(
            format!("{p}.batch"),
            format!("batch × tokens per sequence must be ≤ {MAX_TOKENS}, got {tokens}"),
        ));
    }
    if w.max_batch_limit == 0 {
        e.push(ParamError::new(
            format!("{p}.max_batch_limit"),
            "must be ≥ 1, got 0",
        ));
    }
    e.extend(w.router.validate(&format!("{p}.router")));
    let Some(llm) = llm else {
        e.push(ParamError::new(
            "llm",
            "is required by the model workload (e.g. llm: mixtral-8x7b)",
        ));
        return e;
    };
    let Some(moe) = &llm.moe else {
        e.push(ParamError::new(
            "llm.moe",
            format!(
                "model `{}` has no experts; Samoyeds needs an MoE model",
                llm.name
            ),
        ));
        return e;
    };
    let moe_layers = llm.layers.saturating_sub(moe.dense_layers);
    if w.simulated_layers == 0 || w.simulated_layers > moe_layers {
        e.push(ParamError::new(
            format!("{p}.simulated_layers"),
            format!("must be in 1..={moe_layers}, got {}", w.simulated_layers),
        ));
    }
    if w.deployed_layers > llm.layers {
        e.push(ParamError::new(
            format!("{p}.deployed_layers"),
            format!(
                "must be ≤ {} (0: all), got {}",
                llm.layers, w.deployed_layers
            ),
        ));
    }
    e
}
