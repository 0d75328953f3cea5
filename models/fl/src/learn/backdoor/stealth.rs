//! POLAR's stealth-aware reward: the attackers' local copy of the server's aggregation rule.
//!
//! The aggregation rule is public (Kerckhoffs; the adaptive-attack threat model of Fang et al.,
//! "Local Model Poisoning Attacks to Byzantine-Robust Federated Learning", USENIX Security 2020).
//! The other clients' updates are not: like Fang et al.'s *partial knowledge* attacker, the
//! colluders estimate them from their own benign updates — per coordinate the mean μ and the
//! sample standard deviation σ of the attackers' benign changes — and draw stand-ins from N(μ, σ²).
//!
//! A mask is then judged by what of its poison survives the rule: with `A(·)` the rule's aggregate
//! step over the attackers' updates and the stand-ins,
//! `defended = b₀ + (n / a)·(A(crafted₁…ₐ, stand-ins) − A(benign₁…ₐ, stand-ins))`,
//! the choosing attacker's benign change plus the attackers' net effect on the round scaled back to
//! one attacker's share. Under FedAvg this is exactly the substituted model (one attacker: its own
//! crafted update), the paper's reward; under a rule that excludes, clips or outvotes the poisoned
//! updates, the poison that would not get through does not count, so poisoning more layers costs
//! detection.

use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use sim::rng::Rng;

use super::defense::{self, Defense, DefenseConfig, Verdict};

/// The attackers' copy of one round at the server.
#[derive(Debug, Clone)]
pub struct DefenseCopy {
    defense: Defense,
    cfg: DefenseConfig,
    /// Flat benign changes (model − global) of the attackers; the first is the choosing attacker's.
    benign: Vec<Vec<f32>>,
    /// Stand-ins for the `clients − attackers` other clients.
    stand_ins: Vec<Vec<f32>>,
    /// Root direction for FLTrust: the mean benign change (the server's root data is clean).
    root: Vec<f32>,
    /// The rule's noise stream, replayed identically for every evaluation (FLAME's noise cancels
    /// in the difference).
    rng: Rng,
    /// `A(benign₁…ₐ, stand-ins)`, the aggregate without poison.
    clean_step: Vec<f32>,
}

impl DefenseCopy {
    /// The copy of `defense` (tuned by `cfg`) for a round of `clients` clients in which the
    /// attackers' benign changes are `benign` (at least one); stand-ins are drawn from `rng`.
    pub fn new(
        (defense, cfg): (Defense, DefenseConfig),
        benign: Vec<Vec<f32>>,
        clients: usize,
        rng: &mut Rng,
    ) -> Self {
        let a = benign.len().max(1);
        let d = benign.first().map_or(0, Vec::len);
        let mut mean = vec![0.0f64; d];
        for b in &benign {
            for (m, x) in mean.iter_mut().zip(b) {
                *m += f64::from(*x) / a as f64;
            }
        }
        let mut sd = vec![0.0f64; d];
        if a > 1 {
            for b in &benign {
                for ((s, m), x) in sd.iter_mut().zip(&mean).zip(b) {
                    *s += (f64::from(*x) - m).powi(2) / (a - 1) as f64;
                }
            }
            sd.iter_mut().for_each(|s| *s = s.sqrt());
        }
        let stand_ins: Vec<Vec<f32>> = (0..clients.saturating_sub(a))
            .map(|_| {
                mean.iter()
                    .zip(&sd)
                    .map(|(m, s)| match Normal::new(*m, *s) {
                        Ok(n) if *s > 0.0 => n.sample(rng) as f32,
                        _ => *m as f32,
                    })
                    .collect()
            })
            .collect();
        let root: Vec<f32> = mean.iter().map(|m| *m as f32).collect();
        let rng = <Rng as rand::SeedableRng>::seed_from_u64(rng.random());
        let mut copy = Self {
            defense,
            cfg,
            benign,
            stand_ins,
            root,
            rng,
            clean_step: Vec::new(),
        };
        copy.clean_step = copy.verdict(&copy.benign.clone()).update;
        copy
    }

