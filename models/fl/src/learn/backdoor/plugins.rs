//! The backdoor study as plug-ins of the FL network: honest local SGD ([`BackdoorTrainer`]), the
//! colluding attackers ([`BackdoorAdversary`]: full-model, LP or POLAR layer substitution, POLAR's
//! policy learned inside the adversary) and the server's defense ([`DefenseAggregator`], which also
//! counts whom it flagged).

use sim::rng::Rng;

use super::attack::{self, Attack, PolarConfig, PolarReward};
use super::defense::{self, Defense, DefenseConfig};
use super::policy::Policy;
use super::stealth::DefenseCopy;
use crate::learn::common::Sgd;
use crate::learn::convert;
use crate::learn::nn::{Arch, Weights};
use crate::learn::step;
use crate::learn::task::Dataset;
use crate::traits::{
    Adversary, Aggregator, ClientUpdate, Eval, LocalTrainer, ModelParams, PluginError, TrainCost,
};

/// Every client's honest local training (attackers' honest updates included); evaluation is the
/// main-task accuracy on the clean test set.
pub struct BackdoorTrainer<'a> {
    arch: Arch,
    init: Weights,
    clients: &'a [Dataset],
    test: &'a Dataset,
    local: Sgd,
    rngs: Vec<Rng>,
}

impl<'a> BackdoorTrainer<'a> {
    /// Clients holding `clients` (client `k` shuffles with `rngs[k]`) training `arch` from the
    /// global model `init`.
    pub fn new(
        (arch, init): (Arch, Weights),
        clients: &'a [Dataset],
        test: &'a Dataset,
        local: Sgd,
        rngs: Vec<Rng>,
    ) -> Self {
        Self {
            arch,
            init,
            clients,
            test,
            local,
            rngs,
        }
    }
}

impl LocalTrainer for BackdoorTrainer<'_> {
    fn num_clients(&self) -> usize {
        self.clients.len()
    }

    fn init(&mut self, _rng: &mut Rng) -> ModelParams {
        convert::to_params(&self.init)
    }

    /// Local SGD with the client's own stream (the network's shared stream is unused).
    fn train(
        &mut self,
        client: usize,
        global: &ModelParams,
        _rng: &mut Rng,
    ) -> Result<ClientUpdate, PluginError> {
        let g = convert::to_weights(global, &self.init);
        let (e, b, lr) = self.local.tuple();
        let data = &self.clients[client];
        let w = self
            .arch
            .train(&g, data, e, b, lr, &mut self.rngs[client])?;
        Ok(ClientUpdate {
            client,
            delta: convert::to_params(&w).sub(global),
            samples: data.len(),
            // The local loss is not measured by the SGD helper.
            train_loss: 0.0,
        })
    }

    /// FLOPs of one local SGD pass; traffic: the whole model down and up.
    fn cost(&self, client: usize, global: &ModelParams) -> TrainCost {
        let (epochs, _, _) = self.local.tuple();
        TrainCost {
            flops: self
                .arch
                .sgd_flops(&self.init, epochs * self.clients[client].len()),
            download_bytes: global.bytes(),
            upload_bytes: global.bytes(),
        }
    }

    fn evaluate(&self, global: &ModelParams) -> Result<Eval, PluginError> {
        let w = convert::to_weights(global, &self.init);
        let (loss, accuracy) = self.arch.loss_and_accuracy(&w, self.test)?;
        Ok(Eval { loss, accuracy })
    }
}

/// How the attackers behave.
#[derive(Debug, Clone, Copy)]
pub struct AttackConfig {
    /// The attack ([`Attack::None`]: the attackers stay honest).
    pub attack: Attack,
    /// Clients `0..attackers` are the colluding attackers.
    pub attackers: usize,
    /// All clients (POLAR's simulated round assumes everyone takes part).
    pub clients: usize,
    /// SGD of the malicious models (`malicious_local`, else the honest `local`).
    pub local: Sgd,
    /// The honest local SGD (POLAR's `defended` reward: the colluders' benign estimates).
    pub benign_local: Sgd,
    /// How the submitted model is built from the benign and malicious ones (boost, norm bound).
    pub craft: attack::Craft,
    /// LP: share of the full-model BSR the chosen layers must reach.
    pub lp_threshold: f64,
    /// LP: adaptive layer control against the attackers' copy of the server's rule.
    pub lp_adaptive: bool,
    /// The colluders all submit the choosing attacker's crafted update.
    pub shared_update: bool,
    /// POLAR's agent.
    pub polar: PolarConfig,
    /// The server's rule (public), copied by POLAR's `defended` reward.
    pub defense: (Defense, DefenseConfig),
}

