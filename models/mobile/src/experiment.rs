//! Bench of the `mobile` family: workload → engine → three DVFS domains (+ base power) → energy
//! meter, with either the stock trio of governors (each on its own ticker) or a per-phase pinner
//! (performance, powersave, fixed triple, FUSE), and a monitor that attributes energy to phases.
//!
//! ```text
//!   ┌────────────┐ out → submit       ┌────────────┐ done
//!   │  Workload  ├───────────────────►│   Engine   ├──────────► RequestDone queue
//!   │ "workload" │◄───────────────────┤  "engine"  │
//!   └─────┬──────┘ done → completed   └──┬──────▲──┘
//!         │ all_done → stop              │      │ switched → on_switch
//!         ▼                              │      │
//!   ┌────────────┐        cpu_util,      ▼      │
//!   │ Ticker(s)  │        gpu_util,   ┌─────────┴─────────┐ power → power ┌─────────────┐
//!   │ "ticker/i" │        mem_util →  │  DvfsDomain × 3   ├──────────────►│ EnergyMeter │
//!   └─────┬──────┘        set_util    │ "cpu" "gpu" "mem" │               │   "meter"   │
//!         │ tick → tick               └─────────▲─────────┘               └──────▲──────┘
//!         ▼                                     │ set_opp → set_opp              │ base → power
//!   ┌──────────────────────┐                    │                         ┌──────┴──────┐
//!   │ Governor × 3 (stock) ├────────────────────┘                         │   Monitor   │
//!   │ "governor/<domain>"  │                                              │  "monitor"  │
//!   └──────────────────────┘                                              └─────────────┘
//! ```
//!
//! * Stock policy: each governor observes its domain's load (engine `cpu_busy`, `gpu_util`,
//!   `mem_util` → `observe`) and decides on its own ticker's `tick`.
//! * Pinned policies instead: a `Pinner` ("pinner") takes engine `phase` → `phase` and drives
//!   its `cpu`, `gpu`, `mem` outputs → the domains' `set_opp`; no governors, no governor tickers.
//! * The monitor also takes every domain's `power` and `switched`, the engine's
//!   `{cpu,gpu,mem}_util` → `util_*` and `phase` → `phase`, and, when a series is recorded, the
//!   `tick` of its own ticker. Every ticker stops on the workload's `all_done`.
//! * Queried at the end: Monitor::report, EnergyMeter::report, Engine::steps, Engine::dash_stats,
//!   DvfsDomain::state.

use nexosim::ports::{EventSinkReader, QuerySource, SinkState, event_queue};
use nexosim::simulation::Mailbox;
use serde::{Deserialize, Serialize};
use sim::checkpoint::Checkpointer;
use sim::components::dvfs::{DvfsDomain, DvfsState};
use sim::components::energy::{EnergyMeter, EnergyReport};
use sim::components::ticker::Ticker;
use sim::engine::{self, T0};
use sim::estimate::ResourceEstimate;
use sim::experiment::{Experiment, PresetSlot, RunContext, RunError, RunOutput};
use sim::metrics::LatencyHistogram;
use sim::rng::Rng;

use super::altdvfs::{AltDvfs, AltDvfsParams};
use super::calibrate;
use super::cost::{CostModel, Phase};
use super::dash;
use super::dash::phone::{DashEngine, DashStats};
use super::eas::{Eas, Tunables};
use super::engine::{Engine, EngineLog, RequestDone};
use super::fuse::{self, FuseParams};
use super::governor::{Algorithm, Governor};
use super::hostsched::{HostSched, HostStats};
use super::membw::MemBw;
use super::mifgov::MifGovernor;
use super::monitor::{Monitor, MonitorReport};
use super::params::{ArrivalKind, GovernorChoice, MobileParams, StockParams};
use super::pinner::{PinTable, Pinner};
use super::quickstep::Quickstep;
use super::schedutil::Schedutil;
use super::soc::Domain;
use super::timeline;
use super::trace;
use super::workload::{Arrivals, Workload};
use sim::request_trace;

/// Phone LLM inference under DVFS governors (FUSE).
pub struct MobileExperiment;

/// Who drives the domains in one simulation.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The stock trio.
    Stock(StockParams),
    /// Per-phase pinned triples (rows per prompt range delimited by `bounds`).
    Pinned {
        /// Range upper bounds, tokens.
        bounds: Vec<u64>,
        /// Triples per range.
        table: PinTable,
    },
}

