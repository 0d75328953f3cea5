//! POLAR's layer-selection policy: one independent Bernoulli per layer, `π_l = σ(θ_l)`, trained with
//! REINFORCE: `∇J ≈ mean_k (R_k − b)·∇log π(m_k)` with `∂log π(m)/∂θ_l = m_l − σ(θ_l)`.

use rand::Rng as _;
use sim::rng::Rng;

/// Per-layer Bernoulli policy (the logits persist across rounds: the state of the paper's agent).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Logits θ_l.
    pub logits: Vec<f64>,
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

impl Policy {
    /// A policy over `layers` layers with every probability at `p0`.
    pub fn new(layers: usize, p0: f64) -> Self {
        Self {
            logits: vec![(p0 / (1.0 - p0)).ln(); layers],
        }
    }

    /// `π_l = σ(θ_l)`.
    pub fn probs(&self) -> Vec<f64> {
        self.logits.iter().map(|t| sigmoid(*t)).collect()
    }

    /// Draws a mask (true = the layer is poisoned).
    pub fn sample(&self, rng: &mut Rng) -> Vec<bool> {
        self.probs()
            .into_iter()
            .map(|p| rng.random::<f64>() < p)
            .collect()
    }

    /// `log π(m)`.
    pub fn log_prob(&self, mask: &[bool]) -> f64 {
        self.probs()
            .iter()
            .zip(mask)
            .map(|(p, m)| if *m { p.ln() } else { (1.0 - p).ln() })
            .sum()
    }

    /// `∇_θ log π(m)`.
    pub fn score(&self, mask: &[bool]) -> Vec<f64> {
        self.probs()
            .iter()
            .zip(mask)
            .map(|(p, m)| f64::from(u8::from(*m)) - p)
            .collect()
    }

    /// REINFORCE estimate of `∇J` from `(mask, reward)` samples with baseline `b`.
    pub fn gradient(&self, samples: &[(Vec<bool>, f64)], b: f64) -> Vec<f64> {
        let mut g = vec![0.0; self.logits.len()];
        for (m, r) in samples {
            for (gi, s) in g.iter_mut().zip(self.score(m)) {
                *gi += (r - b) * s;
            }
        }
        let k = samples.len().max(1) as f64;
        g.iter().map(|v| v / k).collect()
    }

    /// Gradient ascent step `θ ← θ + lr·g`.
    pub fn ascend(&mut self, g: &[f64], lr: f64) {
        for (t, gi) in self.logits.iter_mut().zip(g) {
            *t += lr * gi;
        }
    }

    /// The most likely mask (`π_l > ½`), with the single most likely layer forced on when empty.
    pub fn greedy(&self) -> Vec<bool> {
        let p = self.probs();
        let mut m: Vec<bool> = p.iter().map(|v| *v > 0.5).collect();
        if !m.iter().any(|x| *x) {
            let best = (0..p.len())
                .max_by(|a, b| p[*a].total_cmp(&p[*b]).then(b.cmp(a)))
                .unwrap_or(0);
            m[best] = true;
        }
        m
    }
}

/// Every mask over `layers` layers (for exact expectations in tests and tiny problems).
pub fn all_masks(layers: usize) -> Vec<Vec<bool>> {
    (0..1usize << layers)
        .map(|bits| (0..layers).map(|l| bits >> l & 1 == 1).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny problem: the reward of a mask is a fixed "backdoor success" table minus a layer penalty.
    fn reward(m: &[bool]) -> f64 {
        let bsr = 0.1 * f64::from(u8::from(m[0]))
            + 0.6 * f64::from(u8::from(m[1]))
            + 0.05 * f64::from(u8::from(m[2]))
            + 0.2 * f64::from(u8::from(m[1] && m[2]));
        bsr - 0.15 * m.iter().filter(|x| **x).count() as f64
    }

    fn expected(p: &Policy) -> f64 {
        all_masks(3)
            .iter()
            .map(|m| p.log_prob(m).exp() * reward(m))
            .sum()
    }

    #[test]
    fn policy_gradient_matches_finite_differences() {
        let p = Policy {
            logits: vec![0.3, -0.5, 1.1],
        };
        // The estimator's exact expectation (enumerating all masks) …
        let exact: Vec<(Vec<bool>, f64)> = all_masks(3)
            .into_iter()
            .map(|m| {
                let w = p.log_prob(&m).exp();
                let r = reward(&m);
                (m, w * r * 8.0)
            })
            .collect();
        let g = p.gradient(&exact, 0.0);
        // … equals the central finite difference of J(θ).
        for (l, gl) in g.iter().enumerate() {
            let h = 1e-5;
            let mut up = p.clone();
            up.logits[l] += h;
            let mut dn = p.clone();
            dn.logits[l] -= h;
            let fd = (expected(&up) - expected(&dn)) / (2.0 * h);
            assert!((fd - gl).abs() < 1e-8, "layer {l}: fd {fd} vs {gl}");
        }
        // A Monte Carlo estimate with a baseline agrees within sampling error.
        let mut rng = sim::rng::stream(21, "pg");
        let samples: Vec<(Vec<bool>, f64)> = (0..40_000)
            .map(|_| {
                let m = p.sample(&mut rng);
                let r = reward(&m);
                (m, r)
            })
            .collect();
        let mc = p.gradient(&samples, expected(&p));
        for l in 0..3 {
            assert!(
                (mc[l] - g[l]).abs() < 0.01,
                "layer {l}: mc {} vs {}",
                mc[l],
                g[l]
            );
        }
    }

    #[test]
    fn reinforce_learns_the_critical_layer() {
        let mut p = Policy::new(3, 0.5);
        let mut rng = sim::rng::stream(22, "pg");
        for _ in 0..300 {
            let s: Vec<(Vec<bool>, f64)> = (0..8)
                .map(|_| {
                    let m = p.sample(&mut rng);
                    let r = reward(&m);
                    (m, r)
                })
                .collect();
            let b = s.iter().map(|x| x.1).sum::<f64>() / 8.0;
            let g = p.gradient(&s, b);
            p.ascend(&g, 1.0);
        }
        assert_eq!(p.greedy(), vec![false, true, true]);
    }
}
