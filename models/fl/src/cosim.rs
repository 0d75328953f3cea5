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

#[cfg(test)]
mod tests {
    use sim::experiment::RunContext;

    use super::super::params::FlParams;
    use super::super::settle::{SettleReport, TxRecord, settle};
    use super::super::train_and_settle;

    fn params(settlement: serde_json::Value, chain: serde_json::Value) -> FlParams {
        serde_json::from_value(serde_json::json!({
            "participants": 12,
            "data": { "partition": "iid", "samples_median": 20, "test_per_client": 2 },
            "network": { "rounds": 5, "deadline_s": 60, "server_ingress_mbps": 100 },
            "settlement": settlement,
            "chain": chain,
        }))
        .unwrap()
    }

    /// What a transaction did on chain, comparable between runs.
    fn key(t: &TxRecord) -> (&'static str, u64, u64, u64, u64, u128, bool) {
        (
            t.label,
            t.gas,
            t.gas_limit,
            t.block,
            t.submitted_s.to_bits(),
            t.fee_wei,
            t.success,
        )
    }

    fn keys(r: &SettleReport) -> Vec<(&'static str, u64, u64, u64, u64, u128, bool)> {
        r.txs.iter().map(key).collect()
    }

    /// Nothing in these FL runs reacts to the chain, so the co-simulation must send, include and
    /// charge exactly what the replay of the finished run does (same revm gas, same blocks, same
    /// fees), disputes and redeem payouts included.
    #[test]
    fn cosim_equals_replay_when_the_network_does_not_react() {
        let chain = serde_json::json!({ "background_util": 0.5, "background_sd": 0.2, "congestion": [[100, 400]] });
        let cases = [
            serde_json::json!({ "protocol": "onchain" }),
            serde_json::json!({ "protocol": "commit-challenge", "commit_every": 2, "dishonest_prob": 0.6, "challenge_window_s": 600 }),
            serde_json::json!({ "protocol": "commit-proof", "commit_every": 2, "payout": "redeem-multi-shot" }),
        ];
        for (k, settlement) in cases.into_iter().enumerate() {
            let p = params(settlement, chain.clone());
            let ctx = RunContext::single(20 + k as u64);
            let (run, co) = train_and_settle(&p, &ctx, None).unwrap();
            let replay = settle(
                &p.settlement,
                &p.chain,
                &run,
                12,
                ctx.rng("fl/chain"),
                ctx.rng("fl/settle"),
            )
            .unwrap();
            assert!(co.settled && co.txs.len() > 6, "case {k}: {co:?}");
            assert_eq!(keys(&co), keys(&replay), "case {k}");
            assert_eq!(co.blocks, replay.blocks, "case {k}");
            assert_eq!(
                co.finality_s
                    .iter()
                    .map(|f| f.to_bits())
                    .collect::<Vec<_>>(),
                replay
                    .finality_s
                    .iter()
                    .map(|f| f.to_bits())
                    .collect::<Vec<_>>()
            );
            assert_eq!(co.reward_delays.paid_s, replay.reward_delays.paid_s);
            assert_eq!(co.paid_wei, replay.paid_wei);
        }
    }

    /// A wrong root committed after round k is challenged and the bond slashed while round k + 1
    /// (or a later one) still trains: the dispute happens on the same clock as the rounds.
    #[test]
    fn a_challenge_lands_while_later_rounds_train() {
        let p = params(
            serde_json::json!({ "protocol": "commit-challenge", "dishonest_prob": 0.9, "watcher_delay_s": 5 }),
            serde_json::json!({}),
        );
        let (run, rep) = train_and_settle(&p, &RunContext::single(3), None).unwrap();
        let during = rep
            .txs
            .iter()
            .filter(|t| t.label == "challenge" && t.success)
            .find_map(|t| {
                run.rounds
                    .iter()
                    .position(|r| r.open_s < t.t_s && t.t_s < r.close_s)
                    .map(|k| (t.t_s, k))
            });
        let (t, k) =
            during.unwrap_or_else(|| panic!("no challenge during training: {:?}", rep.txs));
        assert!(k >= 1, "round {k} trains at the challenge (t = {t} s)");
        assert!(rep.disputes_won >= 1 && rep.fraud_finalized == 0);
    }

    /// Full blocks from the first round on hold the owner's commits back; participants are paid
    /// later than on a calm chain, for the same gas.
    #[test]
    fn congestion_delays_finality_and_rewards() {
        let s = serde_json::json!({ "protocol": "onchain" });
        let run = |chain| {
            train_and_settle(&params(s.clone(), chain), &RunContext::single(4), None)
                .unwrap()
                .1
        };
        let calm = run(serde_json::json!({}));
        let busy = run(serde_json::json!({ "congestion": [[0, 400]] }));
        assert!(busy.delayed_txs > 0 && calm.delayed_txs == 0);
        assert!(
            busy.finality_s[0] > calm.finality_s[0] + 200.0,
            "{:?} vs {:?}",
            busy.finality_s,
            calm.finality_s
        );
        assert!(busy.reward_delays.mean_s() > calm.reward_delays.mean_s());
        assert_eq!(busy.reward_delays.unpaid, 0);
        assert_eq!(busy.total_gas(), calm.total_gas());
    }

    /// With the feedback on, each round after an epoch opens only once that epoch's commitment
    /// is included, so the congestion that holds commitments back stretches training; without
    /// it, rounds run ahead of their commitments.
    #[test]
    fn a_waiting_coordinator_opens_rounds_after_their_commitments() {
        let chain = serde_json::json!({ "congestion": [[0, 400]] });
        let run = |wait: f64| {
            let s =
                serde_json::json!({ "protocol": "commit-challenge", "commit_wait_max_s": wait });
            train_and_settle(&params(s, chain.clone()), &RunContext::single(5), None).unwrap()
        };
        let commits = |rep: &SettleReport| -> Vec<f64> {
            rep.txs
                .iter()
                .filter(|t| t.label == "commit" && t.success)
                .map(|t| t.t_s)
                .collect()
        };
        let (free, free_rep) = run(0.0);
        let (held, held_rep) = run(3600.0);
        let (c_free, c_held) = (commits(&free_rep), commits(&held_rep));
        assert!(held_rep.settled && c_held.len() == 5);
        for k in 1..held.rounds.len() {
            assert!(
                held.rounds[k].open_s >= c_held[k - 1],
                "round {k} opened at {} before commit {} at {}",
                held.rounds[k].open_s,
                k - 1,
                c_held[k - 1]
            );
        }
        assert!((1..free.rounds.len()).any(|k| free.rounds[k].open_s < c_free[k - 1]));
        assert!(held.end_s() > free.end_s() + 100.0);
    }
}
