//! SGD steps without the autograd graph, for the learning studies' networks (the residual CNN
//! of [`super::cnn`], the MLP of `super::nn::forward`): the same arithmetic as candle's autograd
//! through `super::nn::Arch::forward` — the same GEMM calls with candle's arguments, the same
//! im2col, the same sequential reductions — over buffers allocated once per training call, so a
//! step's ≈ 300 tensor allocations, zeroings and dispatches go away (they were ≈ half of a POLAR
//! run).
//!
//! Bit for bit, not merely close: the tests compare gradients, training runs and evaluations with
//! candle's for equality, so every table computed through candle before stays the same. What makes
//! that hold, op by op, is noted where the op is mirrored: each GEMM passes candle's `(m, n, k)`,
//! strides and `alpha`/`beta` (candle's CPU `MatMul`); each sum over rows runs in
//! index order from zero (candle's `ReduceSum` over a non-last dimension); two gradient
//! contributions to one tensor are one addition (commutative, so candle's order does not matter).
//! The cross-entropy on the logits (a few tensors of `n × classes`) stays candle's own
//! ([`cross_entropy`]).

mod cnn;
mod mlp;

use candle_core::{D, Device, Result, Tensor, Var};
use gemm::Parallelism;
use rand::seq::SliceRandom;
use sim::rng::Rng;

use super::nn::{Arch, Layer, Weights, cross_entropy};
use super::task::Dataset;

/// A network's forward and backward over batches of up to the capacity it was made for.
trait Pass {
    /// Runs `n` inputs `x` (`n × d_in`) through `w`; returns the logits (`n × classes`) and keeps
    /// what the backward needs.
    fn forward(&mut self, w: &Weights, x: &[f32], n: usize) -> Vec<f32>;

    /// Gradients into `grads` (`w`'s layout, overwritten) of the loss whose gradient w.r.t. the
    /// last forward's logits is `dlogits.0` (`n × classes`, `n = dlogits.1`): of the layers `only` (every layer when
    /// `None`), the others zero. The backward stops below the lowest layer asked for, and skips
    /// the weight gradients of the layers between; what it computes is computed as for every
    /// layer, so a gradient asked for is the same number either way.
    fn backward(
        &mut self,
        w: &Weights,
        dlogits: (&[f32], usize),
        grads: &mut Weights,
        only: Option<&[usize]>,
    );
}

/// The pass of `arch` for batches of up to `capacity` inputs.
fn pass(arch: &Arch, capacity: usize) -> Box<dyn Pass> {
    match arch {
        Arch::Mlp => Box::new(mlp::MlpPass::default()),
        Arch::Cnn(net) => Box::new(cnn::PooledPass::new(net, capacity)),
    }
}

/// A row-major or transposed view of a matrix for [`matmul`]: `(data, column stride, row stride)`.
pub(super) type View<'a> = (&'a [f32], usize, usize);

/// The depth (summation) block of gemm 0.19 on a machine whose L1 data cache is 32 KiB, 8-way
/// (gemm-common 0.19 `cache::kernel_params`: `kc = max(512, kc₀ · next_pow2(assoc / …))`, 512 for
/// 32 KiB 8-way; 1024 for the 48 KiB 12-way L1d of Ice Lake and later Xeons). gemm reads the cache
/// geometry at run time, and a sum split into other blocks rounds differently, so [`matmul`]
/// splits its sums itself, as gemm does at 512, on every machine.
const DEPTH_BLOCK: usize = 512;

