//! The device runtime: one compute stream that runs a program of operators and cache operators,
//! one in-order transfer stream per direction (pool → device, device → pool), device memory held
//! in a [`MemoryPool`], and the two fabric directions as [`Link`]s.
//!
//! In [`Mode::Strict`] a tensor that does not fit is an out-of-memory error (strategies `none`
//! and `ideal`). In [`Mode::Swap`] the runtime also swaps on demand: an allocation that fails
//! evicts the least-recently-used unpinned tensor (written back first when dirty) and an operator
//! whose input is in the pool fetches it and waits (strategy `reactive`; under `hyperoffload` the
//! plan's cache operators make this path unused, and it is counted when taken).
//!
//! [`MemoryPool`]: sim::components::memory::MemoryPool
//! [`Link`]: sim::components::link::Link

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::{Output, Requestor};
use serde::{Deserialize, Serialize};
use sim::components::link::{Delivered, Transfer};
use sim::components::memory::{Alloc, OutOfMemory};
use sim::engine::{secs, t_s};

use super::graph::{Graph, OpId, TensorId};
use super::planner::Instr;

/// How the runtime reacts to a tensor that is not resident or does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Everything must fit: the first allocation that fails ends the run with an error.
    Strict,
    /// Least-recently-used eviction on allocation failure, fetch on use.
    Swap,
}

/// Where a tensor's current value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Loc {
    /// Not produced yet, or freed for good.
    Absent,
    /// Only in the pool.
    Pool,
    /// On the device (allocated; being produced when its operator runs).
    Device,
    /// Being copied pool → device.
    Fetching,
    /// Being written device → pool; its device memory is freed on arrival.
    WritingBack,
}

/// What the device did, read after the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Time the last instruction completed, seconds (`None` if it never did).
    pub finished_s: Option<f64>,
    /// Why the run stopped early.
    pub error: Option<String>,
    /// Time the compute stream was busy, seconds.
    pub compute_busy_s: f64,
    /// Time the compute stream waited for transfers or memory, seconds.
    pub exposed_s: f64,
    /// Busy intervals of the compute stream (start, end), seconds.
    pub intervals: Vec<(f64, f64)>,
    /// The operator of each busy interval (same order as `intervals`).
    #[serde(default)]
    pub interval_ops: Vec<OpId>,
    /// Completion times of the operators that end a token (`*lm_head`), seconds.
    pub token_ends_s: Vec<f64>,
    /// Bytes fetched pool → device.
    pub h2d_bytes: u64,
    /// Bytes written device → pool.
    pub d2h_bytes: u64,
    /// Fetches per tensor.
    pub fetches: Vec<u32>,
    /// Evictions (write-backs and drops of live tensors) per tensor.
    pub evictions: Vec<u32>,
    /// Tensors fetched on demand because no prefetch had brought them.
    pub demand_fetches: u64,
    /// Tensors evicted by the least-recently-used fallback.
    pub lru_evictions: u64,
}

/// The device: a compute stream running `program` and a runtime moving tensors.
#[derive(Serialize, Deserialize)]
pub struct Device {
    /// Transfers pool → device (to the h2d link).
    pub h2d: Output<Transfer>,
    /// Transfers device → pool (to the d2h link).
    pub d2h: Output<Transfer>,
    /// Device memory allocation (to the memory pool).
    pub alloc: Requestor<Alloc, Result<(), OutOfMemory>>,
    /// Device memory release (to the memory pool).
    pub free: Output<u64>,
    graph: Graph,
    program: Vec<Instr>,
    initial: Vec<TensorId>,
    op_time_s: Vec<f64>,
    mode: Mode,
    capacity: u64,
    loc: Vec<Loc>,
    dirty: Vec<bool>,
    stamp: Vec<u64>,
    clock: u64,
    used: u64,
    writing_bytes: u64,
    /// Copies waiting for the pool → device stream (one copy in flight per direction).
    h2d_queue: std::collections::VecDeque<Transfer>,
    /// Copies waiting for the device → pool stream.
    d2h_queue: std::collections::VecDeque<Transfer>,
    h2d_busy: bool,
    d2h_busy: bool,
    pc: usize,
    computing: Option<(OpId, f64)>,
    stall_since: Option<f64>,
    report: DeviceReport,
}

