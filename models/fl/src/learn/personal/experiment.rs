//! `fl-personal`: clients that see the real 8×8 digits through their own image transform (feature
//! shift) with their own class proportions (label skew) train one MLP federatedly; FedAvg,
//! FedAvg+fine-tune, FedPer, Ditto, layer-wise mixing without selection and pFedNavi (layer
//! selection by mixing coefficients, fine-grained fusion of the selected layers) are compared on
//! per-client test accuracy and on rounds and simulated time to a target that FedAvg reaches. Rounds run through the FL network ([`run_network`]) with simulated time; clients that
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

use super::data::{self, Sizes};
use super::memo;
use super::oracle::{self, OracleParams};
use super::params::{PersonalMethod, PersonalParams};
use super::plugins::{ClientSets, PersonalConfig, PersonalTrainer};
use crate::devices::DeviceProfile;
use crate::learn::common::{model_err, rounds_to};
use crate::learn::convert;
use crate::learn::digits::CLASSES;
use crate::learn::net;
use crate::learn::nn::{Arch, Weights};
use crate::learn::personal::shift::SIDE;
use crate::learn::task::Dataset;
use crate::network::{NetworkRun, Plugins, run_network};
use crate::traits::{FedAvg, NoAdversary};

/// The pFedNavi study.
pub struct PersonalExperiment;

struct Setup {
    init: Weights,
    all: Vec<Dataset>,
    fit: Vec<Dataset>,
    holdout: Vec<Dataset>,
    test: Vec<Dataset>,
    real: bool,
    inverted: f64,
    devices: Vec<DeviceProfile>,
}

struct Outcome {
    run: NetworkRun,
    curve: Vec<f64>,
    per_client: Vec<f64>,
    lambdas: Vec<f64>,
    selected: Option<Vec<f64>>,
    uplink_floats: usize,
}

fn setup(p: &PersonalParams, ctx: &RunContext) -> Result<Setup, RunError> {
    let sizes = Sizes {
        clients: p.clients,
        samples_per_client: p.samples_per_client,
        holdout_per_client: p.holdout_per_client,
        test_per_client: p.test_per_client,
        pretrain: p.pretrain.map_or(0, |pre| pre.samples),
    };
    let d = data::build(
        &sizes,
        p.dirichlet_alpha,
        &p.shift,
        p.sensor.as_ref(),
        &mut ctx.rng("fl-personal/task"),
    )
    .map_err(model_err)?;
    let all = d
        .train
        .iter()
        .zip(&d.holdout)
        .map(|(f, h)| {
            let mut a = f.clone();
            a.extend(h);
            a
        })
        .collect();
    let init = memo::INIT.get_or(memo::key(p, ctx)?, || {
        let mut init_rng = ctx.rng("fl-personal/init");
        let arch = p.arch();
        let init = match arch {
            Arch::Cnn(net) => net.init(&mut init_rng),
            Arch::Mlp => {
                let mut widths = vec![SIDE * SIDE];
                widths.extend(&p.hidden);
                widths.push(CLASSES);
                Weights::init(&widths, &mut init_rng)
            }
        };
        let Some(pre) = &p.pretrain else {
            return Ok(init);
        };
        let (e, b, lr) = pre.sgd.tuple();
        arch.train(&init, &d.pretrain, e, b, lr, &mut init_rng)
            .map_err(model_err)
    })?;
    Ok(Setup {
        init,
        all,
        fit: d.train,
        holdout: d.holdout,
        test: d.test,
        real: d.real,
        inverted: d.sensors.iter().filter(|s| s.inverted()).count() as f64 / p.clients as f64,
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
            arch: p.arch(),
            local: p.local,
            finetune_epochs: p.finetune_epochs,
            fedper_layers: p.fedper_layers,
            mix_lr: p.mix_lr,
            select_after: p.select_after,
            select_threshold: p.select_threshold,
            select_max_layers: p.select_max_layers,
            ditto_mu: p.ditto_mu,
        },
        s.init.clone(),
        ClientSets {
            all: &s.all,
            fit: &s.fit,
            holdout: &s.holdout,
            test: &s.test,
        },
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
        selected: trainer.selected_share(),
        uplink_floats: trainer.exchanged_floats(),
        run,
    })
}

