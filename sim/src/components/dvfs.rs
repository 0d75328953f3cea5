//! A DVFS (dynamic voltage and frequency scaling) domain: an operating-point (OPP) table, a
//! transition latency, and CMOS power `P = C_eff·V²·f·util + P_static(V)`.
//!
//! **Transition semantics.** [`DvfsDomain::set_opp`] requests a switch; the domain keeps running at
//! the *old* OPP (frequency, voltage and power) for `transition_s` seconds and then switches
//! atomically to the new one, emitting [`OppSwitch`] and a new [`PowerSample`]. This is the
//! conservative reading of a PLL relock / regulator ramp: the new frequency is never available
//! early, and the energy of the ramp is billed at the old operating point. A new request during a
//! transition retargets it and restarts the timer; a request for the OPP the domain is already
//! heading to is a no-op; a request for the current OPP cancels the pending switch. Indices past
//! the end of the table are clamped to the highest OPP (and counted in [`DvfsState`]).
//!
//! **Power.** Dynamic power is `c_eff_f · V² · f · util` with `util` ∈ [0, 1] the fraction of
//! cycles doing switching work (set with [`DvfsDomain::set_util`]); static power is
//! `static_w · (V / V_max)^static_volt_exponent` (exponent 0: constant leakage; 1: constant leakage
//! current; ≈2–3: voltage-dependent leakage current), with `V_max` the highest voltage in the table.
//! A [`PowerSample`] is emitted at initialisation and whenever the power changes, so the domain
//! feeds an [`EnergyMeter`](super::energy::EnergyMeter) directly. Models that turn work into time
//! read the frequency with [`DvfsDomain::frequency_hz`] or follow [`DvfsDomain::switched`].

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use nexosim::simulation::EventKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::energy::PowerSample;
use crate::engine::{secs, t_s};
use crate::metrics::{Counter, TimeWeightedGauge};
use crate::validate::{Checks, Validate};

/// One operating performance point: a clock frequency and the supply voltage it needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Opp {
    /// Clock frequency, hertz.
    pub freq_hz: f64,
    /// Supply voltage, volts.
    pub volt_v: f64,
}

/// Static description of a DVFS domain (usable directly as scenario parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DvfsSpec {
    /// Operating points, in ascending frequency order.
    pub opps: Vec<Opp>,
    /// Effective switched capacitance C_eff, farads.
    pub c_eff_f: f64,
    /// Static (leakage) power at the highest voltage of the table, watts.
    pub static_w: f64,
    /// Exponent of the voltage scaling of static power (0 = constant).
    #[serde(default)]
    pub static_volt_exponent: f64,
    /// Latency of an OPP switch, seconds.
    #[serde(default)]
    pub transition_s: f64,
    /// Index of the OPP at start.
    #[serde(default)]
    pub initial_opp: usize,
}

impl Validate for DvfsSpec {
    fn validate(&self, c: &mut Checks) {
        if self.opps.is_empty() {
            c.fail("opps", "must list at least one OPP");
        }
        for (i, o) in self.opps.iter().enumerate() {
            c.positive(&format!("opps.{i}.freq_hz"), o.freq_hz);
            c.positive(&format!("opps.{i}.volt_v"), o.volt_v);
        }
        if self.opps.windows(2).any(|w| w[1].freq_hz <= w[0].freq_hz) {
            c.fail("opps", "must be sorted by strictly increasing freq_hz");
        }
        c.non_negative("c_eff_f", self.c_eff_f);
        c.non_negative("static_w", self.static_w);
        c.non_negative("static_volt_exponent", self.static_volt_exponent);
        c.non_negative("transition_s", self.transition_s);
        if !self.opps.is_empty() && self.initial_opp >= self.opps.len() {
            c.fail(
                "initial_opp",
                format!(
                    "must be an OPP index in 0..{}, got {}",
                    self.opps.len(),
                    self.initial_opp
                ),
            );
        }
    }
}

