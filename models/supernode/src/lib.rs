//! Family `supernode`: HyperOffload (arXiv 2602.00748) — compile-time memory management for an
//! accelerator with HBM plus a supernode's pooled memory over a fast fabric.
//!
//! An LLM step (prefill, decode with a KV cache, or a training step) is a graph of operators over
//! tensors ([`graph`], [`workloads`]). A strategy turns it into a device program: `none` and
//! `ideal` keep everything resident, `reactive` swaps at run time, `kv_offload` moves the KV cache and
//! activations by a fixed rule ([`baseline`]), `hyperoffload` runs the compile pass ([`lifetime`],
//! [`planner`]). The [`device`] model executes the program in the
//! engine against the shared memory-pool and link components.

pub mod baseline;
pub mod device;
mod experiment;
pub mod graph;
pub mod hw;
pub mod lifetime;
mod params;
pub mod phases;
pub mod planner;
pub mod serving;
pub mod workloads;

pub use experiment::{Outcome, Setup, SupernodeExperiment, build_graph, execute, setup};
pub use params::{
    HyperOffloadKnobs, KvOffloadKnobs, MAX_DECODE_STEPS, Parallel, RequestTrace, Strategy,
    SupernodeParams, Workload,
};

#[cfg(test)]
mod tests;
