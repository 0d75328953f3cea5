//! Compensation for a skipped layer: its residual update is approximated by the previous layer's,
//! scaled by a per-layer factor α fitted by least squares on unskipped runs:
//! x̂_{l+1} = x_l + α_l (x_l − x_{l−1}), α_l = Σ⟨Δ_{l+1}, Δ_l⟩ / Σ‖Δ_l‖² with Δ_l = x_l − x_{l−1}.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a skipped layer's output is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compensation {
    /// Identity: the skipped layer passes its input through.
    None,
    /// Input plus α_l times the previous layer's residual update.
    Delta,
}

/// Least-squares fit of α per layer, accumulated one unskipped trajectory at a time (so the
/// trajectories of many windows need not be held at once): α_0 = 0 (no earlier update).
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaFit {
    num: Vec<f64>,
    den: Vec<f64>,
}

impl AlphaFit {
    /// An empty fit for a stack of `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            num: vec![0.0; layers],
            den: vec![0.0; layers],
        }
    }

    /// Adds one trajectory: `traj[l]` is the hidden state after `l` layers (row-major
    /// tokens × hidden; `l = 0` is the embedding), `layers + 1` states.
    pub fn add(&mut self, traj: &[Vec<f32>]) {
        for l in 1..self.num.len().min(traj.len().saturating_sub(1)) {
            let (a, b, c) = (&traj[l - 1], &traj[l], &traj[l + 1]);
            for ((&x0, &x1), &x2) in a.iter().zip(b).zip(c) {
                let d_prev = f64::from(x1) - f64::from(x0);
                self.num[l] += (f64::from(x2) - f64::from(x1)) * d_prev;
                self.den[l] += d_prev * d_prev;
            }
        }
    }

    /// α per layer: Σ⟨Δ_{l+1}, Δ_l⟩ / Σ‖Δ_l‖² (0 where no update was seen).
    pub fn alpha(&self) -> Vec<f64> {
        self.num
            .iter()
            .zip(&self.den)
            .map(|(n, d)| if *d > 0.0 { n / d } else { 0.0 })
            .collect()
    }
}

/// The compensated output of a skipped layer for one token: `cur + α (cur − prev)`.
pub fn apply(mode: Compensation, cur: &[f32], prev: Option<&[f32]>, alpha: f64) -> Vec<f32> {
    match (mode, prev) {
        (Compensation::Delta, Some(p)) => cur
            .iter()
            .zip(p)
            .map(|(&c, &q)| c + (alpha as f32) * (c - q))
            .collect(),
        _ => cur.to_vec(),
    }
}

/// FLOPs of [`apply`] for one token of hidden size `hidden`.
pub fn flops(mode: Compensation, hidden: u64) -> f64 {
    match mode {
        Compensation::None => 0.0,
        Compensation::Delta => 3.0 * hidden as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_recovers_a_geometric_update_sequence() {
        // x_{l+1} − x_l = 0.5 (x_l − x_{l−1}) exactly
        let traj: Vec<Vec<f32>> = [0.0f32, 1.0, 1.5, 1.75]
            .iter()
            .map(|&v| vec![v, 2.0 * v])
            .collect();
        let mut fit = AlphaFit::new(3);
        fit.add(&traj);
        let a = fit.alpha();
        assert_eq!(a[0], 0.0);
        assert!((a[1] - 0.5).abs() < 1e-9 && (a[2] - 0.5).abs() < 1e-9);
        let y = apply(Compensation::Delta, &traj[2], Some(&traj[1]), a[2]);
        assert!((y[0] - 1.75).abs() < 1e-6 && (y[1] - 3.5).abs() < 1e-6);
        assert_eq!(
            apply(Compensation::None, &traj[2], Some(&traj[1]), 0.5),
            traj[2]
        );
    }
}
