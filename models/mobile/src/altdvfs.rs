//! Memory-interface (MIF) governor `interactive` with Samsung's ALT-DVFS, as shipped on Pixel 7
//! (`drivers/devfreq/google/governor_simpleinteractive.c`, `calculate_freq` / `update_load`), with
//! the tunables of the SoC's device tree (GS201: `gs201.dtsi`, node `devfreq_mif@17000010`).
//!
//! Each evaluation (its timer re-arms every `2 × min_sample_time`):
//! * the bus load of the closed sample is `busy · 1000 / total` (per mille, integer, as the source);
//! * the governing load is the largest sample within the last `hold_sample_time` (a higher load
//!   takes over at once; a lower one only once the higher has aged out of the window); a sample
//!   under `tolerance` resets the governing load to it;
//! * the request is `load · f_cur / target_load`, limited to `[f_cur / 2, 2 · f_cur]`, raised to
//!   `hispeed_freq` when the load exceeds `hispeed_load`.
//!
//! The requested frequency is then maxed with the PM-QoS floors (GPU table, memlat votes) and
//! rounded up to an OPP by the caller.

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// ALT-DVFS tunables of one devfreq domain (device-tree properties of the same names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AltDvfsParams {
    /// Target bus load, in the units of the load (busy · 1000 / total, per mille).
    pub target_load: f64,
    /// Shortest sample that counts, milliseconds (the timer fires every twice this).
    pub min_sample_time_ms: f64,
    /// Window over which the largest load governs, milliseconds.
    pub hold_sample_time_ms: f64,
    /// Load above which at least `hispeed_freq_mhz` is requested, per mille.
    pub hispeed_load: f64,
    /// Frequency requested above `hispeed_load`, MHz.
    pub hispeed_freq_mhz: f64,
    /// Loads under this reset the governing load, per mille (`ALTDVFS_TOLERANCE` = 1).
    #[serde(default = "d_tolerance")]
    pub tolerance: f64,
}

fn d_tolerance() -> f64 {
    1.0
}

impl Validate for AltDvfsParams {
    fn validate(&self, c: &mut Checks) {
        c.positive("target_load", self.target_load);
        c.positive("min_sample_time_ms", self.min_sample_time_ms);
        c.positive("hold_sample_time_ms", self.hold_sample_time_ms);
        c.non_negative("hispeed_load", self.hispeed_load);
        c.non_negative("hispeed_freq_mhz", self.hispeed_freq_mhz);
        c.non_negative("tolerance", self.tolerance);
    }
}

impl AltDvfsParams {
    /// Evaluation period: the governor's timer is re-armed `2 × min_sample_time` ahead, seconds.
    pub fn period_s(&self) -> f64 {
        2.0 * self.min_sample_time_ms * 1e-3
    }
}

/// State of the ALT-DVFS load tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AltDvfs {
    /// Tunables.
    pub params: AltDvfsParams,
    /// Closed samples, newest last: (duration s, load per mille).
    samples: VecDeque<(f64, f64)>,
}

impl AltDvfs {
    /// A tracker with no history.
    pub fn new(params: AltDvfsParams) -> Self {
        Self {
            params,
            samples: VecDeque::new(),
        }
    }

    /// The frequency (MHz) requested after a sample of `dur_s` seconds with bus busy fraction
    /// `busy` at the current frequency `cur_mhz` (before QoS floors and OPP rounding).
    pub fn update(&mut self, dur_s: f64, busy: f64, cur_mhz: f64) -> f64 {
        let p = &self.params;
        let load = (busy.clamp(0.0, 1.0) * 1000.0).floor();
        if dur_s * 1e3 > p.min_sample_time_ms {
            self.samples.push_back((dur_s, load));
        }
        // keep the samples that end within the hold window (the newest always stays)
        let hold_s = p.hold_sample_time_ms * 1e-3;
        let mut spent = 0.0;
        let mut keep = 0;
        for &(d, _) in self.samples.iter().rev() {
            keep += 1;
            spent += d;
            if spent >= hold_s {
                break;
            }
        }
        while self.samples.len() > keep {
            self.samples.pop_front();
        }
        let newest = self.samples.back().map_or(0.0, |s| s.1);
        let governing = if newest < p.tolerance {
            self.samples.clear();
            newest
        } else {
            self.samples.iter().map(|s| s.1).fold(0.0, f64::max)
        };
        let mut f = governing * cur_mhz / p.target_load;
        f = f.clamp(cur_mhz / 2.0, cur_mhz * 2.0);
        if governing > p.hispeed_load && p.hispeed_freq_mhz > f {
            f = p.hispeed_freq_mhz;
        }
        f
    }
}

/// The lowest OPP whose frequency is at least `mhz` (the top one when none is).
pub fn ceil_opp(opps_mhz: &[f64], mhz: f64) -> usize {
    opps_mhz
        .iter()
        .position(|&f| f >= mhz - 1e-9)
        .unwrap_or(opps_mhz.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gs201() -> AltDvfsParams {
        AltDvfsParams {
            target_load: 40.0,
            min_sample_time_ms: 20.0,
            hold_sample_time_ms: 60.0,
            hispeed_load: 100.0,
            hispeed_freq_mhz: 1352.0,
            tolerance: 1.0,
        }
    }

    #[test]
    fn hand_computed_trace() {
        let mut g = AltDvfs::new(gs201());
        // 3 % busy at 421 MHz: 30‰ · 421 / 40 = 315.75 → clamped to ≥ 210.5
        assert!((g.update(0.04, 0.03, 421.0) - 315.75).abs() < 1e-9);
        // 30 % busy: 300‰ > hispeed 100‰; 300·421/40 = 3157 → capped at 2× = 842 < 1352 → 1352
        assert_eq!(g.update(0.04, 0.30, 421.0), 1352.0);
        // a quiet sample (2 %) at 1352 MHz: the 300‰ sample is still within 60 ms → 2704 (2×)
        assert_eq!(g.update(0.04, 0.02, 1352.0), 2704.0);
        // another quiet sample: the 300‰ one has aged out; 20·1352/40 = 676
        assert!((g.update(0.04, 0.02, 1352.0) - 676.0).abs() < 1e-9);
        // idle (0 ‰ < tolerance): history reset, halve at most
        assert_eq!(g.update(0.04, 0.0, 676.0), 338.0);
    }

    #[test]
    fn ceil_opp_rounds_up() {
        let o = [421.0, 546.0, 676.0];
        assert_eq!(ceil_opp(&o, 0.0), 0);
        assert_eq!(ceil_opp(&o, 546.0), 1);
        assert_eq!(ceil_opp(&o, 547.0), 2);
        assert_eq!(ceil_opp(&o, 9e9), 2);
    }
}
