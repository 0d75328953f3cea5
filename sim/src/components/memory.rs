//! A memory pool: a fixed capacity in bytes, named allocations, peak and time-weighted usage, and a
//! clear out-of-memory error.
//!
//! Allocation is a request/reply (the caller must know whether it succeeded): connect a model's
//! `Requestor<Alloc, Result<(), OutOfMemory>>` (or a `QuerySource`) to [`MemoryPool::alloc`].
//! Freeing is an event: connect an `Output<u64>` to [`MemoryPool::free`]. A failed allocation
//! changes nothing, so the used bytes — and hence the peak — never exceed the capacity.
//! Fragmentation is not modelled (any free bytes can be allocated).

use std::collections::BTreeMap;

use nexosim::model::{Context, Model};
use nexosim::ports::Output;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::t_s;
use crate::metrics::{Counter, TimeWeightedGauge};

/// A request for `bytes` bytes under the caller-chosen allocation `id`.
///
/// Allocating again under a live `id` grows that allocation by `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Alloc {
    /// Allocation identifier (a tensor, a KV-cache block, a buffer, …), used by `free`.
    pub id: u64,
    /// Bytes requested.
    pub bytes: u64,
}

/// An allocation that did not fit: what was asked and what was available.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error,
)]
#[error(
    "out of memory: allocation {id} requested {requested_bytes} bytes but only {free_bytes} of \
     {capacity_bytes} bytes are free"
)]
pub struct OutOfMemory {
    /// The allocation identifier.
    pub id: u64,
    /// Bytes requested.
    pub requested_bytes: u64,
    /// Bytes free at the time of the request.
    pub free_bytes: u64,
    /// Capacity of the pool, bytes.
    pub capacity_bytes: u64,
}

/// Usage of a [`MemoryPool`] after a change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryUsage {
    /// Time of the change, seconds since the run start.
    pub t_s: f64,
    /// Bytes in use from now on.
    pub used_bytes: u64,
    /// Capacity of the pool, bytes.
    pub capacity_bytes: u64,
}

/// Figures of a [`MemoryPool`] from the start of the run up to the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryStats {
    /// Capacity, bytes.
    pub capacity_bytes: u64,
    /// Bytes in use now.
    pub used_bytes: u64,
    /// Highest usage seen, bytes (never above the capacity).
    pub peak_bytes: u64,
    /// Time-average usage, bytes.
    pub mean_used_bytes: f64,
    /// Live allocations now.
    pub live_allocations: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Allocations refused with [`OutOfMemory`].
    pub failed_allocs: u64,
    /// Frees of live allocations.
    pub frees: u64,
    /// Frees of unknown (never allocated or already freed) ids, ignored.
    pub unknown_frees: u64,
}

impl MemoryStats {
    /// Appends `{prefix}_peak_bytes`, `{prefix}_used_bytes_mean`, `{prefix}_peak_frac` and
    /// `{prefix}_failed_allocs` to `out`.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_peak_bytes"), self.peak_bytes as f64));
        out.push((format!("{prefix}_used_bytes_mean"), self.mean_used_bytes));
        let frac = if self.capacity_bytes > 0 {
            self.peak_bytes as f64 / self.capacity_bytes as f64
        } else {
            0.0
        };
        out.push((format!("{prefix}_peak_frac"), frac));
        out.push((format!("{prefix}_failed_allocs"), self.failed_allocs as f64));
    }
}

/// A pool of `capacity_bytes` bytes with named allocations.
#[derive(Serialize, Deserialize)]
pub struct MemoryPool {
    /// Usage after every successful allocation or free.
    pub usage: Output<MemoryUsage>,
    /// Capacity, bytes.
    capacity_bytes: u64,
    /// Bytes in use.
    used_bytes: u64,
    /// Highest usage, bytes.
    peak_bytes: u64,
    /// Live allocations: id → bytes (ordered, for deterministic checkpoints).
    live: BTreeMap<u64, u64>,
    /// Usage over time, bytes.
    used_gauge: TimeWeightedGauge,
    /// Successful allocations.
    allocs: Counter,
    /// Refused allocations.
    failed: Counter,
    /// Frees of live ids.
    frees: Counter,
    /// Frees of unknown ids.
    unknown_frees: Counter,
}

