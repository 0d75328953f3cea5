//! Parameters of the `supernode` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::hw::{Accelerator, Fabric};
use llm::LlmShape;

/// One device of a supernode running one LLM step with a memory-management strategy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupernodeParams {
    /// The accelerator (preset name under `models/presets/accel/`, inline, or a file).
    pub accel: Accelerator,
    /// The fabric to the pooled memory (preset under `models/presets/fabric/`).
    pub fabric: Fabric,
    /// The model (preset under `models/presets/llm/`).
    pub llm: LlmShape,
    /// How the model is split over the devices of its group.
    #[serde(default)]
    pub parallel: Parallel,
    /// What the step computes.
    pub workload: Workload,
    /// How device memory is managed.
    pub strategy: Strategy,
    /// Device-memory budget of `reactive` and `hyperoffload` as a fraction of the peak the step
    /// needs without offloading (capped at the HBM capacity), in (0, 1].
    #[serde(default = "one")]
    pub budget_frac: f64,
    /// Knobs of the HyperOffload compile pass.
    #[serde(default)]
    pub hyperoffload: HyperOffloadKnobs,
    /// Knobs of the `kv_offload` runtime baseline.
    #[serde(default)]
    pub kv_offload: KvOffloadKnobs,
    /// Record compute / transfer busy intervals and device memory use as a time series (Gantt).
    #[serde(default)]
    pub gantt: bool,
    /// Serve a user's request trace with this workload's batch (workload kind `request`): adds the
    /// `trace_*` metrics.
    #[serde(default)]
    pub request_trace: Option<RequestTrace>,
}

/// A request trace file (CSV or JSONL with `arrival_s`, `prompt_tokens`, `output_tokens`, as the
/// `mobile` family reads them), served first come, first served.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestTrace {
    /// The trace, relative to the working directory.
    pub file: String,
    /// Serve only its first rows (default: all).
    #[serde(default)]
    pub requests: Option<u64>,
}

fn one() -> f64 {
    1.0
}

/// Tensor- and expert-parallel degrees; this device holds one shard.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Parallel {
    /// Tensor-parallel degree (dense matrices, KV heads and vocabulary split this many ways).
    pub tensor: u32,
    /// Expert-parallel degree (routed experts split this many ways).
    pub expert: u32,
}

impl Default for Parallel {
    fn default() -> Self {
        Self {
            tensor: 1,
            expert: 1,
        }
    }
}

/// The step to simulate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Workload {
    /// Inference prefill of a prompt (writes the KV cache).
    Prefill {
        /// Prompt tokens per sequence.
        prompt_tokens: u64,
        /// Sequences.
        batch: u64,
    },
    /// Inference decode steps over an existing KV cache.
    Decode {
        /// Tokens already in each sequence's KV cache (up to millions).
        context_tokens: u64,
        /// Sequences decoded together.
        batch: u64,
        /// Tokens generated (one graph of `steps` decode steps).
        steps: u32,
    },
    /// A whole inference request: prefill of the prompt (with per-operator workspace and KV
    /// growth), then decode steps over the KV cache it wrote.
    Request {
        /// Prompt tokens per sequence (32k–1M for long-context serving).
        prompt_tokens: u64,
        /// Sequences served together.
        batch: u64,
        /// Decode steps after the prefill.
        decode_steps: u32,
        /// Prefill in chunks of this many tokens (chunked prefill; 0 = the whole prompt at once).
        #[serde(default)]
        chunk_tokens: u64,
    },
    /// One training step: forward, backward, optimizer.
    Training {
        /// Tokens per sequence.
        seq_len: u64,
        /// Sequences.
        batch: u64,
    },
}

/// Device-memory management strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Everything on the device; out-of-memory error when it does not fit.
    None,
    /// Runtime swapping: least-recently-used eviction on allocation failure, fetch on use.
    Reactive,
    /// Compile-time cache operators and execution-order refinement (the paper).
    Hyperoffload,
    /// What a serving runtime does without a compiler: every KV-cache and activation tensor is
    /// written to the pool after its use and fetched back a fixed number of operators before its
    /// next one; weights stay resident (FlexGen / ZeRO-Inference style KV offload).
    KvOffload,
    /// Unbounded device memory (the performance reference).
    Ideal,
}

impl Strategy {
    /// The name scenarios use.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Reactive => "reactive",
            Strategy::Hyperoffload => "hyperoffload",
            Strategy::KvOffload => "kv_offload",
            Strategy::Ideal => "ideal",
        }
    }
}

/// Knobs of the HyperOffload compile pass.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HyperOffloadKnobs {
    /// Minimum operators between a prefetch and its use.
    pub prefetch_distance: u32,
    /// Try the memory-aware execution-order refinement.
    pub refine_order: bool,
    /// Operators the refinement may look ahead in the original order.
    pub reorder_window: u32,
    /// Only tensors whose next use is at least this many operators ahead are offloaded
    /// (MindSpore's `select_distance`; 0 = any tensor the prepared operators do not need).
    pub select_distance: u32,
    /// At most this many distinct tensors are offloaded, those idle longest between uses
    /// (MindSpore's `select_num`; 0 = no limit).
    pub select_num: u32,
    /// Operators that must run after a tensor's last use before it is released to the pool (our
    /// reading of MindSpore's `release_distance`; 0 = as soon as room is needed).
    pub release_distance: u32,
    /// When set, search the smallest budget (≤ the `budget_frac` one) whose plan is estimated at
    /// most this fraction slower than the step without transfers (e.g. 0.02 = 2%).
    pub max_slowdown: Option<f64>,
    /// Hold `max_slowdown` also for the time to the first token and for the mean decode token,
    /// not only end to end (a served request's performance is both).
    pub per_phase_slowdown: bool,
}

