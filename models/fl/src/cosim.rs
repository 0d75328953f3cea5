//! The settlement chain as a nexosim model on the FL network's clock. [`ChainNode`] produces a
//! block every slot (self-scheduled) and receives each FL round the moment the coordinator closes
//! it, so commits, challenges, counters and payouts enter the mempool at the simulated time the
//! network produces them, and their inclusion, finality and fees happen while later rounds train.
//!
//! The chain's world state (revm, mempool, agents) lives in the model's environment, a
//! [`SharedSettler`] the driver also holds: nexosim saves only the model's slot bookkeeping and its
//! scheduled next block. A resumed run rebuilds the environment with [`Settler::replay`] over the
//! rounds the checkpoint saved (deterministic from the run's seed), then continues.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nexosim::model::{BuildContext, Context, Model, ProtoModel, schedulable};
use nexosim::ports::EventSource;
use nexosim::simulation::{EventId, Mailbox, SimInit};
use serde::{Deserialize, Serialize};
use sim::engine::{T0, secs};

use super::network::RoundRecord;
use super::settle::Settler;

/// Settlement state shared by the chain model and the driver that reads it between rounds.
pub type SharedSettler = Arc<Mutex<Settler>>;

/// Locks `s` (a poisoned lock still holds a consistent settler: handlers do not panic midway).
pub fn lock(s: &SharedSettler) -> MutexGuard<'_, Settler> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The chain node: blocks every slot while settlement runs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChainNode {}

#[Model(type Env = SharedSettler)]
impl ChainNode {
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>, env: &mut SharedSettler) {
        let t = lock(env).next_block_s();
        Self::schedule(t, cx);
    }

    fn schedule(t_s: f64, cx: &Context<Self>) {
        cx.schedule_event(T0 + secs(t_s), schedulable!(Self::block), ())
            .expect("the next block lies in the future");
    }

    /// Produces the block due now and schedules the next one while settlement runs.
    #[nexosim(schedulable)]
    async fn block(&mut self, _: (), cx: &Context<Self>, env: &mut SharedSettler) {
        let mut s = lock(env);
        s.block();
        if s.running() {
            Self::schedule(s.next_block_s(), cx);
        }
    }

    /// An FL round closed (input port): its rewards reach the settlement agents now.
    pub async fn round_closed(
        &mut self,
        rec: RoundRecord,
        _: &Context<Self>,
        env: &mut SharedSettler,
    ) {
        lock(env).round_closed(&rec);
    }

    /// Training ended at the given time, seconds (input port): the settlement horizon is set.
    pub async fn training_ended(&mut self, end_s: f64, _: &Context<Self>, env: &mut SharedSettler) {
        lock(env).training_ended(end_s);
    }
}

/// Builds a [`ChainNode`] around a shared settler.
struct Proto(SharedSettler);

impl ProtoModel for Proto {
    type Model = ChainNode;
    fn build(self, _: &mut BuildContext<Self>) -> (ChainNode, SharedSettler) {
        (ChainNode::default(), self.0)
    }
}

/// The driver's inputs to the chain node.
pub struct ChainPorts {
    /// A round closed.
    pub round: EventId<RoundRecord>,
    /// Training ended (time, seconds).
    pub ended: EventId<f64>,
    /// The settlement, for reading between rounds and at the end.
    pub settler: SharedSettler,
}

/// Adds the chain node `"chain"` over `settler` to bench `b`.
pub fn add(b: SimInit, settler: &SharedSettler) -> (SimInit, ChainPorts) {
    let mut b = b;
    let mb = Mailbox::new();
    let round = EventSource::new()
        .connect(ChainNode::round_closed, &mb)
        .register(&mut b);
    let ended = EventSource::new()
        .connect(ChainNode::training_ended, &mb)
        .register(&mut b);
    let b = b.add_model(Proto(settler.clone()), mb, "chain");
    (
        b,
        ChainPorts {
            round,
            ended,
            settler: settler.clone(),
        },
    )
}
