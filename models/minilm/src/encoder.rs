//! The BERT encoder of all-MiniLM-L6-v2, layer by layer: [`MiniLm::embed`] (word + position +
//! token-type embeddings, LayerNorm), [`MiniLm::layer`] (self-attention + FFN, post-LN as in BERT)
//! and [`pool`] (mean over tokens, then L2 normalisation, as sentence-transformers does).
//!
//! The nonlinear operators (softmax, GELU, LayerNorm) and the input of every linear layer go
//! through an [`Ops`] object, so a caller can substitute fixed-point circuits or quantize
//! activations; [`Exact`] is the f32 reference. Hidden states are f32, row-major tokens × hidden.

use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use sim::rng::Rng;

/// Encoder dimensions (all-MiniLM-L6-v2 config.json: 6 layers, 384 hidden, 12 heads, 1536 FFN,
/// 30,522 word pieces, 512 positions, LayerNorm ε = 1e-12).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dims {
    /// Transformer layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Attention heads (divides `hidden`).
    pub heads: usize,
    /// FFN intermediate size.
    pub ffn: usize,
    /// Vocabulary size (word pieces).
    pub vocab: usize,
    /// Maximum positions (sequence length).
    pub max_pos: usize,
    /// LayerNorm ε.
    pub eps: f32,
}

impl Dims {
    /// all-MiniLM-L6-v2's dimensions with `layers` layers (6 for the full model).
    pub fn minilm(layers: usize) -> Self {
        Self {
            layers,
            hidden: 384,
            heads: 12,
            ffn: 1536,
            vocab: 30522,
            max_pos: 512,
            eps: 1e-12,
        }
    }
}

/// A dense layer y = x·Wᵀ + b.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Weights, row-major `out` × `inp` (PyTorch layout).
    pub w: Vec<f32>,
    /// Bias, `out`.
    pub b: Vec<f32>,
    /// Output features.
    pub out: usize,
    /// Input features.
    pub inp: usize,
}

impl Linear {
    /// y = x·Wᵀ + b for the rows of `x` (row-major, `inp` columns).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = Vec::with_capacity(x.len() / self.inp.max(1) * self.out);
        for xr in x.chunks_exact(self.inp) {
            for (wr, b) in self.w.chunks_exact(self.inp).zip(&self.b) {
                y.push(dot(xr, wr) + b);
            }
        }
        y
    }
}

/// Dot product with eight independent accumulators (vectorises without fast-math; the summation
/// order is fixed, so results are deterministic).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// LayerNorm affine parameters γ, β.
#[derive(Debug, Clone)]
pub struct Norm {
    /// Gain γ.
    pub gamma: Vec<f32>,
    /// Bias β.
    pub beta: Vec<f32>,
}

/// One BERT layer's weights.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Query, key and value projections stacked: rows 0..h = Q, h..2h = K, 2h..3h = V.
    pub qkv: Linear,
    /// Attention output projection.
    pub attn_out: Linear,
    /// LayerNorm after attention.
    pub ln1: Norm,
    /// FFN up projection (hidden → ffn).
    pub up: Linear,
    /// FFN down projection (ffn → hidden).
    pub down: Linear,
    /// LayerNorm after the FFN.
    pub ln2: Norm,
}

/// Which linear layer of a Transformer layer an activation feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinearSite {
    /// The stacked Q/K/V projection (input: the layer input).
    Qkv,
    /// The attention output projection (input: the attention context).
    AttnOut,
    /// FFN up projection (input: the post-attention LayerNorm output).
    FfnUp,
    /// FFN down projection (input: the GELU output).
    FfnDown,
}

impl LinearSite {
    /// The four sites in execution order.
    pub const ALL: [LinearSite; 4] = [
        LinearSite::Qkv,
        LinearSite::AttnOut,
        LinearSite::FfnUp,
        LinearSite::FfnDown,
    ];
}

