//! Ditto (Li, Hu, Beirami, Smith, ICML 2021, Algorithm 1): every client trains the received global
//! model on its data (the update it uploads for FedAvg) and, alongside, its own personal model `v`
//! on `CE(v) + μ/2·‖v − g‖²`, with `g` the received global model; the personal model is what it uses.

use candle_core::{Result, Tensor};
use sim::rng::Rng;

use crate::learn::nn::{self, Arch, Vars, Weights};
use crate::learn::task::Dataset;

/// One round of Ditto on `data` with the network `arch`: the global copy to upload and the new
/// personal model.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::task::{Prototypes, TaskShape};

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
