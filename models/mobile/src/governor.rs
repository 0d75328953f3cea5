//! A stock DVFS governor as a nexosim model: it sees only its own domain's utilisation (input
//! `observe`, the same signal the domain's power model receives), is woken by its own
//! [`Ticker`](sim::components::ticker::Ticker) at its sampling period, runs its algorithm and
//! requests an OPP through `set_opp`. The three stock governors are blind to each other.

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::engine::t_s;
use sim::metrics::TimeWeightedGauge;

use super::membw::MemBw;
use super::ondemand::OndemandParams;
use super::quickstep::Quickstep;
use super::schedutil::Schedutil;

/// The algorithm a [`Governor`] runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Algorithm {
    /// CPU schedutil.
    Schedutil(Schedutil),
    /// GPU load thresholds (simple_ondemand / quickstep-like).
    Ondemand(OndemandParams),
    /// Memory bandwidth-demand governor.
    MemBw(MemBw),
    /// Pixel's GPU governor with its device-tree table.
    Quickstep(Quickstep),
}

/// One domain's governor.
#[derive(Serialize, Deserialize)]
pub struct Governor {
    /// OPP requests, to the domain's `set_opp`.
    pub set_opp: Output<usize>,
    /// The algorithm and its state.
    algo: Algorithm,
    /// Frequency of each OPP, hertz.
    freqs_hz: Vec<f64>,
    /// Achievable bandwidth of each OPP, bytes/s (memory governor only; empty otherwise).
    bw_bps: Vec<f64>,
    /// OPP last requested.
    cur: usize,
    /// Busy fraction since the last tick.
    busy: TimeWeightedGauge,
}

#[Model]
impl Governor {
    /// A governor running `algo` on a domain with OPP frequencies `freqs_hz` (and, for memory, OPP
    /// bandwidths `bw_bps`), starting at OPP `initial`.
    pub fn new(algo: Algorithm, freqs_hz: Vec<f64>, bw_bps: Vec<f64>, initial: usize) -> Self {
        Self {
            set_opp: Output::default(),
            algo,
            freqs_hz,
            bw_bps,
            cur: initial,
            busy: TimeWeightedGauge::new(0.0, 0.0),
        }
    }

    /// The domain's utilisation changed (input port).
    pub fn observe(&mut self, util: f64, cx: &Context<Self>) {
        self.busy.set(t_s(cx.time()), util);
    }

    /// Sampling tick (input port, from the governor's ticker).
    pub async fn tick(&mut self, _: u64, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let load = self.busy.mean(now);
        self.busy.reset(now);
        let next = match &mut self.algo {
            Algorithm::Schedutil(s) => s.update(now, load, self.cur, &self.freqs_hz),
            Algorithm::Ondemand(p) => p.decide(load, self.cur, &self.freqs_hz),
            Algorithm::MemBw(m) => m.update(load, self.cur, &self.bw_bps),
            Algorithm::Quickstep(q) => q.update(load, self.cur),
        };
        if next != self.cur {
            self.cur = next;
            self.set_opp.send(next).await;
        }
    }
}
