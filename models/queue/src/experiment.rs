//! Bench of the `queue` family: Poisson source → c-server FIFO station → completion sink.
//!
//! ```text
//!   ┌─────────────────┐ out → arrive  ┌──────────────────┐ done
//!   │  PoissonSource  ├──────────────►│      Server      ├──────► Completed queue
//!   │    "source"     │               │ c FIFO servers,  │
//!   │ (self-schedules │               │    "server"      │
//!   │  its arrivals)  │               └──────────────────┘
//!   └─────────────────┘
//! ```
//!
//! The run ends when the source has emitted `customers` arrivals and the server is idle; the
//! metrics come from the completions read off the queue.

use nexosim::ports::{EventQueueReader, EventSinkReader, SinkState, event_queue};
use nexosim::simulation::{Mailbox, SimInit};
use sim::checkpoint::Checkpointer;
use sim::components::server::{Completed, Server};
use sim::engine::{self, T0};
use sim::estimate::ResourceEstimate;
use sim::experiment::{Experiment, RunContext, RunError, RunOutput};
use sim::metrics::LatencyHistogram;
use sim::trace::Trace;

use super::params::QueueParams;
use super::source::PoissonSource;

/// The M/M/c reference experiment.
pub struct QueueExperiment;

impl Experiment for QueueExperiment {
    type Params = QueueParams;
    const NAME: &'static str = "queue";
    const DESCRIPTION: &'static str =
        "M/M/c queue: Poisson arrivals, exponential service, c FIFO servers (engine validation)";

    fn run(&self, p: &QueueParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let (bench, mut done) = build(p, ctx);
        let mut simu = bench.init(T0)?;
        simu.run()?;
        let mut completed = Vec::with_capacity(p.customers as usize);
        while let Some(c) = done.try_read() {
            completed.push(c);
        }
        summarise(p, &completed, ctx)
    }

    /// Memory: every departure is kept until the run ends (`Completed` records, twice over while
    /// the event queue drains into the vector), plus the `in_system` series (≈ 48 bytes a sample,
    /// two sorted steps per customer while it is built). Work: ≈ 3 events per customer (arrival,
    /// service start, departure).
    fn estimate(&self, p: &QueueParams) -> ResourceEstimate {
        let customers = p.customers as f64;
        let record = std::mem::size_of::<Completed>() as f64;
        let mut e = ResourceEstimate::default()
            .memory("customers", 2.0 * customers * record)
            .work("customers", 3.0 * customers);
        if p.series_interval_s > 0.0 {
            let span_s = customers / p.arrival_rate;
            e = e
                .memory("customers", 2.0 * customers * 16.0)
                .memory("series_interval_s", span_s / p.series_interval_s * 48.0)
                .work("series_interval_s", span_s / p.series_interval_s);
        }
        e
    }

    const CHECKPOINTS: bool = true;

    fn run_checkpointed(
        &self,
        p: &QueueParams,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError> {
        let (bench, mut done) = build(p, ctx);
        let (mut simu, saved) = ckpt.start::<Vec<Completed>>(bench)?;
        let mut completed = saved.unwrap_or_default();
        ckpt.drive(&mut simu, &mut completed, |completed| {
            completed.extend(std::iter::from_fn(|| done.try_read()));
        })?;
        summarise(p, &completed, ctx)
    }
}

/// The bench of one run, not yet initialised, and the reader of its completions.
fn build(p: &QueueParams, ctx: &RunContext) -> (SimInit, EventQueueReader<Completed>) {
    let mut source = PoissonSource::new(
        p.arrival_rate,
        p.service_rate,
        p.customers,
        ctx.rng("queue/arrivals"),
        ctx.rng("queue/service"),
    );
    let mut server = Server::new(p.servers);
    let source_mbox = Mailbox::new();
    let server_mbox = Mailbox::new();
    source.out.connect(Server::arrive, &server_mbox);
    let (sink, done) = event_queue::<Completed>(SinkState::Enabled);
    server.done.connect_sink(sink);
    let bench = engine::bench()
        .add_model(source, source_mbox, "source")
        .add_model(server, server_mbox, "server");
    (bench, done)
}

/// The run's metrics (and optional in-system series and timeline) from its completions.
fn summarise(
    p: &QueueParams,
    completed: &[Completed],
    ctx: &RunContext,
) -> Result<RunOutput, RunError> {
    let mut sojourn = LatencyHistogram::new();
    let (mut wait_sum_s, mut sojourn_sum_s, mut busy_s) = (0.0, 0.0, 0.0);
    let (mut first_arrival_s, mut last_finish_s, mut counted) = (f64::INFINITY, 0.0f64, 0u64);
    for c in completed {
        if c.id < p.warmup_customers {
            continue;
        }
        counted += 1;
        let s = c.finish_s - c.arrival_s;
        sojourn.record_s(s);
        sojourn_sum_s += s;
        wait_sum_s += c.start_s - c.arrival_s;
        busy_s += c.finish_s - c.start_s;
        first_arrival_s = first_arrival_s.min(c.arrival_s);
        last_finish_s = last_finish_s.max(c.finish_s);
    }
    if counted == 0 {
        return Err(RunError::Model("no customer completed".into()));
    }
    let n = counted as f64;
    let span_s = (last_finish_s - first_arrival_s).max(f64::MIN_POSITIVE);
    let mut out = RunOutput::default();
    out.metric("customers_measured", n)
        .metric("mean_sojourn_s", sojourn_sum_s / n)
        .metric("mean_wait_s", wait_sum_s / n)
        .metric("utilization", busy_s / (span_s * f64::from(p.servers)))
        .metric("throughput_per_s", n / span_s);
    sojourn.export("sojourn_s", &mut out.metrics);
    if p.series_interval_s > 0.0 {
        record_in_system(completed, p.series_interval_s, &mut out);
    }
    out.trace = timeline(p, completed, ctx);
    Ok(out)
}

/// One slice per service on its server's track (`server/3`), named `job` for measured customers and
/// `warm-up job` for the warm-up ones, with the customer's wait as an argument.
fn timeline(p: &QueueParams, completed: &[Completed], ctx: &RunContext) -> Trace {
    let mut trace = ctx.tracer();
    if trace.is_on() {
        for c in completed {
            let name = if c.id < p.warmup_customers {
                "warm-up job"
            } else {
                "job"
            };
            trace.slice_with(
                &format!("server/{}", c.server),
                name,
                c.start_s,
                c.service_s(),
                &[("id", c.id as f64), ("wait_s", c.wait_s())],
            );
        }
    }
    trace
}

/// Samples the number of customers in the system every `interval_s` from the recorded arrivals and
/// departures (an exact step function, read at the sampling instants).
fn record_in_system(completed: &[Completed], interval_s: f64, out: &mut RunOutput) {
    let mut steps: Vec<(f64, i64)> = completed
        .iter()
        .flat_map(|c| [(c.arrival_s, 1), (c.finish_s, -1)])
        .collect();
    steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let end_s = steps.last().map_or(0.0, |s| s.0);
    let (mut level, mut next) = (0i64, 0usize);
    let mut k = 0u64;
    loop {
        let t_s = k as f64 * interval_s;
        if t_s > end_s {
            break;
        }
        while next < steps.len() && steps[next].0 <= t_s {
            level += steps[next].1;
            next += 1;
        }
        out.sample(t_s, "server", "in_system", level as f64);
        k += 1;
    }
}
