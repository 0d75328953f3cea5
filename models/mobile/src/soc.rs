//! Phone SoC description: the three DVFS domains FUSE tunes (the CPU cluster running the inference
//! host thread, the GPU, the memory interface) with their operating points, power-model
//! coefficients and throughput per cycle, plus the rest-of-phone base power.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::components::dvfs::{DvfsSpec, Opp};
use sim::validate::{Checks, Validate};

use super::altdvfs::AltDvfsParams;
use super::eas::EasParams;
use super::memlat::MemlatParams;
use super::quickstep::QuickstepTable;

/// Operating points and power model shared by the three domain kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainOpps {
    /// Operating frequencies, MHz, strictly increasing.
    pub opps_mhz: Vec<f64>,
    /// Supply voltage at the lowest OPP, volts (voltages are linear in frequency between the ends).
    pub volt_lo_v: f64,
    /// Supply voltage at the highest OPP, volts.
    pub volt_hi_v: f64,
    /// Effective switched capacitance, nanofarads (dynamic power = C·V²·f·util).
    pub c_eff_nf: f64,
    /// Static power at the highest voltage, watts (scaled by (V/V_max)² below it).
    pub static_w: f64,
    /// OPP switch latency, microseconds.
    #[serde(default)]
    pub transition_us: f64,
}

impl DomainOpps {
    /// The `sim` DVFS-domain spec of these operating points, starting at OPP `initial_opp`.
    pub fn dvfs(&self, initial_opp: usize) -> DvfsSpec {
        let (lo, hi) = (self.opps_mhz[0], self.opps_mhz[self.opps_mhz.len() - 1]);
        let opps = self
            .opps_mhz
            .iter()
            .map(|&f| {
                let x = if hi > lo { (f - lo) / (hi - lo) } else { 1.0 };
                Opp {
                    freq_hz: f * 1e6,
                    volt_v: self.volt_lo_v + x * (self.volt_hi_v - self.volt_lo_v),
                }
            })
            .collect();
        DvfsSpec {
            opps,
            c_eff_f: self.c_eff_nf * 1e-9,
            static_w: self.static_w,
            static_volt_exponent: 2.0,
            transition_s: self.transition_us * 1e-6,
            initial_opp: initial_opp.min(self.opps_mhz.len().saturating_sub(1)),
        }
    }

    /// Number of operating points.
    pub fn len(&self) -> usize {
        self.opps_mhz.len()
    }

    /// Whether the table is empty (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.opps_mhz.is_empty()
    }

    /// Frequency of OPP `i`, hertz.
    pub fn freq_hz(&self, i: usize) -> f64 {
        self.opps_mhz[i] * 1e6
    }
}

impl Validate for DomainOpps {
    fn validate(&self, c: &mut Checks) {
        if self.opps_mhz.is_empty() {
            c.fail("opps_mhz", "must list at least one frequency");
        }
        if self.opps_mhz.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
            c.fail("opps_mhz", "every frequency must be finite and > 0 MHz");
        }
        if self.opps_mhz.windows(2).any(|w| w[1] <= w[0]) {
            c.fail("opps_mhz", "must be strictly increasing");
        }
        c.positive("volt_lo_v", self.volt_lo_v);
        c.positive("volt_hi_v", self.volt_hi_v);
        if self.volt_hi_v < self.volt_lo_v {
            c.fail(
                "volt_hi_v",
                format!(
                    "must be ≥ volt_lo_v ({}), got {}",
                    self.volt_lo_v, self.volt_hi_v
                ),
            );
        }
        c.non_negative("c_eff_nf", self.c_eff_nf);
        c.non_negative("static_w", self.static_w);
        c.non_negative("transition_us", self.transition_us);
    }
}

/// The CPU cluster that runs the inference engine's host thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuSpec {
    /// Which cores, for the record.
    #[serde(default)]
    pub cluster: String,
    /// Operating points and power model.
    pub dvfs: DomainOpps,
    /// FLOPs per cycle of the CPU-side operators (norms, RoPE, attention, sampling).
    pub flops_per_cycle: f64,
    /// The energy model of all CPU clusters, where the SoC's is public: the stock trio then
    /// places the host thread by EAS and runs schedutil per cluster (`eas`); absent, the host stays
    /// on this domain under plain schedutil.
    #[serde(default)]
    pub eas: Option<EasParams>,
}

/// The GPU that runs the matrix multiplications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Marketing name, for the record.
    #[serde(default)]
    pub name: String,
    /// Operating points and power model.
    pub dvfs: DomainOpps,
    /// Effective FLOPs per cycle of matrix–vector kernels (decode).
    pub gemv_flops_per_cycle: f64,
    /// Effective FLOPs per cycle of matrix–matrix kernels (prefill).
    pub gemm_flops_per_cycle: f64,
    /// The stock GPU governor's per-level table where the vendor ships `quickstep` (Pixel); absent,
    /// the stock trio uses the generic load-threshold governor.
    #[serde(default)]
    pub quickstep: Option<QuickstepTable>,
}

/// The memory interface (memory controller + DRAM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemSpec {
    /// DRAM type and width, for the record.
    #[serde(default)]
    pub name: String,
    /// Operating points (memory-interface clock) and power model.
    pub dvfs: DomainOpps,
    /// Bytes per memory-interface clock at peak (bus width × transfers per clock).
    pub bytes_per_cycle: f64,
    /// Achievable fraction of peak bandwidth, in (0, 1].
    pub efficiency: f64,
    /// The stock memory governor where the vendor ships devfreq `interactive` with ALT-DVFS
    /// (Exynos/Tensor); absent, the stock trio uses the generic bandwidth governor (`stock.mem`).
    #[serde(default)]
    pub interactive: Option<AltDvfsParams>,
    /// The host cluster's memlat vote on the memory domain (with `interactive` only).
    #[serde(default)]
    pub memlat: Option<MemlatParams>,
}

