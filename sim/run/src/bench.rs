//! `sysim bench`: engine throughput measured on PHOLD (Fujimoto 1990).
//!
//! # Workload
//!
//! `lps` logical processes (LPs) each start with `initial_per_lp` events, scheduled at a delay drawn
//! from the hop distribution below. Processing an event at an LP sends exactly one new event to an
//! LP drawn uniformly at random (the sender included), timestamped `now + lookahead_s + Exp(mean_delay_s)`,
//! rounded to the nanosecond and at least 1 ns (nexosim rejects zero delays).
//!
//! The run stops after exactly `events` processed events: once `events` events have been created
//! (the initial ones included) no new event is sent, and the pending ones drain. With the default
//! one initial event per LP the draining tail is `lps` events, 0.1 % of a 1,000-LP, 1 M-event run.
//! This rule gives both implementations the same exact count without stopping mid-time-step.
//! With [`PholdConfig::end_s`] set, the run also stops at that simulated time (inclusive).
//!
//! Every LP draws from its own stream `rng::stream(seed, "phold/lp/<i>")`, first the destination
//! then the delay, and draws even when the budget is spent, so both implementations below simulate
//! the very same event sequence (same final simulated time) unless two events fall on the same
//! nanosecond.
//!
//! # Implementations, measured in the same process
//!
//! **nexosim** (single-threaded, [`sim::engine::bench`]): one model per LP plus one router. Each
//! event crosses to another model, the realistic pattern of a sysim system model:
//!
//! ```text
//!   LP i ── fire (self-scheduled at t) ── draws (dest, delay)
//!     │ Output<NewEvent>  (one per LP, connected to the router only)
//!     ▼
//!   Router ── route(NewEvent) ── counts the event; while the budget lasts, forwards delay to lps[dest]
//!     │ Vec<Output<u64>>  (N outputs, one connection each: O(N) ports, never N×N)
//!     ▼
//!   LP dest ── arrive(delay) ── cx.schedule_event(delay, fire)
//! ```
//!
//! So one PHOLD event costs one scheduled event plus two immediate model-to-model messages.
//!
//! **heap**: a minimal hand-written loop over a [`BinaryHeap`] of `(time_ns, seq, lp)`; `seq` (the
//! creation order) breaks ties deterministically, first created first processed.
//!
//! Both wall times cover the whole run: building the bench / heap, scheduling the initial events,
//! and processing. Neither allocates per event on our side (the heap and the RNG vector are sized
//! up front; nexosim's own scheduler is what is being measured).
//!
//! `bench/run_simpy.sh` runs `sysim bench` and the same PHOLD on SimPy 4.1
//! (`bench/phold_simpy.py`) and prints the ratios.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::{Output, QuerySource};
use nexosim::simulation::Mailbox;
use rand::Rng as _;
use rand_distr::Exp1;
use serde::{Deserialize, Serialize};

use sim::engine::{T0, bench, t_s};
use sim::rng::{Rng, stream};

/// Parameters of one PHOLD benchmark run (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PholdConfig {
    /// Number of logical processes (1 ..= `u32::MAX`).
    pub lps: usize,
    /// Events each LP holds at the start (≥ 1); `lps × initial_per_lp` must not exceed `events`.
    pub initial_per_lp: usize,
    /// Total number of events to process, the initial ones included.
    pub events: u64,
    /// Mean of the exponential part of every hop delay, in seconds (> 0).
    pub mean_delay_s: f64,
    /// Fixed part of every hop delay, in seconds (≥ 0).
    pub lookahead_s: f64,
    /// Optional simulated end time in seconds: events after it are not processed.
    pub end_s: Option<f64>,
    /// Seed of the LPs' random streams.
    pub seed: u64,
}

impl Default for PholdConfig {
    /// 1,000 LPs with one initial event each, 1 M events, hops of `0.1 s + Exp(mean 1 s)`, seed 1.
    fn default() -> Self {
        Self {
            lps: 1000,
            initial_per_lp: 1,
            events: 1_000_000,
            mean_delay_s: 1.0,
            lookahead_s: 0.1,
            end_s: None,
            seed: 1,
        }
    }
}

