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

use candle_core::Result;
use sim::rng::Rng;

use crate::learn::nn::{Arch, Weights};
use crate::learn::step;
use crate::learn::task::Dataset;

/// σ(t).
fn sigmoid(t: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(t)).exp())
}

/// The value of output unit `r` in a per-layer (one value) or per-unit list.
fn row_logit<T>(values: &[T], r: usize) -> &T {
    &values[if values.len() == 1 { 0 } else { r }]
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
                let lam = sigmoid(*row_logit(t, r)) as f32;
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

/// λ = σ(θ) of each logit as candle's graph computes it in f32: `((θ·0.5).tanh() + 1)·0.5`, each
/// step one of candle's affine maps (`v·mul + add`); also returns the tanh values (its backward
/// reads them).
fn lambdas_f32(theta: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let th: Vec<f32> = theta.iter().map(|t| (t * 0.5 + 0.0).tanh()).collect();
    let lam = th.iter().map(|v| (v * 1.0 + 1.0) * 0.5 + 0.0).collect();
    (lam, th)
}

/// The mixed model `g + λ·(v − g)` (λ per layer or per output unit; a layer without logits is
/// `g`), the same f32 arithmetic as candle's broadcast ops.
fn mixed(g: &Weights, v: &Weights, theta: &[Vec<f32>]) -> Weights {
    let mut out = g.clone();
    for ((o, v), t) in out.layers.iter_mut().zip(&v.layers).zip(theta) {
        if t.is_empty() {
            continue;
        }
        let lam = lambdas_f32(t).0;
        for r in 0..o.d_out {
            let l = *row_logit(&lam, r);
            for (gw, vw) in o.w[r * o.d_in..(r + 1) * o.d_in]
                .iter_mut()
                .zip(&v.w[r * o.d_in..])
            {
                *gw += (vw - *gw) * l;
            }
            o.b[r] += (v.b[r] - o.b[r]) * l;
        }
    }
    out
}

/// ∂loss/∂θ from the mixed model's gradient `d`: per logit, the sum over the weights it mixes of
/// `d·(v − g)` (candle's broadcast backward: a sum over the broadcast dimensions in
/// [`step::candle_sum`]'s order, the bias's part added after), then back through λ's affine maps
/// and tanh as candle's backward ops compute them.
fn theta_gradient(d: &Weights, g: &Weights, v: &Weights, theta: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(theta.len());
    for (((dl, gl), vl), t) in d.layers.iter().zip(&g.layers).zip(&v.layers).zip(theta) {
        if t.is_empty() {
            out.push(Vec::new());
            continue;
        }
        let dw: Vec<f32> = (dl.w.iter().zip(&vl.w).zip(&gl.w))
            .map(|((d, v), g)| d * (v - g))
            .collect();
        let db: Vec<f32> = (dl.b.iter().zip(&vl.b).zip(&gl.b))
            .map(|((d, v), g)| d * (v - g))
            .collect();
        let dlam: Vec<f32> = if t.len() == dl.d_out {
            (0..dl.d_out)
                .map(|r| step::candle_sum(&dw[r * dl.d_in..(r + 1) * dl.d_in]) + db[r])
                .collect()
        } else {
            vec![step::candle_sum(&dw) + step::candle_sum(&db)]
        };
        let th = lambdas_f32(t).1;
        out.push(
            dlam.iter()
                .zip(&th)
                .map(|(dl, th)| {
                    let dth = (dl * 0.5 + 0.0) * 1.0 + 0.0;
                    (0.0 - dth * (th * th * 1.0 + -1.0)) * 0.5 + 0.0
                })
                .collect(),
        );
    }
    out
}

/// One round of local training of the network `arch`; returns the global copy to upload and the
/// client's new state. Each step's three gradients (of `CE(g)` on all the data, `CE(w)` in the
/// client-specific layers of `v` on the training part, `CE(w)` in `θ` on the held-out part) are
/// independent and come from the graph-free [`step::Backprop`]: the numbers of candle's autograd
/// over the summed loss (tested against it). The last two are needed in the client-specific layers
/// only, so only those are computed.
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
    let mut backprop = step::Backprop::new(arch, batch.min(data.all.len()));
    let (mut g, mut v, mut theta) = (global.clone(), client.local.clone(), client.logits.clone());
    let all = step::minibatches(data.all, epochs, batch, rng);
    let fit = step::minibatches(data.fit, epochs, batch, rng);
    let held = step::minibatches(data.holdout, epochs, batch, rng);
    let specific: Vec<usize> = (0..theta.len()).filter(|&l| !theta[l].is_empty()).collect();
    for (i, (x, y)) in all.iter().enumerate() {
        let (_, dg) = backprop.gradient(&g, x, y)?;
        let w = mixed(global, &v, &theta);
        // Local weights: λ held fixed; ∂/∂v = ∂/∂w · λ on the client-specific layers.
        let dv = if fit.is_empty() {
            None
        } else {
            let (xf, yf) = &fit[i % fit.len()];
            let (_, mut dw) = backprop.gradient_of(&w, (xf, yf), Some(&specific))?;
            for (l, t) in dw.layers.iter_mut().zip(&theta) {
                if t.is_empty() {
                    continue;
                }
                let lam = lambdas_f32(t).0;
                for r in 0..l.d_out {
                    let k = *row_logit(&lam, r);
                    for d in &mut l.w[r * l.d_in..(r + 1) * l.d_in] {
                        *d *= k;
                    }
                    l.b[r] *= k;
                }
            }
            Some(dw)
        };
        // Mixing logits: local weights held fixed, on data they never trained on.
        let dtheta = if held.is_empty() {
            None
        } else {
            let (xh, yh) = &held[i % held.len()];
            let (_, dw) = backprop.gradient_of(&w, (xh, yh), Some(&specific))?;
            Some(theta_gradient(&dw, global, &v, &theta))
        };
        step::sgd_update(&mut g, &dg, lr, None);
        if let Some(dv) = dv {
            step::sgd_update(&mut v, &dv, lr, Some(&specific));
        }
        if let Some(dt) = dtheta {
            let mix_lr = mix_lr as f32;
            for (t, d) in theta.iter_mut().zip(&dt) {
                for (t, d) in t.iter_mut().zip(d) {
                    *t -= d * mix_lr + 0.0;
                }
            }
        }
    }
    Ok((
        g,
        MixClient {
            local: v,
            logits: theta,
            selected: client.selected,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::nn::{self, Vars};
    use crate::learn::task::{ClientView, Prototypes, TaskShape};
    use candle_core::{Device, Tensor, Var};

    /// Mixed layers `g + σ(θ_l)·(v − g)` as candle tensors, `g` the received global model held fixed;
    /// a layer without logits is `g`. `θ_l` holds 1 or `d_out` logits (σ through tanh:
    /// σ(t) = (1 + tanh(t/2))/2).
    fn mixed_tensors(
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

    /// The candle-autograd [`train_mixed`] the graph-free one reproduces.
    fn train_mixed_autograd(
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
                let w = mixed_tensors(&received, &v_now, &theta_fixed)?;
                loss = (loss + nn::cross_entropy(&arch.forward(&w, xf)?, yf)?)?;
            }
            if !held.is_empty() {
                // Mixing logits: local weights held fixed, on data they never trained on.
                let (xh, yh) = &held[i % held.len()];
                let v_fixed: Vec<(Tensor, Tensor)> = v_now
                    .iter()
                    .map(|(w, b)| (w.detach(), b.detach()))
                    .collect();
                let w = mixed_tensors(&received, &v_fixed, &theta_t)?;
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
            &nn::forward(&mixed_tensors(&gv, &vv, &tt).unwrap(), &x).unwrap(),
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

    /// The graph-free round is candle's autograd round bit for bit: on the MLP and the CNN, with
    /// one logit per layer (before selection) and per unit or none (after).
    #[test]
    fn a_round_is_candles_autograd_bit_for_bit() {
        use crate::learn::step::tests::{examples, mlp_and_cnn};
        let mut rng = sim::rng::stream(5, "round");
        let images = examples(50, 64, 6);
        let nets = mlp_and_cnn(&mut rng);
        for (arch, global) in nets {
            let local = arch.train(&global, &images, 1, 10, 0.1, &mut rng).unwrap();
            let mut client = MixClient {
                local,
                logits: (0..global.layers.len())
                    .map(|l| vec![0.3 - 0.2 * l as f32])
                    .collect(),
                selected: false,
            };
            let data = MixData {
                all: &images,
                fit: &images.take(35),
                holdout: &images.subset(&(35..50).collect::<Vec<_>>()),
            };
            for selected in [false, true] {
                if selected {
                    // Even layers client-specific (one logit per unit), odd layers global.
                    for (l, t) in client.logits.iter_mut().enumerate() {
                        *t = vec![if l % 2 == 0 { 0.7 } else { -0.7 }];
                    }
                    client.select(0.5, None);
                    assert!(client.logits.iter().any(Vec::is_empty), "{arch:?}");
                    assert!(client.logits.iter().any(|t| t.len() > 1), "{arch:?}");
                }
                let sgd = (2, 10, 0.1);
                let ours = train_mixed(
                    &arch,
                    &global,
                    &client,
                    &data,
                    sgd,
                    3.0,
                    &mut sim::rng::stream(1, "m"),
                );
                let reference = train_mixed_autograd(
                    &arch,
                    &global,
                    &client,
                    &data,
                    sgd,
                    3.0,
                    &mut sim::rng::stream(1, "m"),
                );
                let (ours, reference) = (ours.unwrap(), reference.unwrap());
                assert_ne!(ours.1.logits, client.logits, "{arch:?}");
                assert_eq!(ours, reference, "{arch:?} selected {selected}");
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