/// `dst (m × n, row-major) = lhs (m × k) · rhs (k × n)`, called as candle's CPU `MatMul` calls
/// the `gemm` crate (contiguous destination, `read_dst` false, `alpha` 0, `beta` 1), so the
/// products are candle's on a machine where gemm blocks sums at 512 ([`DEPTH_BLOCK`]) — on any
/// other machine too, since the sums gemm would block by the cache size are split here into the
/// blocks gemm makes at 512, each its own call (`read_dst` and `alpha` 1 after the first, as gemm
/// does between its blocks). The results do not depend on the machine's caches.
///
/// One difference from candle: no gemm threading (candle asks for it when rayon has more than one
/// thread). gemm splits the output among threads, not the sums, so its numbers do not depend on
/// it — one run of each CNN and MLP scenario of POLAR and pFedNavi wrote the same table either way
/// — and the runs are already spread over the cores.
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    lhs: View<'_>,
    rhs: View<'_>,
    dst: &mut [f32],
) {
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        lhs.0.len() > (m - 1) * lhs.2 + (k - 1) * lhs.1,
        "matmul: lhs too small"
    );
    assert!(
        rhs.0.len() > (k - 1) * rhs.2 + (n - 1) * rhs.1,
        "matmul: rhs too small"
    );
    let mut start = 0;
    for (i, len) in depth_blocks((m, n, k), lhs, rhs).enumerate() {
        let first = i == 0;
        // SAFETY: the asserts above keep every element gemm reads or writes inside the slices;
        // each block reads rows `start..start + len` of `rhs` and columns of `lhs`, within `k`.
        unsafe {
            gemm::gemm(
                m,
                n,
                len,
                dst.as_mut_ptr(),
                1,
                n as isize,
                !first,
                lhs.0.as_ptr().add(start * lhs.1),
                lhs.1 as isize,
                lhs.2 as isize,
                rhs.0.as_ptr().add(start * rhs.2),
                rhs.1 as isize,
                rhs.2 as isize,
                if first { 0.0 } else { 1.0 },
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        start += len;
    }
}

/// The depths of the sums gemm 0.19 computes one after another for `matmul` at a depth block of
/// [`DEPTH_BLOCK`] (gemm-common's `gemm_basic_generic`): the whole depth on its paths that do not
/// block by the cache — depth ≤ 2, matrix–vector products, and outputs of ≤ 16×16 with unit-stride
/// sums, which block at a fixed 1024 — otherwise blocks of 512 when both m and n are ≤ 64, and
/// `k` split evenly into ⌈k / 512⌉ blocks when either is larger (`kernel_params`).
fn depth_blocks(
    (m, n, k): (usize, usize, usize),
    (_, lhs_cs, lhs_rs): View<'_>,
    (_, rhs_cs, rhs_rs): View<'_>,
) -> impl Iterator<Item = usize> {
    let (dst_cs, dst_rs) = (1, n);
    let horizontal = lhs_cs == 1 && rhs_rs == 1 && m * n <= 16 * 16;
    let vector = (n <= 1 && lhs_rs == 1 && dst_rs == 1)
        || (n <= 1 && lhs_cs == 1 && rhs_rs == 1)
        || (m <= 1 && rhs_cs == 1 && dst_cs == 1)
        || (m <= 1 && rhs_rs == 1 && lhs_cs == 1);
    let block = if horizontal || vector || k <= 2 || k <= DEPTH_BLOCK {
        k.max(1)
    } else if m <= 64 && n <= 64 {
        DEPTH_BLOCK
    } else {
        k.div_ceil(k.div_ceil(DEPTH_BLOCK))
    };
    (0..k.div_ceil(block).max(1)).map(move |i| block.min(k - (i * block).min(k)))
}

/// Column sums of `rows` (`r × c`, row-major) into `out`, each from zero in row order (candle's
/// `ReduceSum` over dimension 0, the bias gradient of a broadcast add).
pub(super) fn column_sums(rows: &[f32], c: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in rows.chunks_exact(c) {
        for (s, v) in out.iter_mut().zip(row) {
            *s += v;
        }
    }
}

/// `rows += b` on every row (candle's `broadcast_add` of a bias).
pub(super) fn add_bias(rows: &mut [f32], b: &[f32]) {
    for row in rows.chunks_exact_mut(b.len()) {
        for (v, b) in row.iter_mut().zip(b) {
            *v += b;
        }
    }
}

/// Which layers a backward computes: `only`'s membership test and the lowest layer asked for
/// (`usize::MAX` when none is).
pub(super) fn asked(only: Option<&[usize]>) -> (impl Fn(usize) -> bool + '_, usize) {
    let lowest = only.map_or(0, |s| s.iter().copied().min().unwrap_or(usize::MAX));
    (move |k| only.is_none_or(|s| s.contains(&k)), lowest)
}

/// Zeroes the gradients of the layers outside `only`.
pub(super) fn zero_others(grads: &mut Weights, only: Option<&[usize]>) {
    let (wanted, _) = asked(only);
    for (k, l) in grads.layers.iter_mut().enumerate() {
        if !wanted(k) {
            l.w.fill(0.0);
            l.b.fill(0.0);
        }
    }
}

/// ReLU's backward in place: `g · (pre ≥ 0)` (candle's mask is `pre.ge(0)`).
pub(super) fn relu_backward(g: &mut [f32], pre: &[f32]) {
    // A select, not a branch, so that it vectorises: `d` where `pre ≥ 0`, else 0 (NaN included).
    for (d, v) in g.iter_mut().zip(pre) {
        *d = if *v >= 0.0 { *d } else { 0.0 };
    }
}

/// A dense layer on `n` rows of `input`: `out = input·lᵀ + b` (candle's `matmul(w.t())` and
/// `broadcast_add(b)`).
pub(super) fn dense_forward(l: &Layer, input: &[f32], n: usize, out: &mut [f32]) {
    let (d_in, d_out) = (l.d_in, l.d_out);
    matmul((n, d_out, d_in), (input, 1, d_in), (&l.w, d_in, 1), out);
    add_bias(&mut out[..n * d_out], &l.b);
}

/// [`dense_forward`]'s adjoint for the output gradient `g` (`n × d_out`): when given, `∂/∂w`,
/// `∂/∂b` into `d` (candle's `input.t().matmul(g)`, transposed, and a column sum) and `∂/∂input`
/// into `dx` (`g.matmul(w)`).
pub(super) fn dense_backward(
    l: &Layer,
    (input, g, n): (&[f32], &[f32], usize),
    d: Option<&mut Layer>,
    dx: Option<&mut [f32]>,
) {
    let (d_in, d_out) = (l.d_in, l.d_out);
    if let Some(d) = d {
        column_sums(&g[..n * d_out], d_out, &mut d.b);
        let mut dwt = vec![0.0f32; d_in * d_out];
        matmul((d_in, d_out, n), (input, d_in, 1), (g, 1, d_out), &mut dwt);
        for o in 0..d_out {
            for i in 0..d_in {
                d.w[o * d_in + i] = dwt[i * d_out + o];
            }
        }
    }
    if let Some(dx) = dx {
        matmul((n, d_in, d_out), (g, 1, d_out), (&l.w, 1, d_in), dx);
    }
}

/// The mean cross-entropy of `logits` (`n × classes`) against `y` through candle (its value and
/// its gradient w.r.t. the logits).
fn loss_gradient(logits: Vec<f32>, y: &[u32]) -> Result<(f32, Vec<f32>)> {
    let n = y.len();
    let classes = logits.len() / n.max(1);
    let logits = Var::from_tensor(&Tensor::from_vec(logits, (n, classes), &Device::Cpu)?)?;
    let labels = Tensor::from_slice(y, n, &Device::Cpu)?;
    let loss = cross_entropy(logits.as_tensor(), &labels)?;
    let grads = loss.backward()?;
    let d = grads
        .get(logits.as_tensor())
        .ok_or_else(|| candle_core::Error::Msg("cross-entropy: no logit gradient".into()))?;
    Ok((loss.to_scalar()?, d.flatten_all()?.to_vec1()?))
}

/// Gradients of the mean cross-entropy of a network on minibatches, the numbers candle's autograd
/// gives, with buffers reused from one call to the next.
pub struct Backprop {
    pass: Box<dyn Pass>,
}

impl Backprop {
    /// For the network `arch` and batches of up to `capacity` examples.
    pub fn new(arch: &Arch, capacity: usize) -> Self {
        Self {
            pass: pass(arch, capacity.max(1)),
        }
    }

    /// The loss of `w` on the examples `x` (`n × d_in`) with labels `y` (`n`, at most the
    /// capacity), and its gradient in `w`'s layout.
    pub fn gradient(&mut self, w: &Weights, x: &[f32], y: &[u32]) -> Result<(f32, Weights)> {
        self.gradient_of(w, (x, y), None)
    }

    /// [`Self::gradient`] in the layers `only` (every layer when `None`), the others zero: the same
    /// numbers in those layers, for less work when the lowest of them is high or few are asked.
    pub fn gradient_of(
        &mut self,
        w: &Weights,
        (x, y): (&[f32], &[u32]),
        only: Option<&[usize]>,
    ) -> Result<(f32, Weights)> {
        let logits = self.pass.forward(w, x, y.len());
        let (loss, dlogits) = loss_gradient(logits, y)?;
        let mut grads = w.clone();
        self.pass.backward(w, (&dlogits, y.len()), &mut grads, only);
        Ok((loss, grads))
    }
}

/// `v - d·lr` on every parameter of the layers `only` (every layer when `None`) of `w`, as
/// candle's `v - (d * lr)` computes it (its affine multiplies by `lr` as f32 and adds 0).
pub fn sgd_update(w: &mut Weights, d: &Weights, lr: f64, only: Option<&[usize]>) {
    let lr = lr as f32;
    let layers = w.layers.iter_mut().zip(&d.layers).enumerate();
    for (_, (l, g)) in layers.filter(|(k, _)| only.is_none_or(|set| set.contains(k))) {
        let params = l.w.iter_mut().chain(l.b.iter_mut());
        for (v, d) in params.zip(g.w.iter().chain(&g.b)) {
            *v -= d * lr + 0.0;
        }
    }
}

/// SGD on the layers `only` (every layer when `None`) of `w` (network `arch`) over `data`
/// (minibatches of `batch`, `epochs` passes shuffled by `rng` as `super::nn::batches` shuffles
/// them); returns the trained weights, the numbers of `super::nn::Arch::train_autograd`.
pub fn train(
    arch: &Arch,
    w: &Weights,
    data: &Dataset,
    only: Option<&[usize]>,
    (epochs, batch, lr): (usize, usize, f64),
    rng: &mut Rng,
) -> Result<Weights> {
    if data.is_empty() {
        return Ok(w.clone());
    }
    let mut backprop = Backprop::new(arch, batch.min(data.len()));
    let mut p = w.clone();
    for (x, y) in minibatches(data, epochs, batch, rng) {
        let (_, grads) = backprop.gradient_of(&p, (&x, &y), only)?;
        sgd_update(&mut p, &grads, lr, only);
    }
    Ok(p)
}

/// Advances `rng` exactly as [`train`] on `data` for `epochs` passes would (its only draws are
/// [`minibatches`]' shuffles), without training: for a model that would not be used.
pub fn skip_train(data: &Dataset, epochs: usize, rng: &mut Rng) {
    if !data.is_empty() {
        epoch_orders(data.len(), epochs, rng).for_each(drop);
    }
}

/// The example order of each of `epochs` passes over `len` examples, each a fresh shuffle by
/// `rng` of the previous pass's order (the first of `0..len`).
fn epoch_orders(len: usize, epochs: usize, rng: &mut Rng) -> impl Iterator<Item = Vec<usize>> {
    let mut idx: Vec<usize> = (0..len).collect();
    (0..epochs).map(move |_| {
        idx.shuffle(rng);
        idx.clone()
    })
}

/// Minibatches of `data` for `epochs` passes, shuffled by `rng` exactly as
/// `super::nn::batches` shuffles them: `(x, y)` as flat rows and labels.
pub fn minibatches(
    data: &Dataset,
    epochs: usize,
    batch: usize,
    rng: &mut Rng,
) -> Vec<(Vec<f32>, Vec<u32>)> {
    let mut out = Vec::new();
    for idx in epoch_orders(data.len(), epochs, rng) {
        for chunk in idx.chunks(batch.max(1)) {
            let x = chunk.iter().flat_map(|&i| data.row(i)).copied().collect();
            out.push((x, chunk.iter().map(|&i| data.y[i]).collect()));
        }
    }
    out
}

/// The sum of `xs` in the order of candle's `vec_reduce_sum` on this CPU (its sums over the last
/// dimension, e.g. a broadcast's gradient): with AVX2, four 8-lane accumulators over blocks of 32,
/// reduced pairwise, then the tail in order; without, in order from zero.
pub fn candle_sum(xs: &[f32]) -> f32 {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") {
        let blocks = xs.len() / 32 * 32;
        let mut acc = [[0.0f32; 8]; 4];
        for block in xs[..blocks].chunks_exact(32) {
            for (a, part) in acc.iter_mut().zip(block.chunks_exact(8)) {
                for (s, v) in a.iter_mut().zip(part) {
                    *s += v;
                }
            }
        }
        let lanes: [f32; 8] =
            std::array::from_fn(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]));
        let halves: [f32; 4] = std::array::from_fn(|l| lanes[l] + lanes[l + 4]);
        let mut sum = (halves[0] + halves[1]) + (halves[2] + halves[3]);
        for v in &xs[blocks..] {
            sum += v;
        }
        return sum;
    }
    xs.iter().fold(0.0, |s, v| s + v)
}

