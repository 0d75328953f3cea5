//! Quality study on the shared MiniLM encoder ([`minilm`]): the real all-MiniLM-L6-v2
//! (or, when its weights are absent or `weights: random`, the random-weight stand-in) encodes real
//! ShareGPT prompt sentences twice — exactly in f32, and with the design's fixed-point softmax,
//! GELU and LayerNorm substituted and/or the linear layers' weights and activations quantized by
//! the chosen method. Metrics: cosine similarity of the sentence embeddings and nearest-neighbour
//! retrieval agreement.
//!
//! Each fixed-point operator quantizes its input row with one dynamic power-of-two scale
//! ([`Nonlinear::formats`]); the LayerNorm's normaliser output x̂ stays in the unit's datapath by
//! default, because |x̂| reaches √n when an outlier channel dominates the row's variance (the real
//! MiniLM's LayerNorms all do), which a ±8 activation format clips ([`NormOutput`]).
//!
//! Quantization follows SmoothQuant's static recipe: per-input-channel activation maxima are
//! calibrated once on sentences disjoint from the evaluation set, the smoothing factors λ are
//! folded into the weights (W·diag(λ)), weights are quantized once (RTN per output channel, or
//! SpecQuant), and activations are divided by λ and quantized per token at run time. Biases,
//! embeddings and attention matmuls (QKᵀ, AV) stay in f32, as in the papers' W4A4 settings.

use std::cell::RefCell;
use std::collections::BTreeMap;

use minilm::eval::{Agreement, agreement};
use minilm::{Exact, LinearSite, MiniLm, Ops};

use super::fixed::{Fmt, shr_round};
use super::hadamard::Rotation;
use super::ops::{self, Design, Op, Prec};
use super::params::{FixedOps, NormOutput, QualityParams, QuantMethod};
use super::specquant::{fake_quant_rows, smooth_factors, specquant_weights};

/// The fixed-point nonlinear operators of a variant: the design, its precision, which operators
/// are substituted and the LayerNorm's input and output formats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nonlinear {
    /// Circuit design.
    pub design: Design,
    /// Operator precision (activation code width).
    pub prec: Prec,
    /// Which operators run in fixed point (the others exact f32).
    pub fixed: FixedOps,
    /// LayerNorm normaliser output format.
    pub norm_output: NormOutput,
    /// LayerNorm input code width, bits.
    pub norm_input_bits: u32,
    /// LayerNorm input channels per power-of-two scale (`None`: one scale per row).
    pub norm_input_block: Option<usize>,
}

impl Nonlinear {
    /// All three operator kinds at `prec`, LayerNorm input at `prec` bits in blocks of 32
    /// channels and output in the datapath (the defaults of the params).
    pub fn new(design: Design, prec: Prec) -> Self {
        Self {
            design,
            prec,
            fixed: FixedOps::All,
            norm_output: NormOutput::Datapath,
            norm_input_bits: prec.bits,
            norm_input_block: Some(32),
        }
    }

    /// Input and output formats of `op` over a row of `n` values whose largest magnitude is `m`:
    /// the input gets one power-of-two scale per row (`bits` wide, or `norm_input_bits` for
    /// LayerNorm); softmax outputs are unsigned probabilities with `bits` fractional bits; GELU
    /// keeps its input format; LayerNorm as [`NormOutput`] says.
    pub fn formats(&self, op: Op, n: usize, m: f32) -> (Fmt, Fmt) {
        let bits = match op {
            Op::LayerNorm | Op::RmsNorm => self.norm_input_bits,
            _ => self.prec.bits,
        };
        let fin = Fmt::new(bits, bits as i32 - 1 - m.max(1e-6).log2().ceil() as i32);
        let p = self.prec.bits;
        let fout = match op {
            Op::Softmax => Fmt::new(p + 1, p as i32),
            Op::LayerNorm | Op::RmsNorm => {
                // |x̂| ≤ √n: integer bits to hold it.
                let range = (n.max(1) as f64).sqrt().log2().ceil() as i32;
                match self.norm_output {
                    NormOutput::Datapath => Fmt::new(2 * p, 2 * p as i32 - 1 - range),
                    NormOutput::FullRange => Fmt::new(p, p as i32 - 1 - range),
                    NormOutput::ActivationRange => self.prec.act_fmt(),
                }
            }
            _ => fin,
        };
        (fin, fout)
    }