impl PholdConfig {
    /// Checks the parameters; the error says which one is wrong and what is expected.
    pub fn validate(&self) -> Result<(), String> {
        if self.lps == 0 || u32::try_from(self.lps).is_err() {
            return Err(format!(
                "lps must be between 1 and {}, got {}",
                u32::MAX,
                self.lps
            ));
        }
        if self.initial_per_lp == 0 {
            return Err("initial_per_lp must be at least 1".into());
        }
        let initial = self.initial_events();
        if self.events < initial {
            return Err(format!(
                "events ({}) must be at least lps × initial_per_lp ({initial})",
                self.events
            ));
        }
        if !(self.mean_delay_s.is_finite() && self.mean_delay_s > 0.0) {
            return Err(format!(
                "mean_delay_s must be a positive number of seconds, got {}",
                self.mean_delay_s
            ));
        }
        if !(self.lookahead_s.is_finite() && self.lookahead_s >= 0.0) {
            return Err(format!(
                "lookahead_s must be a non-negative number of seconds, got {}",
                self.lookahead_s
            ));
        }
        if let Some(end_s) = self.end_s
            && !(end_s.is_finite() && end_s >= 0.0)
        {
            return Err(format!(
                "end_s must be a non-negative number of seconds, got {end_s}"
            ));
        }
        Ok(())
    }

    /// Number of events present at the start: `lps × initial_per_lp`.
    pub fn initial_events(&self) -> u64 {
        (self.lps as u64).saturating_mul(self.initial_per_lp as u64)
    }

    /// Simulated end time in nanoseconds, if any.
    fn end_ns(&self) -> Option<u64> {
        self.end_s.map(|s| (s * 1e9).round() as u64)
    }

    /// Panics with the validation message on an invalid configuration.
    fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("invalid PHOLD configuration: {e}");
        }
    }
}

/// What one implementation did and how long it took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineRun {
    /// Events processed.
    pub events: u64,
    /// Wall-clock time of the whole run (setup included), in seconds.
    pub wall_s: f64,
    /// Simulated time reached: the last event's time, or `end_s` when one was set.
    pub sim_time_s: f64,
}

impl EngineRun {
    /// Throughput: processed events per wall-clock second.
    pub fn events_per_s(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.events as f64 / self.wall_s
        } else {
            f64::INFINITY
        }
    }
}

/// Result of [`run`]: the same PHOLD workload on nexosim and on the hand-written heap loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The workload.
    pub config: PholdConfig,
    /// nexosim, single-threaded, LP models plus a router model.
    pub nexosim: EngineRun,
    /// Minimal binary-heap event loop.
    pub heap: EngineRun,
}

impl BenchReport {
    /// How many times faster the heap loop is than nexosim (events/s ratio, heap over nexosim).
    pub fn ratio_heap_over_nexosim(&self) -> f64 {
        self.heap.events_per_s() / self.nexosim.events_per_s()
    }
}

impl fmt::Display for BenchReport {
    /// One `key=value` line for the workload, one per engine, and the ratio (human- and grep-friendly).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let end = c
            .end_s
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        writeln!(
            f,
            "phold lps={} initial_per_lp={} events={} mean_delay_s={} lookahead_s={} end_s={end} seed={}",
            c.lps, c.initial_per_lp, c.events, c.mean_delay_s, c.lookahead_s, c.seed
        )?;
        for (name, r) in [("nexosim", &self.nexosim), ("heap", &self.heap)] {
            writeln!(
                f,
                "{name}_events={} {name}_wall_s={:.3} {name}_events_per_s={:.0} {name}_sim_time_s={:.3}",
                r.events,
                r.wall_s,
                r.events_per_s(),
                r.sim_time_s
            )?;
        }
        write!(
            f,
            "ratio_heap_over_nexosim={:.2}",
            self.ratio_heap_over_nexosim()
        )
    }
}

/// Runs the workload on nexosim, then on the heap loop, in this process.
///
/// # Panics
/// On an invalid configuration (check [`PholdConfig::validate`] first) or an engine failure.
pub fn run(cfg: &PholdConfig) -> BenchReport {
    BenchReport {
        config: cfg.clone(),
        nexosim: run_nexosim(cfg),
        heap: run_heap(cfg),
    }
}

/// The hop distribution shared by both implementations.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Hop {
    lps: u32,
    mean_ns: f64,
    lookahead_ns: f64,
}

impl Hop {
    fn new(cfg: &PholdConfig) -> Self {
        Self {
            lps: cfg.lps as u32,
            mean_ns: cfg.mean_delay_s * 1e9,
            lookahead_ns: cfg.lookahead_s * 1e9,
        }
    }

