//! Adam (Kingma & Ba, arXiv 1412.6980) for the scorer's weights, as gradient ascent: each weight
//! gets its own step scale, so the per-layer biases of rarely informative layers move as fast as
//! those whose rewards are large (a shared, clipped step let the nats of KL of critical layers set
//! the scale for every layer).

/// First-moment decay β₁ (the paper's default).
const BETA1: f64 = 0.9;
/// Second-moment decay β₂ (the paper's default).
const BETA2: f64 = 0.999;
/// ε of the denominator (the paper's default).
const EPS: f64 = 1e-8;

/// Adam's moments for a weight vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    step: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    /// Zero moments for `n` weights.
    pub fn new(n: usize) -> Self {
        Self {
            step: 0,
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// Moves `w` up the gradient `g` by step size `lr` (bias-corrected moments).
    pub fn ascend(&mut self, w: &mut [f64], g: &[f64], lr: f64) {
        self.step += 1;
        let (c1, c2) = (1.0 - BETA1.powi(self.step), 1.0 - BETA2.powi(self.step));
        for (((w, g), m), v) in w.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *w += lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_step_is_the_step_size_per_weight_whatever_the_gradients_scale() {
        let mut a = Adam::new(3);
        let mut w = vec![0.0; 3];
        a.ascend(&mut w, &[1e-4, -50.0, 0.0], 0.1);
        assert!(
            (w[0] - 0.1).abs() < 1e-4 && (w[1] + 0.1).abs() < 1e-4,
            "{w:?}"
        );
        assert_eq!(w[2], 0.0);
        // it climbs a concave quadratic −(w − 3)² to its top
        let mut a = Adam::new(1);
        let mut w = vec![0.0];
        for _ in 0..500 {
            let g = -2.0 * (w[0] - 3.0);
            a.ascend(&mut w, &[g], 0.05);
        }
        assert!((w[0] - 3.0).abs() < 0.05, "{w:?}");
    }
}