#[Model]
impl Device {
    /// A device of `capacity` bytes that will run `program` over `graph`, with `initial` tensors
    /// resident at the start (the other graph inputs are in the pool) and operator times
    /// `op_time_s` (by id, seconds).
    pub fn new(
        graph: Graph,
        program: Vec<Instr>,
        initial: Vec<TensorId>,
        op_time_s: Vec<f64>,
        mode: Mode,
        capacity: u64,
    ) -> Self {
        let n = graph.tensors.len();
        let producers = graph.producers();
        let loc = producers
            .iter()
            .map(|p| if p.is_none() { Loc::Pool } else { Loc::Absent })
            .collect();
        Self {
            h2d: Output::default(),
            d2h: Output::default(),
            alloc: Requestor::default(),
            free: Output::default(),
            graph,
            program,
            initial,
            op_time_s,
            mode,
            capacity,
            loc,
            dirty: vec![false; n],
            stamp: vec![0; n],
            clock: 1,
            used: 0,
            writing_bytes: 0,
            h2d_queue: std::collections::VecDeque::new(),
            d2h_queue: std::collections::VecDeque::new(),
            h2d_busy: false,
            d2h_busy: false,
            pc: 0,
            computing: None,
            stall_since: None,
            report: DeviceReport {
                fetches: vec![0; n],
                evictions: vec![0; n],
                ..DeviceReport::default()
            },
        }
    }

    /// Places the initial tensors and starts the program (input port; send once at time zero).
    pub async fn start(&mut self, _: (), cx: &Context<Self>) {
        let initial = std::mem::take(&mut self.initial);
        for &t in &initial {
            if let Err(e) = self.allocate(t).await {
                let name = &self.graph.tensors[t].name;
                self.fail(format!(
                    "placing graph input {name} ({} bytes) on the device: {e}",
                    self.graph.tensors[t].bytes
                ));
                return;
            }
            self.loc[t] = Loc::Device;
        }
        self.initial = initial;
        self.advance(cx).await;
    }

    /// A fetch arrived from the pool (input port, from the h2d link).
    pub async fn fetched(&mut self, d: Delivered, cx: &Context<Self>) {
        let t = d.id as TensorId;
        self.loc[t] = Loc::Device;
        self.dirty[t] = false;
        self.report.h2d_bytes += d.bytes;
        self.report.fetches[t] += 1;
        self.h2d_busy = false;
        self.pump().await;
        self.advance(cx).await;
    }

    /// A write-back reached the pool (input port, from the d2h link): its device memory is freed.
    pub async fn written(&mut self, d: Delivered, cx: &Context<Self>) {
        let t = d.id as TensorId;
        self.loc[t] = Loc::Pool;
        self.dirty[t] = false;
        self.writing_bytes -= d.bytes;
        self.report.d2h_bytes += d.bytes;
        self.d2h_busy = false;
        self.release(t).await;
        self.pump().await;
        self.advance(cx).await;
    }

    /// What the device did so far (replier port).
    pub async fn report(&mut self, _: ()) -> DeviceReport {
        self.report.clone()
    }

    /// The running operator finished (self-scheduled).
    #[nexosim(schedulable)]
    async fn compute_done(&mut self, o: OpId, cx: &Context<Self>) {
        let now = t_s(cx.time());
        if let Some((_, start)) = self.computing.take() {
            self.report.compute_busy_s += now - start;
            self.report.intervals.push((start, now));
            self.report.interval_ops.push(o);
        }
        let op = &self.graph.ops[o];
        for t in op.uses().chain(op.outputs.iter().copied()) {
            self.stamp[t] = self.clock;
        }
        self.clock += 1;
        for &t in op.outputs.iter().chain(&op.updates) {
            self.dirty[t] = true;
        }
        if op.ends_token() {
            self.report.token_ends_s.push(now);
        }
        self.pc += 1;
        self.advance(cx).await;
    }

