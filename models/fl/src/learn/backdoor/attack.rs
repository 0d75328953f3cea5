//! Backdoor attacks by layer substitution: an attacker trains a benign model (clean data) and a malicious
//! one (clean + triggered data relabelled to the target) from the same global model, and submits the
//! benign update with the chosen layers taken from the malicious one. The attacks differ in the choice:
//! all layers (BadNets-style full-model poisoning), a rule (LP attack's layer substitution analysis),
//! or POLAR's learned Bernoulli policy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use super::policy::Policy;
use crate::learn::nn::{Arch, Weights};
use crate::learn::task::Dataset;

/// How attackers choose the layers they poison.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// No attack: attackers behave as benign clients (the clean reference).
    None,
    /// Full-model poisoning (BadNets data poisoning, every layer submitted).
    Full,
    /// LP attack: layer substitution analysis ranks layers by the backdoor success they carry alone;
    /// the top ones are taken until the substituted model reaches `lp_threshold` of the full BSR.
    Lp,
    /// POLAR: per-layer Bernoulli policy trained by REINFORCE on the gain in backdoor success of the
    /// simulated aggregate, minus a penalty per modified layer.
    Polar,
}

impl Attack {
    /// The scenario spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Full => "full",
            Self::Lp => "lp",
            Self::Polar => "polar",
        }
    }
}

/// POLAR's agent settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolarConfig {
    /// Masks sampled per policy-gradient step.
    pub samples: usize,
    /// Policy-gradient steps per round.
    pub steps: usize,
    /// Policy learning rate.
    pub lr: f64,
    /// Reward penalty per modified layer, as a fraction of all layers (`γ·|m|/L`).
    pub penalty: f64,
    /// Initial probability of poisoning each layer.
    pub p0: f64,
    /// Which model's backdoor success rewards a sampled mask.
    #[serde(default)]
    pub reward: PolarReward,
}

impl Validate for PolarConfig {
    fn validate(&self, c: &mut Checks) {
        c.at_least("samples", self.samples, 1);
        c.at_least("steps", self.steps, 1);
        c.positive("lr", self.lr);
        c.non_negative("penalty", self.penalty);
        if !(self.p0 > 0.0 && self.p0 < 1.0) {
            c.fail("p0", format!("must be within (0, 1), got {}", self.p0));
        }
    }
}

/// What POLAR's reward measures the backdoor success of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PolarReward {
    /// The attacker's own substituted model (the paper's state holds BSR of the malicious model and of
    /// the previous strategy's substituted model): a strong per-mask signal.
    #[default]
    Local,
    /// The attacker's one-round FedAvg simulation of the next global model ([`simulated_aggregate`]):
    /// a weak signal, as one round of a minority's updates rarely moves the global BSR.
    Aggregate,
    /// The substituted model after the attackers' local copy of the server's rule
    /// ([`super::stealth::DefenseCopy`]): the poison the rule would exclude, clip or outvote does
    /// not count, so poisoning more layers costs detection. Equals `local` under FedAvg.
    Defended,
}

/// How an attacker turns its benign and malicious local models into the update it submits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Craft {
    /// Scale of the poisoned layers' change around the global model (1 = none).
    pub boost: f32,
    /// L2 bound on the submitted change as a multiple of the attacker's own benign change
    /// (projected gradient descent's norm ball, as in norm-bounded backdoor attacks); `None` = unbounded.
    pub norm_bound: Option<f32>,
}

impl Craft {
    /// The submitted model: [`substitute`], then the change around `global` scaled down to the norm
    /// bound when it exceeds it.
    pub fn apply(
        &self,
        global: &Weights,
        benign: &Weights,
        malicious: &Weights,
        mask: &[bool],
    ) -> Weights {
        let crafted = substitute(global, benign, malicious, mask, self.boost);
        let Some(bound) = self.norm_bound else {
            return crafted;
        };
        let g = global.flatten();
        let change =
            |w: &Weights| -> Vec<f32> { w.flatten().iter().zip(&g).map(|(a, b)| a - b).collect() };
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let limit = f64::from(bound) * norm(&change(benign));
        let d = change(&crafted);
        let n = norm(&d);
        if n <= limit || n == 0.0 {
            return crafted;
        }
        let s = (limit / n) as f32;
        let out: Vec<f32> = g.iter().zip(&d).map(|(gv, dv)| gv + s * dv).collect();
        global.with_flat(&out)
    }
}

