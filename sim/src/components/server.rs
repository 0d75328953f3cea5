//! A multi-server queue: `c` identical servers fed from one FIFO queue with optional priorities.
//!
//! Jobs arrive with their service time already drawn by the caller (so the caller owns the random
//! stream). A job that finds a free server starts at once; otherwise it waits in the queue. The
//! queue serves the lowest `priority` value first and is FIFO within a priority; service is
//! non-preemptive. One engine event per job (its completion).
//!
//! Wiring: connect an `EventSource<Job>` or another model's `Output<Job>` to [`Server::arrive`];
//! connect [`Server::done`] to the next stage or to an `event_queue` sink; read [`ServerStats`]
//! after the run with a `QuerySource<(), ServerStats>` connected to [`Server::stats`].

use std::collections::{BTreeMap, VecDeque};

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::{secs, t_s};
use crate::metrics::{Counter, TimeWeightedGauge};

/// A unit of work submitted to a [`Server`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Job {
    /// Caller-chosen identifier, echoed in [`Completed`].
    pub id: u64,
    /// Service time in seconds (drawn by the caller); negative or NaN counts as 0.
    pub service_s: f64,
    /// Priority class: lower values are served first; FIFO within a class. 0 for a plain FIFO.
    pub priority: u32,
}

impl Job {
    /// A priority-0 job `id` needing `service_s` seconds of service.
    pub fn new(id: u64, service_s: f64) -> Self {
        Self {
            id,
            service_s,
            priority: 0,
        }
    }

    /// The same job in priority class `priority` (lower is served first).
    pub fn with_priority(self, priority: u32) -> Self {
        Self { priority, ..self }
    }
}

/// A job that left the [`Server`], with its timeline in seconds since the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Completed {
    /// The job's identifier.
    pub id: u64,
    /// The job's priority class.
    pub priority: u32,
    /// Index of the server that served it, in `0..servers`.
    pub server: u32,
    /// Arrival time, seconds.
    pub arrival_s: f64,
    /// Service start time, seconds.
    pub start_s: f64,
    /// Service completion (departure) time, seconds.
    pub finish_s: f64,
}

impl Completed {
    /// Time spent waiting in the queue, seconds.
    pub fn wait_s(&self) -> f64 {
        self.start_s - self.arrival_s
    }

    /// Time spent in service, seconds.
    pub fn service_s(&self) -> f64 {
        self.finish_s - self.start_s
    }

    /// Time spent in the system (wait + service), seconds.
    pub fn sojourn_s(&self) -> f64 {
        self.finish_s - self.arrival_s
    }
}

/// Figures of a [`Server`] over its observation window (from the start of the run, or from the last
/// [`Server::reset_stats`]) up to the time of the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerStats {
    /// Number of servers `c`.
    pub servers: u32,
    /// Length of the observation window, seconds.
    pub elapsed_s: f64,
    /// Jobs that arrived in the window.
    pub arrived: u64,
    /// Jobs that completed in the window.
    pub completed: u64,
    /// Jobs waiting in the queue now.
    pub in_queue: u64,
    /// Jobs in service now.
    pub in_service: u64,
    /// Time-average fraction of servers busy, in [0, 1].
    pub utilization: f64,
    /// Time-average number of busy servers.
    pub mean_busy_servers: f64,
    /// Time-average number of jobs waiting in the queue (L_q).
    pub mean_queue_len: f64,
    /// Largest queue length seen.
    pub max_queue_len: f64,
    /// Time-average number of jobs in the system, queue + service (L).
    pub mean_in_system: f64,
    /// Mean queueing delay of the completed jobs, seconds (W_q).
    pub mean_wait_s: f64,
    /// Mean time in system of the completed jobs, seconds (W).
    pub mean_sojourn_s: f64,
    /// Completion rate over the window, jobs per second.
    pub throughput_per_s: f64,
}

