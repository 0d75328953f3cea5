//! Transformer shapes shared by the families that run LLMs (mobile, supernode, sptc): layer counts
//! and widths from each model's public `config.json`, weight precision, and the per-layer counts of
//! parameters, bytes and FLOPs that the engines turn into time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// Weight precision of a deployed model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Quant {
    /// llama.cpp Q4_0: blocks of 32 4-bit weights plus one f16 scale = 18 bytes / 32 weights
    /// (ggml-common.h `block_q4_0`), 4.5 bits per weight.
    Q4,
    /// llama.cpp Q4_1: blocks of 32 4-bit weights plus an f16 scale and an f16 minimum = 20 bytes /
    /// 32 weights (ggml-common.h `block_q4_1`), 5.0 bits per weight. Spelled `q4_1` in YAML.
    #[serde(rename = "q4_1")]
    Q4_1,
    /// llama.cpp Q8_0: 32 int8 weights plus one f16 scale = 34 bytes / 32 weights, 8.5 bits per weight.
    Q8,
    /// IEEE half precision, 16 bits per weight.
    Fp16,
    /// bfloat16, 16 bits per weight.
    Bf16,
}

impl Quant {
    /// Storage bits per weight, block scales included.
    pub fn bits_per_weight(self) -> f64 {
        match self {
            Quant::Q4 => 4.5,
            Quant::Q4_1 => 5.0,
            Quant::Q8 => 8.5,
            Quant::Fp16 | Quant::Bf16 => 16.0,
        }
    }
}

/// Mixture-of-experts FFN of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoeShape {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Experts each token is routed to.
    pub top_k: u32,
    /// Intermediate width of one routed expert.
    pub expert_ffn: u64,
    /// Always-active shared experts per MoE layer.
    #[serde(default)]
    pub shared_experts: u32,
    /// Intermediate width of one shared expert (0: same as `expert_ffn`).
    #[serde(default)]
    pub shared_ffn: u64,
    /// Leading layers that use a dense FFN of width `ffn` instead of experts.
    #[serde(default)]
    pub dense_layers: u32,
}

/// A decoder-only Transformer, as its `config.json` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmShape {
    /// Preset name.
    pub name: String,
    /// Decoder layers.
    pub layers: u32,
    /// Hidden width d_model.
    pub hidden: u64,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (grouped-query attention when < heads).
    pub kv_heads: u32,
    /// Width of one head (0: hidden / heads).
    #[serde(default)]
    pub head_dim: u64,
    /// Dense FFN intermediate width.
    pub ffn: u64,
    /// Gated FFN (SwiGLU: gate, up, down = 3 matrices) rather than 2 matrices.
    #[serde(default = "yes")]
    pub gated_ffn: bool,
    /// Vocabulary size.
    pub vocab: u64,
    /// Input embedding and LM head share one matrix.
    #[serde(default)]
    pub tied_embeddings: bool,
    /// Weight precision.
    pub quant: Quant,
    /// Bytes per cached key or value element (2 for an f16 KV cache).
    #[serde(default = "two")]
    pub kv_bytes_per_elem: f64,
    /// Mixture-of-experts FFN, when the model has one.
    #[serde(default)]
    pub moe: Option<MoeShape>,
    /// Multi-head latent attention (DeepSeek-V2/V3): cached elements per token per layer
    /// (kv_lora_rank + qk_rope_head_dim); 0 for ordinary K and V caches.
    #[serde(default)]
    pub mla_kv_dim: u64,
    /// Attention parameters per layer when they do not follow from Q/K/V/O (MLA); 0: computed.
    #[serde(default)]
    pub attention_params_per_layer: u64,
}

fn yes() -> bool {
    true
}

fn two() -> f64 {
    2.0
}

impl LlmShape {
    /// Width of one attention head.
    pub fn head_dim(&self) -> u64 {
        if self.head_dim > 0 {
            self.head_dim
        } else {
            self.hidden / u64::from(self.heads)
        }
    }

    /// Attention parameters of one layer (Q, K, V, O projections).
    pub fn attention_params(&self) -> u64 {
        if self.attention_params_per_layer > 0 {
            return self.attention_params_per_layer;
        }
        let hd = self.head_dim();
        let q = self.hidden * u64::from(self.heads) * hd;
        let kv = 2 * self.hidden * u64::from(self.kv_heads) * hd;
        q + kv + q
    }

    fn ffn_params(&self, width: u64) -> u64 {
        (if self.gated_ffn { 3 } else { 2 }) * self.hidden * width
    }

