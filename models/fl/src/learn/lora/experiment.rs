//! `fl-lora`: pretrain a base MLP on a source task, then fine-tune LoRA adapters federatedly on a
//! shifted, label-skewed target task under one aggregation rule (and optionally its baselines on the
//! very same data, devices and seeds). Rounds run through the FL network ([`run_network`]): every
//! round has simulated time (check-in, download of the method's model, local FLOPs, upload over the
//! shared ingress link, deadline).
//!
//! The nexosim bench is the FL network's ([`run_network`]); the plug-ins are plain Rust, called by
//! the round driver outside the engine:
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
//! Each round: uploads planned → `start`, round opened → `open`, engine stepped until `closed`;
//! then the plug-ins process the on-time clients: [`LoraTrainer`] trains their adapters,
//! [`LoraAggregator`] applies the LoRA rule (no adversary), and the trainer evaluates the new
//! global model.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sim::experiment::{Experiment, RunContext, RunError, RunOutput};

use super::adapter;
use super::aggregate::LoraMethod;
use super::params::{Holdout, LoraData, LoraParams, SyntheticData};
use super::plugins::{LoraAggregator, LoraTrainer};
use super::text;
use crate::devices::DeviceProfile;
use crate::learn::common::{model_err, rounds_to};
use crate::learn::net;
use crate::learn::nn::{self, Weights};
use crate::learn::task::{Dataset, Prototypes, dirichlet_label_skew};
use crate::network::{NetworkRun, Plugins, run_network};
use crate::traits::NoAdversary;

/// The FedMomentum study.
pub struct LoraExperiment;

/// Data, pretrained base and devices shared by every method of one run.
struct Setup {
    base: Weights,
    clients: Vec<Dataset>,
    test: Dataset,
    devices: Vec<DeviceProfile>,
    /// Text task only: whether the turns and the encoder are the real ones.
    real_data: Option<bool>,
}

/// What one aggregation rule achieved.
struct Outcome {
    run: NetworkRun,
    curve: Vec<f64>,
    /// Floats uploaded per round (all uploads, on time or late).
    uplink_floats: Vec<usize>,
    /// Floats downloaded per round (the aggregate broadcast to every client).
    downlink_floats: Vec<usize>,
    lost_norm: f64,
    /// Mean over rounds and layers of the numerical rank of `Σ pᵢBᵢAᵢ`.
    update_rank: f64,
    /// Mean over rounds and layers of the share of `‖Σ pᵢBᵢAᵢ‖²` beyond rank r.
    tail_energy: f64,
    /// Mean over rounds and layers of that tail as a share of the round's update.
    update_tail_energy: f64,
    /// Largest step gain `‖B‖₂² + ‖A‖₂²` of a published adapter.
    step_gain_max: f64,
    /// Aggregation round of divergence, if the run diverged.
    diverged_round: Option<usize>,
}

fn setup(p: &LoraParams, ctx: &RunContext) -> Result<Setup, RunError> {
    let (pre, clients, test, real_data) = match &p.data {
        LoraData::Synthetic(d) => {
            let (pre, clients, test) = synthetic_tasks(d, p, ctx);
            (pre, clients, test, None)
        }
        LoraData::ShareGpt(t) => {
            let corpus = text::corpus(t.tokens).map_err(RunError::Model)?;
            let clients =
                corpus.clients(p.clients, p.dirichlet_alpha, &mut ctx.rng("fl-lora/data"));
            let held_out = match t.evaluate_on {
                Holdout::Test => corpus.test(),
                Holdout::Validation => corpus.validation(),
            };
            (corpus.pretrain(), clients, held_out, Some(corpus.real))
        }
    };
    let base = pretrained(p, ctx, &pre)?;
    let devices = p
        .devices
        .profiles(p.clients, &mut ctx.rng("fl-lora/devices"))?;
    Ok(Setup {
        base,
        clients,
        test,
        devices,
        real_data,
    })
}

/// Pretrained base models of this process, by run seed and the params pretraining reads.
type PretrainMemo = HashMap<(u64, String), Weights>;

/// Entries kept before the memo starts over (each is one small head).
const PRETRAIN_MEMO_ENTRIES: usize = 64;

