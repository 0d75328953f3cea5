//! Personalized FL as a plug-in of the FL network: the trainer owns every client's personal state
//! (pFedNavi's local weights, mixing logits and selection; FedPer's local head; Ditto's personal
//! model) and evaluates each client's own model; the coordinator runs plain FedAvg on what the clients upload (FedPer uploads a zero delta
//! on its local head layers, so FedAvg leaves them alone: partial-layer FedAvg).

use std::cell::RefCell;

use sim::rng::Rng;

use super::ditto;
use super::mixing::{self, MixClient, MixData};
use super::params::PersonalMethod;
use crate::learn::common::Sgd;
use crate::learn::convert;
use crate::learn::nn::{Arch, Weights};
use crate::learn::task::Dataset;
use crate::traits::{ClientUpdate, Eval, LocalTrainer, ModelParams, PluginError, TrainCost};

/// `body` with its last `k` layers taken from `head`.
fn with_head(body: &Weights, head: &Weights, k: usize) -> Weights {
    let mut out = body.clone();
    let n = out.layers.len();
    out.layers[n - k..].clone_from_slice(&head.layers[n - k..]);
    out
}

/// How the clients learn and personalize.
#[derive(Debug, Clone, Copy)]
pub struct PersonalConfig {
    /// The method.
    pub method: PersonalMethod,
    /// The network every client trains (MLP or residual CNN).
    pub arch: Arch,
    /// Local SGD per round.
    pub local: Sgd,
    /// FedAvg+FT: fine-tuning epochs before each evaluation.
    pub finetune_epochs: usize,
    /// FedPer: final layers kept local.
    pub fedper_layers: usize,
    /// pFedNavi and layer-mix: learning rate of the mixing logits.
    pub mix_lr: f64,
    /// pFedNavi: local rounds of layer-wise mixing before selection.
    pub select_after: u32,
    /// pFedNavi: λ at or above which a layer becomes client-specific.
    pub select_threshold: f64,
    /// pFedNavi: most layers a client makes client-specific (largest λ first; `None`: no cap).
    pub select_max_layers: Option<usize>,
    /// Ditto: proximal weight μ.
    pub ditto_mu: f64,
}

/// Each client's data: what it trains on, the same split into a training and a held-out part
/// (pFedNavi's mixing coefficients), and its test set.
pub struct ClientSets<'a> {
    /// All training examples (training part and held-out part together).
    pub all: &'a [Dataset],
    /// Training part.
    pub fit: &'a [Dataset],
    /// Held-out part.
    pub holdout: &'a [Dataset],
    /// Test examples.
    pub test: &'a [Dataset],
}

/// The clients: data, personal state and per-client evaluation.
pub struct PersonalTrainer<'a> {
    cfg: PersonalConfig,
    init: Weights,
    data: ClientSets<'a>,
    rngs: Vec<Rng>,
    finetune_rngs: RefCell<Vec<Rng>>,
    heads: Vec<Weights>,
    mix: Vec<MixClient>,
    trained: Vec<u32>,
    per_client: RefCell<Vec<f64>>,
}

impl<'a> PersonalTrainer<'a> {
    /// Clients with data `data`, all starting from `init`; client `k` shuffles its local SGD with
    /// `rngs[k]` and its FedAvg+FT fine-tuning with `finetune_rngs[k]`.
    pub fn new(
        cfg: PersonalConfig,
        init: Weights,
        data: ClientSets<'a>,
        rngs: Vec<Rng>,
        finetune_rngs: Vec<Rng>,
    ) -> Self {
        let n = data.all.len();
        Self {
            heads: vec![init.clone(); n],
            mix: vec![MixClient::new(&init); n],
            trained: vec![0; n],
            per_client: RefCell::new(vec![0.0; n]),
            cfg,
            init,
            data,
            rngs,
            finetune_rngs: RefCell::new(finetune_rngs),
        }
    }

    /// Floats a client exchanges per round in each direction (FedPer: the shared body only).
    pub fn exchanged_floats(&self) -> usize {
        let layers = self.init.layers.len();
        match self.cfg.method {
            PersonalMethod::FedPer => self.init.layers[..layers - self.cfg.fedper_layers]
                .iter()
                .map(|l| l.len())
                .sum(),
            _ => self.init.len(),
        }
    }

    /// Each client's test accuracy at the latest evaluation.
    pub fn per_client(&self) -> Vec<f64> {
        self.per_client.borrow().clone()
    }

    /// Mean over clients of the personal weight on each layer (pFedNavi and layer-mix: λ = σ(θ),
    /// 0 on a layer left global; FedPer: 1 on the local head, 0 elsewhere; the others: 0).
    pub fn lambdas(&self) -> Vec<f64> {
        let layers = self.init.layers.len();
        let n = self.mix.len() as f64;
        (0..layers)
            .map(|l| match self.cfg.method {
                PersonalMethod::PFedNavi | PersonalMethod::LayerMix => {
                    self.mix.iter().map(|c| c.lambdas()[l]).sum::<f64>() / n
                }
                PersonalMethod::FedPer if l >= layers - self.cfg.fedper_layers => 1.0,
                _ => 0.0,
            })
            .collect()
    }

    /// pFedNavi: share of the clients that selected each layer as client-specific (clients that
    /// have not selected yet count as not selecting); `None` for the other methods.
    pub fn selected_share(&self) -> Option<Vec<f64>> {
        (self.cfg.method == PersonalMethod::PFedNavi).then(|| {
            let n = self.mix.len() as f64;
            (0..self.init.layers.len())
                .map(|l| {
                    self.mix
                        .iter()
                        .filter(|c| c.selected && c.client_specific()[l])
                        .count() as f64
                        / n
                })
                .collect()
        })
    }