    /// Applies `op` to one row in fixed point (formats from [`Nonlinear::formats`]; LayerNorm
    /// inputs per block with [`Nonlinear::block_codes`]).
    pub fn apply_row(&self, op: Op, x: &mut [f32]) {
        let m = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        let (fin, fout) = self.formats(op, x.len(), m);
        let (q, fin) = match (op, self.norm_input_block) {
            (Op::LayerNorm | Op::RmsNorm, Some(b)) => self.block_codes(x, b),
            _ => (x.iter().map(|&v| fin.quantize(f64::from(v))).collect(), fin),
        };
        let y = ops::apply(self.design, op, self.prec, &q, fin, fout);
        for (v, c) in x.iter_mut().zip(y) {
            *v = fout.dequantize(c) as f32;
        }
    }

    /// LayerNorm input codes with one power-of-two scale per block of `block` channels, each
    /// `norm_input_bits` wide, shifted left into one common format (the finest block scale, at
    /// most the datapath's fractional bits) as the mean/variance accumulator aligns them.
    pub fn block_codes(&self, x: &[f32], block: usize) -> (Vec<i32>, Fmt) {
        let bits = self.norm_input_bits;
        let frac = |c: &[f32]| {
            let m = c.iter().fold(1e-6f32, |a, v| a.max(v.abs()));
            (bits as i32 - 1 - m.log2().ceil() as i32).min(self.prec.frac())
        };
        let fracs: Vec<i32> = x.chunks(block.max(1)).map(frac).collect();
        // The finest scale, but no block's codes may overflow the 31-bit aligned word.
        let lo = fracs.iter().copied().min().unwrap_or(0);
        let common = fracs
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .min(lo + 31 - bits as i32);
        let q = x
            .chunks(block.max(1))
            .zip(&fracs)
            .flat_map(|(c, &f)| {
                let fmt = Fmt::new(bits, f);
                c.iter().map(move |&v| {
                    let code = i64::from(fmt.quantize(f64::from(v)));
                    shr_round(code, f - common) as i32
                })
            })
            .collect();
        (q, Fmt::new(31, common))
    }

    fn substitutes(&self, op: Op) -> bool {
        match self.fixed {
            FixedOps::All => true,
            FixedOps::Softmax => op == Op::Softmax,
            FixedOps::Gelu => op == Op::Gelu,
            FixedOps::LayerNorm => op == Op::LayerNorm,
        }
    }
}

/// How a forward pass computes: the design's fixed-point nonlinear ops (`None`: exact f32) and
/// the quantization of the linear layers (`None` or method `none`: f32).
pub struct Variant<'a> {
    /// Fixed-point nonlinear operators.
    pub ops: Option<Nonlinear>,
    /// Quantization of the linear layers.
    pub quant: Option<&'a QualityParams>,
}

/// Per-linear-layer activation treatment at run time: divide by λ (smoothing), then quantize
/// each token row to `bits`.
struct ActQuant {
    bits: u32,
    smooth: BTreeMap<(usize, LinearSite), Vec<f32>>,
    /// Hadamard rotations by input width (method `hadamard`).
    rotations: BTreeMap<usize, Rotation>,
}

/// The substituted operators of one variant, as [`Ops`] for the shared encoder.
struct VariantOps {
    nonlinear: Option<Nonlinear>,
    act: Option<ActQuant>,
}

impl VariantOps {
    /// The fixed-point operators if `op` is substituted.
    fn fixed(&self, op: Op) -> Option<&Nonlinear> {
        self.nonlinear.as_ref().filter(|n| n.substitutes(op))
    }
}

