//! Computation graphs of LLM inference (prefill, decode with a KV cache) and training steps,
//! generated from a [`LlmShape`] for one device of a tensor- and expert-parallel group.
//!
//! Per layer the inference graphs have an attention operator (reads the layer's attention weights
//! and its KV cache, writes the new KV entries) and an FFN operator (reads the dense FFN weights,
//! or the shared experts plus each routed expert that received tokens). Activations are bf16.

use rand::seq::index::sample;
use sim::rng::Rng;

use super::graph::{Graph, TensorId, TensorKind};
use llm::LlmShape;

/// Bytes of one bf16 activation element.
const ACT_BYTES: u64 = 2;
/// Bytes per parameter of mixed-precision Adam state beyond the bf16 weights: fp32 master copy,
/// first and second moments (ZeRO, Rajbhandari et al. 2020, §3.1: 16Ψ bytes in total including
/// the 2Ψ weights and 2Ψ gradients).
const ADAM_BYTES_PER_PARAM: u64 = 12;
/// Saved activation bytes per token per unit of hidden width of one layer, with flash attention
/// and sequence parallelism (Korthikanti et al. 2022, "Reducing Activation Recomputation", Table 2:
/// 34·s·b·h/t bytes per layer without the 5·a·s/h attention-score term).
const SAVED_ACT_BYTES_PER_TOKEN_HIDDEN: u64 = 34;

/// How one model is split over the devices of a group: this device holds `1/tensor` of every
/// dense matrix and `1/expert` of the routed experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharding {
    /// Tensor-parallel degree.
    pub tensor: u32,
    /// Expert-parallel degree (MoE models).
    pub expert: u32,
}

/// A shape as seen by one device of a [`Sharding`].
struct Shard<'a> {
    s: &'a LlmShape,
    tp: u64,
    ep: u64,
}

impl Shard<'_> {
    fn bytes(&self, params: u64) -> u64 {
        (params as f64 * self.s.quant.bits_per_weight() / 8.0).ceil() as u64
    }
    fn attn_params(&self) -> u64 {
        self.s.attention_params() / self.tp
    }
    fn moe_routed(&self, layer: u32) -> Option<(u32, u32, u64)> {
        let m = self.s.moe.as_ref()?;
        self.s
            .is_moe_layer(layer)
            .then(|| (m.experts, m.top_k, self.s.expert_params()))
    }
    /// FFN parameters besides the routed experts (dense FFN, or shared experts + router).
    fn ffn_fixed_params(&self, layer: u32) -> u64 {
        match self.moe_routed(layer) {
            Some((_, k, e)) => (self.s.ffn_params_active(layer) - u64::from(k) * e) / self.tp,
            None => self.s.ffn_params_stored(layer) / self.tp,
        }
    }
    fn local_experts(&self, experts: u32) -> u32 {
        (u64::from(experts) / self.ep) as u32
    }
    fn kv_bytes_per_token_layer(&self) -> f64 {
        let split = if self.s.mla_kv_dim > 0 {
            1.0
        } else {
            self.tp as f64
        };
        self.s.kv_bytes_per_token_layer() / split
    }
    fn attn_flops(&self, tokens: u64, context: u64) -> f64 {
        (2.0 * tokens as f64 * self.s.attention_params() as f64
            + self.s.layer_attention_flops(tokens, context))
            / self.tp as f64
    }
    fn vocab_params(&self) -> u64 {
        self.s.vocab * self.s.hidden / self.tp
    }
}

/// Per-layer weight tensors of an inference graph.
struct LayerWeights {
    attn: TensorId,
    ffn: TensorId,
    experts: Vec<TensorId>,
}

/// The weight tensors of an inference graph.
struct Weights {
    embed: TensorId,
    head: TensorId,
    layers: Vec<LayerWeights>,
}

