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

/// α per layer from reference trajectories: `trajs[s][l]` is sentence `s`'s hidden state after `l`
/// layers (row-major tokens × hidden; `l = 0` is the embedding). α_0 = 0 (no earlier update).
pub fn fit_alpha(trajs: &[Vec<Vec<f32>>], layers: usize) -> Vec<f64> {
    (0..layers)
        .map(|l| {
            if l == 0 {
                return 0.0;
            }
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for t in trajs {
                let (a, b, c) = (&t[l - 1], &t[l], &t[l + 1]);
                for ((&x0, &x1), &x2) in a.iter().zip(b).zip(c) {
                    let d_prev = f64::from(x1) - f64::from(x0);
                    num += (f64::from(x2) - f64::from(x1)) * d_prev;
                    den += d_prev * d_prev;
                }
            }
            if den > 0.0 { num / den } else { 0.0 }
        })
        .collect()
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
        let a = fit_alpha(std::slice::from_ref(&traj), 3);
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
