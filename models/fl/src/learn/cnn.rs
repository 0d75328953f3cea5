//! A deep residual convolutional network for small square one-channel images (the 8×8 digits):
//! a 3×3 stem convolution, `blocks` residual blocks of two 3×3 convolutions at `channels[0]`, a
//! stride-2 3×3 convolution to `channels[1]` (halving the side), `blocks` more residual blocks,
//! global average pooling and a linear head — `4·blocks + 3` weight layers (15 at `blocks = 3`).
//! No normalisation layers: the second convolution of each block starts scaled by `1/√(2·blocks)`
//! (Fixup's rescaling, Zhang et al., ICLR 2019), so the deep stack trains with plain SGD.
//!
//! Its parameters are an ordinary [`Weights`]: a convolution is a [`Layer`] with `d_out = c_out`
//! and `d_in = c_in·3·3`, its weight PyTorch's `c_out × c_in × 3 × 3` kernel flattened row-major.
//! Flattening, averaging, the defenses (flat updates per layer), layer masks and the network's
//! `ModelParams` therefore see the CNN exactly as they see an MLP. Training and evaluation run the
//! graph-free step of [`crate::learn::step`] (im2col + candle's GEMM); `Cnn::forward`, the same
//! arithmetic as candle tensors with autograd, is the reference its tests compare against.

#[cfg(test)]
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rand_distr::{Distribution, Normal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use super::nn::{Layer, Weights};

/// Kernel side of every convolution.
pub(crate) const KERNEL: usize = 3;

/// Width and depth of the residual CNN (the scenario's `cnn:` block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CnnShape {
    /// Channels of the two stages (before and after the stride-2 convolution).
    pub channels: [usize; 2],
    /// Residual blocks per stage.
    pub blocks: usize,
}

impl Validate for CnnShape {
    fn validate(&self, c: &mut Checks) {
        c.at_least("channels.0", self.channels[0], 1);
        c.at_least("channels.1", self.channels[1], 1);
        c.at_least("blocks", self.blocks, 1);
    }
}

/// What a weight layer does in the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The first convolution (input image → stage-0 channels).
    Stem,
    /// First convolution of a residual block.
    BlockIn,
    /// Second convolution of a residual block (its output is added to the block's input).
    BlockOut,
    /// The stride-2 convolution between the stages.
    Down,
    /// The linear classifier after global average pooling.
    Head,
}

/// One weight layer of the CNN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// Name (`stem`, `s0.b1.conv2`, `down`, `head`, …).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Input channels (head: features).
    pub c_in: usize,
    /// Output channels (head: classes).
    pub c_out: usize,
    /// Output pixels per example (side²; 1 for the head).
    pub out_pixels: usize,
}

/// A residual CNN over `side × side` one-channel images with `classes` outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cnn {
    /// Width and depth.
    pub shape: CnnShape,
    /// Image side in pixels (even, so the stride-2 convolution halves it exactly).
    pub side: usize,
    /// Output classes.
    pub classes: usize,
}

impl Cnn {
    /// The network's weight layers in forward order.
    pub fn layers(&self) -> Vec<LayerSpec> {
        let [c0, c1] = self.shape.channels;
        let (p0, p1) = (self.side * self.side, (self.side / 2) * (self.side / 2));
        let spec = |name: String, role, c_in, c_out, out_pixels| LayerSpec {
            name,
            role,
            c_in,
            c_out,
            out_pixels,
        };
        let mut out = vec![spec("stem".into(), Role::Stem, 1, c0, p0)];
        for (stage, c, p) in [(0, c0, p0), (1, c1, p1)] {
            if stage == 1 {
                out.push(spec("down".into(), Role::Down, c0, c1, p1));
            }
            for b in 0..self.shape.blocks {
                out.push(spec(format!("s{stage}.b{b}.conv1"), Role::BlockIn, c, c, p));
                out.push(spec(
                    format!("s{stage}.b{b}.conv2"),
                    Role::BlockOut,
                    c,
                    c,
                    p,
                ));
            }
        }
        out.push(spec("head".into(), Role::Head, c1, self.classes, 1));
        out
    }