/// Per attacker: its clean data, its poisoned training set and its own triggered evaluation set.
pub struct AttackerData {
    /// The attacker's clean examples (what its honest update trains on).
    pub clean: Dataset,
    /// Clean plus triggered copies relabelled to the target.
    pub poisoned: Dataset,
    /// The attacker's own BSR measurement: triggered, relabelled copies of its clean examples that
    /// are not among the poisoned training copies (all of them when none is held out), as LP's
    /// released code measures on a held-out split of the attacker's data.
    pub triggered: Dataset,
}

/// One round of the colluders: its mask, their malicious models (by colluder; only the
/// choosing attacker's when they share one update) and, when they share one update, the crafted
/// model they all submit.
struct RoundPlan {
    round: u32,
    mask: Vec<bool>,
    malicious: Vec<Option<Weights>>,
    shared: Option<Weights>,
}

/// The colluding attackers: each trains a malicious model on its poisoned data and submits its
/// honest update with the round's chosen layers substituted. The layer mask is chosen once per
/// round, by the first attacker on time, from its own benign and malicious models (POLAR: a
/// policy-gradient round of the persistent layer policy; LP: layer substitution analysis). The
/// colluders' malicious models are all trained when the round's first attacker acts (each from
/// its own stream, so the models do not depend on who acts first). With `shared_update` every
/// colluder submits that first attacker's crafted model, as LP's released code does (`attacker()`
/// returns one crafted model per malicious client); the others' malicious models are then not
/// used, so they are not trained, and their streams advance as their training would have
/// advanced them ([`step::skip_train`]).
pub struct BackdoorAdversary<'a> {
    cfg: AttackConfig,
    arch: Arch,
    init: Weights,
    data: &'a [AttackerData],
    rngs: Vec<Rng>,
    /// Per attacker: the stream of the colluders' estimate of its benign model (`defended` reward).
    estimate_rngs: Vec<Rng>,
    agent_rng: Rng,
    policy: Policy,
    /// The current round's plan.
    round: Option<RoundPlan>,
    /// Poisoned layers summed over the corrupted updates.
    pub layers_modified: usize,
    /// Updates corrupted.
    pub corrupted: usize,
    /// Per layer: corrupted updates in which it was poisoned.
    pub layer_counts: Vec<usize>,
    /// Per round with a corrupted update: the layers its mask poisons.
    pub layers_by_round: Vec<usize>,
}

impl<'a> BackdoorAdversary<'a> {
    /// Attackers `0..cfg.attackers` with their `data`, malicious-training streams `rngs`, benign-
    /// estimate streams `estimate_rngs` and POLAR agent stream `agent_rng`, on `arch` models laid
    /// out like `init`.
    pub fn new(
        cfg: AttackConfig,
        (arch, init): (Arch, Weights),
        data: &'a [AttackerData],
        (rngs, estimate_rngs): (Vec<Rng>, Vec<Rng>),
        agent_rng: Rng,
    ) -> Self {
        Self {
            policy: Policy::new(init.layers.len(), cfg.polar.p0),
            layer_counts: vec![0; init.layers.len()],
            cfg,
            arch,
            init,
            data,
            rngs,
            estimate_rngs,
            agent_rng,
            round: None,
            layers_modified: 0,
            corrupted: 0,
            layers_by_round: Vec::new(),
        }
    }

