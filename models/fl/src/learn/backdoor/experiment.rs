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

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use rand::seq::SliceRandom;
use sim::experiment::{Experiment, RunContext, RunError, RunOutput};
use sim::rng::Rng;

use super::attack::{self, Attack};
use super::params::{BackdoorParams, DataSource, ModelSpec};
use super::plugins::{
    AttackConfig, AttackerData, BackdoorAdversary, BackdoorTrainer, DefenseAggregator,
};
use crate::devices::DeviceProfile;
use crate::learn::cnn::{Cnn, CnnShape};
use crate::learn::common::model_err;
use crate::learn::convert;
use crate::learn::digits;
use crate::learn::net;
use crate::learn::nn::{Arch, Weights};
use crate::learn::task::{Dataset, Prototypes, Trigger, dirichlet_label_skew, skewed_split};
use crate::network::{NetworkRun, Plugins, run_network};

/// The POLAR study.
pub struct BackdoorExperiment;

struct Setup {
    arch: Arch,
    init: Weights,
    clients: Vec<Dataset>,
    /// Per attacker: its clean, poisoned training and own triggered evaluation sets.
    attackers: Vec<AttackerData>,
    root: Dataset,
    test: Dataset,
    test_triggered: Dataset,
    devices: Vec<DeviceProfile>,
    /// Whether the examples are the real digits (false: synthetic prototypes).
    real_data: bool,
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

/// The examples of a run: client sets, root, test and pretraining sets.
struct Examples {
    clients: Vec<Dataset>,
    root: Dataset,
    test: Dataset,
    pretrain: Dataset,
    real: bool,
}

/// Examples drawn from synthetic prototypes of shape `p.task` (label skew per client).
fn prototype_examples(p: &BackdoorParams, skew: &[Vec<f64>], rng: &mut Rng) -> Examples {
    let task = Prototypes::new(p.task, rng);
    let uniform = vec![1.0; p.task.classes];
    let clients = skew
        .iter()
        .map(|w| task.sample(p.samples_per_client, w, rng))
        .collect();
    let root = task.sample(p.root_samples, &uniform, rng);
    let test = task.sample(p.test_samples, &uniform, rng);
    let pretrain = task.sample(p.pretrain_samples, &uniform, rng);
    Examples {
        clients,
        root,
        test,
        pretrain,
        real: false,
    }
}

/// The real digits, shuffled and split without replacement: test, root and pretraining sets first
/// (uniform over the shuffled images), then the clients' sets with label skew.
fn digit_examples(p: &BackdoorParams, all: &Dataset, skew: &[Vec<f64>], rng: &mut Rng) -> Examples {
    let mut idx: Vec<usize> = (0..all.len()).collect();
    idx.shuffle(rng);
    let mut at = 0;
    let mut take = |n: usize| {
        let part = all.subset(&idx[at..at + n]);
        at += n;
        part
    };
    let test = take(p.test_samples);
    let root = take(p.root_samples);
    let pretrain = take(p.pretrain_samples);
    let pool = all.subset(&idx[at..]);
    Examples {
        clients: skewed_split(&pool, skew, p.samples_per_client, rng),
        root,
        test,
        pretrain,
        real: true,
    }
}

/// The network of `p` over inputs of `p.task`, and its initial weights drawn from `rng`.
fn model(p: &BackdoorParams, rng: &mut Rng) -> (Arch, Weights) {
    match &p.model {
        ModelSpec::Mlp { hidden } => {
            let mut widths = vec![p.task.dim];
            widths.extend(hidden);
            widths.push(p.task.classes);
            (Arch::Mlp, Weights::init(&widths, rng))
        }
        ModelSpec::Cnn(shape) => {
            let net = cnn(p, *shape);
            (Arch::Cnn(net), net.init(rng))
        }
    }
}

/// The CNN of `shape` over the images of `p.task` (side from `task.dim`, validated square).
fn cnn(p: &BackdoorParams, shape: CnnShape) -> Cnn {
    Cnn {
        shape,
        side: p.image_side().unwrap_or(0),
        classes: p.task.classes,
    }
}

/// Pretrained initial models of this process, by run seed and setup params ([`pretrained`]).
type PretrainMemo = HashMap<(u64, String), (Arch, Weights)>;

/// Entries kept before the memo starts over (each is one small model).
const PRETRAIN_MEMO_ENTRIES: usize = 64;

/// The run's architecture and initial model, pretrained on `pretrain` from the stream
/// `fl-backdoor/init`. Memoised per process: the runs of one replication under common random
/// numbers (attacks × defenses) share the seed and every param the pretraining reads, so they
/// would train the identical model; it is trained once (exact: same seed, same stream, same data).
/// The key is the seed and the params without `attack`, `baselines`, `defense`, `defense_config`.
fn pretrained(
    p: &BackdoorParams,
    ctx: &RunContext,
    pretrain: &Dataset,
) -> Result<(Arch, Weights), RunError> {
    static MEMO: OnceLock<Mutex<PretrainMemo>> = OnceLock::new();
    let mut setup = serde_json::to_value(p).map_err(model_err)?;
    if let Some(m) = setup.as_object_mut() {
        for k in ["attack", "baselines", "defense", "defense_config"] {
            m.remove(k);
        }
    }
    let key = (ctx.seed, setup.to_string());
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hit) = memo.lock().map_err(model_err)?.get(&key) {
        return Ok(hit.clone());
    }
    let mut init_rng = ctx.rng("fl-backdoor/init");
    let (arch, w0) = model(p, &mut init_rng);
    let (e, b, lr) = p.pretrain.tuple();
    let init = arch
        .train(&w0, pretrain, e, b, lr, &mut init_rng)
        .map_err(model_err)?;
    let mut m = memo.lock().map_err(model_err)?;
    if m.len() >= PRETRAIN_MEMO_ENTRIES {
        m.clear();
    }
    m.insert(key, (arch, init.clone()));
    Ok((arch, init))
}