    /// He-initialised weights (biases zero), block-output convolutions scaled by `1/√(2·blocks)`.
    pub fn init(&self, rng: &mut Rng) -> Weights {
        let fixup = 1.0 / ((2 * self.shape.blocks) as f32).sqrt();
        let layers = self
            .layers()
            .into_iter()
            .map(|s| {
                let d_in = s.c_in * Self::taps(&s);
                let scale = if s.role == Role::BlockOut { fixup } else { 1.0 };
                let normal = Normal::new(0.0f32, (2.0 / d_in as f32).sqrt()).expect("finite std");
                Layer {
                    name: s.name,
                    d_in,
                    d_out: s.c_out,
                    w: (0..d_in * s.c_out)
                        .map(|_| scale * normal.sample(rng))
                        .collect(),
                    b: vec![0.0; s.c_out],
                }
            })
            .collect();
        Weights { layers }
    }

    #[cfg(test)]
    /// Logits (`n × classes`) of the images `x` (`n × side²`, row-major pixels) under `layers`
    /// (weight and bias tensors in the order of [`Cnn::layers`]). Activations are held as
    /// `n × pixels × channels`.
    pub fn forward(&self, layers: &[(Tensor, Tensor)], x: &Tensor) -> Result<Tensor> {
        let n = x.dim(0)?;
        let mut h = x.reshape((n, self.side * self.side, 1))?;
        let mut side = self.side;
        let mut block_input = h.clone();
        for (spec, wb) in self.layers().iter().zip(layers) {
            h = match spec.role {
                Role::Stem => conv(&h, wb, spec, (side, 1))?.relu()?,
                Role::Down => {
                    let out = conv(&h, wb, spec, (side, 2))?.relu()?;
                    side /= 2;
                    out
                }
                Role::BlockIn => {
                    block_input = h.clone();
                    conv(&h, wb, spec, (side, 1))?.relu()?
                }
                Role::BlockOut => (conv(&h, wb, spec, (side, 1))? + &block_input)?.relu()?,
                Role::Head => h.mean(1)?.matmul(&wb.0.t()?)?.broadcast_add(&wb.1)?,
            };
        }
        Ok(h)
    }

    /// Number of scalar parameters (weights and biases).
    pub fn param_count(&self) -> usize {
        self.layers()
            .iter()
            .map(|s| (s.c_in * Self::taps(s) + 1) * s.c_out)
            .sum()
    }

    /// Kernel taps per input channel of layer `s` (9 for a 3×3 convolution, 1 for the head).
    fn taps(s: &LayerSpec) -> usize {
        if s.role == Role::Head {
            1
        } else {
            KERNEL * KERNEL
        }
    }

    /// Multiply-accumulates of one forward pass per example.
    pub fn macs(&self) -> f64 {
        self.layers()
            .iter()
            .map(|s| (s.c_in * Self::taps(s) * s.c_out * s.out_pixels) as f64)
            .sum()
    }
}

/// For each output pixel of a 3×3 convolution (padding 1, `stride`) over a `side × side` image,
/// the 9 input pixels it reads, row-major; `side²` (one past the last pixel) stands for the
/// zero padding.
pub(crate) fn patch_index(side: usize, stride: usize) -> Vec<u32> {
    let out = side / stride;
    let mut idx = Vec::with_capacity(out * out * KERNEL * KERNEL);
    for r in 0..out {
        for c in 0..out {
            for dr in 0..KERNEL {
                for dc in 0..KERNEL {
                    let (ir, ic) = (
                        (r * stride + dr).checked_sub(1),
                        (c * stride + dc).checked_sub(1),
                    );
                    idx.push(match (ir, ic) {
                        (Some(ir), Some(ic)) if ir < side && ic < side => (ir * side + ic) as u32,
                        _ => (side * side) as u32,
                    });
                }
            }
        }
    }
    idx
}