    /// The round's mask, chosen by attacker `k` from the global model `g`, its benign model and
    /// the colluders' malicious models.
    fn choose(
        &mut self,
        g: &Weights,
        (k, benign): (usize, &Weights),
        malicious: &[Option<Weights>],
    ) -> candle_core::Result<Vec<bool>> {
        let c = self.cfg;
        let eval = &self.data[k].triggered;
        let Some(mal) = &malicious[k] else {
            unreachable!("the choosing attacker's malicious model is always trained")
        };
        match c.attack {
            Attack::Full | Attack::None => Ok(vec![true; g.layers.len()]),
            Attack::Lp => {
                let (order, critical) =
                    attack::lp_rank(&self.arch, (g, benign, mal), eval, c.lp_threshold)?;
                if !c.lp_adaptive {
                    return Ok(attack::top_layers(&order, critical));
                }
                let (copy, crafted) = self.defense_copy(g, (k, benign), malicious)?;
                Ok(attack::lp_adaptive(
                    &order,
                    critical,
                    &mut |m: &[bool]| copy.accepts(&crafted(m)),
                ))
            }
            Attack::Polar => {
                let bsr_now = attack::bsr(&self.arch, g, eval)?;
                let mut judged: Judge<'_> = match c.polar.reward {
                    PolarReward::Local => {
                        Box::new(move |m: &[bool]| c.craft.apply(g, benign, mal, m))
                    }
                    PolarReward::Aggregate => Box::new(move |m: &[bool]| {
                        let crafted = c.craft.apply(g, benign, mal, m);
                        attack::simulated_aggregate(g, benign, &crafted, c.attackers, c.clients)
                    }),
                    PolarReward::Defended => {
                        let (copy, crafted) = self.defense_copy(g, (k, benign), malicious)?;
                        let gf = g.flatten();
                        Box::new(move |m: &[bool]| {
                            let d = copy.defended(&crafted(m));
                            let flat: Vec<f32> = gf.iter().zip(&d).map(|(a, b)| a + b).collect();
                            g.with_flat(&flat)
                        })
                    }
                };
                attack::polar_round(
                    &self.arch,
                    &mut self.policy,
                    &c.polar,
                    (eval, bsr_now),
                    &mut *judged,
                    &mut self.agent_rng,
                )
            }
        }
    }

    /// The attackers' copy of the server's rule for this round ([`DefenseCopy`], built on the
    /// colluders' benign changes, attacker `k`'s first), and the colluders' crafted changes for a
    /// mask in the same order: each colluder's own benign model with its malicious layers, or `k`'s
    /// crafted model for all of them when they share one update.
    fn defense_copy<'m>(
        &mut self,
        g: &'m Weights,
        (k, benign): (usize, &Weights),
        malicious: &'m [Option<Weights>],
    ) -> candle_core::Result<(DefenseCopy, CraftedChanges<'m>)> {
        let c = self.cfg;
        let benigns = self.benign_estimates(g, (k, benign))?;
        let gf = g.flatten();
        let copy = DefenseCopy::new(
            c.defense,
            benigns.iter().map(|b| change(b, &gf)).collect(),
            c.clients,
            &mut self.agent_rng,
        );
        // The trained models, attacker `k`'s first (only `k`'s with `shared_update`).
        let order: Vec<&Weights> = std::iter::once(k)
            .chain((0..malicious.len()).filter(|j| *j != k))
            .filter_map(|j| malicious[j].as_ref())
            .collect();
        let crafted: CraftedChanges<'m> = if c.shared_update {
            let (b0, m0, a) = (benigns[0].clone(), order[0], malicious.len());
            Box::new(move |m: &[bool]| vec![change(&c.craft.apply(g, &b0, m0, m), &gf); a])
        } else {
            Box::new(move |m: &[bool]| {
                benigns
                    .iter()
                    .zip(&order)
                    .map(|(b, mal)| change(&c.craft.apply(g, b, mal, m), &gf))
                    .collect()
            })
        };
        Ok((copy, crafted))
    }

    /// The colluders' benign models, attacker `k`'s own first: the others are estimated by honest
    /// SGD on their clean data from their own estimate streams.
    fn benign_estimates(
        &mut self,
        g: &Weights,
        (k, benign): (usize, &Weights),
    ) -> candle_core::Result<Vec<Weights>> {
        let (e, b, lr) = self.cfg.benign_local.tuple();
        let mut out = vec![benign.clone()];
        for j in (0..self.data.len()).filter(|j| *j != k) {
            let w =
                self.arch
                    .train(g, &self.data[j].clean, e, b, lr, &mut self.estimate_rngs[j])?;
            out.push(w);
        }
        Ok(out)
    }

    fn craft(
        &mut self,
        round: u32,
        k: usize,
        global: &ModelParams,
        honest: &ModelParams,
    ) -> candle_core::Result<Weights> {
        let g = convert::to_weights(global, &self.init);
        let mut local = global.clone();
        local.axpy(1.0, honest);
        let benign = convert::to_weights(&local, &self.init);
        if !matches!(&self.round, Some(p) if p.round == round) {
            let (e, b, lr) = self.cfg.local.tuple();
            let mut malicious = Vec::with_capacity(self.data.len());
            for (j, (d, rng)) in self.data.iter().zip(&mut self.rngs).enumerate() {
                if self.cfg.shared_update && j != k {
                    step::skip_train(&d.poisoned, e, rng);
                    malicious.push(None);
                } else {
                    malicious.push(Some(self.arch.train(&g, &d.poisoned, e, b, lr, rng)?));
                }
            }
            let mask = self.choose(&g, (k, &benign), &malicious)?;
            let shared = match (self.cfg.shared_update, &malicious[k]) {
                (true, Some(mal)) => Some(self.cfg.craft.apply(&g, &benign, mal, &mask)),
                _ => None,
            };
            self.layers_by_round
                .push(mask.iter().filter(|m| **m).count());
            self.round = Some(RoundPlan {
                round,
                mask,
                malicious,
                shared,
            });
        }
        let Some(plan) = &self.round else {
            unreachable!("the round's mask was just chosen")
        };
        self.layers_modified += plan.mask.iter().filter(|m| **m).count();
        for (n, on) in self.layer_counts.iter_mut().zip(&plan.mask) {
            *n += usize::from(*on);
        }
        self.corrupted += 1;
        Ok(match (&plan.shared, &plan.malicious[k]) {
            (Some(w), _) => w.clone(),
            (None, Some(mal)) => self.cfg.craft.apply(&g, &benign, mal, &plan.mask),
            (None, None) => {
                unreachable!("without a shared update every malicious model is trained")
            }
        })
    }
}