fn weights(g: &mut Graph, sh: &Shard) -> Weights {
    let embed = g.tensor(
        "embed",
        sh.bytes(sh.vocab_params()),
        TensorKind::Weight,
        true,
    );
    let head = if sh.s.tied_embeddings {
        embed
    } else {
        g.tensor(
            "lm_head",
            sh.bytes(sh.vocab_params()),
            TensorKind::Weight,
            true,
        )
    };
    let layers = (0..sh.s.layers)
        .map(|l| LayerWeights {
            attn: g.tensor(
                format!("l{l}.w_attn"),
                sh.bytes(sh.attn_params()),
                TensorKind::Weight,
                true,
            ),
            ffn: g.tensor(
                format!("l{l}.w_ffn"),
                sh.bytes(sh.ffn_fixed_params(l)),
                TensorKind::Weight,
                true,
            ),
            experts: match sh.moe_routed(l) {
                Some((n, _, e)) => (0..sh.local_experts(n))
                    .map(|k| {
                        g.tensor(
                            format!("l{l}.expert{k}"),
                            sh.bytes(e),
                            TensorKind::Weight,
                            true,
                        )
                    })
                    .collect(),
                None => Vec::new(),
            },
        })
        .collect();
    Weights {
        embed,
        head,
        layers,
    }
}

fn shard<'a>(s: &'a LlmShape, p: Sharding) -> Shard<'a> {
    Shard {
        s,
        tp: u64::from(p.tensor.max(1)),
        ep: u64::from(p.expert.max(1)),
    }
}

/// FFN FLOPs of one layer on this device when `tokens` local tokens pass through the fixed part
/// and `routed_pairs` (token, expert) pairs land on its experts.
fn ffn_flops(sh: &Shard, layer: u32, tokens: u64, routed_pairs: u64) -> f64 {
    let routed = sh.moe_routed(layer).map_or(0, |(_, _, e)| e);
    2.0 * (tokens * sh.ffn_fixed_params(layer) + routed_pairs * routed) as f64
}

/// FLOPs of the attention output projection for `tokens` tokens on this device.
fn out_proj_flops(sh: &Shard, tokens: u64) -> f64 {
    2.0 * (tokens * u64::from(sh.s.heads) * sh.s.head_dim() * sh.s.hidden / sh.tp) as f64
}

/// Bytes of the Q, K and V projections of `tokens` tokens on this device (the attention
/// operator's workspace; the score tiles of a fused flash-attention kernel are on-chip and not
/// counted).
fn qkv_bytes(sh: &Shard, tokens: u64) -> u64 {
    let hd = sh.s.head_dim();
    let width = (u64::from(sh.s.heads) + 2 * u64::from(sh.s.kv_heads)) * hd / sh.tp;
    tokens * width * ACT_BYTES
}

/// Fraction of an FFN's matmul FLOPs in its up (and gate) projections.
fn up_frac(s: &LlmShape) -> f64 {
    if s.gated_ffn { 2.0 / 3.0 } else { 0.5 }
}

/// Bytes of the FFN intermediate (gate and up projections, or the single up projection) when
/// `tokens` tokens pass the fixed part and `routed_pairs` (token, expert) pairs the local experts.
fn ffn_workspace_bytes(sh: &Shard, layer: u32, tokens: u64, routed_pairs: u64) -> u64 {
    let per_width = if sh.s.gated_ffn { 2 } else { 1 } * ACT_BYTES;
    match &sh.s.moe {
        Some(m) if sh.s.is_moe_layer(layer) => {
            let shared = if m.shared_ffn > 0 {
                m.shared_ffn
            } else {
                m.expert_ffn
            };
            per_width
                * (tokens * u64::from(m.shared_experts) * shared / sh.tp
                    + routed_pairs * m.expert_ffn)
        }
        _ => per_width * tokens * sh.s.ffn / sh.tp,
    }
}