/// What one simulation measured.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// Finished requests, in completion order.
    pub done: Vec<RequestDone>,
    /// Phase energies and series.
    pub monitor: MonitorReport,
    /// Energy per source (cpu, gpu, mem, base).
    pub meter: EnergyReport,
    /// Final state of the cpu, gpu and mem domains.
    pub domains: Vec<DvfsState>,
    /// Engine steps executed.
    pub steps: u64,
    /// What DASH did (`None` without DASH).
    pub dash: Option<DashStats>,
    /// Steps and OPP switches for the timeline (empty unless traced).
    pub log: EngineLog,
    /// Where the scheduler ran the host (`None` unless the stock trio placed it by EAS).
    pub host: Option<HostStats>,
    /// What the timeline lacks, when it lacks something (a resume of an untraced checkpoint).
    pub trace_note: Option<String>,
}

/// A saved simulation: the requests finished so far, and whether its engine keeps the log the
/// timeline is drawn from.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    done: Vec<RequestDone>,
    logged: bool,
}

/// Power-source id of the first CPU cluster other than the CPU domain (after the three domains
/// and the base power).
pub const FIRST_CLUSTER_SOURCE: u32 = 4;

/// The OPP every domain starts a simulation at (the lowest).
pub const INITIAL_OPP: [usize; 3] = [0; 3];

/// Runs one simulation of `lengths` requests on `cost` under `policy`.
pub fn simulate(
    cost: &CostModel,
    policy: &Policy,
    arrivals: Arrivals,
    lengths: Vec<(u64, u64)>,
    rng: Rng,
    series_interval_s: f64,
) -> Result<SimResult, RunError> {
    simulate_with(
        cost,
        policy,
        arrivals,
        lengths,
        rng,
        series_interval_s,
        None,
        false,
    )
}

/// [`simulate`] with the engine skipping layers as DASH's plan `dash` says (`None`: no skipping),
/// keeping the engine's log for the timeline when `trace`.
#[allow(clippy::too_many_arguments)]
pub fn simulate_with(
    cost: &CostModel,
    policy: &Policy,
    arrivals: Arrivals,
    lengths: Vec<(u64, u64)>,
    rng: Rng,
    series_interval_s: f64,
    dash: Option<DashEngine>,
    trace: bool,
) -> Result<SimResult, RunError> {
    simulate_saved(
        cost,
        policy,
        arrivals,
        lengths,
        rng,
        (series_interval_s, dash, trace),
        None,
    )
}

