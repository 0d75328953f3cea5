//! A network or bus link: a fixed latency plus a bandwidth shared fairly by concurrent transfers.
//!
//! Transmission is processor sharing: while `n` transfers are active each progresses at
//! `bandwidth_bytes_per_s / n`. On every arrival and completion the link brings the remaining bytes
//! of the active transfers up to date and reschedules a single keyed completion event for the
//! transfer that will finish first (cancelling the previous one), so the cost is one event per
//! transfer plus one per latency delivery, never one per byte or packet. A transfer is delivered
//! `latency_s` after its last byte has been transmitted (store-and-forward: the latency is the
//! propagation and protocol delay after transmission).
//!
//! Wiring: connect an `EventSource<Transfer>` or a model's `Output<Transfer>` to [`Link::send`];
//! connect [`Link::delivered`] to the receiver (through a router when several receivers share a
//! link); read [`LinkStats`] with a `QuerySource<(), LinkStats>` on [`Link::stats`].

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use nexosim::simulation::EventKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::{secs, t_s};
use crate::metrics::{Counter, TimeWeightedGauge};

/// A message of `bytes` bytes submitted to a [`Link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Transfer {
    /// Caller-chosen identifier, echoed in [`Delivered`].
    pub id: u64,
    /// Payload size in bytes (0 is delivered after the latency alone).
    pub bytes: u64,
}

/// A transfer that reached the far end of the [`Link`]; times in seconds since the run start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delivered {
    /// The transfer's identifier.
    pub id: u64,
    /// Payload size in bytes.
    pub bytes: u64,
    /// Time the transfer was submitted, seconds.
    pub sent_s: f64,
    /// Time its last byte left the sender, seconds.
    pub transmitted_s: f64,
    /// Time it was delivered (`transmitted_s + latency_s`), seconds.
    pub delivered_s: f64,
}

impl Delivered {
    /// Total transfer time, submission to delivery, seconds.
    pub fn duration_s(&self) -> f64 {
        self.delivered_s - self.sent_s
    }
}

/// Figures of a [`Link`] from the start of the run up to the time of the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinkStats {
    /// Length of the observation window, seconds.
    pub elapsed_s: f64,
    /// Transfers submitted.
    pub sent: u64,
    /// Transfers delivered.
    pub delivered: u64,
    /// Transfers submitted but not yet delivered (transmitting or within the latency).
    pub in_flight: u64,
    /// Bytes whose transmission has completed.
    pub bytes_transmitted: u64,
    /// Fraction of time at least one transfer was transmitting, in [0, 1].
    pub utilization: f64,
    /// Time-average number of transfers sharing the bandwidth.
    pub mean_active: f64,
    /// Completed bytes per second of elapsed time.
    pub throughput_bytes_per_s: f64,
    /// Mean submission-to-delivery time of the delivered transfers, seconds.
    pub mean_transfer_s: f64,
}

impl LinkStats {
    /// Appends `{prefix}_utilization`, `{prefix}_throughput_bytes_per_s`,
    /// `{prefix}_transfer_s_mean`, `{prefix}_bytes` and `{prefix}_delivered` to `out`.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_utilization"), self.utilization));
        out.push((
            format!("{prefix}_throughput_bytes_per_s"),
            self.throughput_bytes_per_s,
        ));
        out.push((format!("{prefix}_transfer_s_mean"), self.mean_transfer_s));
        out.push((format!("{prefix}_bytes"), self.bytes_transmitted as f64));
        out.push((format!("{prefix}_delivered"), self.delivered as f64));
    }
}

/// A transfer being transmitted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Active {
    /// The transfer's identifier.
    id: u64,
    /// Payload size, bytes.
    bytes: u64,
    /// Submission time, seconds.
    sent_s: f64,
    /// Bytes still to transmit (fractional while sharing the bandwidth).
    remaining_bytes: f64,
}

