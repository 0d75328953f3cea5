//! The residual CNN's SGD step without the autograd graph: the same arithmetic as candle's
//! autograd through [`Cnn::forward`] — the same im2col ([`im2col`] / [`col2im`]), the same GEMM
//! calls with candle's arguments, the same sequential reductions — over buffers allocated once
//! per training call, so the step's ≈ 300 tensor allocations, zeroings and dispatches go away
//! (they were ≈ half of a POLAR run).
//!
//! Bit for bit, not merely close: the tests compare gradients, a training run and the evaluation
//! with candle's for equality, so every table computed through candle before stays the same.
//! What makes that hold, op by op, is noted where the op is mirrored: each GEMM passes candle's
//! `(m, n, k)`, strides, `alpha`/`beta` and parallelism (candle's CPU `MatMul`); each sum over
//! rows runs in index order from zero (candle's `ReduceSum` over a non-last dimension); two
//! gradient contributions to one tensor are one addition (commutative, so candle's order does
//! not matter). The cross-entropy on the logits (a few tensors of `n × classes`) stays candle's
//! own ([`cross_entropy`]).

use candle_core::{D, Device, Result, Tensor, Var};
use gemm::Parallelism;
use rand::seq::SliceRandom;
use sim::rng::Rng;

use super::cnn::{Cnn, KERNEL, LayerSpec, Role, col2im, im2col, patch_index};
use super::nn::{Weights, cross_entropy};
use super::task::Dataset;

/// Taps of a 3×3 kernel.
const TAPS: usize = KERNEL * KERNEL;

/// A row-major or transposed view of a matrix for [`matmul`]: `(data, column stride, row stride)`.
type View<'a> = (&'a [f32], usize, usize);