/// The substitutable operators of a forward pass. Every method has the exact f32 default, so an
/// implementation overrides only what it changes.
pub trait Ops {
    /// Softmax over one attention-score row, in place.
    fn softmax(&self, row: &mut [f32]) {
        exact_softmax(row);
    }
    /// GELU (erf form, BERT's `gelu`) elementwise, in place.
    fn gelu(&self, x: &mut [f32]) {
        for v in x {
            *v = exact_gelu(*v);
        }
    }
    /// LayerNorm without affine, (x − mean)/√(var + ε), over one token row, in place.
    fn layer_norm(&self, row: &mut [f32], eps: f32) {
        exact_layer_norm(row, eps);
    }
    /// Hook on the input of linear layer `site` of layer `layer` (rows of `cols` values) before
    /// the matmul, e.g. to smooth and quantize activations. Default: unchanged.
    fn linear_input(&self, _layer: usize, _site: LinearSite, _x: &mut [f32], _cols: usize) {}
}

/// Exact f32 operators (the reference forward pass).
#[derive(Debug, Clone, Copy, Default)]
pub struct Exact;

impl Ops for Exact {}

/// Exact softmax, in place (max subtracted first).
pub fn exact_softmax(row: &mut [f32]) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let mut s = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in row.iter_mut() {
        *v /= s;
    }
}

/// Exact GELU x·Φ(x) = x/2·(1 + erf(x/√2)).
pub fn exact_gelu(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
}

/// erf from the Chebyshev-fitted erfc of Numerical Recipes (§6.2, `erfcc`), fractional error
/// < 1.2e-7 everywhere: ample for f32 activations.
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { 1.0 - r } else { r - 1.0 }
}

/// Exact LayerNorm without affine, in place (biased variance, as PyTorch).
pub fn exact_layer_norm(row: &mut [f32], eps: f32) {
    let n = row.len().max(1) as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for v in row.iter_mut() {
        *v = (*v - mean) * inv;
    }
}

/// Hidden states of one sentence: `tokens` rows of `width` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Hidden {
    /// Tokens (rows).
    pub tokens: usize,
    /// Hidden size (columns).
    pub width: usize,
    /// Row-major values.
    pub x: Vec<f32>,
}

/// The MiniLM encoder: weights and dimensions.
#[derive(Debug, Clone)]
pub struct MiniLm {
    /// Dimensions.
    pub dims: Dims,
    /// Word embeddings, vocab × hidden.
    pub word: Vec<f32>,
    /// Position embeddings, max_pos × hidden.
    pub pos: Vec<f32>,
    /// Token-type 0 embedding (single-segment input), hidden.
    pub token_type: Vec<f32>,
    /// Embedding LayerNorm.
    pub emb_ln: Norm,
    /// Transformer layers.
    pub layers: Vec<Layer>,
}

/// Fraction of hidden channels whose LayerNorm gain is set to [`OUTLIER_GAIN`] in
/// [`MiniLm::random`], mimicking the activation-outlier channels of trained Transformers.
pub const OUTLIER_FRACTION: f64 = 0.02;
/// LayerNorm gain of an outlier channel in the random stand-in.
pub const OUTLIER_GAIN: f32 = 20.0;

