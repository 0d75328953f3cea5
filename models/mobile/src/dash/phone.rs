//! DASH on the phone: the real decoder's per-token, per-layer skip decisions (SmolLM2's 30 layers
//! on the phone's SmolLM2 shape, layer for layer — no mapping) drive which layers of the phone
//! LLM's prefill and decode run, and the policy's CPU cost is charged in the engine's step timing.
//!
//! Each generated token takes the next measured token's decisions (cycling through the held-out
//! windows' tokens); a prefill of `n` tokens takes `n` of them and runs layer `j` for the tokens
//! that execute it (weights are still read once). A token that skips a layer still projects its
//! key and value there ([`super::rollout`]): the K/V projection FLOPs, the KV write and, when no
//! token executes the layer, the K/V weights are charged.
//!
//! Cost per policy evaluation of `n` tokens: `policy_fixed_cycles` (host synchronisation) plus
//! `n` × the per-token FLOPs (features at the phone LLM's hidden size + scorer) on the CPU; a skipped token costs its
//! compensation FLOPs on the CPU. Synchronous: every evaluation runs before its layer, exposed.
//! Asynchronous: the evaluation for layer `l + 1` runs on the host thread while layer `l` executes
//! on the GPU (hidden unless the host's own work plus it exceed the step); after a skipped layer,
//! and for a token's first layer, there is nothing to overlap with and it is exposed.

use serde::{Deserialize, Serialize};

use super::super::cost::{CostModel, Phase, StepTiming, StepWork};
use super::compensate::{self, Compensation};

/// CPU work a DASH step adds to the engine step, cycles.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Extra {
    /// Policy work before the step can start (exposed).
    pub serial_cycles: f64,
    /// Policy work running on the host during the step's GPU work (asynchronous).
    pub overlapped_cycles: f64,
}

impl Extra {
    /// `self` scaled by `k` (the remaining fraction of a re-timed step).
    pub fn scaled(self, k: f64) -> Self {
        Self {
            serial_cycles: self.serial_cycles * k,
            overlapped_cycles: self.overlapped_cycles * k,
        }
    }
}

/// Counters of what DASH did on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DashStats {
    /// Token-layers the phone LLM would run without skipping.
    pub token_layers: u64,
    /// Token-layers skipped.
    pub skipped_token_layers: u64,
    /// Layer steps skipped entirely (no token executes them).
    pub skipped_steps: u64,
    /// Policy evaluations (one per layer per batch of tokens).
    pub evaluations: u64,
    /// Policy evaluations whose cost was exposed (not hidden under a layer).
    pub exposed_evaluations: u64,
}

/// The engine-side DASH state: the measured patterns and the current token's layer plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DashEngine {
    patterns: Vec<Vec<bool>>,
    asynchronous: bool,
    compensation: Compensation,
    policy_fixed_cycles: f64,
    eval_flops_per_token: f64,
    cursor: usize,
    /// Tokens in the current batch (prompt length in prefill, 1 in decode).
    tokens: u64,
    /// Executing tokens per phone layer for the current batch.
    exec: Vec<u64>,
    /// Whether the evaluation for the next layer ran under the previous step.
    hidden_next: bool,
    stats: DashStats,
}

impl DashEngine {
    /// A plan cycling through `patterns` (skip per decoder layer, per token); one policy
    /// evaluation costs `policy_fixed_cycles` plus `eval_flops_per_token` per token on the CPU.
    pub fn new(
        patterns: Vec<Vec<bool>>,
        asynchronous: bool,
        compensation: Compensation,
        policy_fixed_cycles: f64,
        eval_flops_per_token: f64,
    ) -> Self {
        Self {
            patterns,
            asynchronous,
            compensation,
            policy_fixed_cycles,
            eval_flops_per_token,
            cursor: 0,
            tokens: 0,
            exec: Vec::new(),
            hidden_next: false,
            stats: DashStats::default(),
        }
    }

    /// What DASH did so far.
    pub fn stats(&self) -> DashStats {
        self.stats
    }

    /// Starts a batch of `tokens` tokens through `phone_layers` layers: draws their patterns.
    pub fn begin(&mut self, tokens: u64, phone_layers: u32) {
        self.tokens = tokens;
        self.hidden_next = false;
        self.exec = vec![0; phone_layers as usize];
        for _ in 0..tokens {
            let pat = self
                .patterns
                .get(self.cursor % self.patterns.len().max(1))
                .cloned()
                .unwrap_or_default();
            self.cursor += 1;
            for (j, e) in self.exec.iter_mut().enumerate() {
                if !pat.get(j).copied().unwrap_or(false) {
                    *e += 1;
                }
            }
        }
        self.stats.token_layers += tokens * u64::from(phone_layers);
        self.stats.skipped_token_layers += self.exec.iter().map(|e| tokens - e).sum::<u64>();
    }

