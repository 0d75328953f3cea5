//! Parameters of the `queue` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, Validate};

/// An M/M/c queue: Poisson arrivals, exponential service, `servers` identical FIFO servers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    /// Mean arrival rate λ, customers per second.
    pub arrival_rate: f64,
    /// Mean service rate μ of one server, customers per second.
    pub service_rate: f64,
    /// Number of servers c (≥ 1).
    #[serde(default = "one")]
    pub servers: u32,
    /// Customers to simulate (the run ends when the last one departs).
    pub customers: u64,
    /// Customers at the start excluded from the statistics (warm-up).
    #[serde(default)]
    pub warmup_customers: u64,
    /// Period of the `in_system` time series, seconds (0: no series).
    #[serde(default)]
    pub series_interval_s: f64,
}

fn one() -> u32 {
    1
}

fn positive(path: &str, v: f64, out: &mut Vec<ParamError>) {
    if !(v.is_finite() && v > 0.0) {
        out.push(ParamError::new(
            path,
            format!("must be a finite number > 0, got {v}"),
        ));
    }
}

impl Validate for QueueParams {
    fn validate(&self) -> Vec<ParamError> {
        let mut errors = Vec::new();
        positive("arrival_rate", self.arrival_rate, &mut errors);
        positive("service_rate", self.service_rate, &mut errors);
        if !(self.series_interval_s.is_finite() && self.series_interval_s >= 0.0) {
            errors.push(ParamError::new(
                "series_interval_s",
                format!(
                    "must be a finite number ≥ 0, got {}",
                    self.series_interval_s
                ),
            ));
        }
        if self.servers == 0 {
            errors.push(ParamError::new("servers", "must be ≥ 1, got 0"));
        }
        if self.customers == 0 {
            errors.push(ParamError::new("customers", "must be ≥ 1, got 0"));
        }
        if self.warmup_customers >= self.customers {
            errors.push(ParamError::new(
                "warmup_customers",
                format!(
                    "must be < customers ({}), got {}",
                    self.customers, self.warmup_customers
                ),
            ));
        }
        errors
    }
}