/// `dst (m × n, row-major) = lhs (m × k) · rhs (k × n)`, called exactly as candle's CPU `MatMul`
/// calls the `gemm` crate (contiguous destination, `read_dst` false, `alpha` 0, `beta` 1, rayon
/// parallelism when candle's thread count is above one), so the products are candle's.
fn matmul((m, n, k): (usize, usize, usize), lhs: View<'_>, rhs: View<'_>, dst: &mut [f32]) {
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        lhs.0.len() > (m - 1) * lhs.2 + (k - 1) * lhs.1,
        "matmul: lhs too small"
    );
    assert!(
        rhs.0.len() > (k - 1) * rhs.2 + (n - 1) * rhs.1,
        "matmul: rhs too small"
    );
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every element gemm reads or writes inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.0.as_ptr(),
            lhs.1 as isize,
            lhs.2 as isize,
            rhs.0.as_ptr(),
            rhs.1 as isize,
            rhs.2 as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Column sums of `rows` (`r × c`, row-major) into `out`, each from zero in row order (candle's
/// `ReduceSum` over dimension 0, the bias gradient of a broadcast add).
fn column_sums(rows: &[f32], c: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in rows.chunks_exact(c) {
        for (s, v) in out.iter_mut().zip(row) {
            *s += v;
        }
    }
}

/// One convolution layer's geometry and buffers.
#[derive(Debug)]
struct ConvLayer {
    /// Input pixels per image, input and output channels.
    pixels: usize,
    ci: usize,
    co: usize,
    /// Output pixels per image.
    out_pixels: usize,
    /// [`patch_index`] of the layer.
    patches: Vec<u32>,
    /// The kernel as candle's `c_out × (9·c_in)` matrix (tap-major columns), for the weights of
    /// the current step.
    kernel: Vec<f32>,
    /// Patches of the current batch (`(n·out_pixels) × (9·c_in)`; padding entries stay zero).
    cols: Vec<f32>,
    /// ReLU's argument and result (`(n·out_pixels) × c_out`).
    pre: Vec<f32>,
    out: Vec<f32>,
}

impl ConvLayer {
    /// Width of a patch row.
    fn patch(&self) -> usize {
        TAPS * self.ci
    }
}

/// Forward and backward of the CNN over batches of up to `capacity` images.
#[derive(Debug)]
struct Pass {
    specs: Vec<LayerSpec>,
    convs: Vec<ConvLayer>,
    /// Pixels pooled by the head, and its pooled features (`n × c_in`).
    head_pixels: usize,
    features: Vec<f32>,
    /// Backward scratch, reused across steps: the gradient w.r.t. the current layer's output and
    /// its input, the skip connection's gradient, the patch gradients, the kernel gradient.
    grad_out: Vec<f32>,
    grad_in: Vec<f32>,
    grad_skip: Vec<f32>,
    grad_cols: Vec<f32>,
    grad_kernel: Vec<f32>,
}

impl Pass {
    fn new(net: &Cnn, capacity: usize) -> Self {
        let specs = net.layers();
        let down = specs.iter().position(|s| s.role == Role::Down);
        let convs = specs[..specs.len() - 1]
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let side = if down.is_some_and(|d| k > d) {
                    net.side / 2
                } else {
                    net.side
                };
                let stride = if s.role == Role::Down { 2 } else { 1 };
                let rows = capacity * s.out_pixels;
                ConvLayer {
                    pixels: side * side,
                    ci: s.c_in,
                    co: s.c_out,
                    out_pixels: s.out_pixels,
                    patches: patch_index(side, stride),
                    kernel: vec![0.0; s.c_out * TAPS * s.c_in],
                    cols: vec![0.0; rows * TAPS * s.c_in],
                    pre: vec![0.0; rows * s.c_out],
                    out: vec![0.0; rows * s.c_out],
                }
            })
            .collect::<Vec<_>>();
        let head = specs.last().expect("a head");
        let widest = |f: fn(&ConvLayer) -> usize| convs.iter().map(f).max().unwrap_or(0);
        let activations = widest(|c| c.out.len()).max(widest(|c| c.pixels * c.ci) * capacity);
        Self {
            head_pixels: convs.last().map_or(1, |c| c.out_pixels),
            features: vec![0.0; capacity * head.c_in],
            grad_out: vec![0.0; activations],
            grad_in: vec![0.0; activations],
            grad_skip: vec![0.0; activations],
            grad_cols: vec![0.0; widest(|c| c.cols.len())],
            grad_kernel: vec![0.0; widest(|c| c.kernel.len())],
            specs,
            convs,
        }
    }

    /// Runs `n` images `x` (`n × side²`) through `w`; returns the logits (`n × classes`).
    fn forward(&mut self, w: &Weights, x: &[f32], n: usize) -> Vec<f32> {
        for k in 0..self.convs.len() {
            let (before, rest) = self.convs.split_at_mut(k);
            let layer = &mut rest[0];
            let input: &[f32] = if k == 0 { x } else { &before[k - 1].out };
            let (ci, co, patch) = (layer.ci, layer.co, layer.patch());
            let rows = n * layer.out_pixels;
            // candle: w.reshape((co, ci, 9)).transpose(1, 2).reshape((co, 9·ci)).
            let l = &w.layers[k];
            for o in 0..co {
                for i in 0..ci {
                    for t in 0..TAPS {
                        layer.kernel[o * patch + t * ci + i] = l.w[(o * ci + i) * TAPS + t];
                    }
                }
            }
            im2col(
                &input[..n * layer.pixels * ci],
                &layer.patches,
                layer.pixels,
                ci,
                &mut layer.cols[..rows * patch],
            );
            // cols.matmul(kernel.t()), then broadcast_add(b).
            matmul(
                (rows, co, patch),
                (&layer.cols, 1, patch),
                (&layer.kernel, patch, 1),
                &mut layer.pre,
            );
            for row in layer.pre[..rows * co].chunks_exact_mut(co) {
                for (v, b) in row.iter_mut().zip(&l.b) {
                    *v += b;
                }
            }
            if self.specs[k].role == Role::BlockOut {
                // (conv + block input).relu(); the block input is the output of layer k − 2.
                for (v, s) in layer.pre[..rows * co].iter_mut().zip(&before[k - 2].out) {
                    *v += s;
                }
            }
            for (o, v) in layer.out.iter_mut().zip(&layer.pre[..rows * co]) {
                *o = v.max(0.0);
            }
        }
        // h.mean(1): a sum over the pixels in order, then × (1/pixels) (candle's affine).
        let last = self.specs.len() - 1;
        let head = &self.specs[last];
        let h = &self.convs[last - 1].out;
        let c = head.c_in;
        let scale = (1.0 / self.head_pixels as f64) as f32;
        for e in 0..n {
            let f = &mut self.features[e * c..(e + 1) * c];
            f.fill(0.0);
            for px in h[e * self.head_pixels * c..(e + 1) * self.head_pixels * c].chunks_exact(c) {
                for (s, v) in f.iter_mut().zip(px) {
                    *s += v;
                }
            }
            for s in f.iter_mut() {
                *s = *s * scale + 0.0;
            }
        }
        // .matmul(w.t()).broadcast_add(b).
        let l = &w.layers[last];
        let mut logits = vec![0.0f32; n * head.c_out];
        matmul(
            (n, head.c_out, c),
            (&self.features, 1, c),
            (&l.w, c, 1),
            &mut logits,
        );
        for row in logits.chunks_exact_mut(head.c_out) {
            for (v, b) in row.iter_mut().zip(&l.b) {
                *v += b;
            }
        }
        logits
    }

    /// Gradients into `grads` (`w`'s layout, overwritten) of the loss whose gradient w.r.t. the
    /// last [`Pass::forward`]'s logits is `dlogits` (`n × classes`).
    fn backward(&mut self, w: &Weights, dlogits: &[f32], n: usize, grads: &mut Weights) {
        let last = self.specs.len() - 1;
        let head = &self.specs[last];
        let (c, classes) = (head.c_in, head.c_out);
        let g = &mut grads.layers[last];
        column_sums(dlogits, classes, &mut g.b);
        // rhs_grad = features.t().matmul(dlogits) (c × classes), transposed into w's layout.
        let mut dwt = vec![0.0f32; c * classes];
        matmul(
            (c, classes, n),
            (&self.features, c, 1),
            (dlogits, 1, classes),
            &mut dwt,
        );
        for o in 0..classes {
            for i in 0..c {
                g.w[o * c + i] = dwt[i * classes + o];
            }
        }
        // lhs_grad = dlogits.matmul(w) (n × c); through the mean: × (1/pixels) on every pixel.
        let mut dfeatures = vec![0.0f32; n * c];
        matmul(
            (n, c, classes),
            (dlogits, 1, classes),
            (&w.layers[last].w, 1, c),
            &mut dfeatures,
        );
        let scale = (1.0 / self.head_pixels as f64) as f32;
        let mut grad_out = std::mem::take(&mut self.grad_out);
        let mut grad_in = std::mem::take(&mut self.grad_in);
        for (e, px) in grad_out[..n * self.head_pixels * c]
            .chunks_exact_mut(self.head_pixels * c)
            .enumerate()
        {
            for (p, v) in px.iter_mut().enumerate() {
                *v = dfeatures[e * c + p % c] * scale + 0.0;
            }
        }
        for k in (0..self.convs.len()).rev() {
            let layer = &self.convs[k];
            let (ci, co, patch) = (layer.ci, layer.co, layer.patch());
            let rows = n * layer.out_pixels;
            let dz = &mut grad_out[..rows * co];
            // relu backward: grad · (pre ≥ 0).
            for (d, v) in dz.iter_mut().zip(&layer.pre) {
                if *v < 0.0 || v.is_nan() {
                    *d = 0.0;
                }
            }
            let role = self.specs[k].role;
            if role == Role::BlockOut {
                self.grad_skip[..dz.len()].copy_from_slice(dz);
            }
            let g = &mut grads.layers[k];
            column_sums(dz, co, &mut g.b);
            // rhs_grad = cols.t().matmul(dz) ((9·ci) × co), into w's c_out × c_in × 3 × 3.
            let dkt = &mut self.grad_kernel[..patch * co];
            matmul((patch, co, rows), (&layer.cols, patch, 1), (dz, 1, co), dkt);
            for o in 0..co {
                for i in 0..ci {
                    for t in 0..TAPS {
                        g.w[(o * ci + i) * TAPS + t] = dkt[(t * ci + i) * co + o];
                    }
                }
            }
            if k == 0 {
                break;
            }
            // lhs_grad = dz.matmul(kernel) ((n·out_pixels) × (9·ci)), scattered back (col2im).
            let dcols = &mut self.grad_cols[..rows * patch];
            matmul(
                (rows, patch, co),
                (dz, 1, co),
                (&layer.kernel, 1, patch),
                dcols,
            );
            let dx = &mut grad_in[..n * layer.pixels * ci];
            dx.fill(0.0);
            col2im(dcols, &layer.patches, layer.pixels, ci, dx);
            if role == Role::BlockIn {
                // The block input's second consumer: the skip connection.
                for (d, s) in dx.iter_mut().zip(&self.grad_skip) {
                    *d += s;
                }
            }
            std::mem::swap(&mut grad_out, &mut grad_in);
        }
        self.grad_out = grad_out;
        self.grad_in = grad_in;
    }
}

