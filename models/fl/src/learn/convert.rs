//! Conversion between the learning studies' containers ([`Weights`], LoRA [`Adapters`]) and the FL
//! network's [`ModelParams`] (named `f32` layers), so the studies can run through
//! [`crate::network::run_network`].
//!
//! Layer names: dense layer `fc0` becomes `fc0.w` (`d_out × d_in`) and `fc0.b` (`d_out`); adapter `l`
//! becomes `lora_a.l` (`r × d_in`) and `lora_b.l` (`d_out × r`). A model's flat value order is the
//! same as [`Weights::flatten`].

use crate::learn::lora::adapter::{Adapters, Lora};
use crate::learn::nn::Weights;
use crate::traits::{Layer, ModelParams};

/// The named layers of `w`: per dense layer its weight then its bias.
pub fn weight_layers(w: &Weights) -> Vec<Layer> {
    w.layers
        .iter()
        .flat_map(|l| {
            [
                Layer {
                    name: format!("{}.w", l.name),
                    shape: vec![l.d_out, l.d_in],
                    values: l.w.clone(),
                },
                Layer {
                    name: format!("{}.b", l.name),
                    shape: vec![l.d_out],
                    values: l.b.clone(),
                },
            ]
        })
        .collect()
}

/// `w` as a parameter container.
pub fn to_params(w: &Weights) -> ModelParams {
    ModelParams::new(weight_layers(w))
}

fn values<'a>(p: &'a ModelParams, name: &str) -> &'a [f32] {
    &p.layer(name)
        .unwrap_or_else(|| panic!("model has no layer {name}"))
        .values
}

/// The dense layers of `p`, laid out like `like` (names and widths; `p` must hold them).
pub fn to_weights(p: &ModelParams, like: &Weights) -> Weights {
    let mut out = like.clone();
    for l in &mut out.layers {
        l.w.copy_from_slice(values(p, &format!("{}.w", l.name)));
        l.b.copy_from_slice(values(p, &format!("{}.b", l.name)));
    }
    out
}

/// The named layers of `adapters`: per adapter `A` then `B`.
pub fn adapter_layers(adapters: &Adapters) -> Vec<Layer> {
    adapters
        .iter()
        .enumerate()
        .flat_map(|(i, ad)| {
            [
                Layer {
                    name: format!("lora_a.{i}"),
                    shape: vec![ad.rank, ad.d_in],
                    values: ad.a.clone(),
                },
                Layer {
                    name: format!("lora_b.{i}"),
                    shape: vec![ad.d_out, ad.rank],
                    values: ad.b.clone(),
                },
            ]
        })
        .collect()
}

/// The adapters of `p`, laid out like `like` (`p` must hold `lora_a.l` / `lora_b.l` for each).
pub fn to_adapters(p: &ModelParams, like: &Adapters) -> Adapters {
    like.iter()
        .enumerate()
        .map(|(i, ad)| Lora {
            a: values(p, &format!("lora_a.{i}")).to_vec(),
            b: values(p, &format!("lora_b.{i}")).to_vec(),
            ..ad.clone()
        })
        .collect()
}

/// A LoRA model as one container: the base's dense layers, then the adapters.
pub fn lora_params(base: &Weights, adapters: &Adapters) -> ModelParams {
    let mut layers = weight_layers(base);
    layers.extend(adapter_layers(adapters));
    ModelParams::new(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::lora::adapter::init_adapters;

    #[test]
    fn weights_and_adapters_round_trip() {
        let mut rng = sim::rng::stream(5, "convert");
        let w = Weights::init(&[5, 7, 3], &mut rng);
        let p = to_params(&w);
        assert_eq!(p.len(), w.len());
        assert_eq!(p.values().copied().collect::<Vec<_>>(), w.flatten());
        assert_eq!(p.layer("fc1.w").unwrap().shape, vec![3, 7]);
        assert_eq!(to_weights(&p, &w), w);

        let mut ads = init_adapters(&w, 2, &mut rng);
        ads[1].b = vec![0.5; 6];
        let lp = lora_params(&w, &ads);
        assert_eq!(lp.layers.len(), 8);
        assert_eq!(lp.layer("lora_b.1").unwrap().shape, vec![3, 2]);
        assert_eq!(to_weights(&lp, &w), w);
        assert_eq!(to_adapters(&lp, &ads), ads);
    }
}
