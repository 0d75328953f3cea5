//! The residual CNN's [`Pass`]: each convolution an im2col ([`im2col`] / [`col2im`]) and candle's
//! GEMM over buffers reused across the steps of a training call.

use std::cell::RefCell;

use super::{
    Pass, add_bias, asked, column_sums, dense_backward, dense_forward, matmul, relu_backward,
    zero_others,
};
use crate::learn::cnn::{Cnn, KERNEL, LayerSpec, Role, col2im, im2col, patch_index};
use crate::learn::nn::Weights;

/// Taps of a 3×3 kernel.
const TAPS: usize = KERNEL * KERNEL;

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
    /// ReLU's argument and result (`(n·out_pixels) × c_out`).
    pre: Vec<f32>,
    out: Vec<f32>,
}

impl ConvLayer {
    /// Width of a patch row.
    fn patch(&self) -> usize {
        TAPS * self.ci
    }

    /// The patches of `n` images `input` into `cols` (`(n·out_pixels) × (9·c_in)`).
    fn gather(&self, input: &[f32], n: usize, cols: &mut [f32]) {
        let rows = n * self.out_pixels;
        im2col(
            &input[..n * self.pixels * self.ci],
            &self.patches,
            self.pixels,
            self.ci,
            &mut cols[..rows * self.patch()],
        );
    }
}

/// Forward and backward of the CNN over batches of up to `capacity` images.
#[derive(Debug)]
pub(super) struct CnnPass {
    /// The network and the most images a batch may have.
    net: Cnn,
    capacity: usize,
    specs: Vec<LayerSpec>,
    convs: Vec<ConvLayer>,
    /// Pixels pooled by the head, and its pooled features (`n × c_in`).
    head_pixels: usize,
    features: Vec<f32>,
    /// The batch's images (the first layer's input, for the backward).
    images: Vec<f32>,
    /// Patches of one layer (`(n·out_pixels) × (9·c_in)`), gathered in the forward and again in
    /// the backward: one buffer that stays in the core's L2 cache rather than one per layer
    /// (≈ 0.5 MB each for a batch of 30 at 8 channels), which would not.
    cols: Vec<f32>,
    /// Backward scratch, reused across steps: the gradient w.r.t. the current layer's output and
    /// its input, the skip connection's gradient, the patch gradients, the kernel gradient.
    grad_out: Vec<f32>,
    grad_in: Vec<f32>,
    grad_skip: Vec<f32>,
    grad_cols: Vec<f32>,
    grad_kernel: Vec<f32>,
}

impl CnnPass {
    /// Buffers for batches of up to `capacity` images of `net`.
    pub(super) fn new(net: &Cnn, capacity: usize) -> Self {
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
                    pre: vec![0.0; rows * s.c_out],
                    out: vec![0.0; rows * s.c_out],
                }
            })
            .collect::<Vec<_>>();
        let head = specs.last().expect("a head");
        let widest = |f: fn(&ConvLayer) -> usize| convs.iter().map(f).max().unwrap_or(0);
        let activations = widest(|c| c.out.len()).max(widest(|c| c.pixels * c.ci) * capacity);
        Self {
            net: *net,
            capacity,
            head_pixels: convs.last().map_or(1, |c| c.out_pixels),
            features: vec![0.0; capacity * head.c_in],
            grad_out: vec![0.0; activations],
            grad_in: vec![0.0; activations],
            grad_skip: vec![0.0; activations],
            images: vec![0.0; capacity * convs.first().map_or(0, |c| c.pixels * c.ci)],
            cols: vec![0.0; widest(|c| c.out_pixels * TAPS * c.ci) * capacity],
            grad_cols: vec![0.0; widest(|c| c.out_pixels * TAPS * c.ci) * capacity],
            grad_kernel: vec![0.0; widest(|c| c.kernel.len())],
            specs,
            convs,
        }
    }
}

/// Spare passes kept per thread.
const SPARE_PASSES: usize = 4;

thread_local! {
    /// Passes whose call has finished on this thread, for the next call over the same network: a
    /// pass's buffers (≈ 5 MB for 60 images of the [8, 16] net) cost more to allocate and zero than
    /// a short training call computes with them (≈ 14 % of a pfednavi-sensor run).
    static SPARE: RefCell<Vec<CnnPass>> = const { RefCell::new(Vec::new()) };
}