/// The mean cross-entropy of `logits` (`n × classes`) against `y` through candle (its value and
/// its gradient w.r.t. the logits).
fn loss_gradient(logits: Vec<f32>, y: &[u32], classes: usize) -> Result<(f32, Vec<f32>)> {
    let n = y.len();
    let logits = Var::from_tensor(&Tensor::from_vec(logits, (n, classes), &Device::Cpu)?)?;
    let labels = Tensor::from_slice(y, n, &Device::Cpu)?;
    let loss = cross_entropy(logits.as_tensor(), &labels)?;
    let grads = loss.backward()?;
    let d = grads
        .get(logits.as_tensor())
        .ok_or_else(|| candle_core::Error::Msg("cross-entropy: no logit gradient".into()))?;
    Ok((loss.to_scalar()?, d.flatten_all()?.to_vec1()?))
}

/// SGD on the layers `only` (every layer when `None`) of the CNN `w` over `data` (minibatches of
/// `batch`, `epochs` passes shuffled by `rng` as [`super::nn::batches`] shuffles them); returns
/// the trained weights, the numbers candle's autograd gives ([`super::nn::Arch::train_autograd`]).
pub fn train(
    net: &Cnn,
    w: &Weights,
    data: &Dataset,
    only: Option<&[usize]>,
    (epochs, batch, lr): (usize, usize, f64),
    rng: &mut Rng,
) -> Result<Weights> {
    if data.is_empty() {
        return Ok(w.clone());
    }
    let batch = batch.max(1);
    let mut pass = Pass::new(net, batch.min(data.len()));
    let (mut p, mut grads) = (w.clone(), w.clone());
    let mut idx: Vec<usize> = (0..data.len()).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    // `v - g * lr`: candle's affine multiplies by lr as f32 and adds 0.
    let lr = lr as f32;
    for _ in 0..epochs {
        idx.shuffle(rng);
        for chunk in idx.chunks(batch) {
            x.clear();
            y.clear();
            for &i in chunk {
                x.extend_from_slice(data.row(i));
                y.push(data.y[i]);
            }
            let logits = pass.forward(&p, &x, y.len());
            let (_, dlogits) = loss_gradient(logits, &y, net.classes)?;
            pass.backward(&p, &dlogits, y.len(), &mut grads);
            let trained = p.layers.iter_mut().zip(&grads.layers).enumerate();
            for (_, (l, g)) in trained.filter(|(k, _)| only.is_none_or(|set| set.contains(k))) {
                for (v, d) in
                    l.w.iter_mut()
                        .chain(l.b.iter_mut())
                        .zip(g.w.iter().chain(&g.b))
                {
                    *v -= d * lr + 0.0;
                }
            }
        }
    }
    Ok(p)
}

