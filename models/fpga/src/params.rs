//! Parameters of the `fpga` family: the board, the GPU baseline, the Transformer, the nonlinear
//! design and precision, and (optionally) a quality study of quantization methods.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::ops::Design;

/// An FPGA board: fabric resources, clock and memory (preset kind `fpga`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FpgaBoard {
    /// Board name.
    pub name: String,
    /// 6-input LUTs.
    pub lut: f64,
    /// Flip-flops.
    pub ff: f64,
    /// DSP slices.
    pub dsp: f64,
    /// 36 Kb block RAMs.
    pub bram36: f64,
    /// On-chip memory, bytes.
    pub onchip_bytes: f64,
    /// Accelerator clock, MHz.
    pub clock_mhz: f64,
    /// Off-chip memory bandwidth, GB/s.
    pub offchip_gbps: f64,
    /// INT8 multiply-accumulates per DSP per cycle.
    pub macs_per_dsp_int8: u32,
    /// INT4 multiply-accumulates per DSP per cycle.
    pub macs_per_dsp_int4: u32,
}

/// A GPU for the baseline (preset kind `gpu-baseline`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// GPU name.
    pub name: String,
    /// Dense FP16 tensor throughput, TFLOPS.
    pub fp16_tflops: f64,
    /// Dense INT8 throughput, TOPS.
    pub int8_tops: f64,
    /// Dense INT4 throughput, TOPS.
    pub int4_tops: f64,
    /// Memory bandwidth, GB/s.
    pub mem_gbps: f64,
    /// Per-kernel launch overhead, µs.
    pub launch_us: f64,
    /// Fraction of peak reached by matmul kernels (0, 1].
    pub matmul_efficiency: f64,
}

/// Elementwise activation of the FFN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// GELU (BERT, ViT).
    Gelu,
    /// SiLU (Llama).
    Silu,
}

/// Normalisation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// LayerNorm (BERT, ViT).
    LayerNorm,
    /// RMSNorm (Llama).
    RmsNorm,
}

/// A Transformer encoder/decoder stack (preset kind `fpga-workload`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    /// Model name.
    pub name: String,
    /// Layers.
    pub layers: u32,
    /// Hidden size.
    pub hidden: u32,
    /// Attention heads (hidden must divide by heads).
    pub heads: u32,
    /// FFN intermediate size.
    pub ffn: u32,
    /// Tokens processed (sequence length, batch 1).
    pub seq: u32,
    /// FFN activation.
    pub activation: Activation,
    /// Normalisation.
    pub norm: Norm,
    /// Gated FFN (gate and up projections, SwiGLU).
    pub gated_ffn: bool,
}

/// Weight/activation quantization method of the quality study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QuantMethod {
    /// No quantization (FP32 weights and activations; the nonlinear design still applies).
    None,
    /// Round-to-nearest, per-output-channel weights and per-token activations.
    Rtn,
    /// SmoothQuant-style smoothing then RTN.
    Smooth,
    /// SpecQuant: smoothing + per-channel low-frequency Fourier truncation + RTN residual.
    Specquant,
    /// QuaRot-style randomized Hadamard rotation of every linear layer's input and weight rows,
    /// then RTN.
    Hadamard,
}

/// Which MiniLM weights the quality study uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WeightsChoice {
    /// The real all-MiniLM-L6-v2 if `models::minilm::locate()` finds it (`scripts/fetch-minilm.sh`),
    /// else the random-weight stand-in (metric `real_weights` tells which ran).
    #[default]
    Auto,
    /// Always the random-weight stand-in of the same architecture.
    Random,
}

/// Which nonlinear operators of the quality study run in the design's fixed point (the others stay
/// exact f32): the one-at-a-time ablation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FixedOps {
    /// Softmax, GELU and every LayerNorm.
    #[default]
    All,
    /// Only the attention softmax.
    Softmax,
    /// Only the FFN GELU.
    Gelu,
    /// Only the LayerNorms (embedding, post-attention, post-FFN).
    LayerNorm,
}

