//! GPU governor `quickstep`, as shipped on Pixel phones (Google's Mali platform integration,
//! `mali_kbase/platform/pixel/pixel_gpu_dvfs_governor.c`, `gpu_dvfs_governor_quickstep`), driven by
//! the per-level table of the SoC's device tree (`gpu_dvfs_table_v2`: down util, up util,
//! hysteresis ticks per level; GS201's is in `arch/arm64/boot/dts/google/gs201-gpu.dtsi`).
//!
//! Each evaluation, with the GPU's busy percentage `util` over the last period:
//! * `util` above the level's up bound: if it is closer to 100 % than to the bound (and `step_up`
//!   levels exist above) jump `step_up` levels and arm half the new level's hysteresis, else go up
//!   one level and arm its full hysteresis;
//! * `util` below the level's down bound: count the hysteresis down, and drop one level when it
//!   reaches zero (re-arming the new level's hysteresis);
//! * otherwise stay and re-arm the hysteresis.
//!
//! Levels here are indexed from the lowest frequency up (the kernel counts from the highest down).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// A device tree's quickstep table, one entry per GPU OPP from the lowest frequency up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickstepTable {
    /// Utilisation below which the level counts down towards a drop, percent.
    pub down_util_pct: Vec<f64>,
    /// Utilisation above which the governor clocks up, percent.
    pub up_util_pct: Vec<f64>,
    /// Evaluations below the down bound before dropping one level.
    pub hysteresis_ticks: Vec<u32>,
    /// Levels skipped at once when the utilisation is nearer 100 % than the up bound.
    pub step_up: usize,
    /// Evaluation period (the Mali DVFS utilisation period), seconds.
    pub period_s: f64,
    /// Memory-interface floor the GPU driver votes at each level (the table's `mif min` column),
    /// MHz, 0 = none; empty: no votes.
    #[serde(default)]
    pub mif_min_mhz: Vec<f64>,
}

impl Validate for QuickstepTable {
    fn validate(&self, c: &mut Checks) {
        let n = self.down_util_pct.len();
        if self.up_util_pct.len() != n || self.hysteresis_ticks.len() != n {
            c.fail(
                "up_util_pct",
                format!(
                    "down_util_pct, up_util_pct and hysteresis_ticks must have one entry per level, got {n}, {} and {}",
                    self.up_util_pct.len(),
                    self.hysteresis_ticks.len()
                ),
            );
        }
        for (k, v) in [
            ("down_util_pct", &self.down_util_pct),
            ("up_util_pct", &self.up_util_pct),
        ] {
            if v.iter().any(|u| !(0.0..=100.0).contains(u)) {
                c.fail(k, "every entry must be a percentage in [0, 100]");
            }
        }
        c.at_least("step_up", self.step_up as u64, 1);
        c.positive("period_s", self.period_s);
    }
}

/// Quickstep's state: the hysteresis counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quickstep {
    table: QuickstepTable,
    delay: i64,
}

impl Quickstep {
    /// A quickstep governor over `table`, hysteresis armed for level `initial`.
    pub fn new(table: QuickstepTable, initial: usize) -> Self {
        let delay = i64::from(table.hysteresis_ticks.get(initial).copied().unwrap_or(1));
        Self { table, delay }
    }

    /// The level after a period with busy fraction `load` (0..1) at level `cur`.
    pub fn update(&mut self, load: f64, cur: usize) -> usize {
        let t = &self.table;
        let top = t.up_util_pct.len() - 1;
        let util = (load * 100.0).floor(); // the kernel works in integer percent
        let hys = |l: usize| i64::from(t.hysteresis_ticks[l]);
        if cur < top && util > t.up_util_pct[cur] {
            if cur + t.step_up <= top && util > (100.0 + t.up_util_pct[cur]) / 2.0 {
                let next = cur + t.step_up;
                self.delay = hys(next) / 2;
                return next;
            }
            self.delay = hys(cur + 1);
            return cur + 1;
        }
        if cur > 0 && util < t.down_util_pct[cur] {
            self.delay -= 1;
            if self.delay <= 0 {
                self.delay = hys(cur - 1);
                return cur - 1;
            }
            return cur;
        }
        self.delay = hys(cur);
        cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> QuickstepTable {
        QuickstepTable {
            down_util_pct: vec![0.0, 50.0, 70.0, 78.0],
            up_util_pct: vec![70.0, 80.0, 90.0, 100.0],
            hysteresis_ticks: vec![1, 2, 3, 1],
            step_up: 2,
            period_s: 0.02,
            mif_min_mhz: Vec::new(),
        }
    }

    #[test]
    fn hand_computed_trace() {
        let mut q = Quickstep::new(table(), 0);
        // 99 % at level 0: above (100+70)/2 = 85 → jump two levels, delay = 3/2 = 1
        assert_eq!(q.update(0.99, 0), 2);
        // 80 % at level 2: inside [70, 90] → stay, delay re-armed to 3
        assert_eq!(q.update(0.80, 2), 2);
        // 92 % at level 2: above 90 but below (100+90)/2 = 95 → one level
        assert_eq!(q.update(0.92, 2), 3);
        // 60 % at level 3: below 78, hysteresis 1 → drop at once, delay = 3
        assert_eq!(q.update(0.60, 3), 2);
        // 60 % at level 2: below 70 → counts 3 → 2 → 1 → 0, drops on the third tick
        assert_eq!(q.update(0.60, 2), 2);
        assert_eq!(q.update(0.60, 2), 2);
        assert_eq!(q.update(0.60, 2), 1);
        // at the top nothing goes up, at the bottom nothing goes down
        assert_eq!(q.update(1.0, 3), 3);
        assert_eq!(q.update(0.0, 0), 0);
    }

    #[test]
    fn table_lengths_are_checked() {
        let mut t = table();
        t.hysteresis_ticks.pop();
        assert!(!Checks::of(&t).is_empty());
    }
}
