//! POLAR study (`fl-backdoor`): layer-wise backdoor attacks against robust aggregation.

pub mod attack;
pub mod defense;
pub mod experiment;
pub mod params;
pub mod plugins;
pub mod policy;
pub mod stealth;

pub use experiment::BackdoorExperiment;