/// Output format of the fixed-point normaliser x̂ = (x − μ)/σ, before the affine γ·x̂ + β.
/// |x̂| ≤ √n for a row of n channels (reached when one outlier channel dominates the variance:
/// 19.6 at MiniLM's 384).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NormOutput {
    /// x̂ stays in the unit's internal datapath (2 × `bits` bits, range ±2^⌈log2 √n⌉) for the
    /// fused affine, as I-BERT's integer LayerNorm (32-bit output, requantized only at the next
    /// layer's input — here `quality.method` / `act_bits`).
    #[default]
    Datapath,
    /// x̂ as `bits`-bit activation codes over the full range ±2^⌈log2 √n⌉ (INT8: steps of 1/4 at
    /// MiniLM's width).
    FullRange,
    /// x̂ as `bits`-bit activation codes over ±8 (INT8: steps of 1/16), the generic activation
    /// format: saturates outlier channels (|x̂| up to √n). The former behaviour, for the ablation.
    ActivationRange,
}

/// Quality study: all-MiniLM-L6-v2 (real weights, or a random-weight stand-in) encodes real
/// ShareGPT sentences in FP32 and with the design's operators and the quantization method.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityParams {
    /// Quantization method of the linear layers.
    pub method: QuantMethod,
    /// Weight bits (2..=8).
    pub weight_bits: u32,
    /// Activation bits (2..=8).
    pub act_bits: u32,
    /// Real ShareGPT sentences evaluated (2..=64; the calibration sentences are separate).
    #[serde(default = "sixty_four")]
    pub sentences: u32,
    /// SmoothQuant migration strength α in [0, 1].
    #[serde(default = "half")]
    pub alpha: f64,
    /// SpecQuant spectral energy kept per channel by the adaptive threshold, in (0, 1].
    #[serde(default = "energy")]
    pub energy: f64,
    /// Stand-in only: fraction of hidden channels given outlier LayerNorm gains (×20), as in
    /// real LLMs.
    #[serde(default = "outliers")]
    pub outlier_fraction: f64,
    /// Runs only the first this many of the 6 layers (≤ 6), for quick runs.
    #[serde(default = "six")]
    pub layers: u32,
    /// Real weights if found (`auto`) or always the stand-in (`random`).
    #[serde(default)]
    pub weights: WeightsChoice,
    /// Keep exact f32 softmax/GELU/LayerNorm (isolates the linear-layer quantization, as the
    /// SpecQuant paper's setting); otherwise the design's fixed-point operators run too.
    #[serde(default)]
    pub exact_nonlinear: bool,
    /// Which nonlinear operators run in fixed point (ignored with `exact_nonlinear: true`).
    #[serde(default)]
    pub fixed_ops: FixedOps,
    /// Output format of the fixed-point LayerNorm's normaliser.
    #[serde(default)]
    pub norm_output: NormOutput,
    /// Width of the LayerNorm input codes, bits (2..=24; one dynamic power-of-two scale per
    /// token row). Default: the operator precision `bits`; I-BERT keeps 22.
    #[serde(default)]
    pub norm_input_bits: Option<u32>,
    /// LayerNorm input: channels per block sharing one dynamic power-of-two scale (block floating
    /// point; the OCP MX formats' 32 by default), shift-aligned into the wide mean/variance
    /// accumulator; `null`: the whole token row shares one scale (the former behaviour).
    #[serde(default = "mx_block")]
    pub norm_input_block: Option<u32>,
}

/// Which nonlinear operators of the decoder study run in the design's fixed point (the others
/// exact f32): none, all, or one at a time (the ablation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LmOps {
    /// Exact f32 softmax, SiLU and RMSNorm (isolates the linear-layer quantization).
    #[default]
    Exact,
    /// Softmax, SiLU and every RMSNorm in fixed point.
    All,
    /// Only the attention softmax.
    Softmax,
    /// Only the SwiGLU gate's SiLU (QUARK's sigmoid path).
    Silu,
    /// Only the RMSNorms (before attention, before the MLP, final).
    RmsNorm,
}

