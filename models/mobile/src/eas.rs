//! Energy-aware placement of the host thread across the CPU clusters and schedutil per cluster, as
//! the Android 5.10 kernel of the Pixel 7 runs them (mainline `kernel/sched/fair.c`
//! `find_energy_efficient_cpu`, `compute_energy`/`em_cpu_energy`, `task_fits_capacity`, misfit
//! migration; `kernel/sched/cpufreq_schedutil.c` `get_next_freq`; Pixel's vendor hooks
//! `drivers/soc/google/vh/kernel/sched/fair.c`: capacity margin 1280/1024).
//!
//! One task (the host thread) is tracked: its PELT utilisation is frequency- and CPU-invariant
//! (running fraction × the capacity of its cluster's current OPP, capacities from the SoC's energy
//! model), decayed with the PELT half-life every scheduler tick. Its effective utilisation for
//! placement and frequency is clamped up to `uclamp_min` (the task group's `uclamp.min`).
//!
//! * **Placement at wake-up** (a blocking host sleeps on every GPU read, so it wakes every tick):
//!   among the clusters where the task fits (`util · margin < capacity`), the one whose energy
//!   with the task is lowest — `power(opp) · util / capacity(opp)` at the OPP schedutil would
//!   pick — replaces the previous cluster only if it saves more than 1/16 of the previous energy
//!   (`(prev_delta − best_delta) > prev_delta >> 4`). A task that fits nowhere goes to the biggest
//!   cluster.
//! * **Misfit migration** (a spinning host never sleeps, so it is never placed at wake-up): when
//!   the task no longer fits its cluster, the load balancer moves it to the smallest bigger
//!   cluster where it fits, else the biggest.
//! * **Frequency per cluster**: the cluster's utilisation is the task's when the task is there,
//!   else none (its utilisation leaves with it); the request is `headroom · f_max · util / cap_max`
//!   rounded up to an OPP, raised no sooner than `up_rate_limit_s` and lowered no sooner than the
//!   cluster's `down_rate_limit_s` after the last change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

/// One CPU cluster as the energy model describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Which cores, for the record.
    #[serde(default)]
    pub name: String,
    /// Operating frequencies, MHz, strictly increasing.
    pub opps_mhz: Vec<f64>,
    /// Capacity at each OPP on the scheduler's 1024 scale (the biggest core at its top OPP = 1024).
    pub capacity: Vec<f64>,
    /// Power of one busy core at each OPP, milliwatts (the energy model's table).
    pub power_mw: Vec<f64>,
    /// Minimum time between a frequency change and a lowering, seconds (`down_rate_limit_us`).
    pub down_rate_limit_s: f64,
}

impl ClusterSpec {
    /// Capacity of the cluster at its top OPP.
    pub fn cap_max(&self) -> f64 {
        self.capacity.last().copied().unwrap_or(0.0)
    }

    /// The lowest OPP at or above `headroom · f_max · util / cap_max` (schedutil's request).
    pub fn opp_for(&self, util: f64, headroom: f64) -> usize {
        let f_max = self.opps_mhz.last().copied().unwrap_or(0.0);
        let target = headroom * f_max * util / self.cap_max().max(f64::MIN_POSITIVE);
        self.opps_mhz
            .iter()
            .position(|&f| f >= target)
            .unwrap_or(self.opps_mhz.len().saturating_sub(1))
    }
}

impl Validate for ClusterSpec {
    fn validate(&self, c: &mut Checks) {
        if self.opps_mhz.is_empty() {
            c.fail("opps_mhz", "must list at least one frequency");
        }
        if self.opps_mhz.windows(2).any(|w| w[1] <= w[0]) {
            c.fail("opps_mhz", "must be strictly increasing");
        }
        for (k, v) in [("capacity", &self.capacity), ("power_mw", &self.power_mw)] {
            if v.len() != self.opps_mhz.len() {
                c.fail(
                    k,
                    format!(
                        "needs one entry per OPP ({}), got {}",
                        self.opps_mhz.len(),
                        v.len()
                    ),
                );
            }
            if v.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                c.fail(k, "every entry must be finite and > 0");
            }
        }
        if self.capacity.windows(2).any(|w| w[1] < w[0]) {
            c.fail("capacity", "must not decrease with frequency");
        }
        if self.capacity.iter().any(|&x| x > 1024.0) {
            c.fail("capacity", "is on the 1024 scale: no entry may exceed 1024");
        }
        c.non_negative("down_rate_limit_s", self.down_rate_limit_s);
    }
}

/// The scheduler's view of the CPU clusters and the host task's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EasParams {
    /// The clusters, smallest first; the last is the cluster of the SoC's CPU DVFS domain
    /// (`cpu.dvfs`, whose OPPs it must repeat).
    pub clusters: Vec<ClusterSpec>,
    /// Fit margin: a task fits a CPU when `util · margin < capacity` (1280/1024 in the source).
    pub capacity_margin: f64,
    /// Fraction of the previous cluster's energy a new placement must save (1/16 in the source).
    pub energy_margin: f64,
}