    fn eval_cycles(&self, cost: &CostModel) -> f64 {
        self.policy_fixed_cycles
            + self.tokens as f64 * self.eval_flops_per_token / cost.soc.cpu.flops_per_cycle
    }

    /// Work and DASH extra of step `step` (`== layers`: the head) of the current batch in `phase`,
    /// the batch's last token seeing `context` positions.
    pub fn step(
        &mut self,
        cost: &CostModel,
        phase: Phase,
        step: u32,
        context: u64,
    ) -> (StepWork, Extra) {
        let layers = cost.llm.layers;
        if step >= layers {
            self.hidden_next = false;
            return (cost.head_work(), Extra::default());
        }
        let eval = self.eval_cycles(cost);
        self.stats.evaluations += 1;
        let serial = if self.asynchronous && self.hidden_next {
            0.0
        } else {
            self.stats.exposed_evaluations += 1;
            eval
        };
        let k = self.exec.get(step as usize).copied().unwrap_or(self.tokens);
        let skipped = self.tokens - k;
        let h = cost.llm.hidden;
        let comp =
            skipped as f64 * compensate::flops(self.compensation, h) / cost.soc.cpu.flops_per_cycle;
        let kv = kv_projection(cost, phase, skipped);
        if k == 0 {
            self.stats.skipped_steps += 1;
            self.hidden_next = false;
            let w = StepWork {
                // the K/V projections are 2 of the layer's 7 offloaded weight matmuls, each with
                // its own enqueue/read-back glue (estimate: that share of the per-layer dispatch)
                cpu_cycles: comp + cost.engine.dispatch_cycles_per_layer * 2.0 / 7.0,
                gpu_cycles: kv.gpu_cycles,
                mem_bytes: kv.mem_bytes + kv.weight_bytes + skipped as f64 * h as f64 * 4.0 * 3.0,
            };
            return (
                w,
                Extra {
                    serial_cycles: serial,
                    overlapped_cycles: 0.0,
                },
            );
        }
        let mut w = cost.layer_work(phase, step, k, context);
        w.cpu_cycles += comp;
        w.gpu_cycles += kv.gpu_cycles;
        w.mem_bytes += kv.mem_bytes;
        let next = self.asynchronous && step + 1 < layers;
        self.hidden_next = next;
        (
            w,
            Extra {
                serial_cycles: serial,
                overlapped_cycles: if next { eval } else { 0.0 },
            },
        )
    }
}

/// The K/V projection of tokens that skip a layer.
struct KvProjection {
    /// GPU cycles of the two projections.
    gpu_cycles: f64,
    /// Bytes of the KV entries written.
    mem_bytes: f64,
    /// Bytes of the K and V weights (read once per step).
    weight_bytes: f64,
}

/// Work of projecting keys and values for `tokens` tokens that skip a layer: 2 FLOPs per weight
/// per token on the GPU, their KV entries written, the K/V weights (2·hidden·kv_heads·head_dim).
fn kv_projection(cost: &CostModel, phase: Phase, tokens: u64) -> KvProjection {
    let l = &cost.llm;
    let params = (2 * l.hidden * u64::from(l.kv_heads) * l.head_dim()) as f64;
    let per_cycle = match phase {
        Phase::Prefill => cost.soc.gpu.gemm_flops_per_cycle,
        Phase::Decode => cost.soc.gpu.gemv_flops_per_cycle,
    };
    KvProjection {
        gpu_cycles: 2.0 * params * tokens as f64 / per_cycle,
        mem_bytes: tokens as f64 * l.kv_bytes_per_token_layer(),
        weight_bytes: params * l.quant.bits_per_weight() / 8.0,
    }
}

/// Duration and utilisations of `w` plus DASH's `extra` at OPPs `opp`: overlapped policy work
/// shares the host thread with the step's own CPU work while the GPU runs
/// (max(step, host CPU + policy)), serial policy work adds to the step; equals
/// [`CostModel::timing`] when `extra` is zero.
pub fn timing(cost: &CostModel, w: &StepWork, extra: Extra, opp: [usize; 3]) -> StepTiming {
    let base = cost.timing(w, opp);
    if extra == Extra::default() {
        return base;
    }
    let f = cost.soc.cpu.dvfs.freq_hz(opp[0]);
    let (t_cpu, t_ov, t_ser) = (
        w.cpu_cycles / f,
        extra.overlapped_cycles / f,
        extra.serial_cycles / f,
    );
    let time_s = (base.time_s.max(t_cpu + t_ov) + t_ser).max(1e-9);
    let mut cpu = ((t_cpu + t_ov + t_ser) / time_s).min(1.0);
    if cost.engine.host_spin_wait {
        cpu += (1.0 - cpu) * cost.engine.spin_activity;
    }
    let k = base.time_s / time_s;
    StepTiming {
        time_s,
        util: [cpu, base.util[1] * k, base.util[2] * k],
    }
}
