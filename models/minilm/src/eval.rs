//! Comparing sentence embeddings: cosine similarity and nearest-neighbour retrieval agreement.

/// Cosine similarity of two vectors (f64 accumulation; 0 if either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    dot / (na * nb).sqrt().max(1e-30)
}

/// For each embedding, the index of its most similar other embedding (cosine; ties → lowest index).
pub fn nearest(e: &[Vec<f32>]) -> Vec<usize> {
    (0..e.len())
        .map(|i| {
            let mut best = (i, f64::NEG_INFINITY);
            for (j, f) in e.iter().enumerate() {
                if j != i {
                    let c = cosine(&e[i], f);
                    if c > best.1 {
                        best = (j, c);
                    }
                }
            }
            best.0
        })
        .collect()
}

/// Quality of embeddings `b` against reference embeddings `a` of the same sentences: mean and
/// minimum cosine similarity, and the fraction of sentences whose nearest neighbour among the
/// others is the same sentence under both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Mean cosine similarity of corresponding embeddings.
    pub cosine_mean: f64,
    /// Smallest cosine similarity of corresponding embeddings.
    pub cosine_min: f64,
    /// Nearest-neighbour agreement in [0, 1].
    pub nn_agreement: f64,
}

/// Compares `b` with the reference `a` (see [`Agreement`]).
pub fn agreement(a: &[Vec<f32>], b: &[Vec<f32>]) -> Agreement {
    let cos: Vec<f64> = a.iter().zip(b).map(|(x, y)| cosine(x, y)).collect();
    let n = cos.len().max(1) as f64;
    let (na, nb) = (nearest(a), nearest(b));
    Agreement {
        cosine_mean: cos.iter().sum::<f64>() / n,
        cosine_min: cos.iter().copied().fold(1.0, f64::min),
        nn_agreement: na.iter().zip(&nb).filter(|(x, y)| x == y).count() as f64 / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_embeddings_agree_fully() {
        let e = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0]];
        assert_eq!(nearest(&e), [1, 0, 1]);
        let a = agreement(&e, &e);
        assert!((a.cosine_mean - 1.0).abs() < 1e-12 && a.nn_agreement == 1.0);
        // Moving sentence 1 next to sentence 2 changes its neighbour.
        let moved = vec![vec![1.0, 0.0], vec![0.1, 0.9], vec![0.0, 1.0]];
        let a = agreement(&e, &moved);
        assert!((a.nn_agreement - 2.0 / 3.0).abs() < 1e-12 && a.cosine_min < 0.3);
    }
}
