//! Quality study on the shared MiniLM encoder ([`crate::minilm`]): the real all-MiniLM-L6-v2
//! (or, when its weights are absent or `weights: random`, the random-weight stand-in) encodes real
//! ShareGPT prompt sentences twice — exactly in f32, and with the design's fixed-point softmax,
//! GELU and LayerNorm substituted and/or the linear layers' weights and activations quantized by
//! the chosen method. Metrics: cosine similarity of the sentence embeddings and nearest-neighbour
//! retrieval agreement.
//!
//! Quantization follows SmoothQuant's static recipe: per-input-channel activation maxima are
//! calibrated once on sentences disjoint from the evaluation set, the smoothing factors λ are
//! folded into the weights (W·diag(λ)), weights are quantized once (RTN per output channel, or
//! SpecQuant), and activations are divided by λ and quantized per token at run time. Biases,
//! embeddings and attention matmuls (QKᵀ, AV) stay in f32, as in the papers' W4A4 settings.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::minilm::eval::{Agreement, agreement};
use crate::minilm::{Exact, LinearSite, MiniLm, Ops};

use super::fixed::Fmt;
use super::ops::{self, Design, Op, Prec};
use super::params::{QualityParams, QuantMethod};
use super::specquant::{fake_quant_rows, smooth_factors, specquant_weights};

/// How a forward pass computes: the design's fixed-point nonlinear ops (`None`: exact f32) and
/// the quantization of the linear layers (`None` or method `none`: f32).
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

/// Per-linear-layer activation treatment at run time: divide by λ (smoothing), then quantize
/// each token row to `bits`.
struct ActQuant {
    bits: u32,
    smooth: BTreeMap<(usize, LinearSite), Vec<f32>>,
}

/// The substituted operators of one variant, as [`Ops`] for the shared encoder.
struct VariantOps {
    nonlinear: Option<(Design, Prec)>,
    act: Option<ActQuant>,
}

impl Ops for VariantOps {
    fn softmax(&self, row: &mut [f32]) {
        match self.nonlinear {
            Some((d, p)) => fixed_row(d, p, Op::Softmax, row),
            None => Exact.softmax(row),
        }
    }
    fn gelu(&self, x: &mut [f32]) {
        match self.nonlinear {
            Some((d, p)) => fixed_row(d, p, Op::Gelu, x),
            None => Exact.gelu(x),
        }
    }
    fn layer_norm(&self, row: &mut [f32], eps: f32) {
        match self.nonlinear {
            Some((d, p)) => fixed_row(d, p, Op::LayerNorm, row),
            None => Exact.layer_norm(row, eps),
        }
    }
    fn linear_input(&self, layer: usize, site: LinearSite, x: &mut [f32], cols: usize) {
        let Some(a) = &self.act else { return };
        if let Some(lam) = a.smooth.get(&(layer, site)) {
            for r in x.chunks_exact_mut(cols) {
                r.iter_mut().zip(lam).for_each(|(v, s)| *v /= s);
            }
        }
        fake_quant_rows(x, cols, a.bits);
    }
}

/// Records the per-input-channel maximum |activation| of every linear layer (exact forward).
#[derive(Default)]
struct Calibrator {
    absmax: RefCell<BTreeMap<(usize, LinearSite), Vec<f32>>>,
}

impl Ops for Calibrator {
    fn linear_input(&self, layer: usize, site: LinearSite, x: &mut [f32], cols: usize) {
        let mut map = self.absmax.borrow_mut();
        let m = map.entry((layer, site)).or_insert_with(|| vec![0.0; cols]);
        for r in x.chunks_exact(cols) {
            m.iter_mut().zip(r).for_each(|(a, v)| *a = a.max(v.abs()));
        }
    }
}

/// Weight storage of the quantized linear layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightMemory {
    /// Bytes of the linear layers' weights as stored: codes + one f16 scale per output channel
    /// (+ f16 smoothing factors per input channel, + SpecQuant's kept FFT bins as f16 re/im).
    pub bytes: f64,
    /// The same weights in f32, bytes.
    pub fp32_bytes: f64,
    /// SpecQuant: mean complex FFT bins kept per output channel (0 otherwise).
    pub fft_bins: f64,
}