/// A [`CnnPass`] for batches of up to `capacity` images of `net`: the smallest spare one of this
/// thread over the same network that is large enough, else a new one; back among the spares when dropped.
/// Reuse cannot change a number: every buffer entry a pass reads was written in the same call
/// (the patches' padding entries included: [`im2col`] writes their zeros) — the same holds across
/// the steps of one training call, whose last batch is often shorter.
#[derive(Debug)]
pub(super) struct PooledPass(Option<CnnPass>);

impl PooledPass {
    /// A pass for up to `capacity` images of `net`.
    pub(super) fn new(net: &Cnn, capacity: usize) -> Self {
        let spare = SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            let (at, _) = spare
                .iter()
                .enumerate()
                .filter(|(_, p)| p.net == *net && p.capacity >= capacity)
                .min_by_key(|(_, p)| p.capacity)?;
            Some(spare.swap_remove(at))
        });
        Self(Some(spare.unwrap_or_else(|| CnnPass::new(net, capacity))))
    }

    fn pass(&mut self) -> &mut CnnPass {
        let Some(p) = &mut self.0 else {
            unreachable!("a pooled pass is only taken when dropped")
        };
        p
    }
}

impl Drop for PooledPass {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            SPARE.with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() >= SPARE_PASSES {
                    spare.remove(0);
                }
                spare.push(p);
            });
        }
    }
}

impl Pass for PooledPass {
    fn forward(&mut self, w: &Weights, x: &[f32], n: usize) -> Vec<f32> {
        self.pass().forward(w, x, n)
    }

    fn backward(
        &mut self,
        w: &Weights,
        dlogits: (&[f32], usize),
        grads: &mut Weights,
        only: Option<&[usize]>,
    ) {
        self.pass().backward(w, dlogits, grads, only);
    }
}

/// Images per chunk of [`logits_in_chunks`] (≈ 3 MB of buffers for the digits' [4, 8] net,
/// instead of ≈ 17 MB for a 400-image test set in one pass).
const EVAL_CHUNK: usize = 64;

/// Largest output (`m·n`, rows × columns) of a GEMM that gemm 0.19 computes with its horizontal
/// (dot-product) kernels when both operands are contiguous along the sums, as every forward GEMM
/// here is; above it, and for sums of at most 512 terms (one block), every output element is one
/// chain of fused multiply-adds over the sum in index order, whatever the number of rows.
const HORIZONTAL_MAX_OUTPUT: usize = 16 * 16;

/// Longest sum gemm 0.19 runs in one block for every matrix size.
const ONE_BLOCK_MAX_SUM: usize = 512;

/// The logits of `net` with weights `w` for `n` images `x`, the numbers of one forward pass over
/// all of them, computed chunk by chunk. Every GEMM of a forward pass multiplies row by row (a
/// row of patches, or of features, by the kernel), so splitting the rows changes which rows a
/// GEMM call holds, not the arithmetic of any row — as long as each chunk's calls take the same
/// gemm path as the whole batch's: more than [`HORIZONTAL_MAX_OUTPUT`] outputs in every call and
/// sums of at most [`ONE_BLOCK_MAX_SUM`]. Otherwise, and for small `n`, one pass.
pub(super) fn logits_in_chunks(net: &Cnn, w: &Weights, x: &[f32], n: usize) -> Vec<f32> {
    let specs = net.layers();
    let outputs_per_image = specs
        .iter()
        .map(|s| s.out_pixels * s.c_out)
        .min()
        .unwrap_or(1)
        .max(1);
    let longest_sum = specs
        .iter()
        .map(|s| match s.role {
            Role::Head => s.c_in,
            _ => TAPS * s.c_in,
        })
        .max()
        .unwrap_or(0);
    let least_images = HORIZONTAL_MAX_OUTPUT / outputs_per_image + 1;
    let chunk = EVAL_CHUNK.max(2 * least_images);
    if n <= 2 * chunk || longest_sum > ONE_BLOCK_MAX_SUM {
        return PooledPass::new(net, n).forward(w, x, n);
    }
    // Near-equal chunks of at most `chunk` images, so none is below `chunk / 2 ≥ least_images`.
    let chunks = n.div_ceil(chunk);
    let size = n.div_ceil(chunks);
    let dim = x.len() / n;
    let mut pass = PooledPass::new(net, size);
    let mut logits = Vec::with_capacity(n * net.classes);
    for part in x.chunks(size * dim) {
        logits.extend(pass.forward(w, part, part.len() / dim));
    }
    logits
}

