//! Poisson customer source: exponential inter-arrival times and exponential service demands.

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};
use sim::components::server::Job;
use sim::engine::secs;
use sim::rng::Rng;

/// Emits `customers` jobs with Exp(λ) inter-arrival gaps; each carries an Exp(μ) service time.
#[derive(Serialize, Deserialize)]
pub struct PoissonSource {
    /// Jobs leave here, to the server's `arrive` input.
    pub out: Output<Job>,
    arrival_rate: f64,
    service_rate: f64,
    remaining: u64,
    next_id: u64,
    arrivals: Rng,
    service: Rng,
}

#[Model]
impl PoissonSource {
    /// A source of `customers` jobs, arrival rate λ and service rate μ in 1/s, with its two streams.
    pub fn new(
        arrival_rate: f64,
        service_rate: f64,
        customers: u64,
        arrivals: Rng,
        service: Rng,
    ) -> Self {
        Self {
            out: Output::default(),
            arrival_rate,
            service_rate,
            remaining: customers,
            next_id: 0,
            arrivals,
            service,
        }
    }

    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        self.schedule_next(cx);
    }

    fn schedule_next(&mut self, cx: &Context<Self>) {
        if self.remaining == 0 {
            return;
        }
        let gap_s = sample_exp(self.arrival_rate, &mut self.arrivals);
        // A zero delay is not schedulable in nexosim; the smallest gap is one nanosecond.
        let delay = secs(gap_s).max(std::time::Duration::from_nanos(1));
        // Scheduling in the future of the current time cannot fail.
        let _ = cx.schedule_event(delay, schedulable!(Self::arrive), ());
    }

    /// One customer arrives.
    #[nexosim(schedulable)]
    async fn arrive(&mut self, _: (), cx: &Context<Self>) {
        self.remaining -= 1;
        let job = Job {
            id: self.next_id,
            service_s: sample_exp(self.service_rate, &mut self.service),
            priority: 0,
        };
        self.next_id += 1;
        self.schedule_next(cx);
        self.out.send(job).await;
    }
}

fn sample_exp(rate: f64, rng: &mut Rng) -> f64 {
    // `rate` is validated > 0 and finite by QueueParams, so the distribution always exists.
    Exp::new(rate).map_or(0.0, |d| d.sample(rng))
}
