//! Hardware presets of the `supernode` family: an accelerator with its HBM, and the fabric that
//! connects it to the supernode's pooled memory.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// An accelerator (NPU/GPU): device memory and throughput (`models/presets/accel/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// Preset name.
    pub name: String,
    /// Device memory (HBM) capacity, bytes.
    pub hbm_bytes: u64,
    /// Peak HBM bandwidth, bytes per second.
    pub hbm_bandwidth_bytes_per_s: f64,
    /// Peak dense BF16 throughput, FLOP per second.
    pub peak_flops: f64,
    /// Fraction of `peak_flops` large matrix multiplies reach, in (0, 1].
    pub compute_efficiency: f64,
    /// Fraction of the peak HBM bandwidth streaming operators reach, in (0, 1].
    pub hbm_efficiency: f64,
    /// Fixed launch/dispatch time of every operator, seconds.
    pub op_overhead_s: f64,
}

impl Accelerator {
    /// Time of one operator on the compute stream, seconds: a roofline over its FLOPs and the HBM
    /// bytes it reads and writes, plus the launch overhead.
    pub fn op_time_s(&self, flops: f64, hbm_bytes: f64) -> f64 {
        let compute = flops / (self.peak_flops * self.compute_efficiency);
        let memory = hbm_bytes / (self.hbm_bandwidth_bytes_per_s * self.hbm_efficiency);
        compute.max(memory) + self.op_overhead_s
    }
}

impl Validate for Accelerator {
    fn validate(&self, c: &mut Checks) {
        c.at_least("hbm_bytes", self.hbm_bytes, 1);
        c.positive("hbm_bandwidth_bytes_per_s", self.hbm_bandwidth_bytes_per_s);
        c.positive("peak_flops", self.peak_flops);
        for (field, v) in [
            ("compute_efficiency", self.compute_efficiency),
            ("hbm_efficiency", self.hbm_efficiency),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                c.fail(field, format!("must be in (0, 1], got {v}"));
            }
        }
        c.non_negative("op_overhead_s", self.op_overhead_s);
    }
}

/// The link from one accelerator to the pooled memory (`models/presets/fabric/`); each direction
/// (pool → device, device → pool) has its own bandwidth, shared by concurrent transfers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    /// Preset name.
    pub name: String,
    /// Bandwidth of one direction, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Latency added to every transfer, seconds.
    pub latency_s: f64,
    /// Pooled memory available to this accelerator, bytes.
    pub pool_bytes: u64,
}

impl Fabric {
    /// Time to move `bytes` alone on one direction, seconds.
    pub fn transfer_time_s(&self, bytes: f64) -> f64 {
        self.latency_s + bytes / self.bandwidth_bytes_per_s
    }
}

impl Validate for Fabric {
    fn validate(&self, c: &mut Checks) {
        c.positive("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s);
        c.non_negative("latency_s", self.latency_s);
        c.at_least("pool_bytes", self.pool_bytes, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presets::{ACCEL, FABRIC};

    #[test]
    fn every_hardware_preset_parses_and_validates() {
        for (name, text) in ACCEL {
            let a: Accelerator =
                serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.name, *name);
            assert!(Checks::of(&a).is_empty(), "{name}");
        }
        for (name, text) in FABRIC {
            let f: Fabric = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(f.name, *name);
            assert!(Checks::of(&f).is_empty(), "{name}");
        }
        assert_eq!(ACCEL.len(), 4);
        assert_eq!(FABRIC.len(), 3);
    }

    #[test]
    fn roofline_is_compute_or_memory_bound() {
        let a = Accelerator {
            name: "x".into(),
            hbm_bytes: 1,
            hbm_bandwidth_bytes_per_s: 1e12,
            peak_flops: 1e15,
            compute_efficiency: 0.5,
            hbm_efficiency: 1.0,
            op_overhead_s: 0.0,
        };
        assert_eq!(a.op_time_s(1e12, 0.0), 2e-3);
        assert_eq!(a.op_time_s(0.0, 1e9), 1e-3);
    }
}
