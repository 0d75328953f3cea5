//! Parameters of the `mobile` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, Validate};

use super::cost::EngineParams;
use super::dash::DashParams;
use super::fuse::FuseParams;
use super::membw::MemBwParams;
use super::ondemand::OndemandParams;
use super::schedutil::SchedutilParams;
use super::soc::SocSpec;
use crate::llm::LlmShape;

/// Who sets the three domains' frequencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalKind {
    /// Closed-loop chat: one request at a time, think time between answer and next prompt.
    Closed,
    /// Open-loop Poisson arrivals.
    Poisson,
}

/// The request workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadParams {
    /// Arrival process.
    #[serde(default = "d_arrivals")]
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
}

fn d_arrivals() -> ArrivalKind {
    ArrivalKind::Closed
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
#[serde(deny_unknown_fields)]
pub struct StockParams {
    /// CPU schedutil.
    #[serde(default)]
    pub cpu: SchedutilParams,
    /// GPU load-threshold governor.
    #[serde(default)]
    pub gpu: OndemandParams,
    /// Memory bandwidth governor.
    #[serde(default)]
    pub mem: MemBwParams,
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
    fn validate(&self) -> Vec<ParamError> {
        let mut e = self.soc.validate("soc");
        e.extend(self.llm.validate("llm"));
        e.extend(self.engine.validate("engine"));
        e.extend(self.stock.cpu.validate("stock.cpu"));
        e.extend(self.stock.gpu.validate("stock.gpu"));
        e.extend(self.stock.mem.validate("stock.mem"));
        e.extend(self.fuse.validate("fuse"));
        e.extend(self.dash.validate("dash"));
        if let GovernorChoice::Fixed { cpu, gpu, mem } = self.governor {
            for (k, v, n) in [
                ("cpu", cpu, self.soc.cpu.dvfs.len()),
                ("gpu", gpu, self.soc.gpu.dvfs.len()),
                ("mem", mem, self.soc.mem.dvfs.len()),
            ] {
                if v >= n {
                    e.push(ParamError::new(
                        format!("governor.fixed.{k}"),
                        format!("must be an OPP index in 0..{n}, got {v}"),
                    ));
                }
            }
        }
        let w = &self.workload;
        if w.requests == 0 {
            e.push(ParamError::new("workload.requests", "must be ≥ 1, got 0"));
        }
        if !(w.think_s.is_finite() && w.think_s >= 0.0) {
            e.push(ParamError::new(
                "workload.think_s",
                format!("must be finite and ≥ 0 s, got {}", w.think_s),
            ));
        }
        if !(w.rate_per_s.is_finite() && w.rate_per_s > 0.0) {
            e.push(ParamError::new(
                "workload.rate_per_s",
                format!("must be finite and > 0, got {}", w.rate_per_s),
            ));
        }
        if w.max_response_tokens == 0 {
            e.push(ParamError::new(
                "workload.max_response_tokens",
                "must be ≥ 1, got 0",
            ));
        }
        if let Some([p, r]) = w.fixed_lengths
            && (p == 0 || r == 0)
        {
            e.push(ParamError::new(
                "workload.fixed_lengths",
                format!("prompt and response must be ≥ 1 token, got [{p}, {r}]"),
            ));
        }
        if !(self.series_interval_s.is_finite() && self.series_interval_s >= 0.0) {
            e.push(ParamError::new(
                "series_interval_s",
                format!("must be finite and ≥ 0 s, got {}", self.series_interval_s),
            ));
        }
        e
    }
}