impl Validate for EasParams {
    fn validate(&self, c: &mut Checks) {
        if self.clusters.is_empty() {
            c.fail("clusters", "needs at least one cluster");
        }
        for (i, k) in self.clusters.iter().enumerate() {
            c.part(&format!("clusters.{i}"), k);
        }
        c.at_least("capacity_margin", self.capacity_margin, 1.0);
        c.fraction("energy_margin", self.energy_margin);
    }
}

/// Schedutil tunables shared by the clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tunables {
    /// PELT half-life, seconds.
    pub halflife_s: f64,
    /// Frequency headroom (1.25).
    pub headroom: f64,
    /// Minimum time between a change and a raise, seconds.
    pub up_rate_limit_s: f64,
    /// The host task's `uclamp.min` on the 1024 scale (its task group's setting).
    pub uclamp_min: f64,
}

/// State of EAS and of schedutil on every cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eas {
    params: EasParams,
    halflife_s: f64,
    headroom: f64,
    up_rate_limit_s: f64,
    uclamp_min: f64,
    /// Whether the task sleeps between its bursts (wakes up, so EAS places it at every wake-up).
    wakes: bool,
    /// The task's PELT utilisation, 1024 scale.
    pub util: f64,
    /// Cluster the task runs on.
    pub cluster: usize,
    /// Requested OPP of each cluster.
    pub opp: Vec<usize>,
    last_change_s: Vec<f64>,
    /// Migrations so far.
    pub migrations: u64,
}

impl Eas {
    /// EAS over `params`' clusters with the task on the biggest cluster, every cluster at its
    /// lowest OPP; `wakes`: whether the task sleeps between bursts (blocking host).
    pub fn new(params: EasParams, t: Tunables, wakes: bool) -> Self {
        let n = params.clusters.len();
        Self {
            halflife_s: t.halflife_s,
            headroom: t.headroom,
            up_rate_limit_s: t.up_rate_limit_s,
            uclamp_min: t.uclamp_min,
            wakes,
            util: 0.0,
            cluster: n.saturating_sub(1),
            opp: vec![0; n],
            last_change_s: vec![f64::NEG_INFINITY; n],
            migrations: 0,
            params,
        }
    }

    /// The clusters.
    pub fn clusters(&self) -> &[ClusterSpec] {
        &self.params.clusters
    }

    /// The task's utilisation clamped by its `uclamp_min`.
    pub fn util_eff(&self) -> f64 {
        self.util.max(self.uclamp_min)
    }

    /// Whether utilisation `u` fits cluster `c` (`fits_capacity`).
    pub fn fits(&self, u: f64, c: usize) -> bool {
        u * self.params.capacity_margin < self.params.clusters[c].cap_max()
    }

    /// Energy-model estimate of running the task on cluster `c` (`em_cpu_energy`): the power of
    /// the OPP schedutil would pick for the clamped utilisation, times the unclamped utilisation
    /// over that OPP's capacity.
    pub fn energy(&self, c: usize) -> f64 {
        let k = &self.params.clusters[c];
        let i = k.opp_for(self.util_eff(), self.headroom);
        k.power_mw[i] * self.util / k.capacity[i]
    }

