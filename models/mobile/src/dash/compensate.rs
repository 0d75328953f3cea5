//! Compensation for a skipped layer, fitted by least squares on the unskipped runs of the training
//! windows. What DASH's text says (PAPERS.md): skipped layers are "compensated" and the
//! compensation is trained "by differential rewards"; the paper's text with the form was not found
//! (search of the stored pages and docs, this session), so the forms are ours:
//! * `delta`: the previous layer's residual update scaled per layer,
//!   x̂_{l+1} = x_l + α_l (x_l − x_{l−1}), α_l = Σ⟨Δ_{l+1}, Δ_l⟩ / Σ‖Δ_l‖², Δ_l = x_l − x_{l−1};
//! * `linear`: a per-layer affine map of the layer's normalised input,
//!   x̂_{l+1} = x_l + W_l [x_l / rms(x_l); 1], W_l (hidden × hidden + 1) the ridge least-squares fit of
//!   the layer's residual update x_{l+1} − x_l (the input is RMS-normalised as the layer itself
//!   sees it, so the map does not depend on the residual stream's scale).

use decoder::linalg::{cross, ridge_solve};
use decoder::{Linear, model::exact_rms_norm};
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
    /// Input plus a per-layer affine map of the normalised input.
    Linear,
}

/// Ridge of the linear maps' normal equations, relative to the mean diagonal (ours: small enough
/// not to bias a fit over thousands of rows, large enough to keep the solve definite).
const RIDGE: f64 = 1e-4;

/// Least-squares fits of both forms, accumulated one batch of unskipped states at a time (so the
/// trajectories of many windows need not be held at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    hidden: usize,
    num: Vec<f64>,
    den: Vec<f64>,
    /// Per layer ZᵀZ ((h+1)²) and ZᵀΔ ((h+1) × h), Z = [x/rms(x); 1]; empty without the linear fit.
    gram: Vec<(Vec<f64>, Vec<f64>)>,
}

/// Rows of `x` RMS-normalised (no gain) with a trailing 1: the linear map's input.
fn design(x: &[f32], hidden: usize) -> Vec<f32> {
    let mut z = Vec::with_capacity(x.len() / hidden.max(1) * (hidden + 1));
    for row in x.chunks(hidden) {
        let mut r = row.to_vec();
        exact_rms_norm(&mut r, 1e-5);
        z.extend(r);
        z.push(1.0);
    }
    z
}

impl Fit {
    /// An empty fit for `layers` layers of width `hidden`; `linear`: also fit the linear maps.
    pub fn new(layers: usize, hidden: usize, linear: bool) -> Self {
        let n = hidden + 1;
        Self {
            hidden,
            num: vec![0.0; layers],
            den: vec![0.0; layers],
            gram: if linear {
                vec![(vec![0.0; n * n], vec![0.0; n * hidden]); layers]
            } else {
                Vec::new()
            },
        }
    }

    /// Adds layer `l` of a batch of unskipped rows: the states before layer `l − 1` (`None` at
    /// `l = 0`), before `l` (`x`) and after `l` (`y`).
    pub fn add(&mut self, l: usize, before: Option<&[f32]>, x: &[f32], y: &[f32]) {
        if let Some(b) = before.filter(|_| l > 0) {
            for ((&x0, &x1), &x2) in b.iter().zip(x).zip(y) {
                let d_prev = f64::from(x1) - f64::from(x0);
                self.num[l] += (f64::from(x2) - f64::from(x1)) * d_prev;
                self.den[l] += d_prev * d_prev;
            }
        }
        if let Some((g, r)) = self.gram.get_mut(l) {
            let h = self.hidden;
            let rows = x.len() / h.max(1);
            let z = design(x, h);
            let delta: Vec<f32> = y.iter().zip(x).map(|(a, b)| a - b).collect();
            for (a, v) in g.iter_mut().zip(cross(&z, &z, rows, h + 1, h + 1)) {
                *a += f64::from(v);
            }
            for (a, v) in r.iter_mut().zip(cross(&z, &delta, rows, h + 1, h)) {
                *a += f64::from(v);
            }
        }
    }

    /// The fitted compensation (α 0 where no update was seen; a zero map where a layer's normal
    /// equations are singular).
    pub fn finish(&self, mode: Compensation) -> Compensator {
        let alpha = self
            .num
            .iter()
            .zip(&self.den)
            .map(|(n, d)| if *d > 0.0 { n / d } else { 0.0 })
            .collect();
        let h = self.hidden;
        let maps = self
            .gram
            .iter()
            .map(|(g, r)| {
                let w = ridge_solve(g, r, h + 1, h, RIDGE).unwrap_or_else(|| vec![0.0; r.len()]);
                // W is (h+1) × h; the map applies its transpose (h × (h+1)) to a row
                let mut t = vec![0.0f32; h * (h + 1)];
                for i in 0..=h {
                    for o in 0..h {
                        t[o * (h + 1) + i] = w[i * h + o] as f32;
                    }
                }
                Linear::new(t, h, h + 1)
            })
            .collect();
        Compensator {
            mode,
            hidden: h,
            alpha,
            maps,
        }
    }
}