impl ServerStats {
    /// Appends `{prefix}_utilization`, `{prefix}_queue_len_mean`, `{prefix}_queue_len_max`,
    /// `{prefix}_in_system_mean`, `{prefix}_wait_s_mean`, `{prefix}_sojourn_s_mean`,
    /// `{prefix}_throughput_per_s` and `{prefix}_completed` to `out`.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_utilization"), self.utilization));
        out.push((format!("{prefix}_queue_len_mean"), self.mean_queue_len));
        out.push((format!("{prefix}_queue_len_max"), self.max_queue_len));
        out.push((format!("{prefix}_in_system_mean"), self.mean_in_system));
        out.push((format!("{prefix}_wait_s_mean"), self.mean_wait_s));
        out.push((format!("{prefix}_sojourn_s_mean"), self.mean_sojourn_s));
        out.push((format!("{prefix}_throughput_per_s"), self.throughput_per_s));
        out.push((format!("{prefix}_completed"), self.completed as f64));
    }
}

/// A job waiting in the queue.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Waiting {
    /// The job's identifier.
    id: u64,
    /// Service time it will need, seconds.
    service_s: f64,
    /// Arrival time, seconds.
    arrival_s: f64,
}

/// A job in service on one server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct InService {
    /// The job's identifier.
    id: u64,
    /// Its priority class.
    priority: u32,
    /// Arrival time, seconds.
    arrival_s: f64,
    /// Service start time, seconds.
    start_s: f64,
}

/// `c` identical servers with one shared queue (FIFO, or by priority class then FIFO).
#[derive(Serialize, Deserialize)]
pub struct Server {
    /// Every job that finishes service, at its departure time.
    pub done: Output<Completed>,
    /// Number of servers `c`.
    servers: u32,
    /// Waiting jobs per priority class (empty classes are kept to reuse their buffers).
    queues: BTreeMap<u32, VecDeque<Waiting>>,
    /// Number of waiting jobs over all classes.
    queued: u64,
    /// Indices of the idle servers (a stack: the lowest index is used first at start).
    free: Vec<u32>,
    /// The job on each server, if any.
    slots: Vec<Option<InService>>,
    /// Number of busy servers over time.
    busy: TimeWeightedGauge,
    /// Number of waiting jobs over time.
    queue_len: TimeWeightedGauge,
    /// Arrivals in the window.
    arrived: Counter,
    /// Completions in the window.
    completed: Counter,
    /// Sum of the queueing delays of the completed jobs, seconds.
    wait_sum_s: f64,
    /// Sum of the sojourn times of the completed jobs, seconds.
    sojourn_sum_s: f64,
}

#[Model]
impl Server {
    /// A station of `servers` identical servers, idle and empty.
    ///
    /// # Panics
    /// If `servers` is 0 (families validate this in their params).
    pub fn new(servers: u32) -> Self {
        assert!(servers >= 1, "a server station needs at least one server");
        Self {
            done: Output::default(),
            servers,
            queues: BTreeMap::new(),
            queued: 0,
            free: (0..servers).rev().collect(),
            slots: vec![None; servers as usize],
            busy: TimeWeightedGauge::default(),
            queue_len: TimeWeightedGauge::default(),
            arrived: Counter::new(),
            completed: Counter::new(),
            wait_sum_s: 0.0,
            sojourn_sum_s: 0.0,
        }
    }

