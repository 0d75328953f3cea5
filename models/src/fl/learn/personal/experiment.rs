//! `fl-personal`: clients that differ in input offset and label mapping train one MLP federatedly;
//! FedAvg, FedAvg+fine-tune, FedPer and pFedNavi-style learned layer mixing are compared on per-client
//! test accuracy.

use sim::experiment::{Experiment, RunContext, RunError, RunOutput};
use sim::rng::Rng;

use super::mixing::{self, MixClient};
use super::params::{PersonalMethod, PersonalParams};
use crate::fl::learn::common::{model_err, rounds_to};
use crate::fl::learn::nn::{self, Weights};
use crate::fl::learn::task::{ClientView, Dataset, Prototypes, dirichlet_label_skew};

/// The pFedNavi study.
pub struct PersonalExperiment;

struct Setup {
    init: Weights,
    train: Vec<Dataset>,
    test: Vec<Dataset>,
}

struct Outcome {
    curve: Vec<f64>,
    per_client: Vec<f64>,
    lambdas: Vec<f64>,
    uplink_floats: usize,
}

fn setup(p: &PersonalParams, ctx: &RunContext) -> Setup {
    let mut rng = ctx.rng("fl-personal/task");
    let task = Prototypes::new(p.task, &mut rng);
    let skew = dirichlet_label_skew(p.clients, p.task.classes, p.dirichlet_alpha, &mut rng);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for w in &skew {
        let view = ClientView::random(
            p.task.dim,
            p.task.classes,
            p.input_shift,
            p.label_swaps,
            &mut rng,
        );
        train.push(view.apply(&task.sample(p.samples_per_client, w, &mut rng)));
        test.push(view.apply(&task.sample(p.test_per_client, w, &mut rng)));
    }
    let mut widths = vec![p.task.dim];
    widths.extend(&p.hidden);
    widths.push(p.task.classes);
    Setup {
        init: Weights::init(&widths, &mut ctx.rng("fl-personal/init")),
        train,
        test,
    }
}

/// `body` with its last `k` layers taken from `head`.
fn with_head(body: &Weights, head: &Weights, k: usize) -> Weights {
    let mut out = body.clone();
    let n = out.layers.len();
    out.layers[n - k..].clone_from_slice(&head.layers[n - k..]);
    out
}

