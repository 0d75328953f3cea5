//! Quality study: a BERT-style encoder of MiniLM-L6's architecture with RANDOM weights (a
//! stand-in — the real all-MiniLM-L6-v2 weights are not loaded) on synthetic token sequences.
//! The reference runs in f32 with exact nonlinear ops; the test run substitutes the design's
//! fixed-point softmax, GELU and LayerNorm and quantizes the linear layers' weights and
//! activations with the chosen method. Metrics: mean cosine similarity of the mean-pooled
//! embeddings and nearest-neighbour agreement.

use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use sim::rng::Rng;

use super::fixed::Fmt;
use super::ops::{self, Design, Op, Prec};
use super::params::{QualityParams, QuantMethod};
use super::specquant::{fake_quant_rows, smooth_factors, specquant_weights};

/// Encoder dimensions.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Heads.
    pub heads: usize,
    /// FFN size.
    pub ffn: usize,
    /// Tokens per sentence.
    pub seq: usize,
    /// Vocabulary.
    pub vocab: usize,
}

impl Dims {
    /// MiniLM-L6 (all-MiniLM-L6-v2 config.json: 384 hidden, 12 heads, 1536 FFN; vocabulary
    /// shrunk to 1,000 since embeddings are random), `layers` ≤ 6 and 32 tokens.
    pub fn minilm(layers: usize) -> Self {
        Self {
            layers,
            hidden: 384,
            heads: 12,
            ffn: 1536,
            seq: 32,
            vocab: 1000,
        }
    }
}

struct Linear {
    w: Vec<f32>, // out × in
    out: usize,
    inp: usize,
}

struct Layer {
    qkv: Linear,
    o: Linear,
    up: Linear,
    down: Linear,
    g1: Vec<f32>,
    g2: Vec<f32>,
}

/// A random-weight encoder.
pub struct Encoder {
    dims: Dims,
    emb: Vec<f32>,
    layers: Vec<Layer>,
}

fn randn(rng: &mut Rng, n: usize, std: f64) -> Vec<f32> {
    let d = Normal::new(0.0, std).unwrap_or(Normal::new(0.0, 1.0).expect("unit normal"));
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

impl Encoder {
    /// Random weights (N(0, 1/fan_in)); a fraction `outliers` of LayerNorm gain channels set to
    /// 20 (the activation-outlier channels observed in real Transformers).
    pub fn random(dims: Dims, outliers: f64, rng: &mut Rng) -> Self {
        let lin = |rng: &mut Rng, out, inp| Linear {
            w: randn(rng, out * inp, (1.0 / inp as f64).sqrt()),
            out,
            inp,
        };
        let h = dims.hidden;
        let gain = |rng: &mut Rng| -> Vec<f32> {
            (0..h)
                .map(|_| {
                    if rng.random::<f64>() < outliers {
                        20.0
                    } else {
                        1.0
                    }
                })
                .collect()
        };
        let layers = (0..dims.layers)
            .map(|_| Layer {
                qkv: lin(rng, 3 * h, h),
                o: lin(rng, h, h),
                up: lin(rng, dims.ffn, h),
                down: lin(rng, h, dims.ffn),
                g1: gain(rng),
                g2: gain(rng),
            })
            .collect();
        Self {
            dims,
            emb: randn(rng, dims.vocab * h, 1.0),
            layers,
        }
    }
}

/// How a forward pass computes: exact f32 (`None`) or the design's fixed-point ops plus the
/// quantization method.
pub struct Variant<'a> {
    /// Nonlinear design and precision.
    pub ops: Option<(Design, Prec)>,
    /// Quantization of the linear layers.
    pub quant: Option<&'a QualityParams>,
}

