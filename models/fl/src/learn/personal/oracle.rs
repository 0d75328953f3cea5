//! Where the heterogeneity sits: an oracle that takes FedAvg's final global model and lets every
//! client fine-tune only some of its layers on its own data (the others frozen at the global
//! model's), against fine-tuning every layer. If the first layers alone recover most of what
//! fine-tuning every layer gains over the global model, the clients differ in those layers: the
//! setting in which choosing which layers to personalise (pFedNavi's selection) should matter. It
//! is a diagnostic of the task, run on FedAvg alone, independent of pFedNavi.
//!
//! With `early_stopping`, each client fine-tunes on its training examples only and keeps the
//! epoch (0 being the global model itself) whose weights score best on its holdout examples, as a
//! practitioner would: fine-tuning every layer of a deep model on 60 examples over-fits within a few
//! epochs, and without a stopping rule the "every layer" arm then measures over-fitting, not what
//! the layers can recover.

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
    /// Fine-tune on the training examples and keep the epoch that scores best on the holdout
    /// examples (`true`); otherwise fine-tune on both for every epoch and keep the last (`false`,
    /// the default).
    #[serde(default)]
    pub early_stopping: bool,
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

/// One client's examples as the oracle splits them.
#[derive(Debug, Clone, Copy)]
pub struct ClientData<'a> {
    /// Training examples.
    pub fit: &'a Dataset,
    /// Holdout examples (disjoint from `fit` and `test`).
    pub holdout: &'a Dataset,
    /// `fit` then `holdout`, as one set (what the oracle trains on without early stopping).
    pub all: &'a Dataset,
    /// Test examples.
    pub test: &'a Dataset,
}

/// What one layer set's fine-tuning gives, averaged over the clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FineTuned {
    /// Mean test accuracy of the kept weights.
    pub accuracy: f64,
    /// Mean epoch kept (the number of epochs run without early stopping).
    pub epoch: f64,
}

/// Each client `k` fine-tunes the global model `g` on layers `only` (shuffled by a fresh
/// `stream(k)`, the same for every set) as `o` says; the mean over the clients of the kept weights'
/// test accuracy and of the epoch kept.
pub fn fine_tune(
    arch: &Arch,
    g: &Weights,
    only: Option<&[usize]>,
    o: &OracleParams,
    clients: &[ClientData<'_>],
    stream: &dyn Fn(usize) -> Rng,
) -> Result<FineTuned> {
    let (mut accuracy, mut epoch) = (0.0, 0.0);
    for (k, c) in clients.iter().enumerate() {
        let (w, e) = if o.early_stopping {
            early_stopped(arch, g, only, &o.sgd, c, &mut stream(k))?
        } else {
            let w = arch.train_layers(g, c.all, only, o.sgd.tuple(), &mut stream(k))?;
            (w, o.sgd.epochs)
        };
        accuracy += arch.accuracy(&w, c.test)?;
        epoch += e as f64;
    }
    let n = clients.len().max(1) as f64;
    Ok(FineTuned {
        accuracy: accuracy / n,
        epoch: epoch / n,
    })
}

/// `sgd.epochs` epochs of fine-tuning `g` on `c.fit`, one at a time; the weights of the first epoch
/// (0: `g` itself) with the highest accuracy on `c.holdout`, and that epoch.
fn early_stopped(
    arch: &Arch,
    g: &Weights,
    only: Option<&[usize]>,
    sgd: &Sgd,
    c: &ClientData<'_>,
    rng: &mut Rng,
) -> Result<(Weights, usize)> {
    let (_, batch, lr) = sgd.tuple();
    let mut best = (arch.accuracy(g, c.holdout)?, g.clone(), 0);
    let mut w = g.clone();
    for e in 1..=sgd.epochs {
        w = arch.train_layers(&w, c.fit, only, (1, batch, lr), rng)?;
        let score = arch.accuracy(&w, c.holdout)?;
        if score > best.0 {
            best = (score, w.clone(), e);
        }
    }
    Ok((best.1, best.2))
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

    /// With early stopping the kept weights score on the holdout at least what the global model
    /// does, and exactly the best of the epochs' scores; with no epoch to run the global model is
    /// kept.
    #[test]
    fn early_stopping_keeps_the_best_holdout_epoch() {
        let (data, w) = task();
        let mut rng = sim::rng::stream(3, "split");
        let holdout =
            Prototypes::new(TaskShape::easy(5, 3), &mut rng).sample(12, &[1.0; 3], &mut rng);
        let c = ClientData {
            fit: &data,
            holdout: &holdout,
            all: &data,
            test: &holdout,
        };
        let sgd = |epochs| Sgd {
            epochs,
            batch: 10,
            lr: 0.5,
        };
        let arch = Arch::Mlp;
        let (kept, e) =
            early_stopped(&arch, &w, None, &sgd(6), &c, &mut sim::rng::stream(1, "a")).unwrap();
        let mut scores = vec![arch.accuracy(&w, &holdout).unwrap()];
        let mut cur = w.clone();
        let mut r = sim::rng::stream(1, "a");
        for _ in 0..6 {
            cur = arch
                .train_layers(&cur, &data, None, (1, 10, 0.5), &mut r)
                .unwrap();
            scores.push(arch.accuracy(&cur, &holdout).unwrap());
        }
        let best = scores.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(arch.accuracy(&kept, &holdout).unwrap(), best);
        assert_eq!(e, scores.iter().position(|&s| s == best).unwrap());
        assert!(best >= scores[0]);
        let (same, e0) =
            early_stopped(&arch, &w, None, &sgd(0), &c, &mut sim::rng::stream(1, "a")).unwrap();
        assert_eq!((same, e0), (w, 0));
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
            early_stopping: false,
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