/// The base model: initialised and pretrained on `pre` from the stream `fl-lora/init`. Memoised
/// per process: under common random numbers the methods (and ranks, learning rates) of one
/// replication share the seed and every param pretraining reads (`data`, `hidden`, `pretrain`),
/// so they would train the identical model; it is trained once (exact: same seed, stream, data).
fn pretrained(p: &LoraParams, ctx: &RunContext, pre: &Dataset) -> Result<Weights, RunError> {
    static MEMO: OnceLock<Mutex<PretrainMemo>> = OnceLock::new();
    let reads = serde_json::json!([p.data, p.hidden, p.pretrain]);
    let key = (ctx.seed, reads.to_string());
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hit) = memo.lock().map_err(model_err)?.get(&key) {
        return Ok(hit.clone());
    }
    let (dim, classes) = p.data.shape();
    let mut widths = vec![dim];
    widths.extend(&p.hidden);
    widths.push(classes);
    let mut init_rng = ctx.rng("fl-lora/init");
    let w0 = Weights::init(&widths, &mut init_rng);
    let (e, b, lr) = p.pretrain.tuple();
    let base = nn::train(&w0, pre, e, b, lr, &mut init_rng).map_err(model_err)?;
    let mut m = memo.lock().map_err(model_err)?;
    if m.len() >= PRETRAIN_MEMO_ENTRIES {
        m.clear();
    }
    m.insert(key, base.clone());
    Ok(base)
}

/// Pretraining set, client sets and test set of the synthetic tasks.
fn synthetic_tasks(
    d: &SyntheticData,
    p: &LoraParams,
    ctx: &RunContext,
) -> (Dataset, Vec<Dataset>, Dataset) {
    let mut rng = ctx.rng("fl-lora/task");
    let source = Prototypes::new(d.task, &mut rng);
    let target = source.shifted(d.target_shift, &mut rng);
    let uniform = vec![1.0; d.task.classes];
    let pre = source.sample(d.pretrain_samples, &uniform, &mut rng);
    let mut data_rng = ctx.rng("fl-lora/data");
    let skew = dirichlet_label_skew(p.clients, d.task.classes, p.dirichlet_alpha, &mut data_rng);
    let clients = skew
        .iter()
        .map(|w| target.sample(d.samples_per_client, w, &mut data_rng))
        .collect();
    let test = target.sample(d.test_samples, &uniform, &mut data_rng);
    (pre, clients, test)
}