impl Pass for CnnPass {
    fn forward(&mut self, w: &Weights, x: &[f32], n: usize) -> Vec<f32> {
        self.images[..x.len()].copy_from_slice(x);
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
            let cols = &mut self.cols[..rows * patch];
            layer.gather(input, n, cols);
            // cols.matmul(kernel.t()), then broadcast_add(b).
            matmul(
                (rows, co, patch),
                (cols, 1, patch),
                (&layer.kernel, patch, 1),
                &mut layer.pre,
            );
            add_bias(&mut layer.pre[..rows * co], &l.b);
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
        let mut logits = vec![0.0f32; n * head.c_out];
        dense_forward(&w.layers[last], &self.features, n, &mut logits);
        logits
    }

    fn backward(
        &mut self,
        w: &Weights,
        (dlogits, n): (&[f32], usize),
        grads: &mut Weights,
        only: Option<&[usize]>,
    ) {
        zero_others(grads, only);
        let (wanted, lowest) = asked(only);
        let last = self.specs.len() - 1;
        let head = &self.specs[last];
        let c = head.c_in;
        // The head; through the mean: × (1/pixels) on every pixel.
        let mut dfeatures = vec![0.0f32; n * c];
        let (l, d) = (&w.layers[last], &mut grads.layers[last]);
        let d = wanted(last).then_some(d);
        let dx = (lowest < last).then_some(&mut dfeatures[..]);
        dense_backward(l, (&self.features, dlogits, n), d, dx);
        if lowest >= last {
            return;
        }
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
            relu_backward(dz, &layer.pre);
            let role = self.specs[k].role;
            if role == Role::BlockOut {
                self.grad_skip[..dz.len()].copy_from_slice(dz);
            }
            if wanted(k) {
                let g = &mut grads.layers[k];
                column_sums(dz, co, &mut g.b);
                // rhs_grad = cols.t().matmul(dz) ((9·ci) × co), into w's c_out × c_in × 3 × 3;
                // the layer's patches gathered again from its input.
                let input: &[f32] = if k == 0 {
                    &self.images
                } else {
                    &self.convs[k - 1].out
                };
                let cols = &mut self.cols[..rows * patch];
                layer.gather(input, n, cols);
                let dkt = &mut self.grad_kernel[..patch * co];
                matmul((patch, co, rows), (cols, patch, 1), (dz, 1, co), dkt);
                for o in 0..co {
                    for i in 0..ci {
                        for t in 0..TAPS {
                            g.w[(o * ci + i) * TAPS + t] = dkt[(t * ci + i) * co + o];
                        }
                    }
                }
            }
            if k <= lowest {
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

#[cfg(test)]
mod tests {
    use super::{CnnPass, logits_in_chunks};
    use crate::learn::cnn::{Cnn, CnnShape};
    use crate::learn::nn::Arch;
    use crate::learn::step::Pass;
    use crate::learn::step::tests::{check_against_autograd, examples};

    /// Chunked logits are one pass's, bit for bit, at sizes below, at and well above the chunk
    /// (a short last chunk included), with 10 classes and with 2 (where a chunk must be larger to
    /// stay off gemm's horizontal kernels).
    #[test]
    fn chunked_logits_are_one_passs_bit_for_bit() {
        for classes in [10, 2] {
            let net = Cnn {
                shape: CnnShape {
                    channels: [4, 8],
                    blocks: 1,
                },
                side: 8,
                classes,
            };
            let w = net.init(&mut sim::rng::stream(5, "w"));
            for n in [3, 130, 200, 401, 1100] {
                let data = examples(n, 64, 9);
                let whole = CnnPass::new(&net, n).forward(&w, &data.x, n);
                assert_eq!(
                    logits_in_chunks(&net, &w, &data.x, n),
                    whole,
                    "{classes} {n}"
                );
            }
        }
    }

    #[test]
    fn the_cnn_step_is_candles_autograd_bit_for_bit() {
        // [4, 8] runs the specialised im2col loops, [3, 5] the generic ones; 43 images.
        for channels in [[4, 8], [3, 5]] {
            let net = Cnn {
                shape: CnnShape {
                    channels,
                    blocks: 2,
                },
                side: 8,
                classes: 10,
            };
            let w0 = net.init(&mut sim::rng::stream(7, "w"));
            check_against_autograd(&Arch::Cnn(net), &w0, &examples(43, 64, 3), &[0, 3]);
        }
    }
}
