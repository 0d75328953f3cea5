//! Named dense layers ([`Weights`], the container every aggregator, defense and attack works on),
//! the networks ([`Arch`]: the MLP, ReLU between layers, or the residual CNN), softmax
//! cross-entropy and SGD. Training runs graph-free ([`crate::learn::step`]); the same networks as
//! candle `Var`s with `loss.backward()` stay in the tests as the reference it is compared with.

use candle_core::{D, Result, Tensor};
#[cfg(test)]
use candle_core::{Device, Var};
#[cfg(test)]
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use sim::rng::Rng;

use super::cnn::Cnn;
use super::step;
use super::task::Dataset;

/// One dense layer `y = x·Wᵀ + b`, `W` stored row-major as `d_out × d_in` (the PyTorch convention, so a
/// LoRA update is `B·A` with `B: d_out × r`, `A: r × d_in`).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Layer name (`fc0`, `fc1`, …).
    pub name: String,
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
    /// Weight, `d_out × d_in`, row-major.
    pub w: Vec<f32>,
    /// Bias, `d_out`.
    pub b: Vec<f32>,
}

impl Layer {
    /// Number of scalar parameters (weight and bias).
    pub fn len(&self) -> usize {
        self.w.len() + self.b.len()
    }

    /// Whether the layer holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The model's parameters as named layers, input to output.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Layers in forward order.
    pub layers: Vec<Layer>,
}

impl Weights {
    /// He-initialised MLP with layer widths `widths` (`[d_in, h1, …, classes]`), biases zero.
    pub fn init(widths: &[usize], rng: &mut Rng) -> Self {
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let (d_in, d_out) = (w[0], w[1]);
                let normal = Normal::new(0.0f32, (2.0 / d_in as f32).sqrt()).expect("finite std");
                Layer {
                    name: format!("fc{i}"),
                    d_in,
                    d_out,
                    w: (0..d_in * d_out).map(|_| normal.sample(rng)).collect(),
                    b: vec![0.0; d_out],
                }
            })
            .collect();
        Self { layers }
    }

    /// All parameters concatenated layer by layer (weight then bias).
    pub fn flatten(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.len());
        for l in &self.layers {
            v.extend_from_slice(&l.w);
            v.extend_from_slice(&l.b);
        }
        v
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.layers.iter().map(Layer::len).sum()
    }

    /// Whether there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy with the parameters replaced by `flat` (same layout as [`Weights::flatten`]).
    pub fn with_flat(&self, flat: &[f32]) -> Self {
        let mut out = self.clone();
        let mut at = 0;
        for l in &mut out.layers {
            let (nw, nb) = (l.w.len(), l.b.len());
            l.w.copy_from_slice(&flat[at..at + nw]);
            l.b.copy_from_slice(&flat[at + nw..at + nw + nb]);
            at += nw + nb;
        }
        out
    }

    /// `[start, end)` of each layer inside [`Weights::flatten`].
    pub fn layer_ranges(&self) -> Vec<(usize, usize)> {
        let mut at = 0;
        self.layers
            .iter()
            .map(|l| {
                let r = (at, at + l.len());
                at += l.len();
                r
            })
            .collect()
    }
}

/// `Σ pᵢ·wᵢ` layer by layer (FedAvg's aggregate); `p` sums to 1.
pub fn weighted_average(ws: &[Weights], p: &[f64]) -> Weights {
    let mut out = ws[0].clone();
    for (l, layer) in out.layers.iter_mut().enumerate() {
        for (j, v) in layer.w.iter_mut().enumerate() {
            *v = ws
                .iter()
                .zip(p)
                .map(|(w, q)| q * f64::from(w.layers[l].w[j]))
                .sum::<f64>() as f32;
        }
        for (j, v) in layer.b.iter_mut().enumerate() {
            *v = ws
                .iter()
                .zip(p)
                .map(|(w, q)| q * f64::from(w.layers[l].b[j]))
                .sum::<f64>() as f32;
        }
    }
    out
}

#[cfg(test)]
/// Candle variables of one model, in layer order.
pub struct Vars {
    /// `(weight, bias)` per layer.
    pub layers: Vec<(Var, Var)>,
}

