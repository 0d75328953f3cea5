//! sysim's end-to-end tests, one binary: each module drives the `sysim` binary (or the registry
//! in-process) the way a user would.

mod bad_input;
mod checkpoint;
mod common;
mod deploy;
mod determinism;
mod fl_contracts;
mod gallery;
mod hostile;
mod journal;
mod notebook;
mod overrides;
mod scenarios;
mod schema;
mod sptc_scenarios;
mod timeline;
