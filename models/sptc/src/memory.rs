//! Device-memory footprint of an MoE model per kernel choice — weights in each method's storage
//! format (values + metadata), the KV cache, and the peak of the transient activations of one
//! decoder layer — and the largest batch that fits the GPU's memory.

use llm::LlmShape;

use super::tiling::{ELEM, Method, SparsityFormat, padded_cols, weight_row_bytes};

/// Bytes of each part of the footprint.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    /// Weights (and sparse metadata) of the deployed layers, embeddings and LM head.
    pub weights: f64,
    /// KV cache.
    pub kv: f64,
    /// Peak transient activations of one layer.
    pub activations: f64,
}

impl Footprint {
    /// Sum of the parts.
    pub fn total(&self) -> f64 {
        self.weights + self.kv + self.activations
    }
}

/// FFN weight bytes of one expert of intermediate width `ffn` (gate+up, then down) in `method`'s format.
fn ffn_bytes(llm: &LlmShape, method: Method, fmt: &SparsityFormat, ffn: u64) -> f64 {
    let d = llm.hidden as usize;
    let f = ffn as usize;
    let up_rows = if llm.gated_ffn { 2 * f } else { f };
    up_rows as f64 * weight_row_bytes(method, fmt, d) + d as f64 * weight_row_bytes(method, fmt, f)
}

/// Weight bytes of `layers` decoder layers plus embeddings and LM head (16-bit; only expert and
/// shared-expert FFNs take the sparse format, attention and router stay dense).
pub fn weight_bytes(llm: &LlmShape, method: Method, fmt: &SparsityFormat, layers: u32) -> f64 {
    let mut total = llm.embedding_params() as f64 * ELEM;
    for l in 0..layers {
        total += llm.attention_params() as f64 * ELEM;
        total += match &llm.moe {
            Some(m) if llm.is_moe_layer(l) => {
                let shared_ffn = if m.shared_ffn > 0 {
                    m.shared_ffn
                } else {
                    m.expert_ffn
                };
                (llm.hidden * u64::from(m.experts)) as f64 * ELEM
                    + f64::from(m.experts) * ffn_bytes(llm, method, fmt, m.expert_ffn)
                    + f64::from(m.shared_experts) * ffn_bytes(llm, method, fmt, shared_ffn)
            }
            _ => ffn_bytes(llm, method, fmt, llm.ffn),
        };
    }
    total
}

/// Peak transient activation bytes of one decoder layer for `tokens` tokens whose routing gives
/// `counts` tokens per expert. Dense and weight-only kernels follow the Transformers loop (one
/// expert's gathered copy and intermediates live at a time); MegaBlocks holds the permuted,
/// 128-padded copy and intermediates of all experts; Samoyeds holds index lists and the
/// 64-padded intermediates of all experts but no permuted copy of the input; vLLM's fused MoE
/// holds its three intermediate caches over the routed tokens.
pub fn activation_bytes(
    llm: &LlmShape,
    method: Method,
    fmt: &SparsityFormat,
    tokens: usize,
    counts: &[usize],
) -> f64 {
    let t = tokens as f64;
    let d = llm.hidden as f64;
    let hd = llm.head_dim() as f64;
    let residual = 2.0 * t * d * ELEM;
    let attention = t * (f64::from(2 * llm.heads + 2 * llm.kv_heads) * hd) * ELEM;
    let Some(m) = &llm.moe else {
        let f = llm.ffn as f64;
        return residual + attention.max(t * 3.0 * f * ELEM);
    };
    let f = m.expert_ffn as f64;
    let up = if llm.gated_ffn { 2.0 } else { 1.0 };
    let routed: usize = counts.iter().sum();
    let logits = t * f64::from(m.experts) * 4.0;
    let moe = logits
        + match method {
            Method::Dense | Method::WeightSparse | Method::Venom | Method::Sputnik => {
                let n = *counts.iter().max().unwrap_or(&0) as f64;
                n * (2.0 * d + (up + 1.0) * f) * ELEM + t * d * ELEM
            }
            Method::ActivationSparse => {
                let p: usize = counts.iter().map(|&c| padded_cols(method, fmt, c)).sum();
                p as f64 * (2.0 * d + (up + 1.0) * f) * ELEM + p as f64 * 4.0 + t * d * ELEM
            }
            Method::Samoyeds => {
                let p: usize = counts.iter().map(|&c| padded_cols(method, fmt, c)).sum();
                p as f64 * ((up + 1.0) * f * ELEM + 4.25) + routed as f64 * d * ELEM + t * d * ELEM
            }
            // vLLM's intermediate caches: (routed × up·f), (routed × f), (routed × d), plus the
            // 64-padded sorted ids.
            Method::FusedMoe => {
                let p: usize = counts.iter().map(|&c| padded_cols(method, fmt, c)).sum();
                routed as f64 * ((up + 1.0) * f + d) * ELEM + p as f64 * 4.0 + t * d * ELEM
            }
        };
    let shared = if m.shared_experts > 0 {
        let sf = if m.shared_ffn > 0 {
            m.shared_ffn
        } else {
            m.expert_ffn
        } as f64;
        t * (up + 1.0) * sf * ELEM
    } else {
        0.0
    };
    residual + attention.max(moe + shared)
}