/// [`simulate_with`] (its series interval, DASH plan and trace flag in `opts`), saving the bench
/// through `ckpt` and continuing from its saved state when it has one.
pub fn simulate_saved(
    cost: &CostModel,
    policy: &Policy,
    arrivals: Arrivals,
    lengths: Vec<(u64, u64)>,
    rng: Rng,
    (series_interval_s, dash, trace): (f64, Option<DashEngine>, bool),
    ckpt: Option<&Checkpointer>,
) -> Result<SimResult, RunError> {
    let init = INITIAL_OPP;
    let mut doms: Vec<DvfsDomain> = Domain::ALL
        .iter()
        .map(|&d| DvfsDomain::new(d.id(), cost.dvfs(d, init[d as usize])))
        .collect();
    let dmb: Vec<Mailbox<DvfsDomain>> = (0..3).map(|_| Mailbox::new()).collect();
    let freq0 = Domain::ALL.map(|d| cost.soc.domain(d).opps_mhz[init[d as usize]]);
    let mut eng = Engine::new(cost.clone(), init);
    if let Some(d) = dash {
        eng = eng.with_dash(d);
    }
    if trace {
        eng = eng.with_log();
    }
    let emb = Mailbox::new();
    let mut wl = Workload::new(arrivals, lengths, rng);
    let wmb = Mailbox::new();
    let extra = cost
        .soc
        .cpu
        .eas
        .as_ref()
        .map_or(0, |e| e.clusters.len() - 1);
    // the stock trio places the host by EAS where the SoC has an energy model
    let eas = match policy {
        Policy::Stock(_) => cost.soc.cpu.eas.clone(),
        Policy::Pinned { .. } => None,
    };
    let mut mon = Monitor::new(cost.soc.base_w, freq0, series_interval_s > 0.0, extra);
    let mmb = Mailbox::new();
    let names = ["cpu", "gpu", "mem", "base"]
        .map(String::from)
        .into_iter()
        .chain((0..extra).map(|k| format!("cpu_cl{k}")));
    let meter = EnergyMeter::with_names(names);
    let metb = Mailbox::new();

    for d in doms.iter_mut() {
        d.power.connect(EnergyMeter::power, &metb);
        d.power.connect(Monitor::power, &mmb);
        d.switched.connect(Engine::on_switch, &emb);
        d.switched.connect(Monitor::switched, &mmb);
    }
    mon.base.connect(EnergyMeter::power, &metb);
    if eas.is_none() {
        eng.cpu_util.connect(DvfsDomain::set_util, &dmb[0]);
    }
    eng.gpu_util.connect(DvfsDomain::set_util, &dmb[1]);
    eng.mem_util.connect(DvfsDomain::set_util, &dmb[2]);
    eng.cpu_util.connect(Monitor::util_cpu, &mmb);
    eng.gpu_util.connect(Monitor::util_gpu, &mmb);
    eng.mem_util.connect(Monitor::util_mem, &mmb);
    eng.phase.connect(Monitor::phase, &mmb);
    eng.done.connect(Workload::completed, &wmb);
    let (sink, mut done_reader) = event_queue::<RequestDone>(SinkState::Enabled);
    eng.done.connect_sink(sink);
    wl.out.connect(Engine::submit, &emb);

    let mut b = engine::bench();
    let mut tickers: Vec<(Ticker, Mailbox<Ticker>)> = Vec::new();
    let mut govs: Vec<(Domain, Governor, Mailbox<Governor>)> = Vec::new();
    let mut mif: Option<(MifGovernor, Mailbox<MifGovernor>)> = None;
    let mut host: Option<(HostSched, Mailbox<HostSched>)> = None;
    let mut pinner = None;
    match policy {
        Policy::Stock(sp) => {
            let freqs = |d: Domain| {
                (0..cost.soc.domain(d).len())
                    .map(|i| cost.soc.domain(d).freq_hz(i))
                    .collect::<Vec<_>>()
            };
            let bw: Vec<f64> = (0..cost.soc.mem.dvfs.len())
                .map(|i| cost.soc.mem.bandwidth_bps(i))
                .collect();
            let mut specs = Vec::new();
            match &eas {
                Some(e) => {
                    let t = Tunables {
                        halflife_s: sp.cpu.halflife_s,
                        headroom: sp.cpu.headroom,
                        up_rate_limit_s: sp.cpu.up_rate_limit_s,
                        uclamp_min: sp.host_uclamp_min,
                    };
                    // a blocking host sleeps on every GPU read and is placed at each wake-up
                    let algo = Eas::new(e.clone(), t, !cost.engine.host_spin_wait);
                    let mut h = HostSched::new(
                        algo,
                        sp.cpu.period_s,
                        freqs(Domain::Cpu),
                        FIRST_CLUSTER_SOURCE,
                    );
                    let hmb = Mailbox::new();
                    h.set_opp.connect(DvfsDomain::set_opp, &dmb[0]);
                    h.set_util.connect(DvfsDomain::set_util, &dmb[0]);
                    h.power.connect(EnergyMeter::power, &metb);
                    h.power.connect(Monitor::power, &mmb);
                    h.host_hz.connect(Engine::host_speed, &emb);
                    eng.cpu_busy.connect(HostSched::host_running, &hmb);
                    eng.cpu_util.connect(HostSched::activity, &hmb);
                    doms[0].switched.connect(HostSched::cpu_switched, &hmb);
                    let mut t =
                        Ticker::new(sp.cpu.period_s).map_err(|e| RunError::Model(e.to_string()))?;
                    t.tick.connect(HostSched::tick, &hmb);
                    let tmb = Mailbox::new();
                    wl.all_done.connect(Ticker::stop, &tmb);
                    tickers.push((t, tmb));
                    host = Some((h, hmb));
                }
                None => specs.push((
                    Algorithm::Schedutil(Schedutil::new(sp.cpu.clone())),
                    sp.cpu.period_s,
                    Domain::Cpu,
                    Vec::new(),
                )),
            }
            specs.push(match &cost.soc.gpu.quickstep {
                Some(q) => (
                    Algorithm::Quickstep(Quickstep::new(q.clone(), init[1])),
                    q.period_s,
                    Domain::Gpu,
                    Vec::new(),
                ),
                None => (
                    Algorithm::Ondemand(sp.gpu.clone()),
                    sp.gpu.period_s,
                    Domain::Gpu,
                    Vec::new(),
                ),
            });
            match &cost.soc.mem.interactive {
                Some(alt) => {
                    let (mut g, gmb) = (mif_governor(cost, alt, init), Mailbox::new());
                    g.set_opp.connect(DvfsDomain::set_opp, &dmb[2]);
                    eng.mem_util.connect(MifGovernor::observe, &gmb);
                    eng.cpu_busy.connect(MifGovernor::host_running, &gmb);
                    eng.cpu_compute.connect(MifGovernor::host_computing, &gmb);
                    doms[0].switched.connect(MifGovernor::cpu_switched, &gmb);
                    doms[1].switched.connect(MifGovernor::gpu_switched, &gmb);
                    let mut periods = vec![(alt.period_s(), true)];
                    if let Some(m) = &cost.soc.mem.memlat {
                        periods.push((m.period_s, false));
                    }
                    for (period, is_alt) in periods {
                        let mut t =
                            Ticker::new(period).map_err(|e| RunError::Model(e.to_string()))?;
                        if is_alt {
                            t.tick.connect(MifGovernor::tick_alt, &gmb);
                        } else {
                            t.tick.connect(MifGovernor::tick_memlat, &gmb);
                        }
                        let tmb = Mailbox::new();
                        wl.all_done.connect(Ticker::stop, &tmb);
                        tickers.push((t, tmb));
                    }
                    mif = Some((g, gmb));
                }
                None => specs.push((
                    Algorithm::MemBw(MemBw::new(sp.mem.clone())),
                    sp.mem.period_s,
                    Domain::Mem,
                    bw,
                )),
            }
            for (algo, period, d, bw) in specs {
                let mut g = Governor::new(algo, freqs(d), bw, init[d as usize]);
                let gmb = Mailbox::new();
                g.set_opp.connect(DvfsDomain::set_opp, &dmb[d as usize]);
                match d {
                    Domain::Cpu => eng.cpu_busy.connect(Governor::observe, &gmb),
                    Domain::Gpu => eng.gpu_util.connect(Governor::observe, &gmb),
                    Domain::Mem => eng.mem_util.connect(Governor::observe, &gmb),
                }
                let mut t = Ticker::new(period).map_err(|e| RunError::Model(e.to_string()))?;
                t.tick.connect(Governor::tick, &gmb);
                let tmb = Mailbox::new();
                wl.all_done.connect(Ticker::stop, &tmb);
                tickers.push((t, tmb));
                govs.push((d, g, gmb));
            }
        }
        Policy::Pinned { bounds, table } => {
            let mut p = Pinner::new(bounds.clone(), table.clone());
            let pmb = Mailbox::new();
            p.cpu.connect(DvfsDomain::set_opp, &dmb[0]);
            p.gpu.connect(DvfsDomain::set_opp, &dmb[1]);
            p.mem.connect(DvfsDomain::set_opp, &dmb[2]);
            eng.phase.connect(Pinner::phase, &pmb);
            pinner = Some((p, pmb));
        }
    }
    if series_interval_s > 0.0 {
        let mut t = Ticker::new(series_interval_s).map_err(|e| RunError::Model(e.to_string()))?;
        t.tick.connect(Monitor::tick, &mmb);
        let tmb = Mailbox::new();
        wl.all_done.connect(Ticker::stop, &tmb);
        tickers.push((t, tmb));
    }
    let report_q = QuerySource::new()
        .connect(Monitor::report, &mmb)
        .register(&mut b);
    let meter_q = QuerySource::new()
        .connect(EnergyMeter::report, &metb)
        .register(&mut b);
    let steps_q = QuerySource::new()
        .connect(Engine::steps, &emb)
        .register(&mut b);
    let dash_q = QuerySource::new()
        .connect(Engine::dash_stats, &emb)
        .register(&mut b);
    let log_q = QuerySource::new()
        .connect(Engine::take_log, &emb)
        .register(&mut b);
    let host_q = host.as_ref().map(|(_, m)| {
        QuerySource::new()
            .connect(HostSched::stats, m)
            .register(&mut b)
    });
    let state_q: Vec<_> = dmb
        .iter()
        .map(|m| {
            QuerySource::new()
                .connect(DvfsDomain::state, m)
                .register(&mut b)
        })
        .collect();

    for (i, (d, m)) in doms.into_iter().zip(dmb).enumerate() {
        b = b.add_model(d, m, Domain::ALL[i].name());
    }
    b = b
        .add_model(eng, emb, "engine")
        .add_model(wl, wmb, "workload")
        .add_model(mon, mmb, "monitor")
        .add_model(meter, metb, "meter");
    for (d, g, m) in govs {
        b = b.add_model(g, m, &format!("governor/{}", d.name()));
    }
    if let Some((g, m)) = mif {
        b = b.add_model(g, m, "governor/mem");
    }
    if let Some((h, m)) = host {
        b = b.add_model(h, m, "governor/cpu");
    }
    for (i, (t, m)) in tickers.into_iter().enumerate() {
        b = b.add_model(t, m, &format!("ticker/{i}"));
    }
    if let Some((p, m)) = pinner {
        b = b.add_model(p, m, "pinner");
    }
    let (mut simu, done, trace_note) = match ckpt {
        None => {
            let mut simu = b.init(T0)?;
            simu.run()?;
            let done: Vec<RequestDone> = std::iter::from_fn(|| done_reader.try_read()).collect();
            (simu, done, None)
        }
        Some(ckpt) => {
            let (mut simu, saved) = ckpt.start::<Saved>(b)?;
            let unlogged = saved.as_ref().is_some_and(|s| trace && !s.logged);
            let mut saved = saved.unwrap_or(Saved {
                done: Vec::new(),
                logged: trace,
            });
            ckpt.drive(&mut simu, &mut saved, |s| {
                s.done.extend(std::iter::from_fn(|| done_reader.try_read()));
            })?;
            let note = unlogged.then(|| {
                "resumed from a checkpoint written without --trace: its per-layer cpu/gpu/mem tracks and frequency and power counters are missing (request phases and the series are whole); run again with --trace from the start for them".to_owned()
            });
            (simu, saved.done, note)
        }
    };
    let monitor = simu.process_query(&report_q, ())?;
    let meter = simu.process_query(&meter_q, ())?;
    let steps = simu.process_query(&steps_q, ())?;
    let dash = simu.process_query(&dash_q, ())?;
    let log = simu.process_query(&log_q, ())?;
    let mut domains = Vec::new();
    for q in &state_q {
        domains.push(simu.process_query(q, ())?);
    }
    let host = match &host_q {
        Some(q) => Some(simu.process_query(q, ())?),
        None => None,
    };
    Ok(SimResult {
        done,
        monitor,
        meter,
        domains,
        steps,
        dash,
        log,
        host,
        trace_note,
    })
}

