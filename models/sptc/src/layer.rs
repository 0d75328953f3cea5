//! The kernel sequence of one decoder layer per method: attention (dense QKV GEMM, FlashAttention-
//! style core, dense O GEMM), the router (gate GEMM + top-k), then the MoE FFN as each system runs
//! it — Transformers' per-expert loop (gather, GEMMs, scatter) for the dense, weight-only 2:4,
//! VENOM and Sputnik kernels, MegaBlocks' permute → grouped GEMMs → unpermute, vLLM's fused MoE
//! (align → grouped GEMMs reading tokens in place → sum), or Samoyeds' index build → dual-side
//! sparse GEMMs reading tokens in place → combine. Shared experts and dense FFN layers run on all
//! tokens with each method's weight format.

use llm::LlmShape;

use super::router::Routing;
use super::tiling::{
    ELEM, KernelPlan, Method, SparsityFormat, attention_plan, elementwise_plan, gemm_plan,
    padded_cols,
};

/// Which part of the layer a kernel belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Part {
    /// QKV, attention core, output projection.
    Attention,
    /// Router, experts, shared experts, data movement around them.
    Moe,
}

/// Tokens of one forward step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Sequences in the batch.
    pub seqs: usize,
    /// New tokens per sequence (prompt length in prefill, 1 in decode).
    pub q_len: usize,
    /// Context each sequence attends to (including the new tokens).
    pub ctx: usize,
}

impl Step {
    /// Tokens processed.
    pub fn tokens(&self) -> usize {
        self.seqs * self.q_len
    }
}

/// Attention kernels of one layer.
pub fn attention_kernels(llm: &LlmShape, step: &Step) -> Vec<(Part, KernelPlan)> {
    let f = SparsityFormat::default();
    let t = step.tokens();
    let hd = llm.head_dim() as usize;
    let d = llm.hidden as usize;
    let qkv = (llm.heads + 2 * llm.kv_heads) as usize * hd;
    vec![
        (
            Part::Attention,
            gemm_plan("attn.qkv", Method::Dense, &f, qkv, d, &[t]),
        ),
        (
            Part::Attention,
            attention_plan(
                "attn.core",
                step.seqs,
                llm.heads as usize,
                llm.kv_heads as usize,
                hd,
                step.q_len,
                step.ctx,
            ),
        ),
        (
            Part::Attention,
            gemm_plan(
                "attn.o",
                Method::Dense,
                &f,
                d,
                llm.heads as usize * hd,
                &[t],
            ),
        ),
    ]
}

/// FFN kernels of one (shared or dense) expert of width `ffn` applied to all `t` tokens.
fn all_token_ffn(
    llm: &LlmShape,
    method: Method,
    fmt: &SparsityFormat,
    ffn: usize,
    t: usize,
    out: &mut Vec<(Part, KernelPlan)>,
) {
    let d = llm.hidden as usize;
    let up = if llm.gated_ffn { 2 * ffn } else { ffn };
    let kind = if matches!(method, Method::ActivationSparse | Method::FusedMoe) {
        Method::Dense
    } else {
        method
    };
    out.push((Part::Moe, gemm_plan("ffn.up", kind, fmt, up, d, &[t])));
    let slots = padded_cols(kind, fmt, t) as f64;
    out.push((
        Part::Moe,
        elementwise_plan(
            "ffn.act",
            slots * up as f64 * ELEM,
            slots * ffn as f64 * ELEM,
        ),
    ));
    out.push((Part::Moe, gemm_plan("ffn.down", kind, fmt, d, ffn, &[t])));
}

/// MoE (or dense FFN) kernels of layer `layer` for `method`, given the layer's routing;
/// `gather_conflict` is the bank-conflict degree V:N:M-style GEMMs pay on their token fragments.
pub fn moe_kernels(
    llm: &LlmShape,
    layer: u32,
    method: Method,
    fmt: &SparsityFormat,
    routing: Option<&Routing>,
    t: usize,
    gather_conflict: f64,
) -> Vec<(Part, KernelPlan)> {
    let mut out = moe_plans(llm, layer, method, fmt, routing, t);
    if method.vector_selected() {
        for (_, p) in &mut out {
            p.gather_conflict = gather_conflict;
        }
    }
    out
}