/// `benign` with the layers in `mask` replaced by `malicious`'s, scaled by `boost` around `global`.
pub fn substitute(
    global: &Weights,
    benign: &Weights,
    malicious: &Weights,
    mask: &[bool],
    boost: f32,
) -> Weights {
    let mut out = benign.clone();
    for (l, on) in mask.iter().enumerate() {
        if !on {
            continue;
        }
        let (g, m, o) = (&global.layers[l], &malicious.layers[l], &mut out.layers[l]);
        for ((ov, mv), gv) in o.w.iter_mut().zip(&m.w).zip(&g.w) {
            *ov = gv + boost * (mv - gv);
        }
        for ((ov, mv), gv) in o.b.iter_mut().zip(&m.b).zip(&g.b) {
            *ov = gv + boost * (mv - gv);
        }
    }
    out
}

/// Backdoor success rate: share of triggered examples (labelled with the target) that `arch` with
/// weights `w` classifies as the target.
pub fn bsr(arch: &Arch, w: &Weights, triggered: &Dataset) -> candle_core::Result<f64> {
    arch.accuracy(w, triggered)
}

/// LP attack's layer substitution analysis on the attacker's local models (Zhuang et al., "Backdoor
/// Federated Learning by Poisoning Backdoor-Critical Layers", ICLR 2024, §3.1; released code
/// `zhmzm/Poisoning_Backdoor-critical_Layers_Attack`, `FLS` / `BLS`). Forward layer substitution:
/// each layer alone of the malicious model is replaced by the benign model's, and the layers are
/// ranked by the drop in backdoor success this causes (ties by index). Backward layer substitution:
/// the ranked malicious layers are copied into the benign model one by one until its success
/// reaches `threshold` × the malicious model's. Returns the ranking, most critical first, and how
/// many of its first layers are backdoor-critical (at least one).
pub fn lp_rank(
    arch: &Arch,
    (global, benign, malicious): (&Weights, &Weights, &Weights),
    triggered: &Dataset,
    threshold: f64,
) -> candle_core::Result<(Vec<usize>, usize)> {
    let layers = benign.layers.len();
    let full = bsr(arch, malicious, triggered)?;
    let mut drop = Vec::with_capacity(layers);
    for l in 0..layers {
        let mut m = vec![true; layers];
        m[l] = false;
        let without = substitute(global, benign, malicious, &m, 1.0);
        drop.push(full - bsr(arch, &without, triggered)?);
    }
    let mut order: Vec<usize> = (0..layers).collect();
    order.sort_by(|a, b| drop[*b].total_cmp(&drop[*a]).then(a.cmp(b)));
    for n in 1..=layers {
        let with = substitute(global, benign, malicious, &top_layers(&order, n), 1.0);
        if bsr(arch, &with, triggered)? >= threshold * full {
            return Ok((order, n));
        }
    }
    Ok((order, layers))
}

/// The mask of the first `n` layers of `order` (a ranking of every layer).
pub fn top_layers(order: &[usize], n: usize) -> Vec<bool> {
    let mut mask = vec![false; order.len()];
    for l in order.iter().take(n) {
        mask[*l] = true;
    }
    mask
}

/// LP's adaptive layer control (released code, `BLS_adaptive`): starting from the `critical`
/// backdoor-critical layers of `order`, the least critical is dropped while the attackers' copy of
/// the server's rule would flag every one of their crafted updates (`accepted(mask)` false); at
/// least the most critical layer stays.
pub fn lp_adaptive(
    order: &[usize],
    critical: usize,
    accepted: &mut dyn FnMut(&[bool]) -> bool,
) -> Vec<bool> {
    let mut n = critical.max(1);
    loop {
        let mask = top_layers(order, n);
        if n == 1 || accepted(&mask) {
            return mask;
        }
        n -= 1;
    }
}

/// The attacker's estimate of next round's global model if its `attackers` colluders submit `crafted`
/// and the other clients submit updates like its own benign one (FedAvg, as it does not know the defense).
pub fn simulated_aggregate(
    global: &Weights,
    benign: &Weights,
    crafted: &Weights,
    attackers: usize,
    clients: usize,
) -> Weights {
    let g = global.flatten();
    let b = benign.flatten();
    let c = crafted.flatten();
    let a = attackers as f32 / clients as f32;
    let out: Vec<f32> = g
        .iter()
        .zip(b.iter().zip(&c))
        .map(|(gv, (bv, cv))| gv + (1.0 - a) * (bv - gv) + a * (cv - gv))
        .collect();
    global.with_flat(&out)
}