/// The SoC's shipped memory governor: `interactive` ALT-DVFS with the GPU's per-level floors and
/// the host cluster's memlat vote, starting at the domains' initial OPPs `init`.
fn mif_governor(cost: &CostModel, alt: &AltDvfsParams, init: [usize; 3]) -> MifGovernor {
    let floors = cost
        .soc
        .gpu
        .quickstep
        .as_ref()
        .map_or_else(Vec::new, |q| q.mif_min_mhz.clone());
    MifGovernor::new(
        AltDvfs::new(alt.clone()),
        cost.soc.mem.memlat.clone(),
        cost.soc.mem.dvfs.opps_mhz.clone(),
        floors,
        init[2],
        cost.soc.cpu.dvfs.opps_mhz[init[0]],
    )
}

/// One finished request's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// Prompt tokens.
    prompt: u64,
    /// Time to first token, seconds (queueing included).
    ttft_s: f64,
    /// Time per output token after the first, seconds (`None` for a one-token answer).
    tpot_s: Option<f64>,
    /// Prefill energy per prompt token, joules.
    prefill_j_per_token: f64,
    /// Decode energy per token, joules.
    decode_j_per_token: Option<f64>,
}

/// Figures of every finished request, in completion order.
fn per_request(r: &SimResult) -> Vec<Figures> {
    r.done
        .iter()
        .map(|d| {
            let e = r
                .monitor
                .requests
                .get(d.request.id as usize)
                .copied()
                .unwrap_or_default();
            let n_dec = d.request.response.saturating_sub(1);
            Figures {
                prompt: d.request.prompt,
                ttft_s: d.first_token_s - d.request.arrival_s,
                tpot_s: (n_dec > 0).then(|| (d.end_s - d.first_token_s) / n_dec as f64),
                prefill_j_per_token: e.prefill_j / d.request.prompt as f64,
                decode_j_per_token: (n_dec > 0).then(|| e.decode_j / n_dec as f64),
            }
        })
        .collect()
}