/// Applies a nonlinear op to one row in fixed point, with a per-row power-of-two input scale.
fn fixed_row(design: Design, prec: Prec, op: Op, x: &mut [f32]) {
    let m = x.iter().fold(1e-6f32, |a, v| a.max(v.abs()));
    let fin = Fmt::new(prec.bits, prec.bits as i32 - 1 - m.log2().ceil() as i32);
    let fout = match op {
        Op::Softmax => Fmt::new(prec.bits + 1, prec.bits as i32),
        Op::LayerNorm | Op::RmsNorm => Fmt::new(prec.bits, prec.bits as i32 - 4),
        _ => fin,
    };
    let q: Vec<i32> = x.iter().map(|&v| fin.quantize(f64::from(v))).collect();
    let y = ops::apply(design, op, prec, &q, fin, fout);
    for (v, c) in x.iter_mut().zip(y) {
        *v = fout.dequantize(c) as f32;
    }
}

fn nonlinear(v: &Variant, op: Op, x: &mut [f32]) {
    match v.ops {
        Some((d, p)) => fixed_row(d, p, op, x),
        None => {
            let r = ops::reference(op, &x.iter().map(|&a| f64::from(a)).collect::<Vec<_>>());
            for (a, b) in x.iter_mut().zip(r) {
                *a = b as f32;
            }
        }
    }
}

/// y = x·Wᵀ for `rows` tokens, with the method's weight/activation quantization.
fn linear(l: &Linear, x: &[f32], rows: usize, v: &Variant) -> Vec<f32> {
    let mut xin = x.to_vec();
    let mut w = l.w.clone();
    if let Some(q) = v.quant {
        if matches!(q.method, QuantMethod::Smooth | QuantMethod::Specquant) {
            let mut amax = vec![0.0f32; l.inp];
            for r in xin.chunks(l.inp) {
                for (m, a) in amax.iter_mut().zip(r) {
                    *m = m.max(a.abs());
                }
            }
            let lam = smooth_factors(&amax, &w, l.inp, q.alpha);
            for r in xin.chunks_mut(l.inp) {
                for (a, s) in r.iter_mut().zip(&lam) {
                    *a /= s;
                }
            }
            for r in w.chunks_mut(l.inp) {
                for (a, s) in r.iter_mut().zip(&lam) {
                    *a *= s;
                }
            }
        }
        match q.method {
            QuantMethod::None => {}
            QuantMethod::Specquant => w = specquant_weights(&w, l.inp, q.weight_bits, q.energy).0,
            _ => fake_quant_rows(&mut w, l.inp, q.weight_bits),
        }
        if q.method != QuantMethod::None {
            fake_quant_rows(&mut xin, l.inp, q.act_bits);
        }
    }
    let mut y = vec![0.0f32; rows * l.out];
    for (r, xr) in xin.chunks(l.inp).enumerate() {
        for (o, wr) in w.chunks(l.inp).enumerate() {
            y[r * l.out + o] = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
        }
    }
    y
}

