//! Bench of the `supernode` family: a [`Device`] running a program, its HBM as a [`MemoryPool`],
//! and the fabric to the pooled memory as two [`Link`]s (pool → device, device → pool).
//!
//! ```text
//!                       h2d → send    ┌──────────────┐ delivered → fetched
//!                   ┌────────────────►│  Link "h2d"  ├─────────────────────┐
//!                   │                 └──────────────┘                     │
//!  start ──► ┌──────┴─────┐ d2h → send┌──────────────┐ delivered → written │
//!  (source)  │   Device   ├──────────►│  Link "d2h"  ├───────────────────┐ │
//!            │  "device"  │◄──────────┴──────────────┴───────────────────┴─┘
//!            │            │ alloc ⇄ alloc (request) ┌───────────────────┐ usage
//!            │            ├────────────────────────►│ MemoryPool "hbm"  ├──────► MemoryUsage queue
//!            └────────────┘ free → free            └───────────────────┘
//!
//!   both links' delivered ──► Delivered queues (the h2d / d2h transfers, for the Gantt series)
//!   queried at the end: Device::report, MemoryPool::stats, Link::stats (h2d, d2h)
//! ```

use nexosim::ports::{EventQueueReader, EventSinkReader, QuerySource, SinkState, event_queue};
use nexosim::simulation::Mailbox;
use serde::{Deserialize, Serialize};
use sim::checkpoint::Checkpointer;
use sim::components::link::{Delivered, Link, LinkStats};
use sim::components::memory::{MemoryPool, MemoryStats, MemoryUsage};
use sim::engine::{self, T0};
use sim::estimate::ResourceEstimate;
use sim::experiment::{Experiment, PresetSlot, RunContext, RunError, RunOutput};
use sim::trace::Trace;

use super::baseline;
use super::device::{Device, DeviceReport, Mode};
use super::graph::{Graph, OpId};
use super::hw::Fabric;
use super::lifetime::{Lifetimes, no_offload_peak};
use super::params::{Strategy, SupernodeParams, Workload};
use super::phases::Phases;
use super::planner::{self, Costs, Instr, Knobs, Plan};
use super::serving;
use super::workloads::{self, Sharding};

/// The HyperOffload experiment.
pub struct SupernodeExperiment;

/// A step ready to execute: the graph, its program and the device memory it gets.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The computation graph.
    pub graph: Graph,
    /// Estimated compute time of every operator, seconds.
    pub op_time_s: Vec<f64>,
    /// The program the device runs.
    pub program: Vec<Instr>,
    /// Tensors resident at the start.
    pub initial: Vec<usize>,
    /// Device memory available, bytes.
    pub capacity_bytes: u64,
    /// Runtime behaviour.
    pub mode: Mode,
    /// Peak of the step without offloading, bytes.
    pub no_offload_peak_bytes: u64,
    /// The plan behind the program (`hyperoffload` and `kv_offload`).
    pub plan: Option<Plan>,
}

/// Builds the graph of `p.workload` (MoE routing drawn from `ctx`'s stream).
pub fn build_graph(p: &SupernodeParams, ctx: &RunContext) -> Graph {
    let par = Sharding {
        tensor: p.parallel.tensor,
        expert: p.parallel.expert,
    };
    match p.workload {
        Workload::Prefill {
            prompt_tokens,
            batch,
        } => workloads::prefill(&p.llm, par, prompt_tokens, batch),
        Workload::Decode {
            context_tokens,
            batch,
            steps,
        } => workloads::decode(
            &p.llm,
            par,
            context_tokens,
            batch,
            steps,
            &mut ctx.rng("supernode/routing"),
        ),
        Workload::Request {
            prompt_tokens,
            batch,
            decode_steps,
            chunk_tokens,
        } => workloads::request(
            &p.llm,
            par,
            (prompt_tokens, chunk_tokens),
            batch,
            decode_steps,
            &mut ctx.rng("supernode/routing"),
        ),
        Workload::Training { seq_len, batch } => workloads::training(&p.llm, par, seq_len, batch),
    }
}

