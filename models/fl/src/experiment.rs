//! Bench of the `fl` family: the FL network trains for real (logistic regression, FedAvg), then its
//! per-round contribution scores are settled on the simulated chain with the chosen protocol.
//!
//! The nexosim bench of the network ([`run_network`]):
//!
//! ```text
//!   start (source) ─► start ┌───────────┐ upload → send ┌────────────────┐
//!                           │  Clients  ├──────────────►│      Link      │
//!                           │ "clients" │               │   "ingress"    │
//!                           └───────────┘               └───────┬────────┘
//!                                                               │ delivered → delivered
//!                                                               ▼
//!   open (source) ─────────────────────────────► open ┌────────────────┐ arrival
//!                                                     │  Coordinator   ├───────► Arrival queue
//!                                                     │ "coordinator"  ├───────► RoundClosed
//!                                                     └────────────────┘ closed    queue
//! ```
//!
//! Each round the driver sends the planned uploads through `start`, opens the round through `open`
//! and steps the engine until the coordinator reports `closed` (all arrived or the deadline); the
//! on-time arrivals then train, aggregate (FedAvg) and are scored outside the engine. Settlement
//! runs in the same bench ([`super::cosim`]): a chain node produces a block every slot, receives
//! each round when it closes, and executes the agents' transactions in revm as they are included.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sim::checkpoint::Checkpointer;
use sim::experiment::{Experiment, RunContext, RunError, RunOutput};
use sim::rng::Rng;

use super::cosim::{self, SharedSettler};
use super::data::{Federated, Shard, SyntheticSpec, dirichlet_split, synthetic};
use super::logreg::{LogRegTrainer, Sgd};
use super::network::{NetworkRngs, NetworkRun, Plugins, run_network_saved};
use super::params::{CircuitParams, DataParams, FlParams, Partition};
use super::redeem;
use super::settle::{SettleReport, Settler};
use super::timeline;
use super::traits::{FedAvg, NoAdversary};
use super::zk::circuits::{Kind, sample, synthesize};
use super::zk::{Keys, count};

/// Contract functions reported in the per-call gas breakdown (every protocol reports all of them).
pub const CALLS: [&str; 8] = [
    "new_job",
    "commit",
    "challenge",
    "counter",
    "reward_init",
    "reward_pay_multi",
    "redeem_one_shot",
    "redeem_multi_shot",
];

/// The SettleFL experiment.
pub struct FlExperiment;

/// Generates the federated data set of `p` for `n` participants.
pub fn build_data(p: &DataParams, n: usize, rng: &mut Rng) -> Federated {
    let spec = SyntheticSpec {
        alpha: p.alpha,
        beta: p.beta,
        clients: n,
        dim: p.dim as usize,
        classes: p.classes as usize,
        samples_median: p.samples_median,
        samples_sigma: p.samples_sigma,
        test_per_client: p.test_per_client as usize,
        iid: p.partition != Partition::Synthetic,
    };
    let mut fed = synthetic(&spec, rng);
    if p.partition == Partition::Dirichlet {
        let pool = Shard::concat(&fed.shards);
        fed.shards = dirichlet_split(&pool, fed.classes, n, p.dirichlet_alpha, rng);
    }
    fed
}

/// Runs the FL network of `p` (FedAvg, honest participants), saved through `ckpt` when given,
/// with the settlement chain `settler` co-simulated on its clock when given.
pub fn train(
    p: &FlParams,
    ctx: &RunContext,
    ckpt: Option<&Checkpointer>,
    settler: Option<&SharedSettler>,
) -> Result<NetworkRun, RunError> {
    let n = p.participants as usize;
    let mut trainer = LogRegTrainer {
        data: build_data(&p.data, n, &mut ctx.rng("fl/data")),
        sgd: Sgd {
            lr: p.train.lr as f32,
            epochs: p.train.epochs,
            batch: p.train.batch as usize,
        },
    };
    let devices = p.devices.profiles(n, &mut ctx.rng("fl/devices"))?;
    let mut rngs = NetworkRngs::from_ctx(ctx);
    run_network_saved(
        &p.network,
        &devices,
        Plugins {
            trainer: &mut trainer,
            aggregator: &mut FedAvg,
            adversary: &mut NoAdversary,
        },
        &mut rngs,
        &mut |_, _, _| Ok(()),
        ckpt,
        settler,
    )
}