/// A link with a fixed latency and a bandwidth shared fairly (processor sharing).
#[derive(Serialize, Deserialize)]
pub struct Link {
    /// Every transfer, at its delivery time.
    pub delivered: Output<Delivered>,
    /// Delay from the end of transmission to delivery, seconds.
    latency_s: f64,
    /// Total bandwidth shared by the active transfers, bytes per second.
    bandwidth_bytes_per_s: f64,
    /// Transfers being transmitted, in submission order.
    active: Vec<Active>,
    /// Time the remaining bytes were last brought up to date, seconds.
    last_update_s: f64,
    /// The pending completion event, if any.
    next_key: Option<EventKey>,
    /// Generation of the pending completion event (stale events are ignored).
    epoch: u64,
    /// Scratch buffer of transfers that finished transmitting (empty between events).
    finished: Vec<Delivered>,
    /// Number of active transfers over time.
    active_gauge: TimeWeightedGauge,
    /// 1 while transmitting, 0 while idle.
    busy_gauge: TimeWeightedGauge,
    /// Transfers submitted.
    sent: Counter,
    /// Transfers delivered.
    delivered_count: Counter,
    /// Bytes fully transmitted.
    bytes_transmitted: Counter,
    /// Sum of submission-to-delivery times, seconds.
    transfer_sum_s: f64,
}

#[Model]
impl Link {
    /// An idle link with `latency_s` seconds of latency and `bandwidth_bytes_per_s` bytes/s of
    /// bandwidth (`f64::INFINITY` for a pure-latency link).
    ///
    /// # Panics
    /// If the latency is negative or not finite, or the bandwidth is not positive.
    pub fn new(latency_s: f64, bandwidth_bytes_per_s: f64) -> Self {
        assert!(
            latency_s.is_finite() && latency_s >= 0.0,
            "link latency must be finite and ≥ 0 s, got {latency_s}"
        );
        assert!(
            bandwidth_bytes_per_s > 0.0,
            "link bandwidth must be > 0 bytes/s, got {bandwidth_bytes_per_s}"
        );
        Self {
            delivered: Output::default(),
            latency_s,
            bandwidth_bytes_per_s,
            active: Vec::new(),
            last_update_s: 0.0,
            next_key: None,
            epoch: 0,
            finished: Vec::new(),
            active_gauge: TimeWeightedGauge::default(),
            busy_gauge: TimeWeightedGauge::default(),
            sent: Counter::new(),
            delivered_count: Counter::new(),
            bytes_transmitted: Counter::new(),
            transfer_sum_s: 0.0,
        }
    }