fn setup(p: &BackdoorParams, ctx: &RunContext) -> Result<Setup, RunError> {
    let mut rng = ctx.rng("fl-backdoor/task");
    let skew = dirichlet_label_skew(p.clients, p.task.classes, p.dirichlet_alpha, &mut rng);
    let ex = match (p.data, digits::locate()) {
        (DataSource::Digits, Some(path)) => {
            let all = digits::load(&path).map_err(RunError::Model)?;
            digit_examples(p, &all, &skew, &mut rng)
        }
        _ => prototype_examples(p, &skew, &mut rng),
    };
    let trigger = Trigger {
        coords: (p.task.dim - p.trigger.size..p.task.dim).collect(),
        value: p.trigger.value as f32,
    };
    let target = p.trigger.target_label;
    let attackers = ex.clients[..p.attackers]
        .iter()
        .map(|d| {
            let n_poison = (p.poison_fraction * d.len() as f64).round() as usize;
            let all = d.triggered(&trigger, target);
            let mut poisoned = d.clone();
            poisoned.extend(&all.take(n_poison));
            let held_out: Vec<usize> = (n_poison..all.len()).collect();
            AttackerData {
                clean: d.clone(),
                poisoned,
                triggered: if held_out.is_empty() {
                    all
                } else {
                    all.subset(&held_out)
                },
            }
        })
        .collect();
    let test_triggered = ex.test.triggered(&trigger, target);
    let (arch, init) = pretrained(p, ctx, &ex.pretrain)?;
    Ok(Setup {
        arch,
        init,
        clients: ex.clients,
        attackers,
        root: ex.root,
        test: ex.test,
        test_triggered,
        devices: p
            .devices
            .profiles(p.clients, &mut ctx.rng("fl-backdoor/devices"))?,
        real_data: ex.real,
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
        (s.arch, s.init.clone()),
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
            local: p.malicious_local.unwrap_or(p.local),
            benign_local: p.local,
            craft: attack::Craft {
                boost: p.boost as f32,
                norm_bound: p.norm_bound.map(|b| b as f32),
            },
            lp_threshold: p.lp_threshold,
            lp_adaptive: p.lp_adaptive,
            shared_update: p.shared_update,
            polar: p.polar,
            defense: (p.defense, p.defense_config),
        },
        (s.arch, s.init.clone()),
        &s.attackers,
        (
            streams("attacker", p.attackers),
            streams("attacker-estimate", p.attackers),
        ),
        ctx.rng("fl-backdoor/polar"),
    );
    let mut aggregator = DefenseAggregator::new(
        (p.defense, p.defense_config),
        (s.arch, s.init.clone()),
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
            bsr.push(attack::bsr(&s.arch, &w, &s.test_triggered)?);
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
    // Per round: the share of attacker updates flagged and the layers the round's mask poisons
    // (rounds without an attacker on time count as 0).
    let detection: Vec<f64> = aggregator
        .flags_by_round
        .iter()
        .map(|r| rate(r.attackers_flagged, r.attacker_updates))
        .collect();
    net::sample_curve(out, &run, attack.name(), "detection_rate", &detection);
    if adversary.layers_by_round.len() == run.rounds.len() {
        let layers: Vec<f64> = adversary
            .layers_by_round
            .iter()
            .map(|n| *n as f64)
            .collect();
        net::sample_curve(out, &run, attack.name(), "layers_modified", &layers);
    }
    // Series over the layer index (its `t_s`): the share of corrupted updates poisoning each layer.
    for (l, n) in adversary.layer_counts.iter().enumerate() {
        let freq = rate(*n, adversary.corrupted);
        out.sample(l as f64, attack.name(), "layer_selection_frequency", freq);
    }
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

    /// The MLP estimate of `learn::common`; for the CNN, the same memory terms with its parameter
    /// count and `6 × MACs` per example-pass (poisoning and defenses add less than a round's
    /// training).
    fn estimate(&self, p: &BackdoorParams) -> sim::estimate::ResourceEstimate {
        let run = crate::learn::common::MlpRun {
            clients: p.clients,
            task: &p.task,
            hidden: match &p.model {
                ModelSpec::Mlp { hidden } => hidden,
                ModelSpec::Cnn(_) => &[],
            },
            samples_per_client: p.samples_per_client,
            other_samples: p.test_samples + p.root_samples + p.pretrain_samples,
            network: &p.network,
            local: &p.local,
            methods: 1 + p.baselines.len(),
        };
        let ModelSpec::Cnn(shape) = &p.model else {
            return crate::learn::common::mlp_estimate(&run);
        };
        let net = cnn(p, *shape);
        let (clients, samples) = (p.clients as f64, p.samples_per_client as f64);
        let dim = p.task.dim as f64;
        let params = net.param_count() as f64;
        sim::estimate::ResourceEstimate::default()
            .memory_product(
                dim * 4.0,
                &[("clients", clients), ("samples_per_client", samples)],
            )
            .memory("task.dim", run.other_samples as f64 * dim * 4.0)
            .memory_product(16.0, &[("clients", clients), ("model.cnn", params)])
            .work_product(
                6.0 * p.network.participation * run.methods as f64,
                &[
                    ("network.rounds", f64::from(p.network.rounds)),
                    ("clients", clients),
                    ("local.epochs", p.local.epochs as f64),
                    ("samples_per_client", samples),
                    ("model.cnn", net.macs()),
                ],
            )
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
            .metric("false_positive_rate", o.false_positive_rate)
            .metric("real_data", f64::from(u8::from(s.real_data)));
        net::network_metrics(&mut out, &o.run, "");
        if !p.baselines.is_empty() {
            let mut best = f64::NEG_INFINITY;
            for &a in &p.baselines {
                let ob = run_attack(a, p, &s, ctx, &mut out)?;
                let key = a.name();
                out.metric(format!("backdoor_success_rate_{key}"), ob.bsr_final)
                    .metric(format!("detection_rate_{key}"), ob.detection_rate)
                    .metric(format!("layers_modified_{key}"), ob.layers_modified);
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
            model: ModelSpec::Mlp {
                hidden: vec![12, 8],
            },
            data: DataSource::Prototypes,
            dirichlet_alpha: 1.0,
            samples_per_client: 30,
            test_samples: 60,
            root_samples: 20,
            pretrain_samples: 100,
            pretrain: sgd,
            local: sgd,
            malicious_local: None,
            trigger: TriggerParams {
                size: 2,
                value: 4.0,
                target_label: 0,
            },
            poison_fraction: 0.5,
            boost: 1.0,
            norm_bound: None,
            lp_threshold: 0.9,
            lp_adaptive: false,
            shared_update: false,
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

    /// The 15-layer CNN on the digits (or their stand-in when the file is absent): LP's and
    /// POLAR's masks are per-layer series over all 15 layers, and the run says which data it used.
    #[test]
    fn lp_and_polar_choose_among_fifteen_cnn_layers_on_the_digits() {
        let mut p = params(Defense::MultiKrum);
        p.model = ModelSpec::Cnn(CnnShape {
            channels: [2, 4],
            blocks: 3,
        });
        p.data = DataSource::Digits;
        p.task = TaskShape {
            dim: 64,
            classes: 10,
            modes: 1,
            separation: 1.0,
            noise: 0.5,
        };
        p.trigger.value = 1.0;
        p.network = crate::learn::net::on_time_network(2);
        p.baselines = vec![Attack::Lp];
        assert!(sim::validate::Checks::of(&p).is_empty());
        let out = BackdoorExperiment.run(&p, &RunContext::single(3)).unwrap();
        let real = out.get("real_data").unwrap();
        assert_eq!(real, f64::from(u8::from(digits::locate().is_some())));
        for attack in ["polar", "lp"] {
            let freq: Vec<f64> = out
                .series
                .iter()
                .filter(|s| s.metric == "layer_selection_frequency" && s.component == attack)
                .map(|s| s.value)
                .collect();
            assert_eq!(freq.len(), 15, "{attack}");
            assert!(freq.iter().all(|f| (0.0..=1.0).contains(f)));
            assert!(freq.iter().any(|f| *f > 0.0), "{attack} poisons no layer");
        }
        let layers = out.get("layers_modified").unwrap();
        assert!((1.0..=15.0).contains(&layers), "{layers}");
        assert!(out.get("layers_modified_lp").unwrap() >= 1.0);
    }

    /// POLAR's `defended` reward (the attackers' copy of the server's rule, the other colluder's
    /// benign model re-estimated) runs on the network, deterministically, with longer malicious
    /// training, and still submits at least one layer.
    #[test]
    fn the_defended_reward_runs_deterministically() {
        let mut p = params(Defense::MultiKrum);
        p.polar.reward = PolarReward::Defended;
        p.malicious_local = Some(Sgd {
            epochs: 2,
            batch: 10,
            lr: 0.1,
        });
        let out = BackdoorExperiment.run(&p, &RunContext::single(6)).unwrap();
        assert_eq!(
            out,
            BackdoorExperiment.run(&p, &RunContext::single(6)).unwrap()
        );
        let layers = out.get("layers_modified").unwrap();
        assert!((1.0..=3.0).contains(&layers), "{layers}");
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