/// The network of `p` trained with its settlement co-simulated: the rounds and the settlement
/// report (the chain streams `fl/chain` and `fl/settle`).
pub fn train_and_settle(
    p: &FlParams,
    ctx: &RunContext,
    ckpt: Option<&Checkpointer>,
) -> Result<(NetworkRun, SettleReport), RunError> {
    let settler = Settler::new(
        &p.settlement,
        &p.chain,
        p.participants as usize,
        p.network.rounds as usize,
        ctx.rng("fl/chain"),
        ctx.rng("fl/settle"),
    )?;
    let shared: SharedSettler = Arc::new(Mutex::new(settler));
    let run = train(p, ctx, ckpt, Some(&shared))?;
    let rep = cosim::lock(&shared).finish();
    Ok((run, rep))
}

fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn export(p: &FlParams, run: &NetworkRun, rep: &SettleReport, out: &mut RunOutput) {
    let n = f64::from(p.participants);
    let rounds = run.rounds.len().max(1) as f64;
    let last = run.rounds.last().map(|r| r.eval).unwrap_or_default();
    out.metric("participants_count", n)
        .metric("rounds", run.rounds.len() as f64)
        .metric("accuracy_initial", run.initial.accuracy)
        .metric("accuracy_final", last.accuracy)
        .metric("loss_final", last.loss)
        .metric("dropouts", run.dropouts() as f64)
        .metric("late_uploads", run.late_uploads() as f64)
        .metric(
            "offline",
            run.rounds.iter().map(|r| r.offline).sum::<usize>() as f64,
        )
        .metric(
            "aggregated_updates",
            run.rounds.iter().map(|r| r.on_time.len()).sum::<usize>() as f64,
        )
        .metric(
            "round_s_mean",
            run.rounds.iter().map(|r| r.close_s - r.open_s).sum::<f64>() / rounds,
        )
        .metric("fl_end_s", run.end_s())
        .metric(
            "coordinator_wait_s",
            run.rounds
                .windows(2)
                .map(|w| (w[1].open_s - w[0].close_s - p.network.aggregation_s).max(0.0))
                .sum::<f64>(),
        );
    let total = rep.total_gas() as f64;
    // Rounds never finalized (settlement cut off at the horizon) have no finality time.
    let fin: Vec<f64> = rep
        .finality_s
        .iter()
        .copied()
        .filter(|f| f.is_finite())
        .collect();
    let by = rep.by_label();
    for c in CALLS {
        let (k, g) = by.get(c).copied().unwrap_or((0, 0));
        out.metric(format!("gas_{c}"), g as f64)
            .metric(format!("calls_{c}"), k as f64);
    }
    let round_gas = by.get("commit").map_or(0, |x| x.1) + by.get("counter").map_or(0, |x| x.1);
    let fees_eth = rep.fees_wei() as f64 / 1e18;
    let cost_eth = total * p.gas_price_gwei * 1e-9;
    out.metric("total_gas", total)
        .metric("gas_per_participant", total / n)
        .metric("round_gas_mean", round_gas as f64 / rounds)
        .metric("deploy_gas", rep.deploy_gas as f64)
        .metric(
            "reverted_txs",
            rep.txs.iter().filter(|t| !t.success).count() as f64,
        )
        .metric("fees_eth", fees_eth)
        .metric("cost_eth", cost_eth)
        .metric("cost_usd", cost_eth * p.eth_usd)
        .metric("cost_usd_per_participant", cost_eth * p.eth_usd / n)
        .metric("friction_pct", 100.0 * fees_eth / p.settlement.budget_eth)
        .metric(
            "finality_s_mean",
            fin.iter().sum::<f64>() / fin.len().max(1) as f64,
        )
        .metric("finality_s_p50", percentile(&fin, 0.5))
        .metric("finality_s_max", percentile(&fin, 1.0))
        .metric("rounds_final_frac", fin.len() as f64 / rounds)
        .metric("owner_fees_eth", rep.owner_fees_wei() as f64 / 1e18)
        .metric("settle_delay_s", rep.end_s - run.end_s())
        .metric("settled", f64::from(u8::from(rep.settled)))
        .metric(
            "settled_frac",
            rep.paid_wei as f64 / (rep.owed_wei as f64).max(1.0),
        )
        .metric("unsettled_tx", rep.unsettled_tx as f64)
        .metric("priced_out_blocks", rep.priced_out_blocks as f64)
        .metric(
            "base_fee_gwei_max",
            rep.txs.iter().map(|t| t.base_fee_wei).max().unwrap_or(0) as f64 / 1e9,
        )
        .metric("wrong_roots", rep.wrong_roots as f64)
        .metric("wrong_roots_superseded", rep.wrong_roots_superseded as f64)
        .metric("failed_payouts", rep.failed_payouts as f64)
        .metric("disputes_raised", rep.disputes_raised as f64)
        .metric("disputes_won", rep.disputes_won as f64)
        .metric("slashed_eth", rep.slashed_wei as f64 / 1e18)
        .metric("fraud_finalized", rep.fraud_finalized as f64)
        .metric("rejected_proofs", rep.rejected_proofs as f64)
        .metric("prover_s_total", rep.prover_s)
        .metric("commit_constraints", rep.commit_constraints as f64)
        .metric("redeem_constraints", rep.redeem_constraints as f64)
        .metric("redeem_prover_s", rep.redeem_prover_s)
        .metric("real_circuits", f64::from(u8::from(rep.real_circuits)))
        .metric("real_proofs_ok", rep.real_proofs_ok as f64)
        .metric("full_blocks", rep.full_blocks as f64)
        .metric("delayed_txs", rep.delayed_txs as f64)
        .metric("paid_eth", rep.paid_wei as f64 / 1e18)
        .metric("settle_end_s", rep.end_s);
    // NaN when no reward was paid (settlement cut off at the horizon).
    let d = &rep.reward_delays;
    let q = |q: f64| {
        if d.paid_s.is_empty() {
            f64::NAN
        } else {
            percentile(&d.paid_s, q)
        }
    };
    out.metric("reward_delay_s_mean", d.mean_s())
        .metric("reward_delay_s_p50", q(0.5))
        .metric("reward_delay_s_max", q(1.0))
        .metric("rewards_unpaid", d.unpaid as f64);
    for r in &run.rounds {
        out.sample(r.close_s, "fl", "accuracy", r.eval.accuracy);
        out.sample(r.close_s, "fl", "late_uploads", r.late as f64);
        out.sample(r.close_s, "fl", "dropouts", r.dropped.len() as f64);
        let f = rep.finality_s[r.round as usize];
        if f.is_finite() {
            out.sample(r.close_s, "settle", "finality_s", f);
        }
        let d = rep.reward_delays.round_mean_s[r.round as usize];
        if d.is_finite() {
            out.sample(r.close_s, "settle", "reward_delay_s", d);
        }
    }
    for b in &rep.blocks {
        out.sample(b.t_s, "chain", "base_fee_gwei", b.base_fee_wei as f64 / 1e9);
        out.sample(b.t_s, "chain", "settlement_gas", b.settlement_gas as f64);
    }
}

