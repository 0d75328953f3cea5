//! The FL network and its round driver: participants with device profiles, a coordinator with a
//! round deadline, and the coordinator's shared ingress link ([`sim::components::link::Link`]).
//!
//! The engine decides *when*: each round the driver draws who is online and who drops out, plans
//! every upload's time (check-in delay + downlink latency + global bytes / downlink bandwidth + local FLOPs / device
//! speed + uplink latency + update bytes / uplink bandwidth), and the nexosim bench (clients hub →
//! ingress link with fair-shared bandwidth → coordinator) delivers the updates and closes the round
//! when all arrived or at the deadline. The driver then runs *what* for real, outside the engine:
//! local training of the on-time participants ([`LocalTrainer`]), the adversary, aggregation
//! ([`Aggregator`]), contribution scores and evaluation. Updates past the deadline are late:
//! discarded, but they kept the ingress link busy.
//!
//! Public entry point for other family modules: [`run_network`] with your own trainer, aggregator
//! and adversary, and a per-round observer callback.

use nexosim::ports::{EventQueueReader, EventSinkReader, EventSource, SinkState, event_queue};
use nexosim::simulation::{EventId, Mailbox, SimInit, Simulation};
use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::checkpoint::Checkpointer;
use sim::components::link::Link;
use sim::engine::{self, T0, secs, t_s};
use sim::experiment::{RunContext, RunError};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use super::clients::{Clients, PlannedUpload};
use super::coordinator::{Arrival, Coordinator, RoundClosed, RoundOpen};
use super::cosim::{self, ChainPorts, SharedSettler};
use super::devices::DeviceProfile;
use super::traits::{
    Adversary, Aggregator, ClientUpdate, Eval, LocalTrainer, ModelParams, PluginError,
    cosine_contributions,
};

/// Round structure and the coordinator's network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Training rounds.
    pub rounds: u32,
    /// Fraction of the participants selected each round, in (0, 1].
    #[serde(default = "one")]
    pub participation: f64,
    /// Round deadline after the round opens, seconds (updates arriving later are discarded).
    pub deadline_s: f64,
    /// Coordinator ingress bandwidth shared by all uploads, Mbit/s.
    pub server_ingress_mbps: f64,
    /// Coordinator-side latency added to each upload, ms.
    #[serde(default)]
    pub server_latency_ms: f64,
    /// Coordinator time to aggregate and publish the next model, seconds.
    #[serde(default = "one")]
    pub aggregation_s: f64,
}

fn one() -> f64 {
    1.0
}

impl Validate for NetworkConfig {
    fn validate(&self, c: &mut Checks) {
        c.at_least("rounds", self.rounds, 1);
        if !(self.participation > 0.0 && self.participation <= 1.0) {
            c.fail(
                "participation",
                format!("must be in (0, 1], got {}", self.participation),
            );
        }
        c.positive("deadline_s", self.deadline_s);
        c.positive("server_ingress_mbps", self.server_ingress_mbps);
        c.positive("aggregation_s", self.aggregation_s);
        c.non_negative("server_latency_ms", self.server_latency_ms);
    }
}

/// What happened in one round.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round index.
    pub round: u32,
    /// Time the round opened, seconds.
    pub open_s: f64,
    /// Time it closed, seconds.
    pub close_s: f64,
    /// True when the deadline closed it.
    pub by_deadline: bool,
    /// Participants selected.
    pub selected: usize,
    /// Selected but offline at the start.
    pub offline: usize,
    /// Participants that dropped out mid-round (no upload).
    pub dropped: Vec<usize>,
    /// Uploads still in flight when the round closed (arrive late, discarded).
    pub late: usize,
    /// Participants whose update was aggregated, ascending.
    pub on_time: Vec<usize>,
    /// Contribution score of each `on_time` participant (same order).
    pub contributions: Vec<f64>,
    /// Samples each `on_time` participant trained on (same order).
    pub samples: Vec<usize>,
    /// Mean local training loss of the on-time participants.
    pub train_loss: f64,
    /// Global model quality after the round.
    pub eval: Eval,
    /// What each participant that started the round spent on its phases (in planning order).
    #[serde(default)]
    pub clients: Vec<ClientRound>,
}