/// The oracle of `o` on FedAvg's final global model: mean per-client accuracy of the global model
/// (`oracle_accuracy_global`), of fine-tuning every layer (`oracle_accuracy_all`) and of each layer
/// set (`oracle_accuracy_<set>`), with the share of the full gain each set recovers
/// (`oracle_recovery_<set>`, see [`oracle::recovery`]) and, with early stopping, the mean epoch
/// each kept (`oracle_epoch_all`, `oracle_epoch_<set>`).
fn oracle_metrics(
    o: &OracleParams,
    p: &PersonalParams,
    s: &Setup,
    run: &NetworkRun,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<(), RunError> {
    let arch = p.arch();
    let g = convert::to_weights(&run.model, &s.init);
    let stream = |k: usize| ctx.rng(&format!("fl-personal/oracle/{k}"));
    let clients: Vec<oracle::ClientData<'_>> = (0..s.test.len())
        .map(|k| oracle::ClientData {
            fit: &s.fit[k],
            holdout: &s.holdout[k],
            all: &s.all[k],
            test: &s.test[k],
        })
        .collect();
    let tune = |only: Option<&[usize]>| {
        oracle::fine_tune(&arch, &g, only, o, &clients, &stream).map_err(model_err)
    };
    let mut global = 0.0;
    for te in &s.test {
        global += arch.accuracy(&g, te).map_err(model_err)?;
    }
    global /= s.test.len().max(1) as f64;
    let all = tune(None)?;
    out.metric("oracle_accuracy_global", global)
        .metric("oracle_accuracy_all", all.accuracy);
    if o.early_stopping {
        out.metric("oracle_epoch_all", all.epoch);
    }
    for set in &o.layers {
        let name = oracle::set_name(set);
        let v = tune(Some(set))?;
        out.metric(format!("oracle_accuracy_{name}"), v.accuracy)
            .metric(
                format!("oracle_recovery_{name}"),
                oracle::recovery(global, all.accuracy, v.accuracy),
            );
        if o.early_stopping {
            out.metric(format!("oracle_epoch_{name}"), v.epoch);
        }
    }
    Ok(())
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
    const DESCRIPTION: &'static str = "Personalized FL on real digits under feature shift and label skew: pFedNavi (layer selection by mixing coefficients, fine-grained fusion) vs FedAvg, FedAvg+FT, FedPer, Ditto";
    const NO_CHECKPOINTS_WHY: &'static str = "its rounds carry learning state across rounds (candle models and optimisers, the study's plug-in state) that is not serialised; an interrupted sweep resumes run by run with --resume";

    /// The MLP estimate of `learn::common` for 64 pixels and 10 classes, one more method for the
    /// FedAvg reference of the target; for the CNN the same terms with its parameters and its
    /// multiply-accumulates per example (pFedNavi's three passes per step and fine-tuning are not
    /// counted: an estimate within a small factor).
    fn estimate(&self, p: &PersonalParams) -> sim::estimate::ResourceEstimate {
        let methods = 2 + p.baselines.len();
        let Arch::Cnn(net) = p.arch() else {
            let shape = crate::learn::task::TaskShape {
                dim: SIDE * SIDE,
                classes: CLASSES,
                modes: 1,
                separation: 1.0,
                noise: 1.0,
            };
            return crate::learn::common::mlp_estimate(&crate::learn::common::MlpRun {
                clients: p.clients,
                task: &shape,
                hidden: &p.hidden,
                samples_per_client: p.samples_per_client,
                other_samples: p.clients * p.test_per_client,
                network: &p.network,
                local: &p.local,
                methods,
            });
        };
        let per_client = (p.samples_per_client + p.test_per_client) as f64;
        sim::estimate::ResourceEstimate::default()
            .memory_product(
                (SIDE * SIDE * 4) as f64,
                &[
                    ("clients", p.clients as f64),
                    ("samples_per_client", per_client),
                ],
            )
            .memory_product(
                16.0 * methods as f64,
                &[
                    ("clients", p.clients as f64),
                    ("cnn", net.param_count() as f64),
                ],
            )
            .work_product(
                6.0 * p.network.participation * methods as f64,
                &[
                    ("network.rounds", f64::from(p.network.rounds)),
                    ("clients", p.clients as f64),
                    ("local.epochs", p.local.epochs as f64),
                    ("samples_per_client", p.samples_per_client as f64),
                    ("cnn", net.macs()),
                ],
            )
    }

    fn run(&self, p: &PersonalParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx)?;
        let mut out = RunOutput {
            trace: ctx.tracer(),
            ..RunOutput::default()
        };
        let o = run_method(p.method, p, &s, ctx, &mut out)?;
        let mut others = Vec::new();
        for &bm in &p.baselines {
            others.push((bm, run_method(bm, p, &s, ctx, &mut out)?));
        }
        // The target: a fraction of FedAvg's final accuracy on the same data and seed.
        let fedavg_final = |c: &[f64]| c.last().copied().unwrap_or(0.0);
        let reference = if p.method == PersonalMethod::FedAvg {
            memo::FEDAVG.put(memo::key(p, ctx)?, o.curve.clone())?;
            fedavg_final(&o.curve)
        } else if let Some((_, ob)) = others.iter().find(|(m, _)| *m == PersonalMethod::FedAvg) {
            fedavg_final(&ob.curve)
        } else {
            // Trained here unless a run of the same replication already did.
            fedavg_final(&memo::FEDAVG.get_or(memo::key(p, ctx)?, || {
                let mut scratch = RunOutput::default();
                Ok(run_method(PersonalMethod::FedAvg, p, &s, ctx, &mut scratch)?.curve)
            })?)
        };
        let target = p.target_fraction * reference;
        let mean = o.curve.last().copied().unwrap_or(0.0);
        let reached = rounds_to(&o.curve, target);
        out.metric("mean_client_accuracy", mean)
            .metric("worst_decile_accuracy", worst_decile(&o.per_client))
            .metric("real_data", f64::from(u8::from(s.real)))
            .metric("inverted_clients", s.inverted)
            .metric("target_accuracy", target)
            .metric("fedavg_final_accuracy", reference)
            .metric("rounds_to_target", reached)
            .metric(
                "uplink_bytes",
                4.0 * (o.uplink_floats * net::uploads(&o.run)) as f64,
            )
            .metric("time_to_target_s", net::time_to(&o.run, &o.curve, target));
        net::network_metrics(&mut out, &o.run, "");
        if let (PersonalMethod::FedAvg, Some(oracle)) = (p.method, &p.oracle) {
            oracle_metrics(oracle, p, &s, &o.run, ctx, &mut out)?;
        }
        for (l, lam) in o.lambdas.iter().enumerate() {
            out.metric(format!("mixing_layer{l}"), *lam);
            out.sample(l as f64, p.method.name(), "mixing_by_layer", *lam);
        }
        if let Some(sel) = &o.selected {
            for (l, v) in sel.iter().enumerate() {
                out.metric(format!("selected_share_layer{l}"), *v);
                out.sample(l as f64, p.method.name(), "selected_share_by_layer", *v);
            }
        }
        for (bm, ob) in &others {
            let key = bm.name().replace('-', "_");
            let acc = ob.curve.last().copied().unwrap_or(0.0);
            let r = rounds_to(&ob.curve, target);
            out.metric(format!("mean_client_accuracy_{key}"), acc)
                .metric(
                    format!("worst_decile_accuracy_{key}"),
                    worst_decile(&ob.per_client),
                )
                .metric(format!("rounds_to_target_{key}"), r)
                .metric(
                    format!("time_to_target_s_{key}"),
                    net::time_to(&ob.run, &ob.curve, target),
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
    use crate::learn::personal::shift::FeatureShift;

    fn params(method: PersonalMethod) -> PersonalParams {
        PersonalParams {
            method,
            baselines: vec![],
            clients: 6,
            network: crate::learn::net::on_time_network(3),
            devices: DeviceMix::reliable(),
            shift: FeatureShift {
                rotate_deg: 15.0,
                translate_px: 1.0,
                thicken: 0.5,
                gamma_log: 0.3,
                noise: 0.05,
            },
            sensor: None,
            hidden: vec![8],
            cnn: None,
            dirichlet_alpha: 0.5,
            samples_per_client: 30,
            holdout_per_client: 10,
            test_per_client: 30,
            local: Sgd {
                epochs: 1,
                batch: 10,
                lr: 0.1,
            },
            finetune_epochs: 1,
            fedper_layers: 1,
            mix_lr: 1.0,
            select_after: 2,
            select_threshold: 0.5,
            select_max_layers: None,
            pretrain: None,
            ditto_mu: 0.1,
            oracle: None,
            target_fraction: 0.9,
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

    /// pFedNavi selects layers after `select_after` rounds and reports the share per layer; the
    /// target is the stated fraction of FedAvg's final accuracy, which FedAvg reaches in the run.
    #[test]
    fn pfednavi_selects_layers_against_a_target_fedavg_reaches() {
        let mut p = params(PersonalMethod::PFedNavi);
        p.baselines = vec![PersonalMethod::FedAvg, PersonalMethod::Ditto];
        let out = PersonalExperiment.run(&p, &RunContext::single(4)).unwrap();
        for l in 0..2 {
            let s = out.get(&format!("selected_share_layer{l}")).unwrap();
            assert!((0.0..=1.0).contains(&s), "layer {l}: {s}");
        }
        let fedavg = out.get("mean_client_accuracy_fedavg").unwrap();
        assert!((out.get("target_accuracy").unwrap() - 0.9 * fedavg).abs() < 1e-12);
        assert!(out.get("rounds_to_target_fedavg").unwrap() <= 3.0);
        assert!(out.get("mean_client_accuracy_ditto").is_some());
        assert!(out.get("real_data").is_some());
    }

    /// On the residual CNN (7 weight layers at 1 block per stage), pretrained, pFedNavi makes at
    /// most `select_max_layers` layers client-specific per client, and the FedAvg reference it
    /// computes (or takes from the memo) equals FedAvg's own run.
    #[test]
    fn pfednavi_on_the_cnn_selects_at_most_the_cap() {
        let mut p = params(PersonalMethod::PFedNavi);
        p.hidden = vec![];
        p.cnn = Some(crate::learn::cnn::CnnShape {
            channels: [2, 2],
            blocks: 1,
        });
        p.clients = 3;
        p.select_max_layers = Some(2);
        p.pretrain = Some(super::super::params::Pretrain {
            samples: 20,
            sgd: Sgd {
                epochs: 1,
                batch: 10,
                lr: 0.1,
            },
        });
        assert!(sim::validate::Checks::of(&p).is_empty());
        let out = PersonalExperiment.run(&p, &RunContext::single(5)).unwrap();
        let shares: Vec<f64> = (0..7)
            .map(|l| out.get(&format!("selected_share_layer{l}")).unwrap())
            .collect();
        assert!(shares.iter().sum::<f64>() <= 2.0 + 1e-9, "{shares:?}");
        let fedavg = PersonalExperiment
            .run(
                &params_like(&p, PersonalMethod::FedAvg),
                &RunContext::single(5),
            )
            .unwrap();
        assert_eq!(
            out.get("fedavg_final_accuracy"),
            fedavg.get("mean_client_accuracy")
        );
        p.hidden = vec![4];
        assert!(!sim::validate::Checks::of(&p).is_empty());
    }

    /// A FedAvg run with the oracle reports the global model's accuracy (FedAvg's final one), every
    /// set's accuracy and recovery, and the share of inverted sensors; other methods skip it, and
    /// neither the oracle nor the sensors' absence changes FedAvg's training.
    #[test]
    fn the_oracle_reports_every_layer_set_on_fedavg_only() {
        let mut p = params(PersonalMethod::FedAvg);
        p.sensor = Some(crate::learn::personal::sensor::SensorShift {
            gain_log: 0.3,
            offset: 0.1,
            invert: 0.5,
        });
        let plain = PersonalExperiment.run(&p, &RunContext::single(6)).unwrap();
        p.oracle = Some(OracleParams {
            sgd: Sgd {
                epochs: 2,
                batch: 10,
                lr: 0.1,
            },
            layers: vec![vec![0], vec![1]],
            early_stopping: false,
        });
        let out = PersonalExperiment.run(&p, &RunContext::single(6)).unwrap();
        assert_eq!(
            out.get("mean_client_accuracy"),
            plain.get("mean_client_accuracy")
        );
        assert_eq!(
            out.get("oracle_accuracy_global"),
            out.get("mean_client_accuracy")
        );
        let (g, all) = (
            out.get("oracle_accuracy_global").unwrap(),
            out.get("oracle_accuracy_all").unwrap(),
        );
        for set in ["l0", "l1"] {
            let v = out.get(&format!("oracle_accuracy_{set}")).unwrap();
            let r = out.get(&format!("oracle_recovery_{set}")).unwrap();
            assert!((0.0..=1.0).contains(&v), "{set}: {v}");
            if all > g {
                assert!((r - (v - g) / (all - g)).abs() < 1e-12, "{set}: {r}");
            }
        }
        let inv = out.get("inverted_clients").unwrap();
        assert!(
            (0.0..=1.0).contains(&inv) && ((inv * 6.0).round() - inv * 6.0).abs() < 1e-9,
            "{inv}"
        );
        let other = PersonalExperiment
            .run(
                &params_like(&p, PersonalMethod::FedPer),
                &RunContext::single(6),
            )
            .unwrap();
        assert!(other.get("oracle_accuracy_all").is_none());
        assert!(out.get("oracle_epoch_all").is_none());
        p.oracle.as_mut().unwrap().early_stopping = true;
        let stopped = PersonalExperiment.run(&p, &RunContext::single(6)).unwrap();
        assert_eq!(
            stopped.get("oracle_accuracy_global"),
            out.get("oracle_accuracy_global")
        );
        for set in ["all", "l0", "l1"] {
            let e = stopped.get(&format!("oracle_epoch_{set}")).unwrap();
            assert!((0.0..=2.0).contains(&e), "{set}: {e}");
        }
        p.oracle.as_mut().unwrap().layers.push(vec![2]);
        assert!(
            !sim::validate::Checks::of(&p).is_empty(),
            "the MLP has 2 layers"
        );
    }

    fn params_like(p: &PersonalParams, method: PersonalMethod) -> PersonalParams {
        PersonalParams {
            method,
            ..p.clone()
        }
    }

    #[test]
    fn worst_decile_is_the_mean_of_the_lowest_tenth() {
        let v: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(worst_decile(&v), 0.5);
        assert_eq!(worst_decile(&[0.3]), 0.3);
    }
}
