//! A periodic clock: emits tick `k` at `first_s + k·period_s` (k = 0, 1, 2, …), optionally up to a
//! stop time. Drives samplers, governors and controllers that act at fixed intervals.
//!
//! Tick times are computed from the tick index in whole nanoseconds (no drift accumulates), and
//! each tick is one self-scheduled event. A tick due at the simulation start is emitted during
//! initialisation.
//!
//! Wiring: connect [`Ticker::tick`] to the periodic input of the model it drives (e.g. a
//! governor's `sample(u64)`); send `()` to [`Ticker::stop`] to stop early; read the number of ticks
//! with a `QuerySource<(), u64>` on [`Ticker::count`].

use std::time::Duration;

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use nexosim::simulation::EventKey;
use nexosim::time::MonotonicTime;
use serde::{Deserialize, Serialize};

use crate::engine::{T0, secs};

/// A ticker period the engine cannot represent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("ticker period must be between 1 ns and 1e9 s, got {period_s} s")]
pub struct TickerError {
    /// The period asked for, seconds.
    pub period_s: f64,
}

/// A periodic tick source.
#[derive(Serialize, Deserialize)]
pub struct Ticker {
    /// Tick index `k`, starting at 0, at time `first_s + k·period_s`.
    pub tick: Output<u64>,
    /// Period, nanoseconds (≥ 1).
    period_ns: u64,
    /// Offset of tick 0 from the simulation start, nanoseconds.
    first_ns: u64,
    /// Offset of the last allowed tick time from the simulation start, nanoseconds (inclusive).
    stop_ns: Option<u64>,
    /// Simulation start time.
    origin: MonotonicTime,
    /// Ticks emitted.
    count: u64,
    /// The pending tick, if any.
    next_key: Option<EventKey>,
}

#[Model]
impl Ticker {
    /// Ticks every `period_s` seconds, the first one `period_s` after the start, without end.
    /// Fails when `period_s` is not finite or rounds to less than one nanosecond (the engine's
    /// time step).
    pub fn new(period_s: f64) -> Result<Self, TickerError> {
        let bad = TickerError { period_s };
        if !period_s.is_finite() || !(0.5e-9..=1e9).contains(&period_s) {
            return Err(bad);
        }
        let period_ns = secs(period_s).as_nanos() as u64;
        if period_ns == 0 {
            return Err(bad);
        }
        Ok(Self {
            tick: Output::default(),
            period_ns,
            first_ns: period_ns,
            stop_ns: None,
            origin: T0,
            count: 0,
            next_key: None,
        })
    }

    /// The same ticker with tick 0 at `first_s` seconds after the start (0 = at the start).
    pub fn starting_at(self, first_s: f64) -> Self {
        Self {
            first_ns: secs(first_s).as_nanos() as u64,
            ..self
        }
    }

    /// The same ticker with no tick after `stop_s` seconds from the start (a tick exactly at
    /// `stop_s` is emitted).
    pub fn until(self, stop_s: f64) -> Self {
        Self {
            stop_ns: Some(secs(stop_s).as_nanos() as u64),
            ..self
        }
    }

