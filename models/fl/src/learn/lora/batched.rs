//! Local LoRA training of every client of a round in one stacked step.
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
//!
//! The step runs without an autograd graph ([`GraphFree`]): the stacked graph's forward and
//! backward written out, each product the GEMM candle's CPU matmul makes for it, so the adapters
//! are candle's autograd's bit for bit (tested against that graph, kept in the tests). The
//! optimiser steps stay candle tensor ops on the stacked variables.

use candle_core::{D, Device, Result, Tensor, Var};
use rand::seq::SliceRandom;
use sim::rng::Rng;

use super::adapter::{Adapters, Lora};
use super::params::LocalOptimizer;
use crate::learn::common::Sgd;
use crate::learn::nn::Weights;
use crate::learn::step;
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

/// One step's rows: per active client (in slot order) its minibatch, padded to `batch` rows of
/// weight 0.
struct StepRows {
    active: usize,
    batch: usize,
    /// Row of each example in the clients' stacked examples.
    rows: Vec<u32>,
    labels: Vec<u32>,
    /// 1 / the client's minibatch size (0 for padding).
    weights: Vec<f32>,
}

/// The gradients of one step's summed loss w.r.t. each layer's stacked `A` (`None` when frozen)
/// and `B`, in their stacked layouts.
type StepGradients = Vec<(Option<Vec<f32>>, Vec<f32>)>;

/// Computes a step's gradients from the stacked adapters and the step's rows.
trait Gradients {
    /// The gradients of `step`'s summed weighted loss at the adapters of `layers`.
    fn gradients(&mut self, layers: &[StackedLora], step: &StepRows) -> Result<StepGradients>;
}

/// Trains every client's adapters from `start` on the frozen `base` for `local.epochs` passes
/// over its data (minibatch `local.batch`, learning rate `local.lr`) with `opt`; client `k`
/// shuffles with `rngs[k]`. `A` stays fixed when `freeze_a`. Returns the adapters per client.
/// Each step's gradients come graph-free ([`GraphFree`]): the numbers of candle's autograd over
/// the stacked graph, which the tests keep as the reference and compare with for equality.
pub fn train_clients(
    base: &Weights,
    start: &Adapters,
    freeze_a: bool,
    clients: &[&Dataset],
    rngs: &mut [Rng],
    (local, opt): (Sgd, LocalOptimizer),
) -> Result<Vec<Adapters>> {
    let mut grads = GraphFree::new(base, clients)?;
    train_with(&mut grads, (start, freeze_a), clients, rngs, (local, opt))
}

/// [`train_clients`] with the step gradients of `grads`.
fn train_with(
    grads: &mut dyn Gradients,
    (start, freeze_a): (&Adapters, bool),
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
    // Row offset of each client's examples in the stacked examples.
    let mut offset = vec![0; clients.len()];
    let mut rows_so_far = 0;
    for (k, d) in clients.iter().enumerate() {
        offset[k] = rows_so_far;
        rows_so_far += d.len();
    }
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
        let mut step = StepRows {
            active,
            batch,
            rows: Vec::with_capacity(active * batch),
            labels: Vec::with_capacity(active * batch),
            weights: Vec::with_capacity(active * batch),
        };
        for &k in order.iter().take(active) {
            let chunk = &plans[k][s];
            let w = 1.0 / chunk.len() as f32;
            for j in 0..batch {
                match chunk.get(j) {
                    Some(&i) => {
                        step.rows.push((offset[k] + i) as u32);
                        step.labels.push(clients[k].y[i]);
                        step.weights.push(w);
                    }
                    None => {
                        step.rows.push(offset[k] as u32);
                        step.labels.push(0);
                        step.weights.push(0.0);
                    }
                }
            }
        }
        let g = grads.gradients(&layers, &step)?;
        let t = i32::try_from(s + 1).unwrap_or(i32::MAX);
        for (st, (ga, gb)) in layers.iter_mut().zip(g) {
            if let (Ok(a), Some(ga)) = (&mut st.a, ga) {
                let shape = a.var.as_tensor().shape().clone();
                a.step(&Tensor::from_vec(ga, shape, &dev)?, local.lr, t)?;
            }
            let shape = st.b.var.as_tensor().shape().clone();
            st.b.step(&Tensor::from_vec(gb, shape, &dev)?, local.lr, t)?;
        }
    }
    for (slot, &k) in order.iter().enumerate().take(active) {
        out[k] = read_out(&layers, slot, start)?;
    }
    Ok(out)
}

