//! The llama.cpp-OpenCL-style cost model of one engine step (a decoder layer, or the LM head plus
//! sampling), shared by the engine model (one event per step) and FUSE's offline profiler.
//!
//! A step has CPU work (kernel dispatch, the CPU-side operators, sampling), GPU work (matmul FLOPs
//! at the kernel's effective FLOP/cycle) and memory traffic (weights, KV cache read and append,
//! activations). GPU compute and memory traffic overlap by `gpu_mem_overlap`; the CPU's share
//! overlaps the GPU+memory part by `cpu_overlap` (0: strictly serial, 1: fully hidden). Each
//! domain's utilisation is its own busy time over the step time — what its governor would measure.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::components::dvfs::DvfsSpec;
use sim::validate::{Checks, Validate};

use super::soc::{Domain, SocSpec};
use llm::LlmShape;

/// Software parameters of the inference engine (llama.cpp b2202 with its OpenCL backend).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineParams {
    /// Host CPU cycles per layer outside the element-wise operators and attention: OpenCL
    /// enqueues, activation uploads, blocking result reads and the dequantize/convert glue of
    /// b2202's OpenCL path, cycles. Default [fit]: the 38.7 ms of non-GPU time per TinyLlama token
    /// at 848 MHz implied by FUSE's two points (`calibrate::fit`), 22 layers at 2850 MHz.
    pub dispatch_cycles_per_layer: f64,
    /// CPU cycles of sampling per vocabulary entry (softmax + top-k/top-p over the logits).
    pub sample_cycles_per_vocab: f64,
    /// CPU FLOPs of element-wise operators per token per hidden unit per layer (RMSNorm ×2, RoPE,
    /// SwiGLU activation, residual adds).
    pub elementwise_flops_per_hidden: f64,
    /// Whether attention (QKᵀ, softmax, AV) runs on the CPU (llama.cpp b2202's OpenCL backend
    /// offloads only matrix multiplications with weights) rather than the GPU.
    pub attention_on_cpu: bool,
    /// Activation bytes moved per token per hidden unit per layer (read + write of f32 tensors).
    pub activation_bytes_per_hidden: f64,
    /// Fraction of the shorter of GPU compute and memory time hidden under the longer, in [0, 1].
    pub gpu_mem_overlap: f64,
    /// Fraction of the shorter of CPU time and GPU+memory time hidden under the longer, in [0, 1].
    pub cpu_overlap: f64,
    /// Whether the host threads spin-wait while the GPU works (ggml's worker threads spin on an
    /// atomic between operators): the scheduler then sees the CPU runnable for the whole step.
    pub host_spin_wait: bool,
    /// Switching activity of a spin-waiting core relative to computing, in [0, 1].
    pub spin_activity: f64,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            dispatch_cycles_per_layer: 4_311_600.0,
            sample_cycles_per_vocab: 40.0,
            elementwise_flops_per_hidden: 12.0,
            attention_on_cpu: true,
            activation_bytes_per_hidden: 32.0,
            gpu_mem_overlap: 0.8,
            // llama.cpp b2202's OpenCL matmul reads its result back with a blocking
            // clEnqueueReadBuffer before the host continues: CPU and GPU work are serial.
            cpu_overlap: 0.0,
            // while the main thread waits, b2202's other ggml compute threads busy-wait at the
            // graph barrier: the cluster looks fully busy to the scheduler (`false`: all sleep)
            host_spin_wait: true,
            spin_activity: 0.3,
        }
    }
}

impl Validate for EngineParams {
    fn validate(&self, c: &mut Checks) {
        c.non_negative("dispatch_cycles_per_layer", self.dispatch_cycles_per_layer);
        c.non_negative("sample_cycles_per_vocab", self.sample_cycles_per_vocab);
        c.non_negative(
            "elementwise_flops_per_hidden",
            self.elementwise_flops_per_hidden,
        );
        c.non_negative(
            "activation_bytes_per_hidden",
            self.activation_bytes_per_hidden,
        );
        c.fraction("gpu_mem_overlap", self.gpu_mem_overlap);
        c.fraction("cpu_overlap", self.cpu_overlap);
        c.fraction("spin_activity", self.spin_activity);
    }
}

/// Inference phase.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The whole prompt in one batch, up to the first token.
    Prefill,
    /// One token at a time.
    Decode,
}

/// Work of one engine step, independent of frequencies.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StepWork {
    /// CPU cycles.
    pub cpu_cycles: f64,
    /// GPU cycles (FLOPs / effective FLOP per cycle).
    pub gpu_cycles: f64,
    /// DRAM bytes.
    pub mem_bytes: f64,
}