/// The stock governors' figures over one range's profiled requests: mean TTFT and TPOT, energy
/// per prompt token and per decode token (totals over the requests).
struct StockFigures {
    ttft_s: f64,
    tpot_s: Option<f64>,
    prefill_j_per_token: f64,
    decode_j_per_token: Option<f64>,
}

impl StockFigures {
    fn of<'a>(rows: impl Iterator<Item = &'a Figures>) -> Self {
        let (mut n, mut ttft, mut pre_j, mut pre_tok) = (0.0, 0.0, 0.0, 0.0);
        let (mut n_dec, mut tpot, mut dec_j) = (0.0, 0.0, 0.0);
        for r in rows {
            n += 1.0;
            ttft += r.ttft_s;
            pre_j += r.prefill_j_per_token * r.prompt as f64;
            pre_tok += r.prompt as f64;
            if let (Some(t), Some(e)) = (r.tpot_s, r.decode_j_per_token) {
                n_dec += 1.0;
                tpot += t;
                dec_j += e;
            }
        }
        Self {
            ttft_s: ttft / f64::max(n, 1.0),
            tpot_s: (n_dec > 0.0).then(|| tpot / n_dec),
            prefill_j_per_token: pre_j / f64::max(pre_tok, 1.0),
            decode_j_per_token: (n_dec > 0.0).then(|| dec_j / n_dec),
        }
    }
}

