//! Truncated singular value decomposition of a dense matrix with faer (thin SVD, f64).

use faer::Mat;

/// `M ≈ U_r·diag(σ_1..σ_r)·V_rᵀ` of a `rows × cols` matrix, with every singular value kept for the
/// error bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Truncated {
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// Kept rank r.
    pub rank: usize,
    /// `U_r`, `rows × r`, row-major.
    pub u: Vec<f64>,
    /// All singular values, non-increasing.
    pub sigma: Vec<f64>,
    /// `V_r`, `cols × r`, row-major.
    pub v: Vec<f64>,
}

/// Error of the SVD routine (faer did not converge).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("SVD did not converge")]
pub struct SvdFailed;

/// Thin SVD of `m` (`rows × cols`, row-major) truncated to rank `r` (clamped to `min(rows, cols)`).
pub fn truncated(m: &[f64], rows: usize, cols: usize, r: usize) -> Result<Truncated, SvdFailed> {
    let a = Mat::<f64>::from_fn(rows, cols, |i, j| m[i * cols + j]);
    let svd = a.thin_svd().map_err(|_| SvdFailed)?;
    let k = rows.min(cols);
    let rank = r.min(k);
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let sigma: Vec<f64> = (0..k).map(|i| s[i]).collect();
    let mut ur = Vec::with_capacity(rows * rank);
    for i in 0..rows {
        ur.extend((0..rank).map(|j| u[(i, j)]));
    }
    let mut vr = Vec::with_capacity(cols * rank);
    for i in 0..cols {
        vr.extend((0..rank).map(|j| v[(i, j)]));
    }
    Ok(Truncated {
        rows,
        cols,
        rank,
        u: ur,
        sigma,
        v: vr,
    })
}

impl Truncated {
    /// `U_r·diag(σ)·V_rᵀ`, row-major `rows × cols`.
    pub fn reconstruct(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.rows * self.cols];
        for i in 0..self.rows {
            for k in 0..self.rank {
                let us = self.u[i * self.rank + k] * self.sigma[k];
                for j in 0..self.cols {
                    out[i * self.cols + j] += us * self.v[j * self.rank + k];
                }
            }
        }
        out
    }

    /// Frobenius norm of what truncation discards: `sqrt(Σ_{i>r} σ_i²)`.
    pub fn discarded_norm(&self) -> f64 {
        self.sigma[self.rank..]
            .iter()
            .map(|s| s * s)
            .sum::<f64>()
            .sqrt()
    }

    /// Singular values above `rel_tol × σ₁` (0 for the zero matrix).
    pub fn numerical_rank(&self, rel_tol: f64) -> usize {
        let top = self.sigma.first().copied().unwrap_or(0.0);
        self.sigma
            .iter()
            .filter(|s| top > 0.0 && **s > rel_tol * top)
            .count()
    }

    /// Share of the squared Frobenius norm beyond the kept rank, `Σ_{i>r} σᵢ² / Σ σᵢ²` (0 for the
    /// zero matrix).
    pub fn tail_energy(&self) -> f64 {
        let total: f64 = self.sigma.iter().map(|s| s * s).sum();
        if total > 0.0 {
            self.discarded_norm().powi(2) / total
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn reconstruction_error_equals_the_discarded_singular_values() {
        let mut rng = sim::rng::stream(5, "svd");
        let (rows, cols) = (12, 9);
        let m: Vec<f64> = (0..rows * cols)
            .map(|_| rng.random::<f64>() - 0.5)
            .collect();
        for r in [0, 1, 3, 9] {
            let t = truncated(&m, rows, cols, r).unwrap();
            let rec = t.reconstruct();
            let err = m
                .iter()
                .zip(&rec)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            assert!((err - t.discarded_norm()).abs() < 1e-10, "r={r}: {err}");
        }
        let t = truncated(&m, rows, cols, 3).unwrap();
        assert_eq!(t.numerical_rank(1e-9), 9);
        let e: f64 = t.sigma.iter().map(|s| s * s).sum();
        assert!((t.tail_energy() - t.discarded_norm().powi(2) / e).abs() < 1e-12);
        // A rank-2 matrix: two non-zero singular values.
        let low: Vec<f64> = (0..rows * cols)
            .map(|k| ((k / cols) as f64) * 0.3 + ((k % cols) as f64) * ((k / cols) % 2) as f64)
            .collect();
        assert_eq!(
            truncated(&low, rows, cols, 1).unwrap().numerical_rank(1e-9),
            2
        );
        let full = truncated(&m, rows, cols, 9).unwrap();
        assert!(full.discarded_norm() == 0.0);
        assert!(full.sigma.windows(2).all(|w| w[0] >= w[1]));
    }
}