#[cfg(test)]
impl Vars {
    /// Variables holding a copy of `w`.
    pub fn from_weights(w: &Weights) -> Result<Self> {
        let dev = Device::Cpu;
        let layers = w
            .layers
            .iter()
            .map(|l| {
                Ok((
                    Var::from_slice(&l.w, (l.d_out, l.d_in), &dev)?,
                    Var::from_slice(&l.b, l.d_out, &dev)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Reads the variables back into a copy of `shape` (names and widths).
    pub fn to_weights(&self, shape: &Weights) -> Result<Weights> {
        let mut out = shape.clone();
        for (l, (w, b)) in out.layers.iter_mut().zip(&self.layers) {
            l.w = w.as_tensor().flatten_all()?.to_vec1()?;
            l.b = b.to_vec1()?;
        }
        Ok(out)
    }

    /// Every variable, weights and biases.
    pub fn all(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// Weight and bias tensors per layer (for [`forward`]).
    pub fn tensors(&self) -> Vec<(Tensor, Tensor)> {
        self.layers
            .iter()
            .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
            .collect()
    }
}

#[cfg(test)]
/// Constant (non-trainable) tensors of `w`, per layer.
pub fn constants(w: &Weights) -> Result<Vec<(Tensor, Tensor)>> {
    let dev = Device::Cpu;
    w.layers
        .iter()
        .map(|l| {
            Ok((
                Tensor::from_slice(&l.w, (l.d_out, l.d_in), &dev)?,
                Tensor::from_slice(&l.b, l.d_out, &dev)?,
            ))
        })
        .collect()
}

#[cfg(test)]
/// Forward pass of the MLP `layers` on `x` (`n × d_in`): ReLU between layers, logits out.
pub fn forward(layers: &[(Tensor, Tensor)], x: &Tensor) -> Result<Tensor> {
    let mut h = x.clone();
    for (i, (w, b)) in layers.iter().enumerate() {
        h = h.matmul(&w.t()?)?.broadcast_add(b)?;
        if i + 1 < layers.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

/// Mean softmax cross-entropy of `logits` (`n × C`) against labels `y` (`n`, u32).
pub fn cross_entropy(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let picked = shifted.gather(&y.unsqueeze(1)?, 1)?;
    (lse - picked)?.mean_all()
}

#[cfg(test)]
/// One SGD step `v ← v − lr·∂loss/∂v` on `vars` (variables without a gradient are left alone).
pub fn sgd_step(loss: &Tensor, vars: &[Var], lr: f64) -> Result<()> {
    let grads = loss.backward()?;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            v.set(&(v.as_tensor() - (g * lr)?)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
/// Minibatches of `data` for `epochs` passes, shuffled by `rng`: `(x, y)` tensors.
pub fn batches(
    data: &Dataset,
    epochs: usize,
    batch: usize,
    rng: &mut Rng,
) -> Result<Vec<(Tensor, Tensor)>> {
    let mut out = Vec::new();
    let mut idx: Vec<usize> = (0..data.len()).collect();
    for _ in 0..epochs {
        idx.shuffle(rng);
        for chunk in idx.chunks(batch.max(1)) {
            out.push(data.tensors(chunk)?);
        }
    }
    Ok(out)
}

/// A network architecture: how a [`Weights`] turns inputs into logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// The dense MLP (ReLU between layers).
    Mlp,
    /// The residual CNN of [`Cnn`] over square one-channel images.
    Cnn(Cnn),
}

impl Arch {
    #[cfg(test)]
    /// Logits of `x` (`n × d_in`) under the layer tensors `layers`.
    pub fn forward(&self, layers: &[(Tensor, Tensor)], x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Mlp => forward(layers, x),
            Self::Cnn(net) => net.forward(layers, x),
        }
    }

    /// Multiply-accumulates of one forward pass of `w` per example.
    pub fn macs(&self, w: &Weights) -> f64 {
        match self {
            Self::Mlp => w.layers.iter().map(|l| (l.d_in * l.d_out) as f64).sum(),
            Self::Cnn(net) => net.macs(),
        }
    }

    /// FLOPs of SGD over `examples` example-passes of `w`: 6 per multiply-accumulate (2 forward,
    /// 4 backward), as [`crate::learn::net::sgd_flops`] counts them for the MLP.
    pub fn sgd_flops(&self, w: &Weights, examples: usize) -> f64 {
        6.0 * self.macs(w) * examples as f64
    }

    /// Trains every variable of `w` on `data` with SGD (minibatches of `batch` for `epochs` passes,
    /// shuffled by `rng`); returns the trained weights ([`Arch::train_layers`] on every layer).
    pub fn train(
        &self,
        w: &Weights,
        data: &Dataset,
        epochs: usize,
        batch: usize,
        lr: f64,
        rng: &mut Rng,
    ) -> Result<Weights> {
        self.train_layers(w, data, None, (epochs, batch, lr), rng)
    }

    /// SGD on the layers `only` of `w` (every layer when `None`; the others keep their values)
    /// over `data` (minibatches of `batch` for `epochs` passes, shuffled by `rng`), by the
    /// graph-free step of [`crate::learn::step`]: the numbers of `Arch::train_autograd`.
    pub fn train_layers(
        &self,
        w: &Weights,
        data: &Dataset,
        only: Option<&[usize]>,
        sgd: (usize, usize, f64),
        rng: &mut Rng,
    ) -> Result<Weights> {
        step::train(self, w, data, only, sgd, rng)
    }

    /// [`Arch::train_layers`] through candle's autograd on `Arch::forward` (the reference
    /// [`crate::learn::step`] is tested against).
    #[cfg(test)]
    pub(crate) fn train_autograd(
        &self,
        w: &Weights,
        data: &Dataset,
        only: Option<&[usize]>,
        (epochs, batch, lr): (usize, usize, f64),
        rng: &mut Rng,
    ) -> Result<Weights> {
        if data.is_empty() {
            return Ok(w.clone());
        }
        let vars = Vars::from_weights(w)?;
        let trained: Vec<Var> = vars
            .layers
            .iter()
            .enumerate()
            .filter(|(l, _)| only.is_none_or(|set| set.contains(l)))
            .flat_map(|(_, (w, b))| [w.clone(), b.clone()])
            .collect();
        for (x, y) in batches(data, epochs, batch, rng)? {
            let loss = cross_entropy(&self.forward(&vars.tensors(), &x)?, &y)?;
            sgd_step(&loss, &trained, lr)?;
        }
        vars.to_weights(w)
    }

    /// Fraction of `data` classified correctly by `w`.
    pub fn accuracy(&self, w: &Weights, data: &Dataset) -> Result<f64> {
        Ok(self.loss_and_accuracy(w, data)?.1)
    }

    /// Mean cross-entropy and fraction correct of `w` on `data` (`(0, 0)` when `data` is empty).
    pub fn loss_and_accuracy(&self, w: &Weights, data: &Dataset) -> Result<(f64, f64)> {
        step::loss_and_accuracy(self, w, data)
    }

    /// [`Arch::loss_and_accuracy`] through candle's `Arch::forward` (the reference
    /// [`crate::learn::step`] is tested against).
    #[cfg(test)]
    pub(crate) fn loss_and_accuracy_autograd(
        &self,
        w: &Weights,
        data: &Dataset,
    ) -> Result<(f64, f64)> {
        if data.is_empty() {
            return Ok((0.0, 0.0));
        }
        let (x, y) = data.all_tensors()?;
        let logits = self.forward(&constants(w)?, &x)?;
        let loss = f64::from(cross_entropy(&logits, &y)?.to_scalar::<f32>()?);
        let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        let hits = pred.iter().zip(&data.y).filter(|(p, y)| p == y).count();
        Ok((loss, hits as f64 / data.len() as f64))
    }
}

/// Trains every variable of the MLP `w` on `data` with SGD ([`Arch::train`]).
pub fn train(
    w: &Weights,
    data: &Dataset,
    epochs: usize,
    batch: usize,
    lr: f64,
    rng: &mut Rng,
) -> Result<Weights> {
    Arch::Mlp.train(w, data, epochs, batch, lr, rng)
}

/// Fraction of `data` classified correctly by the MLP `w`.
pub fn accuracy(w: &Weights, data: &Dataset) -> Result<f64> {
    Arch::Mlp.accuracy(w, data)
}

/// Mean cross-entropy and fraction correct of the MLP `w` on `data` (`(0, 0)` when `data` is empty).
pub fn loss_and_accuracy(w: &Weights, data: &Dataset) -> Result<(f64, f64)> {
    Arch::Mlp.loss_and_accuracy(w, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::task::{Prototypes, TaskShape};

    #[test]
    fn sgd_learns_a_separable_task() {
        let mut rng = sim::rng::stream(1, "t");
        let task = Prototypes::new(
            TaskShape {
                dim: 8,
                classes: 3,
                modes: 1,
                separation: 3.0,
                noise: 0.5,
            },
            &mut rng,
        );
        let train_set = task.sample(300, &[1.0; 3], &mut rng);
        let test_set = task.sample(300, &[1.0; 3], &mut rng);
        let w0 = Weights::init(&[8, 16, 3], &mut rng);
        let before = accuracy(&w0, &test_set).unwrap();
        let w1 = train(&w0, &train_set, 5, 32, 0.1, &mut rng).unwrap();
        let after = accuracy(&w1, &test_set).unwrap();
        assert!(after > 0.9 && after > before, "{before} → {after}");
        let (loss, acc) = loss_and_accuracy(&w1, &test_set).unwrap();
        assert_eq!(acc, after);
        assert!(loss > 0.0 && loss < 1.0, "{loss}");
        assert_eq!(w1.with_flat(&w1.flatten()), w1);
    }
}
