//! The accelerator's instruction sequencer (a nexosim model): issues each task of the program to
//! its engine in order, and streams the weights of upcoming matmuls from off-chip memory one
//! task ahead of compute (double-buffered on-chip weight buffers).

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};
use sim::components::link::{Delivered, Transfer};
use sim::components::server::{Completed, Job};

/// What the sequencer knows of one task: which engine runs it, its service time on that engine,
/// and the weight bytes it needs on chip before it starts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Step {
    /// True for the matmul engine, false for the nonlinear unit.
    pub on_array: bool,
    /// Service time on the engine, seconds.
    pub service_s: f64,
    /// Weight bytes to stream in before it can start (0: none).
    pub weight_bytes: u64,
}

/// In-order task issue with one-task-ahead weight prefetch.
#[derive(Serialize, Deserialize)]
pub struct Sequencer {
    /// Jobs for the systolic-array matmul engine.
    pub to_array: Output<Job>,
    /// Jobs for the nonlinear unit.
    pub to_nonlinear: Output<Job>,
    /// Weight transfers to the off-chip memory link.
    pub dma: Output<Transfer>,
    steps: Vec<Step>,
    loaded: Vec<bool>,
    compute_next: usize,
    compute_busy: bool,
    dma_next: usize,
    dma_busy: bool,
}

#[Model]
impl Sequencer {
    /// A sequencer for `steps` in program order.
    pub fn new(steps: Vec<Step>) -> Self {
        let n = steps.len();
        Self {
            to_array: Output::default(),
            to_nonlinear: Output::default(),
            dma: Output::default(),
            steps,
            loaded: vec![false; n],
            compute_next: 0,
            compute_busy: false,
            dma_next: 0,
            dma_busy: false,
        }
    }

    #[nexosim(init)]
    async fn init(&mut self, _cx: &Context<Self>) {
        self.progress().await;
    }

    /// An engine finished a task.
    pub async fn done(&mut self, _c: Completed) {
        self.compute_busy = false;
        self.compute_next += 1;
        self.progress().await;
    }

    /// A weight transfer arrived on chip.
    pub async fn loaded(&mut self, d: Delivered) {
        if let Some(l) = self.loaded.get_mut(d.id as usize) {
            *l = true;
        }
        self.dma_busy = false;
        self.dma_next += 1;
        self.progress().await;
    }

    async fn progress(&mut self) {
        // Prefetch: stream weights for tasks up to one ahead of the one computing.
        while !self.dma_busy
            && self.dma_next < self.steps.len()
            && self.dma_next <= self.compute_next + 1
        {
            let bytes = self.steps[self.dma_next].weight_bytes;
            if bytes == 0 {
                self.loaded[self.dma_next] = true;
                self.dma_next += 1;
            } else {
                self.dma_busy = true;
                self.dma
                    .send(Transfer {
                        id: self.dma_next as u64,
                        bytes,
                    })
                    .await;
            }
        }
        let i = self.compute_next;
        if !self.compute_busy && i < self.steps.len() && self.loaded[i] {
            self.compute_busy = true;
            let job = Job::new(i as u64, self.steps[i].service_s);
            if self.steps[i].on_array {
                self.to_array.send(job).await;
            } else {
                self.to_nonlinear.send(job).await;
            }
        }
    }
}