/// Constraint counts of SettleFL's circuits (synthesized, not typed in) and the redeem gas measured
/// in revm, as metrics `constraints_<circuit>`, `circuits_satisfied`, `redeem_gas_*`.
fn export_circuits(c: &CircuitParams, seed: u64, out: &mut RunOutput) -> Result<(), RunError> {
    let mut satisfied = true;
    for kind in Kind::ALL {
        let circuit = sample(kind, c.participants as usize, c.rounds as usize);
        let (n, ok) = synthesize(circuit).map_err(|e| RunError::Model(format!("{kind:?}: {e}")))?;
        satisfied &= ok;
        out.metric(format!("constraints_{}", kind.name()), n as f64);
    }
    let g = redeem::measure(
        c.redeem_participants as usize,
        c.redeem_rounds as usize,
        seed,
    )
    .map_err(|e| RunError::Model(e.to_string()))?;
    prover_time(&c.prover_sizes, out)?;
    out.metric("circuits_satisfied", f64::from(u8::from(satisfied)))
        .metric("redeem_gas_one_shot", g.one_shot)
        .metric("redeem_gas_multi_shot", g.multi_shot_per_participant)
        .metric("redeem_gas_multi_shot_call", g.multi_shot_per_call)
        .metric("redeem_deploy_gas", g.deploy as f64)
        .metric("redeem_all_paid", f64::from(u8::from(g.all_paid)));
    Ok(())
}

