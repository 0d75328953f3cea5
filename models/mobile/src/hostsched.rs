//! The CPU side of the stock trio on a SoC with an energy model (`cpu.eas`): the kernel's scheduler
//! placing the host thread on a cluster ([`Eas`]) and schedutil on every cluster, as a nexosim
//! model woken by its own ticker (the scheduler tick).
//!
//! The last cluster is the SoC's CPU DVFS domain (`cpu`): its OPP requests and the host's activity
//! go to that domain, and its switches come back through `cpu_switched`. The other clusters are
//! driven here: their OPPs follow schedutil at once, and their power — the energy model's power of
//! one busy core at the OPP times the host's activity while the host runs there — is sent to the
//! energy meter and the monitor as power sources `first_source + k`. The engine is told the host's
//! speed in cycles of the CPU domain per second: the domain's frequency on the last cluster,
//! `capacity / capacity_max · f_max` of the CPU domain elsewhere.

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::components::dvfs::OppSwitch;
use sim::components::energy::PowerSample;
use sim::engine::t_s;
use sim::metrics::TimeWeightedGauge;

use super::eas::Eas;

/// Where the host ran, for the run's metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    /// Seconds the host was runnable on each cluster.
    pub running_s: Vec<f64>,
    /// Migrations between clusters.
    pub migrations: u64,
}

/// The scheduler and per-cluster schedutil.
#[derive(Serialize, Deserialize)]
pub struct HostSched {
    /// OPP requests for the CPU domain (the last cluster).
    pub set_opp: Output<usize>,
    /// The host's activity on the CPU domain (0 while the host runs elsewhere).
    pub set_util: Output<f64>,
    /// Power of the other clusters.
    pub power: Output<PowerSample>,
    /// The host's speed, cycles of the CPU domain per second.
    pub host_hz: Output<f64>,
    eas: Eas,
    period_s: f64,
    first_source: u32,
    /// Frequencies of the CPU domain's OPPs, hertz.
    domain_hz: Vec<f64>,
    running: TimeWeightedGauge,
    activity: f64,
    stats: HostStats,
    last_s: f64,
}

#[Model]
impl HostSched {
    /// A scheduler ticking every `period_s`, the CPU domain's OPPs at `domain_hz`, the other
    /// clusters' power reported as sources `first_source..`.
    pub fn new(eas: Eas, period_s: f64, domain_hz: Vec<f64>, first_source: u32) -> Self {
        let n = eas.clusters().len();
        Self {
            set_opp: Output::default(),
            set_util: Output::default(),
            power: Output::default(),
            host_hz: Output::default(),
            eas,
            period_s,
            first_source,
            domain_hz,
            running: TimeWeightedGauge::new(0.0, 0.0),
            activity: 0.0,
            stats: HostStats {
                running_s: vec![0.0; n],
                migrations: 0,
            },
            last_s: 0.0,
        }
    }

    /// Announces the starting speed (the host starts on the last cluster).
    #[nexosim(init)]
    async fn init(&mut self, _: &Context<Self>) {
        let hz = self.speed_hz();
        self.host_hz.send(hz).await;
    }

    /// Fraction of the time the host is runnable (input port, the engine's `cpu_busy`).
    pub fn host_running(&mut self, r: f64, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.account(now);
        self.running.set(now, r);
    }

    /// The host's switching activity (input port, the engine's `cpu_util`).
    pub async fn activity(&mut self, a: f64, cx: &Context<Self>) {
        self.activity = a;
        self.send_power(t_s(cx.time())).await;
    }

    /// The CPU domain switched OPP (input port, its `switched`).
    pub async fn cpu_switched(&mut self, s: OppSwitch, cx: &Context<Self>) {
        let last = self.eas.clusters().len() - 1;
        self.eas.set_opp(last, s.opp);
        if self.eas.cluster == last {
            let hz = self.speed_hz();
            self.host_hz.send(hz).await;
        }
        self.send_power(t_s(cx.time())).await;
    }

    /// Scheduler tick (input port, from the ticker).
    pub async fn tick(&mut self, _: u64, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.account(now);
        let r = self.running.mean(now);
        self.running.reset(now);
        let (cluster0, opp0) = (self.eas.cluster, self.eas.opp.clone());
        let last = self.eas.clusters().len() - 1;
        let want = self.eas.tick(now, self.period_s, r);
        // the CPU domain switches on its own time and reports back; keep its actual OPP until then
        self.eas.set_opp(last, opp0[last]);
        if want[last] != opp0[last] {
            self.set_opp.send(want[last]).await;
        }
        self.stats.migrations = self.eas.migrations;
        let moved = self.eas.cluster != cluster0;
        let c = self.eas.cluster;
        if moved || (c != last && want[c] != opp0[c]) {
            let hz = self.speed_hz();
            self.host_hz.send(hz).await;
        }
        if moved || want != opp0 {
            self.send_power(now).await;
        }
    }

    /// Where the host ran so far (replier port).
    pub async fn stats(&mut self, _: (), cx: &Context<Self>) -> HostStats {
        self.account(t_s(cx.time()));
        self.stats.clone()
    }

    /// Adds the runnable time since the last account to the host's cluster.
    fn account(&mut self, now: f64) {
        let c = self.eas.cluster;
        self.stats.running_s[c] += self.running.level() * (now - self.last_s).max(0.0);
        self.last_s = now;
    }

    /// The host's speed on its cluster at its OPP, cycles of the CPU domain per second.
    fn speed_hz(&self) -> f64 {
        let ks = self.eas.clusters();
        let last = ks.len() - 1;
        let c = self.eas.cluster;
        let opp = self.eas.opp[c];
        if c == last {
            return self.domain_hz[opp.min(self.domain_hz.len() - 1)];
        }
        let f_max = self.domain_hz.last().copied().unwrap_or(0.0);
        ks[c].capacity[opp] / ks[last].cap_max() * f_max
    }

    /// Sends the activity to the CPU domain and every other cluster's power.
    async fn send_power(&mut self, now: f64) {
        let last = self.eas.clusters().len() - 1;
        let here = self.eas.cluster;
        let a = self.activity;
        self.set_util.send(if here == last { a } else { 0.0 }).await;
        for k in 0..last {
            let w = if k == here {
                self.eas.clusters()[k].power_mw[self.eas.opp[k]] * 1e-3 * a
            } else {
                0.0
            };
            self.power
                .send(PowerSample {
                    source: self.first_source + k as u32,
                    t_s: now,
                    power_w: w,
                })
                .await;
        }
    }
}
