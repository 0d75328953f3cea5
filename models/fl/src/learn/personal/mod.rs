//! pFedNavi study (`fl-personal`): layer selection by learned mixing coefficients and fine-grained
//! fusion of the selected layers, on the real 8×8 digits under per-client feature shift and label
//! skew, against FedAvg, FedAvg+FT, FedPer and Ditto.

pub mod data;
pub mod ditto;
pub mod experiment;
pub mod memo;
pub mod mixing;
pub mod oracle;
pub mod params;
pub mod plugins;
pub mod sensor;
pub mod shift;

pub use experiment::PersonalExperiment;