/// One participant's round: the phases of its planned work and when its upload reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClientRound {
    /// Participant index.
    pub client: usize,
    /// Check-in delay before it starts, seconds.
    pub checkin_s: f64,
    /// Download of the global model (with one round trip of latency), seconds.
    pub download_s: f64,
    /// Local training, seconds.
    pub train_s: f64,
    /// Upload at its own uplink rate (with one round trip of latency), seconds.
    pub upload_s: f64,
    /// Arrival of the update at the server (after the server's ingress link), seconds; NaN when it
    /// had not arrived when the round closed.
    pub arrival_s: f64,
    /// Whether the update arrived by the deadline.
    pub on_time: bool,
}

/// The whole run of the network.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkRun {
    /// One record per round.
    pub rounds: Vec<RoundRecord>,
    /// Final global model.
    pub model: ModelParams,
    /// Evaluation of the initial model.
    pub initial: Eval,
}

impl NetworkRun {
    /// Total dropouts over the run.
    pub fn dropouts(&self) -> usize {
        self.rounds.iter().map(|r| r.dropped.len()).sum()
    }
    /// Total late uploads over the run.
    pub fn late_uploads(&self) -> usize {
        self.rounds.iter().map(|r| r.late).sum()
    }
    /// End of the last round, seconds.
    pub fn end_s(&self) -> f64 {
        self.rounds.last().map_or(0.0, |r| r.close_s)
    }
}

/// The pluggable parts of a network run.
pub struct Plugins<'a> {
    /// Local training (owns the participants' data).
    pub trainer: &'a mut dyn LocalTrainer,
    /// Aggregation rule.
    pub aggregator: &'a mut dyn Aggregator,
    /// Misbehaving participants.
    pub adversary: &'a mut dyn Adversary,
}

/// Random streams of a network run.
#[derive(Serialize, Deserialize)]
pub struct NetworkRngs {
    /// Selection, availability and dropouts.
    pub net: Rng,
    /// Local SGD (shuffling) and model initialisation.
    pub train: Rng,
    /// Aggregator and adversary randomness.
    pub agg: Rng,
}

impl NetworkRngs {
    /// The streams `fl/net`, `fl/train`, `fl/agg` of run `ctx`.
    pub fn from_ctx(ctx: &RunContext) -> Self {
        Self {
            net: ctx.rng("fl/net"),
            train: ctx.rng("fl/train"),
            agg: ctx.rng("fl/agg"),
        }
    }
}

struct Bench<Sim> {
    simu: Sim,
    start: EventId<Vec<PlannedUpload>>,
    open: EventId<RoundOpen>,
    arrivals: EventQueueReader<Arrival>,
    closed: EventQueueReader<RoundClosed>,
    chain: Option<ChainPorts>,
}

/// A network run saved at a round boundary (see [`run_network_saved`]).
#[derive(Deserialize)]
struct Saved {
    next_round: u32,
    global: ModelParams,
    run: NetworkRun,
    rngs: NetworkRngs,
}

/// [`Saved`] by reference, for writing (the same fields in the same order).
#[derive(Serialize)]
struct SavedRef<'a> {
    next_round: u32,
    global: &'a ModelParams,
    run: &'a NetworkRun,
    rngs: &'a NetworkRngs,
}

/// The bench of the network, not yet initialised, with the settlement chain when given.
fn bench(cfg: &NetworkConfig, settler: Option<&SharedSettler>) -> Bench<SimInit> {
    let mut clients = Clients::default();
    let mut link = Link::new(
        cfg.server_latency_ms * 1e-3,
        cfg.server_ingress_mbps * 1e6 / 8.0,
    );
    let mut coord = Coordinator::default();
    let (cm, lm, om) = (Mailbox::new(), Mailbox::new(), Mailbox::new());
    clients.upload.connect(Link::send, &lm);
    link.delivered.connect(Coordinator::delivered, &om);
    let (asink, arrivals) = event_queue(SinkState::Enabled);
    let (csink, closed) = event_queue(SinkState::Enabled);
    coord.arrival.connect_sink(asink);
    coord.closed.connect_sink(csink);
    let mut b = engine::bench();
    let start = EventSource::new()
        .connect(Clients::start, &cm)
        .register(&mut b);
    let open = EventSource::new()
        .connect(Coordinator::open, &om)
        .register(&mut b);
    let simu = b
        .add_model(clients, cm, "clients")
        .add_model(link, lm, "ingress")
        .add_model(coord, om, "coordinator");
    let (simu, chain) = match settler {
        Some(s) => {
            let (simu, ports) = cosim::add(simu, s);
            (simu, Some(ports))
        }
        None => (simu, None),
    };
    Bench {
        simu,
        start,
        open,
        arrivals,
        closed,
        chain,
    }
}

