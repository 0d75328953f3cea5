//! Family `mobile`: on-device LLM inference on a phone SoC whose CPU, GPU and memory each have a
//! DVFS domain (FUSE, arXiv 2507.02135). The stock governors (CPU schedutil, GPU load thresholds,
//! memory devfreq `interactive` with its QoS votes) each see only their own domain; FUSE profiles every (CPU, GPU,
//! memory) frequency triple offline and pins the fastest one per phase and prompt-length range
//! whose energy per token stays within the stock governors'. See README.md.

pub mod altdvfs;
pub mod calibrate;
pub mod cost;
pub mod dash;
pub mod eas;
pub mod engine;
pub mod experiment;
pub mod fuse;
pub mod governor;
pub mod hostsched;
pub mod membw;
pub mod memlat;
pub mod mifgov;
pub mod monitor;
pub mod ondemand;
pub mod params;
pub mod pinner;
pub mod quickstep;
pub mod schedutil;
pub mod soc;
pub mod timeline;
pub mod trace;
pub mod workload;

pub use experiment::MobileExperiment;
pub use params::MobileParams;

#[cfg(test)]
mod tests;
