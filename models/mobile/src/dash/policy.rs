//! The light scorer: a logistic policy over [`super::features`] giving the probability of skipping
//! a layer, with the score-function gradient REINFORCE needs.

use serde::{Deserialize, Serialize};

/// Logistic scorer: P(skip | φ) = σ(w·φ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorer {
    /// Weights, one per feature.
    pub w: Vec<f64>,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Scorer {
    /// A scorer over `n` features whose last `layers` are the one-hot layer index, starting at skip
    /// probability `p0` everywhere (the per-layer biases set to logit(p0)).
    pub fn new(n: usize, layers: usize, p0: f64) -> Self {
        let p = p0.clamp(1e-6, 1.0 - 1e-6);
        let mut w = vec![0.0; n];
        for x in w.iter_mut().skip(n.saturating_sub(layers)) {
            *x = (p / (1.0 - p)).ln();
        }
        Self { w }
    }

    /// Probability of skipping given features `f`.
    pub fn p_skip(&self, f: &[f64]) -> f64 {
        sigmoid(self.w.iter().zip(f).map(|(a, b)| a * b).sum())
    }

    /// Greedy action: skip when P(skip) > 0.5.
    pub fn skip(&self, f: &[f64]) -> bool {
        self.p_skip(f) > 0.5
    }

    /// ∇_w log π(a | f) for action `skip`: (a − p)·f.
    pub fn grad_log(&self, f: &[f64], skip: bool) -> Vec<f64> {
        let a = if skip { 1.0 } else { 0.0 };
        let p = self.p_skip(f);
        f.iter().map(|x| (a - p) * x).collect()
    }

    /// FLOPs of one evaluation (dot product and sigmoid).
    pub fn flops(&self) -> f64 {
        2.0 * self.w.len() as f64 + 4.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_p0_and_gradient_matches_finite_difference() {
        let s = Scorer::new(4, 2, 0.3);
        assert!((s.p_skip(&[0.5, 0.2, 1.0, 0.0]) - 0.3).abs() < 1e-12);
        let f = [0.5, 0.2, 1.0, 0.0];
        let g = s.grad_log(&f, true);
        let eps = 1e-6;
        let mut t = s.clone();
        t.w[0] += eps;
        let fd = (t.p_skip(&f).ln() - s.p_skip(&f).ln()) / eps;
        assert!((g[0] - fd).abs() < 1e-5, "{} vs {fd}", g[0]);
    }
}
