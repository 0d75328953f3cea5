//! pFedNavi study (`fl-personal`): layer-wise learned mixing of local and global weights.

pub mod experiment;
pub mod mixing;
pub mod params;

pub use experiment::PersonalExperiment;