/// The FUSE table: per range, the triple chosen for prefill and decode under the stock budget, and
/// the figures it was built from (written into `out`).
pub fn fuse_table(
    cost: &CostModel,
    sp: &StockParams,
    fp: &FuseParams,
    rng: Rng,
    out: &mut RunOutput,
) -> Result<PinTable, RunError> {
    let sets = fp.profile_prompts();
    // 1. measure the stock governors on the profiled prompt lengths (in simulation, one request each)
    let calib: Vec<(u64, u64)> = sets
        .iter()
        .flatten()
        .map(|&p| (p, fp.decode_profile_tokens + 1))
        .collect();
    let stock = simulate(
        cost,
        &Policy::Stock(sp.clone()),
        Arrivals::Closed { think_s: 1.0 },
        calib,
        rng,
        0.0,
    )?;
    let rows = per_request(&stock);
    // 2. profile every triple per range and phase, choose the fastest within the budget
    let grid = fuse::full_grid(cost);
    let mut table = PinTable::new();
    let (mut gap_p, mut gap_d, mut profiled) = (Vec::new(), Vec::new(), 0usize);
    for (i, prompts) in sets.iter().enumerate() {
        let s = StockFigures::of(rows.iter().filter(|r| fp.range_of(r.prompt) == i));
        let (pre, n1) = fuse::search(
            cost,
            fp,
            Phase::Prefill,
            prompts,
            fp.energy_budget * s.prefill_j_per_token,
            &grid,
        );
        let (dec, n2) = fuse::search(
            cost,
            fp,
            Phase::Decode,
            prompts,
            fp.energy_budget * s.decode_j_per_token.unwrap_or(f64::INFINITY),
            &grid,
        );
        profiled += n1 + n2;
        let (Some(pre), Some(dec)) = (pre, dec) else {
            return Err(RunError::Model(
                "FUSE search over an empty frequency grid".into(),
            ));
        };
        gap_p.push(s.ttft_s / pre.latency_s - 1.0);
        if let Some(t) = s.tpot_s {
            gap_d.push(t / dec.latency_s - 1.0);
        }
        table.push([pre.triple, dec.triple]);
    }
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max) * 100.0;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64 * 100.0;
    out.metric("fuse_profiled_triples", profiled as f64)
        .metric("stock_gap_ttft_pct_max", max(&gap_p))
        .metric("stock_gap_ttft_pct_mean", mean(&gap_p))
        .metric("stock_gap_tpot_pct_max", max(&gap_d))
        .metric("stock_gap_tpot_pct_mean", mean(&gap_d));
    Ok(table)
}

/// `(prompt, response)` lengths of a run's requests, tokens.
pub type Lengths = Vec<(u64, u64)>;

/// The requests of a run: `(prompt, response)` lengths — the ShareGPT trace sampled with
/// replacement, fixed lengths, or the user's trace file in order — and, from a trace file, the
/// arrival times. A trace file that cannot be read or parsed is an error naming file, line, column.
pub fn request_lengths(p: &MobileParams, rng: &mut Rng) -> Result<(Lengths, Vec<f64>), RunError> {
    use rand::Rng as _;
    let cap = p.workload.max_response_tokens;
    let n = p.workload.requests as usize;
    if let Some(file) = &p.workload.trace_file {
        let rows = request_trace::load(std::path::Path::new(file)).map_err(RunError::Model)?;
        let rows = &rows[..n.min(rows.len())];
        return Ok((
            rows.iter()
                .map(|r| (r.prompt_tokens, r.output_tokens.min(cap)))
                .collect(),
            rows.iter().map(|r| r.arrival_s).collect(),
        ));
    }
    if let Some([pr, r]) = p.workload.fixed_lengths {
        return Ok((vec![(pr, r.min(cap)); n], Vec::new()));
    }
    let t = trace::sharegpt();
    let lengths = (0..n)
        .map(|_| {
            let l = t[rng.random_range(0..t.len())];
            (l.prompt, l.response.min(cap))
        })
        .collect();
    Ok((lengths, Vec::new()))
}

