//! Ditto (Li, Hu, Beirami, Smith, ICML 2021, Algorithm 1): every client trains the received global
//! model on its data (the update it uploads for FedAvg) and, alongside, its own personal model `v`
//! on `CE(v) + μ/2·‖v − g‖²`, with `g` the received global model; the personal model is what it uses.

use candle_core::Result;
use sim::rng::Rng;

use crate::learn::nn::{Arch, Weights};
use crate::learn::step;
use crate::learn::task::Dataset;

/// One round of Ditto on `data` with the network `arch`: the global copy to upload and the new
/// personal model. Each step's two gradients come from the graph-free [`step::Backprop`], the
/// proximal term's `μ·(v − g)` as candle's backward computes it (`((v − g)·μ/2)·2`): the numbers
/// of candle's autograd over the summed loss (tested against it).
pub fn train_ditto(
    arch: &Arch,
    global: &Weights,
    personal: &Weights,
    data: &Dataset,
    (epochs, batch, lr): (usize, usize, f64),
    mu: f64,
    rng: &mut Rng,
) -> Result<(Weights, Weights)> {
    if data.is_empty() {
        return Ok((global.clone(), personal.clone()));
    }
    let mut backprop = step::Backprop::new(arch, batch.min(data.len()));
    let (mut g, mut v) = (global.clone(), personal.clone());
    // candle's affine takes μ/2 as f32; with μ = 0 it drops the term from the graph.
    let half_mu = (mu / 2.0) as f32;
    for (x, y) in step::minibatches(data, epochs, batch, rng) {
        let (_, dg) = backprop.gradient(&g, &x, &y)?;
        let (_, mut dv) = backprop.gradient(&v, &x, &y)?;
        if mu != 0.0 {
            for ((d, vl), gl) in dv.layers.iter_mut().zip(&v.layers).zip(&global.layers) {
                let params = d.w.iter_mut().chain(d.b.iter_mut());
                let anchors = vl.w.iter().chain(&vl.b).zip(gl.w.iter().chain(&gl.b));
                for (d, (v, g)) in params.zip(anchors) {
                    *d += (v - g) * half_mu * 2.0 + 0.0;
                }
            }
        }
        step::sgd_update(&mut g, &dg, lr, None);
        step::sgd_update(&mut v, &dv, lr, None);
    }
    Ok((g, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::nn::{self, Vars};
    use crate::learn::task::{Prototypes, TaskShape};
    use candle_core::Tensor;

    /// The candle-autograd [`train_ditto`] the graph-free one reproduces.
    fn train_ditto_autograd(
        arch: &Arch,
        global: &Weights,
        personal: &Weights,
        data: &Dataset,
        (epochs, batch, lr): (usize, usize, f64),
        mu: f64,
        rng: &mut Rng,
    ) -> Result<(Weights, Weights)> {
        if data.is_empty() {
            return Ok((global.clone(), personal.clone()));
        }
        let received = nn::constants(global)?;
        let g = Vars::from_weights(global)?;
        let v = Vars::from_weights(personal)?;
        let mut all = g.all();
        all.extend(v.all());
        for (x, y) in nn::batches(data, epochs, batch, rng)? {
            let shared = nn::cross_entropy(&arch.forward(&g.tensors(), &x)?, &y)?;
            let own = nn::cross_entropy(&arch.forward(&v.tensors(), &x)?, &y)?;
            let mut prox: Option<Tensor> = None;
            for ((vw, vb), (gw, gb)) in v.tensors().iter().zip(&received) {
                let d = ((vw - gw)?.sqr()?.sum_all()? + (vb - gb)?.sqr()?.sum_all()?)?;
                prox = Some(match prox {
                    Some(p) => (p + d)?,
                    None => d,
                });
            }
            let mut loss = (shared + own)?;
            if let Some(p) = prox {
                loss = (loss + (p * (mu / 2.0))?)?;
            }
            let grads = loss.backward()?;
            for var in &all {
                if let Some(d) = grads.get(var.as_tensor()) {
                    var.set(&(var.as_tensor() - (d * lr)?)?)?;
                }
            }
        }
        Ok((g.to_weights(global)?, v.to_weights(personal)?))
    }

    /// The graph-free round is candle's autograd round bit for bit, with and without the
    /// proximal term, on the MLP and the CNN.
    #[test]
    fn a_round_is_candles_autograd_bit_for_bit() {
        use crate::learn::step::tests::{examples, mlp_and_cnn};
        let mut rng = sim::rng::stream(5, "ditto-round");
        let images = examples(30, 64, 6);
        let nets = mlp_and_cnn(&mut rng);
        for (arch, global) in nets {
            let personal = arch.train(&global, &images, 1, 10, 0.1, &mut rng).unwrap();
            for mu in [0.0, 0.1] {
                let sgd = (2, 8, 0.1);
                let stream = || sim::rng::stream(2, "d");
                let ours = train_ditto(&arch, &global, &personal, &images, sgd, mu, &mut stream());
                let reference = train_ditto_autograd(
                    &arch,
                    &global,
                    &personal,
                    &images,
                    sgd,
                    mu,
                    &mut stream(),
                );
                let (ours, reference) = (ours.unwrap(), reference.unwrap());
                assert_ne!(ours.1, personal, "{arch:?}");
                assert_eq!(ours, reference, "{arch:?} μ {mu}");
            }
        }
    }

    /// A huge μ pins the personal model to the global one; μ = 0 lets it move freely.
    #[test]
    fn the_proximal_term_pulls_the_personal_model_to_the_global_one() {
        let mut rng = sim::rng::stream(4, "ditto");
        let shape = TaskShape::easy(5, 3);
        let data = Prototypes::new(shape, &mut rng).sample(60, &[1.0; 3], &mut rng);
        let g = Weights::init(&[5, 6, 3], &mut rng);
        let dist = |mu: f64, rng: &mut Rng| {
            let (_, v) = train_ditto(&Arch::Mlp, &g, &g, &data, (2, 10, 0.05), mu, rng).unwrap();
            v.flatten()
                .iter()
                .zip(g.flatten())
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum::<f64>()
        };
        let free = dist(0.0, &mut sim::rng::stream(1, "a"));
        let pinned = dist(15.0, &mut sim::rng::stream(1, "a"));
        assert!(free > 0.0 && pinned < 0.5 * free, "{pinned} vs {free}");
    }
}
