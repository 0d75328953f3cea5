//! Helpers around nexosim: a single-threaded bench and conversions between seconds and engine time.

use std::time::Duration;

use nexosim::simulation::SimInit;
use nexosim::time::MonotonicTime;

/// A fresh single-threaded nexosim bench. sysim parallelises across runs (rayon), never inside one
/// simulation: nexosim's multi-threaded executor measured 2–7× slower on 2 cores.
pub fn bench() -> SimInit {
    SimInit::with_num_threads(1)
}

/// Simulated time zero of every run.
pub const T0: MonotonicTime = MonotonicTime::EPOCH;

/// Converts a non-negative duration in seconds to an engine delay, rounded to the nanosecond.
pub fn secs(duration_s: f64) -> Duration {
    Duration::from_nanos((duration_s.max(0.0) * 1e9).round() as u64)
}

/// Seconds elapsed since [`T0`] at engine time `t`.
pub fn t_s(t: MonotonicTime) -> f64 {
    t.duration_since(T0).as_secs_f64()
}