    /// A hop delay in nanoseconds: `lookahead + Exp(mean)`, rounded, at least 1 ns.
    #[inline]
    fn delay_ns(&self, rng: &mut Rng) -> u64 {
        let e: f64 = rng.sample(Exp1);
        ((self.lookahead_ns + self.mean_ns * e).round() as u64).max(1)
    }

    /// A destination LP drawn uniformly, then its delay.
    #[inline]
    fn draw(&self, rng: &mut Rng) -> (u32, u64) {
        let dest = rng.random_range(0..self.lps);
        (dest, self.delay_ns(rng))
    }
}

/// The random stream of LP `i`.
fn lp_stream(seed: u64, i: u32) -> Rng {
    stream(seed, &format!("phold/lp/{i}"))
}

/// Runs the workload on nexosim (single thread; LP models plus one router model).
///
/// # Panics
/// On an invalid configuration or an engine failure.
pub fn run_nexosim(cfg: &PholdConfig) -> EngineRun {
    cfg.assert_valid();
    let start = Instant::now();
    let hop = Hop::new(cfg);

    let mut router = Router {
        lps: Vec::with_capacity(cfg.lps),
        budget: cfg.events - cfg.initial_events(),
        received: 0,
    };
    let router_mbox = Mailbox::new();
    let mut sim = bench();
    let processed = QuerySource::new()
        .connect(Router::processed, &router_mbox)
        .register(&mut sim);

    for i in 0..hop.lps {
        let mbox = Mailbox::new();
        let mut lp = Lp {
            rng: lp_stream(cfg.seed, i),
            hop,
            initial: cfg.initial_per_lp,
            to_router: Output::new(),
        };
        lp.to_router.connect(Router::route, &router_mbox);
        let mut port = Output::new();
        port.connect(Lp::arrive, &mbox);
        router.lps.push(port);
        sim = sim.add_model(lp, mbox, &format!("lp{i}"));
    }
    sim = sim.add_model(router, router_mbox, "router");

    let mut simu = sim
        .init(T0)
        .expect("PHOLD bench on nexosim failed to initialise");
    match cfg.end_ns() {
        Some(end_ns) => simu.step_until(T0 + Duration::from_nanos(end_ns)),
        None => simu.run(),
    }
    .expect("PHOLD bench on nexosim failed");
    let wall_s = start.elapsed().as_secs_f64();
    let events = simu
        .process_query(&processed, ())
        .expect("PHOLD bench: event-count query failed");
    EngineRun {
        events,
        wall_s,
        sim_time_s: t_s(simu.time()),
    }
}

/// What an LP sends to the router when it processes an event.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct NewEvent {
    dest: u32,
    delay_ns: u64,
}

/// A PHOLD logical process on nexosim.
#[derive(Serialize, Deserialize)]
struct Lp {
    rng: Rng,
    hop: Hop,
    initial: usize,
    to_router: Output<NewEvent>,
}

#[Model]
impl Lp {
    /// Schedules the LP's initial events.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        for _ in 0..self.initial {
            let delay = Duration::from_nanos(self.hop.delay_ns(&mut self.rng));
            cx.schedule_event(delay, schedulable!(Self::fire), ())
                .expect("PHOLD: initial delay is positive");
        }
    }

    /// An event sent to this LP (through the router) is scheduled at its timestamp.
    fn arrive(&mut self, delay_ns: u64, cx: &Context<Self>) {
        cx.schedule_event(Duration::from_nanos(delay_ns), schedulable!(Self::fire), ())
            .expect("PHOLD: hop delay is positive");
    }

    /// Processes one event: sends a new one to a random LP through the router.
    #[nexosim(schedulable)]
    async fn fire(&mut self) {
        let (dest, delay_ns) = self.hop.draw(&mut self.rng);
        self.to_router.send(NewEvent { dest, delay_ns }).await;
    }
}

/// Routes each LP's new event to its destination LP and counts processed events.
#[derive(Serialize, Deserialize)]
struct Router {
    /// One output per LP, each connected to that LP's `arrive` input.
    lps: Vec<Output<u64>>,
    /// Events that may still be created.
    budget: u64,
    /// Events processed so far (every processed event sends exactly one message here).
    received: u64,
}

#[Model]
impl Router {
    /// Counts the event that produced `send` and forwards `send` while the budget lasts.
    async fn route(&mut self, send: NewEvent) {
        self.received += 1;
        if self.budget > 0 {
            self.budget -= 1;
            self.lps[send.dest as usize].send(send.delay_ns).await;
        }
    }