impl Experiment for MobileExperiment {
    type Params = MobileParams;
    const NAME: &'static str = "mobile";
    const DESCRIPTION: &'static str = "Phone SoC (CPU/GPU/memory DVFS) running LLM inference: stock governors vs performance vs FUSE's per-phase triples";
    const PRESETS: &'static [PresetSlot] = &[
        PresetSlot {
            key: "soc",
            builtin: presets::SOC,
        },
        PresetSlot {
            key: "llm",
            builtin: presets::LLM,
        },
    ];

    /// Memory: per request its lengths, its finished record and its per-phase energy (≈ 256 bytes,
    /// estimated from the structs), plus ≈ 48 bytes per series sample. Work: one event per decoder
    /// layer per generated token, over ≈ 8 simulations of the same requests per run (governors
    /// compared, FUSE's profiling, DASH's reference), an estimate.
    fn estimate(&self, p: &MobileParams) -> ResourceEstimate {
        let requests = p.workload.requests as f64;
        let tokens = requests * (p.workload.max_response_tokens as f64 + 1.0);
        let events = tokens * f64::from(p.llm.layers);
        let mut e = ResourceEstimate::default()
            .memory("workload.requests", requests * 256.0)
            .work("workload.requests", 8.0 * events);
        if p.series_interval_s > 0.0 {
            // one decode token takes ≥ 1 ms on a phone (tens of ms measured), so a run spans at least
            let span_s = tokens * 1e-3;
            e = e.memory("series_interval_s", span_s / p.series_interval_s * 48.0);
        }
        e
    }

    fn run(&self, p: &MobileParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        run_with(p, ctx, None)
    }

    const CHECKPOINTS: bool = true;

    /// Saves the run's main simulation (and DASH's unskipped one, stage `plain`); the FUSE table
    /// and DASH's training before them are recomputed on resume (deterministic from the run's seed).
    fn run_checkpointed(
        &self,
        p: &MobileParams,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError> {
        run_with(p, ctx, Some(ckpt))
    }
}

/// One run of `p`, its simulations saved through `ckpt` when given.
fn run_with(
    p: &MobileParams,
    ctx: &RunContext,
    ckpt: Option<&Checkpointer>,
) -> Result<RunOutput, RunError> {
    let cost = CostModel::new(p.soc.clone(), p.llm.clone(), p.engine.clone());
    let mut out = RunOutput::default();
    // the model's split of a decode token at the top OPPs (the two-point calibration's figures)
    let split = calibrate::model_split(&cost, calibrate::EXAMPLE_CONTEXT);
    out.metric("model_decode_gpu_ms_at_top", split.gpu_ms)
        .metric("model_decode_other_ms_at_top", split.other_ms);
    let top = Domain::ALL.map(|d| cost.soc.domain(d).len() - 1);
    let one = |t: [usize; 3]| Policy::Pinned {
        bounds: Vec::new(),
        table: vec![[t, t]],
    };
    let policy = match &p.governor {
        GovernorChoice::Stock => Policy::Stock(p.stock.clone()),
        GovernorChoice::Performance => one(top),
        GovernorChoice::Powersave => one([0, 0, 0]),
        GovernorChoice::Fixed { cpu, gpu, mem } => one([*cpu, *gpu, *mem]),
        GovernorChoice::Fuse => {
            let table = fuse_table(
                &cost,
                &p.stock,
                &p.fuse,
                ctx.rng("mobile/fuse-calibration"),
                &mut out,
            )?;
            for (i, row) in table.iter().enumerate() {
                for (ph, t) in ["prefill", "decode"].iter().zip(row) {
                    for d in Domain::ALL {
                        out.metric(
                            format!("fuse_r{i}_{ph}_{}_mhz", d.name()),
                            cost.soc.domain(d).opps_mhz[t[d as usize]],
                        );
                    }
                }
            }
            Policy::Pinned {
                bounds: p.fuse.range_bounds.clone(),
                table,
            }
        }
    };
    let mut rng = ctx.rng("mobile/lengths");
    let (lengths, times) = request_lengths(p, &mut rng)?;
    let arrivals = match p.workload.arrivals {
        ArrivalKind::Closed => Arrivals::Closed {
            think_s: p.workload.think_s,
        },
        ArrivalKind::Poisson => Arrivals::Poisson {
            rate_per_s: p.workload.rate_per_s,
        },
        ArrivalKind::Trace => Arrivals::Trace { arrival_s: times },
    };
    let plan = if p.dash.enabled {
        Some(dash::plan::plan(p, ctx.replication, &mut out)?)
    } else {
        None
    };
    let r = simulate_saved(
        &cost,
        &policy,
        arrivals.clone(),
        lengths.clone(),
        ctx.rng("mobile/arrivals"),
        (p.series_interval_s, plan, ctx.is_traced()),
        ckpt,
    )?;
    export(&r, &mut out);
    out.trace = timeline::record(&r, &cost, ctx);
    if let Some(note) = &r.trace_note {
        out.trace.note(note.as_str());
    }
    if p.dash.enabled {
        // the same requests without skipping, for DASH's speedup and energy change
        let plain = simulate_saved(
            &cost,
            &policy,
            arrivals,
            lengths,
            ctx.rng("mobile/arrivals"),
            (0.0, None, false),
            ckpt.map(|c| c.stage("plain")).as_ref(),
        )?;
        dash_metrics(&plain, &r, &mut out);
    }
    Ok(out)
}

