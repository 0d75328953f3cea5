//! The MLP's [`Pass`] (`crate::learn::nn::forward`: affine layers, ReLU between them), each
//! layer candle's GEMM on the batch.

use super::{Pass, asked, dense_backward, dense_forward, relu_backward, zero_others};
use crate::learn::nn::Weights;

/// Activations kept from the forward pass for the backward.
#[derive(Debug, Default)]
pub(super) struct MlpPass {
    /// Per layer: its input (`n × d_in`; the first is the batch).
    inputs: Vec<Vec<f32>>,
    /// Per layer: its affine output (ReLU's argument, except the last layer's: the logits).
    pre: Vec<Vec<f32>>,
}

impl Pass for MlpPass {
    fn forward(&mut self, w: &Weights, x: &[f32], n: usize) -> Vec<f32> {
        let depth = w.layers.len();
        self.inputs.resize(depth, Vec::new());
        self.pre.resize(depth, Vec::new());
        self.inputs[0].clear();
        self.inputs[0].extend_from_slice(&x[..n * w.layers[0].d_in]);
        for (k, l) in w.layers.iter().enumerate() {
            self.pre[k].resize(n * l.d_out, 0.0);
            dense_forward(l, &self.inputs[k], n, &mut self.pre[k]);
            if k + 1 < depth {
                let (pre, next) = (&self.pre[k], &mut self.inputs[k + 1]);
                next.clear();
                next.extend(pre.iter().map(|v| v.max(0.0)));
            }
        }
        self.pre[depth - 1].clone()
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
        let depth = w.layers.len();
        let mut g = dlogits[..n * w.layers[depth - 1].d_out].to_vec();
        for k in (lowest..depth).rev() {
            let (l, d) = (&w.layers[k], &mut grads.layers[k]);
            if k + 1 < depth {
                relu_backward(&mut g, &self.pre[k]);
            }
            let below = k > lowest;
            let mut dx = vec![0.0f32; if below { n * l.d_in } else { 0 }];
            let d = wanted(k).then_some(d);
            dense_backward(l, (&self.inputs[k], &g, n), d, below.then_some(&mut dx[..]));
            g = dx;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::learn::nn::{Arch, Weights};
    use crate::learn::step::tests::{check_against_autograd, examples};

    #[test]
    fn the_mlp_step_is_candles_autograd_bit_for_bit() {
        let w0 = Weights::init(&[64, 16, 12, 10], &mut sim::rng::stream(7, "w"));
        check_against_autograd(&Arch::Mlp, &w0, &examples(43, 64, 3), &[1]);
    }
}
