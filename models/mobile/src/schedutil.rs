//! CPU governor: schedutil as EAS/sched-pixel runs it — a PELT-style decayed, frequency-invariant
//! utilisation, 1.25 headroom, the lowest OPP at or above `1.25·f_max·util`, and separate up/down
//! rate limits (Linux kernel/sched/cpufreq_schedutil.c; PELT half-life 32 ms).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// Tunables of [`Schedutil`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SchedutilParams {
    /// Utilisation update period (scheduler tick, HZ = 250), seconds.
    pub period_s: f64,
    /// PELT half-life, seconds.
    pub halflife_s: f64,
    /// Frequency headroom factor (1.25 in mainline).
    pub headroom: f64,
    /// Minimum time between a change and a raise, seconds (sched-pixel up_rate_limit_us).
    pub up_rate_limit_s: f64,
    /// Minimum time between a change and a lowering, seconds (down_rate_limit_us).
    pub down_rate_limit_s: f64,
}

impl Default for SchedutilParams {
    fn default() -> Self {
        Self {
            period_s: 0.004,
            halflife_s: 0.032,
            headroom: 1.25,
            up_rate_limit_s: 0.0005,
            down_rate_limit_s: 0.02,
        }
    }
}

impl Validate for SchedutilParams {
    fn validate(&self, c: &mut Checks) {
        c.positive("period_s", self.period_s);
        c.positive("halflife_s", self.halflife_s);
        c.positive("headroom", self.headroom);
        c.non_negative("up_rate_limit_s", self.up_rate_limit_s);
        c.non_negative("down_rate_limit_s", self.down_rate_limit_s);
    }
}

/// State of the schedutil algorithm for one CPU cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedutil {
    /// Tunables.
    pub params: SchedutilParams,
    /// Decayed, frequency-invariant utilisation in [0, 1] of the cluster's capacity.
    pub util_avg: f64,
    /// Time of the last frequency change, seconds.
    last_change_s: f64,
}

impl Schedutil {
    /// A governor with zero utilisation history.
    pub fn new(params: SchedutilParams) -> Self {
        Self {
            params,
            util_avg: 0.0,
            last_change_s: f64::NEG_INFINITY,
        }
    }

    /// One update at `now_s` after a period with busy fraction `busy` at OPP `cur` of `freqs_hz`:
    /// returns the OPP to request (possibly `cur`).
    pub fn update(&mut self, now_s: f64, busy: f64, cur: usize, freqs_hz: &[f64]) -> usize {
        let f_max = freqs_hz[freqs_hz.len() - 1];
        let y = 0.5f64.powf(self.params.period_s / self.params.halflife_s);
        let invariant = busy.clamp(0.0, 1.0) * freqs_hz[cur] / f_max;
        self.util_avg = self.util_avg * y + (1.0 - y) * invariant;
        let target = self.params.headroom * f_max * self.util_avg;
        let next = freqs_hz
            .iter()
            .position(|&f| f >= target)
            .unwrap_or(freqs_hz.len() - 1);
        let since = now_s - self.last_change_s;
        let allowed = (next > cur && since >= self.params.up_rate_limit_s)
            || (next < cur && since >= self.params.down_rate_limit_s);
        if allowed {
            self.last_change_s = now_s;
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
        // 4 OPPs 0.5/1/1.5/2 GHz; period = half-life so y = 0.5
        let f = [0.5e9, 1.0e9, 1.5e9, 2.0e9];
        let p = SchedutilParams {
            period_s: 0.01,
            halflife_s: 0.01,
            headroom: 1.25,
            up_rate_limit_s: 0.0,
            down_rate_limit_s: 0.02,
        };
        let mut g = Schedutil::new(p);
        // fully busy at 0.5 GHz: invariant util 0.25 → avg 0.125 → target 0.3125 GHz → OPP 0
        assert_eq!(g.update(0.01, 1.0, 0, &f), 0);
        assert!((g.util_avg - 0.125).abs() < 1e-12);
        // busy again: avg 0.1875 → target 0.46875 GHz → OPP 0
        assert_eq!(g.update(0.02, 1.0, 0, &f), 0);
        // busy at OPP 3 (invariant 1.0): avg 0.59375 → target 1.484 GHz → OPP 2 (raise, no up limit)
        assert_eq!(g.update(0.03, 1.0, 3, &f), 2);
        // idle: avg 0.296875 → target 0.742 GHz → OPP 1, but the down rate limit (20 ms) holds OPP 2
        assert_eq!(g.update(0.04, 0.0, 2, &f), 2);
        // 20 ms after the change: avg 0.1484 → 0.371 GHz → OPP 0
        assert_eq!(g.update(0.05, 0.0, 2, &f), 0);
    }
}
