//! `models`: sysim's model families, one module per family (DESIGN.md §1), and the registry that maps
//! a scenario's `model:` string to its family.

#![warn(missing_docs)]

pub mod fl;
pub mod fpga;
pub mod llm;
pub mod minilm;
pub mod mobile;
pub mod presets;
pub mod queue;
pub mod sptc;
pub mod supernode;

use sim::scenario::Registry;

/// Every family sysim knows, in the order `sysim list` shows them.
pub fn registry() -> Registry {
    Registry::new(vec![
        Box::new(queue::QueueExperiment),
        Box::new(mobile::MobileExperiment),
        Box::new(supernode::SupernodeExperiment),
        Box::new(fpga::FpgaExperiment),
        Box::new(sptc::SptcExperiment),
        Box::new(fl::FlExperiment),
        Box::new(fl::learn::lora::LoraExperiment),
        Box::new(fl::learn::personal::PersonalExperiment),
        Box::new(fl::learn::backdoor::BackdoorExperiment),
    ])
}
