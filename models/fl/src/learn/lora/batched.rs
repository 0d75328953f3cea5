//! Local LoRA training of every client of a round in one stacked candle graph.
//!
//! All clients start a round from the same global model: the same frozen base `W` and the same
//! adapters. Client `k`'s adapters are slice `k` of stacked variables (`A: [K, r, d_in]`,
//! `B: [K, d_out, r]`), and one forward/backward pass serves every client at once:
//!
//! ```text
//!   z_k = h_k·Wᵀ + b + (h_k·A_kᵀ)·B_kᵀ        (per layer; ReLU between layers)
//!   loss = Σ_k mean_{i ∈ batch_k} CE(z_k,i, y_k,i)
//! ```
//!
//! The clients' losses are summed, so each client's gradient is exactly the gradient of its own
//! minibatch mean: the stack trains every client as if alone. Each client keeps its own minibatch
//! order (its stream shuffles its indices per epoch, as [`crate::learn::step::minibatches`] does); a
//! shorter last minibatch is padded with rows of zero weight. Clients are ordered by their step
//! count, so the ones still training are always a prefix: when a client runs out of steps its
//! adapters are read out and the stack shrinks (an idle client is never touched, which matters for
//! Adam, whose step would move it even with a zero gradient).
//!
//! The first layer's frozen term `x·W₀ᵀ + b₀` does not change within a round; it is computed once
//! for every client example, so a step only multiplies the rank-r adapter path through `x`.

use candle_core::{D, Device, Result, Tensor, Var};
use rand::seq::SliceRandom;
use sim::rng::Rng;

use super::adapter::{Adapters, Lora};
use super::params::LocalOptimizer;
use crate::learn::common::Sgd;
use crate::learn::nn::Weights;
use crate::learn::task::Dataset;

/// Adam's β₁ (PyTorch's default, as FLoRA's `adamw_torch` uses).
const BETA1: f64 = 0.9;
/// Adam's β₂ (PyTorch's default).
const BETA2: f64 = 0.999;
/// Adam's ε (PyTorch's default).
const EPS: f64 = 1e-8;

/// One client's minibatches: local row indices, epoch after epoch.
fn plan(n: usize, (epochs, batch): (usize, usize), rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    for _ in 0..epochs {
        idx.shuffle(rng);
        out.extend(idx.chunks(batch.max(1)).map(<[usize]>::to_vec));
    }
    out
}

/// A trainable stacked tensor and, under Adam, its moments.
struct Param {
    var: Var,
    moments: Option<(Tensor, Tensor)>,
}

impl Param {
    fn new(t: Tensor, opt: LocalOptimizer) -> Result<Self> {
        let moments = match opt {
            LocalOptimizer::Sgd => None,
            LocalOptimizer::Adam => Some((t.zeros_like()?, t.zeros_like()?)),
        };
        Ok(Self {
            var: Var::from_tensor(&t)?,
            moments,
        })
    }

    /// The first `k` clients' slices (the others have finished).
    fn keep(&mut self, k: usize) -> Result<()> {
        self.var = Var::from_tensor(&self.var.as_tensor().narrow(0, 0, k)?)?;
        if let Some((m, v)) = &mut self.moments {
            *m = m.narrow(0, 0, k)?.contiguous()?;
            *v = v.narrow(0, 0, k)?.contiguous()?;
        }
        Ok(())
    }

    /// One step with gradient `g`; `t` is the (1-based) step count every active client shares.
    fn step(&mut self, g: &Tensor, lr: f64, t: i32) -> Result<()> {
        let p = self.var.as_tensor();
        let next = match &mut self.moments {
            None => (p - g.affine(lr, 0.0)?)?,
            Some((m, v)) => {
                *m = (m.affine(BETA1, 0.0)? + g.affine(1.0 - BETA1, 0.0)?)?;
                *v = (v.affine(BETA2, 0.0)? + g.sqr()?.affine(1.0 - BETA2, 0.0)?)?;
                let (bc1, bc2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
                let denom = v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, EPS)?;
                (p - m.affine(lr / bc1, 0.0)?.div(&denom)?)?
            }
        };
        self.var.set(&next)
    }

    /// Slice `k`, flattened.
    fn slice(&self, k: usize) -> Result<Vec<f32>> {
        self.var.as_tensor().get(k)?.flatten_all()?.to_vec1()
    }
}