impl Bench<SimInit> {
    /// The bench initialised at [`T0`], or restored with the state `ckpt` saved.
    fn start(
        self,
        ckpt: Option<&Checkpointer>,
    ) -> Result<(Bench<Simulation>, Option<Saved>), RunError> {
        let (simu, saved) = match ckpt {
            Some(ckpt) => ckpt.start(self.simu)?,
            None => (self.simu.init(T0)?, None),
        };
        let bench = Bench {
            simu,
            start: self.start,
            open: self.open,
            arrivals: self.arrivals,
            closed: self.closed,
            chain: self.chain,
        };
        Ok((bench, saved))
    }
}

/// Runs `cfg.rounds` rounds over the participants `devices` (one per trainer client) with the
/// given plug-ins; `observer` sees each finished round with the global model before and after it.
/// The first error of a plug-in or of the observer ends the run with that error.
pub fn run_network(
    cfg: &NetworkConfig,
    devices: &[DeviceProfile],
    plug: Plugins<'_>,
    rngs: &mut NetworkRngs,
    observer: &mut dyn FnMut(&RoundRecord, &ModelParams, &ModelParams) -> Result<(), PluginError>,
) -> Result<NetworkRun, RunError> {
    run_network_saved(cfg, devices, plug, rngs, observer, None, None)
}

