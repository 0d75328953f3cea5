//! Family `sptc`: Samoyeds (EuroSys'25) — dual-side structured sparsity for MoE layers on GPUs with
//! sparse tensor cores. Formats and numeric kernels (`format`, `kernel`), their tiling and counts
//! (`tiling`), the GPU (`gpu`, `device`) and its tile-level efficiency (`efficiency`), the numeric
//! check of a sampled block during each run (`sample`), the router and layer kernels (`router`, `layer`, `driver`),
//! memory and batch size (`memory`), and the bench (`experiment`). See README.md in this folder.

pub mod device;
pub mod driver;
pub mod efficiency;
pub mod experiment;
pub mod format;
pub mod gpu;
pub mod kernel;
pub mod layer;
pub mod memory;
pub mod params;
pub mod router;
pub mod sample;
pub mod tiling;

pub use experiment::SptcExperiment;
pub use params::SptcParams;

#[cfg(test)]
mod tests;