    /// Number of events processed so far.
    async fn processed(&mut self, _: ()) -> u64 {
        self.received
    }
}

/// Runs the workload on the minimal hand-written binary-heap event loop.
///
/// # Panics
/// On an invalid configuration.
pub fn run_heap(cfg: &PholdConfig) -> EngineRun {
    cfg.assert_valid();
    let start = Instant::now();
    let hop = Hop::new(cfg);
    let mut rngs: Vec<Rng> = (0..hop.lps).map(|i| lp_stream(cfg.seed, i)).collect();

    // Entries (time_ns, seq, lp), smallest first; `seq` = creation order breaks ties.
    let mut queue: BinaryHeap<Reverse<(u64, u64, u32)>> =
        BinaryHeap::with_capacity(cfg.initial_events() as usize);
    let mut created = 0u64;
    for (lp, rng) in (0u32..).zip(rngs.iter_mut()) {
        for _ in 0..cfg.initial_per_lp {
            queue.push(Reverse((hop.delay_ns(rng), created, lp)));
            created += 1;
        }
    }

    let end_ns = cfg.end_ns().unwrap_or(u64::MAX);
    let mut now = 0u64;
    let mut events = 0u64;
    while let Some(Reverse((t, _, lp))) = queue.pop() {
        if t > end_ns {
            break;
        }
        now = t;
        events += 1;
        let (dest, delay_ns) = hop.draw(&mut rngs[lp as usize]);
        if created < cfg.events {
            queue.push(Reverse((t + delay_ns, created, dest)));
            created += 1;
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    EngineRun {
        events,
        wall_s,
        sim_time_s: cfg
            .end_s
            .map_or(now as f64 * 1e-9, |_| end_ns as f64 * 1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> PholdConfig {
        PholdConfig {
            lps: 20,
            initial_per_lp: 2,
            events: 3_000,
            seed,
            ..PholdConfig::default()
        }
    }

    #[test]
    fn heap_processes_the_requested_events() {
        let r = run_heap(&small(1));
        assert_eq!(r.events, 3_000);
        assert!(r.sim_time_s > 0.0);
    }

    #[test]
    fn nexosim_processes_the_requested_events() {
        let r = run_nexosim(&small(1));
        assert_eq!(r.events, 3_000);
        assert!(r.sim_time_s > 0.0);
    }

    #[test]
    fn heap_is_deterministic_for_a_seed() {
        let a = run_heap(&small(7));
        let b = run_heap(&small(7));
        assert_eq!((a.events, a.sim_time_s), (b.events, b.sim_time_s));
        assert_ne!(a.sim_time_s, run_heap(&small(8)).sim_time_s);
    }

    #[test]
    fn both_engines_simulate_the_same_event_sequence() {
        let cfg = small(3);
        let (a, b) = (run_nexosim(&cfg), run_heap(&cfg));
        assert_eq!((a.events, a.sim_time_s), (b.events, b.sim_time_s));
    }

    #[test]
    fn end_time_stops_both_engines_at_the_same_event() {
        let cfg = PholdConfig {
            end_s: Some(20.0),
            ..small(5)
        };
        let (a, b) = (run_nexosim(&cfg), run_heap(&cfg));
        assert!(a.events > 0 && a.events < cfg.events, "{a:?}");
        assert_eq!(a.events, b.events);
        assert_eq!(a.sim_time_s, 20.0);
        assert_eq!(b.sim_time_s, 20.0);
    }

    #[test]
    fn report_prints_both_rates_and_the_ratio() {
        let text = run(&small(2)).to_string();
        for key in [
            "nexosim_events=3000",
            "heap_events=3000",
            "nexosim_events_per_s=",
            "heap_events_per_s=",
            "ratio_heap_over_nexosim=",
        ] {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let ok = PholdConfig::default();
        assert!(ok.validate().is_ok());
        for bad in [
            PholdConfig {
                lps: 0,
                ..ok.clone()
            },
            PholdConfig {
                events: 999,
                ..ok.clone()
            },
            PholdConfig {
                mean_delay_s: 0.0,
                ..ok.clone()
            },
            PholdConfig {
                lookahead_s: -1.0,
                ..ok.clone()
            },
            PholdConfig {
                end_s: Some(f64::NAN),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    /// Full-size measurement: `cargo test --release -p sim bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, run in release"]
    fn measure_default_workload() {
        println!("{}", run(&PholdConfig::default()));
    }
}