/// Turns parameters and a graph into a [`Setup`]: the strategy decides the program, the initial
/// residency and the memory capacity; `hyperoffload` runs the compile pass here.
pub fn setup(p: &SupernodeParams, graph: Graph) -> Result<Setup, RunError> {
    let op_time_s: Vec<f64> = (0..graph.ops.len())
        .map(|o| p.accel.op_time_s(graph.ops[o].flops, graph.op_hbm_bytes(o)))
        .collect();
    let order: Vec<OpId> = (0..graph.ops.len()).collect();
    let peak = no_offload_peak(&graph, &order);
    let budget = ((peak as f64 * p.budget_frac) as u64).min(p.accel.hbm_bytes);
    let producers = graph.producers();
    let inputs: Vec<usize> = (0..graph.tensors.len())
        .filter(|&t| producers[t].is_none())
        .collect();
    let offloads = matches!(
        p.strategy,
        Strategy::Reactive | Strategy::Hyperoffload | Strategy::KvOffload
    );
    // The pool holds offloaded tensors, a subset of the live ones: it never needs more than the
    // peak of live bytes (tensors that never coexist, such as per-layer workspaces, are not summed).
    if offloads && peak > p.fabric.pool_bytes {
        return Err(RunError::Model(format!(
            "the step's peak of {} live tensor bytes exceeds the {} bytes of pooled memory of fabric {}",
            peak, p.fabric.pool_bytes, p.fabric.name
        )));
    }
    let (program, initial, capacity_bytes, mode, plan) = match p.strategy {
        Strategy::None => (
            planner::no_offload_program(&graph, &order),
            inputs,
            p.accel.hbm_bytes,
            Mode::Strict,
            None,
        ),
        Strategy::Ideal => (
            planner::no_offload_program(&graph, &order),
            inputs,
            u64::MAX,
            Mode::Strict,
            None,
        ),
        Strategy::Reactive => {
            let lt = Lifetimes::analyse(&graph, &order);
            let initial = planner::initial_residency(&graph, &lt, budget);
            (
                planner::no_offload_program(&graph, &order),
                initial,
                budget,
                Mode::Swap,
                None,
            )
        }
        Strategy::KvOffload => {
            let plan = baseline::kv_offload(
                &graph,
                &costs(p, &op_time_s),
                p.kv_offload.lookahead_ops as usize,
            );
            (
                plan.program.clone(),
                plan.initial.clone(),
                p.accel.hbm_bytes,
                Mode::Swap,
                Some(plan),
            )
        }
        Strategy::Hyperoffload => {
            let plan = compile(p, &graph, &op_time_s, budget)
                .map_err(|e| RunError::Model(format!("hyperoffload: {e}")))?;
            (
                plan.program.clone(),
                plan.initial.clone(),
                budget.min(plan_budget(&plan, budget)),
                Mode::Swap,
                Some(plan),
            )
        }
    };
    Ok(Setup {
        graph,
        op_time_s,
        program,
        initial,
        capacity_bytes,
        mode,
        no_offload_peak_bytes: peak,
        plan,
    })
}

/// The budget a plan was made for: the searched one when `max_slowdown` chose a smaller one.
fn plan_budget(plan: &Plan, budget: u64) -> u64 {
    if plan.planned_peak_bytes < budget {
        plan.planned_peak_bytes.max(1)
    } else {
        budget
    }
}

/// The costs the planners see: operator times and the fabric.
fn costs<'a>(p: &SupernodeParams, op_time_s: &'a [f64]) -> Costs<'a> {
    Costs {
        op_time_s,
        bandwidth_bytes_per_s: p.fabric.bandwidth_bytes_per_s,
        latency_s: p.fabric.latency_s,
    }
}

