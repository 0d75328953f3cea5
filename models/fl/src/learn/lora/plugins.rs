//! Federated LoRA as plug-ins of the FL network: the global model is the base MLP's dense layers plus
//! one `lora_a.l` / `lora_b.l` pair per layer ([`convert::lora_params`]). Clients train only the
//! adapters (their update is zero on the base layers); the aggregator applies one
//! [`LoraMethod`] to the clients' adapters and merges whatever the method puts into the base
//! (FLoRA's stack, FedMomentum's residual) into the base layers of the next global model.

use sim::rng::Rng;

use super::adapter::{self, Adapters, Lora};
use super::aggregate::{self, LoraMethod};
use super::batched;
use super::params::LocalOptimizer;
use crate::learn::common::Sgd;
use crate::learn::convert;
use crate::learn::net;
use crate::learn::nn::{self, Weights};
use crate::learn::task::Dataset;
use crate::traits::{
    Aggregator, ClientUpdate, Eval, LocalTrainer, ModelParams, PluginError, TrainCost,
};

/// The clients' side: local training of the adapters over a frozen base.
///
/// The network asks for one client's update at a time; the first request of a round trains every
/// client of the round in one stacked step ([`batched::train_clients`]) from that round's global
/// model and keeps the results. A client's result, and the advance of its shuffling stream, is
/// taken over only when that client is asked for, so a client that is never asked (late, offline)
/// stays as if it had not trained: results equal per-client training (to float rounding), and
/// only its compute is spent in vain.
pub struct LoraTrainer<'a> {
    method: LoraMethod,
    base: Weights,
    init: Adapters,
    clients: &'a [Dataset],
    test: &'a Dataset,
    local: Sgd,
    optimizer: LocalOptimizer,
    rngs: Vec<Rng>,
    round: Option<RoundResults>,
}

/// Every client trained from one global model, not yet taken.
struct RoundResults {
    global: ModelParams,
    /// Per client: its adapters and its stream after training; `None` once taken.
    trained: Vec<Option<(Adapters, Rng)>>,
}

impl<'a> LoraTrainer<'a> {
    /// Clients holding `clients` (client `k` shuffles with `rngs[k]`), starting from `base` and the
    /// adapters `init`, training with `local` and `optimizer`, evaluated on `test`.
    pub fn new(
        method: LoraMethod,
        (base, init): (Weights, Adapters),
        (clients, test): (&'a [Dataset], &'a Dataset),
        (local, optimizer): (Sgd, LocalOptimizer),
        rngs: Vec<Rng>,
    ) -> Self {
        Self {
            method,
            base,
            init,
            clients,
            test,
            local,
            optimizer,
            rngs,
            round: None,
        }
    }

    /// Trains every client from `global` on copies of their streams.
    fn train_round(&self, global: &ModelParams) -> Result<RoundResults, PluginError> {
        let base = convert::to_weights(global, &self.base);
        let start = convert::to_adapters(global, &self.init);
        let mut rngs = self.rngs.clone();
        let data: Vec<&Dataset> = self.clients.iter().collect();
        let trained = batched::train_clients(
            &base,
            &start,
            self.method.freezes_a(),
            &data,
            &mut rngs,
            (self.local, self.optimizer),
        )?;
        Ok(RoundResults {
            global: global.clone(),
            trained: trained.into_iter().zip(rngs).map(Some).collect(),
        })
    }

    /// Floats one client uploads per round (`A` and `B`; FFA-LoRA: `B`). Also what it downloads
    /// of the initial model: the adapters (FFA-LoRA: only `B`, `A` comes from the shared seed);
    /// the pretrained base is assumed to be on the clients already.
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

    /// Local training of the adapters with the client's own shuffling stream (the network's shared
    /// stream is not used, so a client's training does not depend on who else is on time). Served
    /// from the round's stacked training; a new global model, or a client asked twice from the
    /// same model (a later round that kept the model), trains the round afresh.
    fn train(
        &mut self,
        client: usize,
        global: &ModelParams,
        _rng: &mut Rng,
    ) -> Result<ClientUpdate, PluginError> {
        let mut round = match self.round.take() {
            Some(r) if r.global == *global && r.trained[client].is_some() => r,
            _ => self.train_round(global)?,
        };
        let taken = round.trained[client].take();
        self.round = Some(round);
        let Some((trained, rng)) = taken else {
            return Err(PluginError::Other(format!(
                "client {client}: no adapters trained this round"
            )));
        };
        self.rngs[client] = rng;
        let data = &self.clients[client];
        let base = convert::to_weights(global, &self.base);
        Ok(ClientUpdate {
            client,
            delta: convert::lora_params(&base, &trained).sub(global),
            samples: data.len(),
            // The local loss is not measured by the adapter SGD.
            train_loss: 0.0,
        })
    }

