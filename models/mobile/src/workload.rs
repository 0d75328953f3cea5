//! Request source: closed-loop chat (one request at a time, an exponential think time after each
//! answer), open-loop Poisson arrivals, or open-loop arrivals at a trace's timestamps.

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};
use sim::engine::{secs, t_s};
use sim::rng::Rng;

use super::engine::{Request, RequestDone};

/// How requests arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Arrivals {
    /// Next request an Exp(mean `think_s`) think time after the previous answer.
    Closed {
        /// Mean think time, seconds (0: back to back).
        think_s: f64,
    },
    /// Poisson arrivals at `rate_per_s`.
    Poisson {
        /// Arrival rate, requests per second.
        rate_per_s: f64,
    },
    /// Request `i` arrives at `arrival_s[i]` (non-decreasing, seconds from the start).
    Trace {
        /// Arrival times, seconds.
        arrival_s: Vec<f64>,
    },
}

/// Emits `lengths.len()` requests, then announces `all_done` once every one has finished.
#[derive(Serialize, Deserialize)]
pub struct Workload {
    /// Requests, to the engine's `submit`.
    pub out: Output<Request>,
    /// Sent once when the last request has finished (stops the tickers).
    pub all_done: Output<()>,
    arrivals: Arrivals,
    lengths: Vec<(u64, u64)>,
    sent: usize,
    finished: usize,
    rng: Rng,
}

#[Model]
impl Workload {
    /// A source of requests with `(prompt, response)` lengths, in order.
    pub fn new(arrivals: Arrivals, lengths: Vec<(u64, u64)>, rng: Rng) -> Self {
        Self {
            out: Output::default(),
            all_done: Output::default(),
            arrivals,
            lengths,
            sent: 0,
            finished: 0,
            rng,
        }
    }

    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        match &self.arrivals {
            Arrivals::Closed { .. } => self.emit(cx).await,
            &Arrivals::Poisson { rate_per_s } => {
                let gap = self.draw(rate_per_s);
                self.schedule(gap, cx);
            }
            Arrivals::Trace { arrival_s } => {
                let gap = arrival_s.first().copied().unwrap_or(0.0);
                self.schedule(gap, cx);
            }
        }
    }

    /// A request finished (input port, from the engine's `done`).
    pub async fn completed(&mut self, _: RequestDone, cx: &Context<Self>) {
        self.finished += 1;
        if self.finished == self.lengths.len() {
            self.all_done.send(()).await;
            return;
        }
        if let Arrivals::Closed { think_s } = self.arrivals {
            let gap = if think_s > 0.0 {
                self.draw(1.0 / think_s)
            } else {
                0.0
            };
            self.schedule(gap, cx);
        }
    }

    /// Emits the next request (self-scheduled).
    #[nexosim(schedulable)]
    async fn fire(&mut self, _: (), cx: &Context<Self>) {
        self.emit(cx).await;
        match &self.arrivals {
            &Arrivals::Poisson { rate_per_s } => {
                let gap = self.draw(rate_per_s);
                self.schedule(gap, cx);
            }
            Arrivals::Trace { arrival_s } => {
                // the requests sent so far arrived at arrival_s[..sent]
                let next = arrival_s.get(self.sent).copied().unwrap_or(0.0);
                let gap = next - arrival_s[self.sent - 1];
                self.schedule(gap.max(0.0), cx);
            }
            Arrivals::Closed { .. } => {}
        }
    }

    async fn emit(&mut self, cx: &Context<Self>) {
        let Some(&(prompt, response)) = self.lengths.get(self.sent) else {
            return;
        };
        let req = Request {
            id: self.sent as u64,
            arrival_s: t_s(cx.time()),
            prompt,
            response,
        };
        self.sent += 1;
        self.out.send(req).await;
    }

    fn schedule(&mut self, gap_s: f64, cx: &Context<Self>) {
        if self.sent >= self.lengths.len() {
            return;
        }
        let delay = secs(gap_s).max(std::time::Duration::from_nanos(1));
        let _ = cx.schedule_event(delay, schedulable!(Self::fire), ());
    }

    fn draw(&mut self, rate: f64) -> f64 {
        Exp::new(rate).map_or(0.0, |d| d.sample(&mut self.rng))
    }
}
