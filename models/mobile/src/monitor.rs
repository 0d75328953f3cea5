//! Measurement probe (the Monsoon monitor of the paper): integrates the phone's power (the three
//! domains' samples plus the constant base power), attributes energy to each request's prefill and
//! decode phases and to idle time, and records per-domain frequency, utilisation and power series
//! at its ticker's period.

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::components::dvfs::OppSwitch;
use sim::components::energy::PowerSample;
use sim::engine::t_s;
use sim::metrics::TimeWeightedGauge;

use super::cost::Phase;
use super::engine::PhaseEvent;
use super::soc::Domain;

/// Energy of one request's phases, joules.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseEnergy {
    /// Prefill energy (up to the first token).
    pub prefill_j: f64,
    /// Decode energy (after the first token).
    pub decode_j: f64,
}

/// Everything the monitor measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MonitorReport {
    /// Energy per request, indexed by request id.
    pub requests: Vec<PhaseEnergy>,
    /// Energy while idle, joules.
    pub idle_j: f64,
    /// Total energy, joules (domains + base).
    pub total_j: f64,
    /// Series samples `(t_s, domain, metric, value)`.
    pub series: Vec<(f64, Domain, String, f64)>,
}

/// The probe.
#[derive(Serialize, Deserialize)]
pub struct Monitor {
    /// The base power as a source for the energy meter (sent once at init, source id 3).
    pub base: Output<PowerSample>,
    base_w: f64,
    /// Power of each source by id, watts: the three domains, then (from id 4, after the base) any
    /// further CPU clusters.
    domain_w: Vec<f64>,
    /// Total phone power.
    total: TimeWeightedGauge,
    /// Integral of `total` at the last phase boundary, joules.
    mark_j: f64,
    /// Current (request, phase), `None` while idle.
    current: Option<(u64, Phase)>,
    report: MonitorReport,
    /// Utilisation of each domain over the current series interval.
    util: [TimeWeightedGauge; 3],
    /// Power of each domain over the current series interval.
    power: [TimeWeightedGauge; 3],
    /// Current frequency of each domain, MHz.
    freq_mhz: [f64; 3],
    record_series: bool,
}

#[Model]
impl Monitor {
    /// A probe for a phone with `base_w` watts of base power, the domains starting at `freq_mhz`,
    /// and `extra_sources` further power sources (ids 4, 5, …).
    pub fn new(base_w: f64, freq_mhz: [f64; 3], record_series: bool, extra_sources: usize) -> Self {
        Self {
            base: Output::default(),
            base_w,
            domain_w: vec![0.0; 4 + extra_sources],
            total: TimeWeightedGauge::new(0.0, base_w),
            mark_j: 0.0,
            current: None,
            report: MonitorReport::default(),
            util: [TimeWeightedGauge::default(); 3],
            power: [TimeWeightedGauge::default(); 3],
            freq_mhz,
            record_series,
        }
    }

    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.base
            .send(PowerSample {
                source: 3,
                t_s: now,
                power_w: self.base_w,
            })
            .await;
    }

    /// A domain's (or further source's) power changed (input port).
    pub fn power(&mut self, s: PowerSample, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let i = s.source as usize;
        if i == 3 {
            return; // the base power is the probe's own
        }
        let Some(w) = self.domain_w.get_mut(i) else {
            return;
        };
        *w = s.power_w.max(0.0);
        if let Some(g) = self.power.get_mut(i) {
            g.set(now, *w);
        }
        let sum: f64 = self.domain_w.iter().sum();
        self.total.set(now, sum + self.base_w);
    }

    /// The engine changed phase (input port).
    pub fn phase(&mut self, ev: PhaseEvent, cx: &Context<Self>) {
        self.close(t_s(cx.time()));
        self.current = ev.phase.map(|p| (ev.request, p));
    }

    /// CPU utilisation changed (input port).
    pub fn util_cpu(&mut self, u: f64, cx: &Context<Self>) {
        self.util[0].set(t_s(cx.time()), u);
    }

    /// GPU utilisation changed (input port).
    pub fn util_gpu(&mut self, u: f64, cx: &Context<Self>) {
        self.util[1].set(t_s(cx.time()), u);
    }

    /// Memory utilisation changed (input port).
    pub fn util_mem(&mut self, u: f64, cx: &Context<Self>) {
        self.util[2].set(t_s(cx.time()), u);
    }

    /// A domain switched OPP (input port).
    pub fn switched(&mut self, s: OppSwitch) {
        if let Some(f) = self.freq_mhz.get_mut(s.domain as usize) {
            *f = s.freq_hz / 1e6;
        }
    }

    /// Series tick (input port): one sample per domain of frequency, mean utilisation and power.
    pub fn tick(&mut self, _: u64, cx: &Context<Self>) {
        let now = t_s(cx.time());
        for d in Domain::ALL {
            let i = d as usize;
            if self.record_series {
                self.report
                    .series
                    .push((now, d, "freq_mhz".into(), self.freq_mhz[i]));
                self.report
                    .series
                    .push((now, d, "util".into(), self.util[i].mean(now)));
                self.report
                    .series
                    .push((now, d, "power_w".into(), self.power[i].mean(now)));
            }
            self.util[i].reset(now);
            self.power[i].reset(now);
        }
    }

    /// The measurements up to now (replier port).
    pub async fn report(&mut self, _: (), cx: &Context<Self>) -> MonitorReport {
        let now = t_s(cx.time());
        self.close(now);
        self.report.total_j = self.total.integral(now);
        self.report.clone()
    }

    /// Attributes the energy since the last boundary to the current phase.
    fn close(&mut self, now: f64) {
        let e = self.total.integral(now);
        let delta = e - self.mark_j;
        self.mark_j = e;
        match self.current {
            None => self.report.idle_j += delta,
            Some((id, phase)) => {
                let id = id as usize;
                if self.report.requests.len() <= id {
                    self.report.requests.resize(id + 1, PhaseEnergy::default());
                }
                let r = &mut self.report.requests[id];
                match phase {
                    Phase::Prefill => r.prefill_j += delta,
                    Phase::Decode => r.decode_j += delta,
                }
            }
        }
    }
}