    /// Runs instructions until the compute stream is busy, must wait, or the program ends.
    async fn advance(&mut self, cx: &Context<Self>) {
        let now = t_s(cx.time());
        while self.computing.is_none() && self.report.error.is_none() {
            let Some(&ins) = self.program.get(self.pc) else {
                if self.report.finished_s.is_none() {
                    self.report.finished_s = Some(now);
                    self.end_stall(now);
                }
                return;
            };
            let progressed = match ins {
                Instr::Prefetch(t) => self.prefetch(t, &[]).await,
                Instr::Offload(t) => {
                    if self.loc[t] == Loc::Device {
                        self.evict(t).await;
                    }
                    true
                }
                Instr::Free(t) => {
                    if self.loc[t] == Loc::Device {
                        self.loc[t] = if self.dirty[t] {
                            Loc::Absent
                        } else {
                            Loc::Pool
                        };
                        if self.loc[t] == Loc::Pool {
                            self.report.evictions[t] += 1;
                        }
                        self.release(t).await;
                    }
                    true
                }
                Instr::Compute(o) => {
                    if self.try_start(o).await {
                        self.end_stall(now);
                        let dur = secs(self.op_time_s[o]).max(std::time::Duration::from_nanos(1));
                        self.computing = Some((o, now));
                        cx.schedule_event(dur, schedulable!(Self::compute_done), o)
                            .expect("positive delay");
                        return;
                    }
                    false
                }
            };
            if !progressed {
                if self.stall_since.is_none() {
                    self.stall_since = Some(now);
                }
                return;
            }
            if !matches!(ins, Instr::Compute(_)) {
                self.pc += 1;
            }
        }
    }

    fn end_stall(&mut self, now: f64) {
        if let Some(since) = self.stall_since.take() {
            self.report.exposed_s += now - since;
        }
    }

    /// Starts bringing `t` to the device; false when it must wait for memory or a write-back.
    async fn prefetch(&mut self, t: TensorId, pinned: &[TensorId]) -> bool {
        match self.loc[t] {
            Loc::Device | Loc::Fetching => true,
            Loc::WritingBack => false,
            Loc::Absent => {
                let name = self.graph.tensors[t].name.clone();
                self.fail(format!(
                    "tensor {name} is needed but was freed or never produced"
                ));
                false
            }
            Loc::Pool => {
                let bytes = self.graph.tensors[t].bytes;
                if !self.make_space(t, bytes, pinned).await {
                    return false;
                }
                if self.allocate(t).await.is_err() {
                    return false;
                }
                self.loc[t] = Loc::Fetching;
                self.h2d_queue.push_back(Transfer {
                    id: t as u64,
                    bytes,
                });
                self.pump().await;
                true
            }
        }
    }

    /// Whether operator `o` can start now: its uses resident, its outputs allocated.
    async fn try_start(&mut self, o: OpId) -> bool {
        let op = &self.graph.ops[o];
        let mut pinned: Vec<TensorId> = op.uses().chain(op.outputs.iter().copied()).collect();
        pinned.sort_unstable();
        pinned.dedup();
        let uses: Vec<TensorId> = op.uses().collect();
        let outputs = op.outputs.clone();
        let mut ready = true;
        for t in uses {
            match self.loc[t] {
                Loc::Device => {}
                Loc::Pool if self.mode == Mode::Swap => {
                    self.report.demand_fetches += 1;
                    self.prefetch(t, &pinned).await;
                    ready = false;
                }
                Loc::Fetching | Loc::WritingBack => ready = false,
                _ => {
                    let (op, name) = (
                        self.graph.ops[o].name.clone(),
                        self.graph.tensors[t].name.clone(),
                    );
                    self.fail(format!(
                        "operator {op} needs {name}, which is not on the device"
                    ));
                    return false;
                }
            }
            if self.report.error.is_some() {
                return false;
            }
        }
        if !ready {
            return false;
        }
        for t in outputs {
            if self.loc[t] != Loc::Absent {
                continue;
            }
            let bytes = self.graph.tensors[t].bytes;
            if !self.make_space(t, bytes, &pinned).await || self.allocate(t).await.is_err() {
                return false;
            }
            self.loc[t] = Loc::Device;
        }
        true
    }

