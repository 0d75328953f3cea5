//! `sim`: the engine layer of sysim.
//!
//! Scenario files and their sweeps, seeded RNG streams, the `Experiment` trait every model family
//! implements, the parallel runner, result tables, and the reusable nexosim components
//! (server, link, DVFS domain, energy meter, memory pool, ticker) with metric recorders.

#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod components;
pub mod engine;
pub mod error;
pub mod experiment;
pub mod locate;
pub mod metrics;
pub mod output;
pub mod resume;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod sweep;
pub mod table;