/// A batch: `seqs` sequences of `seq_len` tokens, `tokens` of them in flight in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Sequences (each holds a KV cache of `seq_len` tokens).
    pub seqs: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Tokens processed in one step (activations).
    pub tokens: usize,
}

/// Footprint of `batch` with `layers` resident layers; expert loads are `load_per_token[e]` ×
/// tokens (the measured routing, scaled).
pub fn footprint(
    llm: &LlmShape,
    method: Method,
    fmt: &SparsityFormat,
    layers: u32,
    batch: Batch,
    load_per_token: &[f64],
) -> Footprint {
    let counts: Vec<usize> = load_per_token
        .iter()
        .map(|l| (l * batch.tokens as f64).ceil() as usize)
        .collect();
    Footprint {
        weights: weight_bytes(llm, method, fmt, layers),
        kv: (batch.seqs * batch.seq_len) as f64
            * llm.kv_bytes_per_token_layer()
            * f64::from(layers),
        activations: activation_bytes(llm, method, fmt, batch.tokens, &counts),
    }
}

/// Largest number of sequences (≤ `limit`) for which `fits` holds (fits is monotone), 0 if none
/// or if `capacity` is not positive.
pub fn max_batch(capacity: f64, limit: usize, fits: impl Fn(usize) -> bool) -> usize {
    if !fits(1) || capacity <= 0.0 {
        return 0;
    }
    let (mut lo, mut hi) = (1usize, 2usize);
    while hi <= limit && fits(hi) {
        lo = hi;
        hi *= 2;
    }
    let mut hi = hi.min(limit + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use presets::LLM;

    fn llm(name: &str) -> LlmShape {
        serde_norway::from_str(LLM.iter().find(|(n, _)| *n == name).unwrap().1).unwrap()
    }

    #[test]
    fn dense_weights_match_the_parameter_count_and_sparse_formats_shrink_them() {
        let l = llm("mixtral-8x7b");
        let f = SparsityFormat::default();
        let dense = weight_bytes(&l, Method::Dense, &f, l.layers);
        assert!((dense / (l.total_params() as f64 * 2.0) - 1.0).abs() < 1e-9);
        let w = weight_bytes(&l, Method::WeightSparse, &f, l.layers);
        let s = weight_bytes(&l, Method::Samoyeds, &f, l.layers);
        assert!(s < w && w < dense);
        // Experts dominate Mixtral: 2:4 + 2-bit metadata is 9/16 of dense, Samoyeds about 9/32.
        assert!((w / dense - 0.5625).abs() < 0.03, "{}", w / dense);
        assert!((s / dense - 0.28).abs() < 0.03, "{}", s / dense);
    }

    #[test]
    fn max_batch_finds_the_largest_fitting_value() {
        assert_eq!(max_batch(1.0, 1000, |b| b <= 37), 37);
        assert_eq!(max_batch(1.0, 1000, |_| false), 0);
        assert_eq!(max_batch(1.0, 50, |_| true), 50);
    }
}
