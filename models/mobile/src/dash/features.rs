//! The scorer's input: features of one token's hidden state at one layer boundary — how far the
//! last layer moved it (relative norm of the residual update, 1 − cosine between consecutive
//! states) and which layer is next (one-hot). Plain functions over `f32` rows.

/// Number of features for a stack of `layers` layers: relative update norm, 1 − cosine, and a
/// one-hot layer index (the scorer's per-layer bias).
pub fn len(layers: usize) -> usize {
    2 + layers
}

/// Features for deciding layer `layer` of `layers` from a token's state `cur` and the state one
/// layer earlier `prev` (`None` at the embedding, where both update features are 0).
pub fn features(cur: &[f32], prev: Option<&[f32]>, layer: usize, layers: usize) -> Vec<f64> {
    let mut f = vec![0.0; len(layers)];
    if let Some(p) = prev {
        let (mut dd, mut cc, mut pp, mut cp) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (&c, &q) in cur.iter().zip(p) {
            let (c, q) = (f64::from(c), f64::from(q));
            dd += (c - q) * (c - q);
            cc += c * c;
            pp += q * q;
            cp += c * q;
        }
        f[0] = (dd / cc.max(1e-30)).sqrt();
        f[1] = 1.0 - cp / (cc * pp).sqrt().max(1e-30);
    }
    f[2 + layer.min(layers.saturating_sub(1))] = 1.0;
    f
}

/// FLOPs of [`features`] for one token of hidden size `hidden` (difference, three dot products).
pub fn flops(hidden: u64) -> f64 {
    8.0 * hidden as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_an_unchanged_state_are_zero_updates() {
        let x = [1.0f32, -2.0, 0.5];
        let f = features(&x, Some(&x), 1, 3);
        assert!(f[0].abs() < 1e-12 && f[1].abs() < 1e-12);
        assert_eq!(&f[2..], &[0.0, 1.0, 0.0]);
        let g = features(&x, Some(&[-1.0, 2.0, -0.5]), 0, 3);
        assert!((g[0] - 2.0).abs() < 1e-9 && (g[1] - 2.0).abs() < 1e-9);
        assert_eq!(features(&x, None, 2, 3)[..2], [0.0, 0.0]);
    }
}