/// Runs the compile pass under `budget`, or under the smallest budget meeting `max_slowdown`
/// (end to end, and per phase when `per_phase_slowdown` is set).
fn compile(
    p: &SupernodeParams,
    g: &Graph,
    op_time_s: &[f64],
    budget: u64,
) -> Result<Plan, planner::PlanError> {
    let costs = costs(p, op_time_s);
    let k = &p.hyperoffload;
    let knobs = Knobs {
        prefetch_distance: k.prefetch_distance as usize,
        refine_order: k.refine_order,
        reorder_window: k.reorder_window as usize,
        select_distance: k.select_distance as usize,
        select_num: k.select_num as usize,
        release_distance: k.release_distance as usize,
    };
    let full = planner::plan(g, &costs, budget, &knobs)?;
    let Some(slowdown) = k.max_slowdown else {
        return Ok(full);
    };
    let meets = |plan: &Plan| {
        let ends = planner::estimate_op_ends_s(g, &plan.program, &plan.initial, &costs);
        let estimated = Phases::of_order(g, &plan.order, &ends);
        let free = Phases::transfer_free(g, &plan.order, op_time_s);
        estimated.worst_ratio(&free, k.per_phase_slowdown) <= 1.0 + slowdown
    };
    if !meets(&full) {
        return Ok(full);
    }
    let (mut lo, mut hi, mut best) = (0u64, full.planned_peak_bytes, full);
    while hi - lo > hi / 1000 + 1 {
        let mid = lo + (hi - lo) / 2;
        match planner::plan(g, &costs, mid, &knobs) {
            Ok(plan) if meets(&plan) => {
                hi = plan.planned_peak_bytes.min(mid);
                best = plan;
            }
            _ => lo = mid,
        }
    }
    Ok(best)
}

/// What one execution of a [`Setup`] produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The device's report.
    pub device: DeviceReport,
    /// Device memory figures.
    pub memory: MemoryStats,
    /// Pool → device link figures.
    pub h2d: LinkStats,
    /// Device → pool link figures.
    pub d2h: LinkStats,
    /// Every transfer pool → device.
    pub h2d_transfers: Vec<Delivered>,
    /// Every transfer device → pool.
    pub d2h_transfers: Vec<Delivered>,
    /// Device memory after every change.
    pub usage: Vec<MemoryUsage>,
}

/// Executes `s` in the engine over `fabric`.
pub fn execute(s: &Setup, fabric: &Fabric) -> Result<Outcome, RunError> {
    execute_saved(s, fabric, None)
}

/// What an execution's sinks collected: every transfer each way and every change of device memory.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Collected {
    h2d: Vec<Delivered>,
    d2h: Vec<Delivered>,
    usage: Vec<MemoryUsage>,
}

/// [`execute`], saving the engine and what its sinks collected through `ckpt` when given, and
/// continuing from the saved state when there is one.
fn execute_saved(
    s: &Setup,
    fabric: &Fabric,
    ckpt: Option<&Checkpointer>,
) -> Result<Outcome, RunError> {
    let cap = s.graph.tensors.len() + 64;
    let mut device = Device::new(
        s.graph.clone(),
        s.program.clone(),
        s.initial.clone(),
        s.op_time_s.clone(),
        s.mode,
        s.capacity_bytes,
    );
    let mut pool = MemoryPool::new(s.capacity_bytes);
    let mut h2d = Link::new(fabric.latency_s, fabric.bandwidth_bytes_per_s);
    let mut d2h = Link::new(fabric.latency_s, fabric.bandwidth_bytes_per_s);
    let (dev_mb, pool_mb, h2d_mb, d2h_mb) = (
        Mailbox::with_capacity(cap),
        Mailbox::with_capacity(cap),
        Mailbox::with_capacity(cap),
        Mailbox::with_capacity(cap),
    );
    device.h2d.connect(Link::send, &h2d_mb);
    device.d2h.connect(Link::send, &d2h_mb);
    device.alloc.connect(MemoryPool::alloc, &pool_mb);
    device.free.connect(MemoryPool::free, &pool_mb);
    h2d.delivered.connect(Device::fetched, &dev_mb);
    d2h.delivered.connect(Device::written, &dev_mb);
    let (sink, mut h2d_q) = event_queue::<Delivered>(SinkState::Enabled);
    h2d.delivered.connect_sink(sink);
    let (sink, mut d2h_q) = event_queue::<Delivered>(SinkState::Enabled);
    d2h.delivered.connect_sink(sink);
    let (sink, mut usage_q) = event_queue::<MemoryUsage>(SinkState::Enabled);
    pool.usage.connect_sink(sink);
    let mut b = engine::bench();
    let start = nexosim::ports::EventSource::new()
        .connect(Device::start, &dev_mb)
        .register(&mut b);
    let report = QuerySource::new()
        .connect(Device::report, &dev_mb)
        .register(&mut b);
    let mem = QuerySource::new()
        .connect(MemoryPool::stats, &pool_mb)
        .register(&mut b);
    let h2d_s = QuerySource::new()
        .connect(Link::stats, &h2d_mb)
        .register(&mut b);
    let d2h_s = QuerySource::new()
        .connect(Link::stats, &d2h_mb)
        .register(&mut b);
    let bench = b
        .add_model(device, dev_mb, "device")
        .add_model(pool, pool_mb, "hbm")
        .add_model(h2d, h2d_mb, "h2d")
        .add_model(d2h, d2h_mb, "d2h");
    fn drain<T: Send + 'static>(q: &mut EventQueueReader<T>, into: &mut Vec<T>) {
        into.extend(std::iter::from_fn(|| q.try_read()));
    }
    let mut collect = |c: &mut Collected| {
        drain(&mut h2d_q, &mut c.h2d);
        drain(&mut d2h_q, &mut c.d2h);
        drain(&mut usage_q, &mut c.usage);
    };
    let (mut simu, saved) = match ckpt {
        Some(ckpt) => ckpt.start::<Collected>(bench)?,
        None => (bench.init(T0)?, None),
    };
    let restored = saved.is_some();
    let mut got = saved.unwrap_or_default();
    if !restored {
        simu.process_event(&start, ())?;
    }
    match ckpt {
        Some(ckpt) => ckpt.drive(&mut simu, &mut got, collect)?,
        None => {
            simu.run()?;
            collect(&mut got);
        }
    }
    let device = simu.process_query(&report, ())?;
    Ok(Outcome {
        memory: simu.process_query(&mem, ())?,
        h2d: simu.process_query(&h2d_s, ())?,
        d2h: simu.process_query(&d2h_s, ())?,
        device,
        h2d_transfers: got.h2d,
        d2h_transfers: got.d2h,
        usage: got.usage,
    })
}