fn moe_plans(
    llm: &LlmShape,
    layer: u32,
    method: Method,
    fmt: &SparsityFormat,
    routing: Option<&Routing>,
    t: usize,
) -> Vec<(Part, KernelPlan)> {
    let mut out = Vec::new();
    let d = llm.hidden as usize;
    let (Some(m), Some(routing)) = (
        llm.moe.as_ref().filter(|_| llm.is_moe_layer(layer)),
        routing,
    ) else {
        all_token_ffn(llm, method, fmt, llm.ffn as usize, t, &mut out);
        return out;
    };
    let e = m.experts as usize;
    let k = m.top_k as usize;
    let f = m.expert_ffn as usize;
    let up = if llm.gated_ffn { 2 * f } else { f };
    let dn = |n: usize| (n * d) as f64 * ELEM;
    out.push((
        Part::Moe,
        gemm_plan("router.gate", Method::Dense, fmt, e, d, &[t]),
    ));
    out.push((
        Part::Moe,
        elementwise_plan("router.topk", (t * e * 4) as f64, (t * k * 8) as f64),
    ));
    let counts = routing.counts();
    let routed: usize = counts.iter().sum();
    match method {
        Method::Dense | Method::WeightSparse | Method::Venom | Method::Sputnik => {
            for &n in counts.iter().filter(|&&n| n > 0) {
                out.push((
                    Part::Moe,
                    elementwise_plan("moe.gather", dn(n) + n as f64 * 4.0, dn(n)),
                ));
                out.push((Part::Moe, gemm_plan("moe.up", method, fmt, up, d, &[n])));
                out.push((
                    Part::Moe,
                    elementwise_plan("moe.act", (n * up) as f64 * ELEM, (n * f) as f64 * ELEM),
                ));
                out.push((Part::Moe, gemm_plan("moe.down", method, fmt, d, f, &[n])));
                out.push((
                    Part::Moe,
                    elementwise_plan("moe.scatter_add", 2.0 * dn(n), dn(n)),
                ));
            }
        }
        Method::ActivationSparse => {
            let p: usize = counts.iter().map(|&c| padded_cols(method, fmt, c)).sum();
            out.push((
                Part::Moe,
                elementwise_plan("moe.permute", dn(routed) + routed as f64 * 4.0, dn(p)),
            ));
            out.push((Part::Moe, gemm_plan("moe.up", method, fmt, up, d, &counts)));
            out.push((
                Part::Moe,
                elementwise_plan("moe.act", (p * up) as f64 * ELEM, (p * f) as f64 * ELEM),
            ));
            out.push((Part::Moe, gemm_plan("moe.down", method, fmt, d, f, &counts)));
            out.push((
                Part::Moe,
                elementwise_plan("moe.unpermute", dn(routed), dn(t)),
            ));
        }
        Method::FusedMoe => {
            // moe_align_block_size: sorted token ids padded to 64 per expert; the GEMMs read the
            // tokens in place; moe_sum adds the top-k outputs of each token.
            let p: usize = counts.iter().map(|&c| padded_cols(method, fmt, c)).sum();
            out.push((
                Part::Moe,
                elementwise_plan("moe.align", (routed * 4) as f64, p as f64 * 4.0),
            ));
            out.push((Part::Moe, gemm_plan("moe.up", method, fmt, up, d, &counts)));
            out.push((
                Part::Moe,
                elementwise_plan("moe.act", (p * up) as f64 * ELEM, (p * f) as f64 * ELEM),
            ));
            out.push((Part::Moe, gemm_plan("moe.down", method, fmt, d, f, &counts)));
            out.push((Part::Moe, elementwise_plan("moe.sum", dn(routed), dn(t))));
        }
        Method::Samoyeds => {
            let p: usize = counts.iter().map(|&c| padded_cols(method, fmt, c)).sum();
            out.push((
                Part::Moe,
                elementwise_plan("moe.index", (routed * 8) as f64, p as f64 * 4.25),
            ));
            out.push((Part::Moe, gemm_plan("moe.up", method, fmt, up, d, &counts)));
            out.push((
                Part::Moe,
                elementwise_plan("moe.act", (p * up) as f64 * ELEM, (p * f) as f64 * ELEM),
            ));
            out.push((Part::Moe, gemm_plan("moe.down", method, fmt, d, f, &counts)));
            out.push((
                Part::Moe,
                elementwise_plan("moe.combine", dn(routed), dn(t)),
            ));
        }
    }
    let shared_ffn = if m.shared_ffn > 0 {
        m.shared_ffn
    } else {
        m.expert_ffn
    } as usize;
    for _ in 0..m.shared_experts {
        all_token_ffn(llm, method, fmt, shared_ffn, t, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::KernelStats;
    use presets::LLM;

    #[test]
    fn every_method_does_the_same_useful_expert_work() {
        let llm: LlmShape =
            serde_norway::from_str(LLM.iter().find(|(n, _)| *n == "qwen2-moe").unwrap().1).unwrap();
        let mut rng = sim::rng::stream(5, "r");
        let routing = super::super::router::route(256, 60, 4, &Default::default(), &mut rng);
        let flops = |m: Method| -> f64 {
            moe_kernels(
                &llm,
                1,
                m,
                &SparsityFormat::default(),
                Some(&routing),
                256,
                1.0,
            )
            .iter()
            .map(|(_, p)| KernelStats::of(p).flops)
            .sum()
        };
        let dense = flops(Method::Dense);
        for m in Method::ALL {
            assert!((flops(m) / dense - 1.0).abs() < 1e-9, "{m:?}");
        }
    }
}
