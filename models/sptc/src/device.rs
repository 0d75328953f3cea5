//! The GPU as a nexosim model: kernels arrive on one stream and run in order; each kernel's thread
//! blocks are dispatched to the SMs in waves (one engine event per wave), each wave timed by
//! [`time_wave`] (tile-level SM time vs DRAM time, L2 reuse); a finished kernel is reported with its
//! counts.

use std::collections::VecDeque;

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::engine::{secs, t_s};

use super::efficiency::EfficiencyParams;
use super::gpu::{GpuSpec, L2State, time_wave};
use super::tiling::{KernelPlan, KernelStats};

/// A kernel that finished, with what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelDone {
    /// Kernel label.
    pub name: String,
    /// Launch time, seconds.
    pub start_s: f64,
    /// Completion time, seconds.
    pub end_s: f64,
    /// Waves of thread blocks.
    pub waves: u64,
    /// Waves whose tensor-core time exceeded their DRAM time.
    pub compute_bound_waves: u64,
    /// DRAM bytes after L2 reuse.
    pub dram_bytes: f64,
    /// Tile, MMA, requested-byte and FLOP totals.
    pub stats: KernelStats,
}

/// The kernel in flight.
#[derive(Serialize, Deserialize)]
struct Running {
    plan: KernelPlan,
    serial: u64,
    next_tile: usize,
    wave_size: usize,
    done: KernelDone,
}

/// A GPU executing one stream of kernels.
#[derive(Serialize, Deserialize)]
pub struct Device {
    /// One report per finished kernel.
    pub done: Output<KernelDone>,
    spec: GpuSpec,
    eff: EfficiencyParams,
    queue: VecDeque<KernelPlan>,
    running: Option<Running>,
    l2: L2State,
    serial: u64,
}

#[Model]
impl Device {
    /// An idle GPU of `spec` whose kernels sustain the fractions `eff` of the units' peaks.
    pub fn new(spec: GpuSpec, eff: EfficiencyParams) -> Self {
        Self {
            done: Output::default(),
            spec,
            eff,
            queue: VecDeque::new(),
            running: None,
            l2: L2State::default(),
            serial: 0,
        }
    }

    /// A kernel is launched on the stream.
    pub async fn launch(&mut self, plan: KernelPlan, cx: &Context<Self>) {
        self.queue.push_back(plan);
        if self.running.is_none() {
            self.start(cx);
        }
    }

    fn start(&mut self, cx: &Context<Self>) {
        let Some(plan) = self.queue.pop_front() else {
            return;
        };
        self.serial += 1;
        let now = t_s(cx.time());
        let mut r = Running {
            wave_size: self.spec.wave_size(&plan),
            serial: self.serial,
            next_tile: 0,
            done: KernelDone {
                name: plan.name.clone(),
                start_s: now,
                end_s: now,
                waves: 0,
                compute_bound_waves: 0,
                dram_bytes: 0.0,
                stats: KernelStats::of(&plan),
            },
            plan,
        };
        let first = self.next_wave(&mut r);
        self.running = Some(r);
        self.schedule(cx, self.spec.launch_overhead_us * 1e-6 + first);
    }

    /// Times the next wave of `r` and advances its cursor; returns its duration in seconds.
    fn next_wave(&mut self, r: &mut Running) -> f64 {
        let end = (r.next_tile + r.wave_size).min(r.plan.tiles.len());
        if r.next_tile == end {
            return 0.0;
        }
        let w = time_wave(
            &self.spec,
            &self.eff,
            r.serial,
            &r.plan,
            r.next_tile..end,
            &mut self.l2,
        );
        r.next_tile = end;
        r.done.waves += 1;
        r.done.dram_bytes += w.dram_bytes;
        if w.tensor_s >= w.memory_s {
            r.done.compute_bound_waves += 1;
        }
        w.time_s
    }

    fn schedule(&self, cx: &Context<Self>, delay_s: f64) {
        let delay = secs(delay_s).max(std::time::Duration::from_nanos(1));
        // Scheduling in the future cannot fail.
        let _ = cx.schedule_event(delay, schedulable!(Self::wave_end), ());
    }

    /// The current wave of the running kernel ends.
    #[nexosim(schedulable)]
    async fn wave_end(&mut self, _: (), cx: &Context<Self>) {
        let Some(mut r) = self.running.take() else {
            return;
        };
        if r.next_tile < r.plan.tiles.len() {
            let t = self.next_wave(&mut r);
            self.running = Some(r);
            self.schedule(cx, t);
            return;
        }
        r.done.end_s = t_s(cx.time());
        self.start(cx);
        self.done.send(r.done).await;
    }
}