/// [`run_network`], saving the engine, the global model, the rounds so far and the random streams
/// through `ckpt` at the first round boundary after each checkpoint interval, and continuing from
/// the saved round when there is one. Only for plug-ins without state of their own across rounds
/// (the trainer's data are rebuilt from the run's seed; FedAvg and an honest network keep none);
/// `observer` sees only the rounds run after a restore.
///
/// With `settler`, the settlement chain ([`cosim::ChainNode`]) runs in the same bench: each round
/// reaches it when it closes, and after the last round the engine runs on until settlement is done
/// or given up. A restored run rebuilds the settler's state from the saved rounds.
pub fn run_network_saved(
    cfg: &NetworkConfig,
    devices: &[DeviceProfile],
    plug: Plugins<'_>,
    rngs: &mut NetworkRngs,
    observer: &mut dyn FnMut(&RoundRecord, &ModelParams, &ModelParams) -> Result<(), PluginError>,
    ckpt: Option<&Checkpointer>,
    settler: Option<&SharedSettler>,
) -> Result<NetworkRun, RunError> {
    let n = plug.trainer.num_clients();
    if devices.len() != n {
        return Err(RunError::Model(format!(
            "{} device profiles for {n} participants",
            devices.len()
        )));
    }
    let (mut b, saved) = bench(cfg, settler).start(ckpt)?;
    let (first, mut global, mut run) = match saved {
        Some(saved) => {
            if let Some(p) = &b.chain {
                cosim::lock(&p.settler).replay(&saved.run.rounds, t_s(b.simu.time()));
            }
            *rngs = saved.rngs;
            (saved.next_round, saved.global, saved.run)
        }
        None => {
            let global = plug.trainer.init(&mut rngs.train);
            let run = NetworkRun {
                initial: plug.trainer.evaluate(&global)?,
                ..NetworkRun::default()
            };
            (0, global, run)
        }
    };
    let mut last_save = b.simu.time();
    for round in first..cfg.rounds {
        if let Some(p) = &b.chain {
            // Feedback (off unless the settlement asks): wait for the last epoch's commitment.
            while cosim::lock(&p.settler).holds(round as usize, t_s(b.simu.time())) {
                b.simu.step()?;
            }
            chain_error(p)?;
        }
        let open_s = t_s(b.simu.time());
        let mut rec = RoundRecord {
            round,
            open_s,
            ..RoundRecord::default()
        };
        let mut plan = Vec::new();
        for (i, dev) in devices.iter().enumerate() {
            if cfg.participation < 1.0 && rngs.net.random::<f64>() >= cfg.participation {
                continue;
            }
            rec.selected += 1;
            if rngs.net.random::<f64>() >= dev.availability {
                rec.offline += 1;
                continue;
            }
            if rngs.net.random::<f64>() < dev.dropout {
                rec.dropped.push(i);
                continue;
            }
            let c = plug.trainer.cost(i, &global);
            let download_bytes = plug.aggregator.download_bytes().unwrap_or(c.download_bytes);
            let checkin_s = if dev.checkin_s_median > 0.0 {
                let z: f64 = rngs.net.sample(rand_distr::StandardNormal);
                dev.checkin_s_median * (dev.checkin_sigma * z).exp()
            } else {
                0.0
            };
            let phase = ClientRound {
                client: i,
                checkin_s,
                download_s: dev.latency_s + download_bytes as f64 / dev.down_bytes_per_s,
                train_s: c.flops / dev.flops_per_s,
                upload_s: dev.latency_s + c.upload_bytes as f64 / dev.up_bytes_per_s,
                arrival_s: f64::NAN,
                on_time: false,
            };
            let delay_s = checkin_s
                + 2.0 * dev.latency_s
                + download_bytes as f64 / dev.down_bytes_per_s
                + c.flops / dev.flops_per_s
                + c.upload_bytes as f64 / dev.up_bytes_per_s;
            rec.clients.push(phase);
            plan.push(PlannedUpload {
                round,
                client: i as u32,
                delay_s,
                bytes: c.upload_bytes,
            });
        }
        let expected = plan.len() as u32;
        b.simu.process_event(
            &b.open,
            RoundOpen {
                round,
                expected,
                deadline_s: cfg.deadline_s,
            },
        )?;
        b.simu.process_event(&b.start, plan)?;
        let closed = loop {
            if let Some(c) = b.closed.try_read() {
                break c;
            }
            b.simu.step()?;
        };
        rec.close_s = closed.t_s;
        rec.by_deadline = closed.by_deadline;
        while let Some(a) = b.arrivals.try_read() {
            if a.on_time && a.round == round {
                rec.on_time.push(a.client as usize);
            }
            if a.round == round
                && let Some(c) = rec
                    .clients
                    .iter_mut()
                    .find(|c| c.client == a.client as usize)
            {
                c.arrival_s = a.t_s;
                c.on_time = a.on_time;
            }
        }
        rec.on_time.sort_unstable();
        rec.late = expected as usize - rec.on_time.len();

        // The real work: local training, adversary, aggregation, contributions, evaluation.
        let mut updates: Vec<ClientUpdate> = Vec::with_capacity(rec.on_time.len());
        for &i in &rec.on_time {
            let mut u = plug.trainer.train(i, &global, &mut rngs.train)?;
            if plug.adversary.is_adversary(i) {
                plug.adversary
                    .corrupt(round, &mut u, &global, &mut rngs.agg)?;
            }
            updates.push(u);
        }
        let next = if updates.is_empty() {
            global.clone()
        } else {
            plug.aggregator
                .aggregate(&global, &updates, &mut rngs.agg)?
        };
        rec.contributions = cosine_contributions(&global, &next, &updates);
        rec.samples = updates.iter().map(|u| u.samples).collect();
        rec.train_loss = if updates.is_empty() {
            0.0
        } else {
            updates.iter().map(|u| u.train_loss).sum::<f64>() / updates.len() as f64
        };
        rec.eval = plug.trainer.evaluate(&next)?;
        observer(&rec, &global, &next)?;
        if let Some(p) = &b.chain {
            b.simu.process_event(&p.round, rec.clone())?;
            chain_error(p)?;
        }
        global = next;
        run.rounds.push(rec);
        let resume = b.simu.time() + secs(cfg.aggregation_s);
        b.simu.step_until(resume)?;
        if let Some(ckpt) = ckpt
            && round + 1 < cfg.rounds
            && ckpt.due(last_save, b.simu.time())
        {
            // Arrivals still queued belong to finished rounds, which the driver never reads again.
            while b.arrivals.try_read().is_some() {}
            let state = SavedRef {
                next_round: round + 1,
                global: &global,
                run: &run,
                rngs: &*rngs,
            };
            ckpt.save(&mut b.simu, &state)?;
            last_save = b.simu.time();
        }
    }
    if let Some(p) = &b.chain {
        b.simu.process_event(&p.ended, run.end_s())?;
        while cosim::lock(&p.settler).running() {
            b.simu.step()?;
        }
        chain_error(p)?;
    }
    if let Some(ckpt) = ckpt {
        ckpt.finish()?;
    }
    run.model = global;
    Ok(run)
}

/// The settlement's first error, if a handler of the chain node met one.
fn chain_error(p: &ChainPorts) -> Result<(), RunError> {
    cosim::lock(&p.settler).take_error().map_or(Ok(()), Err)
}
