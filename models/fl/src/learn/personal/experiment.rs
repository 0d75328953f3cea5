//! `fl-personal`: clients that differ in input offset and label mapping train one MLP federatedly;
//! FedAvg, FedAvg+fine-tune, FedPer and pFedNavi-style learned layer mixing are compared on per-client
//! test accuracy. Rounds run through the FL network ([`run_network`]) with simulated time; clients that
//! miss the deadline keep their personal state untouched that round.
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
//! then the plug-ins process the on-time clients: [`PersonalTrainer`] trains them (and keeps
//! their personal state), plain [`FedAvg`] aggregates (no adversary), and the trainer evaluates
//! every client's personalized model.

use sim::experiment::{Experiment, RunContext, RunError, RunOutput};

use super::params::{PersonalMethod, PersonalParams};
use super::plugins::{PersonalConfig, PersonalTrainer};
use crate::devices::DeviceProfile;
use crate::learn::common::rounds_to;
use crate::learn::net;
use crate::learn::nn::Weights;
use crate::learn::task::{ClientView, Dataset, Prototypes, dirichlet_label_skew};
use crate::network::{NetworkRun, Plugins, run_network};
use crate::traits::{FedAvg, NoAdversary};

/// The pFedNavi study.
pub struct PersonalExperiment;

struct Setup {
    init: Weights,
    train: Vec<Dataset>,
    test: Vec<Dataset>,
    devices: Vec<DeviceProfile>,
}

struct Outcome {
    run: NetworkRun,
    curve: Vec<f64>,
    per_client: Vec<f64>,
    lambdas: Vec<f64>,
    uplink_floats: usize,
}

fn setup(p: &PersonalParams, ctx: &RunContext) -> Result<Setup, RunError> {
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
    Ok(Setup {
        init: Weights::init(&widths, &mut ctx.rng("fl-personal/init")),
        train,
        test,
        devices: p
            .devices
            .profiles(p.clients, &mut ctx.rng("fl-personal/devices"))?,
    })
}