impl DvfsSpec {
    /// Highest supply voltage of the table, volts (the reference of static power).
    pub fn max_volt_v(&self) -> f64 {
        self.opps.iter().map(|o| o.volt_v).fold(0.0, f64::max)
    }

    /// Dynamic power at OPP `opp` and utilisation `util`, watts: `C_eff·V²·f·util`.
    pub fn dynamic_w(&self, opp: usize, util: f64) -> f64 {
        let o = self.opps[opp];
        self.c_eff_f * o.volt_v * o.volt_v * o.freq_hz * util
    }

    /// Static power at OPP `opp`, watts: `static_w·(V/V_max)^static_volt_exponent`.
    pub fn static_power_w(&self, opp: usize) -> f64 {
        if self.static_volt_exponent == 0.0 {
            return self.static_w;
        }
        let ratio = self.opps[opp].volt_v / self.max_volt_v();
        self.static_w * ratio.powf(self.static_volt_exponent)
    }

    /// Total power at OPP `opp` and utilisation `util`, watts.
    pub fn power_w(&self, opp: usize, util: f64) -> f64 {
        self.dynamic_w(opp, util) + self.static_power_w(opp)
    }
}

/// A completed OPP switch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OppSwitch {
    /// The domain id.
    pub domain: u32,
    /// Time the new OPP took effect, seconds since the run start.
    pub t_s: f64,
    /// New OPP index.
    pub opp: usize,
    /// New frequency, hertz.
    pub freq_hz: f64,
    /// New voltage, volts.
    pub volt_v: f64,
}

/// State and accumulated figures of a [`DvfsDomain`] at the time of the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DvfsState {
    /// The domain id.
    pub domain: u32,
    /// Current (effective) OPP index.
    pub opp: usize,
    /// Current frequency, hertz.
    pub freq_hz: f64,
    /// Current voltage, volts.
    pub volt_v: f64,
    /// OPP being switched to, if a transition is under way.
    pub target_opp: Option<usize>,
    /// Current utilisation, in [0, 1].
    pub util: f64,
    /// Current power, watts.
    pub power_w: f64,
    /// Energy since the start of the run, joules.
    pub energy_j: f64,
    /// Time-average power since the start, watts.
    pub mean_power_w: f64,
    /// Time-average frequency since the start, hertz.
    pub mean_freq_hz: f64,
    /// Completed OPP switches.
    pub transitions: u64,
    /// Time spent with a switch pending, seconds.
    pub transition_time_s: f64,
    /// Time spent at each OPP, seconds (indexed like the OPP table).
    pub residency_s: Vec<f64>,
    /// `set_opp` requests whose index was past the table and got clamped.
    pub clamped_requests: u64,
}

/// A DVFS domain driven by a governor through `set_opp` and by the workload through `set_util`.
#[derive(Serialize, Deserialize)]
pub struct DvfsDomain {
    /// Power from now on, emitted at init and whenever it changes (connect to an energy meter).
    pub power: Output<PowerSample>,
    /// Every completed OPP switch.
    pub switched: Output<OppSwitch>,
    /// Domain id, used as the [`PowerSample::source`].
    domain: u32,
    /// OPP table and power model.
    spec: DvfsSpec,
    /// Effective OPP index.
    opp: usize,
    /// OPP being switched to.
    target: Option<usize>,
    /// Time the pending switch was requested, seconds.
    target_since_s: f64,
    /// Completion event of the pending switch.
    pending_key: Option<EventKey>,
    /// Generation of the pending switch (stale completions are ignored).
    epoch: u64,
    /// Utilisation in [0, 1].
    util: f64,
    /// Power over time, watts (its integral is the energy).
    power_gauge: TimeWeightedGauge,
    /// Frequency over time, hertz.
    freq_gauge: TimeWeightedGauge,
    /// Time the current OPP took effect, seconds.
    opp_since_s: f64,
    /// Time at each OPP before the current stint, seconds.
    residency_s: Vec<f64>,
    /// Completed switches.
    transitions: Counter,
    /// Accumulated time with a switch pending, seconds.
    transition_time_s: f64,
    /// Clamped `set_opp` indices.
    clamped: Counter,
}