fn run_method(
    method: PersonalMethod,
    p: &PersonalParams,
    s: &Setup,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<Outcome, RunError> {
    let n = p.clients;
    let weights: Vec<f64> = {
        let total: f64 = s.train.iter().map(|d| d.len() as f64).sum();
        s.train.iter().map(|d| d.len() as f64 / total).collect()
    };
    let mut rngs: Vec<Rng> = (0..n)
        .map(|k| ctx.rng(&format!("fl-personal/client/{k}")))
        .collect();
    let mut eval_rngs: Vec<Rng> = (0..n)
        .map(|k| ctx.rng(&format!("fl-personal/finetune/{k}")))
        .collect();
    let mut global = s.init.clone();
    let mut heads = vec![s.init.clone(); n];
    let mut mix = vec![MixClient::new(&s.init); n];
    let (e, b, lr) = p.local.tuple();
    let mut curve = Vec::with_capacity(p.rounds);
    let mut per_client = vec![0.0; n];
    let layers = s.init.layers.len();
    let head_floats: usize = s.init.layers[layers - p.fedper_layers..]
        .iter()
        .map(|l| l.len())
        .sum();
    let uplink_floats = match method {
        PersonalMethod::FedPer => s.init.len() - head_floats,
        _ => s.init.len(),
    };
    for round in 0..p.rounds {
        let mut uploads = Vec::with_capacity(n);
        for k in 0..n {
            let up = match method {
                PersonalMethod::FedAvg | PersonalMethod::FedAvgFt => {
                    nn::train(&global, &s.train[k], e, b, lr, &mut rngs[k])
                }
                PersonalMethod::FedPer => {
                    let start = with_head(&global, &heads[k], p.fedper_layers);
                    let w = nn::train(&start, &s.train[k], e, b, lr, &mut rngs[k]);
                    if let Ok(w) = &w {
                        heads[k] = w.clone();
                    }
                    w
                }
                PersonalMethod::PFedNavi => mixing::train_mixed(
                    &global,
                    &mix[k],
                    &s.train[k],
                    (e, b, lr),
                    p.mix_lr,
                    &mut rngs[k],
                )
                .map(|(g, c)| {
                    mix[k] = c;
                    g
                }),
            }
            .map_err(model_err)?;
            uploads.push(up);
        }
        global = nn::weighted_average(&uploads, &weights);
        for k in 0..n {
            let model = match method {
                PersonalMethod::FedAvg => global.clone(),
                PersonalMethod::FedAvgFt => nn::train(
                    &global,
                    &s.train[k],
                    p.finetune_epochs,
                    b,
                    lr,
                    &mut eval_rngs[k],
                )
                .map_err(model_err)?,
                PersonalMethod::FedPer => with_head(&global, &heads[k], p.fedper_layers),
                PersonalMethod::PFedNavi => mix[k].personalized(&global),
            };
            per_client[k] = nn::accuracy(&model, &s.test[k]).map_err(model_err)?;
        }
        let mean = per_client.iter().sum::<f64>() / n as f64;
        out.sample(
            (round + 1) as f64,
            method.name(),
            "mean_client_accuracy",
            mean,
        );
        curve.push(mean);
    }
    let lambdas = (0..layers)
        .map(|l| match method {
            PersonalMethod::PFedNavi => mix.iter().map(|c| c.lambdas()[l]).sum::<f64>() / n as f64,
            PersonalMethod::FedPer if l >= layers - p.fedper_layers => 1.0,
            _ => 0.0,
        })
        .collect();
    Ok(Outcome {
        curve,
        per_client,
        lambdas,
        uplink_floats,
    })
}

/// Mean of the lowest ⌈10 %⌉ of `v`.
pub fn worst_decile(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = v.len().div_ceil(10).max(1);
    s[..k].iter().sum::<f64>() / k as f64
}

impl Experiment for PersonalExperiment {
    type Params = PersonalParams;
    const NAME: &'static str = "fl-personal";
    const DESCRIPTION: &'static str = "Personalized FL under input and label-mapping skew: pFedNavi layer-wise learned mixing vs FedAvg, FedAvg+FT, FedPer";

    fn run(&self, p: &PersonalParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx);
        let mut out = RunOutput::default();
        let o = run_method(p.method, p, &s, ctx, &mut out)?;
        let mean = o.curve.last().copied().unwrap_or(0.0);
        let reached = rounds_to(&o.curve, p.target_accuracy);
        out.metric("mean_client_accuracy", mean)
            .metric("worst_decile_accuracy", worst_decile(&o.per_client))
            .metric("rounds_to_target", reached)
            .metric(
                "uplink_bytes",
                4.0 * (o.uplink_floats * p.clients * p.rounds) as f64,
            );
        for (l, lam) in o.lambdas.iter().enumerate() {
            out.metric(format!("mixing_layer{l}"), *lam);
        }
        for &bm in &p.baselines {
            let ob = run_method(bm, p, &s, ctx, &mut out)?;
            let key = bm.name().replace('-', "_");
            let acc = ob.curve.last().copied().unwrap_or(0.0);
            let r = rounds_to(&ob.curve, p.target_accuracy);
            out.metric(format!("mean_client_accuracy_{key}"), acc)
                .metric(
                    format!("worst_decile_accuracy_{key}"),
                    worst_decile(&ob.per_client),
                )
                .metric(format!("rounds_to_target_{key}"), r)
                .metric(format!("accuracy_gain_vs_{key}_pts"), 100.0 * (mean - acc))
                .metric(format!("convergence_speedup_vs_{key}"), r / reached);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::worst_decile;

    #[test]
    fn worst_decile_is_the_mean_of_the_lowest_tenth() {
        let v: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(worst_decile(&v), 0.5);
        assert_eq!(worst_decile(&[0.3]), 0.3);
    }
}