impl Experiment for SupernodeExperiment {
    type Params = SupernodeParams;
    const NAME: &'static str = "supernode";
    const DESCRIPTION: &'static str = "HyperOffload: an LLM step on a supernode device with HBM plus pooled memory; none / reactive swapping / compile-time cache operators / ideal";
    const PRESETS: &'static [PresetSlot] = &[
        PresetSlot {
            key: "accel",
            builtin: presets::ACCEL,
        },
        PresetSlot {
            key: "fabric",
            builtin: presets::FABRIC,
        },
        PresetSlot {
            key: "llm",
            builtin: presets::LLM,
        },
    ];

    /// Memory: the operator graph, ≈ 16 operators per layer per step at ≈ 512 bytes each with its
    /// tensors (estimated from `Graph`), and a Gantt row per operator when asked. Work: each
    /// operator is scheduled once and the compile pass looks `reorder_window + select_distance`
    /// operators ahead of it; MoE decode routes `batch · top_k` tokens per layer per step.
    fn estimate(&self, p: &SupernodeParams) -> ResourceEstimate {
        let (steps, batch, key) = match p.workload {
            Workload::Prefill { batch, .. } => (1.0, batch, "workload.batch"),
            Workload::Decode { batch, steps, .. } => (f64::from(steps), batch, "workload.steps"),
            Workload::Request {
                batch,
                decode_steps,
                ..
            } => (
                1.0 + f64::from(decode_steps),
                batch,
                "workload.decode_steps",
            ),
            Workload::Training { batch, .. } => (3.0, batch, "workload.batch"),
        };
        let ops = 16.0 * f64::from(p.llm.layers) * steps;
        let lookahead = f64::from(p.hyperoffload.reorder_window)
            + f64::from(p.hyperoffload.select_distance)
            + 1.0;
        let routed = p.llm.moe.as_ref().map_or(0.0, |m| {
            batch as f64 * f64::from(m.top_k) * f64::from(p.llm.layers) * steps
        });
        let mut e = ResourceEstimate::default()
            .memory(key, ops * 512.0)
            .work(key, ops * lookahead)
            .work("workload.batch", routed);
        if p.gantt {
            e = e.memory("gantt", ops * 96.0);
        }
        e
    }

    fn run(&self, p: &SupernodeParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        run_with(p, ctx, None)
    }

    const CHECKPOINTS: bool = true;

    /// Saves the device's execution, and the served requests of a `request_trace` (stage `serve`);
    /// the compile pass before the execution is recomputed on resume.
    fn run_checkpointed(
        &self,
        p: &SupernodeParams,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError> {
        run_with(p, ctx, Some(ckpt))
    }
}

