//! `sim`: the API a sysim family is written against.
//!
//! The [`experiment::Experiment`] trait with its context and output, range checks
//! ([`validate`]), seeded RNG streams ([`rng`]), engine helpers ([`engine`]), the reusable nexosim
//! components (server, link, DVFS domain, energy meter, memory pool, ticker) with metric recorders,
//! per-run checkpoints and resource
//! [`estimate`]s. It knows nothing of scenario files, result tables or thread pools: those
//! are the run machinery's (`sim-run`).

pub mod checkpoint;
pub mod components;
pub mod engine;
pub mod estimate;
pub mod experiment;
pub mod metrics;
pub mod request_trace;
pub mod rng;
pub mod table_csv;
pub mod trace;
pub mod validate;