#[Model]
impl MemoryPool {
    /// An empty pool of `capacity_bytes` bytes.
    pub fn new(capacity_bytes: u64) -> Self {
        Self {
            usage: Output::default(),
            capacity_bytes,
            used_bytes: 0,
            peak_bytes: 0,
            live: BTreeMap::new(),
            used_gauge: TimeWeightedGauge::default(),
            allocs: Counter::new(),
            failed: Counter::new(),
            frees: Counter::new(),
            unknown_frees: Counter::new(),
        }
    }

    /// Starts the usage gauge at the simulation start time.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        self.used_gauge = TimeWeightedGauge::new(t_s(cx.time()), self.used_bytes as f64);
    }

    /// Allocates `req.bytes` under `req.id` if they fit (replier port); otherwise nothing changes
    /// and the reply is [`OutOfMemory`].
    pub async fn alloc(&mut self, req: Alloc, cx: &Context<Self>) -> Result<(), OutOfMemory> {
        let free_bytes = self.capacity_bytes - self.used_bytes;
        if req.bytes > free_bytes {
            self.failed.incr();
            return Err(OutOfMemory {
                id: req.id,
                requested_bytes: req.bytes,
                free_bytes,
                capacity_bytes: self.capacity_bytes,
            });
        }
        self.allocs.incr();
        *self.live.entry(req.id).or_insert(0) += req.bytes;
        self.used_bytes += req.bytes;
        self.peak_bytes = self.peak_bytes.max(self.used_bytes);
        self.changed(cx).await;
        Ok(())
    }

    /// Frees allocation `id` entirely (input port); an unknown id is ignored and counted.
    pub async fn free(&mut self, id: u64, cx: &Context<Self>) {
        match self.live.remove(&id) {
            Some(bytes) => {
                self.frees.incr();
                self.used_bytes -= bytes;
                self.changed(cx).await;
            }
            None => self.unknown_frees.incr(),
        }
    }

    /// Bytes in use now (replier port).
    pub async fn used_bytes(&mut self, _: ()) -> u64 {
        self.used_bytes
    }

    /// Bytes free now (replier port).
    pub async fn free_bytes(&mut self, _: ()) -> u64 {
        self.capacity_bytes - self.used_bytes
    }

    /// Figures from the start of the run up to now (replier port).
    pub async fn stats(&mut self, _: (), cx: &Context<Self>) -> MemoryStats {
        let now = t_s(cx.time());
        MemoryStats {
            capacity_bytes: self.capacity_bytes,
            used_bytes: self.used_bytes,
            peak_bytes: self.peak_bytes,
            mean_used_bytes: self.used_gauge.mean(now),
            live_allocations: self.live.len() as u64,
            allocs: self.allocs.get(),
            failed_allocs: self.failed.get(),
            frees: self.frees.get(),
            unknown_frees: self.unknown_frees.get(),
        }
    }

    /// Records and announces the new usage.
    async fn changed(&mut self, cx: &Context<Self>) {
        let now = t_s(cx.time());
        self.used_gauge.set(now, self.used_bytes as f64);
        self.usage
            .send(MemoryUsage {
                t_s: now,
                used_bytes: self.used_bytes,
                capacity_bytes: self.capacity_bytes,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use nexosim::ports::event_queue;
    use nexosim::ports::{EventQueueReader, EventSinkReader, EventSource, QuerySource, SinkState};
    use nexosim::simulation::{EventId, Mailbox, QueryId, Simulation};
    use rand::Rng as _;

    use super::*;
    use crate::engine::{T0, bench};

    struct Bench {
        simu: Simulation,
        alloc: QueryId<Alloc, Result<(), OutOfMemory>>,
        free: EventId<u64>,
        stats: QueryId<(), MemoryStats>,
        usage: EventQueueReader<MemoryUsage>,
    }

    fn pool(capacity_bytes: u64) -> Bench {
        let mut p = MemoryPool::new(capacity_bytes);
        let mbox = Mailbox::new();
        let (sink, usage) = event_queue(SinkState::Enabled);
        p.usage.connect_sink(sink);
        let mut b = bench();
        let alloc = QuerySource::new()
            .connect(MemoryPool::alloc, &mbox)
            .register(&mut b);
        let free = EventSource::new()
            .connect(MemoryPool::free, &mbox)
            .register(&mut b);
        let stats = QuerySource::new()
            .connect(MemoryPool::stats, &mbox)
            .register(&mut b);
        let simu = b.add_model(p, mbox, "hbm").init(T0).unwrap();
        Bench {
            simu,
            alloc,
            free,
            stats,
            usage,
        }
    }

    #[test]
    fn alloc_free_and_a_clear_out_of_memory_error() {
        let mut b = pool(1000);
        let ok =
            |b: &mut Bench, id, bytes| b.simu.process_query(&b.alloc, Alloc { id, bytes }).unwrap();
        assert_eq!(ok(&mut b, 1, 600), Ok(()));
        assert_eq!(ok(&mut b, 2, 300), Ok(()));
        let err = ok(&mut b, 3, 200).unwrap_err();
        assert_eq!(
            err,
            OutOfMemory {
                id: 3,
                requested_bytes: 200,
                free_bytes: 100,
                capacity_bytes: 1000
            }
        );
        assert_eq!(
            err.to_string(),
            "out of memory: allocation 3 requested 200 bytes but only 100 of 1000 bytes are free"
        );
        let _: &dyn std::error::Error = &err;
        b.simu.process_event(&b.free, 1).unwrap();
        b.simu.process_event(&b.free, 1).unwrap(); // double free: ignored
        assert_eq!(ok(&mut b, 3, 200), Ok(()));
        assert_eq!(ok(&mut b, 3, 50), Ok(())); // grows allocation 3 to 250
        b.simu.process_event(&b.free, 3).unwrap();
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(
            (s.used_bytes, s.peak_bytes, s.live_allocations),
            (300, 900, 1)
        );
        assert_eq!(
            (s.allocs, s.failed_allocs, s.frees, s.unknown_frees),
            (4, 1, 2, 1)
        );
        let used: Vec<u64> = std::iter::from_fn(|| b.usage.try_read())
            .map(|u| u.used_bytes)
            .collect();
        assert_eq!(used, vec![600, 900, 300, 500, 550, 300]);
    }

    #[test]
    fn usage_never_exceeds_capacity_under_random_traffic() {
        let capacity = 1 << 20;
        let mut b = pool(capacity);
        let mut rng = crate::rng::stream(21, "memory/test");
        let mut model: HashMap<u64, u64> = HashMap::new();
        let mut next_id = 0u64;
        let mut refused = 0;
        for step in 0..3000u64 {
            b.simu
                .step_until(T0 + Duration::from_micros(step + 1))
                .unwrap();
            if model.is_empty() || rng.random_bool(0.6) {
                let bytes = rng.random_range(1..capacity / 8);
                let reply = b
                    .simu
                    .process_query(&b.alloc, Alloc { id: next_id, bytes })
                    .unwrap();
                let used: u64 = model.values().sum();
                if used + bytes <= capacity {
                    assert_eq!(reply, Ok(()));
                    model.insert(next_id, bytes);
                } else {
                    assert_eq!(reply.unwrap_err().free_bytes, capacity - used);
                    refused += 1;
                }
                next_id += 1;
            } else {
                let ids: Vec<u64> = model.keys().copied().collect();
                let id = ids[rng.random_range(0..ids.len())];
                model.remove(&id);
                b.simu.process_event(&b.free, id).unwrap();
            }
            let s = b.simu.process_query(&b.stats, ()).unwrap();
            assert_eq!(s.used_bytes, model.values().sum::<u64>());
            assert!(s.used_bytes <= capacity);
            assert!(s.peak_bytes <= capacity);
            assert!(s.mean_used_bytes <= capacity as f64);
        }
        assert!(refused > 0, "the test must exercise out-of-memory");
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert!(s.peak_bytes > capacity / 2);
        let mut out = Vec::new();
        s.export("hbm", &mut out);
        assert_eq!(out[0].0, "hbm_peak_bytes");
    }

    #[test]
    fn time_weighted_usage() {
        let mut b = pool(100);
        b.simu
            .process_query(&b.alloc, Alloc { id: 1, bytes: 40 })
            .unwrap()
            .unwrap();
        b.simu.step_until(T0 + Duration::from_secs(1)).unwrap();
        b.simu.process_event(&b.free, 1).unwrap();
        b.simu.step_until(T0 + Duration::from_secs(4)).unwrap();
        let s = b.simu.process_query(&b.stats, ()).unwrap();
        assert_eq!(s.mean_used_bytes, 10.0);
    }
}
