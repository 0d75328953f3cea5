//! Federated LoRA as plug-ins of the FL network: the global model is the base MLP's dense layers plus
//! one `lora_a.l` / `lora_b.l` pair per layer ([`convert::lora_params`]). Clients train only the
//! adapters (their update is zero on the base layers); the aggregator applies one
//! [`LoraMethod`] to the clients' adapters and merges whatever the method puts into the base
//! (FLoRA's stack, FedMomentum's residual) into the base layers of the next global model.

use std::cell::Cell;
use std::rc::Rc;

use sim::rng::Rng;

use super::adapter::{self, Adapters};
use super::aggregate::{self, LoraMethod};
use crate::fl::learn::common::Sgd;
use crate::fl::learn::convert;
use crate::fl::learn::net::{self, Failure};
use crate::fl::learn::nn::{self, Weights};
use crate::fl::learn::task::Dataset;
use crate::fl::traits::{Aggregator, ClientUpdate, Eval, LocalTrainer, ModelParams, TrainCost};

/// Floats each client downloads for the current global model: set by the aggregator when it
/// publishes a model (its method's downlink), read by the trainer's [`LocalTrainer::cost`].
pub type Broadcast = Rc<Cell<usize>>;

/// Floats of the very first download: the initial adapters (FFA-LoRA: only `B`, `A` comes from
/// the shared seed). The pretrained base is assumed to be on the clients already.
pub fn initial_download(method: LoraMethod, adapters: &Adapters) -> usize {
    adapters.iter().map(|l| method.uplink_floats(l)).sum()
}

/// The clients' side: local SGD on the adapters over a frozen base.
pub struct LoraTrainer<'a> {
    method: LoraMethod,
    base: Weights,
    init: Adapters,
    clients: &'a [Dataset],
    test: &'a Dataset,
    local: Sgd,
    rngs: Vec<Rng>,
    broadcast: Broadcast,
    /// First training or evaluation error.
    pub failure: Failure,
}

impl<'a> LoraTrainer<'a> {
    /// Clients holding `clients` (client `k` shuffles with `rngs[k]`), starting from `base` and the
    /// adapters `init`, evaluated on `test`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: LoraMethod,
        base: Weights,
        init: Adapters,
        clients: &'a [Dataset],
        test: &'a Dataset,
        local: Sgd,
        rngs: Vec<Rng>,
        broadcast: Broadcast,
    ) -> Self {
        Self {
            method,
            base,
            init,
            clients,
            test,
            local,
            rngs,
            broadcast,
            failure: Failure::default(),
        }
    }

    /// Floats one client uploads per round (`A` and `B`; FFA-LoRA: `B`).
    pub fn uplink_floats(&self) -> usize {
        self.init.iter().map(|l| self.method.uplink_floats(l)).sum()
    }
}