#[Model]
impl DvfsDomain {
    /// Domain `domain` (its id in power samples) described by `spec`, at `spec.initial_opp` with
    /// utilisation 0.
    ///
    /// # Panics
    /// If `spec` fails [`Validate::validate`] (families validate their params first).
    pub fn new(domain: u32, spec: DvfsSpec) -> Self {
        let errs = Checks::of(&spec);
        assert!(errs.is_empty(), "invalid DVFS spec: {errs:?}");
        let opp = spec.initial_opp;
        let n = spec.opps.len();
        Self {
            power: Output::default(),
            switched: Output::default(),
            domain,
            opp,
            target: None,
            target_since_s: 0.0,
            pending_key: None,
            epoch: 0,
            util: 0.0,
            power_gauge: TimeWeightedGauge::new(0.0, spec.power_w(opp, 0.0)),
            freq_gauge: TimeWeightedGauge::new(0.0, spec.opps[opp].freq_hz),
            opp_since_s: 0.0,
            residency_s: vec![0.0; n],
            transitions: Counter::new(),
            transition_time_s: 0.0,
            clamped: Counter::new(),
            spec,
        }
    }

    /// Announces the initial power and starts the accumulators at the simulation start time.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let p = self.spec.power_w(self.opp, self.util);
        self.power_gauge = TimeWeightedGauge::new(now, p);
        self.freq_gauge = TimeWeightedGauge::new(now, self.spec.opps[self.opp].freq_hz);
        self.opp_since_s = now;
        self.power
            .send(PowerSample {
                source: self.domain,
                t_s: now,
                power_w: p,
            })
            .await;
    }

    /// Requests OPP `index` (input port); it takes effect after the transition latency (see the
    /// module doc for retargeting and clamping).
    pub async fn set_opp(&mut self, index: usize, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let last = self.spec.opps.len() - 1;
        let index = if index > last {
            self.clamped.incr();
            last
        } else {
            index
        };
        if self.target == Some(index) {
            return; // already heading there
        }
        self.cancel_pending(now);
        if index == self.opp {
            return; // staying put
        }
        let delay = secs(self.spec.transition_s);
        if delay.is_zero() {
            self.switch_to(index, now).await;
            return;
        }
        self.target = Some(index);
        self.target_since_s = now;
        let key = cx
            .schedule_keyed_event(delay, schedulable!(Self::complete_switch), self.epoch)
            .expect("a positive delay is always in the future");
        self.pending_key = Some(key);
    }

    /// Sets the utilisation (input port): the fraction of cycles switching, clamped to [0, 1]
    /// (NaN counts as 0).
    pub async fn set_util(&mut self, util: f64, cx: &Context<Self>) {
        let util = if util.is_nan() {
            0.0
        } else {
            util.clamp(0.0, 1.0)
        };
        if util != self.util {
            self.util = util;
            self.emit_power(t_s(cx.time())).await;
        }
    }

    /// Current frequency in hertz (replier port).
    pub async fn frequency_hz(&mut self, _: ()) -> f64 {
        self.spec.opps[self.opp].freq_hz
    }

    /// Current power in watts (replier port).
    pub async fn power_w(&mut self, _: ()) -> f64 {
        self.power_gauge.level()
    }

    /// Current state and accumulated figures (replier port).
    pub async fn state(&mut self, _: (), cx: &Context<Self>) -> DvfsState {
        let now = t_s(cx.time());
        let o = self.spec.opps[self.opp];
        let mut residency_s = self.residency_s.clone();
        residency_s[self.opp] += (now - self.opp_since_s).max(0.0);
        let pending_s = if self.target.is_some() {
            (now - self.target_since_s).max(0.0)
        } else {
            0.0
        };
        DvfsState {
            domain: self.domain,
            opp: self.opp,
            freq_hz: o.freq_hz,
            volt_v: o.volt_v,
            target_opp: self.target,
            util: self.util,
            power_w: self.power_gauge.level(),
            energy_j: self.power_gauge.integral(now),
            mean_power_w: self.power_gauge.mean(now),
            mean_freq_hz: self.freq_gauge.mean(now),
            transitions: self.transitions.get(),
            transition_time_s: self.transition_time_s + pending_s,
            residency_s,
            clamped_requests: self.clamped.get(),
        }
    }

    /// The pending switch completes (self-scheduled, keyed).
    #[nexosim(schedulable)]
    async fn complete_switch(&mut self, epoch: u64, cx: &Context<Self>) {
        if epoch != self.epoch {
            return;
        }
        let now = t_s(cx.time());
        if let Some(target) = self.target.take() {
            self.pending_key = None;
            self.transition_time_s += now - self.target_since_s;
            self.switch_to(target, now).await;
        }
    }

    /// Drops a pending switch, if any.
    fn cancel_pending(&mut self, now: f64) {
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(key) = self.pending_key.take() {
            key.cancel();
        }
        if self.target.take().is_some() {
            self.transition_time_s += now - self.target_since_s;
        }
    }

    /// Makes OPP `index` effective at `now`.
    async fn switch_to(&mut self, index: usize, now: f64) {
        self.residency_s[self.opp] += now - self.opp_since_s;
        self.opp_since_s = now;
        self.opp = index;
        self.transitions.incr();
        let o = self.spec.opps[index];
        self.freq_gauge.set(now, o.freq_hz);
        self.switched
            .send(OppSwitch {
                domain: self.domain,
                t_s: now,
                opp: index,
                freq_hz: o.freq_hz,
                volt_v: o.volt_v,
            })
            .await;
        self.emit_power(now).await;
    }

    /// Recomputes the power and announces it if it changed.
    async fn emit_power(&mut self, now: f64) {
        let p = self.spec.power_w(self.opp, self.util);
        if p != self.power_gauge.level() {
            self.power_gauge.set(now, p);
            self.power
                .send(PowerSample {
                    source: self.domain,
                    t_s: now,
                    power_w: p,
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nexosim::ports::event_queue;
    use nexosim::ports::{EventQueueReader, EventSinkReader, EventSource, QuerySource, SinkState};
    use nexosim::simulation::{EventId, Mailbox, QueryId, Simulation};

    use super::*;
    use crate::components::energy::{EnergyMeter, EnergyReport};
    use crate::engine::{T0, bench};

    /// Three OPPs; C_eff = 1 nF so the numbers stay readable.
    fn spec(transition_s: f64) -> DvfsSpec {
        DvfsSpec {
            opps: vec![
                Opp {
                    freq_hz: 500e6,
                    volt_v: 0.6,
                },
                Opp {
                    freq_hz: 1e9,
                    volt_v: 0.8,
                },
                Opp {
                    freq_hz: 2e9,
                    volt_v: 1.0,
                },
            ],
            c_eff_f: 1e-9,
            static_w: 0.1,
            static_volt_exponent: 0.0,
            transition_s,
            initial_opp: 0,
        }
    }

    struct Bench {
        simu: Simulation,
        set_opp: EventId<usize>,
        set_util: EventId<f64>,
        freq: QueryId<(), f64>,
        state: QueryId<(), DvfsState>,
        report: QueryId<(), EnergyReport>,
        power: EventQueueReader<PowerSample>,
        switched: EventQueueReader<OppSwitch>,
    }

    fn domain_with_meter(spec: DvfsSpec) -> Bench {
        let mut d = DvfsDomain::new(3, spec);
        let meter = EnergyMeter::new();
        let dm = Mailbox::new();
        let mm = Mailbox::new();
        d.power.connect(EnergyMeter::power, &mm);
        let (psink, power) = event_queue(SinkState::Enabled);
        d.power.connect_sink(psink);
        let (ssink, switched) = event_queue(SinkState::Enabled);
        d.switched.connect_sink(ssink);
        let mut b = bench();
        let set_opp = EventSource::new()
            .connect(DvfsDomain::set_opp, &dm)
            .register(&mut b);
        let set_util = EventSource::new()
            .connect(DvfsDomain::set_util, &dm)
            .register(&mut b);
        let freq = QuerySource::new()
            .connect(DvfsDomain::frequency_hz, &dm)
            .register(&mut b);
        let state = QuerySource::new()
            .connect(DvfsDomain::state, &dm)
            .register(&mut b);
        let report = QuerySource::new()
            .connect(EnergyMeter::report, &mm)
            .register(&mut b);
        let simu = b
            .add_model(d, dm, "cpu")
            .add_model(meter, mm, "meter")
            .init(T0)
            .unwrap();
        Bench {
            simu,
            set_opp,
            set_util,
            freq,
            state,
            report,
            power,
            switched,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn power_model_is_cv2f_util_plus_static() {
        let s = spec(0.0);
        assert!(Checks::of(&s).is_empty());
        // 1e-9 · 0.8² · 1e9 · 0.5 = 0.32 W dynamic + 0.1 W static
        assert!(close(s.power_w(1, 0.5), 0.42));
        let scaled = DvfsSpec {
            static_volt_exponent: 2.0,
            ..spec(0.0)
        };
        assert!(close(scaled.static_power_w(0), 0.1 * 0.36));
        assert!(close(scaled.static_power_w(2), 0.1));
    }

    #[test]
    fn validation_names_the_bad_keys() {
        let bad = DvfsSpec {
            opps: vec![
                Opp {
                    freq_hz: 2e9,
                    volt_v: 1.0,
                },
                Opp {
                    freq_hz: 1e9,
                    volt_v: -1.0,
                },
            ],
            c_eff_f: -1.0,
            static_w: 0.0,
            static_volt_exponent: 0.0,
            transition_s: 0.0,
            initial_opp: 5,
        };
        let paths: Vec<String> = Checks::of(&bad).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["opps.1.volt_v", "opps", "c_eff_f", "initial_opp"]);
    }

    #[test]
    fn transition_keeps_old_opp_until_the_switch_completes() {
        let mut b = domain_with_meter(spec(0.001));
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 500e6);
        b.simu.process_event(&b.set_util, 1.0).unwrap();
        b.simu.process_event(&b.set_opp, 2).unwrap();
        let st = b.simu.process_query(&b.state, ()).unwrap();
        assert_eq!((st.opp, st.target_opp), (0, Some(2)));
        b.simu.step_until(T0 + Duration::from_micros(999)).unwrap();
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 500e6);
        b.simu.step_until(T0 + Duration::from_millis(1)).unwrap();
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 2e9);
        let sw: Vec<OppSwitch> = std::iter::from_fn(|| b.switched.try_read()).collect();
        assert_eq!(sw.len(), 1);
        assert_eq!((sw[0].domain, sw[0].opp, sw[0].t_s), (3, 2, 0.001));
        let st = b.simu.process_query(&b.state, ()).unwrap();
        assert_eq!((st.transitions, st.target_opp), (1, None));
        assert!(close(st.transition_time_s, 0.001));
        // power samples: init (static only), util=1 at OPP0, then OPP2
        let p: Vec<f64> = std::iter::from_fn(|| b.power.try_read())
            .map(|s| s.power_w)
            .collect();
        assert_eq!(p.len(), 3);
        assert!(close(p[0], 0.1));
        assert!(close(p[1], 1e-9 * 0.36 * 500e6 + 0.1));
        assert!(close(p[2], 1e-9 * 1.0 * 2e9 + 0.1));
    }

    #[test]
    fn retarget_restarts_the_timer_and_same_target_is_a_no_op() {
        let mut b = domain_with_meter(spec(0.010));
        b.simu.process_event(&b.set_opp, 2).unwrap();
        b.simu.step_until(T0 + Duration::from_millis(5)).unwrap();
        b.simu.process_event(&b.set_opp, 2).unwrap(); // no-op: timer not restarted
        b.simu.step_until(T0 + Duration::from_millis(10)).unwrap();
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 2e9);
        b.simu.process_event(&b.set_opp, 0).unwrap();
        b.simu.step_until(T0 + Duration::from_millis(15)).unwrap();
        b.simu.process_event(&b.set_opp, 1).unwrap(); // retarget at 15 ms → done at 25 ms
        b.simu.step_until(T0 + Duration::from_millis(24)).unwrap();
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 2e9);
        b.simu.step_until(T0 + Duration::from_millis(25)).unwrap();
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 1e9);
        // back to the current OPP cancels the pending switch
        b.simu.process_event(&b.set_opp, 0).unwrap();
        b.simu.process_event(&b.set_opp, 1).unwrap();
        b.simu.run().unwrap();
        assert_eq!(b.simu.process_query(&b.freq, ()).unwrap(), 1e9);
        // out-of-range index: clamped to the top OPP
        b.simu.process_event(&b.set_opp, 99).unwrap();
        b.simu.run().unwrap();
        let st = b.simu.process_query(&b.state, ()).unwrap();
        assert_eq!((st.opp, st.clamped_requests, st.transitions), (2, 1, 3));
        let sw: Vec<usize> = std::iter::from_fn(|| b.switched.try_read())
            .map(|s| s.opp)
            .collect();
        assert_eq!(sw, vec![2, 1, 2]);
    }

    #[test]
    fn energy_meter_matches_the_domain_and_the_hand_computed_profile() {
        let s = spec(0.0);
        let mut b = domain_with_meter(s.clone());
        let sched = b.simu.scheduler();
        // util 0.5 from 0; OPP1 at 2 s; util 1 at 3 s; OPP2 at 5 s; util 0 at 6 s; stop at 8 s
        b.simu.process_event(&b.set_util, 0.5).unwrap();
        sched
            .schedule_event(Duration::from_secs(2), &b.set_opp, 1)
            .unwrap();
        sched
            .schedule_event(Duration::from_secs(3), &b.set_util, 1.0)
            .unwrap();
        sched
            .schedule_event(Duration::from_secs(5), &b.set_opp, 2)
            .unwrap();
        sched
            .schedule_event(Duration::from_secs(6), &b.set_util, 0.0)
            .unwrap();
        b.simu.step_until(T0 + Duration::from_secs(8)).unwrap();
        let expected = s.power_w(0, 0.5) * 2.0
            + s.power_w(1, 0.5) * 1.0
            + s.power_w(1, 1.0) * 2.0
            + s.power_w(2, 1.0) * 1.0
            + s.power_w(2, 0.0) * 2.0;
        let r = b.simu.process_query(&b.report, ()).unwrap();
        let st = b.simu.process_query(&b.state, ()).unwrap();
        assert!(
            close(r.energy_j(3), expected),
            "{} vs {expected}",
            r.total_j
        );
        assert!(close(st.energy_j, expected));
        assert!(r.total_j >= 0.0);
        assert_eq!(st.residency_s, vec![2.0, 3.0, 3.0]);
        assert!(close(
            st.mean_freq_hz,
            (2.0 * 500e6 + 3.0 * 1e9 + 3.0 * 2e9) / 8.0
        ));
    }

    #[test]
    fn util_is_clamped_and_unchanged_power_is_not_re_emitted() {
        let mut b = domain_with_meter(spec(0.0));
        b.simu.process_event(&b.set_util, 7.0).unwrap();
        b.simu.process_event(&b.set_util, 1.0).unwrap(); // same power: no sample
        b.simu.process_event(&b.set_util, f64::NAN).unwrap();
        let st = b.simu.process_query(&b.state, ()).unwrap();
        assert_eq!(st.util, 0.0);
        let n = std::iter::from_fn(|| b.power.try_read()).count();
        assert_eq!(n, 3); // init, util 1, util 0
    }
}
