//! Least squares for maps fitted on hidden states: the cross-product AᵀB of two row-major matrices
//! (candle's CPU matmul) and a ridge-regularised solve of the normal equations by Cholesky (f64).

use candle_core::{Device, Tensor};

/// AᵀB for `a` (rows × `ca`) and `b` (rows × `cb`), row-major: a `ca` × `cb` matrix.
pub fn cross(a: &[f32], b: &[f32], rows: usize, ca: usize, cb: usize) -> Vec<f32> {
    assert_eq!(a.len(), rows * ca, "a: rows × ca");
    assert_eq!(b.len(), rows * cb, "b: rows × cb");
    let ta = Tensor::from_slice(a, (rows, ca), &Device::Cpu).expect("shape checked");
    let tb = Tensor::from_slice(b, (rows, cb), &Device::Cpu).expect("shape checked");
    ta.t()
        .and_then(|t| t.matmul(&tb))
        .and_then(|y| y.flatten_all())
        .and_then(|y| y.to_vec1())
        .expect("shapes checked")
}

/// Solves (G + ρ·mean(diag G)·I) W = R for W (`n` × `m`), with G = AᵀA (`n` × `n`) and R = AᵀB
/// (`n` × `m`) row-major: the ridge least-squares coefficients of B on A. `None` when G is not
/// positive definite even with the ridge (e.g. empty).
pub fn ridge_solve(g: &[f64], r: &[f64], n: usize, m: usize, rho: f64) -> Option<Vec<f64>> {
    assert_eq!(g.len(), n * n, "G: n × n");
    assert_eq!(r.len(), n * m, "R: n × m");
    let ridge = rho * (0..n).map(|i| g[i * n + i]).sum::<f64>() / n.max(1) as f64;
    // Cholesky G + ridge·I = L Lᵀ, L lower triangular
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = g[i * n + j] + if i == j { ridge } else { 0.0 };
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    // forward (L Y = R) then backward (Lᵀ W = Y), all m columns at once
    let mut w = r.to_vec();
    for i in 0..n {
        for k in 0..i {
            let f = l[i * n + k];
            for c in 0..m {
                w[i * m + c] -= f * w[k * m + c];
            }
        }
        let d = l[i * n + i];
        w[i * m..(i + 1) * m].iter_mut().for_each(|v| *v /= d);
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            let f = l[k * n + i];
            for c in 0..m {
                w[i * m + c] -= f * w[k * m + c];
            }
        }
        let d = l[i * n + i];
        w[i * m..(i + 1) * m].iter_mut().for_each(|v| *v /= d);
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_least_squares_recovers_an_exact_linear_map() {
        // B = A·W with W = [[1, −2], [0.5, 3], [2, 0]] over 5 rows of 3 columns
        let a: Vec<f32> = vec![
            1.0, 0.0, 2.0, 0.5, 1.0, -1.0, 2.0, -1.0, 0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 1.0,
        ];
        let w = [1.0f32, -2.0, 0.5, 3.0, 2.0, 0.0];
        let b: Vec<f32> = a
            .chunks(3)
            .flat_map(|r| (0..2).map(move |c| (0..3).map(|k| r[k] * w[k * 2 + c]).sum::<f32>()))
            .collect();
        let g: Vec<f64> = cross(&a, &a, 5, 3, 3).iter().map(|&v| v.into()).collect();
        let r: Vec<f64> = cross(&a, &b, 5, 3, 2).iter().map(|&v| v.into()).collect();
        let fit = ridge_solve(&g, &r, 3, 2, 0.0).unwrap();
        for (f, e) in fit.iter().zip(w) {
            assert!((f - f64::from(e)).abs() < 1e-4, "{f} vs {e}");
        }
        assert!(ridge_solve(&[0.0; 4], &[0.0; 2], 2, 1, 0.0).is_none());
    }
}