    /// Ensures `bytes` fit for tensor `t`, evicting least-recently-used unpinned tensors in
    /// [`Mode::Swap`]; false when the caller must wait (write-backs in flight) or on error.
    async fn make_space(&mut self, t: TensorId, bytes: u64, pinned: &[TensorId]) -> bool {
        loop {
            if self.used + bytes <= self.capacity {
                return true;
            }
            if self.mode == Mode::Strict {
                let free = self.capacity - self.used;
                let name = self.graph.tensors[t].name.clone();
                self.fail(format!(
                    "out of memory: tensor {name} needs {bytes} bytes but only {free} of {} bytes of device memory are free",
                    self.capacity
                ));
                return false;
            }
            if self.used - self.writing_bytes + bytes <= self.capacity {
                return false; // write-backs in flight will make room
            }
            let victim = (0..self.loc.len())
                .filter(|&v| self.loc[v] == Loc::Device && pinned.binary_search(&v).is_err())
                .min_by_key(|&v| (self.stamp[v], std::cmp::Reverse(v)));
            match victim {
                Some(v) => {
                    self.report.lru_evictions += 1;
                    self.evict(v).await;
                }
                None if self.writing_bytes > 0 => return false,
                None => {
                    let name = self.graph.tensors[t].name.clone();
                    self.fail(format!(
                        "out of memory: tensor {name} needs {bytes} bytes and nothing more can be evicted from the {} bytes of device memory",
                        self.capacity
                    ));
                    return false;
                }
            }
        }
    }

    /// Writes `t` back when dirty (memory freed on arrival) or drops its clean copy now.
    async fn evict(&mut self, t: TensorId) {
        self.report.evictions[t] += 1;
        let bytes = self.graph.tensors[t].bytes;
        if self.dirty[t] {
            self.loc[t] = Loc::WritingBack;
            self.writing_bytes += bytes;
            self.d2h_queue.push_back(Transfer {
                id: t as u64,
                bytes,
            });
            self.pump().await;
        } else {
            self.loc[t] = Loc::Pool;
            self.release(t).await;
        }
    }

    /// Starts the next queued copy of each idle transfer stream (copies in a stream are in order).
    async fn pump(&mut self) {
        if !self.h2d_busy
            && let Some(x) = self.h2d_queue.pop_front()
        {
            self.h2d_busy = true;
            self.h2d.send(x).await;
        }
        if !self.d2h_busy
            && let Some(x) = self.d2h_queue.pop_front()
        {
            self.d2h_busy = true;
            self.d2h.send(x).await;
        }
    }

    async fn allocate(&mut self, t: TensorId) -> Result<(), OutOfMemory> {
        let bytes = self.graph.tensors[t].bytes;
        let reply = self
            .alloc
            .send(Alloc {
                id: t as u64,
                bytes,
            })
            .await
            .next()
            .expect("memory pool connected");
        match reply {
            Ok(()) => {
                self.used += bytes;
                Ok(())
            }
            Err(e) => {
                let name = self.graph.tensors[t].name.clone();
                self.fail(format!("allocating {name}: {e}"));
                Err(e)
            }
        }
    }

    async fn release(&mut self, t: TensorId) {
        self.used -= self.graph.tensors[t].bytes;
        self.free.send(t as u64).await;
    }

    fn fail(&mut self, msg: String) {
        if self.report.error.is_none() {
            self.report.error = Some(msg);
        }
    }
}