    /// The rule's verdict over the attackers' `changes` (first) and the stand-ins.
    fn verdict(&self, changes: &[Vec<f32>]) -> Verdict {
        let mut all = changes.to_vec();
        all.extend(self.stand_ins.iter().cloned());
        let mut rng = self.rng.clone();
        defense::aggregate(self.defense, &all, &self.root, &self.cfg, &mut rng)
    }

    /// Whether the copy lets at least one of the attackers' `crafted` changes through unflagged
    /// (LP's adaptive layer control: Krum selects a malicious update, FLAME admits one).
    pub fn accepts(&self, crafted: &[Vec<f32>]) -> bool {
        let v = self.verdict(crafted);
        v.flagged[..crafted.len()].iter().any(|f| !f)
    }

    /// The defended change for the attackers' `crafted` changes (one per attacker, in the order
    /// of the benign ones): `b₀ + (n / a)·(A(crafted) − A(benign))`.
    pub fn defended(&self, crafted: &[Vec<f32>]) -> Vec<f32> {
        let n = (self.benign.len() + self.stand_ins.len()) as f32;
        let scale = n / crafted.len().max(1) as f32;
        let poisoned = self.verdict(crafted).update;
        self.benign[0]
            .iter()
            .zip(poisoned.iter().zip(&self.clean_step))
            .map(|(b, (p, c))| b + scale * (p - c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DefenseConfig {
        DefenseConfig {
            assumed_attackers: 2,
            rlr_threshold: 4,
            clip_factor: 1.5,
            flame_noise: 0.001,
        }
    }

    fn noise(d: usize, s: f32, rng: &mut Rng) -> Vec<f32> {
        let n = Normal::new(0.0f32, s).unwrap();
        (0..d).map(|_| n.sample(rng)).collect()
    }

    /// Under FedAvg with one attacker the defended change is its crafted change (the paper's
    /// substituted-model reward), whatever the stand-ins.
    #[test]
    fn fedavg_copy_returns_the_crafted_change() {
        let mut rng = sim::rng::stream(3, "stealth");
        let benign = noise(50, 0.1, &mut rng);
        let crafted = noise(50, 1.0, &mut rng);
        let copy = DefenseCopy::new((Defense::Fedavg, cfg()), vec![benign], 10, &mut rng);
        let d = copy.defended(std::slice::from_ref(&crafted));
        for (x, y) in d.iter().zip(&crafted) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    /// Stand-ins follow the attackers' benign spread. A poisoned change far outside it is excluded
    /// by Multi-Krum's copy, so how far it goes no longer matters (the judged change is the same
    /// for two excluded poisons), while a change inside the spread passes and moves it.
    #[test]
    fn multi_krum_copy_ignores_an_excluded_poison_and_passes_a_close_one() {
        let mut rng = sim::rng::stream(4, "stealth");
        let base = noise(200, 0.1, &mut rng);
        let benign: Vec<Vec<f32>> = (0..2)
            .map(|_| {
                let e = noise(200, 0.05, &mut rng);
                base.iter().zip(&e).map(|(a, b)| a + b).collect()
            })
            .collect();
        let copy = DefenseCopy::new((Defense::MultiKrum, cfg()), benign.clone(), 10, &mut rng);
        assert_eq!(copy.stand_ins.len(), 8);
        let shifted = |by: f32| -> Vec<Vec<f32>> {
            benign
                .iter()
                .map(|b| b.iter().map(|x| x + by).collect())
                .collect()
        };
        assert_eq!(copy.defended(&shifted(2.0)), copy.defended(&shifted(5.0)));
        assert!(!copy.accepts(&shifted(2.0)), "a far poison is flagged");
        assert!(
            copy.accepts(&benign),
            "the attackers' own benign changes pass"
        );
        let clean = copy.defended(&benign);
        assert_eq!(clean, benign[0]);
        let d = copy.defended(&shifted(0.001));
        let moved = d.iter().zip(&clean).map(|(x, y)| x - y).sum::<f32>() / 200.0;
        assert!(
            moved > 0.0005,
            "accepted poison moved the change by {moved} per coordinate"
        );
    }
}
