//! pFedNavi's layer-wise personalization (arXiv 2602.14401: "adaptively identifies client-specific
//! layers via layer-wise mixing coefficients, and performs fine-grained parameter fusion on the
//! selected components"). Client `k` keeps local weights `v_k` and mixing logits `θ_k`; its model is
//! `w_{k,l} = g_l + λ·(v_{k,l} − g_l)`, `λ = σ(θ)`, with `g` the received global model held fixed.
//!
//! 1. **Layer-wise mixing** (warm-up): one logit per layer. Each local step descends, in one
//!    backward pass, `CE(g)` on a minibatch of all the client's data (the copy of `g` it uploads for
//!    FedAvg), `CE(w)` in `v` on a minibatch of its training part, and `CE(w)` in `θ` on a minibatch
//!    of its held-out part — λ is learned on data `v` never trained on, so a layer turns local only
//!    where the local weights generalise better than the global ones (learned on the training data,
//!    local weights always fit better and every λ drifts towards 1).
//! 2. **Selection** ([`MixClient::select`]): a layer whose λ reached the threshold becomes
//!    client-specific; every other layer is the global layer from then on (λ = 0).
//! 3. **Fine-grained fusion** on the selected layers: one logit per output unit (row of `W` and its
//!    bias), initialised at the layer's logit and learned as in 1.
//!
//! The paper's text available to us (the abstract) does not state the threshold or the fusion's
//! granularity; per output unit and a threshold parameter (default ½: local outweighs global) are
//! our reading.

use candle_core::{Device, Result, Tensor, Var};
use sim::rng::Rng;

use crate::learn::nn::{self, Arch, Vars, Weights};
use crate::learn::task::Dataset;

/// σ(t).
fn sigmoid(t: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(t)).exp())
}

/// One client's personal state.
#[derive(Debug, Clone, PartialEq)]
pub struct MixClient {
    /// Local weights `v_k`.
    pub local: Weights,
    /// Mixing logits per layer: one (layer-wise), one per output unit (a selected layer after
    /// selection), or none (a layer left global after selection).
    pub logits: Vec<Vec<f32>>,
    /// Whether selection has happened.
    pub selected: bool,
}

impl MixClient {
    /// A client starting from the global model with λ = σ(0) = ½ on every layer.
    pub fn new(global: &Weights) -> Self {
        Self {
            local: global.clone(),
            logits: vec![vec![0.0]; global.layers.len()],
            selected: false,
        }
    }

    /// Mean λ per layer (0 on a layer left global).
    pub fn lambdas(&self) -> Vec<f64> {
        self.logits
            .iter()
            .map(|t| {
                if t.is_empty() {
                    0.0
                } else {
                    t.iter().map(|v| sigmoid(*v)).sum::<f64>() / t.len() as f64
                }
            })
            .collect()
    }

    /// Whether each layer is client-specific (every layer before selection).
    pub fn client_specific(&self) -> Vec<bool> {
        self.logits.iter().map(|t| !t.is_empty()).collect()
    }

    /// Selection: layers with λ ≥ `threshold` — at most `max_layers` of them, those with the
    /// largest λ (ties: the earlier layer) — get one logit per output unit (starting at the
    /// layer's), the others become global. Once per client; later calls change nothing.
    pub fn select(&mut self, threshold: f64, max_layers: Option<usize>) {
        if self.selected {
            return;
        }
        self.selected = true;
        let lambdas = self.lambdas();
        let mut order: Vec<usize> = (0..lambdas.len())
            .filter(|&l| lambdas[l] >= threshold)
            .collect();
        order.sort_by(|&a, &b| lambdas[b].total_cmp(&lambdas[a]).then(a.cmp(&b)));
        order.truncate(max_layers.unwrap_or(order.len()));
        for (l, (t, layer)) in self.logits.iter_mut().zip(&self.local.layers).enumerate() {
            *t = if order.contains(&l) {
                vec![t.iter().sum::<f32>() / t.len().max(1) as f32; layer.d_out]
            } else {
                Vec::new()
            };
        }
    }

    /// The client's model on top of `global`.
    pub fn personalized(&self, global: &Weights) -> Weights {
        let mut out = global.clone();
        for ((o, v), t) in out
            .layers
            .iter_mut()
            .zip(&self.local.layers)
            .zip(&self.logits)
        {
            if t.is_empty() {
                continue;
            }
            for r in 0..o.d_out {
                let lam = sigmoid(t[if t.len() == 1 { 0 } else { r }]) as f32;
                let row = r * o.d_in..(r + 1) * o.d_in;
                for (g, l) in o.w[row.clone()].iter_mut().zip(&v.w[row]) {
                    *g += lam * (l - *g);
                }
                o.b[r] += lam * (v.b[r] - o.b[r]);
            }
        }
        out
    }
}