/// One frozen layer: `Wᵀ` (`d_in × d_out`, row-major, as the stacked graph holds it) and `b`.
struct FrozenLayer {
    wt: Vec<f32>,
    b: Vec<f32>,
    d_in: usize,
    d_out: usize,
}

impl FrozenLayer {
    /// `x·Wᵀ + b` for `rows` rows of `x` (candle's `x.matmul(wt)`, both contiguous, then
    /// `broadcast_add(b)`).
    fn affine(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * self.d_out];
        step::matmul(
            (rows, self.d_out, self.d_in),
            (x, 1, self.d_in),
            (&self.wt, 1, self.d_out),
            &mut out,
        );
        step::add_bias(&mut out, &self.b);
        out
    }
}

/// The rows `rows` of `src` (rows of `width`), stacked (candle's `index_select` on dimension 0).
fn gather_rows(src: &[f32], rows: &[u32], width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        let at = r as usize * width;
        out.extend_from_slice(&src[at..at + width]);
    }
    out
}

/// The stacked step without a graph: per layer `z = h·Wᵀ + b + (h·Aₖᵀ)·Bₖᵀ` and its adjoint, each
/// product the GEMM candle's CPU matmul makes for it (per client for the stacked 3-D products,
/// with the transposed views' strides; [`step::matmul`]), the cross-entropy on the logits through
/// candle itself. What the autograd adds on top — zeros plus a gradient, masks as 0/1 factors — is
/// written as candle computes it, so NaN and ∞ (a diverging run) propagate as they did.
struct GraphFree {
    frozen: Vec<FrozenLayer>,
    /// Every client's examples, stacked (`rows × d_in₀`).
    x_all: Vec<f32>,
    /// Every client's examples' frozen layer-0 term `x·W₀ᵀ + b₀` (`rows × d_out₀`).
    p0_all: Vec<f32>,
}

impl GraphFree {
    fn new(base: &Weights, clients: &[&Dataset]) -> Result<Self> {
        let frozen: Vec<FrozenLayer> = base
            .layers
            .iter()
            .map(|l| {
                let mut wt = vec![0.0f32; l.d_in * l.d_out];
                for o in 0..l.d_out {
                    for i in 0..l.d_in {
                        wt[i * l.d_out + o] = l.w[o * l.d_in + i];
                    }
                }
                FrozenLayer {
                    wt,
                    b: l.b.clone(),
                    d_in: l.d_in,
                    d_out: l.d_out,
                }
            })
            .collect();
        let f0 = &frozen[0];
        let mut x_all = Vec::with_capacity(clients.iter().map(|d| d.x.len()).sum());
        for d in clients {
            x_all.extend_from_slice(&d.x);
        }
        let rows_all = x_all.len() / f0.d_in.max(1);
        let p0_all = if rows_all > 0 {
            f0.affine(&x_all, rows_all)
        } else {
            Vec::new()
        };
        Ok(Self {
            frozen,
            x_all,
            p0_all,
        })
    }
}

/// `dst[k] = lhs[k] · rhs[k]` for each of `clients` stacked matrices (candle's batched CPU
/// matmul: one GEMM per client at the stacks' strides); the views' strides are per matrix,
/// `skips` the distance between consecutive clients' matrices (lhs, rhs).
fn stacked_matmul(
    clients: usize,
    (m, n, k): (usize, usize, usize),
    (lhs, rhs): (step::View<'_>, step::View<'_>),
    skips: (usize, usize),
    dst: &mut [f32],
) {
    for c in 0..clients {
        step::matmul(
            (m, n, k),
            (&lhs.0[c * skips.0..], lhs.1, lhs.2),
            (&rhs.0[c * skips.1..], rhs.1, rhs.2),
            &mut dst[c * m * n..(c + 1) * m * n],
        );
    }
}

/// A tensor's values, flat.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1()
}