/// The compensation of every layer.
#[derive(Debug, Clone)]
pub struct Compensator {
    /// The form used by [`Compensator::apply`].
    pub mode: Compensation,
    hidden: usize,
    /// α per layer (the `delta` form).
    pub alpha: Vec<f64>,
    /// Per layer the affine map (the `linear` form; empty when not fitted).
    maps: Vec<Linear>,
}

impl Compensator {
    /// No compensation (the identity) for `layers` layers of width `hidden`.
    pub fn identity(layers: usize, hidden: usize) -> Self {
        Self {
            mode: Compensation::None,
            hidden,
            alpha: vec![0.0; layers],
            maps: Vec::new(),
        }
    }

    /// The same fits used in form `mode`.
    pub fn with_mode(&self, mode: Compensation) -> Self {
        Self {
            mode,
            ..self.clone()
        }
    }

    /// Compensated outputs of layer `l` for rows `cur` (the states entering `l`) with `prev` the
    /// same rows' states entering `l − 1` (`None` at `l = 0`).
    pub fn apply(&self, l: usize, cur: &[f32], prev: Option<&[f32]>) -> Vec<f32> {
        match (self.mode, prev) {
            (Compensation::Delta, Some(p)) => {
                let a = self.alpha[l] as f32;
                cur.iter().zip(p).map(|(&c, &q)| c + a * (c - q)).collect()
            }
            (Compensation::Linear, _) if l < self.maps.len() => {
                let rows = cur.len() / self.hidden.max(1);
                let upd = self.maps[l].apply(&design(cur, self.hidden), rows);
                cur.iter().zip(upd).map(|(c, u)| c + u).collect()
            }
            _ => cur.to_vec(),
        }
    }
}

/// FLOPs of [`Compensator::apply`] for one token of hidden size `hidden`.
pub fn flops(mode: Compensation, hidden: u64) -> f64 {
    let h = hidden as f64;
    match mode {
        Compensation::None => 0.0,
        Compensation::Delta => 3.0 * h,
        // RMS normalisation, the (h × h+1) matrix-vector product, the residual add
        Compensation::Linear => 3.0 * h + 2.0 * h * (h + 1.0) + h,
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
        let mut fit = Fit::new(3, 2, false);
        for l in 0..3usize {
            let before = l.checked_sub(1).map(|b| traj[b].as_slice());
            fit.add(l, before, &traj[l], &traj[l + 1]);
        }
        let c = fit.finish(Compensation::Delta);
        assert_eq!(c.alpha[0], 0.0);
        assert!((c.alpha[1] - 0.5).abs() < 1e-9 && (c.alpha[2] - 0.5).abs() < 1e-9);
        let y = c.apply(2, &traj[2], Some(&traj[1]));
        assert!((y[0] - 1.75).abs() < 1e-6 && (y[1] - 3.5).abs() < 1e-6);
        let id = c.with_mode(Compensation::None);
        assert_eq!(id.apply(2, &traj[2], Some(&traj[1])), traj[2]);
    }

    #[test]
    fn the_linear_map_reproduces_an_affine_update_of_the_normalised_input() {
        // rows of width 3; the layer adds A·x/rms(x) + b
        let rows: Vec<[f32; 3]> = (0..40)
            .map(|i| {
                let t = i as f32;
                [
                    (t * 0.7).sin() * 3.0,
                    (t * 1.3).cos(),
                    0.5 + (t * 0.37).sin(),
                ]
            })
            .collect();
        let upd = |x: &[f32]| {
            let mut n = x.to_vec();
            exact_rms_norm(&mut n, 1e-5);
            [
                0.3 * n[0] - 0.2 * n[2] + 0.1,
                n[1] * 0.5,
                -0.4 * n[0] + 0.2 * n[1] - 0.3,
            ]
        };
        let x: Vec<f32> = rows.iter().flatten().copied().collect();
        let y: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let u = upd(r);
                [r[0] + u[0], r[1] + u[1], r[2] + u[2]]
            })
            .collect();
        let mut fit = Fit::new(1, 3, true);
        fit.add(0, None, &x, &y);
        let c = fit.finish(Compensation::Linear);
        let got = c.apply(0, &x, None);
        let err = got
            .iter()
            .zip(&y)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-3, "{err}");
        assert!(flops(Compensation::Linear, 3) > flops(Compensation::Delta, 3));
    }
}