/// Quality study on the real decoder (SmolLM2-135M-Instruct from its GGUF, dequantized Q4_1 = the
/// reference): perplexity, KL and top-1 agreement against the unquantized model on held-out
/// ShareGPT text, one evaluation chunk per replication.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LmParams {
    /// Quantization method of the transformer blocks' linear layers (LM head and embeddings stay
    /// unquantized).
    pub method: QuantMethod,
    /// Weight bits, per-output-channel grid (2..=8).
    #[serde(default = "four")]
    pub weight_bits: u32,
    /// Activation bits, per token, dynamic (2..=8); `null`: f32 activations.
    #[serde(default = "four_opt")]
    pub act_bits: Option<u32>,
    /// KV-cache bits, per token and head (2..=16); 16: the cache is not quantized (the paper's
    /// KV16; kept in f32 here).
    #[serde(default = "sixteen")]
    pub kv_bits: u32,
    /// SpecQuant: bits per weight spent on the kept FFT coefficients (32 bits per kept complex
    /// bin, f16 real and imaginary), which caps the bins per channel; in [0, 4].
    #[serde(default = "spectral_bits")]
    pub spectral_bits: f64,
    /// SpecQuant: spectral energy kept per channel by the runtime threshold, in (0, 1].
    #[serde(default = "energy")]
    pub energy: f64,
    /// SmoothQuant migration strength α in [0, 1].
    #[serde(default = "half")]
    pub alpha: f64,
    /// Which nonlinear operators run in the design's fixed point (`design`, `bits`).
    #[serde(default)]
    pub nonlinear: LmOps,
    /// Tokens per window (each window a fresh sequence), 16..=1024.
    #[serde(default = "window")]
    pub window: u32,
    /// Scored tokens per evaluation chunk (replication r scores chunk r), 16..=16384.
    #[serde(default = "eval_tokens")]
    pub eval_tokens: u32,
    /// Calibration tokens (SmoothQuant's per-channel activation maxima), taken before every
    /// evaluation chunk, 16..=16384.
    #[serde(default = "eval_tokens")]
    pub calib_tokens: u32,
}

fn four() -> u32 {
    4
}
fn four_opt() -> Option<u32> {
    Some(4)
}
fn sixteen() -> u32 {
    16
}
fn spectral_bits() -> f64 {
    0.125
}
fn window() -> u32 {
    128
}
fn eval_tokens() -> u32 {
    256
}
fn sixty_four() -> u32 {
    64
}
fn half() -> f64 {
    0.5
}
fn energy() -> f64 {
    0.9
}
fn outliers() -> f64 {
    0.02
}
fn six() -> u32 {
    6
}
fn mx_block() -> Option<u32> {
    Some(32)
}
fn lanes() -> u32 {
    16
}
fn array() -> u32 {
    32
}

/// Parameters of one `fpga` run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FpgaParams {
    /// The FPGA board.
    pub fpga: FpgaBoard,
    /// The GPU of the baseline.
    pub gpu: GpuSpec,
    /// The Transformer executed.
    pub workload: ModelShape,
    /// Nonlinear circuit design.
    pub design: Design,
    /// Activation (and matmul operand) bits: 4 or 8.
    pub bits: u32,
    /// Lanes of each nonlinear unit (elements per cycle).
    #[serde(default = "lanes")]
    pub lanes: u32,
    /// Systolic array rows.
    #[serde(default = "array")]
    pub array_rows: u32,
    /// Systolic array columns.
    #[serde(default = "array")]
    pub array_cols: u32,
    /// QUARK only: build one dedicated unit per op from QUARK's primitives instead of the one
    /// shared circuit (the separate styles lut/pwl/poly are always one unit per op).
    #[serde(default)]
    pub separate_units: bool,
    /// Optional accuracy study (MiniLM encoder).
    #[serde(default)]
    pub quality: Option<QualityParams>,
    /// Optional accuracy study on the real decoder (SmolLM2-135M).
    #[serde(default)]
    pub lm: Option<LmParams>,
}

