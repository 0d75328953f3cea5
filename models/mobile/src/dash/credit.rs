//! Credit assignment of a window's terminal quality losses to the skips that caused them.
//!
//! A token's episode ends with one number, KL(unskipped ‖ skipped) of its next-token distribution,
//! caused jointly by every layer it skipped and, through the keys and values of later layers, by
//! the skips of the tokens before it in its window. Charging the whole KL to every skip of the
//! token (the plain return) lets the nats of one critical skip (SmolLM2's layers 0, 1, 11) bury the
//! ≈ 0.1 nats of a cheap one (17, 14) sampled in the same token, and charges a free skip the KL
//! that earlier tokens' skips caused. Here a token's KL is split among its causes in proportion to
//! learned per-layer costs: the ridge least-squares fit, over every rollout of the training so far,
//!
//!   KL_j ≈ Σ_l ĉ_l·s_jl + Σ_l ĉ'_l·e_jl,   e_jl = (Σ_{i<j} s_il) / (j + 1),
//!
//! of token `j`'s KL on its own skip indicators `s_j` and on the share of the positions it attends
//! to that skipped layer `l` before it (`e_j`). Token `j`'s own skip of `l` is charged
//! KL_j·ĉ_l / T_j and each earlier token `i` that skipped `l` is charged KL_j·ĉ'_l / ((j + 1)·T_j),
//! T_j the prediction's sum. So the charges of a window sum to its measured KL (the reward stays the
//! quantity evaluated), a window with one skip charges it all its KL, and the fit only decides how
//! the KL of windows with several skips is split.

use decoder::linalg::ridge_solve;

/// Ridge of the cost fit, relative to the mean diagonal of its normal equations (ours: keeps the
/// solve definite while some layer is never sampled).
const RIDGE: f64 = 1e-3;

/// Smallest cost a layer is given (nats), so that a split is defined when the fit puts a layer at
/// or below zero.
const FLOOR: f64 = 1e-6;

/// Per-layer costs of a skip: to the token itself and to the tokens after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    /// ĉ: nats of the token's own KL per layer it skips.
    pub own: Vec<f64>,
    /// ĉ': nats of a later token's KL per unit of `e` (all the positions it attends to skipping).
    pub cross: Vec<f64>,
}

/// Running least-squares fit of [`Costs`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCosts {
    layers: usize,
    /// Σ z zᵀ over tokens, z = [s; e] (2L × 2L).
    gram: Vec<f64>,
    /// Σ z·KL over tokens.
    rhs: Vec<f64>,
}

/// `e_j` of every token of a window (see the module doc).
fn earlier(skips: &[Vec<bool>], layers: usize) -> Vec<Vec<f64>> {
    let mut count = vec![0.0; layers];
    skips
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let e = count.iter().map(|c| c / (j + 1) as f64).collect();
            for (c, &x) in count.iter_mut().zip(s) {
                *c += f64::from(u8::from(x));
            }
            e
        })
        .collect()
}

impl LayerCosts {
    /// An empty fit over `layers` layers.
    pub fn new(layers: usize) -> Self {
        let n = 2 * layers;
        Self {
            layers,
            gram: vec![0.0; n * n],
            rhs: vec![0.0; n],
        }
    }

    /// Adds one window: each token's skips (`skips[token][layer]`) and terminal KL (nats).
    pub fn observe(&mut self, skips: &[Vec<bool>], kls: &[f64]) {
        let (l, n) = (self.layers, 2 * self.layers);
        for ((s, e), kl) in skips.iter().zip(earlier(skips, l)).zip(kls) {
            let z: Vec<(usize, f64)> = s
                .iter()
                .enumerate()
                .filter(|(_, x)| **x)
                .map(|(i, _)| (i, 1.0))
                .chain(
                    e.iter()
                        .enumerate()
                        .filter(|(_, x)| **x > 0.0)
                        .map(|(i, x)| (l + i, *x)),
                )
                .collect();
            for &(a, za) in &z {
                self.rhs[a] += za * kl;
                for &(b, zb) in &z {
                    self.gram[a * n + b] += za * zb;
                }
            }
        }
    }

    /// The fitted costs (nats, at least [`FLOOR`]; [`FLOOR`] everywhere before any skip was
    /// seen).
    pub fn costs(&self) -> Costs {
        let n = 2 * self.layers;
        let c = ridge_solve(&self.gram, &self.rhs, n, 1, RIDGE).unwrap_or_else(|| vec![0.0; n]);
        let c: Vec<f64> = c.into_iter().map(|x| x.max(FLOOR)).collect();
        Costs {
            own: c[..self.layers].to_vec(),
            cross: c[self.layers..].to_vec(),
        }
    }
}

