//! Participant device profiles: compute speed, access-link bandwidths and latency, availability and
//! dropout, drawn per participant from a heterogeneous mix.

use rand_distr::{Distribution, LogNormal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

use sim::experiment::RunError;
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use super::device_trace;

/// One participant's device and connectivity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// Sustained training throughput, FLOP/s.
    pub flops_per_s: f64,
    /// Uplink bandwidth, bytes/s.
    pub up_bytes_per_s: f64,
    /// Downlink bandwidth, bytes/s.
    pub down_bytes_per_s: f64,
    /// One-way access latency, seconds.
    pub latency_s: f64,
    /// Probability the participant is online when a round starts, in [0, 1].
    pub availability: f64,
    /// Probability an online participant drops out during the round (no upload), in [0, 1].
    pub dropout: f64,
    /// Median time from the round's start until the participant checks in and starts working
    /// (app scheduling, idle/charging conditions), seconds; drawn per round (lognormal).
    pub checkin_s_median: f64,
    /// Lognormal σ of the check-in time.
    pub checkin_sigma: f64,
}

/// The population's device mix: medians and lognormal spreads (σ of ln) of the profile fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceMix {
    /// Median sustained training throughput, GFLOP/s (a phone CPU core running a small dense
    /// model reaches a few GFLOP/s; estimate).
    pub gflops_median: f64,
    /// Median uplink bandwidth, Mbit/s.
    pub up_mbps_median: f64,
    /// Median downlink bandwidth, Mbit/s.
    pub down_mbps_median: f64,
    /// Lognormal σ applied to compute and bandwidths (0 = homogeneous).
    pub sigma: f64,
    /// One-way access latency, ms.
    pub latency_ms: f64,
    /// Probability a participant is online at a round start, in [0, 1].
    pub availability: f64,
    /// Probability an online participant drops out mid-round, in [0, 1].
    pub dropout: f64,
    /// Median check-in delay after a round starts, seconds (on-device FL rounds take minutes:
    /// devices start when idle and charging, Bonawitz et al., MLSys 2019; estimate).
    pub checkin_s_median: f64,
    /// A device trace (CSV: `gflops`, `up_mbps`, `down_mbps`, optional `latency_ms`,
    /// `availability`, `dropout`; see `device_trace`) replacing the drawn profiles: participant `i`
    /// takes row `i mod rows`. A path relative to the working directory.
    pub trace_file: Option<String>,
}

impl Default for DeviceMix {
    fn default() -> Self {
        Self {
            gflops_median: 2.0,
            up_mbps_median: 10.0,
            down_mbps_median: 50.0,
            sigma: 0.8,
            latency_ms: 40.0,
            availability: 0.95,
            dropout: 0.05,
            checkin_s_median: 10.0,
            trace_file: None,
        }
    }
}

impl DeviceMix {
    /// The default mix with every participant online and no mid-round dropouts (the learning
    /// studies' default: every client trains every round unless the scenario says otherwise).
    pub fn reliable() -> Self {
        Self {
            availability: 1.0,
            dropout: 0.0,
            ..Self::default()
        }
    }

    /// The profiles of `n` participants: from the trace file when one is set (an unreadable file or
    /// a bad row is an error naming file, line and column), else drawn from the mix.
    pub fn profiles(&self, n: usize, rng: &mut Rng) -> Result<Vec<DeviceProfile>, RunError> {
        let Some(file) = &self.trace_file else {
            return Ok(self.sample(n, rng));
        };
        let rows = device_trace::load(Path::new(file), self).map_err(RunError::Model)?;
        Ok((0..n).map(|i| rows[i % rows.len()]).collect())
    }

    /// Draws `n` device profiles.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Vec<DeviceProfile> {
        let ln = LogNormal::new(0.0, self.sigma).expect("sigma checked");
        (0..n)
            .map(|_| DeviceProfile {
                flops_per_s: self.gflops_median * 1e9 * ln.sample(rng),
                up_bytes_per_s: self.up_mbps_median * 1e6 / 8.0 * ln.sample(rng),
                down_bytes_per_s: self.down_mbps_median * 1e6 / 8.0 * ln.sample(rng),
                latency_s: self.latency_ms * 1e-3,
                availability: self.availability,
                dropout: self.dropout,
                checkin_s_median: self.checkin_s_median,
                checkin_sigma: self.sigma,
            })
            .collect()
    }
}

impl Validate for DeviceMix {
    fn validate(&self, c: &mut Checks) {
        c.positive("gflops_median", self.gflops_median);
        c.positive("up_mbps_median", self.up_mbps_median);
        c.positive("down_mbps_median", self.down_mbps_median);
        c.within("sigma", self.sigma, 0.0, 5.0);
        c.within("latency_ms", self.latency_ms, 0.0, 1e6);
        c.within("checkin_s_median", self.checkin_s_median, 0.0, 1e6);
        c.fraction("availability", self.availability);
        c.fraction("dropout", self.dropout);
        if self.availability == 0.0 {
            c.fail("availability", "must be > 0, got 0");
        }
    }
}
