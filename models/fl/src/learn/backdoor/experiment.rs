//! `fl-backdoor`: an FL network with colluding attackers that plant a trigger backdoor; one attack
//! (full-model, LP, POLAR) against one server defense, measured on backdoor success, main-task accuracy,
//! layers modified and how often the defense flagged the attackers. Rounds run through the FL network
//! ([`run_network`]): the attack is its [`Adversary`](crate::traits::Adversary), the defense its
//! [`Aggregator`](crate::traits::Aggregator), and only on-time updates reach the defense.
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
//! then the plug-ins process the on-time clients: [`BackdoorTrainer`] trains them,
//! [`BackdoorAdversary`] (the attack) rewrites the attackers' updates, [`DefenseAggregator`] (the
//! defense) aggregates; the trainer evaluates the new global model and the observer measures the
//! backdoor success rate.

use sim::experiment::{Experiment, RunContext, RunError, RunOutput};

use super::attack::{self, Attack};
use super::params::BackdoorParams;
use super::plugins::{AttackConfig, BackdoorAdversary, BackdoorTrainer, DefenseAggregator};
use crate::devices::DeviceProfile;
use crate::learn::common::model_err;
use crate::learn::convert;
use crate::learn::net;
use crate::learn::nn::{self, Weights};
use crate::learn::task::{Dataset, Prototypes, Trigger, dirichlet_label_skew};
use crate::network::{NetworkRun, Plugins, run_network};

/// The POLAR study.
pub struct BackdoorExperiment;

struct Setup {
    init: Weights,
    clients: Vec<Dataset>,
    /// Per attacker: its poisoned training set and its own triggered evaluation set.
    poisoned: Vec<(Dataset, Dataset)>,
    root: Dataset,
    test: Dataset,
    test_triggered: Dataset,
    devices: Vec<DeviceProfile>,
}

struct Outcome {
    run: NetworkRun,
    main_accuracy: f64,
    bsr_final: f64,
    bsr_mean: f64,
    layers_modified: f64,
    detection_rate: f64,
    false_positive_rate: f64,
}

fn setup(p: &BackdoorParams, ctx: &RunContext) -> Result<Setup, RunError> {
    let mut rng = ctx.rng("fl-backdoor/task");
    let task = Prototypes::new(p.task, &mut rng);
    let uniform = vec![1.0; p.task.classes];
    let trigger = Trigger {
        coords: (p.task.dim - p.trigger.size..p.task.dim).collect(),
        value: p.trigger.value as f32,
    };
    let target = p.trigger.target_label;
    let skew = dirichlet_label_skew(p.clients, p.task.classes, p.dirichlet_alpha, &mut rng);
    let clients: Vec<Dataset> = skew
        .iter()
        .map(|w| task.sample(p.samples_per_client, w, &mut rng))
        .collect();
    let poisoned = clients[..p.attackers]
        .iter()
        .map(|d| {
            let n_poison = (p.poison_fraction * d.len() as f64).round() as usize;
            let mut train = d.clone();
            train.extend(&d.triggered(&trigger, target).take(n_poison));
            (train, d.triggered(&trigger, target))
        })
        .collect();
    let root = task.sample(p.root_samples, &uniform, &mut rng);
    let test = task.sample(p.test_samples, &uniform, &mut rng);
    let test_triggered = test.triggered(&trigger, target);
    let mut widths = vec![p.task.dim];
    widths.extend(&p.hidden);
    widths.push(p.task.classes);
    let mut init_rng = ctx.rng("fl-backdoor/init");
    let w0 = Weights::init(&widths, &mut init_rng);
    let pre = task.sample(p.pretrain_samples, &uniform, &mut init_rng);
    let (e, b, lr) = p.pretrain.tuple();
    let init = nn::train(&w0, &pre, e, b, lr, &mut init_rng).map_err(model_err)?;
    Ok(Setup {
        init,
        clients,
        poisoned,
        root,
        test,
        test_triggered,
        devices: p
            .devices
            .profiles(p.clients, &mut ctx.rng("fl-backdoor/devices"))?,
    })
}