/// POLAR's judge of a round: the model whose backdoor success rewards a mask.
type Judge<'m> = Box<dyn FnMut(&[bool]) -> Weights + 'm>;

/// The colluders' crafted changes (model − global, flat) for a mask.
type CraftedChanges<'m> = Box<dyn Fn(&[bool]) -> Vec<Vec<f32>> + 'm>;

/// `w − g` flattened.
fn change(w: &Weights, g: &[f32]) -> Vec<f32> {
    w.flatten().iter().zip(g).map(|(a, b)| a - b).collect()
}

impl Adversary for BackdoorAdversary<'_> {
    fn is_adversary(&self, client: usize) -> bool {
        self.cfg.attack != Attack::None && client < self.cfg.attackers
    }

    fn corrupt(
        &mut self,
        round: u32,
        update: &mut ClientUpdate,
        global: &ModelParams,
        _rng: &mut Rng,
    ) -> Result<(), PluginError> {
        let w = self.craft(round, update.client, global, &update.delta)?;
        update.delta = convert::to_params(&w).sub(global);
        Ok(())
    }
}

/// Whom a defense flagged (excluded, zero-trusted, clipped or outvoted), split by attackers
/// (clients `0..attackers`) and benign clients.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Flags {
    /// Attacker updates aggregated.
    pub attacker_updates: usize,
    /// … of which flagged.
    pub attackers_flagged: usize,
    /// Benign updates aggregated.
    pub benign_updates: usize,
    /// … of which flagged.
    pub benign_flagged: usize,
}

/// A server defense over the round's updates; the FLTrust root update is the server's own SGD on
/// its clean root data from the current global model (trained for FLTrust only).
pub struct DefenseAggregator<'a> {
    defense: Defense,
    cfg: DefenseConfig,
    arch: Arch,
    init: Weights,
    root: &'a Dataset,
    local: Sgd,
    root_rng: Rng,
    attackers: usize,
    /// Flag counts over the run.
    pub flags: Flags,
    /// Flag counts of each round.
    pub flags_by_round: Vec<Flags>,
}

impl<'a> DefenseAggregator<'a> {
    /// `defense` tuned by `cfg` on `arch` models laid out like `init`, with root data `root` trained
    /// by `local` SGD on `root_rng`; clients `0..attackers` count as attackers in [`Flags`].
    pub fn new(
        (defense, cfg): (Defense, DefenseConfig),
        (arch, init): (Arch, Weights),
        (root, local, root_rng): (&'a Dataset, Sgd, Rng),
        attackers: usize,
    ) -> Self {
        Self {
            defense,
            cfg,
            arch,
            init,
            root,
            local,
            root_rng,
            attackers,
            flags: Flags::default(),
            flags_by_round: Vec::new(),
        }
    }
}

impl Aggregator for DefenseAggregator<'_> {
    fn name(&self) -> &str {
        self.defense.name()
    }