    fn local_train(&mut self, k: usize, g: &Weights) -> candle_core::Result<Weights> {
        let (e, b, lr) = self.cfg.local.tuple();
        let data = &self.data.all[k];
        let rng = &mut self.rngs[k];
        self.trained[k] += 1;
        match self.cfg.method {
            PersonalMethod::FedAvg | PersonalMethod::FedAvgFt => {
                self.cfg.arch.train(g, data, e, b, lr, rng)
            }
            PersonalMethod::FedPer => {
                let h = self.cfg.fedper_layers;
                let w =
                    (self.cfg.arch).train(&with_head(g, &self.heads[k], h), data, e, b, lr, rng)?;
                // The head stays on the client: upload the global head back (zero delta there).
                let up = with_head(&w, g, h);
                self.heads[k] = w;
                Ok(up)
            }
            PersonalMethod::Ditto => {
                let (up, v) = ditto::train_ditto(
                    &self.cfg.arch,
                    g,
                    &self.heads[k],
                    data,
                    (e, b, lr),
                    self.cfg.ditto_mu,
                    rng,
                )?;
                self.heads[k] = v;
                Ok(up)
            }
            PersonalMethod::PFedNavi | PersonalMethod::LayerMix => {
                let sets = MixData {
                    all: data,
                    fit: &self.data.fit[k],
                    holdout: &self.data.holdout[k],
                };
                let (up, mut c) = mixing::train_mixed(
                    &self.cfg.arch,
                    g,
                    &self.mix[k],
                    &sets,
                    (e, b, lr),
                    self.cfg.mix_lr,
                    rng,
                )?;
                if self.cfg.method == PersonalMethod::PFedNavi
                    && self.trained[k] >= self.cfg.select_after
                {
                    c.select(self.cfg.select_threshold, self.cfg.select_max_layers);
                }
                self.mix[k] = c;
                Ok(up)
            }
        }
    }

    fn personal_model(&self, k: usize, g: &Weights) -> candle_core::Result<Weights> {
        let (_, b, lr) = self.cfg.local.tuple();
        Ok(match self.cfg.method {
            PersonalMethod::FedAvg => g.clone(),
            PersonalMethod::FedAvgFt => self.cfg.arch.train(
                g,
                &self.data.all[k],
                self.cfg.finetune_epochs,
                b,
                lr,
                &mut self.finetune_rngs.borrow_mut()[k],
            )?,
            PersonalMethod::FedPer => with_head(g, &self.heads[k], self.cfg.fedper_layers),
            PersonalMethod::Ditto => self.heads[k].clone(),
            PersonalMethod::PFedNavi | PersonalMethod::LayerMix => self.mix[k].personalized(g),
        })
    }
}

impl LocalTrainer for PersonalTrainer<'_> {
    fn num_clients(&self) -> usize {
        self.data.all.len()
    }

    fn init(&mut self, _rng: &mut Rng) -> ModelParams {
        convert::to_params(&self.init)
    }

    /// One local round with the client's own stream (the network's shared stream is unused).
    fn train(
        &mut self,
        client: usize,
        global: &ModelParams,
        _rng: &mut Rng,
    ) -> Result<ClientUpdate, PluginError> {
        let g = convert::to_weights(global, &self.init);
        let up = self.local_train(client, &g)?;
        Ok(ClientUpdate {
            client,
            delta: convert::to_params(&up).sub(global),
            samples: self.data.all[client].len(),
            // The local loss is not measured by the SGD helpers.
            train_loss: 0.0,
        })
    }

    /// FLOPs of local SGD (pFedNavi and layer-mix: three passes per minibatch — the global copy,
    /// the local weights, the mixing logits; Ditto: two, the global copy and the personal model);
    /// traffic: the shared layers down and up.
    fn cost(&self, client: usize, _global: &ModelParams) -> TrainCost {
        let (epochs, _, _) = self.cfg.local.tuple();
        let passes = match self.cfg.method {
            PersonalMethod::PFedNavi | PersonalMethod::LayerMix => 3,
            PersonalMethod::Ditto => 2,
            _ => 1,
        };
        let bytes = 4 * self.exchanged_floats() as u64;
        TrainCost {
            flops: (self.cfg.arch)
                .sgd_flops(&self.init, passes * epochs * self.data.all[client].len()),
            download_bytes: bytes,
            upload_bytes: bytes,
        }
    }

    /// Mean over clients of their personalized model's test accuracy and loss (each client's own
    /// test set); the per-client accuracies are kept for [`PersonalTrainer::per_client`].
    fn evaluate(&self, global: &ModelParams) -> Result<Eval, PluginError> {
        let g = convert::to_weights(global, &self.init);
        let n = self.data.all.len();
        let mut acc = vec![0.0; n];
        let mut loss = 0.0;
        for (k, a) in acc.iter_mut().enumerate() {
            let w = self.personal_model(k, &g)?;
            let (l, v) = self.cfg.arch.loss_and_accuracy(&w, &self.data.test[k])?;
            loss += l;
            *a = v;
        }
        let accuracy = acc.iter().sum::<f64>() / n as f64;
        *self.per_client.borrow_mut() = acc;
        Ok(Eval {
            loss: loss / n as f64,
            accuracy,
        })
    }
}