    /// FLOPs: dense SGD through the merged layers (6 per multiply-accumulate and example) plus
    /// forming `B·A` per minibatch; traffic: the initial adapters down (later rounds: what the
    /// [`LoraAggregator`] published, its [`Aggregator::download_bytes`]) and the adapters up.
    fn cost(&self, client: usize, _global: &ModelParams) -> TrainCost {
        let (epochs, batch, _) = self.local.tuple();
        let n = self.clients[client].len();
        let batches = epochs * n.div_ceil(batch);
        let rank = self.init.first().map_or(0, |l| l.rank) as f64;
        TrainCost {
            flops: net::sgd_flops(&self.base, epochs * n)
                + 6.0 * rank * net::macs(&self.base) * batches as f64,
            download_bytes: 4 * self.uplink_floats() as u64,
            upload_bytes: 4 * self.uplink_floats() as u64,
        }
    }

    fn evaluate(&self, global: &ModelParams) -> Result<Eval, PluginError> {
        let model = adapter::merged(
            &convert::to_weights(global, &self.base),
            &convert::to_adapters(global, &self.init),
        );
        let (loss, accuracy) = nn::loss_and_accuracy(&model, self.test)?;
        Ok(Eval { loss, accuracy })
    }
}

/// The server's side: one LoRA aggregation rule over the on-time clients' adapters (FedAvg weights
/// by samples), with its communication and information loss recorded per round.
pub struct LoraAggregator {
    method: LoraMethod,
    base: Weights,
    adapters: Adapters,
    /// Floats each client downloads of each round's aggregate.
    pub downlink_floats: Vec<usize>,
    /// Σ over rounds and layers of ‖Σ pᵢBᵢAᵢ − what the new global holds‖_F.
    pub lost_norm: f64,
    /// Σ over rounds and layers of the numerical rank of `Σ pᵢBᵢAᵢ`.
    pub update_rank_sum: f64,
    /// Σ over rounds and layers of the share of `‖Σ pᵢBᵢAᵢ‖²` beyond rank r.
    pub tail_energy_sum: f64,
    /// Σ over rounds and layers of the tail's share of the round's update.
    pub update_tail_energy_sum: f64,
    /// Layer aggregates summed over (rounds × layers).
    pub layer_aggregates: usize,
    /// Largest [`Lora::step_gain`](super::adapter::Lora::step_gain) of a published adapter over
    /// rounds and layers.
    pub step_gain_max: f64,
    /// Aggregations so far (1-based round of the last one).
    pub aggregations: usize,
    /// The aggregation round in which an on-time client's adapters, or the aggregate, first held a
    /// non-finite value. From then on the server keeps its last finite global model and publishes
    /// nothing new (it never broadcasts a NaN model), so the run's accuracy is that model's.
    pub diverged_round: Option<usize>,
}

impl LoraAggregator {
    /// `method` over models laid out like `base` + `adapters`.
    pub fn new(method: LoraMethod, base: Weights, adapters: Adapters) -> Self {
        Self {
            method,
            base,
            adapters,
            downlink_floats: Vec::new(),
            lost_norm: 0.0,
            update_rank_sum: 0.0,
            tail_energy_sum: 0.0,
            update_tail_energy_sum: 0.0,
            layer_aggregates: 0,
            step_gain_max: 0.0,
            aggregations: 0,
            diverged_round: None,
        }
    }
}

impl LoraAggregator {
    /// Divergence: the server keeps `global` (its last finite model) and publishes nothing new.
    fn keep(&mut self, global: &ModelParams) -> ModelParams {
        self.diverged_round.get_or_insert(self.aggregations);
        self.downlink_floats.push(0);
        global.clone()
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
    ) -> Result<ModelParams, PluginError> {
        let clients: Vec<Adapters> = updates
            .iter()
            .map(|u| {
                let mut local = global.clone();
                local.axpy(1.0, &u.delta);
                convert::to_adapters(&local, &self.adapters)
            })
            .collect();
        self.aggregations += 1;
        if self.diverged_round.is_some() || !clients.iter().flatten().all(Lora::is_finite) {
            return Ok(self.keep(global));
        }
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
        let mut adapters = convert::to_adapters(global, &self.adapters);
        let layers = aggregate::aggregate(self.method, &clients, &p, &adapters, rng)?;
        let finite = layers.iter().all(|a| {
            a.lora.is_finite()
                && a.base_delta
                    .as_ref()
                    .is_none_or(|d| d.iter().all(|v| v.is_finite()))
        });
        if !finite {
            return Ok(self.keep(global));
        }
        let mut base = convert::to_weights(global, &self.base);
        let mut down = 0;
        for (l, a) in layers.into_iter().enumerate() {
            self.step_gain_max = self.step_gain_max.max(a.lora.step_gain()?);
            if let Some(d) = &a.base_delta {
                adapter::add_to_base(&mut base, l, d);
            }
            down += a.downlink_floats;
            self.lost_norm += a.lost_norm;
            self.update_rank_sum += a.update_rank as f64;
            self.tail_energy_sum += a.tail_energy;
            self.update_tail_energy_sum += a.update_tail_energy;
            self.layer_aggregates += 1;
            adapters[l] = a.lora;
        }
        self.downlink_floats.push(down);
        Ok(convert::lora_params(&base, &adapters))
    }

    /// What the method published last (FLoRA: every client's modules; FedMomentum: the factors),
    /// `None` before the first aggregate (the trainer's initial adapters).
    fn download_bytes(&self) -> Option<u64> {
        self.downlink_floats.last().map(|&f| 4 * f as u64)
    }
}
