//! Randomized Hadamard rotations (QuaRot, arXiv 2404.00456): x ↦ (x∘d)·H/√n with random signs d and
//! a Hadamard matrix H of order n, orthonormal, so a linear layer keeps its product when both its
//! input rows and its weight rows are rotated: (x∘d)H/√n · ((w∘d)H/√n)ᵀ = x·wᵀ. Rotation spreads an
//! outlier channel over all channels before quantization.
//!
//! H is a Kronecker product of small factors (QuaRot does the same for non-power-of-two widths):
//! Sylvester's H₂ for each factor of two and Paley's construction of order 12 (q = 11 ≡ 3 mod 4)
//! for each factor of twelve, so every n = 12^a·2^b has one (SmolLM2: 576 = 12·12·4, 1536 = 12·128;
//! MiniLM: 384 = 12·32). Applying it costs n·Σ(factor orders) per row, never a dense n×n matrix.

/// An orthonormal randomized Hadamard rotation of one width.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    n: usize,
    /// Kronecker factors, most significant first, each a dense ±1 matrix (order, row-major).
    factors: Vec<(usize, Vec<f32>)>,
    signs: Vec<f32>,
}

/// Sylvester's H₂.
fn h2() -> (usize, Vec<f32>) {
    (2, vec![1.0, 1.0, 1.0, -1.0])
}

/// Paley's construction I for q = 11: H = I + [[0, 1ᵀ], [−1, Q]] with the Jacobsthal matrix
/// Q_ij = χ(j − i) (χ the quadratic character mod 11), a Hadamard matrix of order 12.
fn h12() -> (usize, Vec<f32>) {
    const Q: usize = 11;
    let chi = |a: usize| -> f32 {
        let a = a % Q;
        if a == 0 {
            0.0
        } else if (1..Q).any(|x| x * x % Q == a) {
            1.0
        } else {
            -1.0
        }
    };
    let n = Q + 1;
    let mut h = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            let s = match (i, j) {
                (0, 0) => 0.0,
                (0, _) => 1.0,
                (_, 0) => -1.0,
                _ => chi(j + Q - i),
            };
            h[i * n + j] = s + if i == j { 1.0 } else { 0.0 };
        }
    }
    (n, h)
}

/// The Kronecker factors of a Hadamard matrix of order `n`, or `None` when n ≠ 12^a·2^b.
fn factors(mut n: usize) -> Option<Vec<(usize, Vec<f32>)>> {
    let mut out = Vec::new();
    while n > 1 {
        if n.is_power_of_two() {
            out.push(h2());
            n /= 2;
        } else if n.is_multiple_of(12) {
            out.push(h12());
            n /= 12;
        } else {
            return None;
        }
    }
    Some(out)
}

impl Rotation {
    /// The rotation of width `n` with sign vector `signs` (each ±1, length n), or `None` when no
    /// Hadamard matrix of order n is built here (n ≠ 12^a·2^b) or the lengths differ.
    pub fn new(n: usize, signs: Vec<f32>) -> Option<Self> {
        if signs.len() != n || n == 0 {
            return None;
        }
        Some(Self {
            n,
            factors: factors(n)?,
            signs,
        })
    }

    /// The rotation of width `n` with signs drawn from `rng`.
    pub fn random(n: usize, rng: &mut impl rand::Rng) -> Option<Self> {
        let signs = (0..n)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        Self::new(n, signs)
    }

    /// Width.
    pub fn width(&self) -> usize {
        self.n
    }

    /// Rotates one row in place: x ← (x∘d)·H/√n.
    pub fn apply(&self, x: &mut [f32]) {
        assert_eq!(x.len(), self.n, "rotation width");
        for (v, s) in x.iter_mut().zip(&self.signs) {
            *v *= s;
        }
        let mut stride = self.n;
        let mut v = Vec::new();
        for (s, f) in &self.factors {
            stride /= s;
            let block = s * stride;
            for base in (0..self.n).step_by(block) {
                for t in 0..stride {
                    v.clear();
                    v.extend((0..*s).map(|i| x[base + i * stride + t]));
                    for j in 0..*s {
                        x[base + j * stride + t] = (0..*s).map(|i| v[i] * f[i * s + j]).sum();
                    }
                }
            }
        }
        let scale = 1.0 / (self.n as f32).sqrt();
        for v in x.iter_mut() {
            *v *= scale;
        }
    }

    /// Rotates every row (of `width` values) of a row-major matrix.
    pub fn apply_rows(&self, x: &mut [f32]) {
        for row in x.chunks_exact_mut(self.n) {
            self.apply(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(n: usize) -> Vec<f32> {
        // Rows of H·√n·diag-free: rotate each unit vector with unit signs.
        let r = Rotation::new(n, vec![1.0; n]).expect("order");
        let mut h = Vec::with_capacity(n * n);
        for i in 0..n {
            let mut e = vec![0.0f32; n];
            e[i] = 1.0;
            r.apply(&mut e);
            h.extend(e.iter().map(|v| v * (n as f32).sqrt()));
        }
        h
    }

    #[test]
    fn the_factors_are_hadamard_matrices_of_every_built_order() {
        for n in [2, 12, 24, 48, 64, 96, 144, 576] {
            let h = dense(n);
            assert!(h.iter().all(|v| (v.abs() - 1.0).abs() < 1e-4), "n={n}: ±1");
            for i in 0..n {
                for j in 0..n {
                    let d: f32 = (0..n).map(|k| h[i * n + k] * h[j * n + k]).sum();
                    let want = if i == j { n as f32 } else { 0.0 };
                    assert!((d - want).abs() < 1e-2, "n={n} ({i},{j}): {d}");
                }
            }
        }
        assert!(Rotation::new(20, vec![1.0; 20]).is_none());
    }

    #[test]
    fn rotating_inputs_and_weights_keeps_the_product_and_spreads_an_outlier() {
        let n = 576;
        let signs: Vec<f32> = (0..n)
            .map(|i| if i * 7 % 5 < 2 { -1.0 } else { 1.0 })
            .collect();
        let r = Rotation::new(n, signs).expect("576 = 12·12·4");
        let mut x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        x[100] = 80.0;
        let w: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
        let before = dot(&x, &w);
        let peak = |v: &[f32]| v.iter().fold(0f32, |m, a| m.max(a.abs()));
        let (mut xr, mut wr) = (x.clone(), w.clone());
        r.apply(&mut xr);
        r.apply(&mut wr);
        assert!((dot(&xr, &wr) - before).abs() < 1e-2 * before.abs().max(1.0));
        assert!((dot(&xr, &xr) - dot(&x, &x)).abs() < 1e-3 * dot(&x, &x));
        assert!(peak(&xr) < peak(&x) / 4.0, "{} vs {}", peak(&xr), peak(&x));
    }
}
