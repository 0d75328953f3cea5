//! The host side: launches kernels on the GPU stream one after another. For a model workload it
//! walks the simulated decoder layers; at the start of each layer's MoE block it runs the router on
//! that layer's synthetic hidden states, runs Samoyeds' kernel numerically on a sampled block of
//! the most-loaded expert's tokens (checked against dense, `sample.rs`), and builds the kernels
//! from the real assignment and the sampled block's bank-conflict degree.

use std::collections::VecDeque;

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;

use llm::LlmShape;

use super::device::KernelDone;
use super::layer::{Part, Step, attention_kernels, moe_kernels};
use super::router::{RouterParams, route};
use super::sample::{SampleCheck, check_block};
use super::tiling::{KernelPlan, Method, SparsityFormat};

/// A finished kernel, tagged with its layer and part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// Simulated layer index (0-based among the simulated layers).
    pub layer: u32,
    /// Attention or MoE.
    pub part: Part,
    /// The GPU's report.
    pub done: KernelDone,
}

/// Routed tokens per expert of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routed {
    /// Simulated layer index.
    pub layer: u32,
    /// Tokens per expert.
    pub counts: Vec<usize>,
    /// The numeric check of the layer's sampled block.
    pub check: SampleCheck,
}

/// A decoder-layer workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelWork {
    /// The model.
    pub llm: LlmShape,
    /// MoE kernel choice.
    pub method: Method,
    /// Sparse format knobs.
    pub fmt: SparsityFormat,
    /// Tokens of the step.
    pub step: Step,
    /// Layers to simulate, starting at the first MoE layer.
    pub layers: u32,
    /// Router knobs.
    pub router: RouterParams,
}

/// What the driver launches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Work {
    /// A fixed list of kernels (kernel benchmarks).
    Kernels(Vec<KernelPlan>),
    /// Decoder layers of an MoE model.
    Model(ModelWork),
}

/// Launches the workload's kernels in order, one at a time.
#[derive(Serialize, Deserialize)]
pub struct Driver {
    /// Kernels to the GPU stream.
    pub launch: Output<KernelPlan>,
    /// Finished kernels with their layer and part.
    pub finished: Output<Finished>,
    /// Routing of each simulated MoE layer.
    pub routed: Output<Routed>,
    work: Work,
    rng: Rng,
    sample_rng: Rng,
    layer: u32,
    pending: VecDeque<(Part, KernelPlan)>,
    current: Option<Part>,
}

#[Model]
impl Driver {
    /// A driver of `work`, routing with `rng` and sampling check blocks with `sample_rng`.
    pub fn new(work: Work, rng: Rng, sample_rng: Rng) -> Self {
        let pending = match &work {
            Work::Kernels(k) => k.iter().cloned().map(|p| (Part::Moe, p)).collect(),
            Work::Model(_) => VecDeque::new(),
        };
        Self {
            launch: Output::default(),
            finished: Output::default(),
            routed: Output::default(),
            work,
            rng,
            sample_rng,
            layer: 0,
            pending,
            current: None,
        }
    }

    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        // The first launch happens 1 ns after time zero (a zero delay is not schedulable).
        let _ = cx.schedule_event(
            std::time::Duration::from_nanos(1),
            schedulable!(Self::start),
            (),
        );
    }

    /// Starts the workload.
    #[nexosim(schedulable)]
    async fn start(&mut self, _: (), _cx: &Context<Self>) {
        if let Work::Model(_) = self.work {
            self.build_layer().await;
        }
        self.next().await;
    }

    /// Builds the kernels of the current layer: attention, then routing and the MoE block.
    async fn build_layer(&mut self) {
        let Work::Model(w) = &self.work else { return };
        let first_moe = w.llm.moe.as_ref().map_or(0, |m| m.dense_layers);
        let layer_id = first_moe + self.layer;
        let t = w.step.tokens();
        let routing = w
            .llm
            .moe
            .as_ref()
            .filter(|_| w.llm.is_moe_layer(layer_id))
            .map(|m| {
                route(
                    t,
                    m.experts as usize,
                    m.top_k as usize,
                    &w.router,
                    &mut self.rng,
                )
            });
        let check = routing.as_ref().map(|r| {
            let busiest = r.per_expert.iter().max_by_key(|l| l.len());
            check_block(
                busiest.map_or(&[][..], Vec::as_slice),
                w.llm.hidden as usize,
                &w.fmt,
                &mut self.sample_rng,
            )
        });
        self.pending.extend(attention_kernels(&w.llm, &w.step));
        self.pending.extend(moe_kernels(
            &w.llm,
            layer_id,
            w.method,
            &w.fmt,
            routing.as_ref(),
            t,
            check.map_or(1.0, |c| c.conflict_degree),
        ));
        if let (Some(r), Some(check)) = (routing, check) {
            self.routed
                .send(Routed {
                    layer: self.layer,
                    counts: r.counts(),
                    check,
                })
                .await;
        }
    }

    async fn next(&mut self) {
        if let Some((part, plan)) = self.pending.pop_front() {
            self.current = Some(part);
            self.launch.send(plan).await;
        }
    }

    /// The GPU finished the kernel in flight.
    pub async fn kernel_done(&mut self, done: KernelDone) {
        let part = self.current.take().unwrap_or(Part::Moe);
        self.finished
            .send(Finished {
                layer: self.layer,
                part,
                done,
            })
            .await;
        if self.pending.is_empty()
            && let Work::Model(w) = &self.work
        {
            self.layer += 1;
            if self.layer < w.layers {
                self.build_layer().await;
            }
        }
        self.next().await;
    }
}