/// CPU time of the calling thread, seconds (Linux `/proc/thread-self/schedstat`, ns on the CPU);
/// `None` where that file does not exist.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Times Groth16 proving (single-threaded arkworks, after setup) of the Commit circuit at
/// P = `sizes` × T = 2 on this machine and fits t = a + b·constraints by least squares over the
/// sizes: metrics `prover_constraints_p<P>`, `prover_wall_s_p<P>`, `prover_cpu_s_p<P>` (the
/// proving thread's CPU time, which a loaded machine does not inflate; the fit uses it, or wall
/// time where it cannot be read), `prover_us_per_constraint_fit` (b) and `prover_fixed_s_fit` (a).
fn prover_time(sizes: &[u32], out: &mut RunOutput) -> Result<(), RunError> {
    let mut pts = Vec::new();
    for &p in sizes {
        let circuit = sample(Kind::Commit, p as usize, 2);
        let inputs = circuit.public_inputs();
        let n = count::constraints(Kind::Commit, p as usize, 2).expect("counted kind") as f64;
        let keys = Keys::setup(circuit.clone(), u64::from(p))
            .map_err(|e| RunError::Model(format!("setup: {e}")))?;
        let (t0, c0) = (Instant::now(), thread_cpu_s());
        let (_, ok) = keys
            .prove(circuit, &inputs, 1)
            .map_err(|e| RunError::Model(format!("prover: {e}")))?;
        let wall_s = t0.elapsed().as_secs_f64();
        let cpu_s = c0.zip(thread_cpu_s()).map(|(a, b)| b - a);
        if !ok {
            return Err(RunError::Model(format!(
                "Commit proof at P = {p} did not verify"
            )));
        }
        out.metric(format!("prover_constraints_p{p}"), n)
            .metric(format!("prover_wall_s_p{p}"), wall_s);
        if let Some(c) = cpu_s {
            out.metric(format!("prover_cpu_s_p{p}"), c);
        }
        pts.push((n, cpu_s.unwrap_or(wall_s)));
    }
    if pts.len() >= 2 {
        let k = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        if sxx > 0.0 {
            let b = sxy / sxx;
            out.metric("prover_us_per_constraint_fit", 1e6 * b)
                .metric("prover_fixed_s_fit", my - b * mx);
        }
    }
    Ok(())
}

impl Experiment for FlExperiment {
    type Params = FlParams;
    const NAME: &'static str = "fl";
    const DESCRIPTION: &'static str = "Federated learning (real local training, FedAvg) with SettleFL reward settlement: onchain, commit-challenge, commit-proof; gas measured in revm";

    /// Memory: each participant's f32 samples (lognormal sizes: mean = median · e^{σ²/2}) and its
    /// f64 logistic-regression model and update (`dim · classes` weights). Work: ≈ 6 operations per
    /// weight, sample and epoch for each participating client and round, and ≈ 10⁵ EVM steps per
    /// participant and round for settlement (an estimate from the measured gas of one commit).
    fn estimate(&self, p: &FlParams) -> sim::estimate::ResourceEstimate {
        let d = &p.data;
        let samples = d.samples_median * (d.samples_sigma * d.samples_sigma / 2.0).exp()
            + f64::from(d.test_per_client);
        let participants = f64::from(p.participants);
        let weights = f64::from(d.dim) * f64::from(d.classes);
        let rounds = f64::from(p.network.rounds);
        sim::estimate::ResourceEstimate::default()
            .memory_product(
                4.0 * f64::from(d.dim),
                &[
                    ("participants", participants),
                    ("data.samples_median", samples),
                ],
            )
            .memory_product(
                16.0,
                &[("participants", participants), ("data.dim", weights)],
            )
            .work_product(
                6.0 * p.network.participation,
                &[
                    ("network.rounds", rounds),
                    ("participants", participants),
                    ("train.epochs", f64::from(p.train.epochs)),
                    ("data.samples_median", samples),
                    ("data.dim", weights),
                ],
            )
            .work_product(
                1e5,
                &[("network.rounds", rounds), ("participants", participants)],
            )
    }

    fn run(&self, p: &FlParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        run_with(p, ctx, None)
    }

    const CHECKPOINTS: bool = true;

    /// Saves the network's rounds and the chain node's schedule; the chain's world state (revm)
    /// is replayed from the saved rounds and the circuit measurements are recomputed on resume.
    fn run_checkpointed(
        &self,
        p: &FlParams,
        ctx: &RunContext,
        ckpt: &Checkpointer,
    ) -> Result<RunOutput, RunError> {
        run_with(p, ctx, Some(ckpt))
    }
}

/// One run of `p`, its network rounds saved through `ckpt` when given.
fn run_with(
    p: &FlParams,
    ctx: &RunContext,
    ckpt: Option<&Checkpointer>,
) -> Result<RunOutput, RunError> {
    let (run, rep) = train_and_settle(p, ctx, ckpt)?;
    let mut out = RunOutput::default();
    export(p, &run, &rep, &mut out);
    if let Some(c) = &p.circuits {
        export_circuits(c, ctx.seed, &mut out)?;
    }
    out.trace = ctx.tracer();
    timeline::network(&run, p.network.aggregation_s, "fl", &mut out.trace);
    timeline::chain(&rep, p.chain.slot_s, &mut out.trace);
    Ok(out)
}