/// Mixed layers `g + σ(θ_l)·(v − g)` as candle tensors, `g` the received global model held fixed;
/// a layer without logits is `g`. `θ_l` holds 1 or `d_out` logits (σ through tanh:
/// σ(t) = (1 + tanh(t/2))/2).
fn mixed(
    g: &[(Tensor, Tensor)],
    v: &[(Tensor, Tensor)],
    theta: &[Option<Tensor>],
) -> Result<Vec<(Tensor, Tensor)>> {
    g.iter()
        .zip(v)
        .zip(theta)
        .map(|(((gw, gb), (vw, vb)), t)| {
            let Some(t) = t else {
                return Ok((gw.clone(), gb.clone()));
            };
            let lam = ((t * 0.5)?.tanh()? + 1.0)?.affine(0.5, 0.0)?;
            let col = lam.reshape((lam.dim(0)?, 1))?;
            let w = (gw + (vw - gw)?.broadcast_mul(&col)?)?;
            let b = (gb + (vb - gb)?.broadcast_mul(&lam)?)?;
            Ok((w, b))
        })
        .collect()
}

/// What a client trains on: all its data (the uploaded global copy), its training part (local
/// weights) and its held-out part (mixing logits).
pub struct MixData<'a> {
    /// Training and held-out examples together.
    pub all: &'a Dataset,
    /// Training part.
    pub fit: &'a Dataset,
    /// Held-out part.
    pub holdout: &'a Dataset,
}

