//! `fl-lora`: pretrain a base MLP on a source task, then fine-tune LoRA adapters federatedly on a
//! shifted, label-skewed target task under one aggregation rule (and optionally its baselines on the
//! very same data and seeds).

use sim::experiment::{Experiment, RunContext, RunError, RunOutput};

use super::adapter::{self, Adapters};
use super::aggregate::{self, LoraMethod};
use super::params::LoraParams;
use crate::fl::learn::common::{model_err, rounds_to};
use crate::fl::learn::nn::{self, Weights};
use crate::fl::learn::task::{Dataset, Prototypes, dirichlet_label_skew};

/// The FedMomentum study.
pub struct LoraExperiment;

/// Data and pretrained base shared by every method of one run.
struct Setup {
    base: Weights,
    clients: Vec<Dataset>,
    test: Dataset,
}

/// What one aggregation rule achieved.
struct Outcome {
    curve: Vec<f64>,
    uplink_floats: Vec<usize>,
    downlink_floats: Vec<usize>,
    lost_norm: f64,
}

fn setup(p: &LoraParams, ctx: &RunContext) -> Result<Setup, RunError> {
    let mut rng = ctx.rng("fl-lora/task");
    let source = Prototypes::new(p.task, &mut rng);
    let target = source.shifted(p.target_shift, &mut rng);
    let uniform = vec![1.0; p.task.classes];
    let pre = source.sample(p.pretrain_samples, &uniform, &mut rng);
    let mut widths = vec![p.task.dim];
    widths.extend(&p.hidden);
    widths.push(p.task.classes);
    let mut init_rng = ctx.rng("fl-lora/init");
    let w0 = Weights::init(&widths, &mut init_rng);
    let (e, b, lr) = p.pretrain.tuple();
    let base = nn::train(&w0, &pre, e, b, lr, &mut init_rng).map_err(model_err)?;
    let mut data_rng = ctx.rng("fl-lora/data");
    let skew = dirichlet_label_skew(p.clients, p.task.classes, p.dirichlet_alpha, &mut data_rng);
    let clients = skew
        .iter()
        .map(|w| target.sample(p.samples_per_client, w, &mut data_rng))
        .collect();
    let test = target.sample(p.test_samples, &uniform, &mut data_rng);
    Ok(Setup {
        base,
        clients,
        test,
    })
}

fn run_method(
    method: LoraMethod,
    p: &LoraParams,
    s: &Setup,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<Outcome, RunError> {
    let mut base = s.base.clone();
    let mut global: Adapters =
        adapter::init_adapters(&base, p.rank, &mut ctx.rng("fl-lora/adapters"));
    let mut agg_rng = ctx.rng("fl-lora/aggregate");
    let mut client_rngs: Vec<_> = (0..p.clients)
        .map(|k| ctx.rng(&format!("fl-lora/client/{k}")))
        .collect();
    let total: f64 = s.clients.iter().map(|d| d.len() as f64).sum();
    let weights: Vec<f64> = s.clients.iter().map(|d| d.len() as f64 / total).collect();
    let mut o = Outcome {
        curve: Vec::with_capacity(p.rounds),
        uplink_floats: Vec::new(),
        downlink_floats: Vec::new(),
        lost_norm: 0.0,
    };
    for round in 0..p.rounds {
        let updates = s
            .clients
            .iter()
            .zip(client_rngs.iter_mut())
            .map(|(d, rng)| {
                adapter::train_adapters(&base, &global, method.freezes_a(), d, p.local.tuple(), rng)
            })
            .collect::<candle_core::Result<Vec<Adapters>>>()
            .map_err(model_err)?;
        let up: usize = updates[0].iter().map(|l| method.uplink_floats(l)).sum();
        let agg =
            aggregate::aggregate(method, &updates, &weights, &mut agg_rng).map_err(model_err)?;
        let mut down = 0;
        for (l, a) in agg.into_iter().enumerate() {
            if let Some(d) = &a.base_delta {
                adapter::add_to_base(&mut base, l, d);
            }
            down += a.downlink_floats;
            o.lost_norm += a.lost_norm;
            global[l] = a.lora;
        }
        o.uplink_floats.push(up * p.clients);
        o.downlink_floats.push(down * p.clients);
        let acc = nn::accuracy(&adapter::merged(&base, &global), &s.test).map_err(model_err)?;
        out.sample((round + 1) as f64, method.name(), "accuracy", acc);
        o.curve.push(acc);
    }
    Ok(o)
}

impl Experiment for LoraExperiment {
    type Params = LoraParams;
    const NAME: &'static str = "fl-lora";
    const DESCRIPTION: &'static str = "Federated LoRA fine-tuning: FedIT, FFA-LoRA, FLoRA, FlexLoRA and FedMomentum (SVD + residual merge) on a non-IID task";

    fn run(&self, p: &LoraParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx)?;
        let mut out = RunOutput::default();
        let pre = nn::accuracy(&s.base, &s.test).map_err(model_err)?;
        let o = run_method(p.method, p, &s, ctx, &mut out)?;
        let last = *o.curve.last().unwrap_or(&pre);
        let best = o.curve.iter().copied().fold(pre, f64::max);
        let reached = rounds_to(&o.curve, p.target_accuracy);
        let bytes = |v: &[usize], n: usize| 4.0 * v.iter().take(n).sum::<usize>() as f64;
        let to_target = (reached as usize).min(p.rounds);
        out.metric("pretrained_accuracy", pre)
            .metric("final_accuracy", last)
            .metric("best_accuracy", best)
            .metric("rounds_to_target", reached)
            .metric("uplink_bytes", bytes(&o.uplink_floats, p.rounds))
            .metric("downlink_bytes", bytes(&o.downlink_floats, p.rounds))
            .metric(
                "comm_bytes",
                bytes(&o.uplink_floats, p.rounds) + bytes(&o.downlink_floats, p.rounds),
            )
            .metric(
                "comm_bytes_to_target",
                bytes(&o.uplink_floats, to_target) + bytes(&o.downlink_floats, to_target),
            )
            .metric("lost_norm_per_round", o.lost_norm / p.rounds as f64);
        if !p.baselines.is_empty() {
            let mut best_base_acc = f64::NEG_INFINITY;
            let mut best_base_rounds = f64::INFINITY;
            for &b in &p.baselines {
                let ob = run_method(b, p, &s, ctx, &mut out)?;
                let acc = *ob.curve.last().unwrap_or(&pre);
                let r = rounds_to(&ob.curve, p.target_accuracy);
                let key = b.name().replace('-', "_");
                out.metric(format!("final_accuracy_{key}"), acc)
                    .metric(format!("rounds_to_target_{key}"), r);
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