fn run_method(
    method: LoraMethod,
    p: &LoraParams,
    s: &Setup,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<Outcome, RunError> {
    let init = adapter::init_adapters(&s.base, p.rank, &mut ctx.rng("fl-lora/adapters"));
    let rngs = (0..p.clients)
        .map(|k| ctx.rng(&format!("fl-lora/client/{k}")))
        .collect();
    let mut trainer = LoraTrainer::new(
        method,
        (s.base.clone(), init.clone()),
        (&s.clients, &s.test),
        (p.local, p.optimizer),
        rngs,
    );
    let mut aggregator = LoraAggregator::new(method, s.base.clone(), init);
    let run = run_network(
        &p.network,
        &s.devices,
        Plugins {
            trainer: &mut trainer,
            aggregator: &mut aggregator,
            adversary: &mut NoAdversary,
        },
        &mut net::rngs(ctx, "fl-lora", "fl-lora/aggregate"),
        &mut |_, _, _| Ok(()),
    )?;
    crate::timeline::network(&run, p.network.aggregation_s, method.name(), &mut out.trace);
    let curve = net::accuracy_curve(&run);
    net::sample_curve(out, &run, method.name(), "accuracy", &curve);
    let up = trainer.uplink_floats();
    // A round without on-time update publishes nothing new: no aggregate download recorded.
    let mut published = aggregator.downlink_floats.into_iter();
    let downlink_floats = run
        .rounds
        .iter()
        .map(|r| {
            if r.on_time.is_empty() {
                0
            } else {
                published.next().unwrap_or(0) * p.clients
            }
        })
        .collect();
    Ok(Outcome {
        uplink_floats: run
            .rounds
            .iter()
            .map(|r| up * (r.on_time.len() + r.late))
            .collect(),
        downlink_floats,
        lost_norm: aggregator.lost_norm,
        update_rank: aggregator.update_rank_sum / aggregator.layer_aggregates.max(1) as f64,
        tail_energy: aggregator.tail_energy_sum / aggregator.layer_aggregates.max(1) as f64,
        update_tail_energy: aggregator.update_tail_energy_sum
            / aggregator.layer_aggregates.max(1) as f64,
        step_gain_max: aggregator.step_gain_max,
        diverged_round: aggregator.diverged_round,
        curve,
        run,
    })
}

/// The aggregation round in which the run diverged; `rounds + 1` (censored) when it did not.
fn diverged_round(o: &Outcome, rounds: usize) -> f64 {
    o.diverged_round.unwrap_or(rounds + 1) as f64
}

impl Experiment for LoraExperiment {
    type Params = LoraParams;
    const NAME: &'static str = "fl-lora";
    const DESCRIPTION: &'static str = "Federated LoRA fine-tuning: FedIT, FFA-LoRA, FLoRA, FlexLoRA and FedMomentum (SVD + residual merge) on a non-IID task";
    const NO_CHECKPOINTS_WHY: &'static str = "its rounds carry learning state across rounds (candle models and optimisers, the study's plug-in state) that is not serialised; an interrupted sweep resumes run by run with --resume";

    /// The MLP estimate of `learn::common` (pretraining is a fraction of one round's work; the
    /// real-text embeddings are computed once per process and not counted per run).
    fn estimate(&self, p: &LoraParams) -> sim::estimate::ResourceEstimate {
        let (task, samples_per_client, other_samples) = match &p.data {
            LoraData::Synthetic(d) => (
                d.task,
                d.samples_per_client,
                d.test_samples + d.pretrain_samples,
            ),
            LoraData::ShareGpt(_) => {
                let (dim, classes) = p.data.shape();
                let task = crate::learn::task::TaskShape {
                    dim,
                    classes,
                    modes: 1,
                    separation: 1.0,
                    noise: 1.0,
                };
                let turns = text::TURNS_UPPER_BOUND;
                (task, turns.div_ceil(p.clients.max(1)), turns)
            }
        };
        crate::learn::common::mlp_estimate(&crate::learn::common::MlpRun {
            clients: p.clients,
            task: &task,
            hidden: &p.hidden,
            samples_per_client,
            other_samples,
            network: &p.network,
            local: &p.local,
            methods: 1 + p.baselines.len(),
        })
    }

    fn run(&self, p: &LoraParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx)?;
        let mut out = RunOutput {
            trace: ctx.tracer(),
            ..RunOutput::default()
        };
        let pre = nn::accuracy(&s.base, &s.test).map_err(model_err)?;
        let o = run_method(p.method, p, &s, ctx, &mut out)?;
        let rounds = p.network.rounds as usize;
        let last = *o.curve.last().unwrap_or(&pre);
        let best = o.curve.iter().copied().fold(pre, f64::max);
        let reached = rounds_to(&o.curve, p.target_accuracy);
        let bytes = |v: &[usize], n: usize| 4.0 * v.iter().take(n).sum::<usize>() as f64;
        let to_target = (reached as usize).min(rounds);
        out.metric("pretrained_accuracy", pre)
            .metric("final_accuracy", last)
            .metric("best_accuracy", best)
            .metric("rounds_to_target", reached)
            .metric("uplink_bytes", bytes(&o.uplink_floats, rounds))
            .metric("downlink_bytes", bytes(&o.downlink_floats, rounds))
            .metric(
                "comm_bytes",
                bytes(&o.uplink_floats, rounds) + bytes(&o.downlink_floats, rounds),
            )
            .metric(
                "comm_bytes_to_target",
                bytes(&o.uplink_floats, to_target) + bytes(&o.downlink_floats, to_target),
            )
            .metric("lost_norm_per_round", o.lost_norm / rounds as f64)
            .metric("update_rank", o.update_rank)
            .metric("tail_energy", o.tail_energy)
            .metric("update_tail_energy", o.update_tail_energy)
            .metric("step_gain_max", o.step_gain_max)
            .metric("diverged", f64::from(u8::from(o.diverged_round.is_some())))
            .metric("diverged_round", diverged_round(&o, rounds))
            .metric(
                "client_examples",
                s.clients.iter().map(Dataset::len).sum::<usize>() as f64,
            )
            .metric("test_examples", s.test.len() as f64)
            .metric(
                "time_to_target_s",
                net::time_to(&o.run, &o.curve, p.target_accuracy),
            );
        if let Some(real) = s.real_data {
            out.metric("real_data", f64::from(u8::from(real)));
        }
        net::network_metrics(&mut out, &o.run, "");
        if !p.baselines.is_empty() {
            let mut best_base_acc = f64::NEG_INFINITY;
            let mut best_base_rounds = f64::INFINITY;
            for &b in &p.baselines {
                let ob = run_method(b, p, &s, ctx, &mut out)?;
                let acc = *ob.curve.last().unwrap_or(&pre);
                let r = rounds_to(&ob.curve, p.target_accuracy);
                let key = b.name().replace('-', "_");
                out.metric(format!("final_accuracy_{key}"), acc)
                    .metric(format!("rounds_to_target_{key}"), r)
                    .metric(
                        format!("time_to_target_s_{key}"),
                        net::time_to(&ob.run, &ob.curve, p.target_accuracy),
                    )
                    .metric(format!("wall_s_{key}"), ob.run.end_s())
                    .metric(format!("diverged_round_{key}"), diverged_round(&ob, rounds));
                best_base_acc = best_base_acc.max(acc);
                best_base_rounds = best_base_rounds.min(r);
            }
            out.metric(
                "final_accuracy_gain_vs_best_baseline_pts",
                100.0 * (last - best_base_acc),
            )
            .metric(
                "rounds_change_vs_best_baseline_pct",
                100.0 * (reached / best_base_rounds - 1.0),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceMix;
    use crate::learn::common::Sgd;
    use crate::learn::lora::params::LocalOptimizer;
    use crate::learn::task::TaskShape;

    fn params() -> LoraParams {
        LoraParams {
            method: LoraMethod::FedMomentum,
            baselines: vec![LoraMethod::FLora],
            clients: 4,
            network: crate::learn::net::on_time_network(3),
            devices: DeviceMix::reliable(),
            rank: 2,
            data: LoraData::Synthetic(SyntheticData {
                task: TaskShape {
                    dim: 8,
                    classes: 4,
                    modes: 1,
                    separation: 1.0,
                    noise: 0.8,
                },
                target_shift: 1.5,
                samples_per_client: 40,
                test_samples: 100,
                pretrain_samples: 200,
            }),
            hidden: vec![16],
            dirichlet_alpha: 0.5,
            pretrain: Sgd {
                epochs: 3,
                batch: 20,
                lr: 0.1,
            },
            local: Sgd {
                epochs: 1,
                batch: 10,
                lr: 0.1,
            },
            optimizer: LocalOptimizer::Sgd,
            target_accuracy: 0.9,
        }
    }

    fn by_round(out: &RunOutput) -> Vec<(String, f64, f64)> {
        out.series
            .iter()
            .filter(|s| s.metric == "accuracy_by_round")
            .map(|s| (s.component.clone(), s.t_s, s.value))
            .collect()
    }

    #[test]
    fn divergence_is_a_result_not_a_failed_run() {
        let mut p = params();
        p.baselines.clear();
        let calm = LoraExperiment.run(&p, &RunContext::single(3)).unwrap();
        assert_eq!(calm.get("diverged").unwrap(), 0.0);
        assert_eq!(
            calm.get("diverged_round").unwrap(),
            4.0,
            "censored: rounds + 1"
        );
        // SGD at lr 1e4 on FlexLoRA's unbalanced factors overflows to NaN: the server keeps its
        // last finite model, so the run ends with a finite accuracy.
        p.method = LoraMethod::FlexLora;
        p.local.lr = 1e4;
        let wild = LoraExperiment.run(&p, &RunContext::single(3)).unwrap();
        assert_eq!(wild.get("diverged").unwrap(), 1.0);
        let round = wild.get("diverged_round").unwrap();
        assert!((1.0..=3.0).contains(&round), "{round}");
        let acc = wild.get("final_accuracy").unwrap();
        assert!(acc.is_finite() && (0.0..=1.0).contains(&acc));
        assert!(wild.get("step_gain_max").unwrap() >= 0.0);
    }

    #[test]
    fn network_speed_changes_time_not_learning() {
        let p = params();
        let fast = LoraExperiment.run(&p, &RunContext::single(7)).unwrap();
        assert_eq!(
            fast,
            LoraExperiment.run(&p, &RunContext::single(7)).unwrap(),
            "determinism"
        );
        let mut slow = p.clone();
        slow.network.server_ingress_mbps = 0.05;
        slow.devices.gflops_median = 1e-4;
        slow.devices.up_mbps_median = 0.05;
        let slow = LoraExperiment.run(&slow, &RunContext::single(7)).unwrap();
        assert_eq!(by_round(&fast), by_round(&slow));
        assert_eq!(by_round(&fast).len(), 6);
        assert_eq!(fast.get("late_uploads").unwrap(), 0.0);
        assert_eq!(slow.get("late_uploads").unwrap(), 0.0);
        assert!(slow.get("wall_s").unwrap() > fast.get("wall_s").unwrap() + 1.0);
        // FLoRA downloads every client's modules: more bytes, so longer rounds on the slow network.
        assert!(slow.get("wall_s_flora").unwrap() > slow.get("wall_s").unwrap());
        assert!(fast.get("aggregated_updates").unwrap() == 12.0);
    }
}