    /// Opens the observation window at the simulation start time.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        self.reset_window(t_s(cx.time()));
    }

    /// A job arrives (input port): it starts on an idle server or joins the queue.
    pub async fn arrive(&mut self, job: Job, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.arrived.incr();
        let waiting = Waiting {
            id: job.id,
            service_s: job.service_s,
            arrival_s: now,
        };
        match self.free.pop() {
            Some(server) => {
                self.dispatch(server, Some((waiting, job.priority)), now, cx)
                    .await
            }
            None => {
                self.queues
                    .entry(job.priority)
                    .or_default()
                    .push_back(waiting);
                self.queued += 1;
                self.queue_len.set(now, self.queued as f64);
            }
        }
    }

    /// Restarts the observation window now (input port), e.g. after a warm-up period: time
    /// averages, counters and delay sums restart; jobs in the system stay.
    pub fn reset_stats(&mut self, _: (), cx: &Context<Self>) {
        self.reset_window(t_s(cx.time()));
    }

    /// Figures over the observation window up to now (replier port).
    pub async fn stats(&mut self, _: (), cx: &Context<Self>) -> ServerStats {
        let now = t_s(cx.time());
        let elapsed_s = (now - self.busy.start_s()).max(0.0);
        let completed = self.completed.get();
        let per_job = |sum: f64| {
            if completed > 0 {
                sum / completed as f64
            } else {
                0.0
            }
        };
        let mean_busy_servers = self.busy.mean(now);
        let mean_queue_len = self.queue_len.mean(now);
        ServerStats {
            servers: self.servers,
            elapsed_s,
            arrived: self.arrived.get(),
            completed,
            in_queue: self.queued,
            in_service: u64::from(self.servers) - self.free.len() as u64,
            utilization: mean_busy_servers / f64::from(self.servers),
            mean_busy_servers,
            mean_queue_len,
            max_queue_len: self.queue_len.max(),
            mean_in_system: mean_busy_servers + mean_queue_len,
            mean_wait_s: per_job(self.wait_sum_s),
            mean_sojourn_s: per_job(self.sojourn_sum_s),
            throughput_per_s: if elapsed_s > 0.0 {
                completed as f64 / elapsed_s
            } else {
                0.0
            },
        }
    }

    /// The job on `server` completes (self-scheduled).
    #[nexosim(schedulable)]
    async fn finish(&mut self, server: u32, cx: &Context<Self>) {
        let now = t_s(cx.time());
        if let Some(job) = self.slots[server as usize].take() {
            self.complete(job, server, now).await;
        }
        self.dispatch(server, None, now, cx).await;
    }

    /// Starts jobs on the idle `server` — `first`, then the head of the queue — until one needs
    /// non-zero time (its completion is scheduled) or the queue is empty (the server goes idle).
    async fn dispatch(
        &mut self,
        server: u32,
        mut first: Option<(Waiting, u32)>,
        now: f64,
        cx: &Context<Self>,
    ) {
        loop {
            let Some((job, priority)) = first.take().or_else(|| self.pop_queue(now)) else {
                self.free.push(server);
                break;
            };
            let running = InService {
                id: job.id,
                priority,
                arrival_s: job.arrival_s,
                start_s: now,
            };
            let delay = secs(job.service_s);
            if delay.is_zero() {
                // nexosim rejects zero-delay self-scheduling: the job completes at once.
                self.complete(running, server, now).await;
                continue;
            }
            self.slots[server as usize] = Some(running);
            cx.schedule_event(delay, schedulable!(Self::finish), server)
                .expect("a positive delay is always in the future");
            break;
        }
        let busy = self.servers as usize - self.free.len();
        self.busy.set(now, busy as f64);
    }

    /// Removes the next job from the queue: lowest priority class first, FIFO within it.
    fn pop_queue(&mut self, now: f64) -> Option<(Waiting, u32)> {
        if self.queued == 0 {
            return None;
        }
        let (priority, job) = self
            .queues
            .iter_mut()
            .find_map(|(p, q)| q.pop_front().map(|j| (*p, j)))?;
        self.queued -= 1;
        self.queue_len.set(now, self.queued as f64);
        Some((job, priority))
    }

    /// Records and announces the departure of `job` from `server` at `now`.
    async fn complete(&mut self, job: InService, server: u32, now: f64) {
        self.completed.incr();
        self.wait_sum_s += job.start_s - job.arrival_s;
        self.sojourn_sum_s += now - job.arrival_s;
        self.done
            .send(Completed {
                id: job.id,
                priority: job.priority,
                server,
                arrival_s: job.arrival_s,
                start_s: job.start_s,
                finish_s: now,
            })
            .await;
    }

    /// Opens a new observation window at `now`, keeping the current levels.
    fn reset_window(&mut self, now: f64) {
        let busy = self.servers as usize - self.free.len();
        self.busy = TimeWeightedGauge::new(now, busy as f64);
        self.queue_len = TimeWeightedGauge::new(now, self.queued as f64);
        self.arrived = Counter::new();
        self.completed = Counter::new();
        self.wait_sum_s = 0.0;
        self.sojourn_sum_s = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nexosim::ports::event_queue;
    use nexosim::ports::{EventQueueReader, EventSinkReader, EventSource, QuerySource, SinkState};
    use nexosim::simulation::{EventId, Mailbox, QueryId, Simulation};
    use rand::Rng as _;

    use super::*;
    use crate::engine::{T0, bench};

    struct Bench {
        simu: Simulation,
        arrive: EventId<Job>,
        stats: QueryId<(), ServerStats>,
        done: EventQueueReader<Completed>,
    }

    fn station(servers: u32) -> Bench {
        let mut server = Server::new(servers);
        let mbox = Mailbox::new();
        let (sink, done) = event_queue(SinkState::Enabled);
        server.done.connect_sink(sink);
        let mut b = bench();
        let arrive = EventSource::new()
            .connect(Server::arrive, &mbox)
            .register(&mut b);
        let stats = QuerySource::new()
            .connect(Server::stats, &mbox)
            .register(&mut b);
        let simu = b.add_model(server, mbox, "server").init(T0).unwrap();
        Bench {
            simu,
            arrive,
            stats,
            done,
        }
    }

    fn drain(done: &mut EventQueueReader<Completed>) -> Vec<Completed> {
        std::iter::from_fn(|| done.try_read()).collect()
    }

    #[test]
    fn single_server_fifo_timeline() {
        let mut b = station(1);
        let sched = b.simu.scheduler();
        // arrivals at 0, 0.5, 1.25 with service 1.0, 2.0, 0.5
        b.simu.process_event(&b.arrive, Job::new(1, 1.0)).unwrap();
        sched
            .schedule_event(Duration::from_millis(500), &b.arrive, Job::new(2, 2.0))
            .unwrap();
        sched
            .schedule_event(Duration::from_millis(1250), &b.arrive, Job::new(3, 0.5))
            .unwrap();
        b.simu.run().unwrap();
        let out = drain(&mut b.done);
        let timeline: Vec<(u64, f64, f64, f64)> = out
            .iter()
            .map(|c| (c.id, c.arrival_s, c.start_s, c.finish_s))
            .collect();
        assert_eq!(
            timeline,
            vec![(1, 0.0, 0.0, 1.0), (2, 0.5, 1.0, 3.0), (3, 1.25, 3.0, 3.5)]
        );
        assert_eq!(out[1].wait_s(), 0.5);
        assert_eq!(out[2].sojourn_s(), 2.25);
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(s.elapsed_s, 3.5);
        assert_eq!(
            (s.arrived, s.completed, s.in_queue, s.in_service),
            (3, 3, 0, 0)
        );
        assert_eq!(s.utilization, 1.0);
        // one job waiting on [0.5, 1.0) and on [1.25, 3.0)
        assert!((s.mean_queue_len - 2.25 / 3.5).abs() < 1e-12);
        assert_eq!(s.max_queue_len, 1.0);
        assert!((s.mean_wait_s - (0.0 + 0.5 + 1.75) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn priority_classes_served_lowest_first_fifo_within() {
        let mut b = station(1);
        // job 0 occupies the server; then queue: low-priority 10, 11 and high-priority 20, 21
        b.simu.process_event(&b.arrive, Job::new(0, 1.0)).unwrap();
        for (id, p) in [(10, 5), (20, 1), (11, 5), (21, 1)] {
            b.simu
                .process_event(&b.arrive, Job::new(id, 1.0).with_priority(p))
                .unwrap();
        }
        b.simu.run().unwrap();
        let order: Vec<u64> = drain(&mut b.done).iter().map(|c| c.id).collect();
        assert_eq!(order, vec![0, 20, 21, 10, 11]);
    }

    #[test]
    fn multi_server_uses_all_servers_and_zero_service_jobs_pass_through() {
        let mut b = station(3);
        for id in 0..6 {
            b.simu.process_event(&b.arrive, Job::new(id, 2.0)).unwrap();
        }
        b.simu.process_event(&b.arrive, Job::new(99, 0.0)).unwrap();
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!((s.in_service, s.in_queue), (3, 4));
        b.simu.run().unwrap();
        let out = drain(&mut b.done);
        assert_eq!(b.simu.time(), T0 + Duration::from_secs(4));
        let first: Vec<_> = out.iter().filter(|c| c.finish_s == 2.0).collect();
        assert_eq!(first.len(), 3);
        let mut servers: Vec<u32> = first.iter().map(|c| c.server).collect();
        servers.sort();
        assert_eq!(servers, vec![0, 1, 2]);
        // the zero-service job queued behind jobs 3–5, got a server at 4 s and left at once
        let z = out.iter().find(|c| c.id == 99).unwrap();
        assert_eq!((z.start_s, z.finish_s), (4.0, 4.0));
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(s.completed, 7);
        assert!((s.utilization - 12.0 / 12.0).abs() < 1e-12);
        assert!((s.mean_busy_servers - 3.0).abs() < 1e-12);
    }

    #[test]
    fn conserves_jobs_under_random_load() {
        let mut b = station(2);
        let sched = b.simu.scheduler();
        let mut rng = crate::rng::stream(11, "server/test");
        let n = 2000u64;
        let mut t = 0.0;
        for id in 0..n {
            t += -rng.random::<f64>().ln() * 0.5; // λ = 2 /s
            let service = -rng.random::<f64>().ln() * 0.8; // μ = 1.25 /s per server, ρ = 0.8
            let p = rng.random_range(0..3);
            sched
                .schedule_event(
                    T0 + crate::engine::secs(t),
                    &b.arrive,
                    Job::new(id, service).with_priority(p),
                )
                .unwrap();
        }
        // midway: arrived = completed + queued + in service
        b.simu
            .step_until(T0 + crate::engine::secs(t / 2.0))
            .unwrap();
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(s.arrived, s.completed + s.in_queue + s.in_service);
        assert!(s.utilization <= 1.0 + 1e-12);
        b.simu.run().unwrap();
        let out = drain(&mut b.done);
        assert_eq!(out.len() as u64, n);
        let mut ids: Vec<u64> = out.iter().map(|c| c.id).collect();
        ids.sort();
        assert_eq!(ids, (0..n).collect::<Vec<_>>());
        for c in &out {
            assert!(c.arrival_s <= c.start_s && c.start_s <= c.finish_s);
        }
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(
            (s.arrived, s.completed, s.in_queue, s.in_service),
            (n, n, 0, 0)
        );
        // Little's law over the whole run holds exactly when the system ends empty
        let w: f64 = out.iter().map(Completed::sojourn_s).sum::<f64>() / n as f64;
        assert!((s.mean_sojourn_s - w).abs() < 1e-9);
        let l = s.mean_in_system;
        assert!((l - s.throughput_per_s * w).abs() < 1e-6 * l.max(1.0));
    }

    #[test]
    fn reset_stats_opens_a_new_window() {
        let server = Server::new(1);
        let mbox = Mailbox::new();
        let mut b = bench();
        let arrive = EventSource::new()
            .connect(Server::arrive, &mbox)
            .register(&mut b);
        let reset = EventSource::new()
            .connect(Server::reset_stats, &mbox)
            .register(&mut b);
        let stats = QuerySource::new()
            .connect(Server::stats, &mbox)
            .register(&mut b);
        let mut simu = b.add_model(server, mbox, "server").init(T0).unwrap();
        simu.process_event(&arrive, Job::new(1, 1.0)).unwrap();
        simu.step_until(T0 + Duration::from_secs(3)).unwrap();
        simu.process_event(&reset, ()).unwrap();
        simu.process_event(&arrive, Job::new(2, 1.0)).unwrap();
        simu.step_until(T0 + Duration::from_secs(5)).unwrap();
        let s = simu.process_query(&stats, ()).unwrap();
        assert_eq!((s.elapsed_s, s.arrived, s.completed), (2.0, 1, 1));
        assert_eq!(s.utilization, 0.5);
        let mut out = Vec::new();
        s.export("server", &mut out);
        assert_eq!(out[0], ("server_utilization".to_string(), 0.5));
    }
}