impl Gradients for GraphFree {
    fn gradients(&mut self, layers: &[StackedLora], step: &StepRows) -> Result<StepGradients> {
        let (kc, bt) = (step.active, step.batch);
        let rows = kc * bt;
        let depth = self.frozen.len();
        // Forward, keeping each layer's input h and pre-activation z.
        let f0 = &self.frozen[0];
        let mut h = gather_rows(&self.x_all, &step.rows, f0.d_in);
        let mut inputs: Vec<Vec<f32>> = Vec::with_capacity(depth);
        let mut pre: Vec<Vec<f32>> = Vec::with_capacity(depth);
        let mut us: Vec<Vec<f32>> = Vec::with_capacity(depth);
        let mut adapters: Vec<(Vec<f32>, Vec<f32>, usize)> = Vec::with_capacity(depth);
        for (l, (st, f)) in layers.iter().zip(&self.frozen).enumerate() {
            let a = values(match &st.a {
                Ok(p) => p.var.as_tensor(),
                Err(t) => t,
            })?;
            let b = values(st.b.var.as_tensor())?;
            let r = a.len() / (kc * f.d_in).max(1);
            // u = h.matmul(a.t()): per client (bt × d_in)·(d_in × r), a.t()'s strides (d_in, 1).
            let mut u = vec![0.0f32; rows * r];
            stacked_matmul(
                kc,
                (bt, r, f.d_in),
                ((&h, 1, f.d_in), (&a, f.d_in, 1)),
                (bt * f.d_in, r * f.d_in),
                &mut u,
            );
            // lora = u.matmul(b.t()): per client (bt × r)·(r × d_out), b.t()'s strides (r, 1).
            let mut z = vec![0.0f32; rows * f.d_out];
            stacked_matmul(
                kc,
                (bt, f.d_out, r),
                ((&u, 1, r), (&b, r, 1)),
                (bt * r, f.d_out * r),
                &mut z,
            );
            // base_term + lora.
            let base = if l == 0 {
                gather_rows(&self.p0_all, &step.rows, f.d_out)
            } else {
                f.affine(&h, rows)
            };
            for (zv, bv) in z.iter_mut().zip(&base) {
                *zv += bv;
            }
            let next: Vec<f32> = if l + 1 < depth {
                z.iter().map(|v| v.max(0.0)).collect()
            } else {
                Vec::new()
            };
            inputs.push(std::mem::replace(&mut h, next));
            us.push(u);
            pre.push(z);
            adapters.push((a, b, r));
        }
        let logits = pre[depth - 1].clone();
        let mut g = weighted_ce_gradient(logits, step)?;
        // Backward, last layer first.
        let mut out: StepGradients = Vec::with_capacity(depth);
        for l in (0..depth).rev() {
            let f = &self.frozen[l];
            let (a, b, r) = &adapters[l];
            let (h, u, r) = (&inputs[l], &us[l], *r);
            if l + 1 < depth {
                // relu: sum_grad = 0 + grad · (z ≥ 0).
                for (gv, zv) in g.iter_mut().zip(&pre[l]) {
                    *gv = 0.0 + *gv * if *zv >= 0.0 { 1.0 } else { 0.0 };
                }
            }
            // lora = u.matmul(bᵀ): ∂u = g.matmul(b); ∂bᵀ = u.t().matmul(g), transposed into b.
            let mut du = vec![0.0f32; rows * r];
            stacked_matmul(
                kc,
                (bt, r, f.d_out),
                ((&g, 1, f.d_out), (b, 1, r)),
                (bt * f.d_out, f.d_out * r),
                &mut du,
            );
            let mut dbt = vec![0.0f32; kc * r * f.d_out];
            stacked_matmul(
                kc,
                (r, f.d_out, bt),
                ((u, r, 1), (&g, 1, f.d_out)),
                (bt * r, bt * f.d_out),
                &mut dbt,
            );
            let db = transpose_stack(&dbt, kc, (r, f.d_out));
            // u = h.matmul(aᵀ): ∂aᵀ = h.t().matmul(∂u), transposed into a; ∂h = ∂u.matmul(a).
            let da = match layers[l].a {
                Ok(_) => {
                    let mut dat = vec![0.0f32; kc * f.d_in * r];
                    stacked_matmul(
                        kc,
                        (f.d_in, r, bt),
                        ((h, f.d_in, 1), (&du, 1, r)),
                        (bt * f.d_in, bt * r),
                        &mut dat,
                    );
                    Some(transpose_stack(&dat, kc, (f.d_in, r)))
                }
                Err(_) => None,
            };
            out.push((da, db));
            if l == 0 {
                break;
            }
            let mut dh = vec![0.0f32; rows * f.d_in];
            stacked_matmul(
                kc,
                (bt, f.d_in, r),
                ((&du, 1, r), (a, 1, f.d_in)),
                (bt * r, r * f.d_in),
                &mut dh,
            );
            // base = h.matmul(wt) + b: ∂h += g.matmul(wt.t()), wt.t()'s strides (d_out, 1).
            let mut dh_base = vec![0.0f32; rows * f.d_in];
            step::matmul(
                (rows, f.d_in, f.d_out),
                (&g, 1, f.d_out),
                (&f.wt, f.d_out, 1),
                &mut dh_base,
            );
            for (d, e) in dh.iter_mut().zip(&dh_base) {
                *d += *e;
            }
            g = dh;
        }
        out.reverse();
        Ok(out)
    }
}

