//! Family `queue`: the M/M/c reference system that validates the engine against queueing theory.
//!
//! Poisson arrivals feed the shared `sim` server component (c FIFO servers, exponential service).

mod experiment;
mod params;
mod source;

pub use experiment::QueueExperiment;
pub use params::QueueParams;
pub use source::PoissonSource;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod theory;
