//! `sysim` as a library: the registry of families, shared by the `sysim` binary and the
//! end-to-end tests.

pub mod registry;

pub use registry::registry;