/// `[k, p, q] → [k, q, p]` for `k` stacked `p × q` matrices.
fn transpose_stack(x: &[f32], k: usize, (p, q): (usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for c in 0..k {
        let (src, dst) = (
            &x[c * p * q..(c + 1) * p * q],
            &mut out[c * p * q..(c + 1) * p * q],
        );
        for i in 0..p {
            for j in 0..q {
                dst[j * p + i] = src[i * q + j];
            }
        }
    }
    out
}

/// The gradient w.r.t. `logits` (`rows × classes`) of `Σ weights · CE(logits, labels)` (the
/// padded rows weigh 0), through candle's own ops.
fn weighted_ce_gradient(logits: Vec<f32>, step: &StepRows) -> Result<Vec<f32>> {
    let dev = Device::Cpu;
    let rows = step.labels.len();
    let classes = logits.len() / rows.max(1);
    let logits = Var::from_tensor(&Tensor::from_vec(logits, (rows, classes), &dev)?)?;
    let labels = Tensor::from_slice(&step.labels, (rows, 1), &dev)?;
    let weights = Tensor::from_slice(&step.weights, rows, &dev)?;
    let loss = weighted_ce(logits.as_tensor(), &labels, &weights)?;
    let grads = loss.backward()?;
    let d = grads
        .get(logits.as_tensor())
        .ok_or_else(|| candle_core::Error::Msg("cross-entropy: no logit gradient".into()))?;
    values(d)
}

/// `Σ weights · CE(logits, labels)`, the stable log-sum-exp form.
fn weighted_ce(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let ce = (lse - shifted.gather(labels, 1)?)?.squeeze(1)?;
    (ce * weights)?.sum_all()
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

    /// The stacked graph in candle's autograd (the production step before it ran graph-free): the
    /// reference [`GraphFree`] is compared with for equality.
    struct Autograd {
        x_all: Tensor,
        frozen: Vec<(Tensor, Tensor)>,
        p0_all: Tensor,
    }

    impl Autograd {
        fn new(base: &Weights, clients: &[&Dataset]) -> Self {
            let dev = Device::Cpu;
            let dim = base.layers[0].d_in;
            let x: Vec<f32> = clients.iter().flat_map(|d| d.x.iter().copied()).collect();
            let x_all = Tensor::from_vec(x.clone(), (x.len() / dim, dim), &dev).unwrap();
            let frozen: Vec<(Tensor, Tensor)> = base
                .layers
                .iter()
                .map(|l| {
                    let w = Tensor::from_slice(&l.w, (l.d_out, l.d_in), &dev).unwrap();
                    let b = Tensor::from_slice(&l.b, l.d_out, &dev).unwrap();
                    (w.t().unwrap().contiguous().unwrap(), b)
                })
                .collect();
            let p0_all = x_all
                .matmul(&frozen[0].0)
                .unwrap()
                .broadcast_add(&frozen[0].1)
                .unwrap();
            Self {
                x_all,
                frozen,
                p0_all,
            }
        }
    }

    impl Gradients for Autograd {
        fn gradients(&mut self, layers: &[StackedLora], step: &StepRows) -> Result<StepGradients> {
            let dev = Device::Cpu;
            let (active, batch) = (step.active, step.batch);
            let rows = Tensor::from_vec(step.rows.clone(), active * batch, &dev)?;
            let labels = Tensor::from_slice(&step.labels, (active * batch, 1), &dev)?;
            let weights = Tensor::from_slice(&step.weights, active * batch, &dev)?;
            let dim = self.x_all.dim(1)?;
            let mut h = self
                .x_all
                .index_select(&rows, 0)?
                .reshape((active, batch, dim))?;
            for (l, (st, (wt, b))) in layers.iter().zip(&self.frozen).enumerate() {
                let a = match &st.a {
                    Ok(p) => p.var.as_tensor(),
                    Err(t) => t,
                };
                let lora = h.matmul(&a.t()?)?.matmul(&st.b.var.as_tensor().t()?)?;
                let d_out = wt.dim(1)?;
                let base_term = if l == 0 {
                    self.p0_all
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
            let loss = weighted_ce(&h.reshape((active * batch, classes))?, &labels, &weights)?;
            let grads = loss.backward()?;
            let of = |t: &Tensor| values(grads.get(t).expect("a gradient"));
            layers
                .iter()
                .map(|st| {
                    let ga = match &st.a {
                        Ok(p) => Some(of(p.var.as_tensor())?),
                        Err(_) => None,
                    };
                    Ok((ga, of(st.b.var.as_tensor())?))
                })
                .collect()
        }
    }

    /// A 3-layer base with rank-2 adapters whose `B` is non-zero (so both factors get gradients
    /// from the first step), and four clients of 23, 0, 40 and 7 examples (different step
    /// counts, padded last batches), drawn from `rng`.
    fn setting(mut rng: Rng) -> (Weights, Adapters, Vec<Dataset>) {
        let base = Weights::init(&[12, 8, 6, 3], &mut rng);
        let mut start = crate::learn::lora::adapter::init_adapters(&base, 2, &mut rng);
        let normal = Normal::new(0.0f32, 0.3).unwrap();
        for ad in &mut start {
            ad.b.iter_mut().for_each(|v| *v = normal.sample(&mut rng));
        }
        let data = [23, 0, 40, 7]
            .iter()
            .map(|&n| dataset(n, 12, 3, &mut rng))
            .collect();
        (base, start, data)
    }

    /// Bit patterns of every adapter value (NaN compares equal to the same NaN).
    fn bits(a: &[Adapters]) -> Vec<u32> {
        a.iter()
            .flatten()
            .flat_map(|l| l.a.iter().chain(&l.b))
            .map(|v| v.to_bits())
            .collect()
    }

    /// The graph-free step trains to candle's autograd's adapters bit for bit: SGD and Adam, `A`
    /// trained and frozen, clients of different sizes (padded batches, shrinking stack), and a
    /// learning rate that makes the adapters overflow (∞ and NaN propagate as in candle).
    #[test]
    fn the_graph_free_step_is_candles_stacked_autograd_bit_for_bit() {
        let (base, start, data) = setting(sim::rng::stream(6, "graph-free"));
        let refs: Vec<&Dataset> = data.iter().collect();
        let mut overflowed = false;
        for (opt, lr) in [
            (LocalOptimizer::Sgd, 0.2),
            (LocalOptimizer::Adam, 0.01),
            (LocalOptimizer::Sgd, 1e6),
        ] {
            for freeze_a in [false, true] {
                let local = Sgd {
                    epochs: 2,
                    batch: 5,
                    lr,
                };
                let streams: Vec<Rng> = (0..4)
                    .map(|k| sim::rng::stream(9, &format!("client/{k}")))
                    .collect();
                let run = |grads: &mut dyn Gradients| {
                    let mut rngs = streams.clone();
                    train_with(grads, (&start, freeze_a), &refs, &mut rngs, (local, opt)).unwrap()
                };
                let ours = run(&mut GraphFree::new(&base, &refs).unwrap());
                let reference = run(&mut Autograd::new(&base, &refs));
                assert_eq!(bits(&ours), bits(&reference), "{opt:?} lr {lr} {freeze_a}");
                overflowed |= ours
                    .iter()
                    .flatten()
                    .any(|l| l.b.iter().any(|v| !v.is_finite()));
            }
        }
        assert!(overflowed, "the large learning rate should overflow");
    }

    #[test]
    fn the_stack_trains_every_client_as_if_alone() {
        let (base, start, data) = setting(sim::rng::stream(5, "batched"));
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