/// One round of local training of the network `arch`; returns the global copy to upload and the
/// client's new state.
pub fn train_mixed(
    arch: &Arch,
    global: &Weights,
    client: &MixClient,
    data: &MixData<'_>,
    (epochs, batch, lr): (usize, usize, f64),
    mix_lr: f64,
    rng: &mut Rng,
) -> Result<(Weights, MixClient)> {
    if data.all.is_empty() {
        return Ok((global.clone(), client.clone()));
    }
    let received = nn::constants(global)?;
    let g = Vars::from_weights(global)?;
    let v = Vars::from_weights(&client.local)?;
    let theta: Vec<Option<Var>> = client
        .logits
        .iter()
        .map(|t| {
            (!t.is_empty())
                .then(|| Var::from_slice(t, t.len(), &Device::Cpu))
                .transpose()
        })
        .collect::<Result<_>>()?;
    let theta_t: Vec<Option<Tensor>> = theta
        .iter()
        .map(|t| t.as_ref().map(|t| t.as_tensor().clone()))
        .collect();
    let theta_fixed: Vec<Option<Tensor>> = theta_t
        .iter()
        .map(|t| t.as_ref().map(Tensor::detach))
        .collect();
    let mut weights = g.all();
    weights.extend(v.all());
    let all = nn::batches(data.all, epochs, batch, rng)?;
    let fit = nn::batches(data.fit, epochs, batch, rng)?;
    let held = nn::batches(data.holdout, epochs, batch, rng)?;
    for (i, (x, y)) in all.iter().enumerate() {
        let mut loss = nn::cross_entropy(&arch.forward(&g.tensors(), x)?, y)?;
        let v_now = v.tensors();
        if !fit.is_empty() {
            // Local weights: λ held fixed.
            let (xf, yf) = &fit[i % fit.len()];
            let w = mixed(&received, &v_now, &theta_fixed)?;
            loss = (loss + nn::cross_entropy(&arch.forward(&w, xf)?, yf)?)?;
        }
        if !held.is_empty() {
            // Mixing logits: local weights held fixed, on data they never trained on.
            let (xh, yh) = &held[i % held.len()];
            let v_fixed: Vec<(Tensor, Tensor)> = v_now
                .iter()
                .map(|(w, b)| (w.detach(), b.detach()))
                .collect();
            let w = mixed(&received, &v_fixed, &theta_t)?;
            loss = (loss + nn::cross_entropy(&arch.forward(&w, xh)?, yh)?)?;
        }
        let grads = loss.backward()?;
        for var in &weights {
            if let Some(d) = grads.get(var.as_tensor()) {
                var.set(&(var.as_tensor() - (d * lr)?)?)?;
            }
        }
        for t in theta.iter().flatten() {
            if let Some(d) = grads.get(t.as_tensor()) {
                t.set(&(t.as_tensor() - (d * mix_lr)?)?)?;
            }
        }
    }
    let logits = theta
        .iter()
        .map(|t| {
            t.as_ref()
                .map_or(Ok(Vec::new()), |t| t.as_tensor().to_vec1())
        })
        .collect::<Result<_>>()?;
    Ok((
        g.to_weights(global)?,
        MixClient {
            local: v.to_weights(&client.local)?,
            logits,
            selected: client.selected,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::task::{ClientView, Prototypes, TaskShape};

    /// The autograd gradient of the logits (layer-wise on layer 0, per unit on layer 1) equals
    /// central finite differences of the loss of [`MixClient::personalized`].
    #[test]
    fn mixing_gradient_matches_finite_differences() {
        let mut rng = sim::rng::stream(8, "mix");
        let data = Prototypes::new(TaskShape::easy(4, 3), &mut rng).sample(16, &[1.0; 3], &mut rng);
        let g = Weights::init(&[4, 5, 3], &mut rng);
        let mut c = MixClient::new(&Weights::init(&[4, 5, 3], &mut rng));
        c.logits = vec![vec![0.3], vec![-0.4, 0.2, 0.5]];
        let (x, y) = data.all_tensors().unwrap();
        let loss = |logits: &[Vec<f32>]| {
            let cc = MixClient {
                logits: logits.to_vec(),
                ..c.clone()
            };
            let l = nn::cross_entropy(
                &nn::forward(&nn::constants(&cc.personalized(&g)).unwrap(), &x).unwrap(),
                &y,
            )
            .unwrap();
            f64::from(l.to_scalar::<f32>().unwrap())
        };
        let gv = nn::constants(&g).unwrap();
        let vv = nn::constants(&c.local).unwrap();
        let theta: Vec<Var> = c
            .logits
            .iter()
            .map(|t| Var::from_slice(t, t.len(), &Device::Cpu).unwrap())
            .collect();
        let tt: Vec<Option<Tensor>> = theta.iter().map(|t| Some(t.as_tensor().clone())).collect();
        let l = nn::cross_entropy(
            &nn::forward(&mixed(&gv, &vv, &tt).unwrap(), &x).unwrap(),
            &y,
        )
        .unwrap();
        let grads = l.backward().unwrap();
        for (layer, t) in theta.iter().enumerate() {
            let grad: Vec<f32> = grads.get(t.as_tensor()).unwrap().to_vec1().unwrap();
            for (i, gi) in grad.iter().enumerate() {
                let h = 1e-2f32;
                let mut up = c.logits.clone();
                up[layer][i] += h;
                let mut dn = c.logits.clone();
                dn[layer][i] -= h;
                let fd = (loss(&up) - loss(&dn)) / (2.0 * f64::from(h));
                assert!(
                    (fd - f64::from(*gi)).abs() < 2e-3,
                    "layer {layer} unit {i}: {fd} vs {gi}"
                );
            }
        }
    }

    #[test]
    fn selection_keeps_local_layers_fine_grained_and_makes_the_rest_global() {
        let mut rng = sim::rng::stream(8, "sel");
        let g = Weights::init(&[4, 5, 3], &mut rng);
        let mut c = MixClient::new(&Weights::init(&[4, 5, 3], &mut rng));
        c.logits = vec![vec![2.0], vec![-2.0]];
        c.select(0.5, None);
        assert_eq!(c.logits, vec![vec![2.0; 5], Vec::new()]);
        assert_eq!(c.client_specific(), vec![true, false]);
        assert_eq!(c.lambdas()[1], 0.0);
        let p = c.personalized(&g);
        assert_eq!(p.layers[1], g.layers[1]);
        assert_ne!(p.layers[0], g.layers[0]);
        c.logits[0][0] = -9.0;
        c.select(0.99, Some(1)); // once only
        assert_eq!(c.logits[1], Vec::<f32>::new());
        assert_eq!(c.logits[0].len(), 5);
    }

    /// With a cap, only the layers with the largest λ among those at or above the threshold
    /// become client-specific (ties: the earlier layer).
    #[test]
    fn a_capped_selection_keeps_the_largest_lambdas() {
        let mut rng = sim::rng::stream(8, "cap");
        let mut c = MixClient::new(&Weights::init(&[4, 5, 5, 5, 3], &mut rng));
        c.logits = vec![vec![1.0], vec![3.0], vec![1.0], vec![-1.0]];
        c.select(0.5, Some(2));
        assert_eq!(c.client_specific(), vec![true, true, false, false]);
        assert_eq!(c.logits[1], vec![3.0; 5]);
    }

    /// A client whose labels disagree with the global model's (two swapped pairs) learns, on its
    /// held-out data, to take its output layer from its local weights.
    #[test]
    fn a_permuted_head_becomes_local() {
        let mut rng = sim::rng::stream(9, "mix");
        let task = Prototypes::new(TaskShape::easy(6, 4), &mut rng);
        let plain = task.sample(200, &[1.0; 4], &mut rng);
        let global = nn::train(
            &Weights::init(&[6, 12, 4], &mut rng),
            &plain,
            5,
            20,
            0.1,
            &mut rng,
        )
        .unwrap();
        let view = ClientView {
            offset: vec![0.0; 6],
            labels: vec![1, 0, 3, 2],
        };
        let mine = view.apply(&plain);
        let data = MixData {
            all: &mine,
            fit: &mine.take(150),
            holdout: &Dataset {
                dim: 6,
                x: mine.x[150 * 6..].to_vec(),
                y: mine.y[150..].to_vec(),
            },
        };
        let mut c = MixClient::new(&global);
        for _ in 0..3 {
            c = train_mixed(&Arch::Mlp, &global, &c, &data, (1, 20, 0.1), 2.0, &mut rng)
                .unwrap()
                .1;
        }
        let lam = c.lambdas();
        assert!(lam[1] > 0.5, "head λ = {}", lam[1]);
        assert!(nn::accuracy(&c.personalized(&global), &mine).unwrap() > 0.8);
    }
}
