//! Where the heterogeneity sits: an oracle that takes FedAvg's final global model and lets every
//! client fine-tune only some of its layers on its own data (the others frozen at the global
//! model's), against fine-tuning every layer. If the first layers alone recover most of what
//! fine-tuning every layer gains over the global model, the clients differ in those layers: the
//! setting in which choosing which layers to personalise (pFedNavi's selection) should matter. It
//! is a diagnostic of the task, run on FedAvg alone, independent of pFedNavi.

use candle_core::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;
use sim::validate::{Checks, Validate};

use crate::learn::common::Sgd;
use crate::learn::nn::{Arch, Weights};
use crate::learn::task::Dataset;

/// The oracle's settings (the scenario's `oracle:` block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OracleParams {
    /// Each client's fine-tuning of the final global model on all its training data.
    pub sgd: Sgd,
    /// Layer sets (indices in forward order), each fine-tuned alone.
    pub layers: Vec<Vec<usize>>,
}

impl OracleParams {
    /// Checks the sets against a model of `layers` weight layers (keys `oracle.layers.i`).
    pub fn check_layers(&self, layers: usize, c: &mut Checks) {
        for (i, set) in self.layers.iter().enumerate() {
            if set.is_empty() || set.iter().any(|&l| l >= layers) {
                c.fail(
                    &format!("oracle.layers.{i}"),
                    format!(
                        "must list layer indices in [0, {}] (the model has {layers} layers), got {set:?}",
                        layers - 1
                    ),
                );
            }
        }
    }
}

impl Validate for OracleParams {
    fn validate(&self, c: &mut Checks) {
        c.part("sgd", &self.sgd);
    }
}

/// The metric suffix of a layer set: `l0_14` for `[0, 14]`.
pub fn set_name(set: &[usize]) -> String {
    let ids: Vec<String> = set.iter().map(usize::to_string).collect();
    format!("l{}", ids.join("_"))
}

/// Mean test accuracy over the clients of the global model `g` fine-tuned on layers `only` by each
/// client `k` on `train[k]` (shuffled by a fresh `stream(k)`, the same for every set), tested on
/// `test[k]`.
pub fn mean_accuracy(
    arch: &Arch,
    g: &Weights,
    only: Option<&[usize]>,
    sgd: &Sgd,
    (train, test): (&[Dataset], &[Dataset]),
    stream: &dyn Fn(usize) -> Rng,
) -> Result<f64> {
    let mut sum = 0.0;
    for (k, (tr, te)) in train.iter().zip(test).enumerate() {
        let w = arch.train_layers(g, tr, only, sgd.tuple(), &mut stream(k))?;
        sum += arch.accuracy(&w, te)?;
    }
    Ok(sum / train.len().max(1) as f64)
}

/// The share of fine-tuning every layer's gain over the global model that fine-tuning a set
/// recovers: `(set − global) / (all − global)`; NaN when fine-tuning every layer gains nothing.
pub fn recovery(global: f64, all: f64, set: f64) -> f64 {
    if all > global {
        (set - global) / (all - global)
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::task::{Prototypes, TaskShape};

    fn task() -> (Dataset, Weights) {
        let mut rng = sim::rng::stream(6, "oracle");
        let shape = TaskShape::easy(5, 3);
        let data = Prototypes::new(shape, &mut rng).sample(40, &[1.0; 3], &mut rng);
        (data, Weights::init(&[5, 6, 4, 3], &mut rng))
    }

    /// Fine-tuning one layer leaves every other layer as it was; fine-tuning every layer is
    /// ordinary training with the same minibatches.
    #[test]
    fn only_the_chosen_layers_move() {
        let (data, w) = task();
        let sgd = (2, 10, 0.1);
        let one = Arch::Mlp
            .train_layers(&w, &data, Some(&[1]), sgd, &mut sim::rng::stream(1, "a"))
            .unwrap();
        assert_eq!(one.layers[0], w.layers[0]);
        assert_eq!(one.layers[2], w.layers[2]);
        assert_ne!(one.layers[1], w.layers[1]);
        let all = Arch::Mlp
            .train_layers(&w, &data, None, sgd, &mut sim::rng::stream(1, "a"))
            .unwrap();
        let plain = Arch::Mlp
            .train(&w, &data, 2, 10, 0.1, &mut sim::rng::stream(1, "a"))
            .unwrap();
        assert_eq!(all, plain);
    }

    #[test]
    fn recovery_is_the_share_of_the_full_gain() {
        assert!((recovery(0.6, 0.8, 0.75) - 0.75).abs() < 1e-12);
        assert!((recovery(0.6, 0.8, 0.7) - 0.5).abs() < 1e-12);
        assert!(recovery(0.6, 0.6, 0.7).is_nan());
        assert_eq!(set_name(&[0, 14]), "l0_14");
    }

    #[test]
    fn sets_outside_the_model_are_refused() {
        let p = OracleParams {
            sgd: Sgd {
                epochs: 1,
                batch: 10,
                lr: 0.1,
            },
            layers: vec![vec![0, 14], vec![], vec![15]],
        };
        let mut c = Checks::new();
        p.check_layers(15, &mut c);
        let text = format!("{c:?}");
        assert!(
            text.contains("oracle.layers.1") && text.contains("oracle.layers.2"),
            "{text}"
        );
        assert!(!text.contains("layers.0"), "{text}");
    }
}
