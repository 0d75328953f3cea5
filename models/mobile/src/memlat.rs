//! The per-CPU memory-latency vote on the memory interface (`drivers/devfreq/google/
//! governor_memlat.c`, `devfreq_memlat_get_freq`), with the CPU cluster's `core-dev-table` from the
//! SoC's device tree (GS201: `gs201.dtsi`, `cpu6-cpu-mif-latmon` for the X1 cores).
//!
//! Every `polling_ms`, a core that is running (frequency > 0) and memory-latency bound — its
//! instructions per L3 refill (`cachemiss-ev = 0x2A`) at or under `ratio_ceil`, 400 in the source —
//! votes the memory frequency the table maps its core frequency to (first entry at or above it,
//! else the last); otherwise it votes nothing.
//!
//! The core's counters are not simulated instruction by instruction: the host thread's
//! instructions per refill while it computes is a parameter (`host_inst_per_miss`), and
//! spin-waiting adds instructions without refills, so the ratio over a period is
//! `host_inst_per_miss · running / computing`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// Memlat tunables of the cluster that runs the host thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemlatParams {
    /// `core-dev-table`: `[core MHz, memory MHz]` rows, core frequency increasing.
    pub core_dev_table: Vec<[f64; 2]>,
    /// Largest instructions-per-refill ratio that counts as latency bound (source default 400).
    #[serde(default = "d_ratio_ceil")]
    pub ratio_ceil: f64,
    /// Sampling period, seconds (`polling_ms`).
    pub period_s: f64,
    /// Instructions per L3 refill of the host thread while it computes (estimate; see the preset).
    pub host_inst_per_miss: f64,
}

fn d_ratio_ceil() -> f64 {
    400.0
}

impl Validate for MemlatParams {
    fn validate(&self, c: &mut Checks) {
        if self.core_dev_table.is_empty() {
            c.fail(
                "core_dev_table",
                "needs at least one [core MHz, memory MHz] row",
            );
        }
        if self.core_dev_table.windows(2).any(|w| w[1][0] <= w[0][0]) {
            c.fail(
                "core_dev_table",
                "core frequencies must be strictly increasing",
            );
        }
        c.positive("ratio_ceil", self.ratio_ceil);
        c.positive("period_s", self.period_s);
        c.positive("host_inst_per_miss", self.host_inst_per_miss);
    }
}

impl MemlatParams {
    /// The memory frequency (MHz) the table maps core frequency `core_mhz` to.
    pub fn core_to_dev(&self, core_mhz: f64) -> f64 {
        let t = &self.core_dev_table;
        t.iter()
            .find(|r| r[0] >= core_mhz)
            .unwrap_or(&t[t.len() - 1])[1]
    }

    /// The vote (MHz, 0 = none) after a period in which the core at `core_mhz` ran (computing or
    /// spinning) a fraction `running` of the time and computed a fraction `computing`.
    pub fn vote(&self, core_mhz: f64, running: f64, computing: f64) -> f64 {
        if running <= 0.0 || computing <= 0.0 {
            return 0.0;
        }
        let ratio = self.host_inst_per_miss * running.max(computing) / computing;
        if ratio <= self.ratio_ceil {
            self.core_to_dev(core_mhz)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x1(ipm: f64) -> MemlatParams {
        MemlatParams {
            core_dev_table: vec![[851.0, 1014.0], [2507.0, 3172.0]],
            ratio_ceil: 400.0,
            period_s: 0.01,
            host_inst_per_miss: ipm,
        }
    }

    #[test]
    fn table_lookup_and_ratio_gate() {
        let m = x1(100.0);
        assert_eq!(m.core_to_dev(500.0), 1014.0);
        assert_eq!(m.core_to_dev(851.0), 1014.0);
        assert_eq!(m.core_to_dev(2850.0), 3172.0);
        // computing all the time: ratio 100 ≤ 400 → vote
        assert_eq!(m.vote(2850.0, 1.0, 1.0), 3172.0);
        // spinning 80 % of a fully busy period: ratio 100 / 0.2 = 500 > 400 → no vote
        assert_eq!(m.vote(2850.0, 1.0, 0.2), 0.0);
        // the same work blocking instead of spinning: ratio 100 → vote at the core's clock
        assert_eq!(m.vote(851.0, 0.2, 0.2), 1014.0);
        // idle core: no vote
        assert_eq!(m.vote(2850.0, 0.0, 0.0), 0.0);
        assert_eq!(x1(1000.0).vote(2850.0, 1.0, 1.0), 0.0);
    }
}
