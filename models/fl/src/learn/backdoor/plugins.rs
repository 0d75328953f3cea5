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
    /// Every clean example triggered and relabelled (the attacker's own BSR measurement).
    pub triggered: Dataset,
}

/// The colluding attackers: each trains a malicious model on its poisoned data and submits its
/// honest update with the round's chosen layers substituted. The layer mask is chosen once per
/// round, by the first attacker on time, from its own benign and malicious models (POLAR: a
/// policy-gradient round of the persistent layer policy; LP: layer substitution analysis). The
/// colluders' malicious models are all trained when the round's first attacker acts (each from
/// its own stream, so the models do not depend on who acts first).
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
    /// The round, its mask and the attackers' malicious models.
    round: Option<(u32, Vec<bool>, Vec<Weights>)>,
    /// Poisoned layers summed over the corrupted updates.
    pub layers_modified: usize,
    /// Updates corrupted.
    pub corrupted: usize,
    /// Per layer: corrupted updates in which it was poisoned.
    pub layer_counts: Vec<usize>,
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
        }
    }

    /// The round's mask, chosen by attacker `k` from the global model `g`, its benign model and
    /// the colluders' malicious models.
    fn choose(
        &mut self,
        g: &Weights,
        (k, benign): (usize, &Weights),
        malicious: &[Weights],
    ) -> candle_core::Result<Vec<bool>> {
        let c = self.cfg;
        let eval = &self.data[k].triggered;
        let mal = &malicious[k];
        match c.attack {
            Attack::Full | Attack::None => Ok(vec![true; g.layers.len()]),
            Attack::Lp => attack::lp_select(&self.arch, (g, benign, mal), eval, c.lp_threshold),
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
                        let benigns = self.benign_estimates(g, (k, benign))?;
                        let mut order = vec![&malicious[k]];
                        order.extend(
                            (0..malicious.len())
                                .filter(|j| *j != k)
                                .map(|j| &malicious[j]),
                        );
                        defended_judge(c, g, benigns, order, &mut self.agent_rng)
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
        if !matches!(&self.round, Some((r, _, _)) if *r == round) {
            let (e, b, lr) = self.cfg.local.tuple();
            let mut malicious = Vec::with_capacity(self.data.len());
            for (d, rng) in self.data.iter().zip(&mut self.rngs) {
                malicious.push(self.arch.train(&g, &d.poisoned, e, b, lr, rng)?);
            }
            let mask = self.choose(&g, (k, &benign), &malicious)?;
            self.round = Some((round, mask, malicious));
        }
        let Some((_, mask, malicious)) = &self.round else {
            unreachable!("the round's mask was just chosen")
        };
        self.layers_modified += mask.iter().filter(|m| **m).count();
        for (n, on) in self.layer_counts.iter_mut().zip(mask) {
            *n += usize::from(*on);
        }
        self.corrupted += 1;
        Ok(self.cfg.craft.apply(&g, &benign, &malicious[k], mask))
    }
}

/// POLAR's judge of a round: the model whose backdoor success rewards a mask.
type Judge<'m> = Box<dyn FnMut(&[bool]) -> Weights + 'm>;

/// `w − g` flattened.
fn change(w: &Weights, g: &[f32]) -> Vec<f32> {
    w.flatten().iter().zip(g).map(|(a, b)| a - b).collect()
}

/// POLAR's `defended` judge: a mask's model is the choosing attacker's benign model plus what of
/// the colluders' crafted updates survives the copy of the server's rule
/// ([`DefenseCopy::defended`]). `benigns` and `malicious` are per colluder, the choosing
/// attacker's first.
fn defended_judge<'m>(
    c: AttackConfig,
    g: &'m Weights,
    benigns: Vec<Weights>,
    malicious: Vec<&'m Weights>,
    rng: &mut Rng,
) -> Judge<'m> {
    let gf = g.flatten();
    let copy = DefenseCopy::new(
        c.defense,
        benigns.iter().map(|b| change(b, &gf)).collect(),
        c.clients,
        rng,
    );
    Box::new(move |m: &[bool]| {
        let crafted: Vec<Vec<f32>> = benigns
            .iter()
            .zip(&malicious)
            .map(|(b, mal)| change(&c.craft.apply(g, b, mal, m), &gf))
            .collect();
        let d = copy.defended(&crafted);
        let flat: Vec<f32> = gf.iter().zip(&d).map(|(a, b)| a + b).collect();
        g.with_flat(&flat)
    })
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
/// its clean root data from the current global model.
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
        let g = convert::to_weights(global, &self.init);
        let (e, b, lr) = self.local.tuple();
        let root_model = self
            .arch
            .train(&g, self.root, e, b, lr, &mut self.root_rng)?;
        let root: Vec<f32> = convert::to_params(&root_model)
            .sub(global)
            .values()
            .copied()
            .collect();
        let flat: Vec<Vec<f32>> = updates
            .iter()
            .map(|u| u.delta.values().copied().collect())
            .collect();
        let v = defense::aggregate(self.defense, &flat, &root, &self.cfg, rng);
        for (u, f) in updates.iter().zip(&v.flagged) {
            let f = usize::from(*f);
            if u.client < self.attackers {
                self.flags.attacker_updates += 1;
                self.flags.attackers_flagged += f;
            } else {
                self.flags.benign_updates += 1;
                self.flags.benign_flagged += f;
            }
        }
        let mut next = global.clone();
        let mut step = v.update.iter();
        for x in next.layers.iter_mut().flat_map(|l| l.values.iter_mut()) {
            *x += step.next().copied().unwrap_or(0.0);
        }
        Ok(next)
    }
}
