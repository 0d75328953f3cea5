//! Credit assignment of a token's terminal quality loss to the skips that caused it.
//!
//! A token's episode ends with one number, KL(unskipped ‖ skipped) of its next-token distribution,
//! caused jointly by every layer it skipped. Charging the whole KL to every skip (the plain
//! return) lets the nats of one critical skip (SmolLM2's layers 0, 1, 11) bury the ≈ 0.1 nats of a
//! cheap one (17, 14) sampled in the same token. Here each skip is charged its share of the token's
//! KL in proportion to a learned per-layer cost: ĉ, the ridge least-squares fit of the tokens' KL
//! on their skip indicators (KL ≈ Σ_l ĉ_l·s_l), accumulated over every rollout of the training so
//! far. The shares sum to the token's measured KL, so the reward stays the quantity evaluated; a
//! token that skipped one layer charges it exactly its own KL (a counterfactual against the
//! unskipped run, other tokens' skips aside); the model only splits the KL of tokens that skipped
//! several. What is not charged (ours): KL a token owes to earlier tokens of its window that
//! skipped (their later-layer keys and values moved).

use decoder::linalg::ridge_solve;

/// Ridge of the cost fit, relative to the mean diagonal of its normal equations (ours: keeps the
/// solve definite while some layer is never sampled).
const RIDGE: f64 = 1e-3;

/// Smallest cost a layer is given (nats), so that a share is defined when the fit puts a layer at
/// or below zero.
const FLOOR: f64 = 1e-6;

/// Running least-squares fit of the per-layer cost of a skip.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCosts {
    layers: usize,
    /// Σ s sᵀ over tokens (layers × layers).
    gram: Vec<f64>,
    /// Σ s·KL over tokens.
    rhs: Vec<f64>,
}

impl LayerCosts {
    /// An empty fit over `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers,
            gram: vec![0.0; layers * layers],
            rhs: vec![0.0; layers],
        }
    }

    /// Adds one token: which layers it skipped and its terminal KL (nats).
    pub fn observe(&mut self, skips: &[bool], kl: f64) {
        let on: Vec<usize> = (0..self.layers).filter(|&l| skips[l]).collect();
        for &a in &on {
            self.rhs[a] += kl;
            for &b in &on {
                self.gram[a * self.layers + b] += 1.0;
            }
        }
    }

    /// The fitted cost of skipping each layer (nats, at least [`FLOOR`]; [`FLOOR`] everywhere
    /// before any skip was seen).
    pub fn costs(&self) -> Vec<f64> {
        let c = ridge_solve(&self.gram, &self.rhs, self.layers, 1, RIDGE)
            .unwrap_or_else(|| vec![0.0; self.layers]);
        c.into_iter().map(|x| x.max(FLOOR)).collect()
    }
}

/// Each layer's share of a token's terminal `kl`: proportional to `costs` over the layers it
/// skipped, 0 where it executed (all 0 when it skipped nothing).
pub fn shares(costs: &[f64], skips: &[bool], kl: f64) -> Vec<f64> {
    let total: f64 = costs.iter().zip(skips).filter(|(_, s)| **s).map(|(c, _)| c).sum();
    costs
        .iter()
        .zip(skips)
        .map(|(c, &s)| if s && total > 0.0 { kl * (c / total) } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_additive_layer_costs_and_the_shares_sum_to_the_kl() {
        // three layers costing 2, 0.1 and 0 nats; tokens skip every pair and single layer
        let truth = [2.0, 0.1, 0.0];
        let mut f = LayerCosts::new(3);
        assert_eq!(f.costs(), vec![FLOOR; 3]);
        for mask in 1u8..8 {
            let s: Vec<bool> = (0..3).map(|l| mask & (1 << l) != 0).collect();
            let kl: f64 = (0..3).filter(|&l| s[l]).map(|l| truth[l]).sum();
            for _ in 0..50 {
                f.observe(&s, kl);
            }
        }
        let c = f.costs();
        assert!((c[0] - 2.0).abs() < 0.01 && (c[1] - 0.1).abs() < 0.01, "{c:?}");
        assert!(c[2] < 0.01, "{c:?}");
        // a token that skipped layers 0 and 1 with KL 3: the critical layer carries ≈ 20/21 of it
        let sh = shares(&c, &[true, true, false], 3.0);
        assert!((sh.iter().sum::<f64>() - 3.0).abs() < 1e-12);
        assert!(sh[0] > 2.8 && sh[1] < 0.2 && sh[2] == 0.0, "{sh:?}");
        // one skip is charged the whole KL; none, nothing
        assert_eq!(shares(&c, &[false, true, false], 0.4), vec![0.0, 0.4, 0.0]);
        assert_eq!(shares(&c, &[false; 3], 0.4), vec![0.0; 3]);
    }
}