impl Validate for FpgaBoard {
    fn validate(&self, c: &mut Checks) {
        c.positive("lut", self.lut);
        c.positive("ff", self.ff);
        c.positive("dsp", self.dsp);
        c.positive("bram36", self.bram36);
        c.positive("onchip_bytes", self.onchip_bytes);
        c.positive("clock_mhz", self.clock_mhz);
        c.positive("offchip_gbps", self.offchip_gbps);
        c.at_least("macs_per_dsp_int8", self.macs_per_dsp_int8, 1);
        c.at_least("macs_per_dsp_int4", self.macs_per_dsp_int4, 1);
    }
}

impl Validate for GpuSpec {
    fn validate(&self, c: &mut Checks) {
        c.positive("fp16_tflops", self.fp16_tflops);
        c.positive("int8_tops", self.int8_tops);
        c.positive("int4_tops", self.int4_tops);
        c.positive("mem_gbps", self.mem_gbps);
        c.non_negative("launch_us", self.launch_us);
        let eff = self.matmul_efficiency;
        if !(eff > 0.0 && eff <= 1.0) {
            c.fail("matmul_efficiency", format!("must be in (0, 1], got {eff}"));
        }
    }
}

impl Validate for ModelShape {
    fn validate(&self, c: &mut Checks) {
        c.at_least("layers", self.layers, 1);
        c.at_least("hidden", self.hidden, 1);
        c.at_least("heads", self.heads, 1);
        c.at_least("ffn", self.ffn, 1);
        c.at_least("seq", self.seq, 1);
        if self.heads > 0 && !self.hidden.is_multiple_of(self.heads) {
            c.fail(
                "heads",
                format!("must divide hidden ({}), got {}", self.hidden, self.heads),
            );
        }
    }
}

impl Validate for QualityParams {
    fn validate(&self, c: &mut Checks) {
        c.between("weight_bits", self.weight_bits, 2, 8);
        c.between("act_bits", self.act_bits, 2, 8);
        if let Some(b) = self.norm_input_bits {
            c.between("norm_input_bits", b, 2, 24);
        }
        if let Some(b) = self.norm_input_block {
            c.between("norm_input_block", b, 1, 4096);
        }
        c.between("sentences", self.sentences, 2, 64);
        c.between("layers", self.layers, 1, 6);
        c.fraction("alpha", self.alpha);
        if !(self.energy > 0.0 && self.energy <= 1.0) {
            c.fail("energy", format!("must be in (0, 1], got {}", self.energy));
        }
        c.within("outlier_fraction", self.outlier_fraction, 0.0, 0.5);
    }
}

impl Validate for LmParams {
    fn validate(&self, c: &mut Checks) {
        c.between("weight_bits", self.weight_bits, 2, 8);
        if let Some(b) = self.act_bits {
            c.between("act_bits", b, 2, 8);
        }
        c.between("kv_bits", self.kv_bits, 2, 16);
        c.within("spectral_bits", self.spectral_bits, 0.0, 4.0);
        if !(self.energy > 0.0 && self.energy <= 1.0) {
            c.fail("energy", format!("must be in (0, 1], got {}", self.energy));
        }
        c.fraction("alpha", self.alpha);
        c.between("window", self.window, 16, 1024);
        c.between("eval_tokens", self.eval_tokens, 16, 16384);
        c.between("calib_tokens", self.calib_tokens, 16, 16384);
    }
}

impl Validate for FpgaParams {
    fn validate(&self, c: &mut Checks) {
        c.part("fpga", &self.fpga);
        c.part("gpu", &self.gpu);
        c.part("workload", &self.workload);
        if self.bits != 4 && self.bits != 8 {
            c.fail("bits", format!("must be 4 or 8, got {}", self.bits));
        }
        c.between("lanes", self.lanes, 1, 4096);
        c.between("array_rows", self.array_rows, 1, 4096);
        c.between("array_cols", self.array_cols, 1, 4096);
        c.part("quality", &self.quality);
        c.part("lm", &self.lm);
    }
}