/// Adds the prefill of `prompt` tokens for `batch` sequences to `g`, in chunks of `chunk` tokens
/// (the last one shorter; `chunk` ≥ `prompt` = one pass): per chunk and layer an attention operator
/// (reads the layer's cache of the earlier chunks, writes the Q/K/V workspace and the chunk's KV),
/// its output projection, and the FFN as an up projection (writes the intermediate workspace) and a
/// down projection; then the logits of the last position. With experts, every local expert receives
/// its mean share of the `expert`-way group's tokens. Returns each layer's KV chunks and the logits.
fn prefill_into(
    g: &mut Graph,
    sh: &Shard,
    w: &Weights,
    p: PrefillShape,
    persistent_logits: bool,
) -> (Vec<Vec<TensorId>>, TensorId) {
    let s = sh.s;
    let (prompt, batch) = (p.prompt, p.batch);
    let chunk = p.chunk.clamp(1, prompt);
    let chunks = prompt.div_ceil(chunk);
    let mut kvs: Vec<Vec<TensorId>> = vec![Vec::new(); w.layers.len()];
    let mut last = None;
    for c in 0..chunks {
        let done = c * chunk;
        let len = chunk.min(prompt - done);
        // names of a one-pass prefill keep no chunk prefix
        let pre = if chunks == 1 {
            String::new()
        } else {
            format!("c{c}.")
        };
        last = Some(prefill_chunk(g, sh, w, &mut kvs, &pre, (done, len), batch));
    }
    let x = last.expect("a prompt has at least one token (validated)");
    let logits = g.tensor(
        "logits",
        batch * s.vocab / sh.tp * ACT_BYTES,
        TensorKind::Logits,
        persistent_logits,
    );
    g.op(
        "lm_head",
        2.0 * (batch * sh.vocab_params()) as f64,
        vec![x, w.head],
        vec![logits],
        vec![],
    );
    (kvs, logits)
}

/// One prefill chunk of `len` tokens per sequence after `done` earlier ones (see
/// [`prefill_into`]); appends the chunk's KV per layer to `kvs`, returns the chunk's last hidden
/// state.
fn prefill_chunk(
    g: &mut Graph,
    sh: &Shard,
    w: &Weights,
    kvs: &mut [Vec<TensorId>],
    pre: &str,
    (done, len): (u64, u64),
    batch: u64,
) -> TensorId {
    let s = sh.s;
    let tokens = len * batch;
    let x_bytes = tokens * s.hidden * ACT_BYTES;
    let mut x = g.tensor(format!("{pre}x0"), x_bytes, TensorKind::Activation, false);
    g.op(format!("{pre}embed"), 0.0, vec![w.embed], vec![x], vec![]);
    for (l, lw) in w.layers.iter().enumerate() {
        let l32 = l as u32;
        let kv = g.tensor(
            format!("{pre}l{l}.kv"),
            (tokens as f64 * sh.kv_bytes_per_token_layer()).ceil() as u64,
            TensorKind::KvCache,
            true,
        );
        let qkv = g.tensor(
            format!("{pre}l{l}.qkv"),
            qkv_bytes(sh, tokens),
            TensorKind::Workspace,
            false,
        );
        let out = out_proj_flops(sh, tokens);
        // causal attention: the chunk's tokens see the earlier chunks and, on average, half of
        // their own chunk
        let mut ins = vec![x, lw.attn];
        ins.extend(&kvs[l]);
        g.op(
            format!("{pre}l{l}.attn"),
            sh.attn_flops(tokens, done + len / 2) - out,
            ins,
            vec![qkv, kv],
            vec![],
        );
        let mid = g.tensor(
            format!("{pre}l{l}.x_mid"),
            x_bytes,
            TensorKind::Activation,
            false,
        );
        g.op(
            format!("{pre}l{l}.attn_out"),
            out,
            vec![qkv, x, lw.attn],
            vec![mid],
            vec![],
        );
        let pairs = sh
            .moe_routed(l32)
            .map_or(0, |(_, k, _)| tokens * u64::from(k));
        let h = g.tensor(
            format!("{pre}l{l}.ffn_h"),
            ffn_workspace_bytes(sh, l32, tokens, pairs),
            TensorKind::Workspace,
            false,
        );
        let flops = ffn_flops(sh, l32, tokens, pairs);
        let mut ins = vec![mid, lw.ffn];
        ins.extend(&lw.experts);
        g.op(
            format!("{pre}l{l}.ffn_up"),
            flops * up_frac(s),
            ins.clone(),
            vec![h],
            vec![],
        );
        let next = g.tensor(
            format!("{pre}l{}.x", l + 1),
            x_bytes,
            TensorKind::Activation,
            false,
        );
        ins.push(h);
        g.op(
            format!("{pre}l{l}.ffn_down"),
            flops * (1.0 - up_frac(s)),
            ins,
            vec![next],
            vec![],
        );
        kvs[l].push(kv);
        x = next;
    }
    x
}