/// One run of `p`, its execution (and trace serving) saved through `ckpt` when given.
fn run_with(
    p: &SupernodeParams,
    ctx: &RunContext,
    ckpt: Option<&Checkpointer>,
) -> Result<RunOutput, RunError> {
    let s = setup(p, build_graph(p, ctx))?;
    let o = execute_saved(&s, &p.fabric, ckpt)?;
    if let Some(e) = &o.device.error {
        return Err(RunError::Model(format!(
            "strategy {}: {e}",
            p.strategy.name()
        )));
    }
    let latency_s = o
        .device
        .finished_s
        .ok_or_else(|| RunError::Model("the program did not finish".into()))?;
    let mut out = RunOutput::default();
    let flops = s.graph.flops();
    let hbm_bytes: f64 = (0..s.graph.ops.len())
        .map(|o| s.graph.op_hbm_bytes(o))
        .sum();
    // the transfer-free time: what `ideal` measures (one in-order stream, no waits)
    let compute_s: f64 = s.op_time_s.iter().sum();
    out.metric("latency_s", latency_s)
        .metric("peak_device_bytes", o.memory.peak_bytes as f64)
        .metric("no_offload_peak_bytes", s.no_offload_peak_bytes as f64)
        .metric(
            "peak_frac_of_no_offload",
            o.memory.peak_bytes as f64 / s.no_offload_peak_bytes.max(1) as f64,
        )
        .metric(
            "peak_saving_pct",
            100.0 * (1.0 - o.memory.peak_bytes as f64 / s.no_offload_peak_bytes.max(1) as f64),
        )
        .metric("transfer_free_s", compute_s)
        .metric("slowdown_pct", 100.0 * (latency_s / compute_s - 1.0))
        .metric(
            "compute_intensity_flop_per_byte",
            flops / hbm_bytes.max(1.0),
        )
        .metric(
            "machine_balance_flop_per_byte",
            p.accel.peak_flops * p.accel.compute_efficiency
                / (p.accel.hbm_bandwidth_bytes_per_s * p.accel.hbm_efficiency),
        )
        .metric("exposed_transfer_s", o.device.exposed_s)
        .metric(
            "exposed_frac",
            o.device.exposed_s / latency_s.max(f64::MIN_POSITIVE),
        )
        .metric("compute_busy_s", o.device.compute_busy_s)
        .metric(
            "compute_utilization",
            o.device.compute_busy_s / latency_s.max(f64::MIN_POSITIVE),
        )
        .metric(
            "mfu",
            flops / (latency_s.max(f64::MIN_POSITIVE) * p.accel.peak_flops),
        )
        .metric("demand_fetches", o.device.demand_fetches as f64)
        .metric("lru_evictions", o.device.lru_evictions as f64)
        .metric("ops", s.graph.ops.len() as f64)
        .metric("graph_flops", flops);
    let ends = &o.device.token_ends_s;
    let steps = match p.workload {
        Workload::Decode { steps, .. } => Some(steps),
        Workload::Request { decode_steps, .. } => Some(decode_steps),
        _ => None,
    };
    if let Some(steps) = steps {
        let order: Vec<OpId> = s
            .program
            .iter()
            .filter_map(|i| match *i {
                Instr::Compute(o) => Some(o),
                _ => None,
            })
            .collect();
        let free = Phases::transfer_free(&s.graph, &order, &s.op_time_s);
        let got = Phases::from_token_ends(ends, latency_s);
        let pct = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| 100.0 * (a / b - 1.0));
        if let Some(x) = pct(got.first_token_s, free.first_token_s) {
            out.metric("first_token_slowdown_pct", x);
        }
        if let Some(x) = pct(got.decode_token_s, free.decode_token_s) {
            out.metric("decode_token_slowdown_pct", x);
        }
        // decode tokens end at the `s*.lm_head` operators (a request's prefill ends at the
        // first `lm_head`, which the differences below exclude)
        let per_token = if ends.len() >= 2 {
            (ends[ends.len() - 1] - ends[0]) / (ends.len() - 1) as f64
        } else {
            latency_s
        };
        out.metric("per_token_latency_ms", per_token * 1e3)
            .metric("tokens", f64::from(steps));
    }
    if s.mode == Mode::Swap {
        out.metric("budget_bytes", s.capacity_bytes as f64);
    }
    if let Some(plan) = &s.plan {
        out.metric("planned_peak_bytes", plan.planned_peak_bytes as f64)
            .metric("estimated_latency_s", plan.estimated_time_s)
            .metric(
                "order_refined",
                if plan.order.windows(2).all(|w| w[0] < w[1]) {
                    0.0
                } else {
                    1.0
                },
            )
            .metric(
                "cache_ops",
                plan.program
                    .iter()
                    .filter(|i| !matches!(i, Instr::Compute(_)))
                    .count() as f64,
            );
    }
    // `h2d_bytes`/`d2h_bytes` come from the links; they equal the device's accounting (tested).
    o.h2d.export("h2d", &mut out.metrics);
    o.d2h.export("d2h", &mut out.metrics);
    if p.gantt {
        gantt(&o, &mut out);
    }
    out.trace = timeline(&s, &o, ctx);
    if let Some(t) = &p.request_trace {
        let served = serving::serve(p, t, ctx, ckpt.map(|c| c.stage("serve")).as_ref())?;
        serving::export(&served, &mut out);
        serving::timeline(&served, &mut out.trace);
    }
    Ok(out)
}

