//! An energy meter: integrates piecewise-constant power over simulated time, per source.
//!
//! Sources (DVFS domains, links, memories, …) report their power as [`PowerSample`]s whenever it
//! changes; the meter holds each source's last power until the next sample, so the energy of a
//! source is exactly `∑ P·Δt` over its power profile. A source counts 0 W until its first sample.
//! Negative power is clamped to 0 W (and counted), so energy never decreases.
//!
//! Wiring: connect every source's `Output<PowerSample>` (e.g. [`DvfsDomain::power`]) to
//! [`EnergyMeter::power`] — one meter can take many sources, told apart by
//! [`PowerSample::source`]; read an [`EnergyReport`] after the run with a
//! `QuerySource<(), EnergyReport>` on [`EnergyMeter::report`].
//!
//! [`DvfsDomain::power`]: super::dvfs::DvfsDomain::power

use nexosim::model::{Context, Model};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::t_s;
use crate::metrics::{Counter, TimeWeightedGauge};

/// A source's power from now on (until its next sample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PowerSample {
    /// Small dense integer identifying the source (e.g. a DVFS domain id); indexes the meter's
    /// per-source table.
    pub source: u32,
    /// Time of the change, seconds since the run start (informative: the meter uses engine time).
    pub t_s: f64,
    /// Power drawn from now on, watts.
    pub power_w: f64,
}

/// Energy of one source over the meter's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SourceEnergy {
    /// The source id.
    pub source: u32,
    /// The source's name (from [`EnergyMeter::with_names`], else `src{id}`).
    pub name: String,
    /// Energy consumed, joules.
    pub energy_j: f64,
    /// Time-average power, watts.
    pub mean_power_w: f64,
    /// Highest power reported, watts.
    pub peak_power_w: f64,
    /// Power at the time of the report, watts.
    pub power_w: f64,
}

/// Energy figures of an [`EnergyMeter`] from the start of its window up to the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnergyReport {
    /// Length of the window, seconds.
    pub elapsed_s: f64,
    /// Energy of all sources, joules.
    pub total_j: f64,
    /// Time-average total power, watts.
    pub mean_power_w: f64,
    /// Per-source figures, by source id (ids never reported and unnamed are omitted).
    pub sources: Vec<SourceEnergy>,
    /// Samples whose negative power was clamped to 0 W.
    pub negative_samples: u64,
}

impl EnergyReport {
    /// Appends `{prefix}_j` (total), `{prefix}_{name}_j` per source and `{prefix}_power_w_mean`
    /// to `out`; e.g. prefix `energy` gives `energy_j`, `energy_cpu_j`, `energy_power_w_mean`.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_j"), self.total_j));
        for s in &self.sources {
            out.push((format!("{prefix}_{}_j", s.name), s.energy_j));
        }
        out.push((format!("{prefix}_power_w_mean"), self.mean_power_w));
    }

    /// Energy of source `source` in joules (0 if it never reported).
    pub fn energy_j(&self, source: u32) -> f64 {
        self.sources
            .iter()
            .find(|s| s.source == source)
            .map_or(0.0, |s| s.energy_j)
    }
}

/// Per-source accumulator: the power level over time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Source {
    /// Power over time, watts (its integral is the energy in joules).
    power: TimeWeightedGauge,
    /// Whether the source has sent at least one sample.
    reported: bool,
}

/// Integrates the power of any number of sources over simulated time.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EnergyMeter {
    /// Optional names, indexed by source id.
    names: Vec<String>,
    /// Accumulators, indexed by source id (grown on first sight of an id).
    sources: Vec<Source>,
    /// Start of the window, seconds.
    start_s: f64,
    /// Negative samples clamped to 0 W.
    negative_samples: Counter,
}