#[cfg(test)]
/// A 3×3 convolution (padding 1) of `h` (`n × side² × c_in`) by the layer `(w, b)`, `w` held as
/// PyTorch's `c_out × c_in × 3 × 3`; returns `n × (side/stride)² × c_out`. Batched im2col: one
/// [`Im2col`] gathers every patch (zeros for the padding), one matmul applies the kernel;
/// autograd flows through both (the gather's backward is the scatter-add [`Col2im`]). Candle's
/// own `conv2d` gives the same numbers (tested) but its CPU backward (`conv_transpose2d`) is a
/// naive loop that made a training step ≈ 10× slower on these 8×8 images.
fn conv(
    h: &Tensor,
    (w, b): &(Tensor, Tensor),
    spec: &LayerSpec,
    (side, stride): (usize, usize),
) -> Result<Tensor> {
    let n = h.dim(0)?;
    let out_pixels = (side / stride) * (side / stride);
    let cols = h.contiguous()?.apply_op1(Im2col { side, stride })?;
    // c_out × c_in × 9 → c_out × (9·c_in), matching the patches' (tap, channel) order.
    let taps = KERNEL * KERNEL;
    let kernel = w
        .reshape((spec.c_out, spec.c_in, taps))?
        .transpose(1, 2)?
        .reshape((spec.c_out, taps * spec.c_in))?;
    cols.matmul(&kernel.t()?)?
        .broadcast_add(b)?
        .reshape((n, out_pixels, spec.c_out))
}

#[cfg(test)]
/// The patches of a 3×3 convolution (padding 1, `stride`) over `side × side` images held as
/// `n × side² × c` (channels last): `(n·out²) × (9·c)`, row `e·out² + p` holding output pixel
/// `p`'s nine input pixels (tap-major, zeros outside the image). One pass of contiguous copies;
/// it replaces candle's `cat` (padding) + `index_select` + `reshape`, which allocated and
/// walked strided indices on every layer of every step (≈ 30 % of a training step).
#[derive(Debug, Clone, Copy)]
struct Im2col {
    side: usize,
    stride: usize,
}

#[cfg(test)]
/// The adjoint of [`Im2col`]: patch gradients `(n·out²) × (9·c)` summed back onto the
/// `n × side² × c` pixels they were copied from (contributions added in patch order, as candle's
/// `index_add` does, so the gradients are the same numbers as through `index_select`).
#[derive(Debug, Clone, Copy)]
struct Col2im {
    side: usize,
    stride: usize,
    n: usize,
    channels: usize,
}

#[cfg(test)]
/// The f32 slice of a contiguous CPU tensor.
fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input only");
    };
    Ok(&v[start..end])
}

/// Calls `$call` with `$c` a literal for the channel counts the CNNs use (1, 4, 8, 16, 32), so
/// that the inlined copy loops below see a constant row length and compile to vector moves
/// instead of a `memmove` call per 4-float row; any other count runs the same code unspecialised.
macro_rules! by_channels {
    ($c:ident, $f:ident($($arg:expr),*)) => {
        match $c {
            1 => { let $c = 1; $f($($arg),*) }
            4 => { let $c = 4; $f($($arg),*) }
            8 => { let $c = 8; $f($($arg),*) }
            16 => { let $c = 16; $f($($arg),*) }
            32 => { let $c = 32; $f($($arg),*) }
            _ => $f($($arg),*),
        }
    };
}

/// [`Im2col`]'s loop: each image's patches, row by row, from `x` (`n × pixels × c`) into `out`.
#[inline(always)]
fn gather(x: &[f32], idx: &[u32], pixels: usize, c: usize, out: &mut [f32]) {
    let row = idx.len() * c;
    for (img, cols) in x.chunks_exact(pixels * c).zip(out.chunks_exact_mut(row)) {
        for (&src, dst) in idx.iter().zip(cols.chunks_exact_mut(c)) {
            let src = src as usize;
            if src < pixels {
                dst.copy_from_slice(&img[src * c..(src + 1) * c]);
            } else {
                dst.fill(0.0);
            }
        }
    }
}

/// [`Col2im`]'s loop: each patch row of `g` added onto the pixel it was copied from, in patch
/// order.
#[inline(always)]
fn scatter_add(g: &[f32], idx: &[u32], pixels: usize, c: usize, out: &mut [f32]) {
    let row = idx.len() * c;
    for (img, cols) in out.chunks_exact_mut(pixels * c).zip(g.chunks_exact(row)) {
        for (&dst, src) in idx.iter().zip(cols.chunks_exact(c)) {
            let dst = dst as usize;
            if dst < pixels {
                for (o, v) in img[dst * c..(dst + 1) * c].iter_mut().zip(src) {
                    *o += v;
                }
            }
        }
    }
}

/// [`Im2col`]'s arithmetic on slices: the patches (`idx` from [`patch_index`]) of the images `x`
/// (`n × pixels × c`) into `out` (`(n·out²) × (9·c)`), zeros in its padding entries (so one buffer
/// serves layers of any geometry).
pub(crate) fn im2col(x: &[f32], idx: &[u32], pixels: usize, c: usize, out: &mut [f32]) {
    by_channels!(c, gather(x, idx, pixels, c, out));
}