impl Encoder {
    /// Mean-pooled embedding of one token sequence.
    pub fn embed(&self, tokens: &[usize], v: &Variant) -> Vec<f32> {
        let Dims {
            hidden: h, heads, ..
        } = self.dims;
        let s = tokens.len();
        let d = h / heads;
        let mut x: Vec<f32> = tokens
            .iter()
            .flat_map(|&t| self.emb[t * h..(t + 1) * h].iter().copied())
            .collect();
        let norm = |x: &mut [f32], g: &[f32]| {
            for r in x.chunks_mut(h) {
                nonlinear(v, Op::LayerNorm, r);
                for (a, gi) in r.iter_mut().zip(g) {
                    *a *= gi;
                }
            }
        };
        for l in &self.layers {
            let qkv = linear(&l.qkv, &x, s, v);
            let mut ctx = vec![0.0f32; s * h];
            for hd in 0..heads {
                for i in 0..s {
                    let q = &qkv[i * 3 * h + hd * d..][..d];
                    let mut sc: Vec<f32> = (0..s)
                        .map(|j| {
                            let k = &qkv[j * 3 * h + h + hd * d..][..d];
                            q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (d as f32).sqrt()
                        })
                        .collect();
                    nonlinear(v, Op::Softmax, &mut sc);
                    for (j, p) in sc.iter().enumerate() {
                        let vv = &qkv[j * 3 * h + 2 * h + hd * d..][..d];
                        for (c, b) in ctx[i * h + hd * d..][..d].iter_mut().zip(vv) {
                            *c += p * b;
                        }
                    }
                }
            }
            let a = linear(&l.o, &ctx, s, v);
            x.iter_mut().zip(a).for_each(|(xi, ai)| *xi += ai);
            norm(&mut x, &l.g1);
            let mut u = linear(&l.up, &x, s, v);
            for r in u.chunks_mut(self.dims.ffn) {
                nonlinear(v, Op::Gelu, r);
            }
            let f = linear(&l.down, &u, s, v);
            x.iter_mut().zip(f).for_each(|(xi, fi)| *xi += fi);
            norm(&mut x, &l.g2);
        }
        (0..h)
            .map(|c| (0..s).map(|t| x[t * h + c]).sum::<f32>() / s as f32)
            .collect()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

/// Index of each embedding's nearest other embedding (cosine).
fn nearest(e: &[Vec<f32>]) -> Vec<usize> {
    (0..e.len())
        .map(|i| {
            (0..e.len())
                .filter(|&j| j != i)
                .max_by(|&a, &b| cosine(&e[i], &e[a]).total_cmp(&cosine(&e[i], &e[b])))
                .unwrap_or(i)
        })
        .collect()
}

/// Quality of `variant` vs exact f32: (mean cosine similarity, nearest-neighbour agreement).
pub fn evaluate(enc: &Encoder, sentences: &[Vec<usize>], variant: &Variant) -> (f64, f64) {
    let exact = Variant {
        ops: None,
        quant: None,
    };
    let a: Vec<Vec<f32>> = sentences.iter().map(|s| enc.embed(s, &exact)).collect();
    let b: Vec<Vec<f32>> = sentences.iter().map(|s| enc.embed(s, variant)).collect();
    let cos = a.iter().zip(&b).map(|(x, y)| cosine(x, y)).sum::<f64>() / a.len().max(1) as f64;
    let (na, nb) = (nearest(&a), nearest(&b));
    let agree = na.iter().zip(&nb).filter(|(x, y)| x == y).count() as f64 / na.len().max(1) as f64;
    (cos, agree)
}

/// Synthetic sentences: uniform random token ids.
pub fn sentences(dims: Dims, n: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    (0..n)
        .map(|_| {
            (0..dims.seq)
                .map(|_| rng.random_range(0..dims.vocab))
                .collect()
        })
        .collect()
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
            seq: 8,
            vocab: 64,
        }
    }

    fn q(method: QuantMethod, bits: u32) -> QualityParams {
        QualityParams {
            method,
            weight_bits: bits,
            act_bits: bits,
            sentences: 6,
            alpha: 0.5,
            energy: 0.9,
            outlier_fraction: 0.05,
            layers: 2,
        }
    }

    #[test]
    fn exact_variant_matches_itself_and_quantization_degrades_with_bits() {
        let mut rng = sim::rng::stream(3, "t");
        let enc = Encoder::random(small(), 0.05, &mut rng);
        let s = sentences(small(), 6, &mut rng);
        let (c, a) = evaluate(
            &enc,
            &s,
            &Variant {
                ops: None,
                quant: None,
            },
        );
        assert!((c - 1.0).abs() < 1e-9 && a == 1.0);
        let (c8, _) = evaluate(
            &enc,
            &s,
            &Variant {
                ops: Some((Design::Quark, Prec::INT8)),
                quant: Some(&q(QuantMethod::Rtn, 8)),
            },
        );
        let (c4, _) = evaluate(
            &enc,
            &s,
            &Variant {
                ops: Some((Design::Quark, Prec::INT8)),
                quant: Some(&q(QuantMethod::Rtn, 4)),
            },
        );
        assert!(c8 > c4, "W8A8 {c8} vs W4A4 {c4}");
        assert!(c8 > 0.9, "W8A8 cosine {c8}");
    }
}