/// Duration and per-domain utilisation of a step at given frequencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTiming {
    /// Step duration, seconds.
    pub time_s: f64,
    /// Busy fraction of the CPU, GPU and memory interface (indexed like [`Domain::ALL`]).
    pub util: [f64; 3],
}

/// The engine's view of one (SoC, model, engine software) combination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// SoC.
    pub soc: SocSpec,
    /// Model shape.
    pub llm: LlmShape,
    /// Engine software parameters.
    pub engine: EngineParams,
    /// DVFS specs of the CPU, GPU and memory domains (power model), indexed like [`Domain::ALL`].
    specs: Vec<DvfsSpec>,
}

impl CostModel {
    /// The cost model of `llm` on `soc` under engine software `engine`.
    pub fn new(soc: SocSpec, llm: LlmShape, engine: EngineParams) -> Self {
        let specs = Domain::ALL.iter().map(|&d| soc.domain(d).dvfs(0)).collect();
        Self {
            soc,
            llm,
            engine,
            specs,
        }
    }

    /// DVFS spec of domain `d` starting at OPP `initial_opp`.
    pub fn dvfs(&self, d: Domain, initial_opp: usize) -> DvfsSpec {
        DvfsSpec {
            initial_opp,
            ..self.specs[d as usize].clone()
        }
    }

    /// Work of decoder layer `layer` for `tokens` new tokens whose last one sees `context` positions.
    pub fn layer_work(&self, phase: Phase, layer: u32, tokens: u64, context: u64) -> StepWork {
        let (l, e) = (&self.llm, &self.engine);
        let h = l.hidden as f64;
        let n = tokens as f64;
        // causal attention: token i of the batch sees (context − tokens + i + 1) positions
        let mean_ctx = (context as f64 - (n - 1.0) / 2.0).max(1.0) as u64;
        let attn_flops = l.layer_attention_flops(tokens, mean_ctx);
        let mut cpu_flops = n * h * e.elementwise_flops_per_hidden;
        let mut gpu_flops = l.layer_matmul_flops(layer, tokens);
        if e.attention_on_cpu {
            cpu_flops += attn_flops;
        } else {
            gpu_flops += attn_flops;
        }
        let per_cycle = match phase {
            Phase::Prefill => self.soc.gpu.gemm_flops_per_cycle,
            Phase::Decode => self.soc.gpu.gemv_flops_per_cycle,
        };
        let kv = l.kv_bytes_per_token_layer();
        let weights = match phase {
            // prefill touches every expert; decode only the routed ones
            Phase::Prefill => l.layer_weight_bytes(layer),
            Phase::Decode => l.layer_active_weight_bytes(layer),
        };
        let kv_read = n * mean_ctx as f64 * kv;
        let mem_bytes = weights + kv_read + n * kv + n * h * e.activation_bytes_per_hidden;
        StepWork {
            cpu_cycles: e.dispatch_cycles_per_layer + cpu_flops / self.soc.cpu.flops_per_cycle,
            gpu_cycles: gpu_flops / per_cycle,
            mem_bytes,
        }
    }

    /// Work of the output step: final norm, LM head for the last token, sampling on the CPU.
    pub fn head_work(&self) -> StepWork {
        let l = &self.llm;
        StepWork {
            cpu_cycles: self.engine.dispatch_cycles_per_layer / 4.0
                + l.vocab as f64 * self.engine.sample_cycles_per_vocab,
            gpu_cycles: 2.0 * (l.vocab * l.hidden) as f64 / self.soc.gpu.gemv_flops_per_cycle,
            mem_bytes: l.lm_head_bytes() + l.vocab as f64 * 4.0,
        }
    }

    /// Duration and utilisations of `w` at OPP indices `opp` = (cpu, gpu, mem).
    pub fn timing(&self, w: &StepWork, opp: [usize; 3]) -> StepTiming {
        let t_cpu = w.cpu_cycles / self.soc.cpu.dvfs.freq_hz(opp[0]);
        let t_gpu = w.gpu_cycles / self.soc.gpu.dvfs.freq_hz(opp[1]);
        let t_mem = w.mem_bytes / self.soc.mem.bandwidth_bps(opp[2]);
        let overlap = |a: f64, b: f64, k: f64| a.max(b) + (1.0 - k) * a.min(b);
        let t_gm = overlap(t_gpu, t_mem, self.engine.gpu_mem_overlap);
        let time_s = overlap(t_cpu, t_gm, self.engine.cpu_overlap).max(1e-9);
        let mut util = [t_cpu / time_s, t_gpu / time_s, t_mem / time_s].map(|u| u.min(1.0));
        if self.engine.host_spin_wait {
            util[0] += (1.0 - util[0]) * self.engine.spin_activity;
        }
        StepTiming { time_s, util }
    }