/// Mean TTFT (s), mean TPOT (s), prefill and decode energy per token (J) of a simulation.
fn headline(r: &SimResult) -> [f64; 4] {
    let rows = per_request(r);
    let n = rows.len().max(1) as f64;
    let tpots: Vec<f64> = rows.iter().filter_map(|f| f.tpot_s).collect();
    let (mut pre_j, mut pre_tok, mut dec_j, mut dec_tok) = (0.0, 0u64, 0.0, 0u64);
    for d in &r.done {
        let e = r
            .monitor
            .requests
            .get(d.request.id as usize)
            .copied()
            .unwrap_or_default();
        pre_j += e.prefill_j;
        pre_tok += d.request.prompt;
        dec_j += e.decode_j;
        dec_tok += d.request.response.saturating_sub(1);
    }
    [
        rows.iter().map(|f| f.ttft_s).sum::<f64>() / n,
        tpots.iter().sum::<f64>() / tpots.len().max(1) as f64,
        pre_j / pre_tok.max(1) as f64,
        dec_j / dec_tok.max(1) as f64,
    ]
}

/// DASH's figures on the phone against the same requests run without skipping.
fn dash_metrics(plain: &SimResult, dash: &SimResult, out: &mut RunOutput) {
    let (a, b) = (headline(plain), headline(dash));
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    let s = dash.dash.unwrap_or_default();
    out.metric("dash_ttft_speedup", ratio(a[0], b[0]))
        .metric("dash_tpot_speedup", ratio(a[1], b[1]))
        .metric(
            "dash_prefill_energy_change_pct",
            (ratio(b[2], a[2]) - 1.0) * 100.0,
        )
        .metric(
            "dash_decode_energy_change_pct",
            (ratio(b[3], a[3]) - 1.0) * 100.0,
        )
        .metric(
            "dash_phone_skip_ratio",
            ratio(s.skipped_token_layers as f64, s.token_layers as f64),
        )
        .metric(
            "dash_exposed_eval_fraction",
            ratio(s.exposed_evaluations as f64, s.evaluations as f64),
        )
        .metric("dash_skipped_steps", s.skipped_steps as f64);
}

/// Scalar metrics and series of a simulation.
pub fn export(r: &SimResult, out: &mut RunOutput) {
    let rows = per_request(r);
    let (mut ttft, mut tpot) = (LatencyHistogram::new(), LatencyHistogram::new());
    let (mut pre_j, mut pre_tok, mut dec_j, mut dec_tok, mut generated) =
        (0.0, 0u64, 0.0, 0u64, 0u64);
    for (d, row) in r.done.iter().zip(&rows) {
        ttft.record_s(row.ttft_s);
        if let Some(t) = row.tpot_s {
            tpot.record_s(t);
        }
        let e = r
            .monitor
            .requests
            .get(d.request.id as usize)
            .copied()
            .unwrap_or_default();
        pre_j += e.prefill_j;
        pre_tok += d.request.prompt;
        dec_j += e.decode_j;
        dec_tok += d.request.response.saturating_sub(1);
        generated += d.request.response;
    }
    let span = r.meter.elapsed_s.max(f64::MIN_POSITIVE);
    out.metric("requests", r.done.len() as f64);
    ttft.export_ms("ttft_ms", &mut out.metrics);
    out.metric("ttft_ms_p90", ttft.quantile_s(0.9) * 1e3);
    tpot.export_ms("tpot_ms", &mut out.metrics);
    out.metric("tpot_ms_p90", tpot.quantile_s(0.9) * 1e3);
    out.metric("tokens_per_s", generated as f64 / span)
        .metric("prefill_mj_per_token", pre_j / pre_tok.max(1) as f64 * 1e3)
        .metric("decode_mj_per_token", dec_j / dec_tok.max(1) as f64 * 1e3)
        .metric("idle_energy_j", r.monitor.idle_j)
        .metric("engine_steps", r.steps as f64);
    r.meter.export("energy", &mut out.metrics);
    for s in &r.domains {
        let name = Domain::ALL[s.domain as usize].name();
        out.metric(format!("{name}_freq_mhz_mean"), s.mean_freq_hz / 1e6)
            .metric(format!("{name}_transitions"), s.transitions as f64);
    }
    if let Some(h) = &r.host {
        let total: f64 = h.running_s.iter().sum();
        for (k, s) in h.running_s.iter().enumerate() {
            out.metric(
                format!("host_running_share_cl{k}"),
                s / total.max(f64::MIN_POSITIVE),
            );
        }
        out.metric("host_migrations", h.migrations as f64);
    }
    for (t, d, m, v) in &r.monitor.series {
        out.sample(*t, d.name(), m, *v);
    }
}
