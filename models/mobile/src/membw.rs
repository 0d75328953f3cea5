//! Memory governor: bandwidth-demand driven, in the manner of the Exynos MIF `interactive` /
//! Qualcomm `bw_hwmon` devfreq governors: measure the bytes moved over the last period, ask for the
//! lowest memory OPP whose bandwidth keeps the measured demand at or under `target_util` of it,
//! raise at once, lower only after `down_hold` consecutive periods asking for less.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// Tunables of the memory governor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MemBwParams {
    /// Sampling period, seconds.
    pub period_s: f64,
    /// Bandwidth utilisation the governor aims at, in (0, 1].
    pub target_util: f64,
    /// Consecutive periods of lower demand before the OPP is lowered (≥ 1).
    pub down_hold: u32,
}

impl Default for MemBwParams {
    fn default() -> Self {
        Self {
            period_s: 0.02,
            target_util: 0.6,
            down_hold: 3,
        }
    }
}

impl Validate for MemBwParams {
    fn validate(&self, c: &mut Checks) {
        c.positive("period_s", self.period_s);
        if !(self.target_util > 0.0 && self.target_util <= 1.0) {
            c.fail(
                "target_util",
                format!("must be in (0, 1], got {}", self.target_util),
            );
        }
        c.at_least("down_hold", self.down_hold, 1);
    }
}

/// State of the memory governor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemBw {
    /// Tunables.
    pub params: MemBwParams,
    /// Consecutive periods that asked for a lower OPP.
    below: u32,
}

impl MemBw {
    /// A governor with no history.
    pub fn new(params: MemBwParams) -> Self {
        Self { params, below: 0 }
    }

    /// The OPP after a period whose bandwidth utilisation was `util` at OPP `cur` of `bw_bps`
    /// (achievable bandwidth of each OPP, bytes/s).
    pub fn update(&mut self, util: f64, cur: usize, bw_bps: &[f64]) -> usize {
        let demand = util.clamp(0.0, 1.0) * bw_bps[cur];
        let need = demand / self.params.target_util;
        let next = bw_bps
            .iter()
            .position(|&b| b >= need)
            .unwrap_or(bw_bps.len() - 1);
        if next >= cur {
            self.below = 0;
            return next;
        }
        self.below += 1;
        if self.below >= self.params.down_hold {
            self.below = 0;
            next
        } else {
            cur
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_trace() {
        let bw = [10e9, 20e9, 30e9, 40e9];
        let mut g = MemBw::new(MemBwParams {
            period_s: 0.02,
            target_util: 0.5,
            down_hold: 2,
        });
        // 80 % of 10 GB/s = 8 GB/s → needs 16 GB/s → OPP 1 (raise at once)
        assert_eq!(g.update(0.8, 0, &bw), 1);
        // 90 % of 20 = 18 → 36 → OPP 3
        assert_eq!(g.update(0.9, 1, &bw), 3);
        // 10 % of 40 = 4 → 8 → OPP 0, held once, then lowered
        assert_eq!(g.update(0.1, 3, &bw), 3);
        assert_eq!(g.update(0.1, 3, &bw), 0);
    }
}