fn run_method(
    method: PersonalMethod,
    p: &PersonalParams,
    s: &Setup,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<Outcome, RunError> {
    let streams = |name: &str| {
        (0..p.clients)
            .map(|k| ctx.rng(&format!("fl-personal/{name}/{k}")))
            .collect()
    };
    let mut trainer = PersonalTrainer::new(
        PersonalConfig {
            method,
            local: p.local,
            finetune_epochs: p.finetune_epochs,
            fedper_layers: p.fedper_layers,
            mix_lr: p.mix_lr,
        },
        s.init.clone(),
        (&s.train, &s.test),
        streams("client"),
        streams("finetune"),
    );
    let run = run_network(
        &p.network,
        &s.devices,
        Plugins {
            trainer: &mut trainer,
            aggregator: &mut FedAvg,
            adversary: &mut NoAdversary,
        },
        &mut net::rngs(ctx, "fl-personal", "fl-personal/aggregate"),
        &mut |_, _, _| Ok(()),
    )?;
    crate::timeline::network(&run, p.network.aggregation_s, method.name(), &mut out.trace);
    let curve = net::accuracy_curve(&run);
    net::sample_curve(out, &run, method.name(), "accuracy", &curve);
    Ok(Outcome {
        curve,
        per_client: trainer.per_client(),
        lambdas: trainer.lambdas(),
        uplink_floats: trainer.exchanged_floats(),
        run,
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
    const NO_CHECKPOINTS_WHY: &'static str = "its rounds carry learning state across rounds (candle models and optimisers, the study's plug-in state) that is not serialised; an interrupted sweep resumes run by run with --resume";

    /// The MLP estimate of `learn::common` (fine-tuning adds `finetune_epochs` of one client's data).
    fn estimate(&self, p: &PersonalParams) -> sim::estimate::ResourceEstimate {
        crate::learn::common::mlp_estimate(&crate::learn::common::MlpRun {
            clients: p.clients,
            task: &p.task,
            hidden: &p.hidden,
            samples_per_client: p.samples_per_client,
            other_samples: p.clients * p.test_per_client,
            network: &p.network,
            local: &p.local,
            methods: 1 + p.baselines.len(),
        })
    }

    fn run(&self, p: &PersonalParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx)?;
        let mut out = RunOutput {
            trace: ctx.tracer(),
            ..RunOutput::default()
        };
        let o = run_method(p.method, p, &s, ctx, &mut out)?;
        let mean = o.curve.last().copied().unwrap_or(0.0);
        let reached = rounds_to(&o.curve, p.target_accuracy);
        out.metric("mean_client_accuracy", mean)
            .metric("worst_decile_accuracy", worst_decile(&o.per_client))
            .metric("rounds_to_target", reached)
            .metric(
                "uplink_bytes",
                4.0 * (o.uplink_floats * net::uploads(&o.run)) as f64,
            )
            .metric(
                "time_to_target_s",
                net::time_to(&o.run, &o.curve, p.target_accuracy),
            );
        net::network_metrics(&mut out, &o.run, "");
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
                .metric(
                    format!("time_to_target_s_{key}"),
                    net::time_to(&ob.run, &ob.curve, p.target_accuracy),
                )
                .metric(format!("accuracy_gain_vs_{key}_pts"), 100.0 * (mean - acc))
                .metric(format!("convergence_speedup_vs_{key}"), r / reached);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceMix;
    use crate::learn::common::Sgd;
    use crate::learn::task::TaskShape;

    fn params(method: PersonalMethod) -> PersonalParams {
        PersonalParams {
            method,
            baselines: vec![],
            clients: 6,
            network: crate::learn::net::on_time_network(3),
            devices: DeviceMix::reliable(),
            task: TaskShape {
                dim: 6,
                classes: 3,
                modes: 1,
                separation: 1.5,
                noise: 0.5,
            },
            hidden: vec![8],
            input_shift: 1.0,
            label_swaps: 1,
            dirichlet_alpha: 0.5,
            samples_per_client: 30,
            test_per_client: 30,
            local: Sgd {
                epochs: 1,
                batch: 10,
                lr: 0.1,
            },
            finetune_epochs: 1,
            fedper_layers: 1,
            mix_lr: 1.0,
            target_accuracy: 0.7,
        }
    }

    fn learning(out: &RunOutput) -> Vec<(String, String, f64, f64)> {
        out.series
            .iter()
            .filter(|s| s.metric.ends_with("_by_round"))
            .map(|s| (s.component.clone(), s.metric.clone(), s.t_s, s.value))
            .collect()
    }

    #[test]
    fn network_speed_changes_time_not_personalization() {
        for m in [PersonalMethod::PFedNavi, PersonalMethod::FedPer] {
            let p = params(m);
            let fast = PersonalExperiment.run(&p, &RunContext::single(3)).unwrap();
            assert_eq!(
                fast,
                PersonalExperiment.run(&p, &RunContext::single(3)).unwrap()
            );
            let mut slow = p.clone();
            slow.network.server_ingress_mbps = 0.01;
            slow.devices.gflops_median = 1e-6;
            slow.devices.up_mbps_median = 1e-3;
            let slow = PersonalExperiment
                .run(&slow, &RunContext::single(3))
                .unwrap();
            assert_eq!(learning(&fast), learning(&slow), "{m:?}");
            assert_eq!(learning(&fast).len(), 3);
            for k in [
                "mean_client_accuracy",
                "worst_decile_accuracy",
                "mixing_layer0",
            ] {
                assert_eq!(fast.get(k).unwrap(), slow.get(k).unwrap(), "{m:?} {k}");
            }
            assert_eq!(slow.get("late_uploads").unwrap(), 0.0);
            assert!(slow.get("wall_s").unwrap() > fast.get("wall_s").unwrap() + 1.0);
        }
    }

    #[test]
    fn a_tight_deadline_drops_updates() {
        let mut p = params(PersonalMethod::FedAvg);
        p.network.deadline_s = 8.0; // the median check-in alone is 10 s
        let out = PersonalExperiment.run(&p, &RunContext::single(3)).unwrap();
        let on_time = out.get("aggregated_updates").unwrap();
        assert!(on_time < 18.0, "{on_time} of 18 on time");
        assert_eq!(on_time + out.get("late_uploads").unwrap(), 18.0);
        p.network.deadline_s = 3600.0;
        let all = PersonalExperiment.run(&p, &RunContext::single(3)).unwrap();
        assert_eq!(all.get("aggregated_updates").unwrap(), 18.0);
        assert!(out.get("wall_s").unwrap() < all.get("wall_s").unwrap());
    }

    #[test]
    fn worst_decile_is_the_mean_of_the_lowest_tenth() {
        let v: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(worst_decile(&v), 0.5);
        assert_eq!(worst_decile(&[0.3]), 0.3);
    }
}