/// The device's timeline: one slice per operator on `device/compute` (named by the operator), one
/// per transfer on `fabric/h2d` and `fabric/d2h` (named by the tensor, from submission until its
/// last byte left; a transfer queued behind another starts when the link frees), and counters
/// `hbm/used_bytes` (device memory after every change) and `fabric/<dir>_util` (1 while the link
/// transmits, 0 when idle).
fn timeline(s: &Setup, o: &Outcome, ctx: &RunContext) -> Trace {
    let mut trace = ctx.tracer();
    if !trace.is_on() {
        return trace;
    }
    for (&(a, b), &op) in o.device.intervals.iter().zip(&o.device.interval_ops) {
        let name = s.graph.ops.get(op).map_or("op", |x| x.name.as_str());
        trace.slice("device/compute", name, a, b - a);
    }
    for (dir, ts) in [("h2d", &o.h2d_transfers), ("d2h", &o.d2h_transfers)] {
        let (track, util) = (format!("fabric/{dir}"), format!("fabric/{dir}_util"));
        let mut free_s = 0.0f64;
        for d in ts {
            let name = s
                .graph
                .tensors
                .get(d.id as usize)
                .map_or("tensor", |x| x.name.as_str());
            let start_s = d.sent_s.max(free_s);
            trace.slice_with(
                &track,
                name,
                start_s,
                d.transmitted_s - start_s,
                &[("bytes", d.bytes as f64), ("delivered_s", d.delivered_s)],
            );
            trace.counter(&util, start_s, 1.0);
            trace.counter(&util, d.transmitted_s, 0.0);
            free_s = d.transmitted_s;
        }
    }
    for u in &o.usage {
        trace.counter("hbm/used_bytes", u.t_s, u.used_bytes as f64);
    }
    trace
}

/// Gantt series: compute busy (1/0), active transfers per direction, device bytes in use.
fn gantt(o: &Outcome, out: &mut RunOutput) {
    for &(a, b) in &o.device.intervals {
        out.sample(a, "compute", "busy", 1.0);
        out.sample(b, "compute", "busy", 0.0);
    }
    for (name, ts) in [("h2d", &o.h2d_transfers), ("d2h", &o.d2h_transfers)] {
        let mut steps: Vec<(f64, i64)> = ts
            .iter()
            .flat_map(|d| [(d.sent_s, 1), (d.transmitted_s, -1)])
            .collect();
        steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut level = 0;
        for (t, d) in steps {
            level += d;
            out.sample(t, name, "active_transfers", level as f64);
        }
    }
    for u in &o.usage {
        out.sample(u.t_s, "hbm", "used_bytes", u.used_bytes as f64);
    }
}
