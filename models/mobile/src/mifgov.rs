//! The memory-interface governor of an Exynos-style SoC as a nexosim model: devfreq `interactive`
//! with ALT-DVFS (`altdvfs`) on its own timer, plus the PM-QoS minimum votes on the same domain —
//! the GPU's per-level memory floor (the GPU DVFS table's `mif min` column, voted by the GPU
//! driver when it changes level) and the host CPU's memlat vote (`memlat`, on its own timer).
//! The request is the largest of the three, rounded up to a memory OPP.

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::components::dvfs::OppSwitch;
use sim::engine::t_s;
use sim::metrics::TimeWeightedGauge;

use super::altdvfs::{AltDvfs, ceil_opp};
use super::memlat::MemlatParams;

/// The memory governor and its QoS inputs.
#[derive(Serialize, Deserialize)]
pub struct MifGovernor {
    /// OPP requests, to the memory domain's `set_opp`.
    pub set_opp: Output<usize>,
    alt: AltDvfs,
    memlat: Option<MemlatParams>,
    /// Memory OPP frequencies, MHz.
    opps_mhz: Vec<f64>,
    /// Memory floor per GPU OPP, MHz (empty: the GPU votes none).
    gpu_floor_mhz: Vec<f64>,
    /// OPP last requested.
    cur: usize,
    /// The ALT-DVFS request, MHz.
    governor_mhz: f64,
    /// The memlat vote, MHz (0: none).
    memlat_mhz: f64,
    /// The GPU's floor, MHz.
    gpu_mhz: f64,
    /// Current host-cluster frequency, MHz.
    cpu_mhz: f64,
    /// Time of the last ALT-DVFS evaluation, seconds.
    last_alt_s: f64,
    /// Memory busy fraction since the last ALT-DVFS evaluation.
    busy: TimeWeightedGauge,
    /// Host running fraction (computing or spinning) since the last memlat sample.
    running: TimeWeightedGauge,
    /// Host computing fraction since the last memlat sample.
    computing: TimeWeightedGauge,
}

#[Model]
impl MifGovernor {
    /// A governor over memory OPPs `opps_mhz` starting at OPP `initial`, with the GPU's floor per
    /// GPU OPP `gpu_floor_mhz` and the host cluster at `cpu_mhz`.
    pub fn new(
        alt: AltDvfs,
        memlat: Option<MemlatParams>,
        opps_mhz: Vec<f64>,
        gpu_floor_mhz: Vec<f64>,
        initial: usize,
        cpu_mhz: f64,
    ) -> Self {
        let governor_mhz = opps_mhz[initial];
        Self {
            set_opp: Output::default(),
            alt,
            memlat,
            gpu_mhz: gpu_floor_mhz.first().copied().unwrap_or(0.0),
            opps_mhz,
            gpu_floor_mhz,
            cur: initial,
            governor_mhz,
            memlat_mhz: 0.0,
            cpu_mhz,
            last_alt_s: 0.0,
            busy: TimeWeightedGauge::new(0.0, 0.0),
            running: TimeWeightedGauge::new(0.0, 0.0),
            computing: TimeWeightedGauge::new(0.0, 0.0),
        }
    }

    /// The memory's bandwidth utilisation changed (input port).
    pub fn observe(&mut self, util: f64, cx: &Context<Self>) {
        self.busy.set(t_s(cx.time()), util);
    }

    /// The host core's running fraction changed (input port, from the engine's `cpu_busy`).
    pub fn host_running(&mut self, f: f64, cx: &Context<Self>) {
        self.running.set(t_s(cx.time()), f);
    }

    /// The host core's computing fraction changed (input port, from the engine's `cpu_compute`).
    pub fn host_computing(&mut self, f: f64, cx: &Context<Self>) {
        self.computing.set(t_s(cx.time()), f);
    }

    /// The host cluster changed OPP (input port, from the CPU domain's `switched`).
    pub fn cpu_switched(&mut self, s: OppSwitch) {
        self.cpu_mhz = s.freq_hz / 1e6;
    }

    /// The GPU changed OPP (input port, from the GPU domain's `switched`): its floor vote.
    pub async fn gpu_switched(&mut self, s: OppSwitch) {
        let floor = self.gpu_floor_mhz.get(s.opp).copied().unwrap_or(0.0);
        if floor != self.gpu_mhz {
            self.gpu_mhz = floor;
            self.apply().await;
        }
    }

    /// ALT-DVFS timer (input port, from its ticker).
    pub async fn tick_alt(&mut self, _: u64, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let load = self.busy.mean(now);
        self.busy.reset(now);
        let dur = now - self.last_alt_s;
        self.last_alt_s = now;
        self.governor_mhz = self.alt.update(dur, load, self.opps_mhz[self.cur]);
        self.apply().await;
    }

    /// Memlat timer (input port, from its ticker).
    pub async fn tick_memlat(&mut self, _: u64, cx: &Context<Self>) {
        let now = t_s(cx.time());
        let (run, comp) = (self.running.mean(now), self.computing.mean(now));
        self.running.reset(now);
        self.computing.reset(now);
        let vote = self
            .memlat
            .as_ref()
            .map_or(0.0, |m| m.vote(self.cpu_mhz, run, comp));
        if vote != self.memlat_mhz {
            self.memlat_mhz = vote;
            self.apply().await;
        }
    }

    /// Requests the OPP for the largest of the governor's request and the QoS floors.
    async fn apply(&mut self) {
        let want = self.governor_mhz.max(self.memlat_mhz).max(self.gpu_mhz);
        let next = ceil_opp(&self.opps_mhz, want);
        if next != self.cur {
            self.cur = next;
            self.set_opp.send(next).await;
        }
    }
}
