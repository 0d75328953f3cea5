//! pFedNavi-style layer-wise personalization: client `k` keeps local weights `v_k` and one mixing logit
//! `θ_{k,l}` per layer; its model is `w_{k,l} = g_l + λ_{k,l}·(v_{k,l} − g_l)` with `λ = σ(θ)`. Local
//! training descends `CE(w_k)` in `v_k` and `θ_k` (θ with its own learning rate) with `g` the received
//! global model held fixed, so λ learns, per layer, how client-specific that layer should be; a copy of
//! `g` trained on `CE(g)` is what the client uploads for FedAvg.

use candle_core::{Device, Result, Tensor, Var};
use sim::rng::Rng;

use crate::learn::nn::{self, Vars, Weights};
use crate::learn::task::Dataset;

/// One client's personal state.
#[derive(Debug, Clone, PartialEq)]
pub struct MixClient {
    /// Local weights `v_k`.
    pub local: Weights,
    /// Mixing logits `θ_{k,l}`, one per layer.
    pub logits: Vec<f32>,
}

impl MixClient {
    /// A client starting from the global model with λ = σ(0) = ½ on every layer.
    pub fn new(global: &Weights) -> Self {
        Self {
            local: global.clone(),
            logits: vec![0.0; global.layers.len()],
        }
    }

    /// λ per layer.
    pub fn lambdas(&self) -> Vec<f64> {
        self.logits
            .iter()
            .map(|t| 1.0 / (1.0 + (-f64::from(*t)).exp()))
            .collect()
    }

    /// The client's model on top of `global`.
    pub fn personalized(&self, global: &Weights) -> Weights {
        let mut out = global.clone();
        for ((o, v), lam) in out
            .layers
            .iter_mut()
            .zip(&self.local.layers)
            .zip(self.lambdas())
        {
            let lam = lam as f32;
            for (g, l) in o.w.iter_mut().zip(&v.w) {
                *g += lam * (l - *g);
            }
            for (g, l) in o.b.iter_mut().zip(&v.b) {
                *g += lam * (l - *g);
            }
        }
        out
    }
}

/// Mixed layers `g + σ(θ_l)·(v − g)` as candle tensors, `g` the received global model held fixed
/// (σ through tanh: σ(t) = (1 + tanh(t/2))/2).
fn mixed(g: &[(Tensor, Tensor)], v: &Vars, theta: &Var) -> Result<Vec<(Tensor, Tensor)>> {
    let lam = ((theta.as_tensor() * 0.5)?.tanh()? + 1.0)?.affine(0.5, 0.0)?;
    g.iter()
        .zip(&v.layers)
        .enumerate()
        .map(|(l, ((gw, gb), (vw, vb)))| {
            let lam_l = lam.narrow(0, l, 1)?;
            let w = (gw + (vw.as_tensor() - gw)?.broadcast_mul(&lam_l)?)?;
            let b = (gb + (vb.as_tensor() - gb)?.broadcast_mul(&lam_l)?)?;
            Ok((w, b))
        })
        .collect()
}

/// One round of local training; returns the global copy to upload and the client's new state.
pub fn train_mixed(
    global: &Weights,
    client: &MixClient,
    data: &Dataset,
    (epochs, batch, lr): (usize, usize, f64),
    mix_lr: f64,
    rng: &mut Rng,
) -> Result<(Weights, MixClient)> {
    if data.is_empty() {
        return Ok((global.clone(), client.clone()));
    }
    let received = nn::constants(global)?;
    let g = Vars::from_weights(global)?;
    let v = Vars::from_weights(&client.local)?;
    let theta = Var::from_slice(&client.logits, client.logits.len(), &Device::Cpu)?;
    let mut weights = g.all();
    weights.extend(v.all());
    for (x, y) in nn::batches(data, epochs, batch, rng)? {
        let own = nn::cross_entropy(&nn::forward(&mixed(&received, &v, &theta)?, &x)?, &y)?;
        let shared = nn::cross_entropy(&nn::forward(&g.tensors(), &x)?, &y)?;
        let grads = (own + shared)?.backward()?;
        for var in &weights {
            if let Some(d) = grads.get(var.as_tensor()) {
                var.set(&(var.as_tensor() - (d * lr)?)?)?;
            }
        }
        if let Some(d) = grads.get(theta.as_tensor()) {
            theta.set(&(theta.as_tensor() - (d * mix_lr)?)?)?;
        }
    }
    Ok((
        g.to_weights(global)?,
        MixClient {
            local: v.to_weights(&client.local)?,
            logits: theta.as_tensor().to_vec1()?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::task::{ClientView, Prototypes, TaskShape};

    #[test]
    fn mixing_gradient_matches_finite_differences() {
        let mut rng = sim::rng::stream(8, "mix");
        let shape = TaskShape {
            dim: 4,
            classes: 3,
            modes: 1,
            separation: 2.0,
            noise: 0.5,
        };
        let data = Prototypes::new(shape, &mut rng).sample(16, &[1.0; 3], &mut rng);
        let g = Weights::init(&[4, 5, 3], &mut rng);
        let mut c = MixClient::new(&Weights::init(&[4, 5, 3], &mut rng));
        c.logits = vec![0.3, -0.4];
        let (x, y) = data.all_tensors().unwrap();
        let loss = |logits: &[f32]| {
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
        let vv = Vars::from_weights(&c.local).unwrap();
        let theta = Var::from_slice(&c.logits, 2, &Device::Cpu).unwrap();
        let l = nn::cross_entropy(
            &nn::forward(&mixed(&gv, &vv, &theta).unwrap(), &x).unwrap(),
            &y,
        )
        .unwrap();
        let grad: Vec<f32> = l
            .backward()
            .unwrap()
            .get(theta.as_tensor())
            .unwrap()
            .to_vec1()
            .unwrap();
        for i in 0..2 {
            let h = 1e-2f32;
            let mut up = c.logits.clone();
            up[i] += h;
            let mut dn = c.logits.clone();
            dn[i] -= h;
            let fd = (loss(&up) - loss(&dn)) / (2.0 * f64::from(h));
            assert!(
                (fd - f64::from(grad[i])).abs() < 2e-3,
                "layer {i}: {fd} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn a_permuted_head_becomes_local() {
        let mut rng = sim::rng::stream(9, "mix");
        let shape = TaskShape {
            dim: 6,
            classes: 4,
            modes: 1,
            separation: 2.0,
            noise: 0.4,
        };
        let task = Prototypes::new(shape, &mut rng);
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
        let mut c = MixClient::new(&global);
        let mut g = global.clone();
        for _ in 0..3 {
            let (g2, c2) = train_mixed(&global, &c, &mine, (1, 20, 0.1), 2.0, &mut rng).unwrap();
            g = g2;
            c = c2;
        }
        let lam = c.lambdas();
        assert!(lam[1] > 0.5, "head λ = {}", lam[1]);
        assert!(nn::accuracy(&c.personalized(&g), &mine).unwrap() > 0.8);
    }
}