    /// The cluster the task should run on now (wake-up placement or misfit migration).
    pub fn place(&self) -> usize {
        let n = self.params.clusters.len();
        let u = self.util_eff();
        let prev = self.cluster;
        if !self.wakes {
            // never sleeps: only the load balancer moves it, and only when it is misfit
            if self.fits(u, prev) {
                return prev;
            }
            return (prev + 1..n).find(|&c| self.fits(u, c)).unwrap_or(n - 1);
        }
        let fitting: Vec<usize> = (0..n).filter(|&c| self.fits(u, c)).collect();
        let Some(&best) = fitting.iter().min_by(|&&a, &&b| {
            self.energy(a)
                .partial_cmp(&self.energy(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        }) else {
            return n - 1;
        };
        if !fitting.contains(&prev) {
            return best;
        }
        let (e_prev, e_best) = (self.energy(prev), self.energy(best));
        if e_prev - e_best > self.params.energy_margin * e_prev {
            best
        } else {
            prev
        }
    }

    /// One scheduler tick at `now_s` after `period_s` in which the task ran a fraction `running`
    /// of the time on its cluster: updates the utilisation, places the task, and returns each
    /// cluster's OPP request (the current OPP where a rate limit holds it).
    pub fn tick(&mut self, now_s: f64, period_s: f64, running: f64) -> Vec<usize> {
        let k = &self.params.clusters[self.cluster];
        let contrib = running.clamp(0.0, 1.0) * k.capacity[self.opp[self.cluster]];
        let y = 0.5f64.powf(period_s / self.halflife_s);
        self.util = self.util * y + (1.0 - y) * contrib;
        let next = self.place();
        if next != self.cluster {
            self.cluster = next;
            self.migrations += 1;
        }
        for c in 0..self.params.clusters.len() {
            let u = if c == self.cluster {
                self.util_eff()
            } else {
                0.0
            };
            let want = self.params.clusters[c].opp_for(u, self.headroom);
            let since = now_s - self.last_change_s[c];
            let cur = self.opp[c];
            let allowed = (want > cur && since >= self.up_rate_limit_s)
                || (want < cur && since >= self.params.clusters[c].down_rate_limit_s);
            if allowed {
                self.opp[c] = want;
                self.last_change_s[c] = now_s;
            }
        }
        self.opp.clone()
    }

    /// Records that cluster `c` actually runs at OPP `opp` (a domain the kernel does not set
    /// instantly reports its switch).
    pub fn set_opp(&mut self, c: usize, opp: usize) {
        if let Some(o) = self.opp.get_mut(c) {
            *o = opp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> EasParams {
        // a little cluster (cap 100 → 200) and a big one (cap 300 → 1024), power per OPP
        EasParams {
            clusters: vec![
                ClusterSpec {
                    name: "little".into(),
                    opps_mhz: vec![500.0, 1000.0],
                    capacity: vec![100.0, 200.0],
                    power_mw: vec![20.0, 60.0],
                    down_rate_limit_s: 0.0,
                },
                ClusterSpec {
                    name: "big".into(),
                    opps_mhz: vec![600.0, 2000.0],
                    capacity: vec![300.0, 1024.0],
                    power_mw: vec![150.0, 1000.0],
                    down_rate_limit_s: 0.0,
                },
            ],
            capacity_margin: 1.25,
            energy_margin: 1.0 / 16.0,
        }
    }

    const T: Tunables = Tunables {
        halflife_s: 0.032,
        headroom: 1.25,
        up_rate_limit_s: 0.0,
        uclamp_min: 0.0,
    };

    #[test]
    fn fits_capacity_uses_the_margin() {
        let e = Eas::new(two(), T, true);
        assert!(e.fits(159.0, 0)); // 159·1.25 = 198.75 < 200
        assert!(!e.fits(160.0, 0)); // 200 is not < 200
        assert!(e.fits(800.0, 1));
    }

    #[test]
    fn energy_by_hand_and_waking_task_goes_to_the_cheaper_cluster() {
        let mut e = Eas::new(two(), T, true);
        e.util = 50.0;
        // little: target 1.25·1000·50/200 = 312.5 MHz → OPP 0 (cap 100, 20 mW): 20·50/100 = 10
        assert!((e.energy(0) - 10.0).abs() < 1e-12);
        // big: 1.25·2000·50/1024 = 122 MHz → OPP 0 (cap 300, 150 mW): 150·50/300 = 25
        assert!((e.energy(1) - 25.0).abs() < 1e-12);
        assert_eq!(e.place(), 0);
        // too big for the little cluster: only the big one fits
        e.util = 170.0;
        assert_eq!(e.place(), 1);
    }

    #[test]
    fn a_saving_under_one_sixteenth_keeps_the_previous_cluster() {
        let mut p = two();
        // big at its lowest OPP: 63·50/300 = 10.5 against the little cluster's 10 (4.8 % saving)
        p.clusters[1].power_mw[0] = 63.0;
        let mut e = Eas::new(p, T, true);
        e.util = 50.0;
        e.cluster = 1;
        assert!(e.energy(0) < e.energy(1));
        assert_eq!(e.place(), 1, "saving 4.8 % < 6.25 %: stays");
    }

    #[test]
    fn uclamp_min_raises_placement_and_frequency() {
        // uclamp_min 180 does not fit the little cluster (180·1.25 ≥ 200)
        let t = Tunables {
            uclamp_min: 180.0,
            ..T
        };
        let mut e = Eas::new(two(), t, true);
        e.util = 10.0;
        assert_eq!(e.place(), 1);
        // big cluster frequency for 180: 1.25·2000·180/1024 = 439 MHz → OPP 0
        assert_eq!(e.tick(0.004, 0.004, 0.0)[1], 0);
    }

    #[test]
    fn spinning_task_moves_only_when_misfit() {
        let mut e = Eas::new(two(), T, false);
        e.cluster = 0;
        e.util = 50.0; // fits little: a never-sleeping task is not re-placed
        assert_eq!(e.place(), 0);
        e.util = 170.0; // misfit → the big cluster
        assert_eq!(e.place(), 1);
        e.cluster = 1;
        e.util = 10.0; // fits little, but it never wakes: stays big
        assert_eq!(e.place(), 1);
    }

    #[test]
    fn pelt_decay_and_invariance_by_hand() {
        let mut e = Eas::new(two(), T, false);
        // period = half-life: y = 0.5; fully running on the big cluster at OPP 0 (cap 300)
        let s = e.tick(0.032, 0.032, 1.0);
        assert!((e.util - 150.0).abs() < 1e-9, "{}", e.util);
        // 150 → 1.25·2000·150/1024 = 366 MHz → OPP 0 on the big cluster; little idles at OPP 0
        assert_eq!(s, vec![0, 0]);
        e.tick(0.064, 0.032, 1.0);
        assert!((e.util - 225.0).abs() < 1e-9);
        // 225 → 549 MHz → OPP 0 still (600 MHz); at 250 → 610 MHz → OPP 1
        e.util = 250.0;
        e.tick(0.096, 0.032, 250.0 / 300.0);
        assert_eq!(e.opp[1], 1);
    }
}