/// Prompt shape of a prefill.
#[derive(Debug, Clone, Copy)]
struct PrefillShape {
    /// Prompt tokens per sequence.
    prompt: u64,
    /// Sequences.
    batch: u64,
    /// Tokens per chunk (≥ `prompt`: one pass).
    chunk: u64,
}

/// Prefill of `prompt` tokens for `batch` sequences (see [`prefill_into`]): writes every layer's
/// KV cache and the logits of the last position.
pub fn prefill(s: &LlmShape, par: Sharding, prompt: u64, batch: u64) -> Graph {
    let sh = shard(s, par);
    let mut g = Graph::default();
    let w = weights(&mut g, &sh);
    let shape = PrefillShape {
        prompt,
        batch,
        chunk: prompt,
    };
    prefill_into(&mut g, &sh, &w, shape, true);
    g
}

/// `steps` decode steps of `batch` sequences that already hold `context` tokens of KV cache. Each
/// step reads every layer's cached KV plus the entries of the earlier steps, and appends its own.
/// With experts, the `expert`-way group's `batch·expert` tokens are routed to `top_k` distinct
/// experts each, drawn uniformly from `rng` (the trace the compile pass is given); only the local
/// experts that receive tokens are read.
pub fn decode(
    s: &LlmShape,
    par: Sharding,
    context: u64,
    batch: u64,
    steps: u32,
    rng: &mut Rng,
) -> Graph {
    let sh = shard(s, par);
    let mut g = Graph::default();
    let w = weights(&mut g, &sh);
    let kv_tok = sh.kv_bytes_per_token_layer();
    let past: Vec<Vec<TensorId>> = (0..s.layers)
        .map(|l| {
            vec![g.tensor(
                format!("l{l}.kv_past"),
                (batch as f64 * context as f64 * kv_tok).ceil() as u64,
                TensorKind::KvCache,
                true,
            )]
        })
        .collect();
    let steps = DecodeSteps {
        context,
        batch,
        steps,
    };
    decode_into(&mut g, &sh, &w, &past, None, steps, rng);
    g
}

/// A whole request: the prefill of a `prompt`-token prompt for `batch` sequences (with its
/// workspace and KV growth; in chunks of `chunk` tokens, 0 = one pass), then `steps` decode steps
/// over the KV cache it wrote. The first decode step reads the prefill's logits.
pub fn request(
    s: &LlmShape,
    par: Sharding,
    (prompt, chunk): (u64, u64),
    batch: u64,
    steps: u32,
    rng: &mut Rng,
) -> Graph {
    let sh = shard(s, par);
    let mut g = Graph::default();
    let w = weights(&mut g, &sh);
    let shape = PrefillShape {
        prompt,
        batch,
        chunk: if chunk == 0 { prompt } else { chunk },
    };
    let (kvs, logits) = prefill_into(&mut g, &sh, &w, shape, false);
    let steps = DecodeSteps {
        context: prompt,
        batch,
        steps,
    };
    decode_into(&mut g, &sh, &w, &kvs, Some(logits), steps, rng);
    g
}

/// Shape of a run of decode steps.
#[derive(Debug, Clone, Copy)]
struct DecodeSteps {
    /// Tokens already in each sequence's KV cache.
    context: u64,
    /// Sequences.
    batch: u64,
    /// Steps.
    steps: u32,
}