impl LocalTrainer for LoraTrainer<'_> {
    fn num_clients(&self) -> usize {
        self.clients.len()
    }

    fn init(&mut self, _rng: &mut Rng) -> ModelParams {
        convert::lora_params(&self.base, &self.init)
    }

    /// Local SGD on the adapters with the client's own shuffling stream (the network's shared
    /// stream is not used, so a client's training does not depend on who else is on time).
    fn train(&mut self, client: usize, global: &ModelParams, _rng: &mut Rng) -> ClientUpdate {
        let data = &self.clients[client];
        let base = convert::to_weights(global, &self.base);
        let start = convert::to_adapters(global, &self.init);
        let trained = adapter::train_adapters(
            &base,
            &start,
            self.method.freezes_a(),
            data,
            self.local.tuple(),
            &mut self.rngs[client],
        )
        .unwrap_or_else(|e| {
            self.failure.record(e);
            start.clone()
        });
        ClientUpdate {
            client,
            delta: convert::lora_params(&base, &trained).sub(global),
            samples: data.len(),
            // The local loss is not measured by the adapter SGD.
            train_loss: 0.0,
        }
    }

    /// FLOPs: dense SGD through the merged layers (6 per multiply-accumulate and example) plus
    /// forming `B·A` per minibatch; traffic: the method's download of the current model and the
    /// adapter upload.
    fn cost(&self, client: usize, _global: &ModelParams) -> TrainCost {
        let (epochs, batch, _) = self.local.tuple();
        let n = self.clients[client].len();
        let batches = epochs * n.div_ceil(batch);
        let rank = self.init.first().map_or(0, |l| l.rank) as f64;
        TrainCost {
            flops: net::sgd_flops(&self.base, epochs * n)
                + 6.0 * rank * net::macs(&self.base) * batches as f64,
            download_bytes: 4 * self.broadcast.get() as u64,
            upload_bytes: 4 * self.uplink_floats() as u64,
        }
    }

    fn evaluate(&self, global: &ModelParams) -> Eval {
        let model = adapter::merged(
            &convert::to_weights(global, &self.base),
            &convert::to_adapters(global, &self.init),
        );
        let (loss, accuracy) = nn::loss_and_accuracy(&model, self.test).unwrap_or_else(|e| {
            self.failure.record(e);
            (0.0, 0.0)
        });
        Eval { loss, accuracy }
    }
}

/// The server's side: one LoRA aggregation rule over the on-time clients' adapters (FedAvg weights
/// by samples), with its communication and information loss recorded per round.
pub struct LoraAggregator {
    method: LoraMethod,
    base: Weights,
    adapters: Adapters,
    broadcast: Broadcast,
    /// Floats each client downloads of each round's aggregate.
    pub downlink_floats: Vec<usize>,
    /// Σ over rounds and layers of ‖Σ pᵢBᵢAᵢ − what the new global holds‖_F.
    pub lost_norm: f64,
    /// First aggregation error (a failed SVD).
    pub failure: Failure,
}

impl LoraAggregator {
    /// `method` over models laid out like `base` + `adapters`, publishing its downlink to
    /// `broadcast`.
    pub fn new(
        method: LoraMethod,
        base: Weights,
        adapters: Adapters,
        broadcast: Broadcast,
    ) -> Self {
        Self {
            method,
            base,
            adapters,
            broadcast,
            downlink_floats: Vec::new(),
            lost_norm: 0.0,
            failure: Failure::default(),
        }
    }
}

impl Aggregator for LoraAggregator {
    fn name(&self) -> &str {
        self.method.name()
    }

    fn aggregate(
        &mut self,
        global: &ModelParams,
        updates: &[ClientUpdate],
        rng: &mut Rng,
    ) -> ModelParams {
        let clients: Vec<Adapters> = updates
            .iter()
            .map(|u| {
                let mut local = global.clone();
                local.axpy(1.0, &u.delta);
                convert::to_adapters(&local, &self.adapters)
            })
            .collect();
        let total: f64 = updates.iter().map(|u| u.samples as f64).sum();
        let p: Vec<f64> = updates
            .iter()
            .map(|u| {
                if total > 0.0 {
                    u.samples as f64 / total
                } else {
                    1.0 / updates.len() as f64
                }
            })
            .collect();
        let layers = match aggregate::aggregate(self.method, &clients, &p, rng) {
            Ok(l) => l,
            Err(e) => {
                self.failure.record(e);
                return global.clone();
            }
        };
        let mut base = convert::to_weights(global, &self.base);
        let mut adapters = convert::to_adapters(global, &self.adapters);
        let mut down = 0;
        for (l, a) in layers.into_iter().enumerate() {
            if let Some(d) = &a.base_delta {
                adapter::add_to_base(&mut base, l, d);
            }
            down += a.downlink_floats;
            self.lost_norm += a.lost_norm;
            adapters[l] = a.lora;
        }
        self.broadcast.set(down);
        self.downlink_floats.push(down);
        convert::lora_params(&base, &adapters)
    }
}
