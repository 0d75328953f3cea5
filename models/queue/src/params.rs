//! Parameters of the `queue` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

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

impl Validate for QueueParams {
    fn validate(&self, c: &mut Checks) {
        c.positive("arrival_rate", self.arrival_rate);
        c.positive("service_rate", self.service_rate);
        c.non_negative("series_interval_s", self.series_interval_s);
        c.at_least("servers", self.servers, 1);
        c.at_least("customers", self.customers, 1);
        if self.warmup_customers >= self.customers {
            c.fail(
                "warmup_customers",
                format!(
                    "must be < customers ({}), got {}",
                    self.customers, self.warmup_customers
                ),
            );
        }
    }
}