/// [`Col2im`]'s arithmetic on slices: the patch gradients `g` added onto `out`
/// (`n × pixels × c`) in patch order.
pub(crate) fn col2im(g: &[f32], idx: &[u32], pixels: usize, c: usize, out: &mut [f32]) {
    by_channels!(c, scatter_add(g, idx, pixels, c, out));
}

#[cfg(test)]
impl CustomOp1 for Im2col {
    fn name(&self) -> &'static str {
        "im2col3x3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let (n, pixels, c) = l.shape().dims3()?;
        let idx = patch_index(self.side, self.stride);
        let row = idx.len() * c;
        let mut out = vec![0.0f32; n * row];
        im2col(x, &idx, pixels, c, &mut out);
        let out_pixels = idx.len() / (KERNEL * KERNEL);
        Ok((
            CpuStorage::F32(out),
            Shape::from((n * out_pixels, KERNEL * KERNEL * c)),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, _, channels) = arg.dims3()?;
        let op = Col2im {
            side: self.side,
            stride: self.stride,
            n,
            channels,
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

#[cfg(test)]
impl CustomOp1 for Col2im {
    fn name(&self) -> &'static str {
        "col2im3x3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = contiguous_f32(s, l, self.name())?;
        let (pixels, c) = (self.side * self.side, self.channels);
        let idx = patch_index(self.side, self.stride);
        let row = idx.len() * c;
        if g.len() != self.n * row {
            candle_core::bail!(
                "{}: {} gradients for {} patches",
                self.name(),
                g.len(),
                self.n * row
            );
        }
        let mut out = vec![0.0f32; self.n * pixels * c];
        col2im(g, &idx, pixels, c, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((self.n, pixels, c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::nn::{Arch, Vars, constants};
    use crate::learn::task::Dataset;
    use candle_core::Device;

    fn cnn() -> Cnn {
        Cnn {
            shape: CnnShape {
                channels: [4, 8],
                blocks: 3,
            },
            side: 8,
            classes: 10,
        }
    }

    #[test]
    fn fifteen_named_layers_with_conv_shapes() {
        let net = cnn();
        let w = net.init(&mut sim::rng::stream(1, "cnn"));
        assert_eq!(w.layers.len(), 15);
        let names: Vec<&str> = w.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names[..3], ["stem", "s0.b0.conv1", "s0.b0.conv2"]);
        assert_eq!(names[7], "down");
        assert_eq!(names[14], "head");
        assert_eq!((w.layers[0].d_out, w.layers[0].d_in), (4, 9));
        assert_eq!((w.layers[7].d_out, w.layers[7].d_in), (8, 36));
        assert_eq!((w.layers[14].d_out, w.layers[14].d_in), (10, 8));
        // stem 64·9·4 + 6 blocks' convs at 8×8×4 + down 16·36·8 + 6 at 4×4×8 + head 80.
        let macs = 64.0 * 36.0 + 6.0 * 64.0 * 144.0 + 16.0 * 288.0 + 6.0 * 16.0 * 576.0 + 80.0;
        assert_eq!(net.macs(), macs);
        assert_eq!(net.param_count(), w.len());
    }

    /// Candle's `conv2d` on NCHW images, the reference for [`conv`].
    fn candle_conv(x: &Tensor, w: &[f32], b: &[f32], spec: &LayerSpec, stride: usize) -> Tensor {
        let k = Tensor::from_slice(w, (spec.c_out, spec.c_in, 3, 3), &Device::Cpu).unwrap();
        let b = Tensor::from_slice(b, (1, spec.c_out, 1, 1), &Device::Cpu).unwrap();
        x.conv2d(&k, 1, stride, 1, 1)
            .unwrap()
            .broadcast_add(&b)
            .unwrap()
    }

    /// The conv layer's flat weight is PyTorch's `c_out × c_in × 3 × 3` kernel: the im2col
    /// convolution equals candle's `conv2d` (stride 1 and the stride-2 downsampling, several
    /// channels), and a hand-computed pixel of the stem.
    #[test]
    fn im2col_convolution_equals_candle_conv2d_in_pytorch_layout() {
        let net = cnn();
        let w = net.init(&mut sim::rng::stream(2, "cnn"));
        let specs = net.layers();
        let layers = constants(&w).unwrap();
        let mut rng = sim::rng::stream(4, "img");
        for (l, stride) in [(0usize, 1usize), (1, 1), (7, 2)] {
            let spec = &specs[l];
            let (n, c) = (3, spec.c_in);
            let img: Vec<f32> = (0..n * c * 64)
                .map(|_| rand::Rng::random::<f32>(&mut rng) - 0.5)
                .collect();
            let nchw = Tensor::from_slice(&img, (n, c, 8, 8), &Device::Cpu).unwrap();
            let want: Vec<f32> = candle_conv(&nchw, &w.layers[l].w, &w.layers[l].b, spec, stride)
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let nhwc = nchw
                .permute((0, 2, 3, 1))
                .unwrap()
                .reshape((n, 64, c))
                .unwrap();
            let got: Vec<f32> = conv(&nhwc, &layers[l], spec, (8, stride))
                .unwrap()
                .permute((0, 2, 1))
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(got.len(), want.len());
            for (g, v) in got.iter().zip(&want) {
                assert!((g - v).abs() < 1e-5, "layer {l}: {g} vs {v}");
            }
            if l == 0 {
                // Pixel (3, 5) of channel 2 by hand: bias + Σ kernel · 3×3 neighbourhood.
                let stem = &w.layers[0];
                let mut hand = stem.b[2];
                for dr in 0..3 {
                    for dc in 0..3 {
                        hand += stem.w[2 * 9 + dr * 3 + dc] * img[(2 + dr) * 8 + 4 + dc];
                    }
                }
                assert!((got[2 * 64 + 3 * 8 + 5] - hand).abs() < 1e-5);
            }
        }
    }

    /// The scatter-add is the gather's adjoint: ⟨im2col(x), g⟩ = ⟨x, col2im(g)⟩ for random x and
    /// g, at both strides and several channel counts; and a padding tap reads zero (the corner
    /// pixel's first tap).
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        let mut rng = sim::rng::stream(8, "adjoint");
        let mut uniform = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| rand::Rng::random::<f32>(&mut rng) - 0.5)
                .collect()
        };
        // 3 channels run the unspecialised loops, 4 and 8 the specialised ones.
        for (stride, c) in [(1, 3), (2, 3), (1, 4), (2, 8)] {
            let (n, side) = (2, 8);
            let x = uniform(n * side * side * c);
            let xt = Tensor::from_slice(&x, (n, side * side, c), &Device::Cpu).unwrap();
            let cols = xt.apply_op1_no_bwd(&Im2col { side, stride }).unwrap();
            let g = uniform(cols.elem_count());
            let gt = Tensor::from_slice(&g, cols.shape(), &Device::Cpu).unwrap();
            let back = gt
                .apply_op1_no_bwd(&Col2im {
                    side,
                    stride,
                    n,
                    channels: c,
                })
                .unwrap();
            let cols: Vec<f32> = cols.flatten_all().unwrap().to_vec1().unwrap();
            let back: Vec<f32> = back.flatten_all().unwrap().to_vec1().unwrap();
            let lhs: f64 = cols.iter().zip(&g).map(|(a, b)| f64::from(a * b)).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| f64::from(a * b)).sum();
            assert!((lhs - rhs).abs() < 1e-4, "stride {stride}: {lhs} vs {rhs}");
            assert!(
                cols[..c].iter().all(|v| *v == 0.0),
                "top-left tap of pixel 0 is padding"
            );
        }
    }

    /// Gradients through the im2col convolution (gather, matmul) equal those through candle's
    /// `conv2d`, for the kernel, the bias and the input.
    #[test]
    fn im2col_gradients_equal_candle_conv2d_gradients() {
        let net = cnn();
        let spec = &net.layers()[7];
        let w = net.init(&mut sim::rng::stream(6, "cnn"));
        let mut rng = sim::rng::stream(7, "img");
        let img: Vec<f32> = (0..2 * spec.c_in * 64)
            .map(|_| rand::Rng::random::<f32>(&mut rng) - 0.5)
            .collect();
        let grads = |im2col: bool| -> Vec<Vec<f32>> {
            let kv = candle_core::Var::from_slice(
                &w.layers[7].w,
                (spec.c_out, spec.c_in * 9),
                &Device::Cpu,
            )
            .unwrap();
            let bv =
                candle_core::Var::from_slice(&w.layers[7].b, spec.c_out, &Device::Cpu).unwrap();
            let xv =
                candle_core::Var::from_slice(&img, (2, spec.c_in, 8, 8), &Device::Cpu).unwrap();
            let out = if im2col {
                let nhwc = xv
                    .permute((0, 2, 3, 1))
                    .unwrap()
                    .reshape((2, 64, spec.c_in))
                    .unwrap();
                conv(
                    &nhwc,
                    &(kv.as_tensor().clone(), bv.as_tensor().clone()),
                    spec,
                    (8, 2),
                )
                .unwrap()
                .permute((0, 2, 1))
                .unwrap()
            } else {
                let k = kv.reshape((spec.c_out, spec.c_in, 3, 3)).unwrap();
                let b = bv.reshape((1, spec.c_out, 1, 1)).unwrap();
                xv.conv2d(&k, 1, 2, 1, 1)
                    .unwrap()
                    .broadcast_add(&b)
                    .unwrap()
                    .flatten_from(2)
                    .unwrap()
            };
            let loss = out.sqr().unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            [kv.as_tensor(), bv.as_tensor(), xv.as_tensor()]
                .iter()
                .map(|t| g.get(t).unwrap().flatten_all().unwrap().to_vec1().unwrap())
                .collect()
        };
        for (mine, theirs) in grads(true).iter().zip(grads(false)) {
            assert_eq!(mine.len(), theirs.len());
            for (a, b) in mine.iter().zip(&theirs) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    /// Every layer receives a gradient through the residual stack (autograd through conv2d), and
    /// SGD learns a task only a spatial model can: the class is a stroke's shape (horizontal,
    /// vertical, diagonal, square) drawn at a random place.
    #[test]
    fn every_layer_gets_a_gradient_and_sgd_learns_shapes() {
        let net = cnn();
        let arch = Arch::Cnn(net);
        let mut rng = sim::rng::stream(3, "cnn");
        let blobs = |n: usize, rng: &mut Rng| {
            use rand::Rng as _;
            let strokes: [&[(usize, usize)]; 4] = [
                &[(0, 0), (0, 1), (0, 2)],
                &[(0, 0), (1, 0), (2, 0)],
                &[(0, 0), (1, 1), (2, 2)],
                &[(0, 0), (0, 1), (1, 0), (1, 1)],
            ];
            let mut d = Dataset {
                dim: 64,
                ..Dataset::default()
            };
            for _ in 0..n {
                let c = rng.random_range(0..4u32);
                let (r0, c0) = (rng.random_range(0..6), rng.random_range(0..6));
                let mut img = vec![0.0f32; 64];
                for (r, col) in strokes[c as usize] {
                    img[(r0 + r) * 8 + c0 + col] = 1.0;
                }
                for v in &mut img {
                    *v += 0.1 * rng.random::<f32>();
                }
                d.x.extend(img);
                d.y.push(c);
            }
            d
        };
        let train_set = blobs(200, &mut rng);
        let test_set = blobs(100, &mut rng);
        let w0 = net.init(&mut rng);

        let vars = Vars::from_weights(&w0).unwrap();
        let (x, y) = train_set.tensors(&(0..16).collect::<Vec<_>>()).unwrap();
        let loss = crate::learn::nn::cross_entropy(&net.forward(&vars.tensors(), &x).unwrap(), &y)
            .unwrap();
        let grads = loss.backward().unwrap();
        for (l, (wv, _)) in vars.layers.iter().enumerate() {
            let g = grads.get(wv.as_tensor()).expect("gradient");
            let n = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(n > 0.0, "layer {l} has a zero gradient");
        }

        let (loss0, acc0) = arch.loss_and_accuracy(&w0, &test_set).unwrap();
        let w1 = arch.train(&w0, &train_set, 15, 10, 0.02, &mut rng).unwrap();
        let (loss1, acc1) = arch.loss_and_accuracy(&w1, &test_set).unwrap();
        // Four classes (chance 0.25); the unnormalised deep stack trains noisily on 200 images.
        assert!(
            acc1 > 0.5 && loss1 < 0.6 * loss0,
            "{loss0} {acc0} → {loss1} {acc1}"
        );
        assert_eq!(w1.with_flat(&w1.flatten()), w1);
    }
}
