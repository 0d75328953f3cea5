//! `fl-backdoor`: an FL network with colluding attackers that plant a trigger backdoor; one attack
//! (full-model, LP, POLAR) against one server defense, measured on backdoor success, main-task accuracy,
//! layers modified and how often the defense flagged the attackers.

use sim::experiment::{Experiment, RunContext, RunError, RunOutput};
use sim::rng::Rng;

use super::attack::{self, Attack};
use super::defense;
use super::params::BackdoorParams;
use super::policy::Policy;
use crate::fl::learn::common::model_err;
use crate::fl::learn::nn::{self, Weights};
use crate::fl::learn::task::{Dataset, Prototypes, Trigger, dirichlet_label_skew};

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
}

struct Outcome {
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
    })
}

fn delta(w: &Weights, global: &[f32]) -> Vec<f32> {
    w.flatten().iter().zip(global).map(|(a, b)| a - b).collect()
}

fn run_attack(
    attack: Attack,
    p: &BackdoorParams,
    s: &Setup,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<Outcome, RunError> {
    let n = p.clients;
    let (e, b, lr) = p.local.tuple();
    let mut rngs: Vec<Rng> = (0..n)
        .map(|k| ctx.rng(&format!("fl-backdoor/client/{k}")))
        .collect();
    let mut mal_rngs: Vec<Rng> = (0..p.attackers)
        .map(|k| ctx.rng(&format!("fl-backdoor/attacker/{k}")))
        .collect();
    let mut root_rng = ctx.rng("fl-backdoor/root");
    let mut def_rng = ctx.rng("fl-backdoor/defense");
    let mut agent_rng = ctx.rng("fl-backdoor/polar");
    let layers = s.init.layers.len();
    let mut policy = Policy::new(layers, p.polar.p0);
    let craft = attack::Craft {
        boost: p.boost as f32,
        norm_bound: p.norm_bound.map(|b| b as f32),
    };
    let mut global = s.init.clone();
    let (mut flagged_att, mut flagged_ben, mut modified) = (0usize, 0usize, 0usize);
    let mut bsr_sum = 0.0;
    let (mut main_accuracy, mut bsr_final) = (0.0, 0.0);
    for round in 0..p.rounds {
        let g = global.flatten();
        let mut benign = Vec::with_capacity(n);
        for (d, rng) in s.clients.iter().zip(rngs.iter_mut()) {
            benign.push(nn::train(&global, d, e, b, lr, rng).map_err(model_err)?);
        }
        let mut updates: Vec<Vec<f32>> = benign.iter().map(|w| delta(w, &g)).collect();
        if attack != Attack::None && p.attackers > 0 {
            let mut malicious = Vec::with_capacity(p.attackers);
            for ((d, _), rng) in s.poisoned.iter().zip(mal_rngs.iter_mut()) {
                malicious.push(nn::train(&global, d, e, b, lr, rng).map_err(model_err)?);
            }
            let eval = &s.poisoned[0].1;
            let mask = match attack {
                Attack::Full | Attack::None => vec![true; layers],
                Attack::Lp => {
                    attack::lp_select(&global, &benign[0], &malicious[0], eval, p.lp_threshold)
                        .map_err(model_err)?
                }
                Attack::Polar => attack::polar_round(
                    &mut policy,
                    &p.polar,
                    (&global, &benign[0], &malicious[0]),
                    eval,
                    (p.attackers, n),
                    craft,
                    &mut agent_rng,
                )
                .map_err(model_err)?,
            };
            modified += mask.iter().filter(|m| **m).count() * p.attackers;
            for k in 0..p.attackers {
                let crafted = craft.apply(&global, &benign[k], &malicious[k], &mask);
                updates[k] = delta(&crafted, &g);
            }
        }
        let root = delta(
            &nn::train(&global, &s.root, e, b, lr, &mut root_rng).map_err(model_err)?,
            &g,
        );
        let v = defense::aggregate(p.defense, &updates, &root, &p.defense_config, &mut def_rng);
        flagged_att += v.flagged[..p.attackers].iter().filter(|f| **f).count();
        flagged_ben += v.flagged[p.attackers..].iter().filter(|f| **f).count();
        let next: Vec<f32> = g.iter().zip(&v.update).map(|(a, d)| a + d).collect();
        global = global.with_flat(&next);
        main_accuracy = nn::accuracy(&global, &s.test).map_err(model_err)?;
        bsr_final = attack::bsr(&global, &s.test_triggered).map_err(model_err)?;
        bsr_sum += bsr_final;
        let t = (round + 1) as f64;
        out.sample(t, attack.name(), "backdoor_success_rate", bsr_final);
        out.sample(t, attack.name(), "main_accuracy", main_accuracy);
    }
    let attacker_rounds = (p.attackers * p.rounds).max(1) as f64;
    let benign_rounds = ((n - p.attackers) * p.rounds).max(1) as f64;
    Ok(Outcome {
        main_accuracy,
        bsr_final,
        bsr_mean: bsr_sum / p.rounds as f64,
        layers_modified: modified as f64 / attacker_rounds,
        detection_rate: flagged_att as f64 / attacker_rounds,
        false_positive_rate: flagged_ben as f64 / benign_rounds,
    })
}

impl Experiment for BackdoorExperiment {
    type Params = BackdoorParams;
    const NAME: &'static str = "fl-backdoor";
    const DESCRIPTION: &'static str = "Layer-wise backdoor attacks (full-model, LP, POLAR's RL layer selection) against robust FL aggregation defenses";

    fn run(&self, p: &BackdoorParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let s = setup(p, ctx)?;
        let mut out = RunOutput::default();
        let o = run_attack(p.attack, p, &s, ctx, &mut out)?;
        out.metric("main_accuracy", o.main_accuracy)
            .metric("backdoor_success_rate", o.bsr_final)
            .metric("backdoor_success_rate_mean", o.bsr_mean)
            .metric("layers_modified", o.layers_modified)
            .metric("detection_rate", o.detection_rate)
            .metric("false_positive_rate", o.false_positive_rate);
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
