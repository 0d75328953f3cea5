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

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-30)
}

/// Mean over the `rows` of a row-major `rows × hidden` matrix (MiniLM's mean pooling).
pub fn mean_pool(x: &[f32], hidden: usize) -> Vec<f32> {
    let rows = (x.len() / hidden.max(1)).max(1);
    let mut m = vec![0.0f32; hidden];
    for r in x.chunks(hidden) {
        for (a, b) in m.iter_mut().zip(r) {
            *a += b;
        }
    }
    m.iter_mut().for_each(|a| *a /= rows as f32);
    m
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

    #[test]
    fn cosine_and_pooling() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert_eq!(mean_pool(&[1.0, 2.0, 3.0, 4.0], 2), vec![2.0, 3.0]);
    }
}