/// One layer's stacked adapter: `A` (trainable unless frozen) and `B`.
struct StackedLora {
    a: std::result::Result<Param, Tensor>,
    b: Param,
}

/// Trains every client's adapters from `start` on the frozen `base` for `local.epochs` passes
/// over its data (minibatch `local.batch`, learning rate `local.lr`) with `opt`; client `k`
/// shuffles with `rngs[k]`. `A` stays fixed when `freeze_a`. Returns the adapters per client.
pub fn train_clients(
    base: &Weights,
    start: &Adapters,
    freeze_a: bool,
    clients: &[&Dataset],
    rngs: &mut [Rng],
    (local, opt): (Sgd, LocalOptimizer),
) -> Result<Vec<Adapters>> {
    let dev = Device::Cpu;
    let plans: Vec<Vec<Vec<usize>>> = clients
        .iter()
        .zip(rngs.iter_mut())
        .map(|(d, rng)| plan(d.len(), (local.epochs, local.batch), rng))
        .collect();
    let mut order: Vec<usize> = (0..clients.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(plans[k].len()));
    let mut out: Vec<Adapters> = vec![start.clone(); clients.len()];
    let steps = order.first().map_or(0, |&k| plans[k].len());
    if steps == 0 {
        return Ok(out);
    }
    let dim = base.layers[0].d_in;
    // Every client's examples in one matrix (row offset per client) and their frozen layer-0 term.
    let mut offset = vec![0; clients.len()];
    let mut x_all = Vec::new();
    for (k, d) in clients.iter().enumerate() {
        offset[k] = x_all.len() / dim;
        x_all.extend_from_slice(&d.x);
    }
    let rows_all = x_all.len() / dim;
    let x_all = Tensor::from_vec(x_all, (rows_all, dim), &dev)?;
    let frozen = base
        .layers
        .iter()
        .map(|l| {
            Ok((
                Tensor::from_slice(&l.w, (l.d_out, l.d_in), &dev)?
                    .t()?
                    .contiguous()?,
                Tensor::from_slice(&l.b, l.d_out, &dev)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let p0_all = x_all.matmul(&frozen[0].0)?.broadcast_add(&frozen[0].1)?;
    let mut layers = start
        .iter()
        .map(|ad| {
            let k = clients.len();
            let a = Tensor::from_slice(&ad.a, (1, ad.rank, ad.d_in), &dev)?.repeat((k, 1, 1))?;
            let b = Tensor::from_slice(&ad.b, (1, ad.d_out, ad.rank), &dev)?.repeat((k, 1, 1))?;
            Ok(StackedLora {
                a: if freeze_a {
                    Err(a)
                } else {
                    Ok(Param::new(a, opt)?)
                },
                b: Param::new(b, opt)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let batch = local.batch.max(1);
    let mut active = clients.len();
    for s in 0..steps {
        let still = order.iter().take_while(|&&k| plans[k].len() > s).count();
        if still < active {
            for (slot, &k) in order.iter().enumerate().take(active).skip(still) {
                out[k] = read_out(&layers, slot, start)?;
            }
            for l in &mut layers {
                match &mut l.a {
                    Ok(a) => a.keep(still)?,
                    Err(a) => *a = a.narrow(0, 0, still)?,
                }
                l.b.keep(still)?;
            }
            active = still;
        }
        // The step's rows: per active client its minibatch, padded to `batch` with weight 0.
        let mut rows = Vec::with_capacity(active * batch);
        let mut labels = Vec::with_capacity(active * batch);
        let mut weights = Vec::with_capacity(active * batch);
        for &k in order.iter().take(active) {
            let chunk = &plans[k][s];
            let w = 1.0 / chunk.len() as f32;
            for j in 0..batch {
                match chunk.get(j) {
                    Some(&i) => {
                        rows.push((offset[k] + i) as u32);
                        labels.push(clients[k].y[i]);
                        weights.push(w);
                    }
                    None => {
                        rows.push(offset[k] as u32);
                        labels.push(0);
                        weights.push(0.0);
                    }
                }
            }
        }
        let rows = Tensor::from_vec(rows, active * batch, &dev)?;
        let labels = Tensor::from_vec(labels, (active * batch, 1), &dev)?;
        let weights = Tensor::from_vec(weights, active * batch, &dev)?;
        let mut h = x_all
            .index_select(&rows, 0)?
            .reshape((active, batch, dim))?;
        for (l, (st, (wt, b))) in layers.iter().zip(&frozen).enumerate() {
            let a = match &st.a {
                Ok(p) => p.var.as_tensor(),
                Err(t) => t,
            };
            let lora = h.matmul(&a.t()?)?.matmul(&st.b.var.as_tensor().t()?)?;
            let d_out = wt.dim(1)?;
            let base_term = if l == 0 {
                p0_all
                    .index_select(&rows, 0)?
                    .reshape((active, batch, d_out))?
            } else {
                h.reshape((active * batch, wt.dim(0)?))?
                    .matmul(wt)?
                    .broadcast_add(b)?
                    .reshape((active, batch, d_out))?
            };
            h = (base_term + lora)?;
            if l + 1 < layers.len() {
                h = h.relu()?;
            }
        }
        let classes = h.dim(2)?;
        let logits = h.reshape((active * batch, classes))?;
        let max = logits.max_keepdim(D::Minus1)?.detach();
        let shifted = logits.broadcast_sub(&max)?;
        let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let ce = (lse - shifted.gather(&labels, 1)?)?.squeeze(1)?;
        let loss = (ce * weights)?.sum_all()?;
        let grads = loss.backward()?;
        let t = i32::try_from(s + 1).unwrap_or(i32::MAX);
        for st in &mut layers {
            for p in st.a.iter_mut().chain(std::iter::once(&mut st.b)) {
                if let Some(g) = grads.get(p.var.as_tensor()) {
                    p.step(g, local.lr, t)?;
                }
            }
        }
    }
    for (slot, &k) in order.iter().enumerate().take(active) {
        out[k] = read_out(&layers, slot, start)?;
    }
    Ok(out)
}

/// Slot `slot`'s adapters, laid out like `start`.
fn read_out(layers: &[StackedLora], slot: usize, start: &Adapters) -> Result<Adapters> {
    layers
        .iter()
        .zip(start)
        .map(|(st, ad)| {
            Ok(Lora {
                a: match &st.a {
                    Ok(p) => p.slice(slot)?,
                    Err(_) => ad.a.clone(),
                },
                b: st.b.slice(slot)?,
                ..ad.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand_distr::{Distribution, Normal};

    use super::*;
    use crate::learn::nn;

    /// One client alone, the straightforward way: merged weights `W + B·A` in candle autograd on
    /// [`nn::batches`]; SGD on the variables, or Adam on plain vectors.
    fn reference(
        base: &Weights,
        start: &Adapters,
        freeze_a: bool,
        data: &Dataset,
        (local, opt): (Sgd, LocalOptimizer),
        rng: &mut Rng,
    ) -> Adapters {
        if data.is_empty() {
            return start.clone();
        }
        let dev = Device::Cpu;
        let frozen = nn::constants(base).unwrap();
        let mut vars: Vec<(Var, Var)> = start
            .iter()
            .map(|ad| {
                (
                    Var::from_slice(&ad.a, (ad.rank, ad.d_in), &dev).unwrap(),
                    Var::from_slice(&ad.b, (ad.d_out, ad.rank), &dev).unwrap(),
                )
            })
            .collect();
        let mut moments: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        let batches = nn::batches(data, local.epochs, local.batch, rng).unwrap();
        for (step, (x, y)) in batches.into_iter().enumerate() {
            let layers: Vec<(Tensor, Tensor)> = frozen
                .iter()
                .zip(&vars)
                .map(|((w, b), (a, bb))| {
                    let delta = bb.as_tensor().matmul(a.as_tensor()).unwrap();
                    ((w + delta).unwrap(), b.clone())
                })
                .collect();
            let loss = nn::cross_entropy(&nn::forward(&layers, &x).unwrap(), &y).unwrap();
            let grads = loss.backward().unwrap();
            let mut trainable: Vec<&mut Var> = Vec::new();
            for (a, b) in &mut vars {
                trainable.push(b);
                if !freeze_a {
                    trainable.push(a);
                }
            }
            if moments.is_empty() {
                moments = trainable
                    .iter()
                    .map(|v| (vec![0.0; v.elem_count()], vec![0.0; v.elem_count()]))
                    .collect();
            }
            for (v, (m, s)) in trainable.into_iter().zip(&mut moments) {
                let g: Vec<f32> = grads
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let mut p: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                let t = (step + 1) as i32;
                for i in 0..p.len() {
                    let gi = f64::from(g[i]);
                    match opt {
                        LocalOptimizer::Sgd => p[i] -= (local.lr * gi) as f32,
                        LocalOptimizer::Adam => {
                            let mi = BETA1 * f64::from(m[i]) + (1.0 - BETA1) * gi;
                            let si = BETA2 * f64::from(s[i]) + (1.0 - BETA2) * gi * gi;
                            (m[i], s[i]) = (mi as f32, si as f32);
                            let mhat = mi / (1.0 - BETA1.powi(t));
                            let shat = si / (1.0 - BETA2.powi(t));
                            p[i] -= (local.lr * mhat / (shat.sqrt() + EPS)) as f32;
                        }
                    }
                }
                let shape = v.as_tensor().shape().clone();
                v.set(&Tensor::from_vec(p, shape, &dev).unwrap()).unwrap();
            }
        }
        start
            .iter()
            .zip(&vars)
            .map(|(ad, (a, b))| Lora {
                a: a.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
                b: b.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
                ..ad.clone()
            })
            .collect()
    }

    fn dataset(n: usize, dim: usize, classes: u32, rng: &mut Rng) -> Dataset {
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        Dataset {
            dim,
            x: (0..n * dim).map(|_| normal.sample(rng)).collect(),
            y: (0..n as u32).map(|i| (i * 7 + 3) % classes).collect(),
        }
    }

    fn max_diff(a: &Adapters, b: &Adapters) -> f32 {
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| x.a.iter().zip(&y.a).chain(x.b.iter().zip(&y.b)))
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn the_stack_trains_every_client_as_if_alone() {
        let mut rng = sim::rng::stream(5, "batched");
        let base = Weights::init(&[12, 8, 6, 3], &mut rng);
        let mut start = crate::learn::lora::adapter::init_adapters(&base, 2, &mut rng);
        // Non-zero B, so both factors get gradients from the first step.
        let normal = Normal::new(0.0f32, 0.3).unwrap();
        for ad in &mut start {
            ad.b.iter_mut().for_each(|v| *v = normal.sample(&mut rng));
        }
        // Different sizes (0 to 40 examples): different step counts, padded last batches.
        let data: Vec<Dataset> = [23, 0, 40, 7]
            .iter()
            .map(|&n| dataset(n, 12, 3, &mut rng))
            .collect();
        let refs: Vec<&Dataset> = data.iter().collect();
        for opt in [LocalOptimizer::Sgd, LocalOptimizer::Adam] {
            for freeze_a in [false, true] {
                let local = Sgd {
                    epochs: 2,
                    batch: 5,
                    lr: if opt == LocalOptimizer::Adam {
                        0.01
                    } else {
                        0.2
                    },
                };
                let streams: Vec<Rng> = (0..4)
                    .map(|k| sim::rng::stream(9, &format!("client/{k}")))
                    .collect();
                let mut batched_rngs = streams.clone();
                let got = train_clients(
                    &base,
                    &start,
                    freeze_a,
                    &refs,
                    &mut batched_rngs,
                    (local, opt),
                )
                .unwrap();
                for (k, d) in data.iter().enumerate() {
                    let mut rng_k = streams[k].clone();
                    let want = reference(&base, &start, freeze_a, d, (local, opt), &mut rng_k);
                    let err = max_diff(&got[k], &want);
                    assert!(err < 2e-5, "{opt:?} freeze_a {freeze_a} client {k}: {err}");
                    // The client's stream advanced exactly as alone.
                    assert_eq!(batched_rngs[k], rng_k, "{opt:?} client {k} stream");
                    if d.is_empty() {
                        assert_eq!(got[k], start);
                    } else {
                        assert!(max_diff(&got[k], &start) > 1e-3, "client {k} trained");
                    }
                    if freeze_a {
                        assert!(got[k].iter().zip(&start).all(|(g, s)| g.a == s.a));
                    }
                }
            }
        }
    }
}
