//! pFedNavi study (`fl-personal`): layer-wise learned mixing of local and global weights.

pub mod experiment;
pub mod mixing;
pub mod params;
pub mod plugins;

pub use experiment::PersonalExperiment;