/// Adds decode steps over the per-layer caches `past` to `g` (see [`decode`]); the first step's
/// embedding reads `prev_logits` when given.
fn decode_into(
    g: &mut Graph,
    sh: &Shard,
    w: &Weights,
    past: &[Vec<TensorId>],
    mut prev_logits: Option<TensorId>,
    d: DecodeSteps,
    rng: &mut Rng,
) {
    let s = sh.s;
    let batch = d.batch;
    let kv_tok = sh.kv_bytes_per_token_layer();
    let mut new_kv: Vec<Vec<TensorId>> = vec![Vec::new(); s.layers as usize];
    let x_bytes = batch * s.hidden * ACT_BYTES;
    for step in 0..d.steps {
        let mut x = g.tensor(
            format!("s{step}.x0"),
            x_bytes,
            TensorKind::Activation,
            false,
        );
        let mut ins = vec![w.embed];
        ins.extend(prev_logits);
        g.op(format!("s{step}.embed"), 0.0, ins, vec![x], vec![]);
        for (l, lw) in w.layers.iter().enumerate() {
            let l32 = l as u32;
            let kv = g.tensor(
                format!("s{step}.l{l}.kv"),
                (batch as f64 * kv_tok).ceil() as u64,
                TensorKind::KvCache,
                true,
            );
            let mid = g.tensor(
                format!("s{step}.l{l}.x_mid"),
                x_bytes,
                TensorKind::Activation,
                false,
            );
            let mut ins = vec![x, lw.attn];
            ins.extend(&past[l]);
            ins.extend(&new_kv[l]);
            let ctx = d.context + u64::from(step) + 1;
            g.op(
                format!("s{step}.l{l}.attn"),
                sh.attn_flops(batch, ctx),
                ins,
                vec![mid, kv],
                vec![],
            );
            new_kv[l].push(kv);
            let next = g.tensor(
                format!("s{step}.l{}.x", l + 1),
                x_bytes,
                TensorKind::Activation,
                false,
            );
            let mut ins = vec![mid, lw.ffn];
            let mut pairs = 0;
            if let Some((n, k, _)) = sh.moe_routed(l32) {
                let local = sh.local_experts(n) as usize;
                let mut hits = vec![0u64; local];
                for _ in 0..batch * sh.ep {
                    for e in sample(rng, n as usize, k as usize) {
                        if e < local {
                            hits[e] += 1;
                        }
                    }
                }
                pairs = hits.iter().sum();
                ins.extend(
                    hits.iter()
                        .zip(&lw.experts)
                        .filter(|(h, _)| **h > 0)
                        .map(|(_, &t)| t),
                );
            }
            g.op(
                format!("s{step}.l{l}.ffn"),
                ffn_flops(sh, l32, batch, pairs),
                ins,
                vec![next],
                vec![],
            );
            x = next;
        }
        let logits = g.tensor(
            format!("s{step}.logits"),
            batch * s.vocab / sh.tp * ACT_BYTES,
            TensorKind::Logits,
            false,
        );
        g.op(
            format!("s{step}.lm_head"),
            2.0 * (batch * sh.vocab_params()) as f64,
            vec![x, w.head],
            vec![logits],
            vec![],
        );
        prev_logits = Some(logits);
    }
}