/// `model` with its linear layers' weights transformed by `q` (smoothing folded in, quantized),
/// the run-time activation treatment, and the weight memory.
fn quantize(model: &MiniLm, q: &QualityParams, calib: &[Vec<u32>]) -> (MiniLm, ActQuant, WeightMemory) {
    let smoothing = matches!(q.method, QuantMethod::Smooth | QuantMethod::Specquant);
    let stats = Calibrator::default();
    if smoothing {
        for ids in calib {
            model.forward(ids, &stats);
        }
    }
    let absmax = stats.absmax.into_inner();
    let mut out = model.clone();
    let mut smooth = BTreeMap::new();
    let mut mem = WeightMemory {
        bytes: 0.0,
        fp32_bytes: 0.0,
        fft_bins: 0.0,
    };
    let (mut bins, mut rows) = (0.0, 0.0);
    out.map_linears(|l, site, lin| {
        let n = (lin.out * lin.inp) as f64;
        mem.fp32_bytes += 4.0 * n;
        mem.bytes += n * f64::from(q.weight_bits) / 8.0 + 2.0 * lin.out as f64;
        if let (true, Some(amax)) = (smoothing, absmax.get(&(l, site))) {
            let lam = smooth_factors(amax, &lin.w, lin.inp, q.alpha);
            for r in lin.w.chunks_exact_mut(lin.inp) {
                r.iter_mut().zip(&lam).for_each(|(w, s)| *w *= s);
            }
            mem.bytes += 2.0 * lin.inp as f64;
            smooth.insert((l, site), lam);
        }
        if q.method == QuantMethod::Specquant {
            let (w, k) = specquant_weights(&lin.w, lin.inp, q.weight_bits, q.energy);
            lin.w = w;
            mem.bytes += 4.0 * k * lin.out as f64;
            bins += k * lin.out as f64;
            rows += lin.out as f64;
        } else {
            fake_quant_rows(&mut lin.w, lin.inp, q.weight_bits);
        }
    });
    mem.fft_bins = if rows > 0.0 { bins / rows } else { 0.0 };
    let act = ActQuant {
        bits: q.act_bits,
        smooth,
    };
    (out, act, mem)
}

/// Result of one quality evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Embedding agreement with the exact f32 model.
    pub agreement: Agreement,
    /// Weight memory (`None` when the linear layers are not quantized).
    pub memory: Option<WeightMemory>,
}

/// Encodes `sentences` with `model` exactly and under `variant`, and compares the embeddings.
/// `calib` are the calibration sentences of the static smoothing recipe.
pub fn evaluate(
    model: &MiniLm,
    sentences: &[Vec<u32>],
    calib: &[Vec<u32>],
    variant: &Variant,
) -> Quality {
    let exact: Vec<Vec<f32>> = sentences.iter().map(|s| model.encode(s, &Exact)).collect();
    let quant = variant.quant.filter(|q| q.method != QuantMethod::None);
    let (qmodel, act, memory) = match quant {
        Some(q) => {
            let (m, a, mem) = quantize(model, q, calib);
            (Some(m), Some(a), Some(mem))
        }
        None => (None, None, None),
    };
    let ops = VariantOps {
        nonlinear: variant.ops,
        act,
    };
    let m = qmodel.as_ref().unwrap_or(model);
    let got: Vec<Vec<f32>> = sentences.iter().map(|s| m.encode(s, &ops)).collect();
    Quality {
        agreement: agreement(&exact, &got),
        memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minilm::sentences;
    use crate::minilm::{Dims, Tokenizer};

    fn small() -> Dims {
        Dims {
            layers: 2,
            hidden: 32,
            heads: 4,
            ffn: 64,
            ..Dims::minilm(2)
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
            weights: super::super::params::WeightsChoice::Random,
            exact_nonlinear: false,
        }
    }

    fn ids(n: usize) -> Vec<Vec<u32>> {
        let t = Tokenizer::minilm();
        sentences::eval(n).iter().map(|s| t.encode(s, 32)).collect()
    }

    #[test]
    fn exact_variant_matches_itself_and_quantization_degrades_with_bits() {
        let enc = MiniLm::random_with_outliers(small(), 0.05, &mut sim::rng::stream(3, "t"));
        let (s, c) = (ids(6), ids(2));
        let none = Variant {
            ops: None,
            quant: None,
        };
        let a = evaluate(&enc, &s, &c, &none).agreement;
        assert!((a.cosine_mean - 1.0).abs() < 1e-9 && a.nn_agreement == 1.0);
        let run = |bits| {
            let p = q(QuantMethod::Rtn, bits);
            let v = Variant {
                ops: Some((Design::Quark, Prec::INT8)),
                quant: Some(&p),
            };
            evaluate(&enc, &s, &c, &v)
        };
        let (q8, q4) = (run(8), run(4));
        let (c8, c4) = (q8.agreement.cosine_mean, q4.agreement.cosine_mean);
        assert!(c8 > c4, "W8A8 {c8} vs W4A4 {c4}");
        assert!(c8 > 0.9, "W8A8 cosine {c8}");
        let (m8, m4) = (q8.memory.expect("quantized"), q4.memory.expect("quantized"));
        assert!(m4.bytes < m8.bytes && m8.bytes < m8.fp32_bytes / 3.0);
    }

    #[test]
    fn smoothing_and_specquant_keep_the_product_at_high_precision() {
        // At 8 bits with all FFT energy kept, every method is close to exact f32.
        let enc = MiniLm::random_with_outliers(small(), 0.05, &mut sim::rng::stream(4, "t"));
        let (s, c) = (ids(4), ids(2));
        for m in [QuantMethod::Smooth, QuantMethod::Specquant] {
            let mut p = q(m, 8);
            p.energy = 1.0;
            let v = Variant {
                ops: None,
                quant: Some(&p),
            };
            let r = evaluate(&enc, &s, &c, &v);
            assert!(r.agreement.cosine_mean > 0.99, "{m:?}: {:?}", r.agreement);
        }
    }
}