impl Default for HyperOffloadKnobs {
    fn default() -> Self {
        Self {
            prefetch_distance: 2,
            refine_order: true,
            reorder_window: 16,
            select_distance: 0,
            select_num: 0,
            release_distance: 0,
            max_slowdown: None,
            per_phase_slowdown: false,
        }
    }
}

/// Knobs of the `kv_offload` baseline.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KvOffloadKnobs {
    /// Operators ahead of its use that an offloaded tensor is fetched back (4 = one prefill layer:
    /// attention, output projection, FFN up, FFN down; two decode layers).
    pub lookahead_ops: u32,
}

impl Default for KvOffloadKnobs {
    fn default() -> Self {
        Self { lookahead_ops: 4 }
    }
}

impl Validate for KvOffloadKnobs {
    fn validate(&self, c: &mut Checks) {
        c.at_least("lookahead_ops", self.lookahead_ops, 1);
    }
}

/// Longest context accepted, tokens (the paper's long-context regime is up to 1M).
pub const MAX_CONTEXT_TOKENS: u64 = 4 << 20;
/// Most decode steps in one graph.
pub const MAX_DECODE_STEPS: u32 = 64;

impl Validate for SupernodeParams {
    fn validate(&self, c: &mut Checks) {
        c.part("accel", &self.accel);
        c.part("fabric", &self.fabric);
        c.part("llm", &self.llm);
        if !(self.budget_frac > 0.0 && self.budget_frac <= 1.0) {
            c.fail(
                "budget_frac",
                format!("must be in (0, 1], got {}", self.budget_frac),
            );
        }
        c.part("parallel", &self.parallel);
        if let Some(t) = &self.request_trace {
            if !matches!(self.workload, Workload::Request { .. }) {
                c.fail(
                    "request_trace",
                    "needs workload kind `request` (its batch serves each traced request)",
                );
            }
            if t.file.trim().is_empty() {
                c.fail("request_trace.file", "must name a trace file");
            }
            if let Some(n) = t.requests {
                c.at_least("request_trace.requests", n, 1);
            }
        }
        if self.parallel.tensor > self.llm.kv_heads.max(1) && self.llm.mla_kv_dim == 0 {
            c.fail(
                "parallel.tensor",
                format!(
                    "must be ≤ the model's kv_heads ({}), got {}",
                    self.llm.kv_heads, self.parallel.tensor
                ),
            );
        }
        match &self.llm.moe {
            Some(m)
                if self.parallel.expert > 0 && !m.experts.is_multiple_of(self.parallel.expert) =>
            {
                c.fail(
                    "parallel.expert",
                    format!(
                        "must divide the model's experts ({}), got {}",
                        m.experts, self.parallel.expert
                    ),
                );
            }
            None if self.parallel.expert > 1 => c.fail(
                "parallel.expert",
                format!("must be 1 for a dense model, got {}", self.parallel.expert),
            ),
            _ => {}
        }
        c.part("workload", &self.workload);
        c.part("hyperoffload", &self.hyperoffload);
        c.part("kv_offload", &self.kv_offload);
    }
}

impl Validate for Parallel {
    fn validate(&self, c: &mut Checks) {
        c.at_least("tensor", self.tensor, 1);
        c.at_least("expert", self.expert, 1);
    }
}

impl Validate for Workload {
    fn validate(&self, c: &mut Checks) {
        match *self {
            Workload::Prefill {
                prompt_tokens,
                batch,
            } => {
                c.between("prompt_tokens", prompt_tokens, 1, MAX_CONTEXT_TOKENS);
                c.at_least("batch", batch, 1);
            }
            Workload::Decode {
                context_tokens,
                batch,
                steps,
            } => {
                c.at_least("batch", batch, 1);
                if context_tokens > MAX_CONTEXT_TOKENS {
                    c.fail(
                        "context_tokens",
                        format!("must be ≤ {MAX_CONTEXT_TOKENS}, got {context_tokens}"),
                    );
                }
                c.between("steps", steps, 1, MAX_DECODE_STEPS);
            }
            Workload::Request {
                prompt_tokens,
                batch,
                decode_steps,
                chunk_tokens,
            } => {
                c.between("prompt_tokens", prompt_tokens, 1, MAX_CONTEXT_TOKENS);
                c.at_least("batch", batch, 1);
                c.between("decode_steps", decode_steps, 1, MAX_DECODE_STEPS);
                c.between("chunk_tokens", chunk_tokens, 0, prompt_tokens);
            }
            Workload::Training { seq_len, batch } => {
                c.between("seq_len", seq_len, 1, MAX_CONTEXT_TOKENS);
                c.at_least("batch", batch, 1);
            }
        }
    }
}

impl Validate for HyperOffloadKnobs {
    fn validate(&self, c: &mut Checks) {
        if let Some(s) = self.max_slowdown {
            c.non_negative("max_slowdown", s);
        }
        c.at_least("reorder_window", self.reorder_window, 1);
    }
}