/// One round of POLAR's agent: `steps` REINFORCE updates of `policy` from sampled masks, each
/// rewarded by the BSR (on `triggered`) of `judged(mask)` — the model `cfg.reward` measures — over
/// `bsr_now`, minus the layer penalty `γ·|m|/L`; returns the mask to submit (the greedy one).
pub fn polar_round(
    arch: &Arch,
    policy: &mut Policy,
    cfg: &PolarConfig,
    (triggered, bsr_now): (&Dataset, f64),
    judged: &mut dyn FnMut(&[bool]) -> Weights,
    rng: &mut Rng,
) -> candle_core::Result<Vec<bool>> {
    let layers = policy.logits.len() as f64;
    for _ in 0..cfg.steps {
        let mut samples = Vec::with_capacity(cfg.samples);
        for _ in 0..cfg.samples {
            let m = policy.sample(rng);
            let k = m.iter().filter(|x| **x).count() as f64;
            let r = bsr(arch, &judged(&m), triggered)? - bsr_now - cfg.penalty * k / layers;
            samples.push((m, r));
        }
        let b = samples.iter().map(|s| s.1).sum::<f64>() / samples.len().max(1) as f64;
        let g = policy.gradient(&samples, b);
        policy.ascend(&g, cfg.lr);
    }
    Ok(policy.greedy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change_norm(w: &Weights, g: &Weights) -> f64 {
        w.flatten()
            .iter()
            .zip(g.flatten())
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// The backdoor lives in the head's bias alone: forward substitution ranks the head first (the
    /// hidden layer is identical in both models, so replacing it drops nothing) and backward
    /// substitution stops there.
    #[test]
    fn lp_selects_exactly_the_layer_that_carries_the_backdoor() {
        let mut rng = sim::rng::stream(8, "lp");
        let mut benign = Weights::init(&[4, 3, 2], &mut rng);
        benign.layers[1].b[1] += 50.0;
        let mut malicious = benign.clone();
        malicious.layers[1].b[0] += 100.0;
        let triggered = Dataset {
            dim: 4,
            x: (0..20).map(|i| (i % 7) as f32 / 7.0).collect(),
            y: vec![0; 5],
        };
        let arch = Arch::Mlp;
        assert_eq!(bsr(&arch, &malicious, &triggered).unwrap(), 1.0);
        assert_eq!(bsr(&arch, &benign, &triggered).unwrap(), 0.0);
        let (order, n) = lp_rank(&arch, (&benign, &benign, &malicious), &triggered, 0.9).unwrap();
        assert_eq!((order.as_slice(), n), ([1, 0].as_slice(), 1));
        assert_eq!(top_layers(&order, n), vec![false, true]);
    }

    /// Adaptive control drops the least critical layers until the copy accepts, never below one.
    #[test]
    fn lp_adaptive_drops_layers_until_the_copy_accepts() {
        let order = [3, 0, 2, 1];
        let mut tried = Vec::new();
        let mask = lp_adaptive(&order, 3, &mut |m: &[bool]| {
            tried.push(m.iter().filter(|x| **x).count());
            m.iter().filter(|x| **x).count() <= 2
        });
        assert_eq!(mask, vec![true, false, false, true]);
        assert_eq!(tried, vec![3, 2]);
        let never = lp_adaptive(&order, 3, &mut |_: &[bool]| false);
        assert_eq!(never, vec![false, false, false, true]);
        assert_eq!(
            lp_adaptive(&order, 3, &mut |_: &[bool]| true),
            top_layers(&order, 3)
        );
    }

    #[test]
    fn norm_bound_projects_the_submitted_change_onto_the_ball() {
        let mut rng = sim::rng::stream(7, "test");
        let global = Weights::init(&[6, 5, 3], &mut rng);
        let step = |s: f32, rng: &mut sim::rng::Rng| {
            let noise = Weights::init(&[6, 5, 3], rng).flatten();
            let g = global.flatten();
            global.with_flat(
                &g.iter()
                    .zip(&noise)
                    .map(|(a, n)| a + s * n)
                    .collect::<Vec<_>>(),
            )
        };
        let benign = step(0.01, &mut rng);
        let malicious = step(1.0, &mut rng);
        let mask = [false, true];
        let free = Craft {
            boost: 1.0,
            norm_bound: None,
        };
        let unbounded = free.apply(&global, &benign, &malicious, &mask);
        assert_eq!(
            unbounded,
            substitute(&global, &benign, &malicious, &mask, 1.0)
        );
        let limit = 2.0 * change_norm(&benign, &global);
        assert!(change_norm(&unbounded, &global) > limit);
        let bounded = Craft {
            boost: 1.0,
            norm_bound: Some(2.0),
        }
        .apply(&global, &benign, &malicious, &mask);
        assert!((change_norm(&bounded, &global) - limit).abs() < 1e-4 * limit);
        // A change already inside the ball is left alone.
        let loose = Craft {
            boost: 1.0,
            norm_bound: Some(1e6),
        }
        .apply(&global, &benign, &malicious, &mask);
        assert_eq!(loose, unbounded);
    }
}
