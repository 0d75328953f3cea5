//! A pinned-frequency governor: on every phase change of the engine it sets one (CPU, GPU, memory)
//! OPP triple from its table (FUSE's per-phase, per-prompt-range choice; `performance`,
//! `powersave` and fixed triples are one-row tables).

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use serde::{Deserialize, Serialize};

use super::cost::Phase;
use super::engine::PhaseEvent;

/// Triples per prompt-length range: `[prefill, decode]` OPP indices (cpu, gpu, mem).
pub type PinTable = Vec<[[usize; 3]; 2]>;

/// Sets the OPP triple of each phase.
#[derive(Serialize, Deserialize)]
pub struct Pinner {
    /// CPU OPP requests.
    pub cpu: Output<usize>,
    /// GPU OPP requests.
    pub gpu: Output<usize>,
    /// Memory OPP requests.
    pub mem: Output<usize>,
    /// Prompt-length range upper bounds (exclusive); range `i` is `[bounds[i-1], bounds[i])`.
    bounds: Vec<u64>,
    /// One row per range (`bounds.len() + 1` rows, or a single row for all).
    table: PinTable,
}

#[Model]
impl Pinner {
    /// A pinner with `table` rows for the ranges delimited by `bounds`.
    pub fn new(bounds: Vec<u64>, table: PinTable) -> Self {
        Self {
            cpu: Output::default(),
            gpu: Output::default(),
            mem: Output::default(),
            bounds,
            table,
        }
    }

    /// Row index of a prompt of `prompt` tokens.
    pub fn row(bounds: &[u64], rows: usize, prompt: u64) -> usize {
        bounds
            .iter()
            .position(|&b| prompt < b)
            .unwrap_or(bounds.len())
            .min(rows - 1)
    }

    /// The engine changed phase (input port): pin that phase's triple.
    pub async fn phase(&mut self, ev: PhaseEvent, _cx: &Context<Self>) {
        let Some(phase) = ev.phase else { return };
        let row = &self.table[Self::row(&self.bounds, self.table.len(), ev.prompt)];
        let t = row[match phase {
            Phase::Prefill => 0,
            Phase::Decode => 1,
        }];
        self.cpu.send(t[0]).await;
        self.gpu.send(t[1]).await;
        self.mem.send(t[2]).await;
    }
}