    /// Whether layer `layer` (0-based) has experts.
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        self.moe.as_ref().is_some_and(|m| layer >= m.dense_layers)
    }

    /// Parameters of one routed expert.
    pub fn expert_params(&self) -> u64 {
        self.moe
            .as_ref()
            .map_or(0, |m| self.ffn_params(m.expert_ffn))
    }

    fn shared_params(&self, m: &MoeShape) -> u64 {
        let width = if m.shared_ffn > 0 {
            m.shared_ffn
        } else {
            m.expert_ffn
        };
        u64::from(m.shared_experts) * self.ffn_params(width)
    }

    /// FFN parameters stored in layer `layer` (every expert counted).
    pub fn ffn_params_stored(&self, layer: u32) -> u64 {
        match &self.moe {
            Some(m) if self.is_moe_layer(layer) => {
                u64::from(m.experts) * self.expert_params()
                    + self.shared_params(m)
                    + self.hidden * u64::from(m.experts)
            }
            _ => self.ffn_params(self.ffn),
        }
    }

    /// FFN parameters one token touches in layer `layer` (top-k routed + shared experts).
    pub fn ffn_params_active(&self, layer: u32) -> u64 {
        match &self.moe {
            Some(m) if self.is_moe_layer(layer) => {
                u64::from(m.top_k) * self.expert_params()
                    + self.shared_params(m)
                    + self.hidden * u64::from(m.experts)
            }
            _ => self.ffn_params(self.ffn),
        }
    }

    /// Parameters of the embedding and LM head.
    pub fn embedding_params(&self) -> u64 {
        (if self.tied_embeddings { 1 } else { 2 }) * self.vocab * self.hidden
    }

    /// All parameters.
    pub fn total_params(&self) -> u64 {
        (0..self.layers)
            .map(|l| self.attention_params() + self.ffn_params_stored(l))
            .sum::<u64>()
            + self.embedding_params()
    }

    /// Weight bytes of layer `layer` at the model's precision.
    pub fn layer_weight_bytes(&self, layer: u32) -> f64 {
        (self.attention_params() + self.ffn_params_stored(layer)) as f64
            * self.quant.bits_per_weight()
            / 8.0
    }

    /// Weight bytes layer `layer` reads for one token (top-k experts only for MoE).
    pub fn layer_active_weight_bytes(&self, layer: u32) -> f64 {
        (self.attention_params() + self.ffn_params_active(layer)) as f64
            * self.quant.bits_per_weight()
            / 8.0
    }

    /// Weight bytes of the whole model.
    pub fn weight_bytes(&self) -> f64 {
        self.total_params() as f64 * self.quant.bits_per_weight() / 8.0
    }

    /// LM-head weight bytes (read once per generated token).
    pub fn lm_head_bytes(&self) -> f64 {
        (self.vocab * self.hidden) as f64 * self.quant.bits_per_weight() / 8.0
    }

    /// KV-cache bytes one token adds in one layer.
    pub fn kv_bytes_per_token_layer(&self) -> f64 {
        if self.mla_kv_dim > 0 {
            return self.mla_kv_dim as f64 * self.kv_bytes_per_elem;
        }
        2.0 * f64::from(self.kv_heads) * self.head_dim() as f64 * self.kv_bytes_per_elem
    }

    /// KV-cache bytes one token adds across all layers.
    pub fn kv_bytes_per_token(&self) -> f64 {
        self.kv_bytes_per_token_layer() * f64::from(self.layers)
    }

    /// Matrix-multiply FLOPs of layer `layer` for `tokens` tokens (2 per multiply-accumulate).
    pub fn layer_matmul_flops(&self, layer: u32, tokens: u64) -> f64 {
        2.0 * tokens as f64 * (self.attention_params() + self.ffn_params_active(layer)) as f64
    }

    /// Attention FLOPs (QKᵀ and AV) of one layer for `tokens` new tokens attending to `context`
    /// positions each (causal prefill: pass the mean context).
    pub fn layer_attention_flops(&self, tokens: u64, context: u64) -> f64 {
        4.0 * tokens as f64 * context as f64 * f64::from(self.heads) * self.head_dim() as f64
    }
}

impl Validate for LlmShape {
    /// Structural checks of a preset or inline shape.
    fn validate(&self, c: &mut Checks) {
        c.at_least("layers", self.layers, 1);
        c.at_least("hidden", self.hidden, 1);
        c.at_least("heads", self.heads, 1);
        c.at_least("kv_heads", self.kv_heads, 1);
        c.at_least("ffn", self.ffn, 1);
        c.at_least("vocab", self.vocab, 1);
        if self.kv_heads > 0 && !self.heads.is_multiple_of(self.kv_heads) {
            c.fail(
                "kv_heads",
                format!("must divide heads ({}), got {}", self.heads, self.kv_heads),
            );
        }
        if let Some(m) = &self.moe {
            c.part("moe", m);
        }
    }
}

impl Validate for MoeShape {
    fn validate(&self, c: &mut Checks) {
        c.at_least("experts", self.experts, 1);
        if self.experts >= 1 {
            c.between("top_k", self.top_k, 1, self.experts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presets::LLM;

    fn preset(name: &str) -> LlmShape {
        let text = LLM
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("preset {name}"))
            .1;
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn every_llm_preset_parses_and_validates() {
        for (name, text) in LLM {
            let s: LlmShape =
                serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, *name);
            assert!(Checks::of(&s).is_empty(), "{name}");
        }
    }

    #[test]
    fn parameter_counts_match_the_published_sizes() {
        // Published totals: TinyLlama 1.10 B, Llama-2-7B 6.74 B, Mixtral-8x7B 46.7 B, DeepSeek-V3 671 B.
        for (name, billions, tol) in [
            ("tinyllama-1.1b-q4", 1.10, 0.03),
            ("smollm2-135m-q4_1", 0.135, 0.03),
            ("llama-2-7b-q4", 6.74, 0.03),
            ("mixtral-8x7b", 46.7, 0.03),
            ("deepseek-v3", 671.0, 0.06),
        ] {
            let p = preset(name).total_params() as f64 / 1e9;
            assert!(
                (p / billions - 1.0).abs() < tol,
                "{name}: {p:.2} B vs {billions} B"
            );
        }
    }

    #[test]
    fn q4_weights_are_about_a_quarter_of_fp16_plus_scales() {
        let s = preset("llama-2-7b-q4");
        let gib = s.weight_bytes() / (1u64 << 30) as f64;
        // llama.cpp's llama-2-7b.Q4_0.gguf is 3.56 GiB.
        assert!((gib - 3.56).abs() < 0.15, "{gib}");
    }
}