fn randn(rng: &mut Rng, n: usize, std: f64) -> Vec<f32> {
    let d = Normal::new(0.0, std).unwrap_or(Normal::new(0.0, 1.0).expect("unit normal"));
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

impl MiniLm {
    /// A random-weight stand-in of the same architecture ([`OUTLIER_FRACTION`] outlier channels),
    /// for tests and when the real weights are absent.
    pub fn random(dims: Dims, rng: &mut Rng) -> Self {
        Self::random_with_outliers(dims, OUTLIER_FRACTION, rng)
    }

    /// Random stand-in: weights N(0, 1/fan_in), zero biases, embeddings N(0, 1), LayerNorm gains
    /// 1 except a fraction `outliers` of channels at [`OUTLIER_GAIN`].
    pub fn random_with_outliers(dims: Dims, outliers: f64, rng: &mut Rng) -> Self {
        let h = dims.hidden;
        let lin = |rng: &mut Rng, out: usize, inp: usize| Linear {
            w: randn(rng, out * inp, (1.0 / inp as f64).sqrt()),
            b: vec![0.0; out],
            out,
            inp,
        };
        let norm = |rng: &mut Rng| Norm {
            gamma: (0..h)
                .map(|_| {
                    if rng.random::<f64>() < outliers {
                        OUTLIER_GAIN
                    } else {
                        1.0
                    }
                })
                .collect(),
            beta: vec![0.0; h],
        };
        let layers = (0..dims.layers)
            .map(|_| Layer {
                qkv: lin(rng, 3 * h, h),
                attn_out: lin(rng, h, h),
                ln1: norm(rng),
                up: lin(rng, dims.ffn, h),
                down: lin(rng, h, dims.ffn),
                ln2: norm(rng),
            })
            .collect();
        Self {
            dims,
            word: randn(rng, dims.vocab * h, 1.0),
            pos: randn(rng, dims.max_pos * h, 0.1),
            token_type: vec![0.0; h],
            emb_ln: Norm {
                gamma: vec![1.0; h],
                beta: vec![0.0; h],
            },
            layers,
        }
    }

    /// Keeps only the first `n` layers (a slice for quick runs and tests).
    pub fn truncate_layers(&mut self, n: usize) {
        self.layers.truncate(n);
        self.dims.layers = self.layers.len();
    }

    /// Calls `f(layer, site, linear)` on every linear layer, e.g. to quantize weights.
    pub fn map_linears(&mut self, mut f: impl FnMut(usize, LinearSite, &mut Linear)) {
        for (l, layer) in self.layers.iter_mut().enumerate() {
            f(l, LinearSite::Qkv, &mut layer.qkv);
            f(l, LinearSite::AttnOut, &mut layer.attn_out);
            f(l, LinearSite::FfnUp, &mut layer.up);
            f(l, LinearSite::FfnDown, &mut layer.down);
        }
    }

    /// Embedding of token ids with exact LayerNorm: see [`MiniLm::embed_with`].
    pub fn embed(&self, ids: &[u32]) -> Hidden {
        self.embed_with(ids, &Exact)
    }

    /// Embedding stage: word + position + token-type-0 embeddings, then LayerNorm through `ops`.
    /// Ids ≥ the vocabulary wrap around (only the random stand-in can see them); sequences longer
    /// than `max_pos` are cut.
    pub fn embed_with(&self, ids: &[u32], ops: &dyn Ops) -> Hidden {
        let h = self.dims.hidden;
        let n = ids.len().min(self.dims.max_pos);
        let mut x = Vec::with_capacity(n * h);
        for (p, &id) in ids[..n].iter().enumerate() {
            let t = id as usize % self.dims.vocab.max(1);
            let (w, pe) = (&self.word[t * h..][..h], &self.pos[p * h..][..h]);
            x.extend((0..h).map(|c| w[c] + pe[c] + self.token_type[c]));
        }
        let mut hid = Hidden {
            tokens: n,
            width: h,
            x,
        };
        self.norm(&mut hid, &self.emb_ln, ops);
        hid
    }

    fn norm(&self, hid: &mut Hidden, n: &Norm, ops: &dyn Ops) {
        for r in hid.x.chunks_exact_mut(hid.width) {
            ops.layer_norm(r, self.dims.eps);
            for ((v, g), b) in r.iter_mut().zip(&n.gamma).zip(&n.beta) {
                *v = *v * g + b;
            }
        }
    }

    /// Transformer layer `l` (0-based) applied to `input`: multi-head self-attention (no mask:
    /// one unpadded sentence), residual, LayerNorm; FFN with GELU, residual, LayerNorm.
    /// `l` must be < `dims.layers` (panics otherwise: a caller bug, not an input).
    pub fn layer(&self, l: usize, input: &Hidden, ops: &dyn Ops) -> Hidden {
        let lw = &self.layers[l];
        let (h, s) = (self.dims.hidden, input.tokens);
        let d = h / self.dims.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut xin = input.x.clone();
        ops.linear_input(l, LinearSite::Qkv, &mut xin, h);
        let qkv = lw.qkv.apply(&xin);
        let mut ctx = vec![0.0f32; s * h];
        let mut sc = vec![0.0f32; s];
        for hd in 0..self.dims.heads {
            for i in 0..s {
                let q = &qkv[i * 3 * h + hd * d..][..d];
                for (j, v) in sc.iter_mut().enumerate() {
                    *v = dot(q, &qkv[j * 3 * h + h + hd * d..][..d]) * scale;
                }
                ops.softmax(&mut sc);
                let c = &mut ctx[i * h + hd * d..][..d];
                for (j, p) in sc.iter().enumerate() {
                    for (cv, vv) in c.iter_mut().zip(&qkv[j * 3 * h + 2 * h + hd * d..][..d]) {
                        *cv += p * vv;
                    }
                }
            }
        }
        ops.linear_input(l, LinearSite::AttnOut, &mut ctx, h);
        let a = lw.attn_out.apply(&ctx);
        let mut x = Hidden {
            tokens: s,
            width: h,
            x: input.x.iter().zip(&a).map(|(u, v)| u + v).collect(),
        };
        self.norm(&mut x, &lw.ln1, ops);
        let mut xin = x.x.clone();
        ops.linear_input(l, LinearSite::FfnUp, &mut xin, h);
        let mut u = lw.up.apply(&xin);
        for r in u.chunks_exact_mut(self.dims.ffn) {
            ops.gelu(r);
        }
        ops.linear_input(l, LinearSite::FfnDown, &mut u, self.dims.ffn);
        let f = lw.down.apply(&u);
        for (v, fv) in x.x.iter_mut().zip(&f) {
            *v += fv;
        }
        self.norm(&mut x, &lw.ln2, ops);
        x
    }

    /// All layers: embed then every layer in order.
    pub fn forward(&self, ids: &[u32], ops: &dyn Ops) -> Hidden {
        let mut x = self.embed_with(ids, ops);
        for l in 0..self.layers.len() {
            x = self.layer(l, &x, ops);
        }
        x
    }

    /// Sentence embedding: [`pool`] of [`MiniLm::forward`].
    pub fn encode(&self, ids: &[u32], ops: &dyn Ops) -> Vec<f32> {
        pool(&self.forward(ids, ops))
    }
}

/// Mean pooling over all tokens (one unpadded sentence: the attention mask is all ones), then L2
/// normalisation — sentence-transformers' `Pooling(mean)` + `Normalize` of all-MiniLM-L6-v2.
pub fn pool(h: &Hidden) -> Vec<f32> {
    let mut m = vec![0.0f32; h.width];
    for r in h.x.chunks_exact(h.width) {
        for (a, v) in m.iter_mut().zip(r) {
            *a += v;
        }
    }
    let n = h.tokens.max(1) as f32;
    m.iter_mut().for_each(|v| *v /= n);
    let norm = m.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    m.iter_mut().for_each(|v| *v /= norm);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Dims {
        Dims {
            layers: 2,
            hidden: 32,
            heads: 4,
            ffn: 64,
            vocab: 100,
            max_pos: 16,
            eps: 1e-12,
        }
    }

    #[test]
    fn erf_and_gelu_match_known_values() {
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_877_8), (1.0, 0.842_700_792_9)] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x})");
            assert!((erf(-x) + want).abs() < 2e-7);
        }
        assert!((exact_gelu(1.0) - 0.841_344_7).abs() < 1e-6);
    }

    #[test]
    fn layerwise_calls_equal_forward_and_pool_is_unit_norm() {
        let m = MiniLm::random(small(), &mut sim::rng::stream(1, "t"));
        let ids = [1u32, 5, 7, 99, 2];
        let mut h = m.embed(&ids);
        for l in 0..2 {
            h = m.layer(l, &h, &Exact);
        }
        assert_eq!(h, m.forward(&ids, &Exact));
        let e = pool(&h);
        let n: f32 = e.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }

    #[test]
    fn linear_and_dot_match_the_naive_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| (i as f32).sin()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn long_inputs_are_cut_and_large_ids_wrap() {
        let m = MiniLm::random(small(), &mut sim::rng::stream(1, "t"));
        let h = m.embed(&[500u32; 40]);
        assert_eq!(h.tokens, 16);
    }
}