    /// Emits tick 0 if it is due now, otherwise schedules it.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        self.origin = cx.time();
        if self.first_ns == 0 {
            self.fire(0, cx).await;
        } else {
            self.schedule(0, cx);
        }
    }

    /// Stops the ticker (input port): no further ticks.
    pub fn stop(&mut self, _: ()) {
        if let Some(key) = self.next_key.take() {
            key.cancel();
        }
    }

    /// Number of ticks emitted so far (replier port).
    pub async fn count(&mut self, _: ()) -> u64 {
        self.count
    }

    /// Tick `k` is due (self-scheduled).
    #[nexosim(schedulable)]
    async fn fire(&mut self, k: u64, cx: &Context<Self>) {
        self.next_key = None;
        self.count += 1;
        self.tick.send(k).await;
        self.schedule(k + 1, cx);
    }

    /// Schedules tick `k` unless it falls after the stop time.
    fn schedule(&mut self, k: u64, cx: &Context<Self>) {
        let Some(offset_ns) = k
            .checked_mul(self.period_ns)
            .and_then(|x| x.checked_add(self.first_ns))
        else {
            return;
        };
        if self.stop_ns.is_some_and(|stop| offset_ns > stop) {
            return;
        }
        let at = self.origin + Duration::from_nanos(offset_ns);
        if let Ok(key) = cx.schedule_keyed_event(at, schedulable!(Self::fire), k) {
            self.next_key = Some(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use nexosim::ports::event_queue;
    use nexosim::ports::{EventQueueReader, EventSinkReader, EventSource, QuerySource, SinkState};
    use nexosim::simulation::{EventId, Mailbox, QueryId, Simulation};

    use super::*;
    use crate::engine::{bench, t_s};

    /// Records the time of every tick through a small sink model.
    #[derive(Default, Serialize, Deserialize)]
    struct Probe {
        out: Output<(u64, f64)>,
    }
    #[Model]
    impl Probe {
        async fn on_tick(&mut self, k: u64, cx: &Context<Self>) {
            self.out.send((k, t_s(cx.time()))).await;
        }
    }

    struct Bench {
        simu: Simulation,
        stop: EventId<()>,
        count: QueryId<(), u64>,
        ticks: EventQueueReader<(u64, f64)>,
    }

    fn run(ticker: Ticker) -> Bench {
        let mut ticker = ticker;
        let mut probe = Probe::default();
        let tm = Mailbox::new();
        let pm = Mailbox::new();
        ticker.tick.connect(Probe::on_tick, &pm);
        let (sink, ticks) = event_queue(SinkState::Enabled);
        probe.out.connect_sink(sink);
        let mut b = bench();
        let stop = EventSource::new()
            .connect(Ticker::stop, &tm)
            .register(&mut b);
        let count = QuerySource::new()
            .connect(Ticker::count, &tm)
            .register(&mut b);
        let simu = b
            .add_model(ticker, tm, "ticker")
            .add_model(probe, pm, "probe")
            .init(T0)
            .unwrap();
        Bench {
            simu,
            stop,
            count,
            ticks,
        }
    }

    fn ticks(b: &mut Bench) -> Vec<(u64, f64)> {
        std::iter::from_fn(|| b.ticks.try_read()).collect()
    }

    #[test]
    fn ticks_every_period_until_the_stop_time_inclusive() {
        let mut b = run(Ticker::new(0.25).unwrap().until(1.0));
        b.simu.run().unwrap();
        assert_eq!(
            ticks(&mut b),
            vec![(0, 0.25), (1, 0.5), (2, 0.75), (3, 1.0)]
        );
        assert_eq!(b.simu.process_query(&b.count, ()).unwrap(), 4);
    }

    #[test]
    fn starting_at_zero_ticks_at_init_and_without_drift() {
        // 0.1 s is not exact in binary: tick times must still be k·100 ms to the nanosecond
        let mut b = run(Ticker::new(0.1).unwrap().starting_at(0.0));
        b.simu.step_until(T0 + Duration::from_secs(100)).unwrap();
        let t = ticks(&mut b);
        assert_eq!(t.len(), 1001);
        assert_eq!(t[0], (0, 0.0));
        assert_eq!(t[1000], (1000, 100.0));
        assert!(t.iter().all(|&(k, s)| (s - k as f64 * 0.1).abs() < 1e-12));
    }

    #[test]
    fn stop_cancels_the_pending_tick() {
        let mut b = run(Ticker::new(1.0).unwrap().starting_at(0.5));
        b.simu.step_until(T0 + Duration::from_secs(3)).unwrap();
        b.simu.process_event(&b.stop, ()).unwrap();
        b.simu.run().unwrap();
        assert_eq!(b.simu.process_query(&b.count, ()).unwrap(), 3); // 0.5, 1.5, 2.5
        assert_eq!(ticks(&mut b).last(), Some(&(2, 2.5)));
    }

    #[test]
    fn periods_below_a_nanosecond_or_not_finite_are_errors_not_panics() {
        for bad in [1e-12, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
            let err = Ticker::new(bad).err().expect("refused");
            assert!(err.to_string().contains("between 1 ns"), "{bad}: {err}");
        }
        assert!(Ticker::new(1e-9).is_ok());
    }
}
