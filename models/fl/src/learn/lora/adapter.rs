//! LoRA adapters on every dense layer of a frozen base MLP: `W' = W + B·A`, with `B: d_out × r`,
//! `A: r × d_in`; local training ([`super::batched`]) updates `B` (and `A` unless frozen).

use rand_distr::{Distribution, Normal};
use sim::rng::Rng;

use crate::learn::nn::Weights;
use crate::learn::svd::{self, SvdFailed};

/// One layer's low-rank adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Lora {
    /// Rank r (the stacked rank for FLoRA's downlink is counted separately).
    pub rank: usize,
    /// Input width of the adapted layer.
    pub d_in: usize,
    /// Output width of the adapted layer.
    pub d_out: usize,
    /// `A`, `r × d_in`, row-major.
    pub a: Vec<f32>,
    /// `B`, `d_out × r`, row-major.
    pub b: Vec<f32>,
}

impl Lora {
    /// The usual initialisation: `A` Gaussian with std `1/sqrt(d_in)`, `B = 0` (so `B·A = 0`).
    pub fn init(rank: usize, d_in: usize, d_out: usize, rng: &mut Rng) -> Self {
        let normal = Normal::new(0.0f32, 1.0 / (d_in as f32).sqrt()).expect("finite std");
        Self {
            rank,
            d_in,
            d_out,
            a: (0..rank * d_in).map(|_| normal.sample(rng)).collect(),
            b: vec![0.0; d_out * rank],
        }
    }

    /// The dense update `B·A`, row-major `d_out × d_in`, in f64.
    pub fn product(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.d_out * self.d_in];
        for i in 0..self.d_out {
            for k in 0..self.rank {
                let bik = f64::from(self.b[i * self.rank + k]);
                if bik == 0.0 {
                    continue;
                }
                for j in 0..self.d_in {
                    out[i * self.d_in + j] += bik * f64::from(self.a[k * self.d_in + j]);
                }
            }
        }
        out
    }

    /// Floats sent when the adapter travels (`A` and `B`).
    pub fn floats(&self) -> usize {
        self.a.len() + self.b.len()
    }

    /// Whether every entry of `A` and `B` is finite.
    pub fn is_finite(&self) -> bool {
        self.a.iter().chain(&self.b).all(|v| v.is_finite())
    }

    /// `‖B‖₂² + ‖A‖₂²` (spectral norms): to first order one SGD step of size `lr` on `(B, A)`
    /// with gradient `G` of the product moves `B·A` by `−lr·(B·Bᵀ·G + G·Aᵀ·A)`, so this bounds how
    /// much the factorisation amplifies the step on the product (1 for balanced unit factors;
    /// `σ₁² + 1` for FlexLoRA's `B = UΣ`, `A = Vᵀ`; `2σ₁` for FedMomentum's `√Σ` split).
    pub fn step_gain(&self) -> std::result::Result<f64, SvdFailed> {
        let top = |m: &[f32], rows: usize, cols: usize| -> std::result::Result<f64, SvdFailed> {
            let m: Vec<f64> = m.iter().map(|&v| f64::from(v)).collect();
            Ok(svd::truncated(&m, rows, cols, 1)?
                .sigma
                .first()
                .copied()
                .unwrap_or(0.0))
        };
        let b = top(&self.b, self.d_out, self.rank)?;
        let a = top(&self.a, self.rank, self.d_in)?;
        Ok(b * b + a * a)
    }
}

/// Adapters of every layer of a model.
pub type Adapters = Vec<Lora>;

/// Fresh adapters for every layer of `base`.
pub fn init_adapters(base: &Weights, rank: usize, rng: &mut Rng) -> Adapters {
    base.layers
        .iter()
        .map(|l| Lora::init(rank, l.d_in, l.d_out, rng))
        .collect()
}

/// `base` with every adapter merged in (`W ← W + B·A`).
pub fn merged(base: &Weights, adapters: &Adapters) -> Weights {
    let mut out = base.clone();
    for (l, ad) in out.layers.iter_mut().zip(adapters) {
        for (w, d) in l.w.iter_mut().zip(ad.product()) {
            *w += d as f32;
        }
    }
    out
}

/// Adds a dense delta (`d_out × d_in`) to the weight of layer `layer` of the base.
pub fn add_to_base(base: &mut Weights, layer: usize, delta: &[f64]) {
    for (w, v) in base.layers[layer].w.iter_mut().zip(delta) {
        *w += *v as f32;
    }
}