impl MemSpec {
    /// Achievable bandwidth at OPP `i`, bytes per second.
    pub fn bandwidth_bps(&self, i: usize) -> f64 {
        self.dvfs.freq_hz(i) * self.bytes_per_cycle * self.efficiency
    }
}

/// A phone SoC as FUSE sees it: three DVFS domains and the rest of the phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SocSpec {
    /// Preset name.
    pub name: String,
    /// CPU cluster running the host thread.
    pub cpu: CpuSpec,
    /// GPU.
    pub gpu: GpuSpec,
    /// Memory interface.
    pub mem: MemSpec,
    /// Power of the rest of the phone, watts (constant).
    pub base_w: f64,
}

impl Validate for CpuSpec {
    fn validate(&self, c: &mut Checks) {
        c.part("dvfs", &self.dvfs);
        c.positive("flops_per_cycle", self.flops_per_cycle);
        if let Some(e) = &self.eas {
            c.part("eas", e);
            if e.clusters.last().map(|k| &k.opps_mhz) != Some(&self.dvfs.opps_mhz) {
                c.fail(
                    "eas.clusters",
                    "the last cluster must be this CPU domain: repeat `cpu.dvfs.opps_mhz`",
                );
            }
        }
    }
}

impl Validate for GpuSpec {
    fn validate(&self, c: &mut Checks) {
        c.part("dvfs", &self.dvfs);
        c.positive("gemv_flops_per_cycle", self.gemv_flops_per_cycle);
        c.positive("gemm_flops_per_cycle", self.gemm_flops_per_cycle);
        if let Some(q) = &self.quickstep {
            c.part("quickstep", q);
            if q.up_util_pct.len() != self.dvfs.len() {
                c.fail(
                    "quickstep.up_util_pct",
                    format!(
                        "needs one entry per GPU OPP ({}), got {}",
                        self.dvfs.len(),
                        q.up_util_pct.len()
                    ),
                );
            }
            if !q.mif_min_mhz.is_empty() && q.mif_min_mhz.len() != self.dvfs.len() {
                c.fail(
                    "quickstep.mif_min_mhz",
                    format!(
                        "needs one entry per GPU OPP ({}) or none, got {}",
                        self.dvfs.len(),
                        q.mif_min_mhz.len()
                    ),
                );
            }
        }
    }
}

impl Validate for MemSpec {
    fn validate(&self, c: &mut Checks) {
        c.part("dvfs", &self.dvfs);
        c.positive("bytes_per_cycle", self.bytes_per_cycle);
        if let Some(a) = &self.interactive {
            c.part("interactive", a);
        }
        if let Some(m) = &self.memlat {
            c.part("memlat", m);
            if self.interactive.is_none() {
                c.fail("memlat", "memlat votes only alongside `interactive`");
            }
        }
        if !(self.efficiency > 0.0 && self.efficiency <= 1.0) {
            c.fail(
                "efficiency",
                format!("must be in (0, 1], got {}", self.efficiency),
            );
        }
    }
}

impl Validate for SocSpec {
    fn validate(&self, c: &mut Checks) {
        c.part("cpu", &self.cpu);
        c.part("gpu", &self.gpu);
        c.part("mem", &self.mem);
        c.non_negative("base_w", self.base_w);
    }
}

impl SocSpec {
    /// Operating points of domain `d`.
    pub fn domain(&self, d: Domain) -> &DomainOpps {
        match d {
            Domain::Cpu => &self.cpu.dvfs,
            Domain::Gpu => &self.gpu.dvfs,
            Domain::Mem => &self.mem.dvfs,
        }
    }
}

/// One of the three DVFS domains; its index is its power-source id in the energy meter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// CPU cluster.
    Cpu,
    /// GPU.
    Gpu,
    /// Memory interface.
    Mem,
}

impl Domain {
    /// The three domains in id order.
    pub const ALL: [Domain; 3] = [Domain::Cpu, Domain::Gpu, Domain::Mem];

    /// Power-source id (0, 1, 2); the base power is source 3.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Lower-case name used in metrics and series.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Cpu => "cpu",
            Domain::Gpu => "gpu",
            Domain::Mem => "mem",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presets::SOC;

    #[test]
    fn every_soc_preset_parses_and_validates() {
        assert!(SOC.len() >= 3);
        for (name, text) in SOC {
            let s: SocSpec = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, *name);
            assert!(Checks::of(&s).is_empty(), "{name}: {:?}", Checks::of(&s));
            for d in Domain::ALL {
                assert!(Checks::of(&s.domain(d).dvfs(0)).is_empty());
            }
        }
    }

    #[test]
    fn pixel7_x1_power_fit_reproduces_the_energy_model_point() {
        let text = SOC.iter().find(|(n, _)| *n == "pixel-7").unwrap().1;
        let s: SocSpec = serde_norway::from_str(text).unwrap();
        let spec = s.cpu.dvfs.dvfs(0);
        let top = spec.opps.len() - 1;
        assert_eq!(spec.opps[top].freq_hz, 2850e6);
        // X1@2850 → 1816 mW (GS201 energy model): dynamic power at full util within 1%
        assert!(
            (spec.dynamic_w(top, 1.0) - 1.816).abs() < 0.02,
            "{}",
            spec.dynamic_w(top, 1.0)
        );
        assert_eq!(s.gpu.dvfs.len(), 11);
        assert_eq!(s.cpu.dvfs.len(), 18);
    }
}
