//! Parameters of the `mobile` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::cost::EngineParams;
use super::dash::DashParams;
use super::fuse::FuseParams;
use super::membw::MemBwParams;
use super::ondemand::OndemandParams;
use super::schedutil::SchedutilParams;
use super::soc::SocSpec;
use llm::LlmShape;

/// Who sets the three domains' frequencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum GovernorChoice {
    /// The stock trio: CPU schedutil, GPU load thresholds, memory bandwidth governor.
    Stock,
    /// Every domain at its highest OPP.
    Performance,
    /// Every domain at its lowest OPP.
    Powersave,
    /// FUSE: one profiled triple per phase and prompt-length range under the stock energy budget.
    Fuse,
    /// One pinned (cpu, gpu, mem) OPP-index triple for both phases.
    Fixed {
        /// CPU OPP index.
        cpu: usize,
        /// GPU OPP index.
        gpu: usize,
        /// Memory OPP index.
        mem: usize,
    },
}

/// Arrival process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalKind {
    /// Closed-loop chat: one request at a time, think time between answer and next prompt.
    #[default]
    Closed,
    /// Open-loop Poisson arrivals.
    Poisson,
    /// Open-loop arrivals at the `trace_file`'s `arrival_s` timestamps.
    Trace,
}

/// The request workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadParams {
    /// Arrival process.
    #[serde(default)]
    pub arrivals: ArrivalKind,
    /// Requests to run.
    pub requests: u64,
    /// Mean think time (closed loop), seconds.
    #[serde(default = "d_think")]
    pub think_s: f64,
    /// Arrival rate (Poisson), requests per second.
    #[serde(default = "d_rate")]
    pub rate_per_s: f64,
    /// Cap on response tokens per request (the trace's longest answers take minutes on a phone).
    #[serde(default = "d_cap")]
    pub max_response_tokens: u64,
    /// Fixed lengths instead of the ShareGPT trace: `[prompt, response]` tokens.
    #[serde(default)]
    pub fixed_lengths: Option<[u64; 2]>,
    /// A request trace (CSV or JSONL with `arrival_s`, `prompt_tokens`, `output_tokens`; see
    /// `request_trace`): its first `requests` rows, in order, replace the ShareGPT lengths, and
    /// with `arrivals: trace` its timestamps are the arrival times.
    #[serde(default)]
    pub trace_file: Option<String>,
}

fn d_think() -> f64 {
    2.0
}
fn d_rate() -> f64 {
    0.02
}
fn d_cap() -> u64 {
    256
}

/// Stock-governor tunables.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StockParams {
    /// CPU schedutil.
    pub cpu: SchedutilParams,
    /// GPU load-threshold governor.
    pub gpu: OndemandParams,
    /// Memory bandwidth governor.
    pub mem: MemBwParams,
    /// The host thread's `uclamp.min` on the 1024 scale, from its task group (used where the SoC
    /// has an energy model, `soc.cpu.eas`). Default 0: llama.cpp started from `adb shell`, as
    /// FUSE's rooted setup does [est], runs in the root/system group, whose vendor_sched
    /// `sys_uclamp_min` init.gs201.rc (device/google/gs201) sets to 0 at zygote-start. A foreground
    /// app would be top-app: `ta_uclamp_min` 1 after boot, and powerhint.json's TAUClampBoost
    /// 246/185/123 (120/90/60 Hz) only for up to 6 s after a touch (INTERACTION hint).
    pub host_uclamp_min: f64,
}

/// Parameters of one `mobile` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileParams {
    /// Phone SoC (preset `soc`).
    pub soc: SocSpec,
    /// Language model (preset `llm`).
    pub llm: LlmShape,
    /// Frequency policy.
    pub governor: GovernorChoice,
    /// Requests.
    pub workload: WorkloadParams,
    /// Inference-engine software.
    #[serde(default)]
    pub engine: EngineParams,
    /// Stock governor tunables (also used for FUSE's energy budget).
    #[serde(default)]
    pub stock: StockParams,
    /// FUSE tunables.
    #[serde(default)]
    pub fuse: FuseParams,
    /// DASH adaptive layer skipping (default: disabled).
    #[serde(default)]
    pub dash: DashParams,
    /// Period of the frequency/util/power series, seconds (0: none).
    #[serde(default)]
    pub series_interval_s: f64,
}

impl Validate for MobileParams {
    fn validate(&self, c: &mut Checks) {
        c.part("soc", &self.soc);
        c.part("llm", &self.llm);
        c.part("engine", &self.engine);
        c.part("stock", &self.stock);
        c.part("fuse", &self.fuse);
        c.part("dash", &self.dash);
        if let GovernorChoice::Fixed { cpu, gpu, mem } = self.governor {
            for (k, v, n) in [
                ("cpu", cpu, self.soc.cpu.dvfs.len()),
                ("gpu", gpu, self.soc.gpu.dvfs.len()),
                ("mem", mem, self.soc.mem.dvfs.len()),
            ] {
                if v >= n {
                    c.fail(
                        &format!("governor.fixed.{k}"),
                        format!("must be an OPP index in 0..{n}, got {v}"),
                    );
                }
            }
        }
        c.part("workload", &self.workload);
        c.non_negative("series_interval_s", self.series_interval_s);
        if self.series_interval_s > 0.0 {
            // One sample per interval is kept in memory; below 1 ms the series outgrows any session.
            c.at_least("series_interval_s", self.series_interval_s, 1e-3);
        }
    }
}

impl Validate for StockParams {
    fn validate(&self, c: &mut Checks) {
        c.part("cpu", &self.cpu);
        c.part("gpu", &self.gpu);
        c.part("mem", &self.mem);
        c.between("host_uclamp_min", self.host_uclamp_min, 0.0, 1024.0);
    }
}

impl Validate for WorkloadParams {
    fn validate(&self, c: &mut Checks) {
        c.at_least("requests", self.requests, 1);
        c.non_negative("think_s", self.think_s);
        c.positive("rate_per_s", self.rate_per_s);
        c.at_least("max_response_tokens", self.max_response_tokens, 1);
        if self.arrivals == ArrivalKind::Trace && self.trace_file.is_none() {
            c.fail(
                "arrivals",
                "`trace` needs a `trace_file` with arrival times",
            );
        }
        if self.trace_file.is_some() && self.fixed_lengths.is_some() {
            c.fail(
                "fixed_lengths",
                "give either `fixed_lengths` or `trace_file`, not both",
            );
        }
        if let Some([p, r]) = self.fixed_lengths
            && (p == 0 || r == 0)
        {
            c.fail(
                "fixed_lengths",
                format!("prompt and response must be ≥ 1 token, got [{p}, {r}]"),
            );
        }
    }
}