/// Mean cross-entropy and fraction correct of the CNN `w` on `data` (`(0, 0)` when empty): one
/// forward pass over all of `data`, as [`super::nn::Arch::loss_and_accuracy_autograd`] makes it.
pub fn loss_and_accuracy(net: &Cnn, w: &Weights, data: &Dataset) -> Result<(f64, f64)> {
    if data.is_empty() {
        return Ok((0.0, 0.0));
    }
    let n = data.len();
    let mut pass = Pass::new(net, n);
    let logits = pass.forward(w, &data.x, n);
    let logits = Tensor::from_vec(logits, (n, net.classes), &Device::Cpu)?;
    let labels = Tensor::from_slice(&data.y, n, &Device::Cpu)?;
    let loss = f64::from(cross_entropy(&logits, &labels)?.to_scalar::<f32>()?);
    let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
    let hits = pred.iter().zip(&data.y).filter(|(p, y)| p == y).count();
    Ok((loss, hits as f64 / n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::cnn::CnnShape;
    use crate::learn::nn::{Arch, Vars};

    fn net(channels: [usize; 2]) -> Cnn {
        Cnn {
            shape: CnnShape {
                channels,
                blocks: 2,
            },
            side: 8,
            classes: 10,
        }
    }

    fn images(n: usize, seed: u64) -> Dataset {
        let mut rng = sim::rng::stream(seed, "images");
        Dataset {
            dim: 64,
            x: (0..n * 64)
                .map(|_| rand::Rng::random::<f32>(&mut rng))
                .collect(),
            y: (0..n)
                .map(|_| rand::Rng::random_range(&mut rng, 0..10))
                .collect(),
        }
    }

    #[test]
    fn gradients_are_candles_autograd_bit_for_bit() {
        // [4, 8] runs the specialised im2col loops, [3, 5] the generic ones.
        for channels in [[4, 8], [3, 5]] {
            let cnn = net(channels);
            let w = cnn.init(&mut sim::rng::stream(7, "w"));
            let data = images(6, 3);
            let mut pass = Pass::new(&cnn, 6);
            let logits = pass.forward(&w, &data.x, 6);
            let (loss, dlogits) = loss_gradient(logits, &data.y, 10).unwrap();
            let mut ours = w.clone();
            pass.backward(&w, &dlogits, 6, &mut ours);

            let vars = Vars::from_weights(&w).unwrap();
            let (x, y) = data.all_tensors().unwrap();
            let l = cross_entropy(&cnn.forward(&vars.tensors(), &x).unwrap(), &y).unwrap();
            let g = l.backward().unwrap();
            let mut reference = w.clone();
            for (layer, pair) in reference.layers.iter_mut().zip(vars.all().chunks(2)) {
                let grad = |v: &Var| -> Vec<f32> {
                    let t = g.get(v.as_tensor()).unwrap();
                    t.flatten_all().unwrap().to_vec1().unwrap()
                };
                layer.w = grad(&pair[0]);
                layer.b = grad(&pair[1]);
            }
            assert_eq!(loss, l.to_scalar::<f32>().unwrap(), "{channels:?}");
            assert_eq!(ours, reference, "{channels:?}");
            assert!(ours.flatten().iter().any(|v| *v != 0.0));
        }
    }

    #[test]
    fn training_and_evaluation_are_candles_bit_for_bit() {
        let cnn = net([4, 8]);
        let w0 = cnn.init(&mut sim::rng::stream(2, "w"));
        // 43 examples in batches of 8: a short last batch in each of 2 epochs.
        let data = images(43, 5);
        let ours = train(
            &cnn,
            &w0,
            &data,
            2,
            8,
            0.05,
            &mut sim::rng::stream(4, "sgd"),
        )
        .unwrap();
        let arch = Arch::Cnn(cnn);
        let reference = arch
            .train_autograd(&w0, &data, 2, 8, 0.05, &mut sim::rng::stream(4, "sgd"))
            .unwrap();
        assert_ne!(ours, w0);
        assert_eq!(ours, reference);
        assert_eq!(
            loss_and_accuracy(&cnn, &ours, &data).unwrap(),
            arch.loss_and_accuracy_autograd(&ours, &data).unwrap()
        );
    }

    #[test]
    fn empty_data_leaves_weights_and_scores_zero() {
        let cnn = net([4, 8]);
        let w0 = cnn.init(&mut sim::rng::stream(2, "w"));
        let empty = Dataset {
            dim: 64,
            x: vec![],
            y: vec![],
        };
        let trained = train(
            &cnn,
            &w0,
            &empty,
            None,
            (3, 8, 0.1),
            &mut sim::rng::stream(1, "s"),
        );
        assert_eq!(trained.unwrap(), w0);
        assert_eq!(loss_and_accuracy(&cnn, &w0, &empty).unwrap(), (0.0, 0.0));
    }
}