/// Mean cross-entropy and fraction correct of `w` (network `arch`) on `data` (`(0, 0)` when empty): the
/// logits of one forward pass over all of `data`, as `super::nn::Arch::loss_and_accuracy_autograd`
/// makes it (the CNN's computed in chunks of images with the same numbers, [`cnn::logits_in_chunks`]).
pub fn loss_and_accuracy(arch: &Arch, w: &Weights, data: &Dataset) -> Result<(f64, f64)> {
    if data.is_empty() {
        return Ok((0.0, 0.0));
    }
    let n = data.len();
    let logits = match arch {
        Arch::Cnn(net) => cnn::logits_in_chunks(net, w, &data.x, n),
        Arch::Mlp => pass(arch, n).forward(w, &data.x, n),
    };
    let classes = logits.len() / n;
    let logits = Tensor::from_vec(logits, (n, classes), &Device::Cpu)?;
    let labels = Tensor::from_slice(&data.y, n, &Device::Cpu)?;
    let loss = f64::from(cross_entropy(&logits, &labels)?.to_scalar::<f32>()?);
    let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
    let hits = pred.iter().zip(&data.y).filter(|(p, y)| p == y).count();
    Ok((loss, hits as f64 / n as f64))
}

/// Checks shared by the networks' tests: the graph-free numbers are candle's autograd's.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::learn::nn::Vars;

    /// Random examples of width `dim` with labels in `0..10`.
    pub(crate) fn examples(n: usize, dim: usize, seed: u64) -> Dataset {
        let mut rng = sim::rng::stream(seed, "examples");
        Dataset {
            dim,
            x: (0..n * dim)
                .map(|_| rand::Rng::random::<f32>(&mut rng))
                .collect(),
            y: (0..n)
                .map(|_| rand::Rng::random_range(&mut rng, 0..10))
                .collect(),
        }
    }

    /// A small MLP and a small CNN (one block per stage) over 8×8 images, 10 classes, with
    /// weights drawn from `rng`: the networks the personalisation rounds are tested on.
    pub(crate) fn mlp_and_cnn(rng: &mut Rng) -> [(Arch, Weights); 2] {
        let net = crate::learn::cnn::Cnn {
            shape: crate::learn::cnn::CnnShape {
                channels: [4, 8],
                blocks: 1,
            },
            side: 8,
            classes: 10,
        };
        [
            (Arch::Mlp, Weights::init(&[64, 40, 10], rng)),
            (Arch::Cnn(net), net.init(rng)),
        ]
    }

    /// One batch's loss and gradients, SGD on every layer and on the layers `only`, and the
    /// evaluation of `arch` from `w0` on `data`, each equal to candle's autograd bit for bit.
    ///
    /// The batches are of ≤ 8 examples, so that no sum is longer than 512 terms (8 images of
    /// 8×8): longer sums candle blocks by the machine's L1 cache, [`matmul`] at 512 on every
    /// machine (`products_are_blocked_at_512_on_every_machine` checks those).
    pub(super) fn check_against_autograd(
        arch: &Arch,
        w0: &Weights,
        data: &Dataset,
        only: &[usize],
    ) {
        let batch = data.take(8);
        let (x, y) = batch.all_tensors().unwrap();
        let (loss, ours) = Backprop::new(arch, batch.len())
            .gradient(w0, &batch.x, &batch.y)
            .unwrap();
        let vars = Vars::from_weights(w0).unwrap();
        let l = cross_entropy(&arch.forward(&vars.tensors(), &x).unwrap(), &y).unwrap();
        let g = l.backward().unwrap();
        let mut reference = w0.clone();
        for (layer, pair) in reference.layers.iter_mut().zip(vars.all().chunks(2)) {
            let grad = |v: &Var| -> Vec<f32> {
                let t = g.get(v.as_tensor()).unwrap();
                t.flatten_all().unwrap().to_vec1().unwrap()
            };
            layer.w = grad(&pair[0]);
            layer.b = grad(&pair[1]);
        }
        assert_eq!(loss, l.to_scalar::<f32>().unwrap());
        assert_eq!(ours, reference);
        assert!(ours.flatten().iter().any(|v| *v != 0.0));

        // Batches of 8 over 2 epochs: a short last batch when the size is not a multiple of 8.
        let sgd = (2, 8, 0.05);
        let stream = || sim::rng::stream(4, "sgd");
        let mut trained = Vec::new();
        for only in [None, Some(only)] {
            let ours = train(arch, w0, data, only, sgd, &mut stream()).unwrap();
            let reference = arch.train_autograd(w0, data, only, sgd, &mut stream());
            assert_eq!(ours, reference.unwrap(), "{only:?}");
            let moved = only.map_or(0, |s| s[0]);
            assert_ne!(ours.layers[moved], w0.layers[moved], "{only:?}");
            trained.push(ours);
        }
        let still = (0..w0.layers.len()).find(|k| !only.contains(k)).unwrap();
        assert_eq!(
            trained[1].layers[still], w0.layers[still],
            "an untrained layer moved"
        );
        assert_eq!(
            loss_and_accuracy(arch, &trained[0], data).unwrap(),
            arch.loss_and_accuracy_autograd(&trained[0], data).unwrap()
        );
    }

    /// [`candle_sum`] is candle's own sum over a last dimension, at lengths around its blocks.
    #[test]
    fn candle_sum_is_candles_row_sum() {
        let mut rng = sim::rng::stream(3, "sum");
        for len in [1, 7, 31, 32, 33, 64, 100, 257] {
            let xs: Vec<f32> = (0..len)
                .map(|_| rand::Rng::random::<f32>(&mut rng) - 0.5)
                .collect();
            let t = Tensor::from_slice(&xs, (1, len), &Device::Cpu).unwrap();
            let reference: Vec<f32> = t
                .sum_keepdim(1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(candle_sum(&xs), reference[0], "{len}");
        }
    }

    /// A gradient in some layers is the full gradient there, bit for bit, and zero elsewhere: sets
    /// that stop the backward at the head, in the middle, at the bottom, and none.
    #[test]
    fn gradients_of_some_layers_are_the_full_ones_there() {
        for (arch, w) in mlp_and_cnn(&mut sim::rng::stream(3, "w")) {
            let data = examples(12, 64, 4);
            let depth = w.layers.len();
            let mut backprop = Backprop::new(&arch, data.len());
            let (loss, full) = backprop.gradient(&w, &data.x, &data.y).unwrap();
            for only in [
                vec![depth - 1],
                vec![1],
                vec![0, depth - 1],
                vec![depth / 2],
                vec![],
            ] {
                let (l, part) = backprop
                    .gradient_of(&w, (&data.x, &data.y), Some(&only))
                    .unwrap();
                assert_eq!(l, loss);
                for (k, (p, f)) in part.layers.iter().zip(&full.layers).enumerate() {
                    if only.contains(&k) {
                        assert_eq!(p, f, "{only:?} layer {k}");
                    } else {
                        assert!(p.w.iter().chain(&p.b).all(|v| *v == 0.0), "{only:?} {k}");
                    }
                }
            }
        }
    }

    /// Skipping a training run leaves its stream where the training run leaves it, with data and
    /// without.
    /// Each output of `matmul` on gemm's blocked paths is the sum, in order, of one chain of
    /// FMAs from zero per depth block, with the blocks gemm makes at 512 — a computation with no
    /// machine in it — for an output of both sides ≤ 64 (blocks of 512), a larger one (even
    /// blocks), a transposed view, and depths just above one and two blocks.
    #[test]
    fn products_are_blocked_at_512_on_every_machine() {
        let mut rng = sim::rng::stream(9, "matmul");
        let mut reference = |(m, n, k): (usize, usize, usize), rhs_t: bool, blocks: &[usize]| {
            assert_eq!(blocks.iter().sum::<usize>(), k);
            let a: Vec<f32> = (0..m * k)
                .map(|_| rand::Rng::random_range(&mut rng, -1.0..1.0))
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|_| rand::Rng::random_range(&mut rng, -1.0..1.0))
                .collect();
            // rhs (k × n) as stored: row-major, or the transpose of an n × k row-major matrix.
            let (rcs, rrs) = if rhs_t { (k, 1) } else { (1, n) };
            let mut got = vec![f32::NAN; m * n];
            matmul((m, n, k), (&a, 1, k), (&b, rcs, rrs), &mut got);
            for i in 0..m {
                for j in 0..n {
                    let (mut total, mut start) = (0f32, 0);
                    for (bi, &len) in blocks.iter().enumerate() {
                        let mut acc = 0f32;
                        for kk in start..start + len {
                            acc = a[i * k + kk].mul_add(b[kk * rrs + j * rcs], acc);
                        }
                        total = if bi == 0 { acc } else { total + acc };
                        start += len;
                    }
                    assert_eq!(
                        got[i * n + j].to_bits(),
                        total.to_bits(),
                        "({m}, {n}, {k}) rhs_t {rhs_t}: output ({i}, {j})"
                    );
                }
            }
        };
        reference((40, 20, 1300), false, &[512, 512, 276]);
        reference((40, 20, 1300), true, &[512, 512, 276]);
        reference((100, 8, 1300), false, &[434, 434, 432]);
        reference((8, 200, 1025), false, &[342, 342, 341]);
        reference((70, 5, 600), true, &[300, 300]);
        reference((20, 20, 512), false, &[512]);
    }

    #[test]
    fn skip_train_advances_the_stream_as_training_does() {
        let w0 = Weights::init(&[64, 8, 10], &mut sim::rng::stream(2, "w"));
        for n in [0, 1, 23] {
            let data = examples(n, 64, 5);
            let (mut trained, mut skipped) = (sim::rng::stream(6, "t"), sim::rng::stream(6, "t"));
            train(&Arch::Mlp, &w0, &data, None, (3, 4, 0.1), &mut trained).unwrap();
            skip_train(&data, 3, &mut skipped);
            let next = |r: &mut Rng| rand::Rng::random::<u64>(r);
            assert_eq!(next(&mut trained), next(&mut skipped), "{n}");
        }
    }

    #[test]
    fn empty_data_leaves_weights_and_scores_zero() {
        let w0 = Weights::init(&[64, 8, 10], &mut sim::rng::stream(2, "w"));
        let empty = Dataset {
            dim: 64,
            x: vec![],
            y: vec![],
        };
        let sgd = (3, 8, 0.1);
        let trained = train(
            &Arch::Mlp,
            &w0,
            &empty,
            None,
            sgd,
            &mut sim::rng::stream(1, "s"),
        );
        assert_eq!(trained.unwrap(), w0);
        assert_eq!(
            loss_and_accuracy(&Arch::Mlp, &w0, &empty).unwrap(),
            (0.0, 0.0)
        );
    }
}