    /// Starts the observation window at the simulation start time.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.last_update_s = now;
        self.active_gauge = TimeWeightedGauge::new(now, 0.0);
        self.busy_gauge = TimeWeightedGauge::new(now, 0.0);
    }

    /// Submits a transfer (input port); it starts sharing the bandwidth at once.
    pub async fn send(&mut self, transfer: Transfer, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.sent.incr();
        self.advance(now);
        if transfer.bytes == 0 || self.bandwidth_bytes_per_s.is_infinite() {
            self.finished.push(Delivered {
                id: transfer.id,
                bytes: transfer.bytes,
                sent_s: now,
                transmitted_s: now,
                delivered_s: now + self.latency_s,
            });
        } else {
            self.active.push(Active {
                id: transfer.id,
                bytes: transfer.bytes,
                sent_s: now,
                remaining_bytes: transfer.bytes as f64,
            });
        }
        self.settle(now, cx).await;
    }

    /// Figures from the start of the run up to now (replier port).
    pub async fn stats(&mut self, _: (), cx: &Context<Self>) -> LinkStats {
        let now = t_s(cx.time());
        let elapsed_s = (now - self.busy_gauge.start_s()).max(0.0);
        let delivered = self.delivered_count.get();
        let bytes = self.bytes_transmitted.get();
        LinkStats {
            elapsed_s,
            sent: self.sent.get(),
            delivered,
            in_flight: self.sent.get() - delivered,
            bytes_transmitted: bytes,
            utilization: self.busy_gauge.mean(now),
            mean_active: self.active_gauge.mean(now),
            throughput_bytes_per_s: if elapsed_s > 0.0 {
                bytes as f64 / elapsed_s
            } else {
                0.0
            },
            mean_transfer_s: if delivered > 0 {
                self.transfer_sum_s / delivered as f64
            } else {
                0.0
            },
        }
    }

    /// The earliest active transfer is due to finish (self-scheduled, keyed).
    #[nexosim(schedulable)]
    async fn complete(&mut self, epoch: u64, cx: &Context<Self>) {
        if epoch != self.epoch {
            return; // superseded by a later reschedule
        }
        self.next_key = None;
        let now = t_s(cx.time());
        self.advance(now);
        self.settle(now, cx).await;
    }

    /// Delivers a transfer after its latency (self-scheduled).
    #[nexosim(schedulable)]
    async fn deliver(&mut self, d: Delivered) {
        self.record_delivery(&d);
        self.delivered.send(d).await;
    }

    /// Brings the remaining bytes of the active transfers up to `now`.
    fn advance(&mut self, now: f64) {
        let dt = now - self.last_update_s;
        if dt > 0.0 && !self.active.is_empty() {
            let share = dt * self.bandwidth_bytes_per_s / self.active.len() as f64;
            for a in &mut self.active {
                a.remaining_bytes -= share;
            }
        }
        self.last_update_s = self.last_update_s.max(now);
    }

    /// Retires the transfers that have finished transmitting, hands them to the latency stage, and
    /// schedules the next completion.
    async fn settle(&mut self, now: f64, cx: &Context<Self>) {
        if let Some(key) = self.next_key.take() {
            key.cancel();
        }
        self.epoch = self.epoch.wrapping_add(1);
        if !self.active.is_empty() {
            let rate = self.bandwidth_bytes_per_s / self.active.len() as f64;
            // Within one nanosecond of transmission counts as done: event times are whole ns.
            let tol = rate * 1e-9;
            let latency_s = self.latency_s;
            let finished = &mut self.finished;
            let transmitted = &mut self.bytes_transmitted;
            self.active.retain(|a| {
                if a.remaining_bytes > tol {
                    return true;
                }
                transmitted.add(a.bytes);
                finished.push(Delivered {
                    id: a.id,
                    bytes: a.bytes,
                    sent_s: a.sent_s,
                    transmitted_s: now,
                    delivered_s: now + latency_s,
                });
                false
            });
        }
        if let Some(min_remaining) = self
            .active
            .iter()
            .map(|a| a.remaining_bytes)
            .min_by(f64::total_cmp)
        {
            let rate = self.bandwidth_bytes_per_s / self.active.len() as f64;
            let delay = secs(min_remaining / rate).max(std::time::Duration::from_nanos(1));
            let key = cx
                .schedule_keyed_event(delay, schedulable!(Self::complete), self.epoch)
                .expect("a positive delay is always in the future");
            self.next_key = Some(key);
        }
        let n = self.active.len() as f64;
        self.active_gauge.set(now, n);
        self.busy_gauge.set(now, if n > 0.0 { 1.0 } else { 0.0 });

        let latency = secs(self.latency_s);
        if latency.is_zero() {
            // Take the buffer to send from it, then put it back to keep its capacity.
            let mut finished = std::mem::take(&mut self.finished);
            for d in finished.drain(..) {
                self.record_delivery(&d);
                self.delivered.send(d).await;
            }
            self.finished = finished;
        } else {
            for d in self.finished.drain(..) {
                cx.schedule_event(latency, schedulable!(Self::deliver), d)
                    .expect("a positive delay is always in the future");
            }
        }
    }

    /// Counts a delivery.
    fn record_delivery(&mut self, d: &Delivered) {
        self.delivered_count.incr();
        self.transfer_sum_s += d.delivered_s - d.sent_s;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nexosim::ports::event_queue;
    use nexosim::ports::{EventQueueReader, EventSinkReader, EventSource, QuerySource, SinkState};
    use nexosim::simulation::{EventId, Mailbox, QueryId, SimInit, Simulation};
    use rand::Rng as _;

    use super::*;
    use crate::engine::{T0, bench};

    struct Bench {
        simu: Simulation,
        send: EventId<Transfer>,
        stats: QueryId<(), LinkStats>,
        out: EventQueueReader<Delivered>,
    }

    /// The bench before initialisation (shared by fresh runs and checkpoint restores).
    fn assemble(
        latency_s: f64,
        bw: f64,
    ) -> (
        SimInit,
        EventId<Transfer>,
        QueryId<(), LinkStats>,
        EventQueueReader<Delivered>,
    ) {
        let mut l = Link::new(latency_s, bw);
        let mbox = Mailbox::new();
        let (sink, out) = event_queue(SinkState::Enabled);
        l.delivered.connect_sink(sink);
        let mut b = bench();
        let send = EventSource::new()
            .connect(Link::send, &mbox)
            .register(&mut b);
        let stats = QuerySource::new()
            .connect(Link::stats, &mbox)
            .register(&mut b);
        (b.add_model(l, mbox, "link"), send, stats, out)
    }

    fn link(latency_s: f64, bw: f64) -> Bench {
        let (b, send, stats, out) = assemble(latency_s, bw);
        Bench {
            simu: b.init(T0).unwrap(),
            send,
            stats,
            out,
        }
    }

    fn drain(out: &mut EventQueueReader<Delivered>) -> Vec<Delivered> {
        std::iter::from_fn(|| out.try_read()).collect()
    }

    /// Event times are whole nanoseconds: allow a couple of ns of rounding.
    fn assert_t(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 3e-9,
            "expected {expected} s, got {actual} s"
        );
    }

    #[test]
    fn one_transfer_takes_latency_plus_size_over_bandwidth() {
        let mut b = link(0.010, 1e6);
        b.simu
            .process_event(&b.send, Transfer { id: 7, bytes: 4000 })
            .unwrap();
        b.simu.run().unwrap();
        let d = drain(&mut b.out);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, 7);
        assert_t(d[0].transmitted_s, 0.004);
        assert_t(d[0].delivered_s, 0.014);
        assert_t(crate::engine::t_s(b.simu.time()), 0.014);
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(
            (s.sent, s.delivered, s.in_flight, s.bytes_transmitted),
            (1, 1, 0, 4000)
        );
        assert!((s.utilization - 0.004 / 0.014).abs() < 1e-6);
    }

    #[test]
    fn two_equal_simultaneous_transfers_share_the_bandwidth() {
        let mut b = link(0.001, 2e6);
        for id in 0..2 {
            b.simu
                .process_event(&b.send, Transfer { id, bytes: 10_000 })
                .unwrap();
        }
        b.simu.run().unwrap();
        let d = drain(&mut b.out);
        assert_eq!(d.len(), 2);
        for x in &d {
            // latency + 2·bytes/bw = 0.001 + 0.01
            assert_t(x.delivered_s, 0.011);
        }
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert!((s.mean_active - 2.0 * 0.010 / 0.011).abs() < 1e-6);
    }

    #[test]
    fn short_transfer_joining_a_long_one_finishes_at_fair_share_time() {
        let mut b = link(0.010, 1e6);
        let sched = b.simu.scheduler();
        b.simu
            .process_event(&b.send, Transfer { id: 1, bytes: 3000 })
            .unwrap();
        sched
            .schedule_event(
                Duration::from_millis(1),
                &b.send,
                Transfer { id: 2, bytes: 1000 },
            )
            .unwrap();
        b.simu.run().unwrap();
        let d = drain(&mut b.out);
        let short = d.iter().find(|x| x.id == 2).unwrap();
        let long = d.iter().find(|x| x.id == 1).unwrap();
        // at 1 ms the long one has 2000 B left; both then get 0.5 MB/s: the short one is done
        // after another 2 ms, the long one has 1000 B left and finishes alone 1 ms later.
        assert_t(short.transmitted_s, 0.003);
        assert_t(short.delivered_s, 0.013);
        assert_t(long.transmitted_s, 0.004);
        assert_t(long.delivered_s, 0.014);
        assert_eq!(d[0].id, 2, "the short transfer is delivered first");
    }

    #[test]
    fn zero_latency_zero_bytes_and_infinite_bandwidth() {
        let mut b = link(0.0, 1e3);
        b.simu
            .process_event(&b.send, Transfer { id: 1, bytes: 0 })
            .unwrap();
        let d = drain(&mut b.out);
        assert_eq!(d.len(), 1, "delivered at once");
        assert_eq!(d[0].delivered_s, 0.0);
        b.simu
            .process_event(&b.send, Transfer { id: 2, bytes: 500 })
            .unwrap();
        b.simu.run().unwrap();
        assert_t(drain(&mut b.out)[0].delivered_s, 0.5);

        let mut p = link(0.25, f64::INFINITY);
        p.simu
            .process_event(
                &p.send,
                Transfer {
                    id: 3,
                    bytes: 1 << 40,
                },
            )
            .unwrap();
        p.simu.run().unwrap();
        assert_eq!(drain(&mut p.out)[0].delivered_s, 0.25);
    }

    #[test]
    fn checkpoint_mid_transfer_resumes_identically() {
        let submit = |b: &mut Bench| {
            for (id, bytes) in [(1, 3000), (2, 1000), (3, 5000)] {
                b.simu
                    .process_event(&b.send, Transfer { id, bytes })
                    .unwrap();
            }
        };
        let mut reference = link(0.010, 1e6);
        submit(&mut reference);
        reference.simu.run().unwrap();
        let expected = drain(&mut reference.out);

        let mut first = link(0.010, 1e6);
        submit(&mut first);
        first
            .simu
            .step_until(T0 + Duration::from_millis(5))
            .unwrap();
        let mut got = drain(&mut first.out);
        let mut state = Vec::new();
        first.simu.save(&mut state).unwrap();
        drop(first);

        let (b, _, stats, mut out) = assemble(0.010, 1e6);
        let mut simu = b.restore(&state[..]).unwrap();
        assert_eq!(simu.process_query(&stats, ()).unwrap().sent, 3);
        simu.run().unwrap();
        got.extend(drain(&mut out));
        assert_eq!(got, expected);
    }

    #[test]
    fn random_transfers_are_all_delivered_and_the_link_is_work_conserving() {
        let bw = 1.25e9; // 10 Gb/s
        let mut b = link(2e-6, bw);
        let sched = b.simu.scheduler();
        let mut rng = crate::rng::stream(5, "link/test");
        let n = 500u64;
        let mut total = 0u64;
        for id in 0..n {
            let bytes = rng.random_range(1..2_000_000u64);
            total += bytes;
            // all submitted within the first 100 µs: the link never idles afterwards
            let at = T0 + crate::engine::secs(rng.random::<f64>() * 1e-4);
            sched
                .schedule_event(at, &b.send, Transfer { id, bytes })
                .unwrap();
        }
        b.simu.run().unwrap();
        let d = drain(&mut b.out);
        assert_eq!(d.len() as u64, n);
        let mut ids: Vec<u64> = d.iter().map(|x| x.id).collect();
        ids.sort();
        assert_eq!(ids, (0..n).collect::<Vec<_>>());
        let first_send = d.iter().map(|x| x.sent_s).fold(f64::INFINITY, f64::min);
        let last_tx = d.iter().map(|x| x.transmitted_s).fold(0.0, f64::max);
        // busy from the first submission to the last byte: total / bw (±1 ns per completion)
        let expected = total as f64 / bw;
        assert!(
            (last_tx - first_send - expected).abs() <= n as f64 * 1e-9,
            "{} vs {}",
            last_tx - first_send,
            expected
        );
        for x in &d {
            assert!(x.sent_s <= x.transmitted_s);
            assert_t(x.delivered_s - x.transmitted_s, 2e-6);
            // never faster than alone on the link
            assert!(x.transmitted_s - x.sent_s >= x.bytes as f64 / bw - 2e-9);
        }
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(s.bytes_transmitted, total);
        assert_eq!(s.in_flight, 0);
    }
}