/// One training step on `batch` sequences of `seq` tokens: forward (saving each layer's
/// activations), loss and LM-head gradient, backward split into activation gradients and weight
/// gradients per layer, and a mixed-precision Adam update per layer that modifies the weights and
/// optimizer state in place. Experts are counted at their mean load, as in [`prefill`].
pub fn training(s: &LlmShape, par: Sharding, seq: u64, batch: u64) -> Graph {
    let sh = shard(s, par);
    let mut g = Graph::default();
    let tokens = seq * batch;
    let x_bytes = tokens * s.hidden * ACT_BYTES;
    let layer_params: Vec<u64> = (0..s.layers)
        .map(|l| {
            let routed = sh
                .moe_routed(l)
                .map_or(0, |(n, _, e)| u64::from(sh.local_experts(n)) * e);
            sh.attn_params() + sh.ffn_fixed_params(l) + routed
        })
        .collect();
    let embed = g.tensor(
        "embed",
        sh.bytes(sh.vocab_params()),
        TensorKind::Weight,
        true,
    );
    let head = g.tensor(
        "lm_head",
        sh.bytes(sh.vocab_params()),
        TensorKind::Weight,
        true,
    );
    let head_opt = g.tensor(
        "lm_head.adam",
        sh.vocab_params() * ADAM_BYTES_PER_PARAM,
        TensorKind::OptimizerState,
        true,
    );
    let w: Vec<TensorId> = layer_params
        .iter()
        .enumerate()
        .map(|(l, &p)| g.tensor(format!("l{l}.w"), sh.bytes(p), TensorKind::Weight, true))
        .collect();
    let opt: Vec<TensorId> = layer_params
        .iter()
        .enumerate()
        .map(|(l, &p)| {
            g.tensor(
                format!("l{l}.adam"),
                p * ADAM_BYTES_PER_PARAM,
                TensorKind::OptimizerState,
                true,
            )
        })
        .collect();
    let mut x = g.tensor("x0", x_bytes, TensorKind::Activation, false);
    g.op("embed", 0.0, vec![embed], vec![x], vec![]);
    let mut saved = Vec::new();
    let mut fwd_flops = Vec::new();
    for l in 0..s.layers {
        let pairs = sh
            .moe_routed(l)
            .map_or(0, |(_, k, _)| tokens * u64::from(k));
        let f = sh.attn_flops(tokens, seq / 2) + ffn_flops(&sh, l, tokens, pairs);
        let act = g.tensor(
            format!("l{l}.saved"),
            SAVED_ACT_BYTES_PER_TOKEN_HIDDEN * tokens * s.hidden / sh.tp,
            TensorKind::Activation,
            false,
        );
        let next = g.tensor(
            format!("l{}.x", l + 1),
            x_bytes,
            TensorKind::Activation,
            false,
        );
        g.op(
            format!("l{l}.fwd"),
            f,
            vec![x, w[l as usize]],
            vec![next, act],
            vec![],
        );
        saved.push(act);
        fwd_flops.push(f);
        x = next;
    }
    let mut dx = g.tensor(
        format!("l{}.dx", s.layers),
        x_bytes,
        TensorKind::Activation,
        false,
    );
    let head_grad = g.tensor(
        "lm_head.grad",
        sh.bytes(sh.vocab_params()),
        TensorKind::Gradient,
        false,
    );
    let head_flops = 2.0 * (tokens * sh.vocab_params()) as f64;
    g.op(
        "loss",
        3.0 * head_flops,
        vec![x, head],
        vec![dx, head_grad],
        vec![],
    );
    g.op(
        "lm_head.adam",
        0.0,
        vec![head_grad],
        vec![],
        vec![head, head_opt],
    );
    for l in (0..s.layers as usize).rev() {
        let dx_next = g.tensor(format!("l{l}.dx"), x_bytes, TensorKind::Activation, false);
        g.op(
            format!("l{l}.bwd_x"),
            fwd_flops[l],
            vec![dx, w[l], saved[l]],
            vec![dx_next],
            vec![],
        );
        let grad = g.tensor(
            format!("l{l}.grad"),
            sh.bytes(layer_params[l]),
            TensorKind::Gradient,
            false,
        );
        let matmul = fwd_flops[l] - sh.s.layer_attention_flops(tokens, seq / 2) / sh.tp as f64;
        g.op(
            format!("l{l}.bwd_w"),
            matmul,
            vec![dx, saved[l]],
            vec![grad],
            vec![],
        );
        g.op(
            format!("l{l}.adam"),
            0.0,
            vec![grad],
            vec![],
            vec![w[l], opt[l]],
        );
        dx = dx_next;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifetime::no_offload_peak;
    use presets::LLM;

    pub(crate) fn preset(name: &str) -> LlmShape {
        serde_norway::from_str(LLM.iter().find(|(n, _)| *n == name).unwrap().1).unwrap()
    }

    const ONE: Sharding = Sharding {
        tensor: 1,
        expert: 1,
    };

    #[test]
    fn prefill_weights_and_kv_match_the_shape() {
        let s = preset("llama-3-8b");
        let g = prefill(&s, ONE, 1024, 1);
        assert!(g.problems().is_empty());
        let w: u64 = g
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::Weight)
            .map(|t| t.bytes)
            .sum();
        assert!(
            (w as f64 / s.weight_bytes() - 1.0).abs() < 1e-6,
            "{w} vs {}",
            s.weight_bytes()
        );
        let kv: u64 = g
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::KvCache)
            .map(|t| t.bytes)
            .sum();
        assert_eq!(kv as f64, 1024.0 * s.kv_bytes_per_token());
        // 2 FLOPs per parameter per token for the matmuls, plus attention
        let matmul = 2.0 * 1024.0 * (s.total_params() - s.embedding_params()) as f64;
        assert!(
            g.flops() > 0.95 * matmul && g.flops() < 1.3 * matmul,
            "{}",
            g.flops() / matmul
        );
        assert_eq!(g.ops.len(), 2 + 4 * 32);
    }

    #[test]
    fn decode_reads_the_whole_cache_and_appends_one_entry_per_step() {
        let s = preset("llama-3-8b");
        let mut rng = sim::rng::stream(1, "t");
        let g = decode(&s, ONE, 4096, 2, 3, &mut rng);
        assert!(g.problems().is_empty());
        let attn = g.ops.iter().find(|o| o.name == "s2.l5.attn").unwrap();
        // x, weights, past KV, and the two earlier steps' entries
        assert_eq!(attn.inputs.len(), 5);
        let past = &g.tensors[attn.inputs[2]];
        assert_eq!(
            past.bytes as f64,
            2.0 * 4096.0 * s.kv_bytes_per_token_layer()
        );
        let order: Vec<usize> = (0..g.ops.len()).collect();
        assert!(g.is_valid_order(&order));
    }

    #[test]
    fn moe_decode_reads_only_routed_local_experts_and_sharding_divides_weights() {
        let s = preset("deepseek-v3");
        let par = Sharding {
            tensor: 1,
            expert: 32,
        };
        let mut rng = sim::rng::stream(1, "t");
        let g = decode(&s, par, 1024, 4, 1, &mut rng);
        assert!(g.problems().is_empty());
        let experts = g
            .tensors
            .iter()
            .filter(|t| t.name.starts_with("l10.expert"))
            .count();
        assert_eq!(experts, 256 / 32);
        let ffn = g.ops.iter().find(|o| o.name == "s0.l10.ffn").unwrap();
        // 4·32 tokens × 8 experts over 256: each local expert is hit with probability 1-(1-8/256)^128 ≈ 0.98
        assert!(ffn.inputs.len() >= 2 + 4, "{}", ffn.inputs.len());
        let w: u64 = g
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::Weight)
            .map(|t| t.bytes)
            .sum();
        assert!(
            w as f64 > s.weight_bytes() / 32.0 && (w as f64) < s.weight_bytes() / 10.0,
            "{w}"
        );
        let mut rng2 = sim::rng::stream(1, "t");
        assert_eq!(
            g,
            decode(&s, par, 1024, 4, 1, &mut rng2),
            "deterministic for a seed"
        );
    }

    #[test]
    fn a_request_prefills_with_workspace_then_decodes_over_the_prefill_cache() {
        let s = preset("llama-3-8b");
        let mut rng = sim::rng::stream(1, "t");
        let g = request(&s, ONE, (1024, 0), 2, 3, &mut rng);
        assert!(g.problems().is_empty());
        let order: Vec<usize> = (0..g.ops.len()).collect();
        assert!(g.is_valid_order(&order));
        // the FFN intermediate: gate and up projections, bf16, for every prompt token
        let h = g.tensors.iter().find(|t| t.name == "l0.ffn_h").unwrap();
        assert_eq!(h.bytes, 2 * 1024 * 2 * s.ffn * 2);
        assert_eq!(h.kind, TensorKind::Workspace);
        // decode step 1 of layer 5 reads the layer's prefill cache and step 0's entry
        let kv = g.tensors.iter().position(|t| t.name == "l5.kv").unwrap();
        let attn = g.ops.iter().find(|o| o.name == "s1.l5.attn").unwrap();
        assert!(attn.inputs.contains(&kv));
        assert_eq!(attn.inputs.len(), 4);
        // the first decode step reads the prefill's logits
        let logits = g.tensors.iter().position(|t| t.name == "logits").unwrap();
        assert!(
            g.ops
                .iter()
                .any(|o| o.name == "s0.embed" && o.inputs.contains(&logits))
        );
        assert_eq!(g.ops.len(), 2 + 4 * 32 + 3 * (2 + 2 * 32));
    }

    #[test]
    fn a_chunked_prefill_keeps_the_cache_and_flops_and_lowers_the_peak() {
        let s = preset("llama-3-8b");
        let mut rng = sim::rng::stream(1, "t");
        let whole = request(&s, ONE, (4096, 0), 1, 2, &mut rng);
        let mut rng = sim::rng::stream(1, "t");
        let chunked = request(&s, ONE, (4096, 1024), 1, 2, &mut rng);
        assert!(chunked.problems().is_empty());
        let order: Vec<usize> = (0..chunked.ops.len()).collect();
        assert!(chunked.is_valid_order(&order));
        let kv = |g: &Graph| -> u64 {
            g.tensors
                .iter()
                .filter(|t| t.kind == TensorKind::KvCache)
                .map(|t| t.bytes)
                .sum()
        };
        assert_eq!(kv(&chunked), kv(&whole));
        // causal attention over chunks sums to the one-pass work: Σ len·(done + len/2) = prompt²/2
        let rel = (chunked.flops() - whole.flops()).abs() / whole.flops();
        assert!(rel < 1e-9, "{rel}");
        // chunk 3 of layer 7 reads the layer's three earlier chunks; decode reads all four
        let attn = chunked.ops.iter().find(|o| o.name == "c3.l7.attn").unwrap();
        assert_eq!(attn.inputs.len(), 2 + 3);
        let dec = chunked.ops.iter().find(|o| o.name == "s1.l7.attn").unwrap();
        assert_eq!(dec.inputs.len(), 2 + 4 + 1);
        // the workspace a layer holds is a quarter as large
        let whole_order: Vec<usize> = (0..whole.ops.len()).collect();
        assert!(no_offload_peak(&chunked, &order) < no_offload_peak(&whole, &whole_order));
    }

    #[test]
    fn training_has_forward_backward_and_in_place_updates() {
        let s = preset("llama-3-8b");
        let g = training(&s, ONE, 512, 1);
        assert!(g.problems().is_empty());
        let order: Vec<usize> = (0..g.ops.len()).collect();
        assert!(g.is_valid_order(&order));
        // fwd + bwd ≈ 3× forward FLOPs
        let fwd: f64 = g
            .ops
            .iter()
            .filter(|o| o.name.ends_with(".fwd"))
            .map(|o| o.flops)
            .sum();
        let bwd: f64 = g
            .ops
            .iter()
            .filter(|o| o.name.contains(".bwd"))
            .map(|o| o.flops)
            .sum();
        assert!(bwd > 1.8 * fwd && bwd <= 2.0 * fwd);
        let opt: u64 = g
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::OptimizerState)
            .map(|t| t.bytes)
            .sum();
        // Adam state for every parameter but the (sparse) input embedding
        let trained = s.total_params() - s.vocab * s.hidden;
        assert!((opt as f64 / (12.0 * trained as f64) - 1.0).abs() < 1e-6);
    }
}