fn run_attack(
    attack: Attack,
    p: &BackdoorParams,
    s: &Setup,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<Outcome, RunError> {
    let streams = |name: &str, n: usize| {
        (0..n)
            .map(|k| ctx.rng(&format!("fl-backdoor/{name}/{k}")))
            .collect()
    };
    let mut trainer = BackdoorTrainer::new(
        s.init.clone(),
        &s.clients,
        &s.test,
        p.local,
        streams("client", p.clients),
    );
    let mut adversary = BackdoorAdversary::new(
        AttackConfig {
            attack,
            attackers: p.attackers,
            clients: p.clients,
            local: p.local,
            craft: attack::Craft {
                boost: p.boost as f32,
                norm_bound: p.norm_bound.map(|b| b as f32),
            },
            lp_threshold: p.lp_threshold,
            polar: p.polar,
        },
        s.init.clone(),
        &s.poisoned,
        streams("attacker", p.attackers),
        ctx.rng("fl-backdoor/polar"),
    );
    let mut aggregator = DefenseAggregator::new(
        (p.defense, p.defense_config),
        s.init.clone(),
        (&s.root, p.local, ctx.rng("fl-backdoor/root")),
        p.attackers,
    );
    let mut bsr = Vec::with_capacity(p.network.rounds as usize);
    let run = run_network(
        &p.network,
        &s.devices,
        Plugins {
            trainer: &mut trainer,
            aggregator: &mut aggregator,
            adversary: &mut adversary,
        },
        &mut net::rngs(ctx, "fl-backdoor", "fl-backdoor/defense"),
        &mut |_, _, next| {
            let w = convert::to_weights(next, &s.init);
            bsr.push(attack::bsr(&w, &s.test_triggered)?);
            Ok(())
        },
    )?;
    let group = format!("attack {}", attack.name());
    crate::timeline::network(&run, p.network.aggregation_s, &group, &mut out.trace);
    let main = net::accuracy_curve(&run);
    net::sample_curve(out, &run, attack.name(), "accuracy", &main);
    net::sample_curve(out, &run, attack.name(), "backdoor_success_rate", &bsr);
    let f = aggregator.flags;
    let rate = |k: usize, n: usize| k as f64 / n.max(1) as f64;
    Ok(Outcome {
        main_accuracy: main.last().copied().unwrap_or(0.0),
        bsr_final: bsr.last().copied().unwrap_or(0.0),
        bsr_mean: bsr.iter().sum::<f64>() / bsr.len().max(1) as f64,
        layers_modified: rate(adversary.layers_modified, adversary.corrupted),
        detection_rate: rate(f.attackers_flagged, f.attacker_updates),
        false_positive_rate: rate(f.benign_flagged, f.benign_updates),
        run,
    })
}

impl Experiment for BackdoorExperiment {
    type Params = BackdoorParams;
    const NAME: &'static str = "fl-backdoor";
    const DESCRIPTION: &'static str = "Layer-wise backdoor attacks (full-model, LP, POLAR's RL layer selection) against robust FL aggregation defenses";
    const NO_CHECKPOINTS_WHY: &'static str = "its rounds carry learning state across rounds (candle models and optimisers, the study's plug-in state) that is not serialised; an interrupted sweep resumes run by run with --resume";

    /// The MLP estimate of `learn::common` (poisoning and defenses add less than a round's training).
    fn estimate(&self, p: &BackdoorParams) -> sim::estimate::ResourceEstimate {
        crate::learn::common::mlp_estimate(&crate::learn::common::MlpRun {
            clients: p.clients,
            task: &p.task,
            hidden: &p.hidden,
            samples_per_client: p.samples_per_client,
            other_samples: p.test_samples + p.root_samples + p.pretrain_samples,
            network: &p.network,
            local: &p.local,
            methods: 1 + p.baselines.len(),
        })
    }

    fn run(&self, p: &BackdoorParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx)?;
        let mut out = RunOutput {
            trace: ctx.tracer(),
            ..RunOutput::default()
        };
        let o = run_attack(p.attack, p, &s, ctx, &mut out)?;
        out.metric("main_accuracy", o.main_accuracy)
            .metric("backdoor_success_rate", o.bsr_final)
            .metric("backdoor_success_rate_mean", o.bsr_mean)
            .metric("layers_modified", o.layers_modified)
            .metric("detection_rate", o.detection_rate)
            .metric("false_positive_rate", o.false_positive_rate);
        net::network_metrics(&mut out, &o.run, "");
        if !p.baselines.is_empty() {
            let mut best = f64::NEG_INFINITY;
            for &a in &p.baselines {
                let ob = run_attack(a, p, &s, ctx, &mut out)?;
                let key = a.name();
                out.metric(format!("backdoor_success_rate_{key}"), ob.bsr_final)
                    .metric(format!("detection_rate_{key}"), ob.detection_rate);
                best = best.max(ob.bsr_final);
            }
            out.metric(
                "bsr_gain_vs_best_baseline_pts",
                100.0 * (o.bsr_final - best),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceMix;
    use crate::learn::backdoor::attack::{PolarConfig, PolarReward};
    use crate::learn::backdoor::defense::{Defense, DefenseConfig};
    use crate::learn::backdoor::params::TriggerParams;
    use crate::learn::common::Sgd;
    use crate::learn::task::TaskShape;

    fn params(defense: Defense) -> BackdoorParams {
        let sgd = Sgd {
            epochs: 1,
            batch: 10,
            lr: 0.1,
        };
        BackdoorParams {
            attack: Attack::Polar,
            baselines: vec![],
            defense,
            defense_config: DefenseConfig {
                assumed_attackers: 2,
                rlr_threshold: 3,
                clip_factor: 1.5,
                flame_noise: 0.001,
            },
            clients: 8,
            attackers: 2,
            network: crate::learn::net::on_time_network(3),
            devices: DeviceMix::reliable(),
            task: TaskShape {
                dim: 10,
                classes: 4,
                modes: 1,
                separation: 1.0,
                noise: 0.5,
            },
            hidden: vec![12, 8],
            dirichlet_alpha: 1.0,
            samples_per_client: 30,
            test_samples: 60,
            root_samples: 20,
            pretrain_samples: 100,
            pretrain: sgd,
            local: sgd,
            trigger: TriggerParams {
                size: 2,
                value: 4.0,
                target_label: 0,
            },
            poison_fraction: 0.5,
            boost: 1.0,
            norm_bound: None,
            lp_threshold: 0.9,
            polar: PolarConfig {
                samples: 4,
                steps: 1,
                lr: 2.0,
                penalty: 0.1,
                p0: 0.5,
                reward: PolarReward::Local,
            },
        }
    }

    #[test]
    fn attack_and_defense_run_on_the_network_deterministically() {
        let p = params(Defense::Krum);
        let out = BackdoorExperiment.run(&p, &RunContext::single(5)).unwrap();
        assert_eq!(
            out,
            BackdoorExperiment.run(&p, &RunContext::single(5)).unwrap()
        );
        assert_eq!(out.get("aggregated_updates").unwrap(), 24.0);
        let layers = out.get("layers_modified").unwrap();
        assert!((1.0..=3.0).contains(&layers), "{layers}");
        // Krum keeps one update per round: most attacker updates are flagged.
        assert!(out.get("detection_rate").unwrap() >= 0.5);
        let series = |m: &str| out.series.iter().filter(|s| s.metric == m).count();
        assert_eq!(series("backdoor_success_rate"), 3);
        assert_eq!(series("backdoor_success_rate_by_round"), 3);
        assert_eq!(series("accuracy"), 3);
        assert!(out.series.iter().all(|s| s.component == "polar"));
    }

    #[test]
    fn a_tight_deadline_drops_updates_under_a_defense() {
        let mut p = params(Defense::Fedavg);
        p.network.deadline_s = 9.0;
        let out = BackdoorExperiment.run(&p, &RunContext::single(5)).unwrap();
        let on_time = out.get("aggregated_updates").unwrap();
        assert!(on_time < 24.0 && on_time + out.get("late_uploads").unwrap() == 24.0);
        assert_eq!(out.get("detection_rate").unwrap(), 0.0);
    }
}
