//! GPU governor: load-threshold stepping in the manner of Linux devfreq `simple_ondemand`
//! (drivers/devfreq/governor_simpleondemand.c), our stand-in for the Pixel's Mali `quickstep`:
//! above `up_threshold` busy go to the highest OPP; within `down_differential` below it stay;
//! otherwise scale the frequency to `f·load/(up − down/2)` and take the lowest OPP at or above it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// Tunables of the GPU governor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OndemandParams {
    /// Polling period, seconds.
    pub period_s: f64,
    /// Busy fraction above which the GPU jumps to its highest OPP, in (0, 1].
    pub up_threshold: f64,
    /// Hysteresis band below `up_threshold` in which the OPP is kept, in [0, up_threshold).
    pub down_differential: f64,
}

impl Default for OndemandParams {
    fn default() -> Self {
        Self {
            period_s: 0.02,
            up_threshold: 0.90,
            down_differential: 0.05,
        }
    }
}

impl Validate for OndemandParams {
    fn validate(&self, c: &mut Checks) {
        c.positive("period_s", self.period_s);
        if !(self.up_threshold > 0.0 && self.up_threshold <= 1.0) {
            c.fail(
                "up_threshold",
                format!("must be in (0, 1], got {}", self.up_threshold),
            );
        }
        if !(self.down_differential >= 0.0 && self.down_differential < self.up_threshold) {
            c.fail(
                "down_differential",
                format!(
                    "must be in [0, up_threshold = {}), got {}",
                    self.up_threshold, self.down_differential
                ),
            );
        }
    }
}

impl OndemandParams {
    /// The OPP after a period with busy fraction `load` at OPP `cur` of `freqs_hz`.
    pub fn decide(&self, load: f64, cur: usize, freqs_hz: &[f64]) -> usize {
        let last = freqs_hz.len() - 1;
        if load > self.up_threshold {
            return last;
        }
        if load > self.up_threshold - self.down_differential {
            return cur;
        }
        let target = freqs_hz[cur] * load / (self.up_threshold - self.down_differential / 2.0);
        freqs_hz.iter().position(|&f| f >= target).unwrap_or(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_trace() {
        let f = [200e6, 400e6, 600e6, 800e6];
        let g = OndemandParams::default();
        assert_eq!(g.decide(0.95, 0, &f), 3); // > 90 %: max
        assert_eq!(g.decide(0.88, 2, &f), 2); // in (85 %, 90 %]: keep
        // 60 % at 800 MHz: 800·0.6/0.875 = 548.6 MHz → 600 MHz
        assert_eq!(g.decide(0.60, 3, &f), 2);
        // 10 % at 400 MHz: 45.7 MHz → lowest
        assert_eq!(g.decide(0.10, 1, &f), 0);
    }
}