#[Model]
impl EnergyMeter {
    /// A meter with anonymous sources (reported as `src{id}`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A meter whose source `i` is called `names[i]` in reports and exported metric names (use
    /// short snake_case names such as `cpu`, `gpu`, `dram`).
    pub fn with_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let sources = vec![Self::fresh(0.0); names.len()];
        Self {
            names,
            sources,
            ..Self::default()
        }
    }

    /// Opens the window at the simulation start time.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        self.restart(t_s(cx.time()));
    }

    /// A source's power changes (input port); the new level holds until its next sample.
    pub fn power(&mut self, sample: PowerSample, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let i = sample.source as usize;
        if i >= self.sources.len() {
            self.sources.resize(i + 1, Self::fresh(self.start_s));
        }
        let p = if sample.power_w >= 0.0 {
            sample.power_w
        } else {
            self.negative_samples.incr();
            0.0 // also catches NaN
        };
        let src = &mut self.sources[i];
        src.reported = true;
        src.power.set(now, p);
    }

    /// Restarts the window now (input port), e.g. after a warm-up: energies restart from 0 while
    /// every source keeps its current power.
    pub fn reset(&mut self, _: (), cx: &Context<Self>) {
        self.restart(t_s(cx.time()));
    }

    /// Total energy of all sources so far, joules (replier port).
    pub async fn total_j(&mut self, _: (), cx: &Context<Self>) -> f64 {
        let now = t_s(cx.time());
        self.sources.iter().map(|s| s.power.integral(now)).sum()
    }

    /// Energy of one source so far, joules; 0 for an unknown id (replier port).
    pub async fn energy_j(&mut self, source: u32, cx: &Context<Self>) -> f64 {
        let now = t_s(cx.time());
        self.sources
            .get(source as usize)
            .map_or(0.0, |s| s.power.integral(now))
    }

    /// Full report up to now (replier port).
    pub async fn report(&mut self, _: (), cx: &Context<Self>) -> EnergyReport {
        let now = t_s(cx.time());
        let elapsed_s = (now - self.start_s).max(0.0);
        let sources: Vec<SourceEnergy> = self
            .sources
            .iter()
            .enumerate()
            .filter(|(i, s)| s.reported || *i < self.names.len())
            .map(|(i, s)| SourceEnergy {
                source: i as u32,
                name: self
                    .names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("src{i}")),
                energy_j: s.power.integral(now),
                mean_power_w: s.power.mean(now),
                peak_power_w: s.power.max(),
                power_w: s.power.level(),
            })
            .collect();
        let total_j: f64 = sources.iter().map(|s| s.energy_j).sum();
        EnergyReport {
            elapsed_s,
            total_j,
            mean_power_w: if elapsed_s > 0.0 {
                total_j / elapsed_s
            } else {
                sources.iter().map(|s| s.power_w).sum()
            },
            sources,
            negative_samples: self.negative_samples.get(),
        }
    }

    /// An accumulator at 0 W whose window starts at `start_s`.
    fn fresh(start_s: f64) -> Source {
        Source {
            power: TimeWeightedGauge::new(start_s, 0.0),
            reported: false,
        }
    }

    /// Opens a new window at `now` keeping each source's power level.
    fn restart(&mut self, now: f64) {
        self.start_s = now;
        for s in &mut self.sources {
            s.power.reset(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nexosim::ports::{EventSource, QuerySource};
    use nexosim::simulation::Mailbox;
    use rand::Rng as _;

    use super::*;
    use crate::engine::{T0, bench, secs};

    fn sample(source: u32, power_w: f64) -> PowerSample {
        PowerSample {
            source,
            t_s: 0.0,
            power_w,
        }
    }

    #[test]
    fn energy_equals_sum_of_power_times_duration_for_a_scripted_profile() {
        let meter = EnergyMeter::with_names(["cpu", "gpu"]);
        let mbox = Mailbox::new();
        let mut b = bench();
        let power = EventSource::new()
            .connect(EnergyMeter::power, &mbox)
            .register(&mut b);
        let report = QuerySource::new()
            .connect(EnergyMeter::report, &mbox)
            .register(&mut b);
        let total = QuerySource::new()
            .connect(EnergyMeter::total_j, &mbox)
            .register(&mut b);
        let mut simu = b.add_model(meter, mbox, "meter").init(T0).unwrap();
        let sched = simu.scheduler();
        // cpu: 2 W on [0,1), 5 W on [1,3), 0.5 W on [3,10]; gpu: 0 W until 4, 10 W on [4,6), 0 after
        let script = [
            (0.0, 0, 2.0),
            (1.0, 0, 5.0),
            (3.0, 0, 0.5),
            (4.0, 1, 10.0),
            (6.0, 1, 0.0),
        ];
        for &(t, src, p) in &script {
            if t == 0.0 {
                simu.process_event(&power, sample(src, p)).unwrap();
            } else {
                sched
                    .schedule_event(T0 + secs(t), &power, sample(src, p))
                    .unwrap();
            }
        }
        simu.step_until(T0 + Duration::from_secs(10)).unwrap();
        let r = simu.process_query(&report, ()).unwrap();
        let cpu_j = 2.0 * 1.0 + 5.0 * 2.0 + 0.5 * 7.0;
        let gpu_j = 10.0 * 2.0;
        assert_eq!(r.elapsed_s, 10.0);
        assert!((r.energy_j(0) - cpu_j).abs() < 1e-12);
        assert!((r.energy_j(1) - gpu_j).abs() < 1e-12);
        assert!((r.total_j - (cpu_j + gpu_j)).abs() < 1e-12);
        assert!((simu.process_query(&total, ()).unwrap() - r.total_j).abs() < 1e-12);
        assert!((r.mean_power_w - r.total_j / 10.0).abs() < 1e-12);
        assert_eq!(r.sources[0].peak_power_w, 5.0);
        assert_eq!(r.sources[1].name, "gpu");
        let mut out = Vec::new();
        r.export("energy", &mut out);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "energy_j",
                "energy_cpu_j",
                "energy_gpu_j",
                "energy_power_w_mean"
            ]
        );
    }

    #[test]
    fn random_profiles_integrate_exactly_and_never_go_negative() {
        let mbox = Mailbox::new();
        let mut b = bench();
        let power = EventSource::new()
            .connect(EnergyMeter::power, &mbox)
            .register(&mut b);
        let energy = QuerySource::new()
            .connect(EnergyMeter::energy_j, &mbox)
            .register(&mut b);
        let report = QuerySource::new()
            .connect(EnergyMeter::report, &mbox)
            .register(&mut b);
        let mut simu = b
            .add_model(EnergyMeter::new(), mbox, "meter")
            .init(T0)
            .unwrap();
        let mut rng = crate::rng::stream(9, "energy/test");
        let mut expected = [0.0f64; 3];
        let mut level = [0.0f64; 3];
        let mut last_ns = 0u64;
        let mut previous_total = 0.0;
        for _ in 0..300 {
            let dt_ns = rng.random_range(1..50_000_000u64);
            let now_ns = last_ns + dt_ns;
            for (e, l) in expected.iter_mut().zip(level) {
                *e += l * dt_ns as f64 * 1e-9;
            }
            simu.step_until(T0 + Duration::from_nanos(now_ns)).unwrap();
            let src = rng.random_range(0..3u32);
            // occasionally a (bad) negative reading: clamped to 0 W
            let p = rng.random_range(-1.0..20.0f64);
            simu.process_event(&power, sample(src, p)).unwrap();
            level[src as usize] = p.max(0.0);
            last_ns = now_ns;
            let r = simu.process_query(&report, ()).unwrap();
            assert!(r.total_j >= previous_total, "energy never decreases");
            previous_total = r.total_j;
        }
        for src in 0..3u32 {
            let got = simu.process_query(&energy, src).unwrap();
            let want = expected[src as usize];
            assert!(got >= 0.0);
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1.0),
                "{got} vs {want}"
            );
        }
        let r = simu.process_query(&report, ()).unwrap();
        assert!(r.negative_samples > 0);
        assert!(r.sources.iter().all(|s| s.energy_j >= 0.0));
        assert_eq!(simu.process_query(&energy, 42).unwrap(), 0.0);
    }

    #[test]
    fn reset_restarts_the_window_keeping_the_power_level() {
        let mbox = Mailbox::new();
        let mut b = bench();
        let power = EventSource::new()
            .connect(EnergyMeter::power, &mbox)
            .register(&mut b);
        let reset = EventSource::new()
            .connect(EnergyMeter::reset, &mbox)
            .register(&mut b);
        let total = QuerySource::new()
            .connect(EnergyMeter::total_j, &mbox)
            .register(&mut b);
        let mut simu = b
            .add_model(EnergyMeter::new(), mbox, "meter")
            .init(T0)
            .unwrap();
        simu.process_event(&power, sample(0, 3.0)).unwrap();
        simu.step_until(T0 + Duration::from_secs(5)).unwrap();
        assert_eq!(simu.process_query(&total, ()).unwrap(), 15.0);
        simu.process_event(&reset, ()).unwrap();
        simu.step_until(T0 + Duration::from_secs(7)).unwrap();
        assert_eq!(simu.process_query(&total, ()).unwrap(), 6.0);
    }
}