    /// Fraction of a step the host thread is runnable, as the scheduler counts it.
    pub fn host_busy(&self, t: &StepTiming) -> f64 {
        if self.engine.host_spin_wait {
            1.0
        } else {
            t.util[0]
        }
    }

    /// Phone power during a step with utilisations `util` at OPPs `opp`, watts (the same power model
    /// as the simulated DVFS domains, plus the base power).
    pub fn power_w(&self, opp: [usize; 3], util: [f64; 3]) -> f64 {
        (0..3)
            .map(|d| self.specs[d].power_w(opp[d], util[d]))
            .sum::<f64>()
            + self.soc.base_w
    }

    /// Steps of one prefill of `prompt` tokens (every layer, then the head), as work items.
    pub fn prefill_steps(&self, prompt: u64) -> Vec<StepWork> {
        let mut v: Vec<StepWork> = (0..self.llm.layers)
            .map(|l| self.layer_work(Phase::Prefill, l, prompt, prompt))
            .collect();
        v.push(self.head_work());
        v
    }

    /// Steps of one decode token at context `context` (every layer, then the head).
    pub fn decode_steps(&self, context: u64) -> Vec<StepWork> {
        let mut v: Vec<StepWork> = (0..self.llm.layers)
            .map(|l| self.layer_work(Phase::Decode, l, 1, context))
            .collect();
        v.push(self.head_work());
        v
    }

    /// Latency (s) and energy (J) of running `steps` at fixed OPPs (FUSE's profiling measurement).
    pub fn run_steps(&self, steps: &[StepWork], opp: [usize; 3]) -> (f64, f64) {
        steps.iter().fold((0.0, 0.0), |(t, e), w| {
            let s = self.timing(w, opp);
            (t + s.time_s, e + s.time_s * self.power_w(opp, s.util))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use presets::{LLM, SOC};

    pub(crate) fn model(soc: &str, llm: &str) -> CostModel {
        let s = SOC.iter().find(|(n, _)| *n == soc).unwrap().1;
        let l = LLM.iter().find(|(n, _)| *n == llm).unwrap().1;
        CostModel::new(
            serde_norway::from_str(s).unwrap(),
            serde_norway::from_str(l).unwrap(),
            EngineParams::default(),
        )
    }

    #[test]
    fn higher_frequencies_never_slow_a_step_down() {
        let m = model("pixel-7", "tinyllama-1.1b-q4");
        let w = m.layer_work(Phase::Decode, 0, 1, 300);
        let base = m.timing(&w, [3, 3, 3]).time_s;
        for d in 0..3 {
            let mut o = [3, 3, 3];
            o[d] = 8;
            assert!(m.timing(&w, o).time_s <= base);
        }
        let t = m.timing(&w, [17, 10, 12]);
        assert!(t.util.iter().all(|u| (0.0..=1.0).contains(u)));
    }

    #[test]
    fn tinyllama_decode_gpu_frequency_example_has_the_papers_shape() {
        // FUSE: GPU ~424 → 848 MHz cuts TinyLlama TPOT 215.1 → 126.9 ms (other domains under governors)
        let m = model("pixel-7", "tinyllama-1.1b-q4");
        let steps = m.decode_steps(300);
        let (t_hi, _) = m.run_steps(&steps, [17, 10, 12]);
        let (t_lo, _) = m.run_steps(&steps, [17, 4, 12]);
        assert!(t_hi > 0.09 && t_hi < 0.16, "TPOT at 848 MHz {t_hi}");
        assert!(t_lo / t_hi > 1.5, "400 vs 848 MHz ratio {}", t_lo / t_hi);
    }

    #[test]
    fn kv_traffic_grows_with_context() {
        let m = model("pixel-7", "llama-2-7b-q4");
        let a = m.layer_work(Phase::Decode, 0, 1, 10).mem_bytes;
        let b = m.layer_work(Phase::Decode, 0, 1, 1000).mem_bytes;
        assert!((b - a - 990.0 * m.llm.kv_bytes_per_token_layer()).abs() < 1.0);
    }
}