impl Ops for VariantOps {
    fn softmax(&self, row: &mut [f32]) {
        match self.fixed(Op::Softmax) {
            Some(n) => n.apply_row(Op::Softmax, row),
            None => Exact.softmax(row),
        }
    }
    fn gelu(&self, x: &mut [f32]) {
        match self.fixed(Op::Gelu) {
            Some(n) => n.apply_row(Op::Gelu, x),
            None => Exact.gelu(x),
        }
    }
    fn layer_norm(&self, row: &mut [f32], eps: f32) {
        match self.fixed(Op::LayerNorm) {
            Some(n) => n.apply_row(Op::LayerNorm, row),
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
        if let Some(rot) = a.rotations.get(&cols) {
            rot.apply_rows(x);
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
    /// Weight signal-to-quantization-noise ratio, dB, in the quantized domain (after smoothing or
    /// rotation): 10·log10(Σ‖W‖² / Σ‖W − Q(W)‖²).
    pub sqnr_db: f64,
}

/// `model` with its linear layers' weights transformed by `q` (smoothing folded in, quantized),
/// the run-time activation treatment, and the weight memory.
fn quantize(
    model: &MiniLm,
    q: &QualityParams,
    calib: &[Vec<u32>],
) -> (MiniLm, ActQuant, WeightMemory) {
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
        sqnr_db: 0.0,
    };
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    let (mut bins, mut rows) = (0.0, 0.0);
    let mut rotations = BTreeMap::new();
    let mut signs = sim::rng::stream(0, "fpga/minilm-rotation");
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
        if q.method == QuantMethod::Hadamard {
            let rot = rotations.entry(lin.inp).or_insert_with(|| {
                Rotation::random(lin.inp, &mut signs).expect("MiniLM widths are 12·2^k")
            });
            rot.apply_rows(&mut lin.w);
            mem.bytes += lin.inp as f64 / 8.0;
        }
        let before = lin.w.clone();
        if q.method == QuantMethod::Specquant {
            let (w, k) = specquant_weights(&lin.w, lin.inp, q.weight_bits, q.energy);
            lin.w = w;
            mem.bytes += 4.0 * k * lin.out as f64;
            bins += k * lin.out as f64;
            rows += lin.out as f64;
        } else {
            fake_quant_rows(&mut lin.w, lin.inp, q.weight_bits);
        }
        for (a, b) in before.iter().zip(&lin.w) {
            signal += f64::from(*a).powi(2);
            noise += f64::from(a - b).powi(2);
        }
    });
    mem.fft_bins = if rows > 0.0 { bins / rows } else { 0.0 };
    mem.sqnr_db = 10.0 * (signal / noise.max(1e-30)).log10();
    let act = ActQuant {
        bits: q.act_bits,
        smooth,
        rotations,
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
    use minilm::sentences;
    use minilm::{Dims, Tokenizer};

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
            fixed_ops: FixedOps::All,
            norm_output: NormOutput::Datapath,
            norm_input_bits: None,
            norm_input_block: Some(32),
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
                ops: Some(Nonlinear::new(Design::Quark, Prec::INT8)),
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

    /// A LayerNorm row of 384 channels in [−1, 1] plus one outlier channel of 100, as at the
    /// real MiniLM's LayerNorm inputs (max|x|/median|x| ≈ 7–40, up to thousands).
    fn outlier_row() -> Vec<f32> {
        let mut x: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
        x[223] = 100.0;
        x
    }

    fn cosine_without(a: &[f32], b: &[f32], skip: usize) -> f64 {
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (_, (&u, &v)) in a.iter().zip(b).enumerate().filter(|(i, _)| *i != skip) {
            ab += f64::from(u) * f64::from(v);
            aa += f64::from(u) * f64::from(u);
            bb += f64::from(v) * f64::from(v);
        }
        ab / (aa * bb).sqrt()
    }

    #[test]
    fn an_outlier_channel_saturates_the_activation_range_output_but_not_the_datapath() {
        let x = outlier_row();
        let mut exact = x.clone();
        Exact.layer_norm(&mut exact, 1e-12);
        assert!(
            exact[223] > 19.0,
            "x̂ of the outlier is ≈ √383: {}",
            exact[223]
        );
        let run = |norm_output, norm_input_bits| {
            let n = Nonlinear {
                norm_output,
                norm_input_bits,
                norm_input_block: None,
                ..Nonlinear::new(Design::Quark, Prec::INT8)
            };
            let mut y = x.clone();
            n.apply_row(Op::LayerNorm, &mut y);
            y
        };
        // The former ±8 INT8 format clips the outlier to 127/16; the full range and the
        // datapath keep it (QUARK's 1/√v is within a few per cent).
        let clipped = run(NormOutput::ActivationRange, 8);
        assert!(clipped[223] < 8.0, "{}", clipped[223]);
        for o in [NormOutput::FullRange, NormOutput::Datapath] {
            let y = run(o, 8);
            assert!(
                (y[223] / exact[223] - 1.0).abs() < 0.05,
                "{o:?}: {}",
                y[223]
            );
        }
        // The other channels: one per-row INT8 input scale (step 1 for max 100) leaves them
        // −1, 0 or 1; 16-bit input codes resolve them.
        let (c8, c16) = (
            cosine_without(&run(NormOutput::Datapath, 8), &exact, 223),
            cosine_without(&run(NormOutput::Datapath, 16), &exact, 223),
        );
        assert!(c8 < 0.97 && c16 > 0.999, "8-bit input {c8}, 16-bit {c16}");
        // 8-bit codes with one scale per 32-channel block: only the outlier's block is coarse.
        let n = Nonlinear::new(Design::Quark, Prec::INT8);
        let mut y = x.clone();
        n.apply_row(Op::LayerNorm, &mut y);
        let c_block = cosine_without(&y, &exact, 223);
        assert!(
            c_block > 0.99 && c_block > c8,
            "block-scaled 8-bit input {c_block}"
        );
    }

    /// Records every LayerNorm input row of a forward pass.
    #[derive(Default)]
    struct NormInputs(RefCell<Vec<Vec<f32>>>);

    impl Ops for NormInputs {
        fn layer_norm(&self, row: &mut [f32], eps: f32) {
            self.0.borrow_mut().push(row.to_vec());
            Exact.layer_norm(row, eps);
        }
    }

    /// Prints, per LayerNorm site of the real MiniLM (4 ShareGPT sentences), max|x|, the
    /// max|x|/median|x| ratio per token row (median, 90th percentile, largest), the channels
    /// holding the row maxima and the largest |x̂| after normalisation (README "Found wrong"):
    /// `cargo test -p fpga --lib print_layernorm_input_stats -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs the real weights (scripts/fetch-minilm.sh)"]
    fn print_layernorm_input_stats() {
        let Some(dir) = minilm::locate() else {
            return;
        };
        let model = MiniLm::load(&dir).expect("weights load");
        let tok = Tokenizer::minilm();
        let rec = NormInputs::default();
        let mut sites: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 1 + 2 * model.dims.layers];
        for s in sentences::eval(4) {
            let ids = tok.encode(s, minilm::tokenizer::MAX_SEQ_LEN);
            model.forward(&ids, &rec);
            let rows = rec.0.take();
            for (k, chunk) in rows.chunks(ids.len()).enumerate() {
                sites[k].extend_from_slice(chunk);
            }
        }
        for (k, rows) in sites.iter().enumerate() {
            let mut ratios = Vec::new();
            let (mut mx, mut xhat) = (0f32, 0f32);
            let mut argmax = BTreeMap::new();
            for r in rows {
                let mut a: Vec<f32> = r.iter().map(|v| v.abs()).collect();
                let (i, m) = a.iter().enumerate().fold(
                    (0, 0f32),
                    |b, (i, &v)| {
                        if v > b.1 { (i, v) } else { b }
                    },
                );
                *argmax.entry(i).or_insert(0) += 1;
                a.sort_by(f32::total_cmp);
                ratios.push(m / a[a.len() / 2]);
                mx = mx.max(m);
                let mut y = r.clone();
                Exact.layer_norm(&mut y, 1e-12);
                xhat = y.iter().fold(xhat, |b, v| b.max(v.abs()));
            }
            ratios.sort_by(f32::total_cmp);
            let mut top: Vec<(usize, i32)> = argmax.into_iter().collect();
            top.sort_by_key(|&(c, n)| (std::cmp::Reverse(n), c));
            top.truncate(3);
            let site = match k {
                0 => "embedding".to_string(),
                _ => format!("layer {} ln{}", (k - 1) / 2, (k - 1) % 2 + 1),
            };
            eprintln!(
                "{site}: {} rows, max|x| {mx:.1}, max/median p50 {:.1} p90 {:.1} max {:.0}; \
                 row-max channels {top:?}; max|x̂| {xhat:.1}",
                rows.len(),
                ratios[ratios.len() / 2],
                ratios[ratios.len() * 9 / 10],
                ratios[ratios.len() - 1]
            );
        }
    }
}