/// What each skip of a window is charged (`[token][layer]`, nats; 0 where the token executed):
/// the window's terminal `kls` split as the module doc says.
pub fn charges(costs: &Costs, skips: &[Vec<bool>], kls: &[f64]) -> Vec<Vec<f64>> {
    let layers = costs.own.len();
    let mut out: Vec<Vec<f64>> = skips.iter().map(|s| vec![0.0; s.len()]).collect();
    for (j, (e, kl)) in earlier(skips, layers).iter().zip(kls).enumerate() {
        let own: Vec<f64> = (0..layers)
            .map(|l| if skips[j][l] { costs.own[l] } else { 0.0 })
            .collect();
        let cross: Vec<f64> = (0..layers).map(|l| costs.cross[l] * e[l]).collect();
        let total: f64 = own.iter().chain(&cross).sum();
        if total <= 0.0 {
            continue;
        }
        for (l, (o, c)) in own.iter().zip(&cross).enumerate() {
            out[j][l] += kl * (o / total);
            if *c > 0.0 {
                // split equally among the earlier tokens that skipped l
                let n = e[l] * (j + 1) as f64;
                let each = kl * (c / total) / n;
                for i in (0..j).filter(|&i| skips[i][l]) {
                    out[i][l] += each;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_own_layer_costs_and_the_charges_sum_to_the_kl() {
        // one-token windows: three layers costing 2, 0.1 and 0 nats; every subset skipped
        let truth = [2.0, 0.1, 0.0];
        let mut f = LayerCosts::new(3);
        assert_eq!(f.costs().own, vec![FLOOR; 3]);
        for mask in 1u8..8 {
            let s: Vec<bool> = (0..3).map(|l| mask & (1 << l) != 0).collect();
            let kl: f64 = (0..3).filter(|&l| s[l]).map(|l| truth[l]).sum();
            for _ in 0..50 {
                f.observe(std::slice::from_ref(&s), &[kl]);
            }
        }
        let c = f.costs();
        assert!(
            (c.own[0] - 2.0).abs() < 0.01 && (c.own[1] - 0.1).abs() < 0.01,
            "{c:?}"
        );
        assert!(c.own[2] < 0.01, "{c:?}");
        // a token that skipped layers 0 and 1 with KL 3: the critical layer carries ≈ 20/21 of it
        let ch = charges(&c, &[vec![true, true, false]], &[3.0]);
        assert!((ch[0].iter().sum::<f64>() - 3.0).abs() < 1e-12);
        assert!(
            ch[0][0] > 2.8 && ch[0][1] < 0.2 && ch[0][2] == 0.0,
            "{ch:?}"
        );
        // one skip is charged the whole KL; none, nothing
        assert_eq!(
            charges(&c, &[vec![false, true, false]], &[0.4]),
            vec![vec![0.0, 0.4, 0.0]]
        );
        assert_eq!(charges(&c, &[vec![false; 3]], &[0.4]), vec![vec![0.0; 3]]);
    }

    #[test]
    fn a_later_tokens_kl_is_charged_to_the_earlier_skip_that_caused_it() {
        // two-token windows over two layers: skipping layer 0 costs the token 1 nat and the next
        // token 0.8 (attending to 2 positions, e = 1/2: ĉ'_0 = 1.6); layer 1 is free for both
        let mut f = LayerCosts::new(2);
        let cases = [
            [[true, false], [false, false]],
            [[false, false], [true, false]],
            [[false, true], [false, false]],
            [[false, true], [true, true]],
            [[true, true], [false, true]],
            [[false, false], [false, true]],
        ];
        for w in &cases {
            let s: Vec<Vec<bool>> = w.iter().map(|t| t.to_vec()).collect();
            let kls = [
                if s[0][0] { 1.0 } else { 0.0 },
                if s[1][0] { 1.0 } else { 0.0 } + if s[0][0] { 0.8 } else { 0.0 },
            ];
            for _ in 0..20 {
                f.observe(&s, &kls);
            }
        }
        let c = f.costs();
        assert!((c.own[0] - 1.0).abs() < 0.01 && c.own[1] < 0.01, "{c:?}");
        assert!(
            (c.cross[0] - 1.6).abs() < 0.02 && c.cross[1] < 0.01,
            "{c:?}"
        );
        // the first token skipped 0, the second skipped the free layer 1: the second's 0.8 nats
        // go to the first token's skip, not to its own
        let w = vec![vec![true, false], vec![false, true]];
        let ch = charges(&c, &w, &[1.0, 0.8]);
        assert!((ch[0][0] - 1.8).abs() < 0.02 && ch[1][1] < 0.02, "{ch:?}");
        let total: f64 = ch.iter().flatten().sum();
        assert!((total - 1.8).abs() < 1e-9);
    }
}