    fn aggregate(
        &mut self,
        global: &ModelParams,
        updates: &[ClientUpdate],
        rng: &mut Rng,
    ) -> Result<ModelParams, PluginError> {
        // Only FLTrust reads the root update (and only it draws from `root_rng`).
        let root: Vec<f32> = if self.defense == Defense::Fltrust {
            let g = convert::to_weights(global, &self.init);
            let (e, b, lr) = self.local.tuple();
            let root_model = self
                .arch
                .train(&g, self.root, e, b, lr, &mut self.root_rng)?;
            convert::to_params(&root_model)
                .sub(global)
                .values()
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        let flat: Vec<Vec<f32>> = updates
            .iter()
            .map(|u| u.delta.values().copied().collect())
            .collect();
        let v = defense::aggregate(self.defense, &flat, &root, &self.cfg, rng);
        let mut round = Flags::default();
        for (u, f) in updates.iter().zip(&v.flagged) {
            let f = usize::from(*f);
            if u.client < self.attackers {
                round.attacker_updates += 1;
                round.attackers_flagged += f;
            } else {
                round.benign_updates += 1;
                round.benign_flagged += f;
            }
        }
        self.flags.attacker_updates += round.attacker_updates;
        self.flags.attackers_flagged += round.attackers_flagged;
        self.flags.benign_updates += round.benign_updates;
        self.flags.benign_flagged += round.benign_flagged;
        self.flags_by_round.push(round);
        let mut next = global.clone();
        let mut step = v.update.iter();
        for x in next.layers.iter_mut().flat_map(|l| l.values.iter_mut()) {
            *x += step.next().copied().unwrap_or(0.0);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::backdoor::attack::PolarReward;

    fn data(seed: u64) -> Vec<AttackerData> {
        let mut rng = sim::rng::stream(seed, "plugins");
        (0..2)
            .map(|_| {
                let x: Vec<f32> = (0..40)
                    .map(|_| rand::Rng::random::<f32>(&mut rng))
                    .collect();
                let clean = Dataset {
                    dim: 4,
                    x,
                    y: (0..10).map(|i| (i % 2) as u32).collect(),
                };
                let mut trig = clean.clone();
                trig.x.iter_mut().step_by(4).for_each(|v| *v = 3.0);
                trig.y.iter_mut().for_each(|y| *y = 0);
                let mut poisoned = clean.clone();
                poisoned.extend(&trig);
                AttackerData {
                    clean,
                    poisoned,
                    triggered: trig,
                }
            })
            .collect()
    }

    /// Both attackers' submitted changes after one round of LP with adaptive control.
    fn submitted(shared_update: bool) -> Vec<Vec<f32>> {
        let sgd = Sgd {
            epochs: 1,
            batch: 5,
            lr: 0.1,
        };
        let cfg = AttackConfig {
            attack: Attack::Lp,
            attackers: 2,
            clients: 6,
            local: sgd,
            benign_local: sgd,
            craft: attack::Craft {
                boost: 1.0,
                norm_bound: None,
            },
            lp_threshold: 0.9,
            lp_adaptive: true,
            shared_update,
            polar: PolarConfig {
                samples: 2,
                steps: 1,
                lr: 1.0,
                penalty: 0.1,
                p0: 0.5,
                reward: PolarReward::Defended,
            },
            defense: (
                Defense::MultiKrum,
                DefenseConfig {
                    assumed_attackers: 2,
                    rlr_threshold: 2,
                    clip_factor: 1.5,
                    flame_noise: 0.0,
                },
            ),
        };
        let mut rng = sim::rng::stream(5, "plugins-init");
        let init = Weights::init(&[4, 3, 2], &mut rng);
        let data = data(5);
        let streams = |name: &str| (0..2).map(|k| sim::rng::stream(k, name)).collect();
        let mut adv = BackdoorAdversary::new(
            cfg,
            (Arch::Mlp, init.clone()),
            &data,
            (streams("mal"), streams("est")),
            sim::rng::stream(9, "agent"),
        );
        let global = convert::to_params(&init);
        (0..2)
            .map(|client| {
                let honest = Arch::Mlp
                    .train(&init, &data[client].clean, 1, 5, 0.1, &mut rng)
                    .unwrap();
                let mut u = ClientUpdate {
                    client,
                    delta: convert::to_params(&honest).sub(&global),
                    samples: 10,
                    train_loss: 0.0,
                };
                adv.corrupt(0, &mut u, &global, &mut rng).unwrap();
                assert!((1..=2).contains(&(adv.layers_modified / adv.corrupted)));
                u.delta.values().copied().collect()
            })
            .collect()
    }

    /// With a shared update both colluders submit the first attacker's crafted model; without,
    /// each submits its own.
    #[test]
    fn colluders_share_one_crafted_update_when_asked() {
        let shared = submitted(true);
        assert_eq!(shared[0], shared[1]);
        let own = submitted(false);
        assert_ne!(own[0], own[1]);
    }
}
