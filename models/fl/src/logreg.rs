//! Multinomial logistic regression trained with mini-batch SGD: the participants' real local
//! training (FedProx's model for Synthetic(α, β)). Layers: `w` (C × D) and `b` (C).
//!
//! Cost model: one forward and backward pass over one example costs ≈ 6·C·D FLOPs (2 forward,
//! 4 backward, the usual dense-layer count), so a local round costs 6·C·D·samples·epochs FLOPs.

use rand::Rng as _;
use sim::rng::Rng;

use super::data::{Federated, Shard};
use super::traits::{ClientUpdate, Eval, Layer, LocalTrainer, ModelParams, PluginError, TrainCost};

/// SGD hyper-parameters of the local solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Local epochs per round.
    pub epochs: u32,
    /// Mini-batch size.
    pub batch: usize,
}

/// Logistic-regression participants over a [`Federated`] data set.
#[derive(Debug, Clone)]
pub struct LogRegTrainer {
    /// The data (participant shards + test set).
    pub data: Federated,
    /// Local solver.
    pub sgd: Sgd,
}

impl LogRegTrainer {
    fn dims(&self) -> (usize, usize) {
        let d = self
            .data
            .test
            .dim
            .max(self.data.shards.first().map_or(0, |s| s.dim));
        (self.data.classes, d)
    }
}

/// Softmax probabilities of example `x` under (`w`, `b`) into `p`.
fn probs(w: &[f32], b: &[f32], x: &[f32], p: &mut [f32]) {
    let d = x.len();
    let mut max = f32::NEG_INFINITY;
    for (c, pc) in p.iter_mut().enumerate() {
        let z = b[c]
            + w[c * d..(c + 1) * d]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum::<f32>();
        *pc = z;
        max = max.max(z);
    }
    let mut s = 0.0;
    for pc in p.iter_mut() {
        *pc = (*pc - max).exp();
        s += *pc;
    }
    for pc in p.iter_mut() {
        *pc /= s;
    }
}

/// Runs `sgd` on `shard` starting from `model` (layers `w`, `b`); returns the mean training loss.
pub fn sgd_train(model: &mut ModelParams, shard: &Shard, sgd: &Sgd, rng: &mut Rng) -> f64 {
    let n = shard.len();
    if n == 0 {
        return 0.0;
    }
    let (wl, bl) = model.layers.split_at_mut(1);
    let (w, b) = (&mut wl[0].values, &mut bl[0].values);
    let (c, d) = (b.len(), shard.dim);
    let mut order: Vec<usize> = (0..n).collect();
    let mut p = vec![0f32; c];
    let mut gw = vec![0f32; c * d];
    let mut gb = vec![0f32; c];
    let (mut loss, mut seen) = (0.0f64, 0usize);
    for _ in 0..sgd.epochs {
        for i in (1..n).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for batch in order.chunks(sgd.batch.max(1)) {
            gw.iter_mut().for_each(|g| *g = 0.0);
            gb.iter_mut().for_each(|g| *g = 0.0);
            for &i in batch {
                let x = shard.row(i);
                probs(w, b, x, &mut p);
                let y = shard.y[i] as usize;
                loss -= f64::from(p[y].max(1e-12).ln());
                seen += 1;
                for cls in 0..c {
                    let e = p[cls] - if cls == y { 1.0 } else { 0.0 };
                    gb[cls] += e;
                    for (g, xv) in gw[cls * d..(cls + 1) * d].iter_mut().zip(x) {
                        *g += e * xv;
                    }
                }
            }
            let step = sgd.lr / batch.len() as f32;
            for (wv, g) in w.iter_mut().zip(&gw) {
                *wv -= step * g;
            }
            for (bv, g) in b.iter_mut().zip(&gb) {
                *bv -= step * g;
            }
        }
    }
    loss / seen.max(1) as f64
}

/// Loss and accuracy of `model` on `shard`.
pub fn evaluate(model: &ModelParams, shard: &Shard) -> Eval {
    let (w, b) = (&model.layers[0].values, &model.layers[1].values);
    let mut p = vec![0f32; b.len()];
    let (mut loss, mut correct) = (0.0, 0usize);
    for i in 0..shard.len() {
        probs(w, b, shard.row(i), &mut p);
        let y = shard.y[i] as usize;
        loss -= f64::from(p[y].max(1e-12).ln());
        let arg = p
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |a, (k, &v)| if v > a.1 { (k, v) } else { a },
            )
            .0;
        correct += usize::from(arg == y);
    }
    let n = shard.len().max(1) as f64;
    Eval {
        loss: loss / n,
        accuracy: correct as f64 / n,
    }
}

/// A zero model for `classes` × `dim`.
pub fn zero_model(classes: usize, dim: usize) -> ModelParams {
    ModelParams::new(vec![
        Layer::zeros("w", &[classes, dim]),
        Layer::zeros("b", &[classes]),
    ])
}

impl LocalTrainer for LogRegTrainer {
    fn num_clients(&self) -> usize {
        self.data.shards.len()
    }

    fn init(&mut self, _rng: &mut Rng) -> ModelParams {
        let (c, d) = self.dims();
        zero_model(c, d)
    }

    fn train(
        &mut self,
        client: usize,
        global: &ModelParams,
        rng: &mut Rng,
    ) -> Result<ClientUpdate, PluginError> {
        let shard = &self.data.shards[client];
        let mut local = global.clone();
        let train_loss = sgd_train(&mut local, shard, &self.sgd, rng);
        Ok(ClientUpdate {
            client,
            delta: local.sub(global),
            samples: shard.len(),
            train_loss,
        })
    }

    fn cost(&self, client: usize, global: &ModelParams) -> TrainCost {
        let (c, d) = self.dims();
        let n = self.data.shards[client].len() as f64;
        TrainCost {
            flops: 6.0 * (c * d) as f64 * n * f64::from(self.sgd.epochs),
            download_bytes: global.bytes(),
            upload_bytes: global.bytes(),
        }
    }

    fn evaluate(&self, global: &ModelParams) -> Result<Eval, PluginError> {
        Ok(evaluate(global, &self.data.test))
    }
}
