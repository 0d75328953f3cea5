//! `sim-run`: the run machinery of sysim, on top of the family API in `sim`.
//!
//! A scenario file becomes a validated [`scenario::Plan`] (sweep expanded, presets resolved, params
//! checked by the family), [`budget`] refuses a plan that would exhaust the machine, the [`runner`]
//! executes its runs on a rayon pool (one single-threaded nexosim simulation each), and [`output`]
//! writes the results folder (runs and series tables, manifest) as one unit that
//! [`manifest::verify`] checks on every read, under a [`lock`]. [`journal`] keeps each finished run
//! as it finishes, [`interrupt`] stops a sweep cleanly on SIGINT, and [`resume`] and [`checkpoint`]
//! continue interrupted work. [`bench`] is the engine benchmark behind `sysim bench`.

pub mod bench;
pub mod budget;
pub mod checkpoint;
pub mod error;
pub mod input;
pub mod interrupt;
pub mod journal;
pub mod locate;
pub mod lock;
pub mod manifest;
pub mod output;
pub mod overrides;
pub mod resume;
pub mod runner;
pub mod scenario;
pub mod schema;
pub mod sweep;
pub mod table;
pub mod timeline;
