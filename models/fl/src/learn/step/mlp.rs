//! The MLP's [`Pass`] (`crate::learn::nn::forward`: affine layers, ReLU between them), each
//! layer candle's GEMM on the batch.

use super::{Pass, column_sums, matmul};
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
            let pre = &mut self.pre[k];
            pre.resize(n * l.d_out, 0.0);
            // h.matmul(w.t()).broadcast_add(b), then relu() between layers.
            let input = &self.inputs[k];
            matmul(
                (n, l.d_out, l.d_in),
                (input, 1, l.d_in),
                (&l.w, l.d_in, 1),
                pre,
            );
            for row in pre.chunks_exact_mut(l.d_out) {
                for (v, b) in row.iter_mut().zip(&l.b) {
                    *v += b;
                }
            }
            if k + 1 < depth {
                let (pre, next) = (&self.pre[k], &mut self.inputs[k + 1]);
                next.clear();
                next.extend(pre.iter().map(|v| v.max(0.0)));
            }
        }
        self.pre[depth - 1].clone()
    }

    fn backward(&mut self, w: &Weights, dlogits: &[f32], n: usize, grads: &mut Weights) {
        let depth = w.layers.len();
        let mut g = dlogits[..n * w.layers[depth - 1].d_out].to_vec();
        for k in (0..depth).rev() {
            let (l, d) = (&w.layers[k], &mut grads.layers[k]);
            if k + 1 < depth {
                // relu backward: grad · (pre ≥ 0).
                for (gv, v) in g.iter_mut().zip(&self.pre[k]) {
                    if *v < 0.0 || v.is_nan() {
                        *gv = 0.0;
                    }
                }
            }
            column_sums(&g, l.d_out, &mut d.b);
            // rhs_grad = input.t().matmul(g) (d_in × d_out), transposed into w's d_out × d_in.
            let mut dwt = vec![0.0f32; l.d_in * l.d_out];
            let input = &self.inputs[k];
            matmul(
                (l.d_in, l.d_out, n),
                (input, l.d_in, 1),
                (&g, 1, l.d_out),
                &mut dwt,
            );
            for o in 0..l.d_out {
                for i in 0..l.d_in {
                    d.w[o * l.d_in + i] = dwt[i * l.d_out + o];
                }
            }
            if k > 0 {
                // lhs_grad = g.matmul(w) (n × d_in).
                let mut dx = vec![0.0f32; n * l.d_in];
                matmul(
                    (n, l.d_in, l.d_out),
                    (&g, 1, l.d_out),
                    (&l.w, 1, l.d_in),
                    &mut dx,
                );
                g = dx;
            }
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
